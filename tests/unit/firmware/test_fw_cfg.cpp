// fw_cfg through its registers (PIO on a strict Bus, DMA descriptors in guest RAM), the pc
// content QEMU 7.2 serves, and the SMBIOS tables, byte for byte against QEMU's.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "base/error.hpp"
#include "firmware/fw_cfg.hpp"
#include "firmware/fw_cfg_pc.hpp"
#include "firmware/smbios/smbios.hpp"
#include "vmexit/bus.hpp"

using namespace hvm;
using namespace hvm::fw_cfg;

namespace {

using Bytes = std::vector<uint8_t>;
constexpr uint64_t kRam = 1 << 20;

struct Rig {
    GuestMemory mem;
    uint8_t* ram;
    Bus pio{"pio"};
    FwCfg fw{mem};
    Rig() {
        ram = mem.allocate(kRam, "ram");
        mem.add_region({0, kRam, ram, false, "ram"});
        fw.attach(pio);
    }
    void outw(uint16_t port, uint16_t v) {
        uint8_t b[2] = {uint8_t(v), uint8_t(v >> 8)};
        pio.write(port, b);
    }
    void outl(uint16_t port, uint32_t v) {
        uint8_t b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
        pio.write(port, b);
    }
    uint8_t inb(uint16_t port) {
        uint8_t b[1];
        pio.read(port, b);
        return b[0];
    }
    uint32_t inl(uint16_t port) {
        uint8_t b[4];
        pio.read(port, b);
        return b[0] | b[1] << 8 | b[2] << 16 | uint32_t(b[3]) << 24;
    }
    Bytes read_pio(uint16_t key, size_t n) {
        outw(kIoBase, key);
        Bytes out(n);
        for (auto& b : out) b = inb(kIoBase + 1);
        return out;
    }
    // Writes a descriptor at `at` and starts it the way SeaBIOS does: outl(be32(at), 0x518).
    uint32_t dma(uint64_t at, uint32_t control, uint32_t length, uint64_t address) {
        uint8_t d[16];
        for (int i = 0; i < 4; i++) d[i] = uint8_t(control >> (24 - 8 * i));
        for (int i = 0; i < 4; i++) d[4 + i] = uint8_t(length >> (24 - 8 * i));
        for (int i = 0; i < 8; i++) d[8 + i] = uint8_t(address >> (56 - 8 * i));
        REQUIRE(mem.write(at, d));
        outl(kDmaBase, __builtin_bswap32(uint32_t(at >> 32)));
        outl(kDmaBase + 4, __builtin_bswap32(uint32_t(at)));
        return control_at(at);
    }
    uint32_t control_at(uint64_t at) {
        const uint8_t* p = ram + at;
        return uint32_t(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3];
    }
};

Bytes from_hex(const std::string& h) {
    Bytes b;
    for (size_t i = 0; i + 1 < h.size(); i += 2)
        b.push_back(uint8_t(std::stoi(h.substr(i, 2), nullptr, 16)));
    return b;
}

} // namespace

TEST_CASE("signature and id through the I/O ports") {
    Rig r;
    CHECK(r.read_pio(kSignature, 4) == Bytes{'Q', 'E', 'M', 'U'});
    CHECK(r.read_pio(kId, 4) == Bytes{3, 0, 0, 0});
    // Past the end of an item reads 0; so does an invalid selector.
    CHECK(r.read_pio(kSignature, 6) == Bytes{'Q', 'E', 'M', 'U', 0, 0});
    CHECK(r.read_pio(0x3FFF, 2) == Bytes{0, 0});
    // The byte at 0x510 reads data too (fw_cfg_comb_mem_ops); a 16-bit read is not valid.
    r.outw(kIoBase, kSignature);
    CHECK(r.inb(kIoBase) == 'Q');
    CHECK(r.inb(kIoBase + 1) == 'E');
    // Byte writes are ignored: the offset is unchanged.
    uint8_t one[1] = {7};
    r.pio.write(kIoBase + 1, one);
    CHECK(r.inb(kIoBase + 1) == 'M');
    // Bit 14 (the old write channel) is ignored when selecting.
    CHECK(r.read_pio(kWriteChannel | kSignature, 1) == Bytes{'Q'});
    // DMA register reads give "QEMU CFG" big-endian.
    CHECK(r.inl(kDmaBase) == __builtin_bswap32(0x51454D55));
    CHECK(r.inl(kDmaBase + 4) == __builtin_bswap32(0x20434647));
}

TEST_CASE("the file directory is sorted, big-endian, selectors from 0x20") {
    Rig r;
    r.fw.add_file("zeta", Bytes(300, 1));
    r.fw.add_file("alpha", Bytes{1, 2, 3});
    r.fw.add_file("etc/mid", {});
    Bytes d = r.read_pio(kFileDir, 4 + 3 * 64);
    CHECK(d[3] == 3);
    auto entry = [&](int i, uint32_t size, uint16_t sel, const char* name) {
        const uint8_t* e = &d[4 + 64 * i];
        CHECK((uint32_t(e[0]) << 24 | e[1] << 16 | e[2] << 8 | e[3]) == size);
        CHECK((e[4] << 8 | e[5]) == sel);
        CHECK(std::string(reinterpret_cast<const char*>(e + 8)) == name);
    };
    entry(0, 3, 0x20, "alpha");
    entry(1, 0, 0x21, "etc/mid");
    entry(2, 300, 0x22, "zeta");
    CHECK(r.read_pio(0x20, 4) == Bytes{1, 2, 3, 0});
    CHECK_THROWS_AS(r.fw.add_file("alpha", {}), UserError);
    CHECK_THROWS_AS(r.fw.add_file(std::string(56, 'x'), {}), std::invalid_argument);
    for (int i = 0; i < 29; i++) r.fw.add_file("f" + std::to_string(i), {});
    CHECK_THROWS_AS(r.fw.add_file("one-too-many", {}), UserError);
}

TEST_CASE("DMA read, skip and select") {
    Rig r;
    Bytes data(5000);
    for (size_t i = 0; i < data.size(); i++) data[i] = uint8_t(i * 7);
    r.fw.add_file("blob", data);
    uint16_t sel = *r.fw.file_selector("blob");
    // SELECT + READ 100 bytes, then SKIP 100, then READ the rest plus 50 bytes past the end.
    CHECK(r.dma(0x1000, uint32_t(sel) << 16 | kDmaSelect | kDmaRead, 100, 0x2000) == 0);
    CHECK(std::memcmp(r.ram + 0x2000, data.data(), 100) == 0);
    CHECK(r.dma(0x1000, kDmaSkip, 100, 0) == 0);
    std::memset(r.ram + 0x3000, 0xAA, 5000);
    CHECK(r.dma(0x1000, kDmaRead, 4850, 0x3000) == 0);
    CHECK(std::memcmp(r.ram + 0x3000, data.data() + 200, 4800) == 0);
    for (int i = 0; i < 50; i++) CHECK(r.ram[0x3000 + 4800 + i] == 0);
    CHECK(r.fw.dma_address() == 0);
    // The byte interface continues where DMA left off (nothing left: 0).
    CHECK(r.inb(kIoBase + 1) == 0);
    // A 64-bit DMA address write is also accepted; 16-bit writes are not.
    uint8_t w2[2] = {0, 0};
    r.pio.write(kDmaBase + 4, w2);
    CHECK(r.fw.dma_address() == 0);
}

TEST_CASE("DMA write only into writable items, never past their end") {
    Rig r;
    r.fw.add_file("ro", Bytes(8, 0));
    r.fw.add_file("rw", Bytes(8, 0), true);
    uint32_t written = 0;
    r.fw.set_write_callback("rw", [&](uint32_t off, uint32_t len) { written = off + len; });
    std::memcpy(r.ram + 0x2000, "ABCDEFGHIJ", 10);
    uint32_t ro = *r.fw.file_selector("ro"), rw = *r.fw.file_selector("rw");
    CHECK(r.dma(0x1000, ro << 16 | kDmaSelect | kDmaWrite, 4, 0x2000) == kDmaError);
    CHECK(*r.fw.find_file("ro") == Bytes(8, 0));
    CHECK(r.dma(0x1000, rw << 16 | kDmaSelect | kDmaSkip, 2, 0) == 0);
    CHECK(r.dma(0x1000, kDmaWrite, 4, 0x2000) == 0);
    CHECK(*r.fw.find_file("rw") == Bytes{0, 0, 'A', 'B', 'C', 'D', 0, 0});
    CHECK(written == 6);
    // 4 more bytes from offset 6 would cross the end: refused, nothing written.
    CHECK(r.dma(0x1000, kDmaWrite, 4, 0x2000) == kDmaError);
    CHECK(*r.fw.find_file("rw") == Bytes{0, 0, 'A', 'B', 'C', 'D', 0, 0});
    // Control with none of READ/WRITE/SKIP: a no-op that succeeds.
    CHECK(r.dma(0x1000, 0, 100, 0x2000) == 0);
}

TEST_CASE("hostile DMA: descriptors and buffers outside RAM, wrapping lengths") {
    Rig r;
    r.fw.add_file("blob", Bytes(64, 9));
    uint32_t sel = *r.fw.file_selector("blob");
    // Descriptor outside RAM: nothing happens on the host, no crash.
    r.outl(kDmaBase, 0);
    r.outl(kDmaBase + 4, __builtin_bswap32(0xFFFFFFF8));
    r.outl(kDmaBase, __builtin_bswap32(0xFFFFFFFF));
    r.outl(kDmaBase + 4, __builtin_bswap32(0xFFFFFFF0));
    // Descriptor straddling the end of RAM.
    r.outl(kDmaBase, 0);
    r.outl(kDmaBase + 4, __builtin_bswap32(uint32_t(kRam - 8)));
    // Buffer outside RAM, and a buffer crossing the end of RAM.
    CHECK(r.dma(0x1000, sel << 16 | kDmaSelect | kDmaRead, 64, 0x100000000ull) == kDmaError);
    CHECK(r.dma(0x1000, sel << 16 | kDmaSelect | kDmaRead, 64, kRam - 32) == kDmaError);
    // Address + length wrapping past 2^64 is refused before anything is written.
    CHECK(r.dma(0x1000, sel << 16 | kDmaSelect | kDmaRead, 0x100, ~0ull - 0x10) == kDmaError);
    // A 4 GiB - 1 zero-fill past the end does not fit in 1 MiB of RAM: error, no crash.
    CHECK(r.dma(0x1000, sel << 16 | kDmaSelect | kDmaSkip, 64, 0) == 0);
    CHECK(r.dma(0x1000, kDmaRead, 0xFFFFFFFF, 0x2000) == kDmaError);
    // Write to an invalid selector: error.
    CHECK(r.dma(0x1000, 0x3FFFu << 16 | kDmaSelect | kDmaWrite, 4, 0x2000) == kDmaError);
}

TEST_CASE("lazy content: select callbacks may rebuild a file") {
    Rig r;
    r.fw.add_file("lazy", Bytes{1});
    int calls = 0;
    r.fw.set_select_callback("lazy", [&] {
        calls++;
        r.fw.modify_file("lazy", Bytes{4, 5, 6});
    });
    CHECK(r.read_pio(*r.fw.file_selector("lazy"), 3) == Bytes{4, 5, 6});
    CHECK(calls == 1);
    Bytes d = r.read_pio(kFileDir, 8);
    CHECK(d[7] == 3); // the directory shows the new size
}

TEST_CASE("save and load restore the selection, offset and writable content") {
    Rig a, b;
    for (Rig* r : {&a, &b}) r->fw.add_file("rw", Bytes(4, 0), true);
    std::memcpy(a.ram + 0x2000, "WXYZ", 4);
    a.dma(0x1000, uint32_t(*a.fw.file_selector("rw")) << 16 | kDmaSelect | kDmaWrite, 4, 0x2000);
    a.outw(kIoBase, kSignature);
    a.inb(kIoBase + 1);
    StateWriter w;
    a.fw.save(w);
    StateReader rd(w.data());
    b.fw.load(rd);
    CHECK(*b.fw.find_file("rw") == Bytes{'W', 'X', 'Y', 'Z'});
    CHECK(b.inb(kIoBase + 1) == 'E');
    // A state naming a file this machine lacks is refused.
    Rig c;
    StateReader rd2(w.data());
    CHECK_THROWS_AS(c.fw.load(rd2), StateError);
    // A corrupt offset is refused.
    Bytes bad = w.data();
    Rig d;
    d.fw.add_file("rw", Bytes(4, 0), true);
    StateWriter w2;
    w2.begin("fw_cfg", 1);
    w2.put(uint16_t(kSignature));
    w2.put(uint32_t(99));
    w2.put(uint64_t(0));
    w2.put(uint32_t(0));
    StateReader rd3(w2.data());
    CHECK_THROWS_AS(d.fw.load(rd3), StateError);
}

namespace {
PcFwCfgConfig reference_config() {
    PcFwCfgConfig c;
    c.ram_size = 1ull << 30;
    c.present_cpus = c.max_cpus = 2;
    c.acpi.apic_ids = {0, 1};
    c.acpi.present_cpus = 2;
    c.acpi.ram_below_4g = 1ull << 30;
    c.smbios.cores_per_socket = 2;
    c.smbios.ram_size = 1ull << 30;
    c.smbios.ram_ranges = {{0, 1ull << 30}};
    c.smbios.cpuid_signature = 0x00060fb1;
    c.smbios.cpuid_features = 0x078bfbfd;
    // KVM reservation + RAM, as bios/e820's pc_fw_cfg_e820_blob gives without the AMD hole.
    c.e820 = from_hex("00c0fffe0000000000400000000000000200000000000000000000000000004000000000"
                      "01000000");
    return c;
}
} // namespace

TEST_CASE("pc content: legacy keys and files as QEMU 7.2 serves them") {
    Rig r;
    populate_pc_fw_cfg(r.fw, reference_config());
    CHECK(r.read_pio(kRamSize, 8) == Bytes{0, 0, 0, 0x40, 0, 0, 0, 0});
    CHECK(r.read_pio(kNbCpus, 2) == Bytes{2, 0});
    CHECK(r.read_pio(kMaxCpus, 2) == Bytes{2, 0});
    CHECK(r.read_pio(kIrq0Override, 4) == Bytes{1, 0, 0, 0});
    CHECK(r.read_pio(kUuid, 16) == Bytes(16, 0));
    Bytes hpet = r.read_pio(kHpet, 13);
    CHECK(hpet == from_hex("0101a28680"
                           "0000d0fe00000000"));
    // The reference directory (pc-platform.md §1.3), without QEMU's TPM log and kvmvapic ROM.
    const char* names[] = {"bios-geometry",
                           "bootorder",
                           "etc/acpi/rsdp",
                           "etc/acpi/tables",
                           "etc/boot-fail-wait",
                           "etc/e820",
                           "etc/smbios/smbios-anchor",
                           "etc/smbios/smbios-tables",
                           "etc/system-states",
                           "etc/table-loader"};
    REQUIRE(r.fw.file_count() == 10);
    for (unsigned i = 0; i < 10; i++) CHECK(r.fw.file_selector(names[i]) == 0x20 + i);
    CHECK(r.fw.find_file("etc/acpi/tables")->size() == 0x20000);
    CHECK(r.fw.find_file("etc/table-loader")->size() == 4096);
    CHECK(*r.fw.find_file("etc/system-states") == Bytes{0x80, 0, 0, 0x81, 0x82, 0x80});
    CHECK(*r.fw.find_file("etc/boot-fail-wait") == Bytes{0xFF, 0xFF, 0xFF, 0xFF});
    CHECK(r.fw.find_file("etc/e820")->size() == 40);
    // QEMU's anchor: "_SM_", checksums and address 0 for SeaBIOS to fill, 8 structures of 321
    // bytes, largest 81 bytes.
    CHECK(*r.fw.find_file("etc/smbios/smbios-anchor") ==
          from_hex("5f534d5f001f0208510000000000000"
                   "05f444d495f00410100000000080028"));
    add_option_rom(r.fw, "linuxboot_dma.bin", Bytes(512, 0x55));
    CHECK(r.fw.file_selector("genroms/linuxboot_dma.bin").has_value());
}

TEST_CASE("-kernel items for the linuxboot option ROM") {
    Rig r;
    LinuxBootFwCfg b;
    b.setup_addr = 0x10000;
    b.setup = Bytes(0x4000, 1);
    b.kernel_addr = 0x100000;
    b.kernel = Bytes(0x10000, 2);
    b.cmdline_addr = 0x20000;
    b.cmdline = "console=ttyS0";
    add_linux_boot(r.fw, b);
    CHECK(r.read_pio(kSetupAddr, 4) == Bytes{0, 0, 1, 0});
    CHECK(r.read_pio(kKernelSize, 4) == Bytes{0, 0, 1, 0});
    CHECK(r.read_pio(kCmdlineSize, 4) == Bytes{14, 0, 0, 0});
    Bytes cmd = r.read_pio(kCmdlineData, 14);
    CHECK(std::string(cmd.begin(), cmd.end() - 1) == "console=ttyS0");
    CHECK(r.read_pio(kInitrdSize, 4) == Bytes{0, 0, 0, 0});
    // Read the kernel by DMA, as linuxboot_dma.bin does.
    CHECK(r.dma(0x1000, uint32_t(kKernelData) << 16 | kDmaSelect | kDmaRead, 0x10000, 0x20000) ==
          0);
    CHECK(r.ram[0x20000] == 2);
    CHECK(r.ram[0x2FFFF] == 2);
}

TEST_CASE("SMBIOS equals QEMU 7.2's tables for -smp 2 -m 1024") {
    const Bytes qemu =
        from_hex("011b0001010203000000000000000000000000000000000006000051454d55005374616e646172642"
                 "050432028693434"
                 "304658202b20504949582c2031393936290070632d6934343066782d372e320000031600030101020"
                 "000030303020000"
                 "0000000000000051454d550070632d6934343066782d372e320000042a000401030102b10f0600fdf"
                 "b8b0703000000d0"
                 "07d0074101ffffffffffff0000000202020200010043505520300051454d550070632d69343430667"
                 "82d372e32000010"
                 "17001001030600001000feff010000000000000000000000112800110010feffffffffff000409000"
                 "100070200000002"
                 "0000000000000000000000000000000044494d4d20300051454d550000131f001300000000ffff0f0"
                 "000100100000000"
                 "0000000000000000000000000000200b00200000000000000000007f04007f0000");
    SmbiosTables t = build_smbios(reference_config().smbios);
    CHECK(t.tables == qemu);
    CHECK(t.count == 8);
    CHECK(t.max_struct_size == 81);
    // Walk: each structure's formatted length, its double-NUL-terminated strings, 127 last.
    size_t off = 0, n = 0;
    uint8_t last = 0;
    while (off < t.tables.size()) {
        uint8_t len = t.tables[off + 1];
        REQUIRE(len >= 4);
        size_t s = off + len;
        while (!(t.tables.at(s) == 0 && t.tables.at(s + 1) == 0)) s++;
        last = t.tables[off];
        off = s + 2;
        n++;
    }
    CHECK(off == t.tables.size());
    CHECK(n == 8);
    CHECK(last == 127);
    // The entry point for a direct boot carries both checksums.
    auto ep = smbios_entry_point(t, 0xF0000);
    uint8_t sum = 0, isum = 0;
    for (size_t i = 0; i < ep.size(); i++) sum = uint8_t(sum + ep[i]);
    for (size_t i = 0x10; i < ep.size(); i++) isum = uint8_t(isum + ep[i]);
    CHECK(sum == 0);
    CHECK(isum == 0);
    CHECK(ep[0x18] == 0x00);
    CHECK(ep[0x1A] == 0x0F);
}

TEST_CASE("SMBIOS options: -uuid and -smbios type=1") {
    SmbiosSystemInfo info;
    apply_smbios_option("type=1,manufacturer=ACME,,Inc,serial=42,uuid=00112233-4455-6677-8899-"
                        "aabbccddeeff,sku=S,family=F",
                        info);
    CHECK(info.manufacturer == "ACME,Inc");
    CHECK(info.serial == "42");
    REQUIRE(info.uuid);
    CHECK((*info.uuid)[0] == 0x00);
    CHECK((*info.uuid)[15] == 0xFF);
    CHECK_THROWS_AS(apply_smbios_option("type=0,vendor=x", info), UserError);
    CHECK_THROWS_AS(apply_smbios_option("manufacturer=x", info), UserError);
    CHECK_THROWS_AS(apply_smbios_option("type=1,colour=blue", info), UserError);
    CHECK_THROWS_AS(apply_smbios_option("type=1,uuid=1234", info), UserError);
    CHECK_THROWS_AS(parse_uuid("00112233-4455-6677-8899-aabbccddeefg"), UserError);
    CHECK(info.manufacturer == "ACME,Inc"); // a failed option changes nothing

    SmbiosConfig c = reference_config().smbios;
    c.system = info;
    SmbiosTables t = build_smbios(c);
    // Type 1: strings 1..6 in field order, UUID with the first three fields little-endian.
    const uint8_t* t1 = t.tables.data();
    CHECK(t1[4] == 1);
    CHECK(t1[7] == 4); // serial is the 4th string
    const uint8_t want_uuid[16] = {0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
                                   0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    CHECK(std::memcmp(t1 + 8, want_uuid, 16) == 0);
    CHECK(t1[0x19] == 5); // SKU
    CHECK(t1[0x1A] == 6); // family
    // 40 GiB: three DIMMs (16 + 16 + 8 GiB) and two type 19 ranges.
    c.ram_size = 40ull << 30;
    c.ram_ranges = {{0, 3ull << 30}, {1ull << 32, 37ull << 30}};
    t = build_smbios(c);
    CHECK(t.count == 8 + 2 + 1);
}
