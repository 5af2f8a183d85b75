// The interrupt controllers wired together as the pc machine wires them: ISA devices drive the
// GSI router, which feeds the 8259 pair and the IOAPIC; the PIC's INT is every CPU's LINT0; the
// IOAPIC and the local APICs talk over the APIC bus.
#include <doctest/doctest.h>

#include "devmodel/irq/ioapic.hpp"
#include "devmodel/irq/isa_irq_router.hpp"
#include "devmodel/irq/local_apic.hpp"
#include "devmodel/irq/pic8259.hpp"
#include "vmexit/bus.hpp"

using namespace hvm;

namespace {

using A = LocalApic;

struct Pc {
    FakeClock clock{5'000'000};
    ApicBus apic_bus;
    Pic8259Pair pic{IrqPin(&apic_bus, ApicBus::kLint0)};
    IoApic ioapic{apic_bus, clock};
    IsaIrqRouter gsi{pic, ioapic};
    LocalApic bsp{apic_bus, clock, {.apic_id = 0, .bsp = true, .tsc_hz = 1'000'000'000}};
    LocalApic ap{apic_bus, clock, {.apic_id = 1, .bsp = false, .tsc_hz = 1'000'000'000}};
    Bus pio{"pio"};
    Bus mmio{"mmio"};

    Pc() {
        apic_bus.connect_ioapic(ioapic);
        apic_bus.connect_ext_int(pic);
        apic_bus.attach(bsp);
        apic_bus.attach(ap);
        pio.add(0x20, 2, &pic.master_io(), {1, 1}, "pic1");
        pio.add(0xA0, 2, &pic.slave_io(), {1, 1}, "pic2");
        pio.add(0x4D0, 2, &pic.elcr_io(), {1, 1}, "elcr");
        mmio.add(IoApic::kDefaultBase, IoApic::kMmioSize, &ioapic, {4, 4}, "ioapic");
        // SeaBIOS's PIC setup.
        const uint8_t seq[][2] = {{0x20, 0x11}, {0x21, 0x08}, {0x21, 0x04}, {0x21, 0x01},
                                  {0xA0, 0x11}, {0xA1, 0x70}, {0xA1, 0x02}, {0xA1, 0x01},
                                  {0x21, 0x00}, {0xA1, 0x00}};
        for (auto& s : seq) out(s[0], s[1]);
    }
    void out(uint16_t port, uint8_t v) { pio.write(port, std::span<const uint8_t>(&v, 1)); }
    uint8_t in(uint16_t port) {
        uint8_t v = 0;
        pio.read(port, std::span<uint8_t>(&v, 1));
        return v;
    }
    void ioapic_entry(unsigned pin, uint64_t e) {
        auto w = [&](uint64_t addr, uint32_t v) {
            uint8_t b[4];
            le_store(b, v);
            mmio.write(addr, b);
        };
        w(IoApic::kDefaultBase, 0x10 + 2 * pin + 1);
        w(IoApic::kDefaultBase + 0x10, uint32_t(e >> 32));
        w(IoApic::kDefaultBase, 0x10 + 2 * pin);
        w(IoApic::kDefaultBase + 0x10, uint32_t(e));
    }
    uint64_t ioapic_low(unsigned pin) {
        uint8_t b[4];
        le_store(b, 0x10 + 2 * pin);
        mmio.write(IoApic::kDefaultBase, b);
        mmio.read(IoApic::kDefaultBase + 0x10, b);
        return le_load(b);
    }
    static uint32_t rd(LocalApic& a, uint32_t off) {
        uint8_t b[4];
        a.io_read(off, b);
        return uint32_t(le_load(b));
    }
    static void wr(LocalApic& a, uint32_t off, uint32_t v) {
        uint8_t b[4];
        le_store(b, v);
        a.io_write(off, b);
    }
    static bool intr(LocalApic& a) { return a.pending.load() & CpuInterrupts::kIntr; }
    static bool irr(LocalApic& a, unsigned v) {
        return rd(a, A::kRegIrr + (v / 32) * 0x10) & (1u << (v % 32));
    }
};

} // namespace

TEST_CASE("early boot: the PIC reaches the BSP through LINT0 while the APIC is soft-disabled") {
    Pc pc;
    CHECK_FALSE(Pc::intr(pc.bsp));
    pc.gsi.set_irq(1, true); // keyboard
    CHECK(Pc::intr(pc.bsp));
    CHECK_FALSE(Pc::intr(pc.ap)); // APs have LINT0 masked
    CHECK(pc.bsp.acknowledge_interrupt() == 0x09);
    CHECK_FALSE(Pc::intr(pc.bsp));
    pc.out(0x20, 0x0B);
    CHECK(pc.in(0x20) == 0x02); // in service at the PIC, not in the APIC's ISR
    CHECK(Pc::rd(pc.bsp, A::kRegIsr) == 0);
    pc.out(0x20, 0x20);
}

TEST_CASE("ExtINT ignores the TPR and goes before fixed APIC interrupts") {
    Pc pc;
    Pc::wr(pc.bsp, A::kRegSvr, 0x1FF);
    Pc::wr(pc.bsp, A::kRegTpr, 0xF0);
    pc.gsi.set_irq(12, true); // mouse, through the slave
    CHECK(Pc::intr(pc.bsp));
    ApicMessage m;
    m.vector = 0xFE;
    pc.apic_bus.deliver(m);
    CHECK(pc.bsp.acknowledge_interrupt() == 0x74);
}

TEST_CASE("a globally disabled APIC passes INTR straight through, on every CPU") {
    Pc pc;
    // An AP in wait-for-SIPI ignores INTR: start it first.
    Pc::wr(pc.bsp, A::kRegIcrLow, 0x000C4500);
    pc.ap.acknowledge_init();
    Pc::wr(pc.bsp, A::kRegIcrLow, 0x000C4610);
    CHECK(pc.ap.acknowledge_sipi() == 0x10);
    CHECK(pc.bsp.write_msr(A::kMsrApicBase, 0xFEE00100));
    CHECK(pc.ap.write_msr(A::kMsrApicBase, 0xFEE00000));
    pc.gsi.set_irq(4, true);
    CHECK(Pc::intr(pc.bsp));
    CHECK(Pc::intr(pc.ap));
    CHECK(pc.bsp.acknowledge_interrupt() == 0x0C);
    // The other CPU lost the race: INTR dropped, nothing left to take.
    CHECK_FALSE(Pc::intr(pc.ap));
    CHECK(pc.ap.acknowledge_interrupt() == -1);
}

TEST_CASE("masking LINT0 cuts the PIC off; unmasking an ExtINT LINT0 with INTR high requests") {
    Pc pc;
    Pc::wr(pc.bsp, A::kRegSvr, 0x1FF);
    Pc::wr(pc.bsp, A::kRegLvtLint0, 0x10700);
    pc.gsi.set_irq(3, true);
    CHECK_FALSE(Pc::intr(pc.bsp));
    Pc::wr(pc.bsp, A::kRegLvtLint0, 0x700);
    CHECK(Pc::intr(pc.bsp));
    CHECK(pc.bsp.acknowledge_interrupt() == 0x0B);
}

TEST_CASE("a level IOAPIC interrupt: TMR set, EOI broadcast clears Remote IRR and re-delivers") {
    Pc pc;
    Pc::wr(pc.bsp, A::kRegSvr, 0x1FF);
    Pc::wr(pc.bsp, A::kRegLvtLint0, 0x10700); // APIC mode: the PIC is masked off
    pc.ioapic_entry(9, 0x39 | IoApic::kRteLevel);
    pc.gsi.set_irq(9, true); // SCI, level
    CHECK(Pc::irr(pc.bsp, 0x39));
    CHECK(bool(Pc::rd(pc.bsp, A::kRegTmr + 0x10) & (1u << (0x39 - 32))));
    CHECK(pc.bsp.acknowledge_interrupt() == 0x39);
    CHECK(bool(pc.ioapic_low(9) & IoApic::kRteRemoteIrr));
    // The handler EOIs before the device lowered its line: the IOAPIC sends it again.
    Pc::wr(pc.bsp, A::kRegEoi, 0);
    CHECK(Pc::irr(pc.bsp, 0x39));
    CHECK(bool(pc.ioapic_low(9) & IoApic::kRteRemoteIrr));
    CHECK(pc.bsp.acknowledge_interrupt() == 0x39);
    pc.gsi.set_irq(9, false);
    Pc::wr(pc.bsp, A::kRegEoi, 0);
    CHECK_FALSE(Pc::irr(pc.bsp, 0x39));
    CHECK_FALSE(bool(pc.ioapic_low(9) & IoApic::kRteRemoteIrr));
}

TEST_CASE("only the EOI of a level-triggered vector is broadcast to the IOAPIC") {
    Pc pc;
    Pc::wr(pc.bsp, A::kRegIcrLow, 0x000C4500);
    pc.ap.acknowledge_init();
    Pc::wr(pc.bsp, A::kRegIcrLow, 0x000C4610);
    CHECK(pc.ap.acknowledge_sipi() == 0x10);
    for (LocalApic* a : {&pc.bsp, &pc.ap}) Pc::wr(*a, A::kRegSvr, 0x1FF);
    Pc::wr(pc.bsp, A::kRegLvtLint0, 0x10700);                    // APIC mode: the PIC is masked off
    pc.ioapic_entry(9, (1ull << 56) | 0x39 | IoApic::kRteLevel); // level, to the AP
    pc.ioapic_entry(4, 0x39);                                    // same vector, edge, to the BSP
    pc.gsi.set_irq(9, true);
    CHECK(pc.ap.acknowledge_interrupt() == 0x39);
    CHECK(bool(pc.ioapic_low(9) & IoApic::kRteRemoteIrr));
    pc.gsi.set_irq(4, true);
    CHECK(pc.bsp.acknowledge_interrupt() == 0x39);
    Pc::wr(pc.bsp, A::kRegEoi, 0); // edge: TMR clear, no broadcast
    CHECK(bool(pc.ioapic_low(9) & IoApic::kRteRemoteIrr));
    CHECK_FALSE(Pc::irr(pc.ap, 0x39)); // a broadcast would have re-sent the asserted line
    Pc::wr(pc.ap, A::kRegEoi, 0);      // level: broadcast, and the line is still asserted
    CHECK(Pc::irr(pc.ap, 0x39));
    CHECK(pc.ap.acknowledge_interrupt() == 0x39);
    pc.gsi.set_irq(9, false);
    Pc::wr(pc.ap, A::kRegEoi, 0);
    CHECK_FALSE(bool(pc.ioapic_low(9) & IoApic::kRteRemoteIrr));
}

TEST_CASE("the PIT on GSI 0 reaches PIC IRQ 0 and IOAPIC pin 2") {
    Pc pc;
    Pc::wr(pc.bsp, A::kRegSvr, 0x1FF);
    Pc::wr(pc.bsp, A::kRegLvtLint0, 0x10700);
    pc.ioapic_entry(2, 0x30); // what Linux and Windows program after the MADT override
    pc.ioapic_entry(0, 0x31);
    pc.gsi.set_irq(0, true);
    pc.gsi.set_irq(0, false);
    CHECK(Pc::irr(pc.bsp, 0x30));
    CHECK_FALSE(Pc::irr(pc.bsp, 0x31));
    pc.out(0x20, 0x0A);
    CHECK(pc.in(0x20) == 0x01); // and the PIC saw IRQ 0
}

TEST_CASE("ExtINT through an IOAPIC pin takes its vector from the PIC") {
    Pc pc;
    Pc::wr(pc.bsp, A::kRegSvr, 0x1FF);
    Pc::wr(pc.bsp, A::kRegLvtLint0, 0x10700);
    pc.ioapic_entry(2, 7u << 8); // ExtINT to APIC 0 (Linux's "through-8259A" timer check)
    pc.gsi.set_irq(0, true);
    pc.gsi.set_irq(0, false);
    CHECK(Pc::intr(pc.bsp));
    CHECK(pc.bsp.acknowledge_interrupt() == 0x08);
    CHECK_FALSE(Pc::intr(pc.bsp));
    CHECK(Pc::rd(pc.bsp, A::kRegIsr + 0x00) == 0);
}

TEST_CASE("IOAPIC lowest-priority delivery in logical mode picks a CPU") {
    Pc pc;
    Pc::wr(pc.bsp, A::kRegSvr, 0x1FF);
    Pc::wr(pc.bsp, A::kRegIcrLow, 0x000C4500);
    pc.ap.acknowledge_init();
    Pc::wr(pc.bsp, A::kRegIcrLow, 0x000C4610);
    CHECK(pc.ap.acknowledge_sipi() == 0x10);
    Pc::wr(pc.ap, A::kRegSvr, 0x1FF);
    Pc::wr(pc.bsp, A::kRegLdr, 0x01000000);
    Pc::wr(pc.ap, A::kRegLdr, 0x02000000);
    Pc::wr(pc.bsp, A::kRegTpr, 0x80);
    pc.ioapic_entry(11, 0x0300000000000000ull | 0x900 | 0x4B | IoApic::kRteLevel);
    pc.gsi.set_irq(11, true);
    CHECK(Pc::irr(pc.ap, 0x4B));
    CHECK_FALSE(Pc::irr(pc.bsp, 0x4B));
    CHECK(pc.ap.acknowledge_interrupt() == 0x4B);
    pc.gsi.set_irq(11, false);
    Pc::wr(pc.ap, A::kRegEoi, 0); // the AP's EOI reaches the IOAPIC too
    CHECK_FALSE(bool(pc.ioapic_low(11) & IoApic::kRteRemoteIrr));
}

TEST_CASE("PIC mode with a level PCI interrupt on IRQ 11 (ELCR)") {
    Pc pc;
    pc.out(0x4D1, 0x08);
    pc.gsi.set_irq(11, true);
    CHECK(pc.bsp.acknowledge_interrupt() == 0x73);
    pc.out(0xA0, 0x20);
    pc.out(0x20, 0x20);
    CHECK(Pc::intr(pc.bsp)); // still asserted: again
    // The device lowers its line before the CPU takes it: the slave withdraws, but the master
    // latched the edge on IR2, so the CPU gets the spurious IRQ 15 Linux and Windows expect.
    pc.gsi.set_irq(11, false);
    CHECK(Pc::intr(pc.bsp));
    CHECK(pc.bsp.acknowledge_interrupt() == 0x77);
    pc.out(0x20, 0x20);
    CHECK_FALSE(Pc::intr(pc.bsp));
}

TEST_CASE("SeaBIOS's smp_setup: LINT0 = 0x8700, LINT1 = 0x8400, INIT-SIPI-SIPI to the APs") {
    Pc pc;
    Pc::wr(pc.bsp, A::kRegSvr, Pc::rd(pc.bsp, A::kRegSvr) | A::kSvrEnable);
    Pc::wr(pc.bsp, A::kRegLvtLint0, 0x8700);
    Pc::wr(pc.bsp, A::kRegLvtLint1, 0x8400);
    CHECK(Pc::rd(pc.bsp, A::kRegLvtLint0) == 0x8700);
    CHECK(Pc::rd(pc.bsp, A::kRegLvtLint1) == 0x8400);
    Pc::wr(pc.bsp, A::kRegIcrLow, 0x000C4500);
    Pc::wr(pc.bsp, A::kRegIcrLow, 0x000C4600 | 0x9F);
    CHECK(pc.ap.acknowledge_init());
    CHECK(pc.ap.acknowledge_sipi() == 0x9F);
    // The PIC still reaches the BSP, and the NMI wire still makes an NMI.
    pc.gsi.set_irq(8, true); // RTC
    CHECK(pc.bsp.acknowledge_interrupt() == 0x70);
    pc.apic_bus.set_irq(ApicBus::kLint1, true);
    CHECK(pc.bsp.acknowledge_nmi());
    CHECK_FALSE(pc.ap.acknowledge_nmi()); // the AP's LINT1 stays masked
}
