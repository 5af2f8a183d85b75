// RTL8139: PCI identity, register reset values, the 93C46 EEPROM, soft reset, ISR/IMR and INTx,
// the TCTR timer, link changes and save/load.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

#include "tests/unit/net/net_test_support.hpp"

using namespace hvm;
using namespace hvm::test;

namespace {

// Linux 8139too read_eeprom(): start bit and READ opcode (110b), `addr_len` address bits, then
// 16 data bits sampled after each rising clock.
uint16_t read_eeprom(NicRig& r, unsigned location, unsigned addr_len) {
    constexpr uint8_t kCs = 0x08, kClk = 0x04, kDi = 0x02, kDo = 0x01, kEnb = 0x80 | kCs;
    unsigned cmd = location | (6u << addr_len);
    r.outb(Rtl8139::kCr9346, kEnb & ~kCs);
    r.outb(Rtl8139::kCr9346, kEnb);
    for (int i = 4 + int(addr_len); i >= 0; i--) {
        uint8_t bit = (cmd & (1u << i)) ? kDi : 0;
        r.outb(Rtl8139::kCr9346, kEnb | bit);
        r.outb(Rtl8139::kCr9346, kEnb | bit | kClk);
    }
    r.outb(Rtl8139::kCr9346, kEnb);
    uint16_t v = 0;
    for (int i = 0; i < 16; i++) {
        r.outb(Rtl8139::kCr9346, kEnb | kClk);
        v = uint16_t(v << 1 | ((r.inb(Rtl8139::kCr9346) & kDo) ? 1 : 0));
        r.outb(Rtl8139::kCr9346, kEnb);
    }
    r.outb(Rtl8139::kCr9346, 0); // CS low, normal mode
    return v;
}

} // namespace

TEST_CASE("PCI identity, BARs and capability pointer as QEMU 7.2 (Appendix A 00:03.0)") {
    NicRig r;
    auto cfg = [&](unsigned off, unsigned size) {
        return r.pci.config_read(0, r.kDevfn, off, size);
    };
    CHECK(cfg(0x00, 4) == 0x813910ECu);
    CHECK(cfg(0x08, 4) == 0x02000020u); // rev 0x20, class 020000
    CHECK(cfg(0x06, 2) == 0x0000u);     // no capability list bit
    CHECK(cfg(0x2C, 4) == 0x11001AF4u);
    CHECK(cfg(0x34, 1) == 0xDCu);
    CHECK(cfg(0x3D, 1) == 1u);
    CHECK(cfg(0x10, 4) == (NicRig::kIo | 1u));
    CHECK(cfg(0x14, 4) == NicRig::kMmio);
    CHECK(cfg(0x30, 4) == 0u); // no ROM given: no ROM BAR
    // Sizing: 256 bytes of I/O and 256 bytes of memory.
    r.pci.config_write(0, r.kDevfn, 0x10, 4, 0xFFFFFFFF);
    CHECK(cfg(0x10, 4) == 0xFFFFFF01u);
    r.pci.config_write(0, r.kDevfn, 0x14, 4, 0xFFFFFFFF);
    CHECK(cfg(0x14, 4) == 0xFFFFFF00u);
    r.pci.config_write(0, r.kDevfn, 0x10, 4, NicRig::kIo);
    r.pci.config_write(0, r.kDevfn, 0x14, 4, NicRig::kMmio);
    // Both BARs decode the same registers.
    CHECK(r.in(0, 4) == 0x12005452u);
    CHECK(r.mmio_in(0, 4) == 0x12005452u);
    CHECK(r.mmio_in(Rtl8139::kRerid, 1) == 0x20u);
}

TEST_CASE("ROM BAR serves the option ROM image") {
    Rtl8139Options opt;
    opt.rom.assign(75776, 0);
    opt.rom[0] = 0x55;
    opt.rom[1] = 0xAA;
    opt.rom[75775] = 0x77;
    NicRig r(opt);
    r.pci.config_write(0, r.kDevfn, 0x30, 4, 0xFFFFFFFF);
    CHECK(r.pci.config_read(0, r.kDevfn, 0x30, 4) == 0xFFFE0001u); // 128 KiB, enable bit
    r.pci.config_write(0, r.kDevfn, 0x30, 4, 0xFEB80000u | 1);
    uint8_t b[4] = {};
    r.mmio.read(0xFEB80000u, std::span(b, 2));
    CHECK(b[0] == 0x55);
    CHECK(b[1] == 0xAA);
    r.mmio.read(0xFEB80000u + 75775, std::span(b, 1));
    CHECK(b[0] == 0x77);
    r.mmio.read(0xFEB80000u + 0x1FFFC, std::span(b, 4)); // past the image: zeros
    CHECK(le_load(b) == 0u);

    Rtl8139Options big;
    big.rom.assign(1000, 1);
    big.rom_bar_size = 256 * 1024; // what QEMU 7.2 shows with efi-rtl8139.rom
    NicRig r2(big);
    r2.pci.config_write(0, r2.kDevfn, 0x30, 4, 0xFFFFFFFF);
    CHECK(r2.pci.config_read(0, r2.kDevfn, 0x30, 4) == 0xFFFC0001u);

    Rtl8139Options bad;
    bad.rom.assign(5000, 1);
    bad.rom_bar_size = 4096;
    FakeClock clock;
    GuestMemory mem;
    CHECK_THROWS_AS(Rtl8139(clock, mem, nullptr, bad), UserError);
}

TEST_CASE("the real pxe-rtl8139.rom, when installed, carries the 10EC:8139 PCI data structure") {
    std::ifstream f("/usr/lib/ipxe/qemu/pxe-rtl8139.rom", std::ios::binary);
    if (!f) return; // Debian ipxe-qemu not installed here
    Rtl8139Options opt;
    opt.rom.assign(std::istreambuf_iterator<char>(f), {});
    REQUIRE(opt.rom.size() > 0x40);
    NicRig r(opt);
    r.pci.config_write(0, r.kDevfn, 0x30, 4, 0xFEB80000u | 1);
    auto rom8 = [&](uint32_t off) {
        uint8_t b = 0;
        r.mmio.read(0xFEB80000u + off, std::span(&b, 1));
        return b;
    };
    CHECK(rom8(0) == 0x55);
    CHECK(rom8(1) == 0xAA);
    uint32_t pcir = rom8(0x18) | rom8(0x19) << 8;
    CHECK(rom8(pcir) == 'P');
    CHECK((rom8(pcir + 4) | rom8(pcir + 5) << 8) == 0x10ECu);
    CHECK((rom8(pcir + 6) | rom8(pcir + 7) << 8) == 0x8139u);
}

TEST_CASE("register values after power-on, as QEMU's rtl8139_reset leaves them") {
    NicRig r;
    for (unsigned i = 0; i < 6; i++) CHECK(r.inb(Rtl8139::kIdr0 + i) == kNicMac[i]);
    CHECK(r.inw(6) == 0u);
    CHECK(r.inl(Rtl8139::kMar0) == 0u);
    CHECK(r.inb(Rtl8139::kCr) == 0x11u); // RST still shown, BUFE
    CHECK(r.inl(Rtl8139::kTcr) == 0x74800000u);
    CHECK(r.inb(Rtl8139::kTcr + 3) == 0x74u);
    CHECK(r.inl(Rtl8139::kRcr) == 0u);
    for (unsigned i = 0; i < 4; i++) CHECK(r.inl(Rtl8139::kTsd0 + 4 * i) == 0x2000u);
    CHECK(r.inw(Rtl8139::kTsad) == 0x000Fu);
    CHECK(r.inw(Rtl8139::kImr) == 0u);
    CHECK(r.inw(Rtl8139::kIsr) == 0u);
    CHECK(r.inw(Rtl8139::kCapr) == 0xFFF0u);
    CHECK(r.inw(Rtl8139::kCbr) == 0u);
    CHECK(r.inb(Rtl8139::kConfig0) == 0x00u);
    CHECK(r.inb(Rtl8139::kConfig1) == 0x0Cu);
    CHECK(r.inb(Rtl8139::kConfig3) == 0x01u);
    CHECK(r.inb(Rtl8139::kConfig4) == 0x00u);
    CHECK(r.inb(Rtl8139::kConfig5) == 0x00u);
    CHECK(r.inb(Rtl8139::kMsr) == 0xD0u); // link up: LINKB clear, 100 Mbit
    CHECK(r.inb(Rtl8139::kHltClk) == 1u);
    CHECK(r.inb(Rtl8139::kRerid) == 0x20u);
    CHECK(r.inw(Rtl8139::kBmcr) == 0x1000u);
    CHECK(r.inw(Rtl8139::kBmsr) == 0x782Du);
    CHECK(r.inw(Rtl8139::kAnar) == 0x05E1u);
    CHECK(r.inw(Rtl8139::kAnlpar) == 0x05E1u);
    CHECK(r.inw(Rtl8139::kAner) == 0x0001u);
    CHECK(r.inw(Rtl8139::kCscr) == 0x0340u);
    CHECK(r.inw(Rtl8139::kCpcr) == 0u);
    CHECK(r.inl(Rtl8139::kMpc) == 0u);
    CHECK(r.inl(Rtl8139::kTimerInt) == 0u);
    CHECK_FALSE(r.irq());
}

TEST_CASE("93C46 EEPROM bit-banged through 9346CR returns QEMU's contents") {
    NicRig r;
    // What 8139too does first: probe with 8 address bits; the answer is not the 8129 signature,
    // so it uses 6 (a 93C46).
    CHECK(read_eeprom(r, 0, 8) != 0x8129u);
    CHECK(read_eeprom(r, 0, 6) == 0x8129u);
    CHECK(read_eeprom(r, 1, 6) == 0x10ECu);
    CHECK(read_eeprom(r, 2, 6) == 0x8139u);
    CHECK(read_eeprom(r, 7, 6) == 0x5452u);
    CHECK(read_eeprom(r, 8, 6) == 0x1200u);
    CHECK(read_eeprom(r, 9, 6) == 0x5634u);
    CHECK(read_eeprom(r, 3, 6) == 0u);
    CHECK(read_eeprom(r, 63, 6) == 0u);
    // EEDO reads 0 while CS is low, and 9346CR reads back the mode bits.
    r.outb(Rtl8139::kCr9346, 0x80);
    CHECK(r.inb(Rtl8139::kCr9346) == 0x80u);
    r.outb(Rtl8139::kCr9346, 0x00);

    Rtl8139Options opt;
    opt.mac = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
    NicRig r2(opt);
    CHECK(read_eeprom(r2, 7, 6) == 0x1102u);
    CHECK(read_eeprom(r2, 8, 6) == 0x3322u);
    CHECK(read_eeprom(r2, 9, 6) == 0x5544u);
    CHECK(r2.inb(0) == 0x02u);
    CHECK(r2.inb(5) == 0x55u);
}

TEST_CASE("EEPROM writes are ignored (read-only as in QEMU) and reads continue without CS toggle") {
    NicRig r;
    constexpr uint8_t kCs = 0x08, kClk = 0x04, kDi = 0x02, kEnb = 0x80 | kCs;
    auto clock_bits = [&](unsigned value, int bits) {
        for (int i = bits - 1; i >= 0; i--) {
            uint8_t b = (value >> i) & 1 ? kDi : 0;
            r.outb(Rtl8139::kCr9346, kEnb | b);
            r.outb(Rtl8139::kCr9346, kEnb | b | kClk);
        }
    };
    r.outb(Rtl8139::kCr9346, kEnb);
    clock_bits(0b10011, 5); // start + EWEN (00 11xxxx)
    clock_bits(0, 4);
    r.outb(Rtl8139::kCr9346, 0);
    r.outb(Rtl8139::kCr9346, kEnb);
    clock_bits(0b101000111, 9); // start + WRITE (01) word 7
    clock_bits(0xBEEF, 16);
    r.outb(Rtl8139::kCr9346, 0);
    CHECK(read_eeprom(r, 7, 6) == 0x5452u);
    CHECK(r.nic.eeprom().word(7) == 0x5452u);
}

TEST_CASE("CR.RST: soft reset restores QEMU's reset state and completes at once") {
    NicRig r;
    r.outb(Rtl8139::kCr, Rtl8139::kCrTe | Rtl8139::kCrRe);
    r.outw(Rtl8139::kImr, 0xFFFF);
    r.outb(0, 0xAA); // guest changes the MAC
    r.outl(Rtl8139::kMar0, 0x12345678);
    r.outl(Rtl8139::kRcr, 0x0000180F);
    r.outl(Rtl8139::kTsad0, 0x1000);
    r.outl(Rtl8139::kTsd0, 64); // transmits: TOK in ISR
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntTok);
    CHECK(r.irq());
    r.outb(Rtl8139::kCr, Rtl8139::kCrRst);
    CHECK((r.inb(Rtl8139::kCr) & Rtl8139::kCrRst) == 0);
    CHECK(r.inb(Rtl8139::kCr) == Rtl8139::kCrBufe); // RE/TE off
    CHECK(r.inw(Rtl8139::kImr) == 0u);
    CHECK(r.inw(Rtl8139::kIsr) == 0u);
    CHECK_FALSE(r.irq());
    CHECK(r.inb(0) == 0x52u);
    CHECK(r.inw(Rtl8139::kTsad) == 0x000Fu);
    CHECK(r.inl(Rtl8139::kTsd0) == 0x2000u);
    CHECK(r.inl(Rtl8139::kTcr) == 0x74800000u);
    // Not touched by QEMU's reset: the multicast filter and RCR.
    CHECK(r.inl(Rtl8139::kMar0) == 0x12345678u);
    CHECK(r.inl(Rtl8139::kRcr) == 0x0000180Fu);
    // A power-on reset clears them too.
    r.nic.reset(ResetKind::PowerOn);
    r.program_bars(); // a PCI reset unmaps the BARs
    CHECK(r.inl(Rtl8139::kMar0) == 0u);
    CHECK(r.inl(Rtl8139::kRcr) == 0u);
    // 9346CR auto-load resets the chip and reads back 0.
    r.outw(Rtl8139::kImr, 0x0005);
    r.outb(Rtl8139::kCr9346, 0x40);
    CHECK(r.inb(Rtl8139::kCr9346) == 0u);
    CHECK(r.inw(Rtl8139::kImr) == 0u);
}

TEST_CASE("CONFIG registers are writable only in config-write mode, CONFIG5 always") {
    NicRig r;
    r.outb(Rtl8139::kConfig1, 0x00);
    CHECK(r.inb(Rtl8139::kConfig1) == 0x0Cu);
    r.outb(Rtl8139::kCr9346, 0xC0);
    r.outb(Rtl8139::kConfig1, 0xF3);
    CHECK(r.inb(Rtl8139::kConfig1) == 0xFFu); // bits 2,3 read-only set
    r.outb(Rtl8139::kConfig3, 0xFF);
    CHECK(r.inb(Rtl8139::kConfig3) == 0x71u);
    r.outb(Rtl8139::kConfig0, 0xFF);
    CHECK(r.inb(Rtl8139::kConfig0) == 0x07u);
    r.outb(Rtl8139::kCr9346, 0x00);
    r.outb(Rtl8139::kConfig3, 0x01);
    CHECK(r.inb(Rtl8139::kConfig3) == 0x71u);
    r.outb(Rtl8139::kConfig5, 0xFF);
    CHECK(r.inb(Rtl8139::kConfig5) == 0x7Fu);
}

TEST_CASE("ISR is write-1-to-clear; INTx level is (ISR & IMR) != 0 and reaches ISA IRQ 11") {
    NicRig r;
    r.outb(Rtl8139::kCr, Rtl8139::kCrTe);
    r.outl(Rtl8139::kTsad0, 0x2000);
    r.outl(Rtl8139::kTsd0, 60);
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntTok);
    CHECK_FALSE(r.irq()); // masked
    CHECK_FALSE(r.nic.intx_level());
    r.outw(Rtl8139::kImr, Rtl8139::kIntRok);
    CHECK_FALSE(r.irq());
    r.outw(Rtl8139::kImr, Rtl8139::kIntTok | Rtl8139::kIntRok);
    CHECK(r.irq());
    CHECK(r.nic.intx_level());
    CHECK((r.pci.config_read(0, r.kDevfn, 0x06, 2) & pci::kStatusInterrupt) != 0);
    // Writing 0 clears nothing; writing another bit clears nothing pending.
    r.outw(Rtl8139::kIsr, 0);
    CHECK(r.irq());
    r.outw(Rtl8139::kIsr, Rtl8139::kIntRok);
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntTok);
    CHECK(r.irq());
    // IMR bits 12:9 are reserved.
    r.outw(Rtl8139::kImr, 0xFFFF);
    CHECK(r.inw(Rtl8139::kImr) == 0xE1FFu);
    r.outw(Rtl8139::kIsr, Rtl8139::kIntTok);
    CHECK(r.inw(Rtl8139::kIsr) == 0u);
    CHECK_FALSE(r.irq());
    // Byte writes to ISR do nothing (QEMU implements ISR as a word register only).
    r.outl(Rtl8139::kTsd0 + 4, 60);
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntTok);
    r.outb(Rtl8139::kIsr, 0xFF);
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntTok);
    // INTx Disable in the command register hides the line but not the status.
    r.pci.config_write(0, r.kDevfn, 0x04, 2, 0x0507);
    CHECK_FALSE(r.irq());
    r.pci.config_write(0, r.kDevfn, 0x04, 2, 0x0107);
    CHECK(r.irq());
}

TEST_CASE("TCTR counts the 33 MHz PCI clock and TimerInt raises ISR.TimeOut") {
    NicRig r;
    r.outw(Rtl8139::kImr, Rtl8139::kIntTimeOut);
    r.outl(Rtl8139::kTctr, 0); // restart the count
    CHECK(r.inl(Rtl8139::kTctr) == 0u);
    r.clock.advance(3000);
    CHECK(r.inl(Rtl8139::kTctr) == 100u); // 30 ns per tick
    r.clock.advance(100000);
    CHECK(r.inw(Rtl8139::kIsr) == 0u); // TimerInt 0: no interrupt
    r.outl(Rtl8139::kTctr, 0);
    r.outl(Rtl8139::kTimerInt, 1000); // 30 us
    CHECK(r.inl(Rtl8139::kTimerInt) == 1000u);
    r.clock.advance(29999);
    CHECK(r.inw(Rtl8139::kIsr) == 0u);
    CHECK_FALSE(r.irq());
    r.clock.advance(1);
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntTimeOut);
    CHECK(r.irq());
    r.outw(Rtl8139::kIsr, Rtl8139::kIntTimeOut);
    CHECK_FALSE(r.irq());
    // Next time it fires is one TCTR wrap (2^32 ticks) later, not sooner.
    r.clock.advance(1000000);
    CHECK(r.inw(Rtl8139::kIsr) == 0u);
    // Restarting TCTR arms it again.
    r.outl(Rtl8139::kTctr, 0);
    r.clock.advance(30000);
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntTimeOut);
    r.outw(Rtl8139::kIsr, 0xFFFF);
    // A halted clock (HLTCLK 'H') keeps the timer silent.
    r.outb(Rtl8139::kHltClk, 'H');
    CHECK(r.inb(Rtl8139::kHltClk) == 0u);
    r.outl(Rtl8139::kTctr, 0);
    r.clock.advance(60000);
    CHECK(r.inw(Rtl8139::kIsr) == 0u);
    r.outb(Rtl8139::kHltClk, 'R');
    CHECK(r.inb(Rtl8139::kHltClk) == 1u);
    // Writing TimerInt 0 cancels.
    r.outl(Rtl8139::kTctr, 0);
    r.outl(Rtl8139::kTimerInt, 0);
    r.clock.advance(1000000);
    CHECK(r.inw(Rtl8139::kIsr) == 0u);
}

TEST_CASE("link changes show in BMSR and MSR and raise PUN/LinkChg") {
    NicRig r;
    r.outw(Rtl8139::kImr, Rtl8139::kIntPunLinkChg);
    r.nic.set_link_up(false);
    CHECK((r.inw(Rtl8139::kBmsr) & 0x0004) == 0);
    CHECK(r.inb(Rtl8139::kMsr) == 0xD4u);
    CHECK(r.inw(Rtl8139::kIsr) == Rtl8139::kIntPunLinkChg);
    CHECK(r.irq());
    // A PHY reset keeps the link state.
    r.outw(Rtl8139::kBmcr, 0x8000);
    CHECK((r.inw(Rtl8139::kBmsr) & 0x0004) == 0);
    r.nic.set_link_up(true);
    CHECK(r.inw(Rtl8139::kBmsr) == 0x782Du);
    CHECK(r.inb(Rtl8139::kMsr) == 0xD0u);
    // BMCR: only restart-autonegotiation is writable; ANLPAR is read-only.
    r.outw(Rtl8139::kBmcr, 0x0000);
    CHECK(r.inw(Rtl8139::kBmcr) == 0x1000u);
    r.outw(Rtl8139::kAnlpar, 0);
    CHECK(r.inw(Rtl8139::kAnlpar) == 0x05E1u);
    r.outw(Rtl8139::kMulint, 0xFFFF);
    CHECK(r.inw(Rtl8139::kMulint) == 0x0FFFu);
}

TEST_CASE("save, change, load gives back the saved registers; bad state is refused") {
    NicRig r;
    r.outb(Rtl8139::kCr, Rtl8139::kCrTe | Rtl8139::kCrRe);
    r.outl(Rtl8139::kRcr, 0x0000088F); // 16 KiB ring, WRAP, all accept bits
    r.outl(Rtl8139::kRbstart, 0x10000);
    r.outw(Rtl8139::kImr, 0x0005);
    r.outl(Rtl8139::kMar0 + 4, 0xA5A5A5A5);
    r.outl(Rtl8139::kTsad0 + 8, 0x3000);
    r.outl(Rtl8139::kTctr, 0);
    r.outl(Rtl8139::kTimerInt, 5000);
    r.clock.advance(3000);
    auto frame = make_frame(kNicMac, kPeerMac, 0x0800, 100);
    REQUIRE(r.nic.receive(frame));
    auto snapshot = [&] {
        std::vector<uint32_t> v;
        for (unsigned off = 0; off < 256; off += 4) v.push_back(r.inl(off));
        for (unsigned off : {Rtl8139::kCapr, Rtl8139::kCbr, Rtl8139::kImr, Rtl8139::kIsr,
                             Rtl8139::kBmsr, Rtl8139::kTsad})
            v.push_back(r.inw(off));
        return v;
    };
    StateWriter w;
    r.nic.save(w);
    auto before = snapshot();
    // Change things.
    r.outw(Rtl8139::kCapr, 0x100);
    r.outb(Rtl8139::kCr, Rtl8139::kCrRst);
    r.outl(Rtl8139::kMar0, 1);
    REQUIRE(snapshot() != before);
    StateReader rd(w.data());
    r.nic.load(rd);
    CHECK(rd.at_end());
    CHECK(snapshot() == before);
    CHECK(r.irq());
    // The timer resumes: 5000 ticks after the TCTR restart, 100 of which had passed.
    r.clock.advance(4899 * 30);
    CHECK((r.inw(Rtl8139::kIsr) & Rtl8139::kIntTimeOut) == 0);
    r.clock.advance(30);
    CHECK((r.inw(Rtl8139::kIsr) & Rtl8139::kIntTimeOut) != 0);

    // A state whose ring pointer lies outside the ring is refused. Find CBR in the blob by
    // saving a state with a known pattern.
    std::vector<uint8_t> blob = w.data();
    bool refused_any = false;
    for (size_t i = 0; i + 4 <= blob.size(); i++) {
        // rx_buf_size_ is 16384 in this state; corrupt it wherever it appears.
        if (le_load(std::span<const uint8_t>(blob.data() + i, 4)) == 16384) {
            std::vector<uint8_t> bad = blob;
            le_store(std::span(bad.data() + i, 4), 12345);
            StateReader br(bad);
            CHECK_THROWS_AS(r.nic.load(br), StateError);
            refused_any = true;
        }
    }
    CHECK(refused_any);
    StateReader truncated(std::span<const uint8_t>(blob.data(), blob.size() - 3));
    CHECK_THROWS_AS(r.nic.load(truncated), StateError);
}
