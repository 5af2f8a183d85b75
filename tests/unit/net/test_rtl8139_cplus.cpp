// RTL8139C+ mode: descriptor rings for TX and RX, VLAN insertion and stripping, the tally
// counter dump, checksum offload and TCP large send (verified by recomputation), and the
// CVE-2015-5165 class of hostile headers and descriptors.
#include <doctest/doctest.h>

#include "devmodel/net/rtl8139_tx_offload.hpp"
#include "tests/unit/net/net_test_support.hpp"

using namespace hvm;
using namespace hvm::test;

namespace {

constexpr uint32_t kTxRing = 0x30000, kRxRing = 0x31000, kTxBufs = 0x40000, kRxBufs = 0x80000;
constexpr uint32_t kOwn = Rtl8139::kDescOwn, kEor = Rtl8139::kDescEor, kFs = Rtl8139::kDescFs,
                   kLs = Rtl8139::kDescLs;

// What 8139cp's cp_init_hw does, in its order.
void cplus_setup(NicRig& r) {
    r.outw(Rtl8139::kCpcr, Rtl8139::kCpRxEnb | Rtl8139::kCpTxEnb);
    r.outb(Rtl8139::kCr, Rtl8139::kCrRe | Rtl8139::kCrTe);
    r.outl(Rtl8139::kRcr, Rtl8139::kRcrAb | Rtl8139::kRcrAm | Rtl8139::kRcrApm);
    r.outl(Rtl8139::kTsad0, kTxRing);
    r.outl(Rtl8139::kTsad0 + 4, 0);
    r.outl(Rtl8139::kRdsarLo, kRxRing);
    r.outl(Rtl8139::kRdsarHi, 0);
    r.outw(Rtl8139::kImr, 0xFFFF);
}

void put_desc(NicRig& r, uint64_t at, uint32_t dw0, uint32_t dw1, uint64_t buf) {
    r.put32(at, dw0);
    r.put32(at + 4, dw1);
    r.put32(at + 8, uint32_t(buf));
    r.put32(at + 12, uint32_t(buf >> 32));
}

// Queues `frame` as one descriptor (FS|LS) at index `i` with extra dword-0 bits, and polls.
void send_one(NicRig& r, unsigned i, std::span<const uint8_t> frame, uint32_t flags,
              uint32_t dw1 = 0) {
    r.put(kTxBufs + i * 0x4000, frame);
    put_desc(r, kTxRing + 16 * i, kOwn | kFs | kLs | flags | uint32_t(frame.size()), dw1,
             kTxBufs + i * 0x4000);
    r.outb(Rtl8139::kTppoll, 0x40);
}

uint32_t mss_bits(unsigned mss) {
    return uint32_t(mss) << 16;
}

std::vector<std::vector<uint8_t>> offload(std::vector<uint8_t> frame, const CplusTxOffload& req) {
    std::vector<std::vector<uint8_t>> out;
    apply_cplus_tx_offload(
        frame, req, [&](std::span<const uint8_t> f) { out.emplace_back(f.begin(), f.end()); });
    return out;
}

} // namespace

TEST_CASE("C+ TX: a descriptor ring with FS/LS gathering, EOR wrap and OWN handed back") {
    NicRig r;
    cplus_setup(r);
    auto f = make_frame(kPeerMac, kNicMac, 0x0800, 300);
    send_one(r, 0, f, 0);
    REQUIRE(r.backend.sent.size() == 1);
    CHECK(r.backend.sent[0] == f);
    CHECK(r.get32(kTxRing) == (kFs | kLs | 300u)); // OWN cleared, nothing else changed
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntTok);
    CHECK(r.irq());
    r.outw(Rtl8139::kIsr, 0xFFFF);
    // Three segments, the last with EOR: one frame, and the ring goes back to descriptor 0.
    auto big = make_frame(kPeerMac, kNicMac, 0x0800, 1400, 3);
    r.put(kTxBufs + 0x10000, std::span(big).first(100));
    r.put(kTxBufs + 0x11000, std::span(big).subspan(100, 700));
    r.put(kTxBufs + 0x12000, std::span(big).subspan(800));
    put_desc(r, kTxRing + 16, kOwn | kFs | 100, 0, kTxBufs + 0x10000);
    put_desc(r, kTxRing + 32, kOwn | 700, 0, kTxBufs + 0x11000);
    put_desc(r, kTxRing + 48, kOwn | kLs | kEor | 600, 0, kTxBufs + 0x12000);
    r.outb(Rtl8139::kTppoll, 0x40);
    REQUIRE(r.backend.sent.size() == 2);
    CHECK(r.backend.sent[1] == big);
    CHECK((r.get32(kTxRing + 48) & kOwn) == 0);
    // Descriptor 0 is next (EOR); give it a frame.
    send_one(r, 0, f, 0);
    CHECK(r.backend.sent.size() == 3);
    // C+ transmitter disabled in CPCR: nothing moves.
    r.outw(Rtl8139::kCpcr, Rtl8139::kCpRxEnb);
    send_one(r, 1, f, 0);
    CHECK(r.backend.sent.size() == 3);
    // The high priority queue (TPPoll bit 7) is not served (QEMU).
    r.outw(Rtl8139::kCpcr, Rtl8139::kCpRxEnb | Rtl8139::kCpTxEnb);
    r.outb(Rtl8139::kTppoll, 0x80);
    CHECK(r.backend.sent.size() == 3);
    r.outb(Rtl8139::kTppoll, 0x40);
    CHECK(r.backend.sent.size() == 4);
}

TEST_CASE("C+ TX: a ring without EOR wraps after 64 descriptors; one poll sends at most 64") {
    NicRig r;
    cplus_setup(r);
    auto f = make_frame(kPeerMac, kNicMac, 0x0800, 60);
    r.put(kTxBufs, f);
    for (unsigned i = 0; i <= 64; i++)
        put_desc(r, kTxRing + 16 * i, kOwn | kFs | kLs | 60, 0, kTxBufs);
    r.outb(Rtl8139::kTppoll, 0x40);
    CHECK(r.backend.sent.size() == 64);
    CHECK((r.get32(kTxRing + 16 * 64) & kOwn) != 0); // never read: the ring has 64 entries
    r.outb(Rtl8139::kTppoll, 0x40);                  // descriptor 0 again, now the host's
    CHECK(r.backend.sent.size() == 64);
}

TEST_CASE("C+ TX: VLAN tag insertion (TAGC) and the DTCCR tally counter dump") {
    NicRig r;
    cplus_setup(r);
    auto f = make_frame(kPeerMac, kNicMac, 0x0800, 100);
    // 8139cp puts swab16(TCI) in dword 1: VLAN 10, priority 5 is TCI 0xA00A.
    send_one(r, 0, f, 0, Rtl8139::kTxTagc | 0x0AA0);
    REQUIRE(r.backend.sent.size() == 1);
    auto& t = r.backend.sent[0];
    REQUIRE(t.size() == 104);
    CHECK(std::equal(f.begin(), f.begin() + 12, t.begin()));
    CHECK(t[12] == 0x81);
    CHECK(t[13] == 0x00);
    CHECK(t[14] == 0xA0);
    CHECK(t[15] == 0x0A);
    CHECK(std::equal(f.begin() + 12, f.end(), t.begin() + 16));
    // Tally dump: TSD1:TSD0 (DTCCR) in C+ mode.
    r.put32(0x50000, 0xDEADBEEF);
    r.outl(Rtl8139::kTsd0 + 4, 0);
    r.outl(Rtl8139::kTsd0, 0x50000 | 0x8);
    CHECK((r.inl(Rtl8139::kTsd0) & 0x8) == 0); // command completes
    CHECK(r.get32(0x50000) == 1u);             // TxOk
    CHECK(r.get32(0x50004) == 0u);
    CHECK(r.backend.sent.size() == 1); // TSD writes no longer transmit
    // A dump aimed outside RAM is a master abort.
    r.outl(Rtl8139::kTsd0 + 4, 0x10);
    r.outl(Rtl8139::kTsd0, 0x8);
    CHECK((r.inw(Rtl8139::kIsr) & Rtl8139::kIntSerr) != 0);
}

TEST_CASE("C+ RX: descriptors, status bits, CRC, EOR, no free descriptor, VLAN stripping") {
    NicRig r;
    cplus_setup(r);
    put_desc(r, kRxRing, kOwn | 2048, 0, kRxBufs);
    put_desc(r, kRxRing + 16, kOwn | kEor | 2048, 0, kRxBufs + 0x1000);
    auto f = make_frame(kNicMac, kPeerMac, 0x0800, 100);
    CHECK(r.nic.can_receive());
    REQUIRE(r.nic.receive(f));
    CHECK(r.get(kRxBufs, 100) == f);
    CHECK(r.get32(kRxBufs + 100) == ref_crc32(f));
    CHECK(r.get32(kRxRing) == (kFs | kLs | Rtl8139::kRxStatusPam | 104u));
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntRok);
    auto b = make_frame(kBroadcastMac, kPeerMac, 0x0806, 60);
    REQUIRE(r.nic.receive(b));
    CHECK(r.get32(kRxRing + 16) == (kEor | kFs | kLs | Rtl8139::kRxStatusBar | 64u));
    // Back at descriptor 0, which the driver has not returned: dropped with RXOVW and MPC.
    CHECK(r.nic.receive(f));
    CHECK((r.inw(Rtl8139::kIsr) & Rtl8139::kIntRxovw) != 0);
    CHECK(r.inl(Rtl8139::kMpc) == 1u);
    // Returned, but its buffer is too small for frame + CRC: dropped the same way.
    put_desc(r, kRxRing, kOwn | 103, 0, kRxBufs);
    CHECK(r.nic.receive(f));
    CHECK(r.inl(Rtl8139::kMpc) == 2u);
    CHECK((r.get32(kRxRing) & kOwn) != 0);
    put_desc(r, kRxRing, kOwn | 104, 0, kRxBufs);
    REQUIRE(r.nic.receive(f));
    CHECK((r.get32(kRxRing) & kOwn) == 0);
    // VLAN stripping: the tag goes to dword 1 (TAVA + TCI as read little-endian).
    r.outw(Rtl8139::kCpcr, Rtl8139::kCpRxEnb | Rtl8139::kCpTxEnb | Rtl8139::kCpRxVlan);
    put_desc(r, kRxRing + 16, kOwn | kEor | 2048, 0xFFFF, kRxBufs + 0x1000);
    auto tagged = make_frame(kNicMac, kPeerMac, 0x8100, 200);
    tagged[14] = 0x00;
    tagged[15] = 0x64; // VLAN 100
    tagged[16] = 0x08;
    tagged[17] = 0x00;
    REQUIRE(r.nic.receive(tagged));
    std::vector<uint8_t> untagged(tagged.begin(), tagged.begin() + 12);
    untagged.insert(untagged.end(), tagged.begin() + 16, tagged.end());
    CHECK(r.get(kRxBufs + 0x1000, 196) == untagged);
    CHECK(r.get32(kRxBufs + 0x1000 + 196) == ref_crc32(tagged));
    CHECK(r.get32(kRxRing + 16) == (kEor | kFs | kLs | Rtl8139::kRxStatusPam | 200u));
    CHECK(r.get32(kRxRing + 20) == (Rtl8139::kRxTava | 0x6400u));
    // A tagged runt is padded back to 60 bytes after stripping.
    put_desc(r, kRxRing, kOwn | 2048, 0, kRxBufs);
    auto small = make_frame(kNicMac, kPeerMac, 0x8100, 60);
    REQUIRE(r.nic.receive(small));
    CHECK((r.get32(kRxRing) & 0x1FFF) == 64u);
    CHECK(r.get32(kRxBufs + 56) == 0u); // zero padding where the tag's bytes were
    // Ring mode rules do not apply: C+ takes frames up to its buffer size.
    put_desc(r, kRxRing + 16, kOwn | kEor | 4000, 0, kRxBufs + 0x1000);
    REQUIRE(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x0800, 3000)));
    CHECK((r.get32(kRxRing + 16) & 0x1FFF) == 3004u);
}

TEST_CASE("C+ RX: no ring address yet (Linux enables RX first) drops; bad addresses abort") {
    NicRig r;
    cplus_setup(r);
    r.outl(Rtl8139::kRdsarLo, 0);
    CHECK(r.nic.can_receive());
    CHECK(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x0800, 100)));
    CHECK(r.inw(Rtl8139::kIsr) == 0u);
    // Descriptor ring outside RAM.
    r.outl(Rtl8139::kRdsarLo, 0xFFFFFFF0u);
    r.outl(Rtl8139::kRdsarHi, 0x12345678u);
    CHECK(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x0800, 100)));
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntSerr);
    r.outw(Rtl8139::kIsr, 0xFFFF);
    // Buffer outside RAM: SERR, the descriptor stays with the chip.
    r.outl(Rtl8139::kRdsarLo, kRxRing);
    r.outl(Rtl8139::kRdsarHi, 0);
    put_desc(r, kRxRing, kOwn | 2048, 0, 0xFFFFFFFFFFFFFF00ull);
    CHECK(r.nic.receive(make_frame(kNicMac, kPeerMac, 0x0800, 100)));
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntSerr);
    CHECK((r.get32(kRxRing) & kOwn) != 0);
}

TEST_CASE("C+ TX: descriptor ring or buffer outside RAM, and a 64 KiB assembly overflow") {
    NicRig r;
    cplus_setup(r);
    r.outl(Rtl8139::kTsad0, 0xFFFFFFF8u);
    r.outl(Rtl8139::kTsad0 + 4, 0xFFFFFFFFu);
    r.outb(Rtl8139::kTppoll, 0x40);
    CHECK(r.backend.sent.empty());
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntSerr);
    r.outw(Rtl8139::kIsr, 0xFFFF);
    r.outl(Rtl8139::kTsad0, kTxRing);
    r.outl(Rtl8139::kTsad0 + 4, 0);
    // A segment whose buffer is not RAM: TES in the status, TER, and the frame is not sent.
    put_desc(r, kTxRing, kOwn | kFs | 100, 0, kTxBufs);
    put_desc(r, kTxRing + 16, kOwn | kLs | 100, 0, 0x7FFFFFFF0000ull);
    r.outb(Rtl8139::kTppoll, 0x40);
    CHECK(r.backend.sent.empty());
    CHECK((r.get32(kTxRing + 16) & (kOwn | Rtl8139::kTxStatusTes)) == Rtl8139::kTxStatusTes);
    CHECK((r.inw(Rtl8139::kIsr) & (Rtl8139::kIntTer | Rtl8139::kIntSerr)) ==
          (Rtl8139::kIntTer | Rtl8139::kIntSerr));
    // The next frame is clean again.
    auto f = make_frame(kPeerMac, kNicMac, 0x0800, 80);
    send_one(r, 2, f, 0);
    REQUIRE(r.backend.sent.size() == 1);
    CHECK(r.backend.sent[0] == f);
    // Four 0xFFFF-byte segments of one frame: the assembly stops at 64 KiB (QEMU truncates).
    for (unsigned i = 0; i < 4; i++)
        put_desc(r, kTxRing + 16 * (3 + i), kOwn | (i == 0 ? kFs : 0) | (i == 3 ? kLs : 0) | 0xFFFF,
                 0, 0x10000);
    r.outb(Rtl8139::kTppoll, 0x40);
    REQUIRE(r.backend.sent.size() == 2);
    CHECK(r.backend.sent[1].size() == 65536u);
}

TEST_CASE("checksum offload: IP, UDP and TCP checksums verify by recomputation") {
    NicRig r;
    cplus_setup(r);
    auto udp = make_ip_frame(17, 333);
    send_one(r, 0, udp, Rtl8139::kTxIpcs | Rtl8139::kTxUdpcs);
    auto tcp = make_ip_frame(6, 1000);
    send_one(r, 1, tcp, Rtl8139::kTxIpcs | Rtl8139::kTxTcpcs);
    REQUIRE(r.backend.sent.size() == 2);
    for (unsigned i = 0; i < 2; i++) {
        auto& s = r.backend.sent[i];
        auto& orig = i == 0 ? udp : tcp;
        REQUIRE(s.size() == orig.size());
        CHECK(ip_checksum_ok(s));
        CHECK(l4_checksum_ok(s));
        // Only the checksum fields changed.
        size_t l4sum = 14 + 20 + (i == 0 ? 6 : 16);
        for (size_t k = 0; k < s.size(); k++)
            if (k != 24 && k != 25 && k != l4sum && k != l4sum + 1) CHECK(s[k] == orig[k]);
    }
    // IPCS alone leaves the L4 checksum as it was; TCPCS on a UDP frame does nothing.
    send_one(r, 2, tcp, Rtl8139::kTxIpcs);
    CHECK(ip_checksum_ok(r.backend.sent[2]));
    CHECK_FALSE(l4_checksum_ok(r.backend.sent[2]));
    send_one(r, 3, udp, Rtl8139::kTxTcpcs);
    CHECK(r.backend.sent[3] == udp);
}

TEST_CASE("TCP large send: a 4 KiB payload with MSS 1460 becomes three valid segments") {
    NicRig r;
    cplus_setup(r);
    auto big = make_ip_frame(6, 4096, 0x1234, 0xFFFFF000u);
    // With LGSEN, dword 0 bits 26:16 are the MSS (the IPCS/UDPCS/TCPCS bits are part of it).
    send_one(r, 0, big, Rtl8139::kTxLgsen | mss_bits(1460));
    REQUIRE(r.backend.sent.size() == 3);
    const size_t chunks[3] = {1460, 1460, 1176};
    size_t off = 0;
    for (unsigned i = 0; i < 3; i++) {
        auto& s = r.backend.sent[i];
        REQUIRE(s.size() == 54 + chunks[i]);
        const uint8_t* ip = s.data() + 14;
        const uint8_t* th = ip + 20;
        CHECK(std::equal(big.begin(), big.begin() + 14, s.begin()));
        CHECK(be16(ip + 2) == 40 + chunks[i]);
        CHECK(be16(ip + 4) == 0x1234 + i);
        CHECK(be32(th + 4) == 0xFFFFF000u + uint32_t(off)); // wraps past 2^32
        CHECK(th[13] == (i == 2 ? 0x19 : 0x10));            // PSH/FIN on the last only
        CHECK(ip_checksum_ok(s));
        CHECK(l4_checksum_ok(s));
        CHECK(std::equal(s.begin() + 54, s.end(), big.begin() + 54 + off));
        off += chunks[i];
    }
    CHECK(off == 4096);
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntTok);
    // TSO with the VLAN tag inserted into every segment.
    send_one(r, 1, big, Rtl8139::kTxLgsen | mss_bits(2000), Rtl8139::kTxTagc | 0x0100);
    REQUIRE(r.backend.sent.size() == 6);
    for (unsigned i = 3; i < 6; i++) {
        CHECK(r.backend.sent[i][12] == 0x81);
        CHECK(r.backend.sent[i][15] == 0x01);
    }
    CHECK(r.backend.sent[5].size() == 4 + 54 + 96);
    // An IP total length shorter than the frame: only what it announces is segmented.
    auto shorter = big;
    shorter[14 + 2] = uint8_t((40 + 1000) >> 8);
    shorter[14 + 3] = uint8_t(40 + 1000);
    send_one(r, 2, shorter, Rtl8139::kTxLgsen | mss_bits(600));
    REQUIRE(r.backend.sent.size() == 8);
    CHECK(r.backend.sent[7].size() == 54 + 400u);
    CHECK(l4_checksum_ok(r.backend.sent[7]));
    // A large send without payload produces no frame (QEMU).
    send_one(r, 3, make_ip_frame(6, 0), Rtl8139::kTxLgsen | mss_bits(1460));
    CHECK(r.backend.sent.size() == 8);
}

TEST_CASE("CVE-2015-5165 class: hostile IP/TCP headers are sent untouched, never over-read") {
    CplusTxOffload all;
    all.ip_checksum = all.tcp_checksum = all.udp_checksum = true;
    CplusTxOffload tso;
    tso.large_send = true;
    tso.mss = 1460;
    auto untouched = [](std::vector<uint8_t> f, const CplusTxOffload& req) {
        auto out = offload(f, req);
        return out.size() == 1 && out[0] == f;
    };
    auto base = make_ip_frame(6, 200);
    for (const CplusTxOffload* req : {&all, &tso}) {
        // Frames shorter than Ethernet + IPv4 headers.
        CHECK(untouched(std::vector<uint8_t>(base.begin(), base.begin() + 33), *req));
        CHECK(untouched(std::vector<uint8_t>(base.begin(), base.begin() + 14), *req));
        CHECK(untouched({}, *req)); // emitted as empty; the chip then sends nothing
        // IHL smaller than 5 or larger than the frame.
        auto f = base;
        f[14] = 0x44;
        CHECK(untouched(f, *req));
        f = std::vector<uint8_t>(base.begin(), base.begin() + 14 + 40);
        f[14] = 0x4F; // 60-byte header in 40 bytes
        CHECK(untouched(f, *req));
        // Total length beyond the frame, or shorter than the header.
        f = base;
        f[16] = 0xFF;
        f[17] = 0xFF;
        CHECK(untouched(f, *req));
        f = base;
        f[16] = 0;
        f[17] = 19;
        CHECK(untouched(f, *req));
        // Not IPv4.
        f = base;
        f[14] = 0x65;
        CHECK(untouched(f, *req));
        f = base;
        f[12] = 0x86;
        f[13] = 0xDD;
        CHECK(untouched(f, *req));
    }
    // Large send: TCP data offset below 20 or beyond the IP payload, payload shorter than a TCP
    // header, MSS zero.
    auto f = base;
    f[14 + 20 + 12] = 0x40;
    CHECK(untouched(f, tso));
    f = base;
    f[14 + 20 + 12] = 0xF0;
    f[16] = 0;
    f[17] = 20 + 40; // 60-byte TCP header in a 40-byte IP payload
    CHECK(untouched(f, tso));
    f = base;
    f[16] = 0;
    f[17] = 20 + 10;
    CHECK(untouched(f, tso));
    CplusTxOffload zero = tso;
    zero.mss = 0;
    CHECK(untouched(base, zero));
    // Large send of UDP: no offload at all, not even the IP checksum (QEMU).
    CplusTxOffload tso_ip = tso;
    tso_ip.ip_checksum = true;
    CHECK(untouched(make_ip_frame(17, 100), tso_ip));
    // TCP checksum on an IP payload too short to hold the checksum field: IP checksum only.
    f = base;
    f[16] = 0;
    f[17] = 20 + 17;
    auto out = offload(f, all);
    REQUIRE(out.size() == 1);
    CHECK(ip_checksum_ok(out[0]));
    CHECK(std::equal(out[0].begin() + 34, out[0].end(), f.begin() + 34));
    // MSS 1 on a 200-byte payload: 200 one-byte segments, all valid.
    CplusTxOffload tiny = tso;
    tiny.mss = 1;
    out = offload(base, tiny);
    REQUIRE(out.size() == 200);
    CHECK(l4_checksum_ok(out[199]));
    CHECK(out[199][54] == base[54 + 199]);
}

TEST_CASE("hostile frames through the device: every check holds end to end") {
    NicRig r;
    cplus_setup(r);
    auto f = make_ip_frame(6, 500);
    f[16] = 0xFF; // IP total length far beyond the frame
    f[17] = 0xF0;
    send_one(r, 0, f, Rtl8139::kTxLgsen | mss_bits(100) | Rtl8139::kTxIpcs);
    REQUIRE(r.backend.sent.size() == 1);
    CHECK(r.backend.sent[0] == f);
    auto g = make_ip_frame(6, 500);
    send_one(r, 1, g, Rtl8139::kTxLgsen); // MSS zero
    REQUIRE(r.backend.sent.size() == 2);
    CHECK(r.backend.sent[1] == g);
    auto runt = make_ip_frame(6, 0);
    runt.resize(20);
    send_one(r, 2, runt, Rtl8139::kTxLgsen | mss_bits(1460) | Rtl8139::kTxIpcs);
    REQUIRE(r.backend.sent.size() == 3);
    CHECK(r.backend.sent[2] == runt);
}
