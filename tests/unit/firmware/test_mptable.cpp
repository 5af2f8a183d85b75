// The MP tables are read back by a small parser written from the MP specification 1.4, the way
// Linux's arch/x86/kernel/mpparse.c finds them: scan for "_MP_" on 16-byte boundaries, check both
// checksums, then walk the entries by type.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "firmware/mptable.hpp"

using namespace hvm;

namespace {

uint32_t rd(const std::vector<uint8_t>& v, size_t off, size_t n) {
    if (off + n > v.size()) throw std::runtime_error("read past the table");
    uint32_t x = 0;
    for (size_t i = 0; i < n; i++) x |= uint32_t(v[off + i]) << (8 * i);
    return x;
}

uint8_t sum(const std::vector<uint8_t>& v) {
    uint8_t s = 0;
    for (auto b : v) s = uint8_t(s + b);
    return s;
}

struct Cpu {
    uint8_t apic_id, version, flags;
    uint32_t signature, features;
};
struct IntEntry {
    uint8_t type, irq_type;
    uint16_t flags;
    uint8_t src_bus, src_irq, dst, dst_pin;
};
struct Parsed {
    uint32_t floating_at = 0, config_at = 0;
    uint16_t declared_count = 0;
    uint32_t lapic = 0;
    std::string oem;
    std::vector<Cpu> cpus;
    std::map<uint8_t, std::string> buses;
    std::vector<std::tuple<uint8_t, uint8_t, uint8_t, uint32_t>> ioapics; // id, ver, flags, addr
    std::vector<IntEntry> io_ints, local_ints;
    size_t entries = 0;
};

Parsed parse(const GuestMemory& mem, uint64_t scan_from, uint64_t scan_to) {
    Parsed p;
    std::vector<uint8_t> fp(16);
    bool found = false;
    for (uint64_t a = scan_from; a + 16 <= scan_to; a += 16) {
        REQUIRE(mem.read(a, fp));
        if (memcmp(fp.data(), "_MP_", 4) == 0) {
            p.floating_at = uint32_t(a);
            found = true;
            break;
        }
    }
    REQUIRE(found);
    CHECK(sum(fp) == 0);
    CHECK(fp[8] == 1);  // length in paragraphs
    CHECK(fp[9] == 4);  // spec 1.4
    CHECK(fp[11] == 0); // a configuration table follows (no default configuration)
    p.config_at = rd(fp, 4, 4);
    std::vector<uint8_t> hdr(44);
    REQUIRE(mem.read(p.config_at, hdr));
    CHECK(memcmp(hdr.data(), "PCMP", 4) == 0);
    std::vector<uint8_t> t(rd(hdr, 4, 2));
    REQUIRE(t.size() >= 44);
    REQUIRE(mem.read(p.config_at, t));
    CHECK(sum(t) == 0);
    CHECK(t[6] == 4);
    p.oem = std::string(reinterpret_cast<const char*>(&t[8]), 8);
    p.declared_count = uint16_t(rd(t, 34, 2));
    p.lapic = rd(t, 36, 4);
    CHECK(rd(t, 40, 2) == 0); // no extended table
    int last_type = -1;
    for (size_t off = 44; off < t.size();) {
        uint8_t type = t[off];
        CHECK(type >= last_type); // entries sorted by type
        last_type = type;
        p.entries++;
        switch (type) {
        case 0:
            p.cpus.push_back(
                {t[off + 1], t[off + 2], t[off + 3], rd(t, off + 4, 4), rd(t, off + 8, 4)});
            off += 20;
            break;
        case 1:
            p.buses[t[off + 1]] = std::string(reinterpret_cast<const char*>(&t[off + 2]), 6);
            off += 8;
            break;
        case 2:
            p.ioapics.emplace_back(t[off + 1], t[off + 2], t[off + 3], rd(t, off + 4, 4));
            off += 8;
            break;
        case 3:
        case 4: {
            IntEntry e{type,       t[off + 1], uint16_t(rd(t, off + 2, 2)), t[off + 4], t[off + 5],
                       t[off + 6], t[off + 7]};
            (type == 3 ? p.io_ints : p.local_ints).push_back(e);
            off += 8;
            break;
        }
        default: FAIL("unknown MP entry type " << int(type)); return p;
        }
    }
    return p;
}

struct Ram {
    GuestMemory mem;
    Ram() {
        uint8_t* low = mem.allocate(0xa0000, "low");
        mem.add_region({0, 0xa0000, low, false, "low"});
    }
};

Parsed build_and_parse(const MpTableConfig& cfg) {
    Ram ram;
    auto table = build_mp_config_table(cfg);
    auto pl = place_mp_table_in(ram.mem, mptable::kEbdaAddr, mptable::kEbdaEnd, table);
    CHECK(pl.floating_addr == 0x9fc00);
    CHECK(pl.config_addr == 0x9fc10);
    // Linux scans the last KiB of base memory (639 KiB) for the floating pointer.
    return parse(ram.mem, 639 * 0x400, 640 * 0x400);
}

void check_common(const Parsed& p, unsigned ncpus) {
    CHECK(p.declared_count == p.entries);
    CHECK(p.lapic == 0xfee00000);
    CHECK(p.oem == "BOCHSCPU");
    REQUIRE(p.cpus.size() == ncpus);
    for (unsigned i = 0; i < ncpus; i++) {
        CHECK(p.cpus[i].apic_id == i);
        CHECK(p.cpus[i].flags == (i == 0 ? 3 : 1)); // enabled, BSP only on CPU 0
        CHECK(p.cpus[i].version == 0x14);
    }
    // PCI bus 0, ISA bus 1 (SeaBIOS order).
    REQUIRE(p.buses.size() == 2);
    CHECK(p.buses.at(0) == "PCI   ");
    CHECK(p.buses.at(1) == "ISA   ");
    REQUIRE(p.ioapics.size() == 1);
    CHECK(std::get<0>(p.ioapics[0]) == 0);
    CHECK(std::get<1>(p.ioapics[0]) == 0x11);
    CHECK(std::get<2>(p.ioapics[0]) == 1);
    CHECK(std::get<3>(p.ioapics[0]) == 0xfec00000);
    // ISA IRQs: 0 -> INTIN2, none for IRQ2, identity for the others, none for SeaBIOS's PCI IRQs.
    std::map<uint8_t, uint8_t> isa;
    for (auto& e : p.io_ints)
        if (e.src_bus == 1) {
            CHECK(e.irq_type == 0);
            CHECK(e.flags == 0);
            CHECK(e.dst == 0);
            CHECK(isa.count(e.src_irq) == 0);
            isa[e.src_irq] = e.dst_pin;
        }
    CHECK(isa.size() == 11);
    CHECK(isa.at(0) == 2);
    CHECK(isa.count(2) == 0);
    for (uint8_t irq : {1, 3, 4, 6, 7, 8, 12, 13, 14, 15}) CHECK(isa.at(irq) == irq);
    for (uint8_t irq : {5, 9, 10, 11}) CHECK(isa.count(irq) == 0);
    // ExtINT on the BSP's LINT0, NMI on every CPU's LINT1.
    REQUIRE(p.local_ints.size() == 2);
    CHECK(p.local_ints[0].irq_type == 3);
    CHECK(p.local_ints[0].dst == 0);
    CHECK(p.local_ints[0].dst_pin == 0);
    CHECK(p.local_ints[1].irq_type == 1);
    CHECK(p.local_ints[1].dst == 0xff);
    CHECK(p.local_ints[1].dst_pin == 1);
}

} // namespace

TEST_CASE("MP table for 1 CPU") {
    MpTableConfig cfg;
    auto p = build_and_parse(cfg);
    check_common(p, 1);
    CHECK(p.entries == 1 + 2 + 1 + 11 + 2);
    CHECK(build_mp_config_table(cfg).size() == 44 + 20 + 8 * 16);
}

TEST_CASE("MP table for 2 CPUs") {
    MpTableConfig cfg;
    cfg.cpus = 2;
    cfg.cpu_signature = 0x663;
    cfg.cpu_features = 0x078bfbff;
    auto p = build_and_parse(cfg);
    check_common(p, 2);
    CHECK(p.entries == 2 + 2 + 1 + 11 + 2);
    CHECK(p.cpus[1].signature == 0x663);
    CHECK(p.cpus[1].features == 0x078bfbff);
}

TEST_CASE("MP table for 8 CPUs with PCI interrupt sources") {
    MpTableConfig cfg;
    cfg.cpus = 8;
    cfg.pci_interrupts = {{0, 1, 4, 11}, {0, 3, 1, 11}};
    auto p = build_and_parse(cfg);
    check_common(p, 8);
    CHECK(p.entries == 8 + 2 + 1 + 2 + 11 + 2);
    // PCI sources come first, source IRQ = device << 2 | (pin - 1), active high.
    REQUIRE(p.io_ints.size() == 13);
    CHECK(p.io_ints[0].src_bus == 0);
    CHECK(p.io_ints[0].src_irq == ((1 << 2) | 3));
    CHECK(p.io_ints[0].dst_pin == 11);
    CHECK(p.io_ints[0].flags == 1);
    CHECK(p.io_ints[1].src_irq == (3 << 2));
}

TEST_CASE("MP table: possible but absent CPUs are listed disabled; no irq0 override") {
    MpTableConfig cfg;
    cfg.cpus = 2;
    cfg.max_cpus = 4;
    cfg.irq0_override = false;
    cfg.pci_bus = false;
    Ram ram;
    auto table = build_mp_config_table(cfg);
    place_mp_table(ram.mem, 0x9fc00, 0x9fd00, table);
    auto p = parse(ram.mem, 0x9fc00, 0xa0000);
    CHECK(p.config_at == 0x9fd00);
    REQUIRE(p.cpus.size() == 4);
    CHECK(p.cpus[1].flags == 1);
    CHECK(p.cpus[2].flags == 0);
    CHECK(p.cpus[3].flags == 0);
    REQUIRE(p.buses.size() == 1);
    CHECK(p.buses.at(0) == "ISA   ");
    std::map<uint8_t, uint8_t> isa;
    for (auto& e : p.io_ints) isa[e.src_irq] = e.dst_pin;
    CHECK(isa.at(0) == 0);
    CHECK(isa.at(2) == 2);
    CHECK(p.local_ints[0].src_bus == 0);
}

TEST_CASE("MP table: bad configurations and placements are refused") {
    MpTableConfig cfg;
    cfg.cpus = 0;
    CHECK_THROWS_AS(build_mp_config_table(cfg), std::invalid_argument);
    cfg.cpus = 256;
    CHECK_THROWS_AS(build_mp_config_table(cfg), std::invalid_argument);
    cfg.cpus = 255;
    CHECK(build_mp_config_table(cfg).size() == 44 + 255 * 20 + 8 * 16);
    cfg.cpus = 4;
    cfg.max_cpus = 2;
    CHECK_THROWS_AS(build_mp_config_table(cfg), std::invalid_argument);
    MpTableConfig pci;
    pci.pci_interrupts = {{0, 32, 1, 10}};
    CHECK_THROWS_AS(build_mp_config_table(pci), std::invalid_argument);
    pci.pci_interrupts = {{0, 2, 5, 10}};
    CHECK_THROWS_AS(build_mp_config_table(pci), std::invalid_argument);

    Ram ram;
    auto table = build_mp_config_table(MpTableConfig{});
    CHECK_THROWS_AS(place_mp_table(ram.mem, 0x9fc08, 0x9fd00, table), std::invalid_argument);
    CHECK_THROWS_AS(place_mp_table(ram.mem, 0x9fc00, 0x9fbf0, table), std::invalid_argument);
    CHECK_THROWS_AS(place_mp_table(ram.mem, 0xf0000, 0xf0010, table), std::runtime_error);
    // 45 CPUs no longer fit in the 1 KiB EBDA.
    MpTableConfig many;
    many.cpus = 45;
    CHECK_THROWS_AS(place_mp_table_in(ram.mem, mptable::kEbdaAddr, mptable::kEbdaEnd,
                                      build_mp_config_table(many)),
                    UserError);
}

TEST_CASE("MP floating pointer bytes") {
    auto f = build_mp_floating_pointer(0x000f1234);
    std::vector<uint8_t> v(f.begin(), f.end());
    CHECK(memcmp(v.data(), "_MP_", 4) == 0);
    CHECK(rd(v, 4, 4) == 0xf1234);
    CHECK(sum(v) == 0);
    CHECK(v[12] == 0); // IMCRP clear: virtual wire mode
}
