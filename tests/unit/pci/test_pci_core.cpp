#include <doctest/doctest.h>

#include "tests/unit/pci/pci_test_support.hpp"

using namespace hvm;
using namespace hvm::test;

namespace {
constexpr uint8_t kSlot3 = pci::devfn(3, 0);
}

TEST_CASE("config mechanism #1: dword, word and byte reads at every offset of 0xCFC") {
    PciRig rig;
    TestFunction fn;
    rig.pci.attach(fn, kSlot3);
    CHECK(rig.cfg_read(kSlot3, 0x00, 4) == 0xBEEF1234u);
    CHECK(rig.cfg_read(kSlot3, 0x00, 2) == 0x1234u);
    CHECK(rig.cfg_read(kSlot3, 0x02, 2) == 0xBEEFu);
    CHECK(rig.cfg_read(kSlot3, 0x01, 2) == 0xEF12u); // unaligned word inside the dword
    CHECK(rig.cfg_read(kSlot3, 0x00, 1) == 0x34u);
    CHECK(rig.cfg_read(kSlot3, 0x01, 1) == 0x12u);
    CHECK(rig.cfg_read(kSlot3, 0x02, 1) == 0xEFu);
    CHECK(rig.cfg_read(kSlot3, 0x03, 1) == 0xBEu);
    CHECK(rig.cfg_read(kSlot3, 0x08, 4) == 0x02000001u); // class 020000, revision 1
    CHECK(rig.cfg_read(kSlot3, 0x2C, 4) == 0x11001AF4u); // QEMU subsystem on every function
    CHECK(rig.cfg_read(kSlot3, 0x3D, 1) == 1u);          // INTA#
    // A word at 0xCFF would leave the data register: not a configuration cycle.
    rig.outl(0xCF8, PciRig::address(kSlot3, 0));
    CHECK(rig.in(0xCFF, 2) == 0xFFFFu);
}

TEST_CASE("config mechanism #1: writes of each size land at the port's byte offset") {
    PciRig rig;
    TestFunction fn;
    rig.pci.attach(fn, kSlot3);
    rig.cfg_write(kSlot3, 0x3C, 1, 0x0B); // interrupt line
    CHECK(fn.config_byte(0x3C) == 0x0B);
    rig.cfg_write(kSlot3, 0x3D, 1, 0x04); // interrupt pin is read-only
    CHECK(fn.config_byte(0x3D) == 0x01);
    rig.cfg_write(kSlot3, 0x0C, 2, 0xFF10); // cache line size writable, latency timer not
    CHECK(rig.cfg_read(kSlot3, 0x0C, 2) == 0x0010u);
    rig.cfg_write(kSlot3, 0x42, 2, 0xA5C3); // device-specific area
    CHECK(rig.cfg_read(kSlot3, 0x40, 4) == 0xA5C30000u);
    rig.cfg_write(kSlot3, 0x00, 4, 0); // IDs are read-only
    CHECK(rig.cfg_read(kSlot3, 0x00, 4) == 0xBEEF1234u);
    // Status error bits are write-1-to-clear, the rest read-only.
    rig.cfg_write(kSlot3, 0x06, 2, 0xFFFF);
    CHECK(rig.cfg_read(kSlot3, 0x06, 2) == 0u);
}

TEST_CASE("config mechanism #1: enable bit, absent functions, other buses") {
    PciRig rig;
    TestFunction fn;
    rig.pci.attach(fn, kSlot3);
    SUBCASE("bit 31 clear: data port reads all-ones, writes do nothing") {
        rig.outl(0xCF8, PciRig::address(kSlot3, 0x3C) & ~PciBus::kConfigEnable);
        CHECK(rig.in(0xCFC, 4) == 0xFFFFFFFFu);
        CHECK(rig.in(0xCFC, 1) == 0xFFu);
        rig.out(0xCFC, 1, 0x05);
        CHECK(fn.config_byte(0x3C) == 0);
    }
    SUBCASE("an absent function reads all-ones in every size") {
        CHECK(rig.cfg_read(pci::devfn(4, 0), 0, 4) == 0xFFFFFFFFu);
        CHECK(rig.cfg_read(pci::devfn(3, 1), 0, 2) == 0xFFFFu);
        CHECK(rig.cfg_read(pci::devfn(31, 7), 0xFF, 1) == 0xFFu);
        rig.cfg_write(pci::devfn(4, 0), 0x3C, 1, 9); // dropped
    }
    SUBCASE("bus 1 reads all-ones even where bus 0 has a device") {
        rig.outl(0xCF8, PciRig::address(kSlot3, 0, 1));
        CHECK(rig.in(0xCFC, 4) == 0xFFFFFFFFu);
        rig.outl(0xCF8, PciRig::address(kSlot3, 0x3C, 1));
        rig.out(0xCFC, 1, 7);
        CHECK(fn.config_byte(0x3C) == 0);
    }
}

TEST_CASE("0xCF8 latches only 32-bit writes and reads back what was written") {
    PciRig rig;
    TestFunction fn;
    rig.pci.attach(fn, kSlot3);
    uint32_t a = PciRig::address(kSlot3, 0x08);
    rig.outl(0xCF8, a);
    rig.out(0xCF8, 1, 0x00);
    rig.out(0xCF8, 2, 0x0000);
    rig.out(0xCFA, 2, 0x0000);
    rig.out(0xCFB, 1, 0x00);
    CHECK(rig.pci.config_address() == a);
    CHECK(rig.in(0xCF8, 4) == a);
    CHECK(rig.in(0xCFC, 4) == 0x02000001u); // still selects register 0x08
    // Reserved bits are kept as written, as QEMU does.
    rig.outl(0xCF8, 0x7F000003);
    CHECK(rig.in(0xCF8, 4) == 0x7F000003u);
}

TEST_CASE("0xCF9 byte cycles go to the reset control register, dword 0xCF8 never does") {
    PciRig rig;
    struct Rcr : IoHandler {
        std::vector<uint8_t> writes;
        void io_read(uint64_t, std::span<uint8_t> d) override { d[0] = 0x42; }
        void io_write(uint64_t, std::span<const uint8_t> d) override { writes.push_back(d[0]); }
    } rcr;
    rig.pci.set_reset_control(&rcr);
    rig.outl(0xCF8, 0x80000F00); // byte 1 = 0x0F has bit 2 set
    CHECK(rcr.writes.empty());
    rig.out(0xCF9, 1, 0x06);
    CHECK(rcr.writes == std::vector<uint8_t>{0x06});
    CHECK(rig.in(0xCF9, 1) == 0x42u);
    CHECK(rig.pci.config_address() == 0x80000F00u);
}

TEST_CASE("BAR sizing: all-ones reads back the size mask and type, and maps nothing") {
    PciRig rig;
    TestFunction fn;
    rig.pci.attach(fn, kSlot3);
    rig.cfg_write(kSlot3, 0x04, 2, pci::kCommandIo | pci::kCommandMemory);
    CHECK(rig.cfg_read(kSlot3, 0x10, 4) == 0x00000001u); // I/O BAR type bit
    CHECK(rig.cfg_read(kSlot3, 0x18, 4) == 0x00000008u); // prefetchable memory
    for (unsigned bar = 0; bar < 6; bar++) rig.cfg_write(kSlot3, 0x10 + 4 * bar, 4, 0xFFFFFFFF);
    CHECK(rig.cfg_read(kSlot3, 0x10, 4) == 0xFFFFFFE1u); // 32 bytes of I/O
    CHECK(rig.cfg_read(kSlot3, 0x14, 4) == 0xFFFFF000u); // 4 KiB memory
    CHECK(rig.cfg_read(kSlot3, 0x18, 4) == 0xFFF00008u); // 1 MiB prefetchable
    CHECK(rig.cfg_read(kSlot3, 0x1C, 4) == 0u);          // no BAR 3
    rig.cfg_write(kSlot3, 0x30, 4, 0xFFFFFFFE);          // SeaBIOS's ROM sizing value
    CHECK(rig.cfg_read(kSlot3, 0x30, 4) == 0xFFFF0000u);
    for (unsigned slot = 0; slot <= PciDevice::kRomSlot; slot++)
        CHECK(fn.mapped_base(slot) == BusMapping::kUnmapped);
}

TEST_CASE("BAR relocation moves the region on the real bus; command bits gate it") {
    PciRig rig;
    TestFunction fn;
    rig.pci.attach(fn, kSlot3);
    rig.cfg_write(kSlot3, 0x10, 4, 0xC000);
    rig.cfg_write(kSlot3, 0x14, 4, 0xFEBD0000);
    CHECK(rig.pio.find(0xC000) == nullptr); // command register still 0
    CHECK(rig.mmio.find(0xFEBD0000) == nullptr);

    rig.cfg_write(kSlot3, 0x04, 2, pci::kCommandIo);
    REQUIRE(rig.pio.find(0xC000) != nullptr);
    CHECK(rig.pio.find(0xC000)->handler == &fn.io);
    CHECK(rig.pio.find(0xC01F) != nullptr);
    CHECK(rig.pio.find(0xC020) == nullptr);
    CHECK(rig.in(0xC004, 1) == 0x14u);           // the window's pattern at offset 4
    CHECK(rig.mmio.find(0xFEBD0000) == nullptr); // memory space still off

    rig.cfg_write(kSlot3, 0x04, 2, pci::kCommandIo | pci::kCommandMemory);
    REQUIRE(rig.mmio.find(0xFEBD0000) != nullptr);
    CHECK(rig.mmio_read(0xFEBD0010, 1) == 0x50u);

    rig.cfg_write(kSlot3, 0x10, 4, 0xC100); // move
    CHECK(rig.pio.find(0xC000) == nullptr);
    CHECK(rig.in(0xC004, 1) == 0xFFu);
    CHECK(rig.in(0xC104, 1) == 0x14u);
    CHECK(fn.mapped_base(0) == 0xC100u);

    rig.cfg_write(kSlot3, 0x04, 2, pci::kCommandMemory); // I/O off
    CHECK(rig.pio.find(0xC100) == nullptr);
    CHECK(rig.mmio.find(0xFEBD0000) != nullptr);
    rig.cfg_write(kSlot3, 0x04, 2, 0);
    CHECK(rig.mmio.find(0xFEBD0000) == nullptr);
}

TEST_CASE("BARs at 0, past 4G-1 or beyond 64K of I/O stay unmapped") {
    PciRig rig;
    TestFunction fn;
    rig.pci.attach(fn, kSlot3);
    rig.cfg_write(kSlot3, 0x04, 2, pci::kCommandIo | pci::kCommandMemory);
    rig.cfg_write(kSlot3, 0x10, 4, 0x0);
    rig.cfg_write(kSlot3, 0x14, 4, 0xFFFFF000); // last byte would be 4G-1
    CHECK(fn.mapped_base(0) == BusMapping::kUnmapped);
    CHECK(fn.mapped_base(1) == BusMapping::kUnmapped);
    rig.cfg_write(kSlot3, 0x10, 4, 0x10000);
    CHECK(fn.mapped_base(0) == BusMapping::kUnmapped);
    rig.cfg_write(kSlot3, 0x14, 4, 0xFFFFE000);
    CHECK(fn.mapped_base(1) == 0xFFFFE000u);
}

TEST_CASE("expansion ROM BAR: needs its enable bit and memory space") {
    PciRig rig;
    TestFunction fn;
    rig.pci.attach(fn, kSlot3);
    rig.cfg_write(kSlot3, 0x04, 2, pci::kCommandMemory);
    rig.cfg_write(kSlot3, 0x30, 4, 0xFEBC0000);
    CHECK(rig.mmio.find(0xFEBC0000) == nullptr);
    rig.cfg_write(kSlot3, 0x30, 4, 0xFEBC0001); // SeaBIOS: enable, copy, disable
    CHECK(rig.cfg_read(kSlot3, 0x30, 4) == 0xFEBC0001u);
    REQUIRE(rig.mmio.find(0xFEBC0000) != nullptr);
    CHECK(rig.mmio_read(0xFEBC0002, 1) == 0xC2u);
    CHECK(rig.mmio.find(0xFEBCFFFF) != nullptr);
    rig.cfg_write(kSlot3, 0x04, 2, 0);
    CHECK(rig.mmio.find(0xFEBC0000) == nullptr);
    rig.cfg_write(kSlot3, 0x04, 2, pci::kCommandMemory);
    rig.cfg_write(kSlot3, 0x30, 4, 0xFEBC0000);
    CHECK(rig.mmio.find(0xFEBC0000) == nullptr);
}

TEST_CASE("a BAR programmed over another region is left unmapped, then maps when moved") {
    PciRig rig;
    TestFunction a, b(1, 0xB0B0);
    rig.pci.attach(a, kSlot3);
    rig.pci.attach(b, pci::devfn(4, 0));
    Window other(0x00);
    rig.pio.add(0x3F8, 8, &other, AccessSizes{1, 1}, "uart");
    for (uint8_t d : {kSlot3, pci::devfn(4, 0)})
        rig.cfg_write(d, 0x04, 2, pci::kCommandIo | pci::kCommandMemory);
    rig.cfg_write(kSlot3, 0x14, 4, 0xFEBD0000);
    rig.cfg_write(pci::devfn(4, 0), 0x14, 4, 0xFEBD0000); // collides with a's BAR1
    CHECK(a.mapped_base(1) == 0xFEBD0000u);
    CHECK(b.mapped_base(1) == BusMapping::kUnmapped);
    CHECK(rig.mmio.find(0xFEBD0000)->handler == &a.mem);
    rig.cfg_write(pci::devfn(4, 0), 0x10, 4, 0x3E0); // I/O BAR over the UART at 0x3F8
    CHECK(b.mapped_base(0) == BusMapping::kUnmapped);
    CHECK(rig.pio.find(0x3F8)->handler == &other);
    rig.cfg_write(pci::devfn(4, 0), 0x14, 4, 0xFEBE0000);
    CHECK(b.mapped_base(1) == 0xFEBE0000u);
    CHECK(rig.mmio.find(0xFEBE0000)->handler == &b.mem);
}

TEST_CASE("INTx goes through the PIRQ swizzle; Interrupt Disable masks it, status shows it") {
    PciRig rig;
    TestFunction fn;
    rig.pci.attach(fn, kSlot3); // slot 3 INTA# -> PIRQC
    rig.router.set_route(2, 11);
    fn.set_intx(true);
    CHECK(rig.isa.level(11));
    CHECK((rig.cfg_read(kSlot3, 0x06, 2) & pci::kStatusInterrupt) != 0);
    rig.cfg_write(kSlot3, 0x04, 2, pci::kCommandIntxDisable);
    CHECK_FALSE(rig.isa.level(11));
    CHECK((rig.cfg_read(kSlot3, 0x06, 2) & pci::kStatusInterrupt) != 0);
    rig.cfg_write(kSlot3, 0x04, 2, 0);
    CHECK(rig.isa.level(11));
    fn.set_intx(false);
    CHECK_FALSE(rig.isa.level(11));
    CHECK((rig.cfg_read(kSlot3, 0x06, 2) & pci::kStatusInterrupt) == 0);
}

TEST_CASE("reset clears command, BARs and mappings; power-on restores the device area") {
    PciRig rig;
    TestFunction fn;
    rig.pci.attach(fn, kSlot3);
    rig.cfg_write(kSlot3, 0x10, 4, 0xC000);
    rig.cfg_write(kSlot3, 0x3C, 1, 0x0B);
    rig.cfg_write(kSlot3, 0x40, 4, 0x12345678);
    rig.cfg_write(kSlot3, 0x04, 2, pci::kCommandIo | pci::kCommandSerr);
    REQUIRE(rig.pio.find(0xC000) != nullptr);
    fn.reset(ResetKind::Hard);
    CHECK(rig.pio.find(0xC000) == nullptr);
    CHECK(rig.cfg_read(kSlot3, 0x04, 2) == 0u);
    CHECK(rig.cfg_read(kSlot3, 0x10, 4) == 1u);
    CHECK(rig.cfg_read(kSlot3, 0x3C, 1) == 0u);
    CHECK(rig.cfg_read(kSlot3, 0x40, 4) == 0x12345678u); // a hard reset leaves chip registers
    fn.reset(ResetKind::PowerOn);
    CHECK(rig.cfg_read(kSlot3, 0x40, 4) == 0u);
    CHECK(rig.cfg_read(kSlot3, 0x00, 4) == 0xBEEF1234u);
}

TEST_CASE("save/load round trip restores config space, mappings and INTx") {
    PciRig a;
    TestFunction fa;
    a.pci.attach(fa, kSlot3);
    a.router.set_route(2, 10);
    a.cfg_write(kSlot3, 0x10, 4, 0xC040);
    a.cfg_write(kSlot3, 0x18, 4, 0xFC000000);
    a.cfg_write(kSlot3, 0x04, 2, pci::kCommandIo | pci::kCommandMemory);
    a.cfg_write(kSlot3, 0x44, 1, 0x77);
    fa.set_intx(true);
    a.outl(0xCF8, PciRig::address(kSlot3, 0x44));
    StateWriter w;
    a.pci.save(w);
    fa.save(w);

    PciRig b;
    TestFunction fb;
    b.pci.attach(fb, kSlot3);
    b.router.set_route(2, 10);
    StateReader r(w.data());
    b.pci.load(r);
    fb.load(r);
    CHECK(r.at_end());
    CHECK(b.pci.config_address() == PciRig::address(kSlot3, 0x44));
    CHECK(b.in(0xCFC, 1) == 0x77u);
    CHECK(fb.mapped_base(0) == 0xC040u);
    CHECK(fb.mapped_base(2) == 0xFC000000u);
    CHECK(b.pio.find(0xC040)->handler == &fb.io);
    CHECK(b.isa.level(10));
    CHECK(fb.intx_level());

    // Then the state keeps working: change and restore again.
    b.cfg_write(kSlot3, 0x10, 4, 0xC080);
    StateReader r2(w.data());
    b.pci.load(r2);
    fb.load(r2);
    CHECK(fb.mapped_base(0) == 0xC040u);
    CHECK(b.pio.find(0xC080) == nullptr);
}

TEST_CASE("load refuses state of another function and keeps read-only bits") {
    PciRig a;
    TestFunction fa;
    a.pci.attach(fa, kSlot3);
    StateWriter w;
    fa.save(w);
    std::vector<uint8_t> bytes = w.data();

    TestFunction other(1, 0xB0B0);
    StateReader r(bytes);
    CHECK_THROWS_AS(other.load(r), StateError);

    // Flip the interrupt pin (read-only) in the saved config: the load keeps this build's pin.
    // The config array follows the section header: len(4) + "test-fn"(7) + version(4) + len(4).
    size_t cfg = 4 + 7 + 4 + 4;
    bytes[cfg + 0x3D] = 1;    // same as current: accepted
    bytes[cfg + 0x3E] = 0xAA; // Max_Lat (read-only, 0 here)
    TestFunction same;
    StateReader r2(bytes);
    same.load(r2);
    CHECK(same.config_byte(0x3E) == 0);
}

TEST_CASE("capability list: 0x34 points at the newest, each links to the previous") {
    struct WithCaps : PciDevice {
        WithCaps() : PciDevice(PciIdentity{0x10EC, 0x8139, 0x20, 0x020000, 0}) {
            add_capability(0x05, 0x50, 0x0C); // MSI
            add_capability(0x01, 0xDC, 8);    // power management, as the RTL8139's
            set_config_word(0xDE, 0x7E02);
            set_wmask_byte(0xE0, 0x03); // PMCSR power state writable
        }
        const char* name() const override { return "caps"; }
    } dev;
    PciRig rig;
    rig.pci.attach(dev, pci::devfn(3, 0));
    uint8_t d = pci::devfn(3, 0);
    CHECK((rig.cfg_read(d, 0x06, 2) & pci::kStatusCapList) != 0);
    CHECK(rig.cfg_read(d, 0x34, 1) == 0xDCu);
    CHECK(rig.cfg_read(d, 0xDC, 4) == 0x7E025001u); // ID 1, next 0x50, PMC
    CHECK(rig.cfg_read(d, 0x50, 2) == 0x0005u);     // ID 5, end of list
    rig.cfg_write(d, 0xDC, 4, 0);                   // read-only structure
    CHECK(rig.cfg_read(d, 0xDC, 4) == 0x7E025001u);
    rig.cfg_write(d, 0xE0, 1, 0xFF);
    CHECK(rig.cfg_read(d, 0xE0, 1) == 0x03u);
    rig.cfg_write(d, 0x34, 1, 0);
    CHECK(rig.cfg_read(d, 0x34, 1) == 0xDCu);
    rig.cfg_write(d, 0x06, 2, 0xFFFF); // W1C bits do not clear the list bit
    CHECK((rig.cfg_read(d, 0x06, 2) & pci::kStatusCapList) != 0);
}
