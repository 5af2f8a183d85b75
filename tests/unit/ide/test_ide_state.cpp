// Snapshot and restore of the PIIX3 IDE (mid-transfer included), hostile state files, and the
// CHS geometry QEMU would give a disk.
#include <doctest/doctest.h>

#include <algorithm>
#include <string_view>

#include "devmodel/ide/ide_geometry.hpp"
#include "ide_test_support.hpp"

using namespace idetest;
using namespace hvm::ata;

namespace {
std::vector<uint8_t> snapshot(Rig& r) {
    std::lock_guard g(r.lock);
    StateWriter w;
    r.ide->save(w);
    return w.data();
}
void restore(Rig& r, const std::vector<uint8_t>& data) {
    std::lock_guard g(r.lock);
    StateReader in(data);
    r.ide->load(in);
}
} // namespace

TEST_CASE("save in the middle of a PIO read, restore into a fresh machine, continue") {
    Rig a;
    a.add_disk(8 << 20);
    a.add_cdrom(2 << 20);
    a.start();
    a.outb(Rig::base(0) + 2, 4);
    a.command(0, kCmdSetMultipleMode);
    a.lba28(0, 0, 40, 8);
    a.command(0, kCmdReadMultiple);
    auto first = a.insw(0, 300); // part way into the first block
    auto state = snapshot(a);
    auto rest_a = a.insw(0, 8 * 256 - 300);

    Rig b;
    b.add_disk(8 << 20);
    b.add_cdrom(2 << 20);
    b.start();
    restore(b, state);
    CHECK(b.cfg_read(0x20, 4) == (kBmBase | 1u)); // config space came back, BAR mapped
    CHECK(b.alt_status() == (kStatusDrdy | kStatusDsc | kStatusDrq));
    auto rest_b = b.insw(0, 8 * 256 - 300);
    CHECK(rest_a == rest_b);
    CHECK(b.status() == (kStatusDrdy | kStatusDsc));
    CHECK(b.identify()[59] == 0x0104); // multiple mode survived

    // Snapshot -> change -> restore -> equal.
    auto s1 = snapshot(b);
    b.outb(Rig::base(0) + 2, 2);
    b.command(0, kCmdSetMultipleMode);
    b.outb(Rig::ctl(1), kControlNien);
    restore(b, s1);
    CHECK(snapshot(b) == s1);
}

TEST_CASE("a DMA transfer pending at save time runs again after restore") {
    Rig a;
    a.add_disk(8 << 20);
    a.start();
    a.write_prd(0x1000, {{0x100000, 4096}});
    a.bm_setup(0, 0x1000, true);
    a.lba28(0, 0, 64, 8);
    a.command(0, kCmdReadDma);
    a.disk->close_gate();
    a.bm_start(0, true);
    REQUIRE(a.disk->wait_blocked());
    auto state = snapshot(a);                          // the read is in flight
    std::vector<uint8_t> ram(a.ram, a.ram + kRamSize); // a snapshot carries RAM too
    a.disk->open_gate();
    a.drain();

    Rig b;
    b.add_disk(8 << 20);
    b.start();
    std::copy(ram.begin(), ram.end(), b.ram);
    restore(b, state);
    b.drain();
    CHECK(b.irq());
    CHECK(b.bm_status(0) == IdeChannel::kBmStatusInterrupt);
    CHECK(b.status() == (kStatusDrdy | kStatusDsc));
    bool same = true;
    for (unsigned i = 0; i < 4096; i++)
        same &= b.ram[0x100000 + i] == RamDisk::pattern(64 * 512 + i);
    CHECK(same);
}

TEST_CASE("hostile state files are refused") {
    Rig a;
    a.add_disk(8 << 20);
    a.start();
    auto good = snapshot(a);

    auto refused = [&](size_t offset, std::vector<uint8_t> bytes) {
        Rig b;
        b.add_disk(8 << 20);
        b.start();
        auto bad = good;
        REQUIRE(offset + bytes.size() <= bad.size());
        std::copy(bytes.begin(), bytes.end(), bad.begin() + long(offset));
        bool threw = false;
        try {
            restore(b, bad);
        } catch (const StateError&) {
            threw = true;
        }
        return threw;
    };
    // Field offsets in the first drive's section: every put() is a u32 length + the value.
    std::string tag = "ide-drive";
    auto it = std::search(good.begin(), good.end(), tag.begin(), tag.end());
    REQUIRE(it != good.end());
    const size_t header_end = size_t(it - good.begin()) + tag.size() + 4; // + version
    const std::pair<const char*, size_t> fields[] = {
        {"kind", 1},        {"feature", 1},
        {"hob_feature", 1}, {"nsector", 4},
        {"hob_nsector", 1}, {"sector", 1},
        {"hob_sector", 1},  {"lcyl", 1},
        {"hob_lcyl", 1},    {"hcyl", 1},
        {"hob_hcyl", 1},    {"select", 1},
        {"status", 1},      {"error", 1},
        {"lba48", 1},       {"mult", 1},
        {"mode", 1},        {"wce", 1},
        {"cyls", 2},        {"heads", 2},
        {"secs", 2},        {"buf", IdeDrive::kBufferSize},
        {"pos", 4},         {"end", 4},
        {"action", 1}};
    auto at = [&](std::string_view name) {
        size_t off = header_end;
        for (auto& [n, size] : fields) {
            if (name == n) return off + 4;
            off += 4 + size;
        }
        FAIL("no field");
        return size_t(0);
    };
    REQUIRE(good[at("mult")] == 16); // the layout is what we think it is
    REQUIRE(good[at("kind")] == 1);

    CHECK(refused(at("pos"), {0xFF, 0xFF, 0, 0}));           // data_pos beyond the buffer
    CHECK(refused(at("end"), {0x01, 0x80, 0, 0}));           // data_end beyond the buffer
    CHECK(refused(at("mult"), {3}));                         // multiple count not a power of two
    CHECK(refused(at("action"), {9}));                       // unknown transfer state
    CHECK(refused(at("kind"), {2}));                         // a CD-ROM state for a disk
    CHECK(refused(at("nsector"), {0x01, 0x00, 0x01, 0x00})); // sector count > 65536
    CHECK(refused(at("heads"), {0, 0}));                     // CHS translation dividing by 0
    CHECK(refused(at("lba48"), {2}));                        // not a boolean
    CHECK_FALSE(refused(at("pos"), {0, 0, 0, 0}));           // the untouched layout loads
}

TEST_CASE("default CHS geometry as QEMU guesses it") {
    // No partition table: 16 heads, 63 sectors, cylinders from the size, clamped.
    auto g = guess_ide_geometry(131072, nullptr);
    CHECK(g == IdeGeometry{130, 16, 63, BiosTranslation::None});
    g = guess_ide_geometry(2000, nullptr);
    CHECK(g.cylinders == 2);
    g = guess_ide_geometry(100ull << 21, nullptr); // 100 GiB
    CHECK(g == IdeGeometry{16383, 16, 63, BiosTranslation::Lba});

    uint8_t mbr[512] = {};
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    uint8_t* p = mbr + 0x1BE;
    p[5] = 254; // end head: 255 heads
    p[6] = 63;
    p[12] = 0x00;
    p[13] = 0x10; // nr_sects != 0
    // 255 heads: a BIOS translation was in use; physical geometry is the standard one.
    g = guess_ide_geometry(2ull << 21, mbr); // 2 GiB: 4161 cylinders * 16 heads <= 131072
    CHECK(g.heads == 16);
    CHECK(g.sectors == 63);
    CHECK(g.translation == BiosTranslation::Large);
    g = guess_ide_geometry(20ull << 21, mbr); // 20 GiB: 16383 * 16 > 131072
    CHECK(g.translation == BiosTranslation::Lba);
    // A table written with 16 heads x 32 sectors is taken as the geometry.
    p[5] = 15;
    p[6] = 32;
    g = guess_ide_geometry(65536, mbr);
    CHECK(g == IdeGeometry{128, 16, 32, BiosTranslation::None});
    // Garbage (no signature) is ignored.
    mbr[510] = 0;
    g = guess_ide_geometry(65536, mbr);
    CHECK(g.sectors == 63);
}

TEST_CASE("the geometry comes from the image's partition table") {
    Rig r;
    auto d = std::make_unique<RamDisk>(32 << 20);
    uint8_t mbr[512] = {};
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    mbr[0x1BE + 5] = 7; // 8 heads
    mbr[0x1BE + 6] = 32;
    mbr[0x1BE + 12] = 1;
    d->set(0, mbr);
    r.ide->attach_disk(0, 0, std::move(d));
    r.start();
    CHECK(r.ide->drive(0, 0).geometry() == IdeGeometry{256, 8, 32, BiosTranslation::None});
    auto w = r.identify();
    CHECK(w[1] == 256);
    CHECK(w[3] == 8);
    CHECK(w[6] == 32);
}
