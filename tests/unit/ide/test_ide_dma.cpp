// Bus-master DMA through the PIIX3's BAR4: PRD tables walked in guest memory, the block worker
// pool doing the disk I/O, and every malformed table ending in an error status, never a crash.
#include <doctest/doctest.h>

#include "ide_test_support.hpp"

using namespace idetest;
using namespace hvm::ata;

namespace {
constexpr uint32_t kTable = 0x1000;
constexpr uint32_t kBufA = 0x100000, kBufB = 0x200000;
constexpr uint8_t kActive = IdeChannel::kBmStatusActive, kIntr = IdeChannel::kBmStatusInterrupt,
                  kErr = IdeChannel::kBmStatusError;

bool ram_matches_disk(Rig& r, uint32_t gpa, uint64_t disk_offset, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (r.ram[gpa + i] != RamDisk::pattern(disk_offset + i)) return false;
    return true;
}
} // namespace

TEST_CASE("READ DMA and WRITE DMA with a two-entry PRD table") {
    for (bool async : {true, false}) {
        CAPTURE(async);
        Rig r(async);
        r.add_disk(8 << 20);
        r.start();
        r.write_prd(kTable, {{kBufA, 1024}, {kBufB, 3072}});
        r.bm_setup(0, kTable, true);
        r.lba28(0, 0, 300, 8);
        r.command(0, kCmdReadDma);
        CHECK(r.alt_status() == (kStatusDrdy | kStatusDsc | kStatusDrq));
        CHECK_FALSE(r.irq());
        r.bm_start(0, true);
        r.drain();
        CHECK(r.irq());
        CHECK(r.bm_status(0) == kIntr); // done: ACTIVE clear, INTERRUPT set
        CHECK(r.status() == (kStatusDrdy | kStatusDsc));
        CHECK(ram_matches_disk(r, kBufA, 300 * 512, 1024));
        CHECK(ram_matches_disk(r, kBufB, 302 * 512, 3072));
        CHECK(r.inb(Rig::base(0) + 3) == uint8_t(308)); // registers advanced
        r.outb(r.bm(0), 0x08);                          // stop
        r.outb(r.bm(0) + 2, kIntr);                     // W1C
        CHECK(r.bm_status(0) == 0);

        // Write: the guest's buffers reach the disk. Start before the command this time.
        for (unsigned i = 0; i < 1024; i++) r.ram[kBufA + i] = uint8_t(i ^ 0x55);
        for (unsigned i = 0; i < 3072; i++) r.ram[kBufB + i] = uint8_t(i * 3);
        r.bm_setup(0, kTable, false);
        r.bm_start(0, false);
        CHECK(r.bm_status(0) == kActive);
        r.lba28(0, 0, 1000, 8);
        r.command(0, kCmdWriteDma);
        r.drain();
        CHECK(r.irq());
        CHECK(r.bm_status(0) == kIntr);
        CHECK(r.status() == (kStatusDrdy | kStatusDsc));
        bool same = true;
        for (unsigned i = 0; i < 1024; i++)
            same &= r.disk->byte(1000 * 512 + i) == uint8_t(i ^ 0x55);
        for (unsigned i = 0; i < 3072; i++) same &= r.disk->byte(1002 * 512 + i) == uint8_t(i * 3);
        CHECK(same);
    }
}

TEST_CASE("LBA48 READ DMA EXT larger than one worker chunk") {
    Rig r;
    r.add_disk(300ull << 30);
    r.start();
    // 1200 sectors (600 KiB) over ten 64 KiB entries: three pool chunks.
    std::vector<std::pair<uint32_t, uint32_t>> prds;
    for (unsigned i = 0; i < 10; i++) prds.push_back({kBufA + i * 0x10000, 0x10000});
    r.write_prd(kTable, prds);
    r.bm_setup(0, kTable, true);
    const uint64_t lba = (1ull << 28) + 77; // needs the LBA48 high bytes
    r.lba48(0, 0, lba, 1200);
    r.command(0, kCmdReadDmaExt);
    r.bm_start(0, true);
    r.drain();
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));
    // 1200*512 = 614400 bytes < 10*64 KiB: the table was longer than needed, ACTIVE stays.
    CHECK(r.bm_status(0) == (kActive | kIntr));
    CHECK(ram_matches_disk(r, kBufA, lba * 512, 1200 * 512));
}

TEST_CASE("PRD edge cases") {
    Rig r;
    r.add_disk(8 << 20);
    r.start();
    std::memset(r.ram + kBufA, 0xEE, 0x20000);

    SUBCASE("too short: ACTIVE cleared, no interrupt, nothing transferred") {
        r.write_prd(kTable, {{kBufA, 512}, {kBufB, 512}});
        r.bm_setup(0, kTable, true);
        r.lba28(0, 0, 0, 8);
        r.command(0, kCmdReadDma);
        r.bm_start(0, true);
        r.drain();
        CHECK_FALSE(r.irq());
        CHECK(r.bm_status(0) == 0);
        CHECK(r.alt_status() == (kStatusDrdy | kStatusDsc));
        CHECK(r.ram[kBufA] == 0xEE);
    }
    SUBCASE("too long: the transfer completes, ACTIVE stays set") {
        r.write_prd(kTable, {{kBufA, 0x10000}}); // byte count 0 = 64 KiB
        r.bm_setup(0, kTable, true);
        r.lba28(0, 0, 4, 2);
        r.command(0, kCmdReadDma);
        r.bm_start(0, true);
        r.drain();
        CHECK(r.irq());
        CHECK(r.bm_status(0) == (kActive | kIntr));
        CHECK(ram_matches_disk(r, kBufA, 4 * 512, 1024));
        CHECK(r.ram[kBufA + 1024] == 0xEE);
        r.outb(r.bm(0), 0x08); // the driver stops the engine
        CHECK(r.bm_status(0) == kIntr);
    }
    SUBCASE("bit 0 of a byte count is ignored") {
        r.write_prd(kTable, {{kBufA, 513}, {kBufB, 511}});
        r.bm_setup(0, kTable, true);
        r.lba28(0, 0, 0, 1);
        r.command(0, kCmdReadDma);
        r.bm_start(0, true);
        r.drain();
        // 512 + 510 bytes described: one sector fits in the first entry, the rest is spare.
        CHECK(r.bm_status(0) == (kActive | kIntr));
        CHECK(ram_matches_disk(r, kBufA, 0, 512));
        CHECK(r.ram[kBufB] == 0); // the second entry was not needed
    }
    SUBCASE("unterminated table: the walk stops after 8192 entries") {
        std::vector<std::pair<uint32_t, uint32_t>> prds(IdeChannel::kMaxPrdEntries + 16,
                                                        {kBufA, 2});
        r.write_prd(0x20000, prds, false);
        r.bm_setup(0, 0x20000, true);
        r.lba28(0, 0, 0, 64); // 32 KiB, more than 8192 x 2 bytes
        r.command(0, kCmdReadDma);
        r.bm_start(0, true);
        r.drain();
        CHECK(r.bm_status(0) == 0); // too short
        CHECK_FALSE(r.irq());
    }
    SUBCASE("a buffer outside guest RAM: ERROR, master abort, aborted command") {
        r.write_prd(kTable, {{kBufA, 512}, {0xF0000000u, 512}});
        r.bm_setup(0, kTable, true);
        r.lba28(0, 0, 0, 2);
        r.command(0, kCmdReadDma);
        r.bm_start(0, true);
        r.drain();
        CHECK(r.irq());
        CHECK(r.bm_status(0) == (kErr | kIntr));
        CHECK(r.status() == (kStatusDrdy | kStatusErr));
        CHECK(r.error() == kErrorAbrt);
        CHECK((r.cfg_read(0x06, 2) & 0x2000) != 0);
        CHECK(r.ram[kBufA] == 0xEE); // nothing moved
        r.outb(r.bm(0) + 2, kErr | kIntr);
        CHECK(r.bm_status(0) == 0);
    }
    SUBCASE("a buffer running off the end of RAM") {
        r.write_prd(kTable, {{uint32_t(kRamSize - 256), 512}});
        r.bm_setup(0, kTable, true);
        r.lba28(0, 0, 0, 1);
        r.command(0, kCmdWriteDma);
        r.bm_start(0, false);
        r.drain();
        CHECK(r.bm_status(0) == (kErr | kIntr));
        CHECK(r.error() == kErrorAbrt);
        CHECK(r.disk->writes == 0);
    }
    SUBCASE("a PRD table outside guest RAM") {
        r.bm_setup(0, 0xFFFFFFF8u, true);
        r.lba28(0, 0, 0, 1);
        r.command(0, kCmdReadDma);
        r.bm_start(0, true);
        r.drain();
        CHECK(r.bm_status(0) == (kErr | kIntr));
        CHECK(r.error() == kErrorAbrt);
    }
    SUBCASE("bus mastering disabled in the PCI command register") {
        r.cfg_write(0x04, 2, 0x0101);
        r.write_prd(kTable, {{kBufA, 512}});
        r.bm_setup(0, kTable, true);
        r.lba28(0, 0, 0, 1);
        r.command(0, kCmdReadDma);
        r.bm_start(0, true);
        r.drain();
        CHECK(r.bm_status(0) == (kErr | kIntr));
        CHECK(r.ram[kBufA] == 0xEE);
    }
    SUBCASE("the disk fails: aborted command, bus master stops") {
        r.disk->fail_io = true;
        r.write_prd(kTable, {{kBufA, 512}});
        r.bm_setup(0, kTable, true);
        r.lba28(0, 0, 0, 1);
        r.command(0, kCmdReadDma);
        r.bm_start(0, true);
        r.drain();
        CHECK(r.bm_status(0) == kIntr);
        CHECK(r.error() == kErrorAbrt);
    }
}

TEST_CASE("clearing Start while the transfer is in flight abandons it") {
    Rig r;
    r.add_disk(8 << 20);
    r.start();
    std::memset(r.ram + kBufA, 0xEE, 4096);
    r.write_prd(kTable, {{kBufA, 4096}});
    r.bm_setup(0, kTable, true);
    r.lba28(0, 0, 0, 8);
    r.disk->close_gate();
    r.command(0, kCmdReadDma);
    r.bm_start(0, true);
    REQUIRE(r.disk->wait_blocked());
    CHECK(r.bm_status(0) == kActive);
    r.outb(r.bm(0), 0x08); // stop
    CHECK(r.bm_status(0) == 0);
    CHECK(r.alt_status() == (kStatusDrdy | kStatusErr));
    r.disk->open_gate();
    r.drain();
    CHECK(r.ram[kBufA] == 0xEE); // the late completion was dropped
    CHECK(r.bm_status(0) == 0);
    // The channel works again after a reset.
    r.outb(Rig::ctl(0), kControlSrst);
    r.outb(Rig::ctl(0), 0);
    r.bm_setup(0, kTable, true);
    r.lba28(0, 0, 0, 8);
    r.command(0, kCmdReadDma);
    r.bm_start(0, true);
    r.drain();
    CHECK(r.bm_status(0) == kIntr);
    CHECK(ram_matches_disk(r, kBufA, 0, 4096));
}

TEST_CASE("WRITE DMA with the write cache off flushes before completing") {
    Rig r;
    r.add_disk(8 << 20, 0, 0, false);
    r.start();
    r.write_prd(kTable, {{kBufA, 512}});
    r.bm_setup(0, kTable, false);
    r.lba28(0, 0, 9, 1);
    r.command(0, kCmdWriteDma);
    r.bm_start(0, false);
    r.drain();
    CHECK(r.disk->flushes == 1);
    CHECK(r.bm_status(0) == kIntr);
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));
}

TEST_CASE("the device is destroyed with a transfer in flight") {
    auto r = std::make_unique<Rig>();
    r->add_disk(8 << 20);
    r->start();
    r->write_prd(kTable, {{kBufA, 512}});
    r->bm_setup(0, kTable, true);
    r->lba28(0, 0, 0, 1);
    r->disk->close_gate();
    r->command(0, kCmdReadDma);
    r->bm_start(0, true);
    REQUIRE(r->disk->wait_blocked());
    RamDisk* disk = r->disk; // kept alive by the queued request
    // Destroy the controller first; the completion that runs afterwards must touch nothing.
    r->ide.reset();
    disk->open_gate();
    r->pool->drain(); // ASan would report any access to the destroyed channel
}
