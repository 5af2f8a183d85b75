// ACPI: AML encodings, table headers and checksums, table-loader replay, and golden disassembly.
// Golden files (tests/unit/firmware/golden/):
//  - qemu-7.2-pc/: QEMU 7.2's own tables for `-M pc,smm=off -smp 2 -m 1024` (with its default
//    floppy controller), dumped from guest memory after SeaBIOS placed them and disassembled with
//    `iasl -d`. hvm's tables for the same configuration must disassemble to exactly this.
//  - hvm-pc-smp2-m1024/: hvm's own configuration (no FDC). Regenerate with
//    HVM_REGEN_GOLDEN=1 ./unit_firmware_test_acpi after a deliberate change.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "base/error.hpp"
#include "firmware/acpi/aml.hpp"
#include "firmware/acpi/pc_acpi.hpp"
#include "firmware/acpi/table_loader.hpp"

using namespace hvm;
using namespace hvm::aml;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;
Bytes B(std::initializer_list<uint8_t> b) {
    return Bytes(b);
}

uint8_t sum(const uint8_t* p, size_t n) {
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++) s = uint8_t(s + p[i]);
    return s;
}
uint32_t rd32(const uint8_t* p) {
    return p[0] | p[1] << 8 | p[2] << 16 | uint32_t(p[3]) << 24;
}

PcAcpiConfig smp2_m1024(bool fdc) {
    PcAcpiConfig c;
    c.apic_ids = {0, 1};
    c.present_cpus = 2;
    c.ram_below_4g = 1ull << 30;
    c.fdc = fdc;
    return c;
}

struct Placed {
    GuestMemory mem;
    uint8_t* ram = nullptr;
    LoaderReplayResult res;
    PcAcpiBlobs blobs;
};

// Replays the loader with SeaBIOS's placement of the reference run: the tables at the top of the
// 1 GiB of RAM (0x3FFE0000), the RSDP in the F-segment.
void place(Placed& p, const PcAcpiConfig& cfg) {
    p.blobs = build_pc_acpi(cfg);
    p.ram = p.mem.allocate(1ull << 30, "ram");
    p.mem.add_region({0, 1ull << 30, p.ram, false, "ram"});
    BumpLoaderAllocator alloc(0x3FF00000, 0x40000000, 0xF59D0, 0x100000);
    auto files = [&](std::string_view n) -> const Bytes* {
        if (n == acpi::kTablesFile) return &p.blobs.tables;
        if (n == acpi::kRsdpFile) return &p.blobs.rsdp;
        return nullptr;
    };
    p.res = replay_table_loader(p.blobs.loader, files, alloc, p.mem);
}

std::string read_text(const fs::path& p) {
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// iasl -d one table; returns the disassembly without the lines that name the date, the file or
// the iasl version.
std::string disassemble(const fs::path& dir, const std::string& name, const uint8_t* data,
                        size_t len) {
    fs::path dat = dir / (name + ".dat");
    std::ofstream(dat, std::ios::binary).write(reinterpret_cast<const char*>(data), long(len));
    std::string cmd =
        "cd '" + dir.string() + "' && iasl -d " + name + ".dat > " + name + ".log 2>&1";
    int rc = std::system(cmd.c_str());
    std::string log = read_text(dir / (name + ".log"));
    CHECK_MESSAGE(rc == 0, log);
    CHECK_MESSAGE(log.find("Error") == std::string::npos, log);
    CHECK_MESSAGE(log.find("Warning") == std::string::npos, log);
    std::istringstream in(read_text(dir / (name + ".dsl")));
    std::string out, line;
    while (std::getline(in, line)) {
        if (line.find("Disassembly of") != std::string::npos ||
            line.find("Disassembler version") != std::string::npos ||
            line.find("Copyright (c)") != std::string::npos)
            continue;
        out += line + "\n";
    }
    return out;
}

void compare_golden(const PcAcpiConfig& cfg, const std::string& golden, bool may_regen) {
    if (std::system("command -v iasl > /dev/null 2>&1") != 0) {
        FAIL("iasl (acpica-tools) is not installed");
        return;
    }
    Placed p;
    place(p, cfg);
    fs::path gdir = fs::path(__FILE__).parent_path() / "golden" / golden;
    char tmpl[] = "/tmp/hvm-acpi-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    fs::path tmp(tmpl);
    bool regen = may_regen && std::getenv("HVM_REGEN_GOLDEN");
    if (regen) fs::create_directories(gdir);
    uint64_t base = p.res.addresses.at(acpi::kTablesFile);
    for (const auto& t : p.blobs.layout) {
        std::string name = t.signature == "FACP" ? "facp" : t.signature == "APIC" ? "apic" : "";
        if (name.empty())
            for (char c : t.signature) name += char(std::tolower(static_cast<unsigned char>(c)));
        std::string dsl = disassemble(tmp, name, p.ram + base + t.offset, t.length);
        if (regen) {
            std::ofstream(gdir / (name + ".dsl")) << dsl;
            continue;
        }
        std::string want = read_text(gdir / (name + ".dsl"));
        CHECK_MESSAGE(!want.empty(), "missing golden " << (gdir / (name + ".dsl")).string());
        CHECK_MESSAGE(dsl == want, "table " << t.signature << " differs from " << golden << "; see "
                                            << (tmp / (name + ".dsl")).string());
    }
}

} // namespace

TEST_CASE("AML PkgLength uses 1 to 4 bytes") {
    CHECK(pkg_length(0x3E, true) == B({0x3F}));              // 62 + 1 = 63 fits one byte
    CHECK(pkg_length(0x3F, true) == B({0x41, 0x04}));        // 63 + 2 = 65 = 0x41
    CHECK(pkg_length(0xFFD, true) == B({0x4F, 0xFF}));       // 0xFFF: largest two-byte value
    CHECK(pkg_length(0xFFE, true) == B({0x81, 0x00, 0x01})); // 0x1001
    CHECK(pkg_length(0xFFFFD, true) == B({0xC1, 0x00, 0x00, 0x01})); // 0x100001
    CHECK(pkg_length(32, false) == B({0x20})); // field unit: the plain bit count
    CHECK_THROWS_AS(pkg_length(1u << 28, true), std::invalid_argument);
}

TEST_CASE("AML NameString forms") {
    CHECK(name_string("_SB").bytes == B({'_', 'S', 'B', '_'}));
    CHECK(name_string("\\").bytes == B({0x5C, 0x00}));
    CHECK(name_string("^^FOO").bytes == B({0x5E, 0x5E, 'F', 'O', 'O', '_'}));
    CHECK(name_string("\\_SB.PCI0").bytes ==
          B({0x5C, 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'}));
    CHECK(name_string("\\_SB.PCI0.PRES").bytes ==
          B({0x5C, 0x2F, 3, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'P', 'R', 'E', 'S'}));
    CHECK_THROWS_AS(name_string("TOOLONG"), std::invalid_argument);
    CHECK_THROWS_AS(name_string("1ABC"), std::invalid_argument);
    CHECK_THROWS_AS(name_string("A..B"), std::invalid_argument);
    CHECK_THROWS_AS(name_string(""), std::invalid_argument);
}

TEST_CASE("AML integers take the shortest encoding") {
    CHECK(integer(0).bytes == B({0x00}));
    CHECK(integer(1).bytes == B({0x01}));
    CHECK(ones().bytes == B({0xFF}));
    CHECK(integer(2).bytes == B({0x0A, 0x02}));
    CHECK(integer(0xFF).bytes == B({0x0A, 0xFF}));
    CHECK(integer(0x100).bytes == B({0x0B, 0x00, 0x01}));
    CHECK(integer(0x10000).bytes == B({0x0C, 0x00, 0x00, 0x01, 0x00}));
    CHECK(integer(0x100000000ull).bytes == B({0x0E, 0, 0, 0, 0, 1, 0, 0, 0}));
    CHECK(eisa_id("PNP0A03").bytes == B({0x0C, 0x41, 0xD0, 0x0A, 0x03}));
    CHECK(string("AB").bytes == B({0x0D, 'A', 'B', 0}));
}

TEST_CASE("AML containers and resource descriptors") {
    // Method (FOO, 1, Serialized) { Return (Arg0) }
    CHECK(method("FOO", 1, true, return_(arg(0))).bytes ==
          B({0x14, 0x08, 'F', 'O', 'O', '_', 0x09, 0xA4, 0x68}));
    CHECK(package(2, seq({zero(), one()})).bytes == B({0x12, 0x04, 0x02, 0x00, 0x01}));
    CHECK(if_(one(), break_()).bytes == B({0xA0, 0x03, 0x01, 0xA5}));
    CHECK(store(local(0), arg(1)).bytes == B({0x70, 0x60, 0x69}));
    // ResourceTemplate () { IRQNoFlags () {4} }: Buffer(5) {22 10 00 79 00}
    CHECK(resource_template(irq_no_flags(4)).bytes ==
          B({0x11, 0x08, 0x0A, 0x05, 0x22, 0x10, 0x00, 0x79, 0x00}));
    CHECK(io_port(0x3F8, 0x3F8, 0, 8).bytes == B({0x47, 1, 0xF8, 3, 0xF8, 3, 0, 8}));
    uint32_t irqs[] = {9};
    CHECK(interrupt(true, IrqTrigger::Level, IrqPolarity::ActiveHigh, true, irqs).bytes ==
          B({0x89, 6, 0, 0x09, 1, 9, 0, 0, 0}));
    CHECK_THROWS_AS(irq_no_flags(16), std::invalid_argument);
}

TEST_CASE("every table has the right length, header and checksum after the loader ran") {
    Placed p;
    place(p, smp2_m1024(false));
    REQUIRE(p.blobs.tables.size() == acpi::kTablesBlobAlign);
    REQUIRE(p.blobs.loader.size() == acpi::kLoaderBlobAlign);
    uint64_t base = p.res.addresses.at(acpi::kTablesFile);
    CHECK(base == 0x3FFE0000);
    CHECK(base % 64 == 0);
    std::map<std::string, uint64_t> at;
    for (const auto& t : p.blobs.layout) {
        const uint8_t* d = p.ram + base + t.offset;
        CHECK(std::string(reinterpret_cast<const char*>(d), 4) == t.signature);
        CHECK(rd32(d + 4) == t.length);
        if (t.signature != "FACS") {
            CHECK_MESSAGE(sum(d, t.length) == 0, t.signature);
            CHECK(std::string(reinterpret_cast<const char*>(d + 10), 6) == "BOCHS ");
        }
        at[t.signature] = base + t.offset;
    }
    // RSDP in the F-segment, 16-byte aligned, checksummed, pointing at the RSDT.
    uint64_t rsdp = p.res.addresses.at(acpi::kRsdpFile);
    CHECK(rsdp >= 0xE0000);
    CHECK(rsdp % 16 == 0);
    const uint8_t* r = p.ram + rsdp;
    CHECK(std::string(reinterpret_cast<const char*>(r), 8) == "RSD PTR ");
    CHECK(sum(r, 20) == 0);
    CHECK(r[15] == 0); // revision 0
    CHECK(rd32(r + 16) == at["RSDT"]);
    // RSDT -> FACP, APIC, HPET, WAET; FACP -> FACS, DSDT.
    const uint8_t* rsdt = p.ram + at["RSDT"];
    CHECK(rd32(rsdt + 4) == 36 + 16);
    CHECK(rd32(rsdt + 36) == at["FACP"]);
    CHECK(rd32(rsdt + 40) == at["APIC"]);
    CHECK(rd32(rsdt + 44) == at["HPET"]);
    CHECK(rd32(rsdt + 48) == at["WAET"]);
    const uint8_t* facp = p.ram + at["FACP"];
    CHECK(rd32(facp + 36) == at["FACS"]);
    CHECK(rd32(facp + 40) == at["DSDT"]);
    CHECK(facp[8] == 1);
    CHECK(rd32(facp + 56) == 0x600);
    CHECK(rd32(facp + 80) == 0xAFE0);
    CHECK(rd32(facp + 112) == 0x80A5);
}

TEST_CASE("MADT lists every possible CPU and the pc interrupt overrides") {
    PcAcpiConfig c = smp2_m1024(false);
    c.apic_ids = {0, 1, 2, 3};
    c.present_cpus = 3;
    auto m = build_madt(c);
    REQUIRE(m.size() == 44 + 4 * 8 + 12 + 5 * 10 + 6);
    CHECK(rd32(&m[44 + 3 * 8 + 4]) == 0); // CPU 3 not present: disabled
    CHECK(rd32(&m[44 + 2 * 8 + 4]) == 1);
    const uint8_t* iso0 = &m[44 + 32 + 12];
    CHECK(iso0[0] == 2);
    CHECK(iso0[3] == 0);
    CHECK(rd32(iso0 + 4) == 2);
    c.apic_ids = {0, 0};
    CHECK_THROWS_AS(build_madt(c), UserError);
}

TEST_CASE("golden: tables for -smp 2 -m 1024 with QEMU's device set equal QEMU 7.2's") {
    compare_golden(smp2_m1024(true), "qemu-7.2-pc", false);
}

TEST_CASE("golden: hvm's pc tables for -smp 2 -m 1024") {
    compare_golden(smp2_m1024(false), "hvm-pc-smp2-m1024", true);
}

TEST_CASE("the DSDT scales with the CPU count and devices") {
    PcAcpiConfig c = smp2_m1024(false);
    c.apic_ids.clear();
    for (uint32_t i = 0; i < 8; i++) c.apic_ids.push_back(i);
    c.present_cpus = 4;
    c.hpet = false;
    auto d = build_dsdt(c);
    std::string s(d.begin(), d.end());
    CHECK(s.find("C007") != std::string::npos);
    CHECK(s.find("C008") == std::string::npos);
    CHECK(s.find("HPTM") == std::string::npos);
    CHECK(s.find("FDC0") == std::string::npos);
    auto blobs = build_pc_acpi(c);
    bool has_hpet = false;
    for (const auto& t : blobs.layout) has_hpet |= t.signature == "HPET";
    CHECK_FALSE(has_hpet);
}

TEST_CASE("table-loader replay rejects malformed commands") {
    GuestMemory mem;
    uint8_t* ram = mem.allocate(1 << 20, "ram");
    mem.add_region({0, 1 << 20, ram, false, "ram"});
    Bytes file(64, 0);
    auto files = [&](std::string_view n) -> const Bytes* { return n == "f" ? &file : nullptr; };
    auto run = [&](const TableLoader& l) {
        BumpLoaderAllocator a(0x80000, 0x90000);
        return replay_table_loader(l.blob(), files, a, mem);
    };
    {
        TableLoader l;
        l.allocate("f", 16, LoaderZone::High);
        l.add_pointer("f", 60, 8, "f"); // 60 + 8 > 64
        CHECK_THROWS_AS(run(l), LoaderError);
    }
    {
        TableLoader l;
        l.allocate("f", 16, LoaderZone::High);
        l.add_checksum("f", 0, 10, 60); // range past the end
        CHECK_THROWS_AS(run(l), LoaderError);
    }
    {
        TableLoader l;
        l.add_checksum("f", 0, 0, 4); // not allocated
        CHECK_THROWS_AS(run(l), LoaderError);
    }
    {
        TableLoader l;
        l.allocate("missing", 16, LoaderZone::High);
        CHECK_THROWS_AS(run(l), LoaderError);
    }
    {
        Bytes script(loader::kEntrySize, 'x'); // ALLOCATE with a name lacking its NUL
        script[0] = 1, script[1] = script[2] = script[3] = 0;
        BumpLoaderAllocator a(0x80000, 0x90000);
        CHECK_THROWS_AS(replay_table_loader(script, files, a, mem), LoaderError);
    }
    {
        // Unknown commands are skipped; pointers and checksums land in guest memory.
        TableLoader l;
        l.allocate("f", 64, LoaderZone::FSeg);
        Bytes unknown(loader::kEntrySize, 0);
        unknown[0] = 0x77;
        file[0] = 0x10; // the pointer's initial value is an offset inside the file
        l.add_pointer("f", 0, 4, "f");
        l.add_checksum("f", 8, 0, 64);
        Bytes script = l.blob();
        script.insert(script.begin() + loader::kEntrySize, unknown.begin(), unknown.end());
        BumpLoaderAllocator a(0x80000, 0x90000, 0xE0000, 0x100000);
        auto r = replay_table_loader(script, files, a, mem);
        CHECK(r.addresses.at("f") == 0xE0000);
        CHECK(rd32(ram + 0xE0000) == 0xE0010);
        CHECK(sum(ram + 0xE0000, 64) == 0);
    }
    CHECK_THROWS_AS(TableLoader().allocate(std::string(56, 'a'), 16, LoaderZone::High),
                    std::invalid_argument);
}
