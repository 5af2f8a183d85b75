// A small machine for the RTL8139 tests: 1 MiB of guest RAM, PIO and MMIO buses, the PCI bus with
// the NIC at 00:03.0 (BARs where SeaBIOS puts them), PIRQC routed to ISA IRQ 11, a fake clock and
// a fake network backend. Reference computations (CRC, checksums) are written independently of
// devmodel/net/ethernet.cpp so the tests check the chip against something else.
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include <doctest/doctest.h>

#include "base/clock.hpp"
#include "base/error.hpp"
#include "devmodel/net/rtl8139.hpp"
#include "devmodel/pci/pci_bus.hpp"
#include "devmodel/pci/pci_irq_router.hpp"
#include "vcpu/guest_memory.hpp"
#include "vmexit/bus.hpp"

namespace hvm::test {

struct FakeBackend : NetBackend {
    std::vector<std::vector<uint8_t>> sent;
    int ready_calls = 0;
    void send(std::span<const uint8_t> frame) override {
        sent.emplace_back(frame.begin(), frame.end());
    }
    void receive_ready() override { ready_calls++; }
};

struct IsaLines : IrqSink {
    std::map<unsigned, bool> levels;
    void set_irq(unsigned line, bool level) override { levels[line] = level; }
    bool level(unsigned line) { return levels[line]; }
};

struct NicRig {
    static constexpr uint64_t kRamSize = 1 << 20;
    static constexpr uint16_t kIo = 0xC000;
    static constexpr uint32_t kMmio = 0xFEBD1000;
    static constexpr uint8_t kDevfn = pci::devfn(3, 0);
    static constexpr unsigned kIrq = 11;

    FakeClock clock{1000000};
    GuestMemory mem;
    uint8_t* ram = nullptr;
    Bus pio{"pio"};
    Bus mmio{"mmio"};
    IsaLines isa;
    PciIrqRouter router{isa};
    PciBus pci{pio, mmio, router};
    FakeBackend backend;
    Rtl8139 nic;

    explicit NicRig(Rtl8139Options opt = {}, bool attach = true)
        : nic(clock, mem, &backend, std::move(opt)) {
        ram = mem.allocate(kRamSize, "ram");
        mem.add_region(MemRegion{0, kRamSize, ram, false, "ram"});
        if (!attach) return;
        pci.attach(nic, kDevfn);
        program_bars();
        router.set_route(2, kIrq); // 00:03.0 INTA# -> PIRQC
    }
    // What SeaBIOS does (Appendix A): BAR0 I/O, BAR1 memory; plus bus mastering, as drivers do.
    void program_bars() {
        pci.config_write(0, kDevfn, 0x10, 4, kIo);
        pci.config_write(0, kDevfn, 0x14, 4, kMmio);
        pci.config_write(0, kDevfn, 0x04, 2, 0x0107); // I/O, memory, bus master, SERR
    }

    uint32_t in(unsigned off, unsigned size) {
        uint8_t b[4] = {};
        pio.read(kIo + off, std::span(b, size));
        return uint32_t(le_load(std::span<const uint8_t>(b, size)));
    }
    void out(unsigned off, unsigned size, uint32_t v) {
        uint8_t b[4];
        le_store(std::span(b, size), v);
        pio.write(kIo + off, std::span<const uint8_t>(b, size));
    }
    uint8_t inb(unsigned off) { return uint8_t(in(off, 1)); }
    uint16_t inw(unsigned off) { return uint16_t(in(off, 2)); }
    uint32_t inl(unsigned off) { return in(off, 4); }
    void outb(unsigned off, uint8_t v) { out(off, 1, v); }
    void outw(unsigned off, uint16_t v) { out(off, 2, v); }
    void outl(unsigned off, uint32_t v) { out(off, 4, v); }
    uint32_t mmio_in(unsigned off, unsigned size) {
        uint8_t b[4] = {};
        mmio.read(kMmio + off, std::span(b, size));
        return uint32_t(le_load(std::span<const uint8_t>(b, size)));
    }

    void put(uint64_t gpa, std::span<const uint8_t> bytes) { REQUIRE(mem.write(gpa, bytes)); }
    void put32(uint64_t gpa, uint32_t v) {
        uint8_t b[4];
        le_store(b, v);
        put(gpa, b);
    }
    std::vector<uint8_t> get(uint64_t gpa, size_t n) {
        std::vector<uint8_t> v(n);
        REQUIRE(mem.read(gpa, v));
        return v;
    }
    uint32_t get32(uint64_t gpa) { return uint32_t(le_load(get(gpa, 4))); }
    bool irq() { return isa.level(kIrq); }
};

// ---- Frames ------------------------------------------------------------------------------------

using Mac = std::array<uint8_t, 6>;
constexpr Mac kNicMac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
constexpr Mac kPeerMac{0x52, 0x55, 0x0A, 0x00, 0x02, 0x02};
constexpr Mac kBroadcastMac{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};

inline std::vector<uint8_t> make_frame(const Mac& dst, const Mac& src, uint16_t type, size_t total,
                                       uint8_t seed = 1) {
    std::vector<uint8_t> f(total);
    for (size_t i = 0; i < total; i++) f[i] = uint8_t(seed + i * 7);
    for (int i = 0; i < 6 && size_t(i) < total; i++) f[i] = dst[i];
    for (int i = 0; i < 6 && size_t(6 + i) < total; i++) f[6 + i] = src[i];
    if (total >= 14) {
        f[12] = uint8_t(type >> 8);
        f[13] = uint8_t(type);
    }
    return f;
}

// Bitwise CRC-32 (reflected, zlib), independent of the table implementation under test.
inline uint32_t ref_crc32(std::span<const uint8_t> d) {
    uint32_t c = 0xFFFFFFFF;
    for (uint8_t b : d) {
        c ^= b;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}
inline uint32_t bitrev32(uint32_t v) {
    uint32_t r = 0;
    for (int i = 0; i < 32; i++) r |= ((v >> i) & 1) << (31 - i);
    return r;
}
// Linux ether_crc(6, mac) >> 26: the MSB-first register is the mirror of the reflected one.
inline unsigned ref_mcast_index(const Mac& mac) {
    return bitrev32(~ref_crc32(mac)) >> 26;
}

// Sum of big-endian 16-bit words, folded: a correct header/segment with its checksum sums to
// 0xFFFF.
inline uint16_t ref_fold_sum(std::span<const uint8_t> d, uint32_t sum = 0) {
    for (size_t i = 0; i < d.size(); i += 2)
        sum += uint32_t(d[i]) << 8 | (i + 1 < d.size() ? d[i + 1] : 0);
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return uint16_t(sum);
}
inline uint16_t be16(const uint8_t* p) {
    return uint16_t(p[0] << 8 | p[1]);
}
inline uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
// True if the L4 checksum of an IPv4 frame verifies against the pseudo-header.
inline bool l4_checksum_ok(std::span<const uint8_t> frame) {
    const uint8_t* ip = frame.data() + 14;
    size_t hlen = (ip[0] & 0xF) * 4;
    size_t total = be16(ip + 2);
    uint32_t pseudo = be16(ip + 12) + be16(ip + 14) + be16(ip + 16) + be16(ip + 18) + ip[9] +
                      uint32_t(total - hlen);
    return ref_fold_sum(std::span(ip + hlen, total - hlen), pseudo) == 0xFFFF;
}
inline bool ip_checksum_ok(std::span<const uint8_t> frame) {
    const uint8_t* ip = frame.data() + 14;
    return ref_fold_sum(std::span(ip, (ip[0] & 0xF) * 4)) == 0xFFFF;
}

// An Ethernet + IPv4 + TCP (or UDP) frame with `payload` bytes of data and deliberately wrong
// checksums. TCP gets flags ACK|PSH|FIN.
inline std::vector<uint8_t> make_ip_frame(uint8_t proto, size_t payload, uint16_t ip_id = 0x1234,
                                          uint32_t seq = 0x01020304) {
    size_t l4 = proto == 6 ? 20 : 8;
    std::vector<uint8_t> f(14 + 20 + l4 + payload);
    for (int i = 0; i < 6; i++) {
        f[i] = kPeerMac[i];
        f[6 + i] = kNicMac[i];
    }
    f[12] = 0x08;
    f[13] = 0x00;
    uint8_t* ip = f.data() + 14;
    ip[0] = 0x45;
    size_t total = 20 + l4 + payload;
    ip[2] = uint8_t(total >> 8);
    ip[3] = uint8_t(total);
    ip[4] = uint8_t(ip_id >> 8);
    ip[5] = uint8_t(ip_id);
    ip[8] = 64;
    ip[9] = proto;
    ip[10] = 0xDE; // wrong checksum on purpose
    ip[11] = 0xAD;
    const uint8_t src[4] = {10, 0, 2, 15}, dst[4] = {10, 0, 2, 2};
    for (int i = 0; i < 4; i++) {
        ip[12 + i] = src[i];
        ip[16 + i] = dst[i];
    }
    uint8_t* th = ip + 20;
    th[0] = 0x9C;
    th[1] = 0x40; // source port 40000
    th[2] = 0x00;
    th[3] = 0x50; // destination port 80
    if (proto == 6) {
        for (int i = 0; i < 4; i++) th[4 + i] = uint8_t(seq >> (24 - 8 * i));
        th[12] = 0x50;               // data offset 5
        th[13] = 0x10 | 0x08 | 0x01; // ACK PSH FIN
        th[14] = 0xFF;
        th[15] = 0xFF;
        th[16] = 0xBE;
        th[17] = 0xEF;
    } else {
        th[4] = uint8_t((8 + payload) >> 8);
        th[5] = uint8_t(8 + payload);
        th[6] = 0xBE;
        th[7] = 0xEF;
    }
    for (size_t i = 0; i < payload; i++) th[l4 + i] = uint8_t(i * 13 + 5);
    return f;
}

} // namespace hvm::test
