// PIIX3 IDE + ATA disk through the port interface: PCI identity, IDENTIFY, PIO, LBA48, multiple
// mode, errors, resets, interrupts.
#include <doctest/doctest.h>

#include "base/error.hpp"
#include "ide_test_support.hpp"

using namespace idetest;
using namespace hvm::ata;

TEST_CASE("PCI function: identity, BAR4, timing registers") {
    Rig r;
    r.add_disk(64 << 20);
    r.start();
    CHECK(r.cfg_read(0x00, 4) == 0x70108086u);
    CHECK(r.cfg_read(0x08, 4) == 0x01018000u); // rev 0, prog-if 0x80, IDE, mass storage
    CHECK(r.cfg_read(0x06, 2) == 0x0280);
    CHECK(r.cfg_read(0x2C, 4) == 0x11001AF4u);
    CHECK(r.cfg_read(0x3D, 1) == 0); // no INTx pin: legacy ISA IRQs
    for (unsigned bar = 0; bar < 4; bar++) CHECK(r.cfg_read(0x10 + 4 * bar, 4) == 0);
    CHECK(r.cfg_read(0x20, 4) == (kBmBase | 1u));
    // BAR4 sizing: 16 bytes of I/O.
    r.cfg_write(0x20, 4, 0xFFFFFFFF);
    CHECK(r.cfg_read(0x20, 4) == 0xFFFFFFF1u);
    r.cfg_write(0x20, 4, kBmBase | 1);
    // IDETIM as SeaBIOS writes it, stored.
    r.cfg_write(0x40, 2, 0x8000);
    r.cfg_write(0x42, 2, 0x8000);
    CHECK(r.cfg_read(0x40, 4) == 0x80008000u);
    // The bus-master block answers at BAR4: PRD pointer is dword aligned.
    r.out(kBmBase + 4, 4, 0x12345677);
    CHECK(r.in(kBmBase + 4, 4) == 0x12345674u);
    CHECK(r.inb(kBmBase + 2) == 0x00); // simplex clear: both channels at once
    r.outb(kBmBase + 2, 0x60);         // drive DMA-capable bits are R/W
    CHECK(r.inb(kBmBase + 2) == 0x60);
}

TEST_CASE("IDENTIFY DEVICE reports QEMU's words") {
    Rig r;
    r.add_disk(64ull << 20); // 131072 sectors
    r.start();
    auto w = r.identify();
    CHECK(w[0] == 0x0040);
    CHECK(w[1] == 130); // 131072 / (16*63)
    CHECK(w[3] == 16);
    CHECK(w[6] == 63);
    CHECK(Rig::ata_string(w, 10, 10) == "QM00001");
    CHECK(Rig::ata_string(w, 23, 4) == "2.5+");
    CHECK(Rig::ata_string(w, 27, 20) == "QEMU HARDDISK");
    CHECK(w[47] == 0x8010);
    CHECK(w[49] == ((1 << 11) | (1 << 9) | (1 << 8)));
    CHECK(w[53] == 7);
    CHECK(w[54] == 130);
    CHECK(w[55] == 16);
    CHECK(w[56] == 63);
    CHECK((w[57] | w[58] << 16) == 130u * 16 * 63);
    CHECK(w[59] == 0x0110);
    CHECK((w[60] | uint32_t(w[61]) << 16) == 131072u);
    CHECK(w[63] == 0x07);
    CHECK(w[64] == 0x03);
    CHECK(w[80] == 0xF0);
    CHECK(w[82] == 0x4021);
    CHECK(w[83] == 0x7400);
    CHECK(w[85] == 0x4021); // write cache enabled (cache=writeback)
    CHECK(w[86] == 0x3400);
    CHECK(w[88] == (0x3F | 1 << 13)); // UDMA5 selected, as QEMU starts
    CHECK(w[100] == 0);
    CHECK(w[101] == 2);
    CHECK(w[255] == 0);
    CHECK((r.status() & (kStatusDrq | kStatusBsy)) == 0);
    CHECK(r.inb(Rig::base(0) + 3) == 1); // signature untouched

    SUBCASE("SET FEATURES transfer mode and write cache are reflected") {
        r.outb(Rig::base(0) + 1, kFeatureSetTransferMode);
        r.outb(Rig::base(0) + 2, 0x22); // MWDMA2
        r.command(0, kCmdSetFeatures);
        CHECK(r.status() == (kStatusDrdy | kStatusDsc));
        w = r.identify();
        CHECK(w[63] == (0x07 | 1 << 10));
        CHECK(w[88] == 0x3F);
        r.outb(Rig::base(0) + 2, 0x42); // UDMA2
        r.command(0, kCmdSetFeatures);
        w = r.identify();
        CHECK(w[63] == 0x07);
        CHECK(w[88] == (0x3F | 1 << 10));
        r.outb(Rig::base(0) + 2, 0x30); // not a mode class
        r.command(0, kCmdSetFeatures);
        CHECK(r.status() == (kStatusDrdy | kStatusErr));
        CHECK(r.error() == kErrorAbrt);

        r.outb(Rig::base(0) + 1, kFeatureDisableWriteCache);
        int flushes = r.disk->flushes;
        r.command(0, kCmdSetFeatures);
        r.drain();
        CHECK(r.disk->flushes == flushes + 1);
        CHECK(r.status() == (kStatusDrdy | kStatusDsc));
        w = r.identify();
        CHECK(w[85] == 0x4001);
    }
}

TEST_CASE("LBA48 capacity words for a disk over 128 GiB") {
    Rig r;
    const uint64_t sectors = 300ull << 21; // 300 GiB
    r.add_disk(sectors * 512);
    r.start();
    auto w = r.identify();
    CHECK((w[60] | uint32_t(w[61]) << 16) == (1u << 28) - 1);
    uint64_t lba48 = w[100] | uint64_t(w[101]) << 16 | uint64_t(w[102]) << 32;
    CHECK(lba48 == sectors);
    CHECK(w[1] == 16383);
}

TEST_CASE("PIO READ SECTORS: several sectors with REP INSW, an interrupt per sector") {
    Rig r;
    r.add_disk(8 << 20);
    r.start();
    r.lba28(0, 0, 100, 3);
    r.command(0, kCmdReadSectors);
    for (unsigned s = 0; s < 3; s++) {
        CHECK(r.irq());
        CHECK(r.alt_status() == (kStatusDrdy | kStatusDsc | kStatusDrq));
        CHECK(r.irq()); // alternate status leaves the interrupt pending
        CHECK(r.status() == (kStatusDrdy | kStatusDsc | kStatusDrq));
        CHECK_FALSE(r.irq()); // status read acknowledges it
        auto data = r.insw(0, 256);
        bool same = true;
        for (unsigned i = 0; i < 512; i++)
            same &= data[i] == RamDisk::pattern((100 + s) * 512ull + i);
        CHECK(same);
    }
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));
    CHECK(r.irq_rises() == 3);
    // The task file points past the transfer.
    CHECK(r.inb(Rig::base(0) + 3) == 103);
    CHECK(r.inb(Rig::base(0) + 2) == 0);
    // Reads with DRQ clear return 0 and change nothing.
    CHECK(r.inw(Rig::base(0)) == 0);
}

TEST_CASE("PIO with 32-bit data accesses and CHS addressing") {
    Rig r;
    r.add_disk(8 << 20); // 16 heads x 63 sectors
    r.start();
    // C/H/S = 1/2/5 -> LBA (1*16 + 2)*63 + 4 = 1138.
    r.outb(Rig::base(0) + 6, 0xA2);
    r.outb(Rig::base(0) + 2, 1);
    r.outb(Rig::base(0) + 3, 5);
    r.outb(Rig::base(0) + 4, 1);
    r.outb(Rig::base(0) + 5, 0);
    r.command(0, kCmdReadSectors);
    bool same = true;
    for (unsigned i = 0; i < 128; i++) {
        uint32_t v = r.in(Rig::base(0), 4);
        for (unsigned b = 0; b < 4; b++)
            same &= uint8_t(v >> (8 * b)) == RamDisk::pattern(1138ull * 512 + 4 * i + b);
    }
    CHECK(same);
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));
    // CHS sector 0 does not exist.
    r.outb(Rig::base(0) + 3, 0);
    r.outb(Rig::base(0) + 2, 1);
    r.command(0, kCmdReadSectors);
    CHECK(r.status() == (kStatusDrdy | kStatusErr));
    CHECK(r.error() == kErrorIdnf);
}

TEST_CASE("INITIALIZE DEVICE PARAMETERS changes the CHS translation") {
    Rig r;
    r.add_disk(8 << 20);
    r.start();
    r.outb(Rig::base(0) + 6, 0xA0 | 7); // 8 heads
    r.outb(Rig::base(0) + 2, 32);       // 32 sectors per track
    r.command(0, kCmdInitializeDeviceParameters);
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));
    auto w = r.identify();
    CHECK(w[55] == 8);
    CHECK(w[56] == 32);
    CHECK(w[54] == 16384 / (8 * 32));
    CHECK(w[3] == 16); // default geometry unchanged
    // C/H/S 2/3/4 in the new translation -> (2*8+3)*32+3 = 611.
    r.outb(Rig::base(0) + 6, 0xA3);
    r.outb(Rig::base(0) + 2, 1);
    r.outb(Rig::base(0) + 3, 4);
    r.outb(Rig::base(0) + 4, 2);
    r.outb(Rig::base(0) + 5, 0);
    r.command(0, kCmdReadSectors);
    auto data = r.insw(0, 256);
    CHECK(data[0] == RamDisk::pattern(611ull * 512));
    CHECK(data[511] == RamDisk::pattern(611ull * 512 + 511));
    // Zero sectors per track is refused.
    r.outb(Rig::base(0) + 2, 0);
    r.command(0, kCmdInitializeDeviceParameters);
    CHECK(r.error() == kErrorAbrt);
}

TEST_CASE("PIO WRITE SECTORS: several sectors land on the disk") {
    Rig r;
    r.add_disk(8 << 20);
    r.start();
    r.lba28(0, 0, 2000, 2);
    r.command(0, kCmdWriteSectors);
    std::vector<uint8_t> data(1024);
    for (size_t i = 0; i < data.size(); i++) data[i] = uint8_t(i * 13 + 1);
    CHECK(r.status() == (kStatusDrdy | kStatusDsc | kStatusDrq));
    CHECK_FALSE(r.irq()); // first block needs no interrupt
    r.outsw(0, std::span(data).first(512));
    CHECK(r.irq());
    CHECK(r.status() == (kStatusDrdy | kStatusDsc | kStatusDrq));
    r.outsw(0, std::span(data).subspan(512));
    CHECK(r.irq());
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));
    bool same = true;
    for (size_t i = 0; i < data.size(); i++) same &= r.disk->byte(2000 * 512 + i) == data[i];
    CHECK(same);
    CHECK(r.disk->byte(2002 * 512) == RamDisk::pattern(2002 * 512));

    SUBCASE("write-through after the guest disables the write cache") {
        r.outb(Rig::base(0) + 1, kFeatureDisableWriteCache);
        r.command(0, kCmdSetFeatures);
        r.drain();
        int flushes = r.disk->flushes;
        r.lba28(0, 0, 5, 1);
        r.command(0, kCmdWriteSectors);
        r.outsw(0, std::span(data).first(512));
        CHECK(r.disk->flushes == flushes + 1);
    }
}

TEST_CASE("LBA48 READ SECTORS EXT above 2^28 and HOB register reads") {
    Rig r;
    r.add_disk(300ull << 30);
    r.start();
    const uint64_t lba = (1ull << 28) + 12345;
    r.lba48(0, 0, lba, 2);
    CHECK(r.inb(Rig::base(0) + 3) == uint8_t(lba));
    r.outb(Rig::ctl(0), kControlHob);
    CHECK(r.inb(Rig::base(0) + 3) == uint8_t(lba >> 24));
    CHECK(r.inb(Rig::base(0) + 2) == 0); // high count byte
    r.outb(Rig::ctl(0), 0);
    r.command(0, kCmdReadSectorsExt);
    auto a = r.insw(0, 256);
    auto b = r.insw(0, 256);
    CHECK(a[7] == RamDisk::pattern(lba * 512 + 7));
    CHECK(b[7] == RamDisk::pattern((lba + 1) * 512 + 7));
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));
    // The registers advanced by two sectors, high bytes included.
    r.outb(Rig::ctl(0), kControlHob);
    CHECK(r.inb(Rig::base(0) + 3) == uint8_t((lba + 2) >> 24));
    r.outb(Rig::ctl(0), 0);
    CHECK(r.inb(Rig::base(0) + 3) == uint8_t(lba + 2));
}

TEST_CASE("READ/WRITE MULTIPLE with SET MULTIPLE MODE") {
    Rig r;
    r.add_disk(8 << 20);
    r.start();
    r.outb(Rig::base(0) + 2, 3); // not a power of two
    r.command(0, kCmdSetMultipleMode);
    CHECK(r.error() == kErrorAbrt);
    r.outb(Rig::base(0) + 2, 4);
    r.command(0, kCmdSetMultipleMode);
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));
    CHECK(r.identify()[59] == 0x0104);

    r.lba28(0, 0, 50, 10);
    r.command(0, kCmdReadMultiple);
    int irqs = 0;
    std::vector<uint8_t> all;
    for (unsigned block = 0; block < 3; block++) {
        irqs += r.irq();
        r.status();
        size_t sectors = block < 2 ? 4 : 2;
        auto d = r.insw(0, 256 * sectors);
        all.insert(all.end(), d.begin(), d.end());
    }
    CHECK(irqs == 3);
    CHECK(all.size() == 10 * 512);
    bool same = true;
    for (size_t i = 0; i < all.size(); i++) same &= all[i] == RamDisk::pattern(50 * 512 + i);
    CHECK(same);
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));

    std::vector<uint8_t> data(6 * 512, 0x5A);
    r.lba28(0, 0, 900, 6);
    r.command(0, kCmdWriteMultiple);
    r.outsw(0, std::span(data).first(4 * 512));
    CHECK(r.status() == (kStatusDrdy | kStatusDsc | kStatusDrq));
    r.outsw(0, std::span(data).subspan(4 * 512));
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));
    CHECK(r.disk->byte(905 * 512 + 511) == 0x5A);
    CHECK(r.disk->byte(906 * 512) == RamDisk::pattern(906 * 512));

    // Multiple mode disabled: READ MULTIPLE aborts.
    r.outb(Rig::base(0) + 2, 0);
    r.command(0, kCmdSetMultipleMode);
    r.lba28(0, 0, 0, 1);
    r.command(0, kCmdReadMultiple);
    CHECK(r.status() == (kStatusDrdy | kStatusErr));
    CHECK(r.error() == kErrorAbrt);
}

TEST_CASE("out-of-range LBAs end with IDNF and never touch the disk") {
    Rig r;
    RamDisk& d = r.add_disk(1 << 20); // 2048 sectors
    r.start();
    int reads = d.reads;
    r.lba28(0, 0, 2048, 1); // one past the last sector
    r.command(0, kCmdReadSectors);
    CHECK(r.status() == (kStatusDrdy | kStatusErr));
    CHECK(r.error() == kErrorIdnf);
    CHECK(d.reads == reads);
    // Running off the end: each block is checked as it is read (QEMU), so the first sector
    // arrives and the second ends the command.
    r.lba28(0, 0, 2047, 2);
    r.command(0, kCmdReadSectors);
    CHECK(r.status() == (kStatusDrdy | kStatusDsc | kStatusDrq));
    r.insw(0, 256);
    CHECK(r.status() == (kStatusDrdy | kStatusErr));
    CHECK(r.error() == kErrorIdnf);
    r.lba28(0, 0, 0x0FFFFFFF, 0); // 256 sectors at the top of LBA28
    r.command(0, kCmdReadVerify);
    CHECK(r.error() == kErrorIdnf);
    r.lba48(0, 0, 0xFFFFFFFFFFFFull, 0); // 65536 sectors at the top of LBA48
    r.command(0, kCmdReadDmaExt);
    CHECK(r.error() == kErrorIdnf);
    r.lba28(0, 0, 2048, 1);
    r.command(0, kCmdWriteSectors); // range is checked once the data arrived (QEMU)
    std::vector<uint8_t> data(512, 1);
    r.outsw(0, data);
    CHECK(r.status() == (kStatusDrdy | kStatusErr));
    CHECK(r.error() == kErrorIdnf);
    CHECK(d.writes == 0);
    r.lba28(0, 0, 2047, 1); // the last sector is fine
    r.command(0, kCmdReadVerify);
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));
}

TEST_CASE("unknown and wrong-device commands are aborted with an interrupt") {
    Rig r;
    r.add_disk(1 << 20);
    r.start();
    for (uint8_t cmd : {uint8_t(0x00), uint8_t(0x01), uint8_t(0xA0), uint8_t(0xA1), uint8_t(0x08),
                        uint8_t(0xFF), uint8_t(0xB0)}) {
        r.status();
        r.command(0, cmd);
        CHECK(r.irq());
        CHECK(r.status() == (kStatusDrdy | kStatusErr));
        CHECK(r.error() == kErrorAbrt);
    }
    // Commands that exist complete normally afterwards.
    r.command(0, kCmdCheckPowerMode);
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));
    CHECK(r.inb(Rig::base(0) + 2) == 0xFF);
    r.command(0, kCmdIdleImmediate);
    CHECK(r.status() == kStatusDrdy);
    r.command(0, kCmdFlushCache);
    r.drain();
    CHECK(r.status() == (kStatusDrdy | kStatusDsc));
    CHECK(r.disk->flushes == 1);
    r.outb(Rig::base(0) + 6, 0xE0); // LBA
    r.command(0, kCmdReadNativeMax);
    CHECK(r.inb(Rig::base(0) + 3) == 0xFF); // 2047 = 0x7FF
    CHECK(r.inb(Rig::base(0) + 4) == 0x07);
}

TEST_CASE("software reset: BSY while SRST is held, then the signatures") {
    Rig r;
    r.add_disk(1 << 20, 0, 0);
    r.add_cdrom(1 << 20, 0, 1);
    r.start();
    r.lba28(0, 0, 5, 3);
    r.command(0, kCmdReadSectors); // leave a transfer half done
    r.insw(0, 10);
    r.outb(Rig::ctl(0), kControlSrst | kControlNien);
    CHECK(r.alt_status() == kStatusBsy);
    r.outb(Rig::ctl(0), kControlNien);
    CHECK(r.alt_status() == (kStatusDrdy | kStatusDsc));
    CHECK(r.inb(Rig::base(0) + 2) == 0x01);
    CHECK(r.inb(Rig::base(0) + 3) == 0x01);
    CHECK(r.inb(Rig::base(0) + 4) == 0x00);
    CHECK(r.inb(Rig::base(0) + 5) == 0x00);
    CHECK(r.error() == 0x01);
    CHECK(r.inw(Rig::base(0)) == 0); // the half-done transfer is gone
    r.outb(Rig::base(0) + 6, 0xB0);
    CHECK(r.inb(Rig::base(0) + 2) == 0x01);
    CHECK(r.inb(Rig::base(0) + 3) == 0x01);
    CHECK(r.inb(Rig::base(0) + 4) == 0x14);
    CHECK(r.inb(Rig::base(0) + 5) == 0xEB);
    CHECK(r.status() == 0); // a packet device leaves DRDY clear
    CHECK_FALSE(r.irq());   // no interrupt for a software reset (nIEN or not)

    SUBCASE("EXECUTE DEVICE DIAGNOSTIC and IDENTIFY on the CD give the signature too") {
        r.outb(Rig::ctl(0), 0);
        r.outb(Rig::base(0) + 4, 0);
        r.command(0, kCmdIdentify);
        CHECK(r.error() == kErrorAbrt);
        CHECK(r.inb(Rig::base(0) + 4) == 0x14);
        CHECK(r.inb(Rig::base(0) + 5) == 0xEB);
        r.outb(Rig::base(0) + 6, 0xA0);
        r.command(0, kCmdExecuteDiagnostic);
        CHECK(r.error() == 0x01);
        CHECK(r.status() == (kStatusDrdy | kStatusDsc));
    }
}

TEST_CASE("nIEN masks the interrupt and the bus-master INTERRUPT bit") {
    Rig r;
    r.add_disk(1 << 20);
    r.start();
    r.outb(Rig::ctl(0), kControlNien);
    r.lba28(0, 0, 0, 1);
    r.command(0, kCmdReadSectors);
    CHECK_FALSE(r.irq());
    CHECK(r.irq_rises() == 0);
    CHECK((r.bm_status(0) & IdeChannel::kBmStatusInterrupt) == 0);
    CHECK((r.alt_status() & kStatusDrq) != 0);
    r.insw(0, 256);
    // Enabled again: the next command interrupts, and the bus master sees it.
    r.outb(Rig::ctl(0), 0);
    r.command(0, kCmdCheckPowerMode);
    CHECK(r.irq());
    CHECK((r.bm_status(0) & IdeChannel::kBmStatusInterrupt) != 0);
    // Setting nIEN drops a pending interrupt.
    r.outb(Rig::ctl(0), kControlNien);
    CHECK_FALSE(r.irq());
}

TEST_CASE("absent devices read 0 and ignore commands") {
    Rig r;
    r.add_disk(1 << 20, 0, 0); // primary master only; the secondary channel is empty
    r.start();
    r.outb(Rig::base(0) + 6, 0xB0); // select the missing slave
    CHECK(r.status() == 0);
    CHECK(r.alt_status() == 0);
    CHECK(r.error() == 0);
    r.command(0, kCmdIdentify);
    CHECK_FALSE(r.irq());
    CHECK(r.status() == 0);
    CHECK(r.inb(Rig::base(0) + 6) == 0xB0); // task file still shared
    for (unsigned reg = 1; reg < 8; reg++) CHECK(r.inb(Rig::base(1) + reg) == 0);
    CHECK(r.alt_status(1) == 0);
    r.command(1, kCmdIdentify); // the missing master aborts it (QEMU), invisibly
    CHECK(r.status(1) == 0);
}

TEST_CASE("task-file writes are ignored while the device has DRQ set") {
    Rig r;
    r.add_disk(1 << 20);
    r.start();
    r.lba28(0, 0, 10, 1);
    r.command(0, kCmdReadSectors);
    r.outb(Rig::base(0) + 3, 99);
    CHECK(r.inb(Rig::base(0) + 3) == 11);
    r.command(0, kCmdIdentify); // ignored too: DRQ
    auto d = r.insw(0, 256);
    CHECK(d[0] == RamDisk::pattern(10 * 512));
}

TEST_CASE("a failing medium ends the command with ABRT") {
    Rig r;
    RamDisk& d = r.add_disk(1 << 20);
    r.start();
    d.fail_io = true;
    r.lba28(0, 0, 1, 1);
    r.command(0, kCmdReadSectors);
    CHECK(r.status() == (kStatusDrdy | kStatusErr));
    CHECK(r.error() == kErrorAbrt);
}

TEST_CASE("read-only images cannot be IDE disks") {
    Rig r;
    CHECK_THROWS_AS(r.ide->attach_disk(0, 0, std::make_unique<RamDisk>(1 << 20, true)),
                    hvm::UserError);
}
