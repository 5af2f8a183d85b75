// RTL8139 in C mode: the four transmit descriptors, the receive ring (header, CRC, alignment,
// wrap-around with WRAP clear and set, CAPR/CBR, BUFE, overflow and backpressure), the receive
// address filter, loopback, and DMA aimed outside guest RAM.
#include <doctest/doctest.h>

#include "tests/unit/net/net_test_support.hpp"

using namespace hvm;
using namespace hvm::test;

namespace {

constexpr uint32_t kRing = 0x20000;

void start_rx(NicRig& r, uint32_t rcr, uint32_t rbstart = kRing) {
    r.outb(Rtl8139::kCr, Rtl8139::kCrRe | Rtl8139::kCrTe);
    r.outl(Rtl8139::kRbstart, rbstart);
    r.outl(Rtl8139::kRcr, rcr);
}

// What 8139too's rx loop does after a packet: CAPR = CBR - 16.
void consume_all(NicRig& r) {
    r.outw(Rtl8139::kCapr, uint16_t(r.inw(Rtl8139::kCbr) - 16));
}

constexpr uint32_t kAcceptAll = Rtl8139::kRcrAb | Rtl8139::kRcrAm | Rtl8139::kRcrApm;

} // namespace

TEST_CASE("TX: four descriptors round robin, OWN/TOK, ISR.TOK and the frame on the backend") {
    NicRig r;
    r.outb(Rtl8139::kCr, Rtl8139::kCrTe);
    r.outw(Rtl8139::kImr, Rtl8139::kIntTok);
    for (unsigned k = 0; k < 6; k++) {
        unsigned d = k % 4;
        auto frame = make_frame(kPeerMac, kNicMac, 0x0800, 60 + 100 * k, uint8_t(k));
        uint32_t buf = 0x10000 + d * 0x800;
        r.put(buf, frame);
        r.outl(Rtl8139::kTsad0 + 4 * d, buf);
        CHECK(r.inl(Rtl8139::kTsad0 + 4 * d) == buf);
        // Size and an early-TX threshold (bits 21:16), OWN clear: the chip takes the buffer.
        r.outl(Rtl8139::kTsd0 + 4 * d, uint32_t(frame.size()) | (8u << 16));
        REQUIRE(r.backend.sent.size() == k + 1);
        CHECK(r.backend.sent.back() == frame);
        uint32_t tsd = r.inl(Rtl8139::kTsd0 + 4 * d);
        CHECK(tsd == (uint32_t(frame.size()) | (8u << 16) | Rtl8139::kTsdOwn | Rtl8139::kTsdTok));
        CHECK((r.inw(Rtl8139::kTsad) >> (12 + d) & 1) == 1u); // TOK
        CHECK((r.inw(Rtl8139::kTsad) >> d & 1) == 1u);        // OWN
        CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntTok);
        CHECK(r.irq());
        r.outw(Rtl8139::kIsr, Rtl8139::kIntTok);
        CHECK_FALSE(r.irq());
    }
    // The current descriptor is now 2. Handing over descriptor 3 first sends nothing.
    r.outl(Rtl8139::kTsd0 + 12, 60);
    CHECK(r.backend.sent.size() == 6);
    CHECK((r.inw(Rtl8139::kTsad) & 0x8) == 0); // TSD3 handed to the chip, not yet sent
    // Byte and word writes to TSD are not transmit commands (QEMU: dword only).
    r.outw(Rtl8139::kTsd0 + 8, 60);
    CHECK(r.backend.sent.size() == 6);
}

TEST_CASE("TX: nothing is sent while the transmitter is off; TCR writes need TE") {
    NicRig r;
    r.outl(Rtl8139::kTsad0, 0x10000);
    r.outl(Rtl8139::kTcr, 0x03000700);
    CHECK(r.inl(Rtl8139::kTcr) == 0x74800000u); // ignored while TE = 0 (QEMU)
    r.outl(Rtl8139::kTsd0, 100);
    CHECK(r.backend.sent.empty());
    CHECK(r.inl(Rtl8139::kTsd0) == 100u); // the guest's value, OWN clear
    r.outb(Rtl8139::kCr, Rtl8139::kCrTe);
    r.outl(Rtl8139::kTcr, 0x03000700);
    CHECK(r.inl(Rtl8139::kTcr) == 0x77800700u); // IFG and MXDMA; version bits kept
    r.outb(Rtl8139::kTcr, 0x10);                // byte write to the low byte (Windows)
    CHECK(r.inl(Rtl8139::kTcr) == 0x77800710u);
    r.outl(Rtl8139::kTsd0, 100);
    CHECK(r.backend.sent.size() == 1);
}

TEST_CASE("TX: a buffer outside guest RAM aborts the descriptor (TABT, TER, SERR)") {
    NicRig r;
    r.outb(Rtl8139::kCr, Rtl8139::kCrTe);
    r.outw(Rtl8139::kImr, 0xFFFF);
    r.outl(Rtl8139::kTsad0, 0x00200000); // past the 1 MiB of RAM
    r.outl(Rtl8139::kTsd0, 0x1FFF);
    CHECK(r.backend.sent.empty());
    uint32_t tsd = r.inl(Rtl8139::kTsd0);
    CHECK((tsd & Rtl8139::kTsdTabt) != 0);
    CHECK((tsd & Rtl8139::kTsdOwn) != 0);
    CHECK((tsd & Rtl8139::kTsdTok) == 0);
    CHECK((r.inw(Rtl8139::kTsad) & 0x10) != 0); // TABT0
    CHECK(r.inw(Rtl8139::kIsr) == (Rtl8139::kIntTer | Rtl8139::kIntSerr));
    CHECK(r.irq());
    CHECK((r.pci.config_read(0, r.kDevfn, 0x06, 2) & pci::kStatusRecMasterAbort) != 0);
    // A buffer that starts in RAM and runs off its end.
    r.outl(Rtl8139::kTsad0 + 4, NicRig::kRamSize - 10);
    r.outl(Rtl8139::kTsd0 + 4, 100);
    CHECK((r.inl(Rtl8139::kTsd0 + 4) & Rtl8139::kTsdTabt) != 0);
    // Bus mastering off: no DMA at all.
    r.pci.config_write(0, r.kDevfn, 0x04, 2, 0x0103);
    r.outl(Rtl8139::kTsad0 + 8, 0x1000);
    r.outl(Rtl8139::kTsd0 + 8, 64);
    CHECK((r.inl(Rtl8139::kTsd0 + 8) & Rtl8139::kTsdTabt) != 0);
    CHECK(r.backend.sent.empty());
}

TEST_CASE("RX ring: header, frame, CRC, dword alignment, CAPR/CBR and BUFE") {
    NicRig r;
    start_rx(r, kAcceptAll);
    r.outw(Rtl8139::kImr, Rtl8139::kIntRok);
    CHECK((r.inb(Rtl8139::kCr) & Rtl8139::kCrBufe) != 0);
    auto f1 = make_frame(kNicMac, kPeerMac, 0x0800, 101);
    REQUIRE(r.nic.receive(f1));
    CHECK(r.get32(kRing) == (0x4001u | (105u << 16))); // PAM | ROK, length with CRC
    CHECK(r.get(kRing + 4, 101) == f1);
    CHECK(r.get32(kRing + 4 + 101) == ref_crc32(f1));
    CHECK(r.inw(Rtl8139::kCbr) == 112u); // align4(101 + 8)
    CHECK((r.inb(Rtl8139::kCr) & Rtl8139::kCrBufe) == 0);
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntRok);
    CHECK(r.irq());
    auto f2 = make_frame(kNicMac, kPeerMac, 0x0806, 64, 9);
    REQUIRE(r.nic.receive(f2));
    CHECK(r.get32(kRing + 112) == (0x4001u | (68u << 16)));
    CHECK(r.get(kRing + 116, 64) == f2);
    CHECK(r.inw(Rtl8139::kCbr) == 112u + 72u);
    // The driver consumes the first packet, then the second.
    r.outw(Rtl8139::kCapr, 112 - 16);
    CHECK(r.inw(Rtl8139::kCapr) == 96u);
    CHECK((r.inb(Rtl8139::kCr) & Rtl8139::kCrBufe) == 0);
    consume_all(r);
    CHECK((r.inb(Rtl8139::kCr) & Rtl8139::kCrBufe) != 0);
    r.outw(Rtl8139::kIsr, Rtl8139::kIntRok);
    CHECK_FALSE(r.irq());
    // A runt is padded to 60 bytes with zeros; the CRC covers the padded frame.
    auto runt = make_frame(kNicMac, kPeerMac, 0x0806, 42);
    REQUIRE(r.nic.receive(runt));
    auto padded = runt;
    padded.resize(60, 0);
    CHECK(r.get32(kRing + 184) == (0x4001u | (64u << 16)));
    CHECK(r.get(kRing + 188, 60) == padded);
    CHECK(r.get32(kRing + 248) == ref_crc32(padded));
    // Over 1518 bytes: dropped in ring mode (consumed, nothing written).
    uint16_t cbr = r.inw(Rtl8139::kCbr);
    CHECK(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x0800, 1519)));
    CHECK(r.inw(Rtl8139::kCbr) == cbr);
    CHECK(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x8100, 1518)));
    CHECK(r.inw(Rtl8139::kCbr) == cbr + 1528u);
}

TEST_CASE("RX ring wrap with WRAP clear: the frame is split at the ring end") {
    NicRig r;
    for (uint32_t a = kRing + 8192; a < kRing + 8192 + 2048; a += 4) r.put32(a, 0xEEEEEEEE);
    start_rx(r, kAcceptAll); // 8 KiB, WRAP clear
    for (int i = 0; i < 8; i++) {
        REQUIRE(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x0800, 1000, uint8_t(i))));
        consume_all(r);
    }
    CHECK(r.inw(Rtl8139::kCbr) == 8064u);
    auto f = make_frame(kNicMac, kPeerMac, 0x0800, 1000, 77);
    REQUIRE(r.nic.receive(f));
    CHECK(r.get32(kRing + 8064) == (0x4001u | (1004u << 16)));
    // 124 bytes fit before the end; the remaining 876 continue at RBSTART, then the CRC.
    CHECK(r.get(kRing + 8068, 124) == std::vector<uint8_t>(f.begin(), f.begin() + 124));
    CHECK(r.get(kRing, 876) == std::vector<uint8_t>(f.begin() + 124, f.end()));
    CHECK(r.get32(kRing + 876) == ref_crc32(f));
    CHECK(r.inw(Rtl8139::kCbr) == 880u);
    CHECK(r.get32(kRing + 8192) == 0xEEEEEEEEu); // nothing past the ring
    // The driver's CAPR arithmetic works across the wrap.
    consume_all(r);
    CHECK((r.inb(Rtl8139::kCr) & Rtl8139::kCrBufe) != 0);
}

TEST_CASE("RX ring wrap with WRAP set: the frame continues past the end, contiguous") {
    NicRig r;
    r.put32(kRing, 0xEEEEEEEE);
    start_rx(r, kAcceptAll | Rtl8139::kRcrWrap);
    for (int i = 0; i < 8; i++) {
        REQUIRE(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x0800, 1000, uint8_t(i))));
        consume_all(r);
    }
    r.put32(kRing, 0xEEEEEEEE);
    auto f = make_frame(kNicMac, kPeerMac, 0x0800, 1000, 77);
    REQUIRE(r.nic.receive(f));
    CHECK(r.get(kRing + 8068, 1000) == f);
    CHECK(r.get32(kRing + 9068) == ref_crc32(f));
    CHECK(r.get32(kRing) == 0xEEEEEEEEu); // the start of the ring is untouched
    CHECK(r.inw(Rtl8139::kCbr) == 880u);  // the write pointer itself wraps
}

TEST_CASE("RX ring of 64 KiB wraps by splitting even with WRAP set (QEMU)") {
    NicRig r;
    start_rx(r, kAcceptAll | Rtl8139::kRcrWrap | 0x1800);
    unsigned n = 0;
    while (r.inw(Rtl8139::kCbr) + 1008u <= 65536u) {
        REQUIRE(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x0800, 1000, uint8_t(n++))));
        consume_all(r);
    }
    uint32_t cbr = r.inw(Rtl8139::kCbr);
    CHECK(cbr == 65 * 1008u);
    auto f = make_frame(kNicMac, kPeerMac, 0x0800, 1000, 99);
    REQUIRE(r.nic.receive(f));
    uint32_t first = 65536 - (cbr + 4);
    CHECK(r.get(kRing + cbr + 4, first) == std::vector<uint8_t>(f.begin(), f.begin() + first));
    CHECK(r.get(kRing, 1000 - first) == std::vector<uint8_t>(f.begin() + first, f.end()));
}

TEST_CASE("RX ring overflow: RXOVW, MPC, backpressure until the driver frees space") {
    NicRig r;
    start_rx(r, kAcceptAll);
    r.outw(Rtl8139::kImr, Rtl8139::kIntRok);
    for (int i = 0; i < 8; i++)
        REQUIRE(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x0800, 1000, uint8_t(i))));
    CHECK(r.inw(Rtl8139::kCbr) == 8064u);
    CHECK_FALSE(r.nic.can_receive()); // 128 bytes free
    auto f = make_frame(kNicMac, kPeerMac, 0x0800, 1000, 50);
    CHECK_FALSE(r.nic.receive(f));
    CHECK((r.inw(Rtl8139::kIsr) & Rtl8139::kIntRxovw) != 0);
    CHECK(r.inl(Rtl8139::kMpc) == 1u);
    CHECK(r.inw(Rtl8139::kCbr) == 8064u);
    // With RXOVW unmasked QEMU lets the frame be offered (and refused) to raise the interrupt.
    r.outw(Rtl8139::kImr, Rtl8139::kIntRok | Rtl8139::kIntRxovw);
    CHECK(r.nic.can_receive());
    r.outw(Rtl8139::kImr, Rtl8139::kIntRok);
    // The driver consumes two packets: the backend is told, and the frame goes in.
    int before = r.backend.ready_calls;
    r.outw(Rtl8139::kCapr, 2016 - 16);
    CHECK(r.backend.ready_calls == before + 1);
    CHECK(r.nic.can_receive());
    CHECK(r.nic.receive(f));
    CHECK(r.get(kRing + 8068, 124) == std::vector<uint8_t>(f.begin(), f.begin() + 124));
    r.outl(Rtl8139::kMpc, 0);
    CHECK(r.inl(Rtl8139::kMpc) == 0u);
}

TEST_CASE("RX filter: unicast match and mismatch, broadcast, multicast hash, promiscuous") {
    NicRig r;
    start_rx(r, Rtl8139::kRcrApm);
    auto cbr = [&] { return r.inw(Rtl8139::kCbr); };
    // Our address: accepted with PAM.
    REQUIRE(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x0800, 60)));
    CHECK((r.get32(kRing) & 0xFFFF) == 0x4001u);
    uint16_t at = cbr();
    // Someone else's address, broadcast without AB, multicast without AM: consumed, dropped.
    CHECK(r.nic.receive(make_frame(kPeerMac, kNicMac, 0x0800, 60)));
    CHECK(r.nic.receive(make_frame(kBroadcastMac, kPeerMac, 0x0806, 60)));
    const Mac mcast{0x01, 0x00, 0x5E, 0x00, 0x00, 0x01};
    CHECK(r.nic.receive(make_frame(mcast, kPeerMac, 0x0800, 60)));
    CHECK(cbr() == at);
    // Broadcast with AB: BAR.
    r.outl(Rtl8139::kRcr, Rtl8139::kRcrApm | Rtl8139::kRcrAb);
    REQUIRE(r.nic.receive(make_frame(kBroadcastMac, kPeerMac, 0x0806, 60)));
    CHECK((r.get32(kRing) & 0xFFFF) == 0x2001u);
    // Multicast with AM: only if its hash bit is set in MAR.
    r.outl(Rtl8139::kRcr, Rtl8139::kRcrAm);
    CHECK(r.nic.receive(make_frame(mcast, kPeerMac, 0x0800, 60)));
    CHECK(cbr() == 0u);
    unsigned idx = ref_mcast_index(mcast);
    r.outb(Rtl8139::kMar0 + idx / 8, uint8_t(1u << (idx % 8)));
    REQUIRE(r.nic.receive(make_frame(mcast, kPeerMac, 0x0800, 60)));
    CHECK((r.get32(kRing) & 0xFFFF) == 0x8001u);
    CHECK(cbr() == 68u);
    // Another group whose hash bit is clear stays out.
    Mac other = mcast;
    for (uint8_t b = 2; ref_mcast_index(other) == idx; b++) other[5] = b;
    CHECK(r.nic.receive(make_frame(other, kPeerMac, 0x0800, 60)));
    CHECK(cbr() == 68u);
    // Promiscuous: anything, and QEMU sets none of BAR/MAR/PAM.
    r.outl(Rtl8139::kRcr, Rtl8139::kRcrAap);
    REQUIRE(r.nic.receive(make_frame(kPeerMac, kNicMac, 0x0800, 60)));
    CHECK((r.get32(kRing) & 0xFFFF) == 0x0001u);
    CHECK(cbr() == 68u);
    // A MAC the guest programs into IDR is the one matched.
    r.outl(Rtl8139::kRcr, Rtl8139::kRcrApm);
    for (unsigned i = 0; i < 6; i++) r.outb(i, kPeerMac[i]);
    REQUIRE(r.nic.receive(make_frame(kPeerMac, kNicMac, 0x0800, 60)));
    CHECK(cbr() == 68u);
    // Receiver off: dropped, can_receive() stays true so the backend does not stall.
    r.outb(Rtl8139::kCr, Rtl8139::kCrTe);
    CHECK(r.nic.can_receive());
    CHECK(r.nic.receive(make_frame(kPeerMac, kNicMac, 0x0800, 60)));
    CHECK(cbr() == 68u);
}

TEST_CASE("loopback (TCR LBK): transmitted frames come back to the receiver, not the wire") {
    NicRig r;
    start_rx(r, kAcceptAll);
    r.outl(Rtl8139::kTcr, Rtl8139::kTcrLoopback);
    auto f = make_frame(kNicMac, kNicMac, 0x0800, 200);
    r.put(0x10000, f);
    r.outl(Rtl8139::kTsad0, 0x10000);
    r.outl(Rtl8139::kTsd0, 200);
    CHECK(r.backend.sent.empty());
    CHECK(r.inw(Rtl8139::kIsr) == (Rtl8139::kIntTok | Rtl8139::kIntRok));
    CHECK(r.get32(kRing) == (0x4001u | (204u << 16)));
    CHECK(r.get(kRing + 4, 200) == f);
    // A 3-byte loopback frame is padded before the filter looks at it.
    r.put(0x10000, make_frame(kNicMac, kNicMac, 0, 3));
    r.outl(Rtl8139::kTsad0 + 4, 0x10000);
    r.outl(Rtl8139::kTsd0 + 4, 3);
    CHECK(r.inw(Rtl8139::kCbr) == 208u);
}

TEST_CASE("RX ring outside guest RAM: SERR and master abort, nothing written, no crash") {
    NicRig r;
    start_rx(r, kAcceptAll, 0xFFFFF000u);
    r.outw(Rtl8139::kImr, Rtl8139::kIntSerr);
    CHECK(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x0800, 1500)));
    CHECK((r.inw(Rtl8139::kIsr) & Rtl8139::kIntSerr) != 0);
    CHECK(r.irq());
    CHECK((r.pci.config_read(0, r.kDevfn, 0x06, 2) & pci::kStatusRecMasterAbort) != 0);
    // A ring straddling the end of RAM: the part inside is written, the rest aborts.
    start_rx(r, kAcceptAll, NicRig::kRamSize - 64);
    CHECK(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x0800, 1000)));
    CHECK(r.get32(NicRig::kRamSize - 64) == (0x4001u | (1004u << 16)));
}
