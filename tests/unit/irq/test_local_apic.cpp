#include <doctest/doctest.h>

#include <vector>

#include "devmodel/irq/local_apic.hpp"

using namespace hvm;

namespace {

constexpr uint64_t kTscHz = 2'500'000'000; // 2.5 GHz: 2.5 TSC ticks per ns
using A = LocalApic;

struct Cpus {
    FakeClock clock{1'000'000};
    ApicBus bus;
    LocalApic bsp{bus, clock, {.apic_id = 0, .bsp = true, .tsc_hz = kTscHz}};
    LocalApic ap{bus, clock, {.apic_id = 1, .bsp = false, .tsc_hz = kTscHz}};
    int kicks[2] = {0, 0};

    Cpus() {
        bus.attach(bsp);
        bus.attach(ap);
        bsp.kick = [this] { kicks[0]++; };
        ap.kick = [this] { kicks[1]++; };
    }
    // Brings the AP out of wait-for-SIPI as SeaBIOS does: INIT, then SIPI, to all but self.
    void start_ap() {
        wr(bsp, A::kRegIcrLow, 0x000C4500);
        REQUIRE(ap.acknowledge_init());
        wr(bsp, A::kRegIcrLow, 0x000C4610);
        REQUIRE(ap.acknowledge_sipi() == 0x10);
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
    static void enable(LocalApic& a) { wr(a, A::kRegSvr, 0x1FF); }
    static bool bank_bit(LocalApic& a, uint32_t bank, unsigned v) {
        return rd(a, bank + (v / 32) * 0x10) & (1u << (v % 32));
    }
    static bool irr(LocalApic& a, unsigned v) { return bank_bit(a, A::kRegIrr, v); }
    static bool isr(LocalApic& a, unsigned v) { return bank_bit(a, A::kRegIsr, v); }
    static bool tmr(LocalApic& a, unsigned v) { return bank_bit(a, A::kRegTmr, v); }
    static bool intr(LocalApic& a) { return a.pending.load() & CpuInterrupts::kIntr; }
    static uint32_t esr(LocalApic& a) {
        wr(a, A::kRegEsr, 0);
        return rd(a, A::kRegEsr);
    }
    unsigned fixed(uint8_t vector, uint8_t dest = 0, bool level = false) {
        ApicMessage m;
        m.vector = vector;
        m.dest = dest;
        m.level_trigger = level;
        return bus.deliver(m);
    }
};

uint32_t rd(LocalApic& a, uint32_t off) {
    return Cpus::rd(a, off);
}
void wr(LocalApic& a, uint32_t off, uint32_t v) {
    Cpus::wr(a, off, v);
}

} // namespace

TEST_CASE("power-on state matches QEMU's pc") {
    Cpus c;
    CHECK(rd(c.bsp, A::kRegId) == 0x00000000);
    CHECK(rd(c.ap, A::kRegId) == 0x01000000);
    CHECK(rd(c.bsp, A::kRegVersion) == 0x00050014);
    CHECK(rd(c.bsp, A::kRegSvr) == 0xFF);
    CHECK(rd(c.bsp, A::kRegDfr) == 0xFFFFFFFF);
    CHECK(rd(c.bsp, A::kRegTpr) == 0);
    CHECK(rd(c.bsp, A::kRegLvtLint0) == 0x700); // BSP: ExtINT, unmasked (virtual wire)
    CHECK(rd(c.ap, A::kRegLvtLint0) == 0x10000);
    for (uint32_t off = A::kRegLvtTimer; off <= A::kRegLvtError; off += 0x10)
        if (off != A::kRegLvtLint0) CHECK(rd(c.bsp, off) == 0x10000);
    uint64_t base = 0;
    CHECK(c.bsp.read_msr(A::kMsrApicBase, base));
    CHECK(base == 0xFEE00900);
    CHECK(c.ap.read_msr(A::kMsrApicBase, base));
    CHECK(base == 0xFEE00800);
    CHECK(c.bsp.mmio_base().load() == 0xFEE00000);
    CHECK_FALSE(c.bsp.waiting_for_sipi());
    CHECK(c.ap.waiting_for_sipi());
    CHECK(c.bsp.pending.load() == 0);
}

TEST_CASE("a fixed interrupt goes IRR -> ISR on acknowledge and leaves on EOI") {
    Cpus c;
    Cpus::enable(c.bsp);
    CHECK(c.fixed(0x41) == 1);
    CHECK(Cpus::irr(c.bsp, 0x41));
    CHECK(Cpus::intr(c.bsp));
    CHECK(c.kicks[0] == 1);
    CHECK(c.bsp.acknowledge_interrupt() == 0x41);
    CHECK_FALSE(Cpus::irr(c.bsp, 0x41));
    CHECK(Cpus::isr(c.bsp, 0x41));
    CHECK_FALSE(Cpus::intr(c.bsp));
    CHECK(rd(c.bsp, A::kRegPpr) == 0x40);
    wr(c.bsp, A::kRegEoi, 0);
    CHECK_FALSE(Cpus::isr(c.bsp, 0x41));
    CHECK(rd(c.bsp, A::kRegPpr) == 0);
    CHECK(c.bsp.acknowledge_interrupt() == -1); // nothing left
}

TEST_CASE("IRR and ISR priority: highest vector first, nesting by class, EOI of the highest") {
    Cpus c;
    Cpus::enable(c.bsp);
    c.fixed(0x31);
    c.fixed(0x52);
    c.fixed(0x45);
    CHECK(c.bsp.acknowledge_interrupt() == 0x52);
    CHECK_FALSE(Cpus::intr(c.bsp)); // 0x45 and 0x31 rank below class 5 in service
    c.fixed(0x5F);
    CHECK_FALSE(Cpus::intr(c.bsp)); // same class does not nest
    c.fixed(0x61);
    CHECK(Cpus::intr(c.bsp));
    CHECK(c.bsp.acknowledge_interrupt() == 0x61);
    wr(c.bsp, A::kRegEoi, 0);
    CHECK_FALSE(Cpus::isr(c.bsp, 0x61));
    CHECK(Cpus::isr(c.bsp, 0x52));
    wr(c.bsp, A::kRegEoi, 0);
    CHECK(c.bsp.acknowledge_interrupt() == 0x5F);
    wr(c.bsp, A::kRegEoi, 0);
    CHECK(c.bsp.acknowledge_interrupt() == 0x45);
    wr(c.bsp, A::kRegEoi, 0);
    CHECK(c.bsp.acknowledge_interrupt() == 0x31);
}

TEST_CASE("TPR and PPR gate delivery; CR8 is TPR[7:4]") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegTpr, 0x50);
    CHECK(rd(c.bsp, A::kRegPpr) == 0x50);
    CHECK(c.bsp.tpr() == 5);
    c.fixed(0x45);
    c.fixed(0x55);
    CHECK_FALSE(Cpus::intr(c.bsp));
    CHECK(c.bsp.acknowledge_interrupt() == -1);
    c.fixed(0x61);
    CHECK(c.bsp.acknowledge_interrupt() == 0x61);
    CHECK(rd(c.bsp, A::kRegPpr) == 0x60);
    wr(c.bsp, A::kRegEoi, 0);
    CHECK(rd(c.bsp, A::kRegPpr) == 0x50);
    c.bsp.set_tpr(4);
    CHECK(rd(c.bsp, A::kRegTpr) == 0x40);
    CHECK(Cpus::intr(c.bsp));
    CHECK(c.bsp.acknowledge_interrupt() == 0x55);
    CHECK_FALSE(Cpus::intr(c.bsp));
    wr(c.bsp, A::kRegEoi, 0);
    CHECK_FALSE(Cpus::intr(c.bsp)); // 0x45 is class 4 = TPR class
    c.bsp.set_tpr(0x13);            // only the low nibble counts
    CHECK(c.bsp.tpr() == 3);
    CHECK(c.bsp.acknowledge_interrupt() == 0x45);
}

TEST_CASE("arbitration priority follows TPR, ISR and IRR classes") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegTpr, 0x35);
    CHECK(rd(c.bsp, A::kRegApr) == 0x35);
    c.fixed(0x81);
    CHECK(rd(c.bsp, A::kRegApr) == 0x80);
}

TEST_CASE("illegal vectors are refused and logged in ESR, which latches on write") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegLvtError, 0x4E);
    CHECK(c.fixed(0x05) == 0);
    CHECK_FALSE(Cpus::irr(c.bsp, 0x05));
    CHECK(rd(c.bsp, A::kRegEsr) == 0); // not visible until ESR is written
    CHECK(Cpus::irr(c.bsp, 0x4E));     // the error LVT fired
    CHECK(Cpus::esr(c.bsp) == A::kEsrReceiveIllegalVector);
    CHECK(Cpus::esr(c.bsp) == 0);
    // Sending a fixed IPI with vector < 16.
    wr(c.bsp, A::kRegIcrLow, 0x00040007);
    CHECK(Cpus::esr(c.bsp) == A::kEsrSendIllegalVector);
    // A reserved register (0x2F0: LVT CMCI does not exist with 6 LVT entries).
    CHECK(rd(c.bsp, 0x2F0) == 0);
    wr(c.bsp, 0x3F0, 1);
    CHECK(Cpus::esr(c.bsp) == A::kEsrIllegalRegister);
}

TEST_CASE("an error LVT with an illegal vector does not recurse") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegLvtError, 0x03);
    c.fixed(0x02);
    CHECK(Cpus::esr(c.bsp) == A::kEsrReceiveIllegalVector);
    CHECK(rd(c.bsp, A::kRegIrr) == 0);
}

TEST_CASE("register write masks and read-only registers") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegLdr, 0xFFFFFFFF);
    CHECK(rd(c.bsp, A::kRegLdr) == 0xFF000000);
    wr(c.bsp, A::kRegDfr, 0x00000000);
    CHECK(rd(c.bsp, A::kRegDfr) == 0x0FFFFFFF);
    wr(c.bsp, A::kRegSvr, 0xFFFFFFFF);
    CHECK(rd(c.bsp, A::kRegSvr) == 0x3FF);
    wr(c.bsp, A::kRegTpr, 0xFFFFFF12);
    CHECK(rd(c.bsp, A::kRegTpr) == 0x12);
    wr(c.bsp, A::kRegIcrHigh, 0xFFFFFFFF);
    CHECK(rd(c.bsp, A::kRegIcrHigh) == 0xFF000000);
    wr(c.bsp, A::kRegLvtTimer, 0xFFFFFFFF);
    CHECK(rd(c.bsp, A::kRegLvtTimer) == 0x000700FF);
    wr(c.bsp, A::kRegLvtLint1, 0xFFFFFFFF);
    CHECK(rd(c.bsp, A::kRegLvtLint1) == 0x0001A7FF);
    wr(c.bsp, A::kRegLvtError, 0xFFFFFFFF);
    CHECK(rd(c.bsp, A::kRegLvtError) == 0x000100FF);
    wr(c.bsp, A::kRegTimerDivide, 0xFFFFFFFF);
    CHECK(rd(c.bsp, A::kRegTimerDivide) == 0xB);
    wr(c.bsp, A::kRegVersion, 0);
    wr(c.bsp, A::kRegPpr, 0xFF);
    wr(c.bsp, A::kRegIrr, 0xFFFFFFFF);
    CHECK(rd(c.bsp, A::kRegVersion) == 0x00050014);
    CHECK(rd(c.bsp, A::kRegIrr) == 0);
    wr(c.bsp, A::kRegId, 0x07000000);
    CHECK(rd(c.bsp, A::kRegId) == 0x07000000);
    CHECK(c.bsp.apic_id() == 7);
    CHECK(Cpus::esr(c.bsp) == 0);
}

TEST_CASE("software disable masks every LVT and refuses fixed interrupts but not NMI") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegLvtLint1, 0x400);
    CHECK(rd(c.bsp, A::kRegLvtLint1) == 0x400);
    wr(c.bsp, A::kRegSvr, 0xFF);
    CHECK(rd(c.bsp, A::kRegLvtLint1) == 0x10400);
    CHECK(rd(c.bsp, A::kRegLvtLint0) == 0x10700);
    wr(c.bsp, A::kRegLvtLint1, 0x400); // cannot unmask while software-disabled
    CHECK(rd(c.bsp, A::kRegLvtLint1) == 0x10400);
    CHECK(c.fixed(0x40) == 0);
    CHECK_FALSE(Cpus::irr(c.bsp, 0x40));
    ApicMessage nmi;
    nmi.mode = ApicDeliveryMode::Nmi;
    CHECK(c.bus.deliver(nmi) == 1);
    CHECK(c.bsp.acknowledge_nmi());
    CHECK_FALSE(c.bsp.acknowledge_nmi());
}

TEST_CASE("timer one-shot counts down at bus clock / divider and interrupts once") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegLvtTimer, 0x40);
    wr(c.bsp, A::kRegTimerDivide, 0xB); // divide by 1
    wr(c.bsp, A::kRegTimerInitial, 1000);
    CHECK(rd(c.bsp, A::kRegTimerCurrent) == 1000);
    c.clock.advance(400);
    CHECK(rd(c.bsp, A::kRegTimerCurrent) == 600);
    c.clock.advance(599);
    CHECK(rd(c.bsp, A::kRegTimerCurrent) == 1);
    CHECK_FALSE(Cpus::irr(c.bsp, 0x40));
    c.clock.advance(1);
    CHECK(Cpus::irr(c.bsp, 0x40));
    CHECK(rd(c.bsp, A::kRegTimerCurrent) == 0);
    CHECK(c.bsp.acknowledge_interrupt() == 0x40);
    wr(c.bsp, A::kRegEoi, 0);
    c.clock.advance(10'000);
    CHECK_FALSE(Cpus::irr(c.bsp, 0x40));
    CHECK(rd(c.bsp, A::kRegTimerInitial) == 1000);
}

TEST_CASE("timer divide configuration: /2 .. /128 and /1") {
    const std::pair<uint32_t, unsigned> dividers[] = {{0x0, 2},  {0x1, 4},  {0x2, 8},   {0x3, 16},
                                                      {0x8, 32}, {0x9, 64}, {0xA, 128}, {0xB, 1}};
    for (auto [dcr, div] : dividers) {
        CAPTURE(dcr);
        Cpus c;
        Cpus::enable(c.bsp);
        wr(c.bsp, A::kRegLvtTimer, 0x40);
        wr(c.bsp, A::kRegTimerDivide, dcr);
        wr(c.bsp, A::kRegTimerInitial, 100);
        c.clock.advance(50 * div);
        CHECK(rd(c.bsp, A::kRegTimerCurrent) == 50);
        c.clock.advance(50 * div - 1);
        CHECK_FALSE(Cpus::irr(c.bsp, 0x40));
        c.clock.advance(1);
        CHECK(Cpus::irr(c.bsp, 0x40));
    }
}

TEST_CASE("changing the divider mid-count keeps the count and changes the rate") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegLvtTimer, 0x40);
    wr(c.bsp, A::kRegTimerDivide, 0xB);
    wr(c.bsp, A::kRegTimerInitial, 1000);
    c.clock.advance(300);
    wr(c.bsp, A::kRegTimerDivide, 0x0); // /2
    CHECK(rd(c.bsp, A::kRegTimerCurrent) == 700);
    c.clock.advance(1000);
    CHECK(rd(c.bsp, A::kRegTimerCurrent) == 200);
    c.clock.advance(399);
    CHECK_FALSE(Cpus::irr(c.bsp, 0x40));
    c.clock.advance(1);
    CHECK(Cpus::irr(c.bsp, 0x40));
}

TEST_CASE("timer periodic reloads: the count wraps and each period interrupts") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegLvtTimer, 0x40 | (A::kTimerPeriodic << A::kLvtTimerModeShift));
    wr(c.bsp, A::kRegTimerDivide, 0xB);
    wr(c.bsp, A::kRegTimerInitial, 1'000'000); // 1 ms
    c.clock.advance(250'000);
    CHECK(rd(c.bsp, A::kRegTimerCurrent) == 750'000);
    int interrupts = 0;
    for (int ms = 0; ms < 5; ms++) {
        c.clock.advance(1'000'000);
        CHECK(rd(c.bsp, A::kRegTimerCurrent) == 750'000);
        if (c.bsp.acknowledge_interrupt() == 0x40) {
            interrupts++;
            wr(c.bsp, A::kRegEoi, 0);
        }
    }
    CHECK(interrupts == 5);
    // Writing 0 stops it.
    wr(c.bsp, A::kRegTimerInitial, 0);
    c.clock.advance(5'000'000);
    CHECK_FALSE(Cpus::irr(c.bsp, 0x40));
    CHECK(rd(c.bsp, A::kRegTimerCurrent) == 0);
}

TEST_CASE("a tiny periodic count cannot make the timer fire faster than every 200 us") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegLvtTimer, 0x40 | (A::kTimerPeriodic << A::kLvtTimerModeShift));
    wr(c.bsp, A::kRegTimerDivide, 0xB);
    wr(c.bsp, A::kRegTimerInitial, 1); // 1 ns period
    int interrupts = 0;
    for (int i = 0; i < 1000; i++) {
        c.clock.advance(1000);
        if (c.bsp.acknowledge_interrupt() == 0x40) {
            interrupts++;
            wr(c.bsp, A::kRegEoi, 0);
        }
    }
    CHECK(interrupts >= 5);
    CHECK(interrupts <= 6);
}

TEST_CASE("a masked timer keeps counting without interrupting") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegLvtTimer, 0x10040 | (A::kTimerPeriodic << A::kLvtTimerModeShift));
    wr(c.bsp, A::kRegTimerDivide, 0xB);
    wr(c.bsp, A::kRegTimerInitial, 500'000);
    c.clock.advance(1'100'000);
    CHECK_FALSE(Cpus::irr(c.bsp, 0x40));
    CHECK(rd(c.bsp, A::kRegTimerCurrent) == 400'000);
    wr(c.bsp, A::kRegLvtTimer, 0x40 | (A::kTimerPeriodic << A::kLvtTimerModeShift));
    CHECK(rd(c.bsp, A::kRegTimerCurrent) == 400'000);
    c.clock.advance(400'000);
    CHECK(Cpus::irr(c.bsp, 0x40));
}

TEST_CASE("TSC-deadline mode fires when the guest TSC reaches IA32_TSC_DEADLINE") {
    Cpus c;
    Cpus::enable(c.bsp);
    uint64_t v = 0;
    // Outside TSC-deadline mode the MSR reads 0 and ignores writes.
    CHECK(c.bsp.write_msr(A::kMsrTscDeadline, c.bsp.guest_tsc() + 100));
    CHECK(c.bsp.read_msr(A::kMsrTscDeadline, v));
    CHECK(v == 0);

    wr(c.bsp, A::kRegLvtTimer, 0x40 | (A::kTimerTscDeadline << A::kLvtTimerModeShift));
    CHECK(c.bsp.guest_tsc() == 2'500'000);        // 1 ms at 2.5 GHz
    uint64_t deadline = c.bsp.guest_tsc() + 2500; // 1000 ns ahead
    CHECK(c.bsp.write_msr(A::kMsrTscDeadline, deadline));
    CHECK(c.bsp.read_msr(A::kMsrTscDeadline, v));
    CHECK(v == deadline);
    // The count-down registers are inert in this mode.
    wr(c.bsp, A::kRegTimerInitial, 5);
    CHECK(rd(c.bsp, A::kRegTimerInitial) == 0);
    CHECK(rd(c.bsp, A::kRegTimerCurrent) == 0);
    c.clock.advance(999);
    CHECK_FALSE(Cpus::irr(c.bsp, 0x40));
    c.clock.advance(1);
    CHECK(Cpus::irr(c.bsp, 0x40));
    CHECK(c.bsp.read_msr(A::kMsrTscDeadline, v));
    CHECK(v == 0); // disarmed after it fires
    CHECK(c.bsp.acknowledge_interrupt() == 0x40);
    wr(c.bsp, A::kRegEoi, 0);

    // A deadline already passed fires at once; 0 disarms.
    CHECK(c.bsp.write_msr(A::kMsrTscDeadline, 1));
    CHECK(Cpus::irr(c.bsp, 0x40));
    CHECK(c.bsp.acknowledge_interrupt() == 0x40);
    wr(c.bsp, A::kRegEoi, 0);
    c.bsp.write_msr(A::kMsrTscDeadline, c.bsp.guest_tsc() + 2500);
    c.bsp.write_msr(A::kMsrTscDeadline, 0);
    c.clock.advance(10'000);
    CHECK_FALSE(Cpus::irr(c.bsp, 0x40));
}

TEST_CASE("leaving TSC-deadline mode disarms the timer; the TSC offset moves the deadline") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegLvtTimer, 0x40 | (A::kTimerTscDeadline << A::kLvtTimerModeShift));
    c.bsp.write_msr(A::kMsrTscDeadline, c.bsp.guest_tsc() + 2500);
    wr(c.bsp, A::kRegLvtTimer, 0x40); // one-shot
    c.clock.advance(10'000);
    CHECK_FALSE(Cpus::irr(c.bsp, 0x40));

    wr(c.bsp, A::kRegLvtTimer, 0x40 | (A::kTimerTscDeadline << A::kLvtTimerModeShift));
    c.bsp.write_msr(A::kMsrTscDeadline, c.bsp.guest_tsc() + 25'000); // 10 us ahead
    c.bsp.set_tsc_offset(25'000);                                    // now due
    CHECK(Cpus::irr(c.bsp, 0x40));
}

TEST_CASE("ICR fixed IPIs: physical destination and the three shorthands") {
    Cpus c;
    Cpus::enable(c.bsp);
    Cpus::enable(c.ap);
    wr(c.bsp, A::kRegIcrHigh, 0x01000000);
    wr(c.bsp, A::kRegIcrLow, 0x50);
    CHECK(Cpus::irr(c.ap, 0x50));
    CHECK_FALSE(Cpus::irr(c.bsp, 0x50));
    CHECK((rd(c.bsp, A::kRegIcrLow) & (1u << 12)) == 0); // delivery status: idle
    wr(c.bsp, A::kRegIcrLow, 0x00040051);                // self
    CHECK(Cpus::irr(c.bsp, 0x51));
    CHECK_FALSE(Cpus::irr(c.ap, 0x51));
    wr(c.ap, A::kRegIcrLow, 0x00080052); // all including self
    CHECK(Cpus::irr(c.bsp, 0x52));
    CHECK(Cpus::irr(c.ap, 0x52));
    wr(c.ap, A::kRegIcrLow, 0x000C0053); // all excluding self
    CHECK(Cpus::irr(c.bsp, 0x53));
    CHECK_FALSE(Cpus::irr(c.ap, 0x53));
    wr(c.bsp, A::kRegIcrHigh, 0x09000000); // no such APIC
    wr(c.bsp, A::kRegIcrLow, 0x54);
    CHECK_FALSE(Cpus::irr(c.bsp, 0x54));
    CHECK_FALSE(Cpus::irr(c.ap, 0x54));
    wr(c.bsp, A::kRegIcrHigh, 0xFF000000); // physical broadcast
    wr(c.bsp, A::kRegIcrLow, 0x55);
    CHECK(Cpus::irr(c.bsp, 0x55));
    CHECK(Cpus::irr(c.ap, 0x55));
    CHECK_FALSE(Cpus::tmr(c.ap, 0x55)); // IPIs are edge
}

TEST_CASE("ICR logical destinations: flat and cluster models") {
    Cpus c;
    Cpus::enable(c.bsp);
    Cpus::enable(c.ap);
    wr(c.bsp, A::kRegLdr, 0x01000000);
    wr(c.ap, A::kRegLdr, 0x02000000);
    auto send = [&](uint8_t dest, uint8_t vector) {
        wr(c.bsp, A::kRegIcrHigh, uint32_t(dest) << 24);
        wr(c.bsp, A::kRegIcrLow, 0x800u | vector);
    };
    send(0x02, 0x60);
    CHECK(Cpus::irr(c.ap, 0x60));
    CHECK_FALSE(Cpus::irr(c.bsp, 0x60));
    send(0x03, 0x61);
    CHECK(Cpus::irr(c.ap, 0x61));
    CHECK(Cpus::irr(c.bsp, 0x61));
    send(0x04, 0x62);
    CHECK_FALSE(Cpus::irr(c.ap, 0x62));
    CHECK_FALSE(Cpus::irr(c.bsp, 0x62));

    // Cluster model: LDR[31:28] cluster, LDR[27:24] members.
    wr(c.bsp, A::kRegDfr, 0x0FFFFFFF);
    wr(c.ap, A::kRegDfr, 0x0FFFFFFF);
    wr(c.bsp, A::kRegLdr, 0x11000000);
    wr(c.ap, A::kRegLdr, 0x12000000);
    send(0x12, 0x70);
    CHECK(Cpus::irr(c.ap, 0x70));
    CHECK_FALSE(Cpus::irr(c.bsp, 0x70));
    send(0x13, 0x71);
    CHECK(Cpus::irr(c.ap, 0x71));
    CHECK(Cpus::irr(c.bsp, 0x71));
    send(0x23, 0x72); // another cluster
    CHECK_FALSE(Cpus::irr(c.ap, 0x72));
    CHECK_FALSE(Cpus::irr(c.bsp, 0x72));
    send(0xFF, 0x73); // broadcast
    CHECK(Cpus::irr(c.ap, 0x73));
    CHECK(Cpus::irr(c.bsp, 0x73));
}

TEST_CASE("INIT, then SIPI: the AP leaves wait-for-SIPI with the SIPI vector") {
    Cpus c;
    Cpus::enable(c.ap);
    wr(c.ap, A::kRegTpr, 0x30);
    wr(c.ap, A::kRegId, 0x05000000);
    // SeaBIOS: INIT to all excluding self ...
    wr(c.bsp, A::kRegIcrLow, 0x000C4500);
    CHECK(c.ap.pending.load() == CpuInterrupts::kInit);
    CHECK(c.bsp.pending.load() == 0);
    CHECK(c.kicks[1] == 1);
    CHECK(c.ap.acknowledge_init());
    CHECK_FALSE(c.ap.acknowledge_init());
    CHECK(c.ap.waiting_for_sipi());
    CHECK(rd(c.ap, A::kRegTpr) == 0); // INIT reset the registers ...
    CHECK(rd(c.ap, A::kRegSvr) == 0xFF);
    CHECK(c.ap.apic_id() == 5); // ... but not the ID
    // ... then SIPI with vector 0x9F (start at 0x9F000).
    wr(c.bsp, A::kRegIcrLow, 0x000C469F);
    CHECK(c.ap.pending.load() == CpuInterrupts::kSipi);
    CHECK(c.ap.acknowledge_sipi() == 0x9F);
    CHECK_FALSE(c.ap.waiting_for_sipi());
    CHECK(c.ap.pending.load() == 0);
    // A second SIPI (Linux sends two) is ignored once the AP runs.
    wr(c.bsp, A::kRegIcrLow, 0x000C469F);
    CHECK(c.ap.pending.load() == 0);
    CHECK(c.ap.acknowledge_sipi() == -1);
}

TEST_CASE("INIT level de-assert does nothing; SIPI before INIT is ignored") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegIcrHigh, 0x01000000);
    wr(c.bsp, A::kRegIcrLow, 0x00008500); // INIT, trigger level, level de-assert
    CHECK(c.ap.pending.load() == 0);
    c.start_ap();
    wr(c.bsp, A::kRegIcrLow, 0x00000620); // SIPI to a running AP
    CHECK(c.ap.pending.load() == 0);
    // A SIPI that arrives while INIT is still pending is kept for after the INIT.
    wr(c.bsp, A::kRegIcrLow, 0x00004500);
    wr(c.bsp, A::kRegIcrLow, 0x00000621);
    CHECK(c.ap.pending.load() == (CpuInterrupts::kInit | CpuInterrupts::kSipi));
    CHECK(c.ap.acknowledge_init());
    CHECK(c.ap.acknowledge_sipi() == 0x21);
}

TEST_CASE("INIT to the BSP resets it without waiting for SIPI") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegIcrLow, 0x00044500); // INIT to self
    CHECK(c.bsp.acknowledge_init());
    CHECK_FALSE(c.bsp.waiting_for_sipi());
    CHECK(rd(c.bsp, A::kRegLvtLint0) == 0x700);
}

TEST_CASE("an AP waiting for SIPI holds interrupts and NMIs back") {
    Cpus c;
    Cpus::enable(c.ap);
    wr(c.bsp, A::kRegIcrHigh, 0x01000000);
    wr(c.bsp, A::kRegIcrLow, 0x0400); // NMI
    c.fixed(0x40, 1);
    CHECK(c.ap.pending.load() == 0);
    CHECK_FALSE(c.ap.acknowledge_nmi());
}

TEST_CASE("NMI IPI and LINT1 NMI") {
    Cpus c;
    c.start_ap();
    wr(c.bsp, A::kRegIcrHigh, 0x01000000);
    wr(c.bsp, A::kRegIcrLow, 0x0400);
    CHECK(c.ap.pending.load() == CpuInterrupts::kNmi);
    CHECK(c.ap.acknowledge_nmi());
    CHECK_FALSE(c.ap.acknowledge_nmi());
    CHECK(c.ap.pending.load() == 0);

    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegLvtLint1, 0x400); // what SeaBIOS and Linux program on the BSP
    c.bus.set_irq(ApicBus::kLint1, true);
    CHECK(c.bsp.pending.load() == CpuInterrupts::kNmi);
    CHECK(c.ap.pending.load() == 0); // the AP's LINT1 is masked
    CHECK(c.bsp.acknowledge_nmi());
    c.bus.set_irq(ApicBus::kLint1, true); // no new edge
    CHECK_FALSE(c.bsp.acknowledge_nmi());
}

TEST_CASE("lowest priority goes to the lowest arbitration priority, ties to the first") {
    Cpus c;
    c.start_ap();
    Cpus::enable(c.bsp);
    Cpus::enable(c.ap);
    wr(c.bsp, A::kRegLdr, 0x01000000);
    wr(c.ap, A::kRegLdr, 0x02000000);
    ApicMessage m;
    m.mode = ApicDeliveryMode::LowestPriority;
    m.logical = true;
    m.dest = 0x03;
    m.vector = 0x66;
    wr(c.bsp, A::kRegTpr, 0x20);
    wr(c.ap, A::kRegTpr, 0x10);
    CHECK(c.bus.deliver(m) == 1);
    CHECK(Cpus::irr(c.ap, 0x66));
    CHECK_FALSE(Cpus::irr(c.bsp, 0x66));
    wr(c.ap, A::kRegTpr, 0x20);
    m.vector = 0x67;
    CHECK(c.bus.deliver(m) == 1);
    CHECK(Cpus::irr(c.bsp, 0x67)); // 0x66 pending on the AP raised its bid
    // A software-disabled APIC does not take part.
    wr(c.bsp, A::kRegSvr, 0xFF);
    m.vector = 0x68;
    CHECK(c.bus.deliver(m) == 1);
    CHECK(Cpus::irr(c.ap, 0x68));
}

TEST_CASE("kick is called when a pending bit appears, not when it stays") {
    Cpus c;
    Cpus::enable(c.bsp);
    c.fixed(0x40);
    CHECK(c.kicks[0] == 1);
    c.fixed(0x41);
    CHECK(c.kicks[0] == 1); // kIntr was already set
    CHECK(c.bsp.acknowledge_interrupt() == 0x41);
    CHECK(c.bsp.pending.load() == 0); // 0x40 is the class in service
    wr(c.bsp, A::kRegEoi, 0);
    CHECK(c.kicks[0] == 2); // now 0x40 can be taken
    CHECK(c.bsp.acknowledge_interrupt() == 0x40);
    wr(c.bsp, A::kRegEoi, 0);
    CHECK(c.bsp.pending.load() == 0);
    ApicMessage nmi;
    nmi.mode = ApicDeliveryMode::Nmi;
    c.bus.deliver(nmi);
    CHECK(c.kicks[0] == 3);
    c.bus.deliver(nmi);
    CHECK(c.kicks[0] == 3);
}

TEST_CASE("IA32_APIC_BASE: relocation, global disable, #GP on reserved and x2APIC bits") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegTpr, 0x40);
    CHECK(c.bsp.write_msr(A::kMsrApicBase, 0xFED00800)); // the BSP bit is not writable
    uint64_t v = 0;
    CHECK(c.bsp.read_msr(A::kMsrApicBase, v));
    CHECK(v == 0xFED00900);
    CHECK(c.bsp.mmio_base().load() == 0xFED00000);
    CHECK(rd(c.bsp, A::kRegTpr) == 0x40); // relocation keeps the state

    CHECK(c.bsp.write_msr(A::kMsrApicBase, 0xFED00000)); // global disable
    CHECK(c.bsp.mmio_base().load() == 0);
    CHECK(c.fixed(0x40) == 0);
    CHECK(c.bsp.write_msr(A::kMsrApicBase, 0xFEE00800));
    CHECK(c.bsp.mmio_base().load() == 0xFEE00000);
    CHECK(rd(c.bsp, A::kRegTpr) == 0); // back in the power-on state
    CHECK(rd(c.bsp, A::kRegSvr) == 0xFF);

    CHECK_FALSE(c.bsp.write_msr(A::kMsrApicBase, 0xFEE00C00)); // x2APIC
    CHECK_FALSE(c.bsp.write_msr(A::kMsrApicBase, 0xFEE00A00)); // bit 9 reserved
    CHECK_FALSE(c.bsp.write_msr(A::kMsrApicBase, 0xFEE00801ull));
    CHECK_FALSE(c.bsp.write_msr(A::kMsrApicBase, (1ull << 63) | 0xFEE00800));
    CHECK(c.bsp.read_msr(A::kMsrApicBase, v));
    CHECK(v == 0xFEE00900);
    CHECK_FALSE(c.bsp.read_msr(0x802, v)); // x2APIC ID: not implemented
    CHECK_FALSE(c.bsp.write_msr(0x80B, 0));
    CHECK_FALSE(c.bsp.read_msr(0x10, v));
}

TEST_CASE("hostile MMIO: reserved slot bytes, odd sizes and offsets past the page") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegTpr, 0x20);
    CHECK(rd(c.bsp, A::kRegTpr + 4) == 0);
    wr(c.bsp, A::kRegTpr + 4, 0x90);
    CHECK(rd(c.bsp, A::kRegTpr) == 0x20);
    CHECK(rd(c.bsp, 0x1000) == 0);
    wr(c.bsp, 0xFFFFFFF0, 1);
    uint8_t two[2] = {0xFF, 0xFF};
    c.bsp.io_read(A::kRegTpr, two);
    CHECK(two[0] == 0);
    c.bsp.io_write(A::kRegTpr, two);
    CHECK(rd(c.bsp, A::kRegTpr) == 0x20);
    uint8_t eight[8];
    c.bsp.io_read(A::kRegVersion, eight);
    CHECK(le_load(eight) == 0);
    // Every register offset of the page, read and written with all-ones, must not break it.
    for (uint32_t off = 0; off < 0x1000; off += 0x10) {
        if (off == A::kRegIcrLow || off == A::kRegSvr) continue;
        rd(c.bsp, off);
        wr(c.bsp, off, 0xFFFFFFFF);
    }
    CHECK(rd(c.bsp, A::kRegVersion) == 0x00050014);
}

TEST_CASE("save, change, load restores registers, pending events and a running timer") {
    Cpus c;
    c.start_ap();
    Cpus::enable(c.ap);
    wr(c.ap, A::kRegTpr, 0x20);
    wr(c.ap, A::kRegLdr, 0x02000000);
    wr(c.ap, A::kRegLvtLint1, 0x400);
    wr(c.ap, A::kRegLvtTimer, 0x40);
    wr(c.ap, A::kRegTimerDivide, 0x3);
    c.fixed(0x55, 1, true);
    CHECK(c.ap.acknowledge_interrupt() == 0x55);
    c.fixed(0x31, 1);
    wr(c.ap, A::kRegTimerInitial, 1000); // 16000 ns at /16
    c.clock.advance(6000);
    wr(c.bsp, A::kRegIcrHigh, 0x01000000);
    wr(c.bsp, A::kRegIcrLow, 0x0400);
    StateWriter before;
    c.ap.save(before);

    c.ap.reset(ResetKind::Hard);
    c.ap.write_msr(A::kMsrApicBase, 0xFEF00800);
    StateReader r(before.data());
    c.ap.load(r);
    CHECK(r.at_end());
    StateWriter after;
    c.ap.save(after);
    CHECK(after.data() == before.data());
    CHECK(rd(c.ap, A::kRegTpr) == 0x20);
    CHECK(Cpus::isr(c.ap, 0x55));
    CHECK(Cpus::tmr(c.ap, 0x55));
    CHECK(Cpus::irr(c.ap, 0x31));
    CHECK(c.ap.mmio_base().load() == 0xFEE00000);
    CHECK(c.ap.pending.load() == CpuInterrupts::kNmi);
    CHECK(rd(c.ap, A::kRegTimerCurrent) == 625);
    c.clock.advance(9999);
    CHECK_FALSE(Cpus::irr(c.ap, 0x40));
    c.clock.advance(1);
    CHECK(Cpus::irr(c.ap, 0x40));
}

TEST_CASE("load rejects inconsistent state and leaves the APIC alone") {
    Cpus c;
    Cpus::enable(c.bsp);
    StateWriter good;
    c.bsp.save(good);
    // "lapic" header (4 + 5 + 4); then 4-byte length + value per field.
    size_t id = 13 + 4, base = id + 1 + 4, svr = base + 8 + 4 * 4 + 4 * 3;
    std::vector<uint8_t> bytes = good.data();
    SUBCASE("BSP bit of another CPU") {
        bytes[base + 1] &= ~1;
    }
    SUBCASE("x2APIC enabled") {
        bytes[base + 1] |= 4;
    }
    SUBCASE("SVR reserved bits") {
        bytes[svr + 1] |= 0x10;
    }
    SUBCASE("IRR bit for vector 3") {
        size_t irr = svr + 4 + (4 + 32) * 2 + 4;
        bytes[irr] = 0x08;
    }
    SUBCASE("flag not 0/1") {
        bytes[bytes.size() - 1 - 4 - 1] = 7;
    }
    SUBCASE("truncated") {
        bytes.resize(bytes.size() - 2);
    }
    wr(c.bsp, A::kRegTpr, 0x77);
    StateReader r(bytes);
    CHECK_THROWS_AS(c.bsp.load(r), StateError);
    CHECK(rd(c.bsp, A::kRegTpr) == 0x77);
    CHECK(rd(c.bsp, A::kRegSvr) == 0x1FF);
}

TEST_CASE("a zero TSC frequency is a configuration error") {
    FakeClock clock;
    ApicBus bus;
    CHECK_THROWS_AS(LocalApic(bus, clock, LocalApic::Config{}), std::invalid_argument);
}

TEST_CASE("hostile timer values: a far TSC deadline and a wild saved elapsed time stay sane") {
    Cpus c;
    Cpus::enable(c.bsp);
    wr(c.bsp, A::kRegLvtTimer, 0x40 | (A::kTimerTscDeadline << A::kLvtTimerModeShift));
    CHECK(c.bsp.write_msr(A::kMsrTscDeadline, ~0ull));
    c.clock.advance(1'000'000'000'000ull); // 1000 s
    CHECK_FALSE(Cpus::irr(c.bsp, 0x40));

    wr(c.bsp, A::kRegLvtTimer, 0x40 | (A::kTimerPeriodic << A::kLvtTimerModeShift));
    wr(c.bsp, A::kRegTimerDivide, 0xB);
    wr(c.bsp, A::kRegTimerInitial, 1'000'000);
    StateWriter w;
    c.bsp.save(w);
    std::vector<uint8_t> bytes = w.data();
    size_t elapsed = bytes.size() - 37; // see save(): elapsed, deadline, flags, SIPI vector
    for (size_t i = 0; i < 8; i++) bytes[elapsed + i] = 0xFF;
    StateReader r(bytes);
    c.bsp.load(r);
    uint32_t count = rd(c.bsp, A::kRegTimerCurrent);
    CHECK(count == 1'000'000 - (~0ull % 1'000'000)); // position within the period kept
    c.clock.advance(1'000'000);
    CHECK(Cpus::irr(c.bsp, 0x40));
}
