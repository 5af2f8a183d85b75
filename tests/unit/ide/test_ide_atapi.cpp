// The ATAPI CD-ROM on the secondary master, through the ports: PACKET protocol, MMC commands,
// sense data, media changes, hostile lengths and LBAs, DMA.
#include <doctest/doctest.h>

#include "ide_test_support.hpp"

using namespace idetest;
using namespace hvm::ata;

namespace {
constexpr unsigned kCh = 1;
constexpr uint64_t kIsoSectors = 1024; // 2 MiB
constexpr uint32_t kTable = 0x1000, kBufA = 0x100000, kBufB = 0x180000;

std::string str(const std::vector<uint8_t>& v, size_t off, size_t n) {
    return std::string(v.begin() + long(off), v.begin() + long(off + n));
}
uint32_t be32(const std::vector<uint8_t>& v, size_t off) {
    return uint32_t(v[off]) << 24 | uint32_t(v[off + 1]) << 16 | uint32_t(v[off + 2]) << 8 |
           v[off + 3];
}

struct CdRig : Rig {
    CdRig(uint64_t bytes = kIsoSectors * 2048, bool async = true) : Rig(async) {
        add_cdrom(bytes);
        start();
    }
    uint8_t sense_key() { return request_sense()[2]; }
    // Runs a command expected to fail; returns {sense key, ASC} via REQUEST SENSE.
    std::pair<uint8_t, uint8_t> fails(std::vector<uint8_t> cdb) {
        packet(kCh, std::move(cdb));
        uint8_t st = status(kCh);
        CHECK((st & kStatusErr));
        auto s = request_sense();
        return {s[2], s[12]};
    }
    void change(uint64_t bytes) {
        std::lock_guard g(lock);
        ide->drive(kCh, 0).change_medium(std::make_unique<RamDisk>(bytes, true, false));
    }
};
} // namespace

TEST_CASE("IDENTIFY PACKET DEVICE and the packet device's status") {
    CdRig r;
    auto w = r.identify(kCh, 0, kCmdIdentifyPacket);
    CHECK(w[0] == 0x85C0);
    CHECK(Rig::ata_string(w, 10, 10) == "QM00003");
    CHECK(Rig::ata_string(w, 27, 20) == "QEMU DVD-ROM");
    CHECK(w[49] == 0x0300);
    CHECK(w[63] == 0x07);
    CHECK(w[88] == (0x3F | 1 << 13));
    CHECK(r.status(kCh) == kStatusDrdy); // bit 4 (SERVICE) reads 0
}

TEST_CASE("INQUIRY, READ CAPACITY, MODE SENSE, GET CONFIGURATION") {
    CdRig r;
    r.packet(kCh, {0x12, 0, 0, 0, 96});
    CHECK(r.irq(kCh));
    CHECK(r.inb(Rig::base(kCh) + 2) == kIntReasonIo); // data to the host
    auto inq = r.atapi_read_reply(kCh);
    REQUIRE(inq.size() == 36);
    CHECK(inq[0] == 0x05);
    CHECK(inq[1] == 0x80);
    CHECK(inq[4] == 31);
    CHECK(str(inq, 8, 8) == "QEMU    ");
    CHECK(str(inq, 16, 16) == "QEMU DVD-ROM    ");
    CHECK(str(inq, 32, 4) == "2.5+");
    CHECK(r.status(kCh) == kStatusDrdy);
    CHECK(r.inb(Rig::base(kCh) + 2) == (kIntReasonIo | kIntReasonCoD)); // command complete

    r.packet(kCh, {0x12, 0, 0, 0, 5}); // allocation length shorter than the data
    CHECK(r.atapi_read_reply(kCh).size() == 5);

    r.packet(kCh, {0x25});
    auto cap = r.atapi_read_reply(kCh);
    REQUIRE(cap.size() == 8);
    CHECK(be32(cap, 0) == kIsoSectors - 1);
    CHECK(be32(cap, 4) == 2048);

    r.packet(kCh, {0x5A, 0, 0x2A, 0, 0, 0, 0, 0, 64});
    auto caps = r.atapi_read_reply(kCh);
    REQUIRE(caps.size() == 30);
    CHECK(caps[8] == 0x2A);
    CHECK(caps[9] == 20);
    CHECK((caps[16] << 8 | caps[17]) == 704);
    r.packet(kCh, {0x5A, 0, 0x01, 0, 0, 0, 0, 0, 64});
    CHECK(r.atapi_read_reply(kCh).size() == 16);
    CHECK(r.fails({0x5A, 0, 0x3F, 0, 0, 0, 0, 0, 64}) == std::pair<uint8_t, uint8_t>{5, 0x24});
    CHECK(r.fails({0x5A, 0, 0xC1, 0, 0, 0, 0, 0, 64}) == std::pair<uint8_t, uint8_t>{5, 0x39});

    r.packet(kCh, {0x46, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}); // huge allocation length
    auto cfg = r.atapi_read_reply(kCh);
    REQUIRE(cfg.size() == 20);
    CHECK(be32(cfg, 0) == 16);
    CHECK((cfg[6] << 8 | cfg[7]) == 0x0008); // a CD-sized medium
    CHECK((cfg[12] << 8 | cfg[13]) == 0x0010);
    CHECK(cfg[14] == 0);
    CHECK((cfg[16] << 8 | cfg[17]) == 0x0008);
    CHECK(cfg[18] == 1);

    r.packet(kCh, {0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8});
    CHECK(r.atapi_read_reply(kCh).size() == 8);
    r.packet(kCh, {0x51, 0, 0, 0, 0, 0, 0, 0, 34});
    auto di = r.atapi_read_reply(kCh);
    REQUIRE(di.size() == 34);
    CHECK(di[2] == 0x0E);
}

TEST_CASE("a DVD-sized medium reports the DVD-ROM profile") {
    CdRig r(1ull << 30);
    r.packet(kCh, {0x46, 0, 0, 0, 0, 0, 0, 0, 32});
    auto cfg = r.atapi_read_reply(kCh);
    CHECK((cfg[6] << 8 | cfg[7]) == 0x0010);
    CHECK(cfg[14] == 1);
    r.packet(kCh, {0xAD, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x04});
    auto phys = r.atapi_read_reply(kCh);
    REQUIRE(phys.size() == 2052);
    CHECK(be32(phys, 12) == (1u << 19) - 1);
}

TEST_CASE("READ(10) by PIO: DRQ blocks follow the byte count limit") {
    CdRig r;
    r.packet(kCh, {0x28, 0, 0, 0, 0, 10, 0, 0, 3}, 4096);
    int blocks = 0;
    auto data = r.atapi_read_reply(kCh, &blocks);
    REQUIRE(data.size() == 3 * 2048);
    CHECK(blocks == 2); // 4096 (two sectors in one DRQ block) + 2048
    bool same = true;
    for (size_t i = 0; i < data.size(); i++) same &= data[i] == RamDisk::pattern(10 * 2048 + i);
    CHECK(same);
    CHECK(r.status(kCh) == kStatusDrdy);

    // An odd limit is rounded down to even when it cuts the transfer.
    r.packet(kCh, {0x28, 0, 0, 0, 0, 20, 0, 0, 1}, 1001);
    data = r.atapi_read_reply(kCh, &blocks);
    CHECK(blocks == 3); // 1000 + 1000 + 48
    REQUIRE(data.size() == 2048);
    CHECK(data[2047] == RamDisk::pattern(20 * 2048 + 2047));

    // READ(12) and a zero count.
    r.packet(kCh, {0xA8, 0, 0, 0, 0x03, 0xFF, 0, 0, 0, 1});
    data = r.atapi_read_reply(kCh);
    REQUIRE(data.size() == 2048);
    CHECK(data[0] == RamDisk::pattern(1023ull * 2048));
    r.packet(kCh, {0x28, 0, 0, 0, 0, 0, 0, 0, 0});
    CHECK(r.status(kCh) == kStatusDrdy);
}

TEST_CASE("hostile LBAs and counts: ILLEGAL REQUEST / LBA OUT OF RANGE, no read") {
    CdRig r;
    int reads = r.cd->reads;
    using P = std::pair<uint8_t, uint8_t>;
    CHECK(r.fails({0x28, 0, 0, 0, 0x04, 0x00, 0, 0, 1}) == P{5, 0x21});          // LBA 1024
    CHECK(r.fails({0x28, 0, 0, 0, 0x03, 0xFF, 0, 0, 2}) == P{5, 0x21});          // 1023 + 2
    CHECK(r.fails({0xA8, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2}) == P{5, 0x21}); // 32-bit wrap
    CHECK(r.fails({0xA8, 0, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF}) == P{5, 0x21});
    CHECK(r.fails({0xBE, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 2, 0x10}) == P{5, 0x21});
    CHECK(r.fails({0x2B, 0, 0, 0, 0x04, 0x00}) == P{5, 0x21});
    CHECK(r.cd->reads == reads);
    // The error register carries the sense key.
    r.packet(kCh, {0x28, 0, 0, 0, 0x04, 0x00, 0, 0, 1});
    CHECK(r.status(kCh) == (kStatusDrdy | kStatusErr));
    CHECK(r.error(kCh) == 0x50);
    CHECK(r.inb(Rig::base(kCh) + 2) == (kIntReasonIo | kIntReasonCoD));
    // Sense describes the failed command, then a good command clears it.
    auto s = r.request_sense();
    REQUIRE(s.size() == 18);
    CHECK(s[0] == 0xF0);
    CHECK(s[2] == 5);
    CHECK(s[7] == 10);
    CHECK(s[12] == 0x21);
    r.packet(kCh, {0x00});
    CHECK(r.request_sense()[2] == 0);
    // Unknown opcode.
    CHECK(r.fails({0xFF}) == P{5, 0x20});
}

TEST_CASE("hostile byte count limits") {
    CdRig r;
    // Zero: the data command is aborted at the ATA level, with an interrupt.
    r.packet(kCh, {0x12, 0, 0, 0, 36}, 0);
    CHECK(r.irq(kCh));
    CHECK(r.status(kCh) == (kStatusDrdy | kStatusErr));
    CHECK(r.error(kCh) == kErrorAbrt);
    // Zero is fine for a command without data.
    r.packet(kCh, {0x00}, 0);
    CHECK(r.status(kCh) == kStatusDrdy);
    // One byte cannot carry a word of a longer reply: aborted, never a zero-length DRQ block.
    r.packet(kCh, {0x28, 0, 0, 0, 0, 1, 0, 0, 1}, 1);
    CHECK(r.status(kCh) == (kStatusDrdy | kStatusErr));
    // A one-byte reply fits a limit of 1; the word read returns it padded.
    r.packet(kCh, {0x12, 0, 0, 0, 1}, 1);
    CHECK(r.inb(Rig::base(kCh) + 4) == 1);
    CHECK(r.inw(Rig::base(kCh)) == 0x05);
    CHECK(r.status(kCh) == kStatusDrdy);
    // Reading past the end of a block returns 0 and moves nothing.
    CHECK(r.inw(Rig::base(kCh)) == 0);
    // Overlapped PACKET is not supported.
    r.outb(Rig::base(kCh) + 1, 0x02);
    r.command(kCh, 0xA0);
    CHECK(r.error(kCh) == kErrorAbrt);
}

TEST_CASE("READ TOC formats 0, 1 and 2 in LBA and MSF") {
    CdRig r;
    r.packet(kCh, {0x43, 0, 0, 0, 0, 0, 0, 0, 100, 0});
    auto toc = r.atapi_read_reply(kCh);
    REQUIRE(toc.size() == 20);
    CHECK((toc[0] << 8 | toc[1]) == 18);
    CHECK(toc[2] == 1);
    CHECK(toc[3] == 1);
    CHECK(toc[5] == 0x14);
    CHECK(toc[6] == 1);
    CHECK(be32(toc, 8) == 0);
    CHECK(toc[14] == 0xAA);
    CHECK(be32(toc, 16) == kIsoSectors);

    r.packet(kCh, {0x43, 0x02, 0, 0, 0, 0, 0, 0, 100, 0}); // MSF
    toc = r.atapi_read_reply(kCh);
    REQUIRE(toc.size() == 20);
    CHECK(toc[9] == 0);
    CHECK(toc[10] == 2); // 00:02:00
    CHECK(toc[11] == 0);
    CHECK(toc[17] == 0); // 1024 + 150 frames = 00:15:49
    CHECK(toc[18] == 15);
    CHECK(toc[19] == 49);

    r.packet(kCh, {0x43, 0, 0, 0, 0, 0, 0xAA, 0, 100, 0}); // lead-out only
    CHECK(r.atapi_read_reply(kCh).size() == 12);
    CHECK(r.fails({0x43, 0, 0, 0, 0, 0, 2, 0, 100, 0}) == std::pair<uint8_t, uint8_t>{5, 0x24});

    r.packet(kCh, {0x43, 0, 0, 0, 0, 0, 0, 0, 100, 0x40}); // format 1 (SFF-8020 position)
    toc = r.atapi_read_reply(kCh);
    REQUIRE(toc.size() == 12);
    CHECK(toc[1] == 0x0A);
    r.packet(kCh, {0x43, 0, 0x01, 0, 0, 0, 0, 0, 100, 0}); // format 1 (MMC position)
    CHECK(r.atapi_read_reply(kCh).size() == 12);

    r.packet(kCh, {0x43, 0, 0, 0, 0, 0, 0, 0, 100, 0x80}); // format 2: full TOC
    toc = r.atapi_read_reply(kCh);
    REQUIRE(toc.size() == 48);
    CHECK((toc[0] << 8 | toc[1]) == 46);
    CHECK(toc[7] == 0xA0);
    CHECK(toc[18] == 0xA1);
    CHECK(toc[29] == 0xA2);
    CHECK(be32(toc, 33) == kIsoSectors);
    CHECK(toc[40] == 1);

    r.packet(kCh, {0x43, 0, 0, 0, 0, 0, 0, 0, 4, 0}); // short allocation length
    CHECK(r.atapi_read_reply(kCh).size() == 4);
}

TEST_CASE("media change: NOT READY, then UNIT ATTENTION, and a NewMedia event") {
    CdRig r;
    using P = std::pair<uint8_t, uint8_t>;
    auto gesn = [&] {
        r.packet(kCh, {0x4A, 0x01, 0, 0, 0x10, 0, 0, 0, 8});
        return r.atapi_read_reply(kCh);
    };
    auto e = gesn();
    REQUIRE(e.size() == 8);
    CHECK(e[2] == 4);                                                   // media class
    CHECK(e[3] == 0x10);                                                // supported: media
    CHECK(e[4] == 0);                                                   // no change
    CHECK(e[5] == 2);                                                   // medium present
    CHECK(r.fails({0x4A, 0x00, 0, 0, 0x10, 0, 0, 0, 8}) == P{5, 0x24}); // async not supported

    r.change(4 << 20);
    e = gesn();
    CHECK(e[4] == 2); // NewMedia
    CHECK(gesn()[4] == 0);
    // INQUIRY is allowed through; TEST UNIT READY sees the tray cycle.
    r.packet(kCh, {0x12, 0, 0, 0, 36});
    CHECK(r.atapi_read_reply(kCh).size() == 36);
    r.packet(kCh, {0x00});
    CHECK(r.status(kCh) == (kStatusDrdy | kStatusErr));
    CHECK(r.error(kCh) == 0x20); // NOT READY
    r.packet(kCh, {0x00});
    CHECK(r.error(kCh) == 0x60); // UNIT ATTENTION
    r.packet(kCh, {0x25});       // still pending: CHECK CONDITION without data
    CHECK(r.status(kCh) == kStatusErr);
    CHECK(r.error(kCh) == (kErrorMc | 0x60));
    auto s = r.request_sense();
    CHECK(s[2] == 6);
    CHECK(s[12] == 0x28);
    r.packet(kCh, {0x25});
    auto cap = r.atapi_read_reply(kCh);
    REQUIRE(cap.size() == 8);
    CHECK(be32(cap, 0) == (4u << 9) - 1); // the new medium's size
}

TEST_CASE("eject: API and START STOP UNIT, with PREVENT ALLOW MEDIUM REMOVAL") {
    CdRig r;
    using P = std::pair<uint8_t, uint8_t>;
    r.packet(kCh, {0x1B, 0, 0, 0, 0x02}); // eject
    CHECK(r.status(kCh) == kStatusDrdy);
    CHECK(r.fails({0x00}) == P{2, 0x3A});
    r.packet(kCh, {0x1B, 0, 0, 0, 0x03}); // load
    r.packet(kCh, {0x00});
    CHECK(r.status(kCh) == kStatusDrdy);

    r.packet(kCh, {0x1E, 0, 0, 0, 1}); // prevent removal
    CHECK(r.fails({0x1B, 0, 0, 0, 0x02}) == P{2, 0x53});
    {
        std::lock_guard g(r.lock);
        CHECK_FALSE(r.ide->drive(kCh, 0).eject());
    }
    r.packet(kCh, {0x4A, 0x01, 0, 0, 0x10, 0, 0, 0, 8});
    CHECK(r.atapi_read_reply(kCh)[4] == 1); // EjectRequest
    r.packet(kCh, {0x1E, 0, 0, 0, 0});      // allow
    {
        std::lock_guard g(r.lock);
        CHECK(r.ide->drive(kCh, 0).eject());
    }
    CHECK(r.fails({0x00}) == P{2, 0x3A});
    CHECK(r.fails({0x28, 0, 0, 0, 0, 0, 0, 0, 1}) == P{2, 0x3A});
    r.packet(kCh, {0x4A, 0x01, 0, 0, 0x10, 0, 0, 0, 8});
    auto e = r.atapi_read_reply(kCh);
    CHECK(e[5] == 1); // tray open
}

TEST_CASE("an empty drive answers INQUIRY and reports no medium") {
    Rig r;
    r.add_cdrom(0);
    r.start();
    r.packet(kCh, {0x12, 0, 0, 0, 36});
    CHECK(r.atapi_read_reply(kCh).size() == 36);
    r.packet(kCh, {0x00});
    CHECK(r.error(kCh) == 0x20);
    auto s = r.request_sense();
    CHECK(s[2] == 2);
    CHECK(s[12] == 0x3A);
}

TEST_CASE("READ(10) and INQUIRY with DMA through the bus master") {
    for (bool async : {true, false}) {
        CAPTURE(async);
        CdRig r(kIsoSectors * 2048, async);
        r.write_prd(kTable, {{kBufA, 2048}, {kBufB, 4096}});
        r.bm_setup(kCh, kTable, true);
        r.packet(kCh, {0x28, 0, 0, 0, 0, 7, 0, 0, 3}, 0xFFFE, true);
        CHECK((r.alt_status(kCh) & kStatusDrq) != 0);
        r.bm_start(kCh, true);
        r.drain();
        CHECK(r.irq(kCh));
        CHECK(r.bm_status(kCh) == IdeChannel::kBmStatusInterrupt);
        CHECK(r.status(kCh) == kStatusDrdy);
        CHECK(r.inb(Rig::base(kCh) + 2) == (kIntReasonIo | kIntReasonCoD));
        bool same = true;
        for (unsigned i = 0; i < 2048; i++)
            same &= r.ram[kBufA + i] == RamDisk::pattern(7 * 2048 + i);
        for (unsigned i = 0; i < 4096; i++)
            same &= r.ram[kBufB + i] == RamDisk::pattern(8 * 2048 + i);
        CHECK(same);
        r.outb(r.bm(kCh), 0x08);

        r.write_prd(kTable, {{kBufA, 512}});
        r.bm_setup(kCh, kTable, true);
        r.bm_start(kCh, true);
        r.packet(kCh, {0x12, 0, 0, 0, 36}, 0, true); // BCL 0 is fine with DMA
        r.drain();
        CHECK(r.status(kCh) == kStatusDrdy);
        CHECK(std::string(reinterpret_cast<char*>(r.ram + kBufA + 8), 4) == "QEMU");
        r.outb(r.bm(kCh), 0x08);

        // A PRD table too short for the read: no interrupt, ACTIVE cleared.
        r.write_prd(kTable, {{kBufA, 2048}});
        r.bm_setup(kCh, kTable, true);
        r.packet(kCh, {0x28, 0, 0, 0, 0, 7, 0, 0, 2}, 0xFFFE, true);
        r.status(kCh);
        r.bm_start(kCh, true);
        r.drain();
        CHECK_FALSE(r.irq(kCh));
        CHECK(r.bm_status(kCh) == 0);
    }
}
