// HPET: register map as QEMU 7.2 presents it, 100 MHz counter, comparators, legacy replacement.
#include <doctest/doctest.h>

#include "base/clock.hpp"
#include "devmodel/acpi/hpet.hpp"
#include "tests/unit/pci/pci_test_support.hpp"
#include "vmexit/bus.hpp"

using namespace hvm;
using namespace hvm::test;

namespace {

constexpr uint64_t kB = Hpet::kBase;
constexpr uint64_t kT0 = 0x100, kT1 = 0x120, kT2 = 0x140;

struct HpetRig {
    FakeClock clock;
    Lines gsi;
    std::vector<bool> pit_enabled;
    Hpet hpet;
    Bus mmio{"mmio"};
    explicit HpetRig(uint64_t start = 0)
        : clock(start), hpet(clock, gsi, [this](bool on) { pit_enabled.push_back(on); }) {
        mmio.add(kB, Hpet::kLength, &hpet, AccessSizes{4, 8}, "hpet");
    }
    uint64_t rd(uint64_t off, unsigned size = 8) {
        uint8_t b[8] = {};
        mmio.read(kB + off, std::span(b, size));
        return le_load(std::span<const uint8_t>(b, size));
    }
    void wr(uint64_t off, uint64_t v, unsigned size = 8) {
        uint8_t b[8];
        le_store(std::span(b, size), v);
        mmio.write(kB + off, std::span<const uint8_t>(b, size));
    }
};

} // namespace

TEST_CASE("HPET registers after reset match QEMU 7.2's pc") {
    HpetRig r;
    CHECK(r.rd(0x000, 4) == 0x8086A201u);
    CHECK(r.rd(0x004, 4) == 0x00989680u); // 10,000,000 fs
    CHECK(r.rd(0x000) == 0x009896808086A201ull);
    CHECK(r.rd(0x010) == 0u);
    CHECK(r.rd(0x020) == 0u);
    CHECK(r.rd(0x0F0) == 0u);
    for (uint64_t t : {kT0, kT1, kT2}) {
        CAPTURE(t);
        CHECK(r.rd(t, 4) == 0x30u);    // periodic- and 64-bit-capable
        CHECK(r.rd(t + 4, 4) == 0x4u); // route capability: IOAPIC pin 2
        CHECK(r.rd(t + 8) == ~0ull);   // comparator
        CHECK(r.rd(t + 0x10) == 0u);   // no FSB
    }
    CHECK(r.rd(0x160) == 0u); // no timer 3
    r.wr(0x000, 0);           // capabilities are read-only
    CHECK(r.rd(0x000, 4) == 0x8086A201u);
    r.wr(kT0 + 4, 0xFFFFFFFF, 4);
    CHECK(r.rd(kT0 + 4, 4) == 0x4u);
    r.wr(0x010, 0xFFFFFFFC, 4); // only ENABLE and LEG_RT exist
    CHECK(r.rd(0x010) == 0u);
}

TEST_CASE("main counter: 100 MHz while enabled, frozen while halted, writable when halted") {
    HpetRig r(12345);
    r.clock.advance(1000000);
    CHECK(r.rd(0x0F0) == 0u);
    r.wr(0x010, Hpet::kCfgEnable);
    r.clock.advance(1000000); // 1 ms
    CHECK(r.rd(0x0F0) == 100000u);
    CHECK(r.rd(0x0F0, 4) == 100000u);
    r.wr(0x010, 0);
    r.clock.advance(1000000);
    CHECK(r.rd(0x0F0) == 100000u);
    r.wr(0x0F0, 0x00000001FFFFFFF0ull);
    CHECK(r.rd(0x0F4, 4) == 1u);
    r.wr(0x010, Hpet::kCfgEnable);
    r.clock.advance(200); // 20 ticks: carries into the high dword
    CHECK(r.rd(0x0F0) == 0x0000000200000004ull);
    r.wr(0x0F0, 0, 4); // a running counter ignores writes
    CHECK(r.rd(0x0F0) == 0x0000000200000004ull);
}

TEST_CASE("one-shot level-triggered comparator on IOAPIC pin 2; status write-1-to-clear") {
    HpetRig r;
    r.wr(kT2, Hpet::kTnLevel | Hpet::kTnIntEnable | (2u << Hpet::kTnRouteShift), 4);
    CHECK(r.rd(kT2, 4) == (0x30u | Hpet::kTnLevel | Hpet::kTnIntEnable | (2u << 9)));
    r.wr(kT2 + 8, 1000);
    r.wr(0x010, Hpet::kCfgEnable);
    r.clock.advance_to(9999);
    CHECK_FALSE(r.gsi.level(2));
    r.clock.advance_to(10000);
    CHECK(r.gsi.level(2));
    CHECK(r.rd(0x020) == 0x4u);
    r.clock.advance_to(1000000);
    CHECK(r.gsi.rises[2] == 1); // one-shot
    r.wr(0x020, 0x4);
    CHECK_FALSE(r.gsi.level(2));
    CHECK(r.rd(0x020) == 0u);
}

TEST_CASE("one-shot edge-triggered comparator pulses and leaves no status") {
    HpetRig r;
    r.wr(kT2, Hpet::kTnIntEnable | (2u << Hpet::kTnRouteShift), 4);
    r.wr(kT2 + 8, 500);
    r.wr(0x010, Hpet::kCfgEnable);
    r.clock.advance_to(4999);
    CHECK(r.gsi.rises[2] == 0);
    r.clock.advance_to(5000);
    CHECK(r.gsi.rises[2] == 1);
    CHECK_FALSE(r.gsi.level(2));
    CHECK(r.rd(0x020) == 0u);
    // Disabled interrupts: the comparator matches silently.
    r.wr(kT2, (2u << Hpet::kTnRouteShift), 4);
    r.wr(kT2 + 8, 1000);
    r.clock.advance_to(20000);
    CHECK(r.gsi.rises[2] == 1);
}

TEST_CASE("a route outside the capability mask is not accepted") {
    HpetRig r;
    r.wr(kT1, Hpet::kTnIntEnable | (5u << Hpet::kTnRouteShift), 4);
    CHECK(((r.rd(kT1, 4) >> 9) & 0x1F) == 0u);
    r.wr(kT1, Hpet::kTnIntEnable | (2u << Hpet::kTnRouteShift), 4);
    CHECK(((r.rd(kT1, 4) >> 9) & 0x1F) == 2u);
    r.wr(kT1, Hpet::kTnIntEnable | (17u << Hpet::kTnRouteShift), 4);
    CHECK(((r.rd(kT1, 4) >> 9) & 0x1F) == 2u);
}

TEST_CASE("legacy replacement: periodic timer 0 on IRQ 0, the PIT and RTC cut off") {
    HpetRig r;
    r.hpet.legacy_inputs().set_irq(Hpet::kRtcInput, true); // passes through outside legacy mode
    CHECK(r.gsi.level(8));
    r.wr(0x010, Hpet::kCfgLegacy);
    CHECK(r.pit_enabled == std::vector<bool>{false});
    CHECK_FALSE(r.gsi.level(0));
    CHECK_FALSE(r.gsi.level(8));
    // Linux hpet_set_periodic, counter halted: VAL_SET, write the start, write the period.
    r.wr(kT0, Hpet::kTnIntEnable | Hpet::kTnPeriodic | Hpet::kTnSetVal | Hpet::kTn32Bit, 4);
    r.wr(kT0 + 8, 100000, 4);
    r.wr(kT0 + 8, 100000, 4);
    CHECK((r.rd(kT0, 4) & Hpet::kTnSetVal) == 0u); // VAL_SET lasts one write
    r.wr(0x010, Hpet::kCfgEnable | Hpet::kCfgLegacy);
    r.clock.advance(10000000); // 10 ms
    CHECK(r.gsi.rises[0] == 10);
    CHECK(r.rd(kT0 + 8) == 1100000u); // comparator advanced by the period each time
    // The PIT and RTC outputs do not reach their IRQs meanwhile.
    size_t calls = r.gsi.calls.size();
    r.hpet.legacy_inputs().set_irq(Hpet::kPitInput, true);
    r.hpet.legacy_inputs().set_irq(Hpet::kRtcInput, false);
    r.hpet.legacy_inputs().set_irq(Hpet::kRtcInput, true);
    CHECK(r.gsi.calls.size() == calls);
    // Leaving legacy mode gives the lines back with the levels the PIT and RTC hold now.
    r.wr(0x010, Hpet::kCfgEnable);
    CHECK(r.pit_enabled == std::vector<bool>{false, true});
    CHECK(r.gsi.level(0));
    CHECK(r.gsi.level(8));
    r.hpet.legacy_inputs().set_irq(Hpet::kPitInput, false);
    CHECK_FALSE(r.gsi.level(0));
}

TEST_CASE("legacy replacement routes timer 1 to IRQ 8 (level) ") {
    HpetRig r;
    r.wr(0x010, Hpet::kCfgEnable | Hpet::kCfgLegacy);
    r.wr(kT1, Hpet::kTnIntEnable | Hpet::kTnLevel, 4);
    r.wr(kT1 + 8, 300);
    r.clock.advance(3000);
    CHECK(r.gsi.level(8));
    CHECK(r.rd(0x020) == 0x2u);
    // Leaving legacy mode moves the held level to the timer's own route (0 here).
    r.wr(kT1, Hpet::kTnIntEnable | Hpet::kTnLevel | (2u << Hpet::kTnRouteShift), 4);
    r.wr(0x010, Hpet::kCfgEnable);
    CHECK(r.gsi.level(2));
    CHECK_FALSE(r.gsi.level(8));
    r.wr(0x020, 0x2);
    CHECK_FALSE(r.gsi.level(2));
}

TEST_CASE("32-bit mode: upper comparator half ignored, one-shot also fires on the wrap") {
    HpetRig r;
    r.wr(kT2, Hpet::kTn32Bit | Hpet::kTnIntEnable | (2u << Hpet::kTnRouteShift), 4);
    r.wr(kT2 + 8, 0x0000000100000100ull);
    CHECK(r.rd(kT2 + 8) == 0x100u);
    r.wr(0x0F0, 0xFFFFFF00ull);
    r.wr(0x010, Hpet::kCfgEnable);
    r.clock.advance_to(2549);
    CHECK(r.gsi.rises[2] == 0);
    r.clock.advance_to(2550); // counter low half reaches 0xFFFFFFFF: the wrap interrupt
    CHECK(r.gsi.rises[2] == 1);
    r.clock.advance_to(5119);
    CHECK(r.gsi.rises[2] == 1);
    r.clock.advance_to(5120); // 0x1_00000100: the comparator match
    CHECK(r.gsi.rises[2] == 2);
    r.clock.advance_to(100000);
    CHECK(r.gsi.rises[2] == 2);
}

TEST_CASE("periodic 32-bit timer with a tiny period does not spin the host timer") {
    HpetRig r;
    r.wr(kT2,
         Hpet::kTn32Bit | Hpet::kTnPeriodic | Hpet::kTnIntEnable | Hpet::kTnSetVal |
             (2u << Hpet::kTnRouteShift),
         4);
    r.wr(kT2 + 8, 1, 4);
    r.wr(kT2 + 8, 1, 4); // a 10 ns period
    r.wr(0x010, Hpet::kCfgEnable);
    r.clock.advance(1000000); // 1 ms: at most one host callback per kMinRearmNs
    CHECK(r.gsi.rises[2] >= 99);
    CHECK(r.gsi.rises[2] <= 101);
    // The comparator keeps up with the counter, one host re-arm interval behind at most.
    CHECK(r.rd(0x0F0) - r.rd(kT2 + 8) <= Hpet::kMinRearmNs / Hpet::kNsPerTick);
}

TEST_CASE("halting the HPET deasserts level interrupts and stops the timers") {
    HpetRig r;
    r.wr(kT2, Hpet::kTnLevel | Hpet::kTnIntEnable | Hpet::kTnPeriodic | Hpet::kTnSetVal | (2u << 9),
         4);
    r.wr(kT2 + 8, 1000);
    r.wr(0x010, Hpet::kCfgEnable);
    r.clock.advance(10000);
    CHECK(r.gsi.level(2));
    r.wr(0x010, 0);
    CHECK_FALSE(r.gsi.level(2));
    CHECK(r.rd(0x020) == 0u);
    int rises = r.gsi.rises[2];
    r.clock.advance(1000000);
    CHECK(r.gsi.rises[2] == rises);
}

TEST_CASE("HPET reset: registers back, PIT enabled again") {
    HpetRig r;
    r.wr(0x010, Hpet::kCfgEnable | Hpet::kCfgLegacy);
    r.wr(kT0, Hpet::kTnIntEnable | Hpet::kTnPeriodic, 4);
    r.wr(kT0 + 8, 1000);
    r.clock.advance(5000);
    r.hpet.reset(ResetKind::Hard);
    CHECK(r.pit_enabled.back());
    CHECK(r.rd(0x010) == 0u);
    CHECK(r.rd(0x0F0) == 0u);
    CHECK(r.rd(kT0) == 0x0000000400000030ull);
    CHECK(r.rd(kT0 + 8) == ~0ull);
    int rises = r.gsi.rises[0];
    r.clock.advance(100000);
    CHECK(r.gsi.rises[0] == rises);
}

TEST_CASE("HPET save/load: counter and a running periodic timer continue") {
    HpetRig a(777);
    a.wr(kT0, Hpet::kTnIntEnable | Hpet::kTnPeriodic | Hpet::kTnSetVal | Hpet::kTn32Bit, 4);
    a.wr(kT0 + 8, 100000, 4);
    a.wr(kT0 + 8, 100000, 4);
    a.wr(0x010, Hpet::kCfgEnable | Hpet::kCfgLegacy);
    a.clock.advance(2500000); // 2.5 ms: 2 ticks so far, next at 3 ms
    CHECK(a.gsi.rises[0] == 2);
    StateWriter w;
    a.hpet.save(w);

    HpetRig b(5000000000ull); // another host clock
    StateReader in(w.data());
    b.hpet.load(in);
    CHECK(in.at_end());
    CHECK(b.rd(0x0F0) == 250000u);
    CHECK(b.hpet.legacy_mode());
    CHECK(b.pit_enabled.back() == false);
    b.clock.advance(499999);
    CHECK(b.gsi.rises[0] == 0);
    b.clock.advance(1);
    CHECK(b.gsi.rises[0] == 1);
    b.clock.advance(1000000);
    CHECK(b.gsi.rises[0] == 2);

    std::vector<uint8_t> bad = w.data();
    bad[4 + 4 + 4 + 4] = 0x80; // GEN_CONF with an undefined bit
    StateReader rb(bad);
    CHECK_THROWS_AS(b.hpet.load(rb), StateError);
}
