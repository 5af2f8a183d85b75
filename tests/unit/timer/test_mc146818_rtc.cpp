#include <doctest/doctest.h>

#include <array>
#include <random>
#include <vector>

#include "base/clock.hpp"
#include "devmodel/timer/civil_time.hpp"
#include "devmodel/timer/mc146818_rtc.hpp"
#include "unit/timer/recording_irq_sink.hpp"
#include "vmexit/bus.hpp"

using namespace hvm;
using hvm::test::IrqEvent;
using hvm::test::RecordingIrqSink;
using R = Mc146818Rtc;

namespace {

constexpr uint64_t kMs = 1000000, kSec = 1000000000;
constexpr int64_t k2023_11_14_22_13_20 = 1700000000; // a Tuesday
constexpr int64_t k1999_12_31_23_59_59 = 946684799;  // a Friday
constexpr unsigned kIrq8 = 8;

struct RtcRig {
    FakeClock clock;
    RecordingIrqSink sink{clock};
    Mc146818Rtc rtc;
    Bus io{"pio"};

    explicit RtcRig(int64_t start = k2023_11_14_22_13_20, int64_t offset = 0,
                    RtcLostTickPolicy policy = RtcLostTickPolicy::Discard)
        : rtc(clock, IrqPin(&sink, kIrq8), start, offset, policy) {
        io.add(R::kBasePort, R::kPortCount, &rtc, AccessSizes{1, 1}, "rtc");
    }
    void out(uint16_t port, uint8_t v) { io.write(port, std::span<const uint8_t>(&v, 1)); }
    uint8_t in(uint16_t port) {
        uint8_t v = 0;
        io.read(port, std::span<uint8_t>(&v, 1));
        return v;
    }
    uint8_t read(uint8_t index) {
        out(0x70, index);
        return in(0x71);
    }
    void write(uint8_t index, uint8_t value) {
        out(0x70, index);
        out(0x71, value);
    }
    std::array<uint8_t, 8> time() {
        return {read(R::kSeconds),    read(R::kMinutes), read(R::kHours), read(R::kDayOfWeek),
                read(R::kDayOfMonth), read(R::kMonth),   read(R::kYear),  read(R::kCentury)};
    }
    // Runs the clock in steps, acknowledging (reading C) whenever IRQ 8 is high, as an ISR does.
    size_t run_acking(uint64_t duration, uint64_t step, uint8_t expect_flags = 0) {
        size_t acks = 0;
        uint64_t end = clock.now_ns() + duration;
        while (clock.now_ns() < end) {
            clock.advance(std::min(step, end - clock.now_ns()));
            if (sink.level(kIrq8)) {
                uint8_t c = read(R::kRegC);
                if (expect_flags) CHECK((c & expect_flags) == expect_flags);
                acks++;
            }
        }
        return acks;
    }
    size_t edges() const { return sink.rising_edges(kIrq8).size(); }
};

using T8 = std::array<uint8_t, 8>;

} // namespace

TEST_CASE("civil time conversions") {
    CivilTime t = civil_from_seconds(k2023_11_14_22_13_20);
    CHECK(t.year == 2023);
    CHECK(t.month == 11);
    CHECK(t.day == 14);
    CHECK(t.hour == 22);
    CHECK(t.minute == 13);
    CHECK(t.second == 20);
    CHECK(t.weekday == 2);
    CHECK(seconds_from_civil(2023, 11, 14, 22, 13, 20) == k2023_11_14_22_13_20);
    CHECK(seconds_from_civil(2000, 2, 29, 0, 0, 0) == 951782400);
    CHECK(seconds_from_civil(2000, 3, 0, 0, 0, 0) == 951782400); // day 0 = last of February
    CHECK(seconds_from_civil(2001, 0, 1, 0, 0, 0) == 975628800); // month 0 = December 2000
    CHECK(seconds_from_civil(1999, 12, 31, 24, 0, 0) == 946684800);
    CivilTime before = civil_from_seconds(-1);
    CHECK(before.year == 1969);
    CHECK(before.weekday == 3);
    CHECK(civil_from_seconds(seconds_from_civil(9999, 12, 31, 23, 59, 59)).year == 9999);
}

TEST_CASE("starts from host time plus offset, as QEMU's power-on registers show it") {
    RtcRig r(k2023_11_14_22_13_20, 3600);
    CHECK(r.time() == T8{0x20, 0x13, 0x23, 0x03, 0x14, 0x11, 0x23, 0x20});
    CHECK(r.read(R::kPs2Century) == 0x20);
    CHECK(r.read(R::kRegA) == 0x26);
    CHECK(r.read(R::kRegB) == 0x02);
    CHECK(r.read(R::kRegC) == 0x00);
    CHECK(r.read(R::kRegD) == 0x80);
    CHECK(r.sink.events.empty());
}

TEST_CASE("time advances once per second with calendar, leap year and century rollover") {
    RtcRig r(k1999_12_31_23_59_59);
    CHECK(r.time() == T8{0x59, 0x59, 0x23, 0x06, 0x31, 0x12, 0x99, 0x19});
    r.clock.advance_to(kSec - 1);
    CHECK(r.read(R::kSeconds) == 0x59);
    r.clock.advance_to(kSec);
    CHECK(r.time() == T8{0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20});

    RtcRig leap(951782399); // 2000-02-28 23:59:59
    leap.clock.advance(kSec);
    CHECK(leap.read(R::kDayOfMonth) == 0x29);
    CHECK(leap.read(R::kMonth) == 0x02);
    leap.clock.advance(86400 * kSec);
    CHECK(leap.read(R::kDayOfMonth) == 0x01);
    CHECK(leap.read(R::kMonth) == 0x03);

    RtcRig y2100(4102444799); // 2099-12-31 23:59:59
    y2100.clock.advance(kSec);
    CHECK(y2100.time() == T8{0x00, 0x00, 0x00, 0x06, 0x01, 0x01, 0x00, 0x21});
}

TEST_CASE("binary and 12-hour formats") {
    RtcRig r; // 22:13:20
    r.write(R::kRegB, R::kDm | R::k24Hour);
    CHECK(r.time() == T8{20, 13, 22, 3, 14, 11, 23, 20});
    r.write(R::kRegB, R::kDm); // binary, 12-hour: 10 PM
    CHECK(r.read(R::kHours) == (0x80 | 10));
    r.write(R::kRegB, 0); // BCD, 12-hour
    CHECK(r.read(R::kHours) == 0x90);

    // Midnight is 12 AM, noon 12 PM.
    r.write(R::kRegB, R::kSet);
    r.write(R::kHours, 0x12); // 12 AM
    r.write(R::kRegB, 0);
    r.write(R::kRegB, R::k24Hour);
    CHECK(r.read(R::kHours) == 0x00);
    r.write(R::kRegB, R::kSet);
    r.write(R::kHours, 0x92); // 12 PM in 12-hour mode
    r.write(R::kRegB, 0);
    CHECK(r.read(R::kHours) == 0x92);
    r.write(R::kRegB, R::k24Hour);
    CHECK(r.read(R::kHours) == 0x12);
    // A PM hour written in 12-hour mode; switching to 24-hour while running re-renders (QEMU).
    r.write(R::kRegB, R::kSet);
    r.write(R::kHours, 0x81); // 1 PM
    r.write(R::kRegB, 0);
    CHECK(r.read(R::kHours) == 0x81);
    r.write(R::kRegB, R::k24Hour);
    CHECK(r.read(R::kHours) == 0x13);
}

TEST_CASE("SET freezes the time; the new time runs from the divider's next second") {
    RtcRig r;
    r.write(R::kRegB, R::k24Hour | R::kUie);
    r.clock.advance_to(300 * kMs);
    r.write(R::kRegB, R::kSet | R::k24Hour | R::kUie);
    CHECK((r.read(R::kRegB) & R::kUie) == 0); // SET clears UIE
    r.clock.advance(5 * kSec);
    CHECK(r.read(R::kSeconds) == 0x20);
    CHECK((r.read(R::kRegC) & R::kUf) == 0); // no update cycles while SET
    r.write(R::kSeconds, 0x00);
    r.write(R::kMinutes, 0x00);
    r.write(R::kHours, 0x12);
    r.write(R::kDayOfMonth, 0x01);
    r.write(R::kMonth, 0x01);
    r.write(R::kYear, 0x24);
    CHECK(r.read(R::kSeconds) == 0x00);
    r.write(R::kRegB, R::k24Hour);                                         // at 5.3 s
    CHECK(r.time() == T8{0x00, 0x00, 0x12, 0x02, 0x01, 0x01, 0x24, 0x20}); // Monday
    r.clock.advance_to(6 * kSec - 1);
    CHECK(r.read(R::kSeconds) == 0x00);
    r.clock.advance_to(6 * kSec);
    CHECK(r.read(R::kSeconds) == 0x01);
}

TEST_CASE("divider: only DV=010 runs; reset holds the chain, first update 500 ms after release") {
    RtcRig r;
    r.clock.advance_to(200 * kMs);
    r.write(R::kRegA, 0x70 | 0x06); // divider reset
    r.clock.advance(3 * kSec);
    CHECK(r.read(R::kSeconds) == 0x20);
    CHECK((r.read(R::kRegA) & R::kUip) == 0);
    r.write(R::kRegA, 0x26); // at 3.2 s
    r.clock.advance_to(3700 * kMs - 1);
    CHECK(r.read(R::kSeconds) == 0x20);
    r.clock.advance_to(3700 * kMs);
    CHECK(r.read(R::kSeconds) == 0x21);

    r.write(R::kRegA, 0x06); // DV = 000: stopped (no 4.194304 MHz crystal)
    r.clock.advance(5 * kSec);
    CHECK(r.read(R::kSeconds) == 0x21);
    r.write(R::kRegA, 0x26); // resumes where the chain stopped
    r.clock.advance(kSec);
    CHECK(r.read(R::kSeconds) == 0x22);
}

TEST_CASE("UIP is set during the last 244 us before each update") {
    RtcRig r;
    r.clock.advance_to(999755000);
    CHECK((r.read(R::kRegA) & R::kUip) == 0);
    CHECK(r.read(R::kSeconds) == 0x20);
    r.clock.advance_to(999756000);
    CHECK((r.read(R::kRegA) & R::kUip) == R::kUip);
    CHECK(r.read(R::kRegA) == (0x26 | R::kUip));
    r.clock.advance_to(kSec);
    CHECK((r.read(R::kRegA) & R::kUip) == 0);
    CHECK(r.read(R::kSeconds) == 0x21);
    // Not while SET stops the updates.
    r.write(R::kRegB, R::kSet | R::k24Hour);
    r.clock.advance_to(2 * kSec - 1000);
    CHECK((r.read(R::kRegA) & R::kUip) == 0);
}

TEST_CASE("periodic interrupt: 1024 Hz counted over a fake second") {
    RtcRig r;
    r.write(R::kRegB, R::kPie | R::k24Hour);
    size_t acks = r.run_acking(kSec, 50000, R::kIrqf | R::kPf);
    CHECK(acks == 1024);
    CHECK(r.edges() == 1024);
    std::vector<uint64_t> e = r.sink.rising_edges(kIrq8);
    CHECK(e[0] == 976563); // 32 cycles of 32.768 kHz
    CHECK(e[1] == 1953125);
    CHECK(e[1023] == kSec);

    r.write(R::kRegA, 0x2f); // RS = 15: 2 Hz
    r.read(R::kRegC);
    size_t before = r.edges();
    r.run_acking(kSec, 1000000);
    CHECK(r.edges() - before == 2);
    r.write(R::kRegA, 0x20); // RS = 0: none
    before = r.edges();
    r.run_acking(kSec, 1000000);
    CHECK(r.edges() == before);
}

TEST_CASE("periodic rates for every RS value") {
    for (unsigned rs = 1; rs < 16; rs++) {
        RtcRig r;
        r.write(R::kRegA, uint8_t(0x20 | rs));
        r.write(R::kRegB, R::kPie | R::k24Hour);
        r.run_acking(kSec, 20000);
        unsigned shift = rs <= 2 ? rs + 7 : rs;
        CHECK(r.edges() == 65536u >> shift);
    }
}

TEST_CASE("register C: reading clears the flags and lowers IRQ 8; no new edge until then") {
    RtcRig r;
    r.write(R::kRegB, R::kPie | R::k24Hour);
    r.clock.advance(100 * kMs);
    CHECK(r.edges() == 1);
    CHECK(r.sink.level(kIrq8));
    CHECK(r.read(R::kRegC) == (R::kIrqf | R::kPf));
    CHECK(!r.sink.level(kIrq8));
    CHECK(r.read(R::kRegC) == 0);
    r.clock.advance(1 * kMs);
    CHECK(r.edges() == 2);
    // The machine's view does not acknowledge.
    CHECK(r.rtc.cmos_read(R::kRegC) == (R::kIrqf | R::kPf));
    CHECK(r.sink.level(kIrq8));
}

TEST_CASE("PF is set without PIE but IRQ 8 stays low; enabling PIE then raises it") {
    RtcRig r;
    r.clock.advance(10 * kMs);
    CHECK(r.read(R::kRegC) == R::kPf);
    r.clock.advance(10 * kMs);
    CHECK(r.sink.events.empty());
    r.write(R::kRegB, R::kPie | R::k24Hour);
    CHECK(r.sink.level(kIrq8));
    CHECK(r.read(R::kRegC) == (R::kIrqf | R::kPf));
    // Disabling the enable drops IRQF and the line.
    r.clock.advance(2 * kMs);
    CHECK(r.sink.level(kIrq8));
    r.write(R::kRegB, R::k24Hour);
    CHECK(!r.sink.level(kIrq8));
    CHECK(r.read(R::kRegC) == R::kPf);
}

TEST_CASE("periodic interrupts continue while SET stops the time") {
    RtcRig r;
    r.write(R::kRegB, R::kSet | R::kPie | R::k24Hour);
    CHECK(r.run_acking(100 * kMs, 100000) == 102);
}

TEST_CASE("update-ended interrupt once per second, at the update") {
    RtcRig r;
    r.write(R::kRegB, R::kUie | R::k24Hour);
    r.run_acking(3 * kSec, 10 * kMs, R::kIrqf | R::kUf);
    std::vector<uint64_t> expect = {kSec, 2 * kSec, 3 * kSec};
    CHECK(r.sink.rising_edges(kIrq8) == expect);
    CHECK(r.read(R::kSeconds) == 0x23);
}

TEST_CASE("alarm interrupt, exact and with don't-care values") {
    RtcRig r; // 22:13:20
    r.write(R::kSecondsAlarm, 0x25);
    r.write(R::kMinutesAlarm, 0x13);
    r.write(R::kHoursAlarm, 0x22);
    r.write(R::kRegB, R::kAie | R::k24Hour);
    r.clock.advance(10 * kSec);
    CHECK(r.sink.rising_edges(kIrq8) == std::vector<uint64_t>{5 * kSec});
    CHECK((r.read(R::kRegC) & (R::kIrqf | R::kAf | R::kUf)) == (R::kIrqf | R::kAf | R::kUf));

    // Seconds = 30, minutes and hours don't care: once a minute. It is 22:13:30 now (t = 10 s),
    // so the next ones are 22:14:30 and 22:15:30.
    r.write(R::kSecondsAlarm, 0x30);
    r.write(R::kMinutesAlarm, 0xff);
    r.write(R::kHoursAlarm, 0xc0);
    r.sink.events.clear();
    r.run_acking(120 * kSec, 100 * kMs, R::kAf);
    std::vector<uint64_t> expect = {70 * kSec, 130 * kSec};
    CHECK(r.sink.rising_edges(kIrq8) == expect);

    // All don't care: every second.
    r.write(R::kSecondsAlarm, 0xc0);
    r.sink.events.clear();
    CHECK(r.run_acking(5 * kSec, 100 * kMs, R::kAf) == 5);
}

TEST_CASE("alarm flag is computed across a long gap without AIE, in the register format") {
    RtcRig r; // 22:13:20
    r.write(R::kSecondsAlarm, 0x00);
    r.write(R::kMinutesAlarm, 0x20);
    r.write(R::kHoursAlarm, 0x22);
    r.clock.advance(3 * 3600 * kSec);
    CHECK((r.read(R::kRegC) & R::kAf) == R::kAf);
    CHECK(r.sink.events.empty());
    // An alarm byte that is not valid BCD never matches.
    r.write(R::kSecondsAlarm, 0x0a);
    r.write(R::kMinutesAlarm, 0xc0);
    r.write(R::kHoursAlarm, 0xc0);
    r.clock.advance(3 * 86400 * kSec);
    CHECK((r.read(R::kRegC) & R::kAf) == 0);
}

TEST_CASE("writes to time registers while running take effect at once, keeping the phase") {
    RtcRig r; // 22:13:20
    r.clock.advance_to(500 * kMs);
    r.write(R::kMinutes, 0x30);
    CHECK(r.read(R::kMinutes) == 0x30);
    CHECK(r.read(R::kSeconds) == 0x20);
    r.clock.advance_to(kSec);
    CHECK(r.read(R::kSeconds) == 0x21);
    CHECK(r.read(R::kMinutes) == 0x30);
    r.write(R::kPs2Century, 0x21); // 0x37 aliases the century
    CHECK(r.read(R::kCentury) == 0x21);
    CHECK(r.read(R::kYear) == 0x23);
}

TEST_CASE("hostile time register contents never crash and are normalised on restart") {
    for (uint8_t b : {uint8_t(0x02), uint8_t(0x06), uint8_t(0x00), uint8_t(0x04)}) {
        RtcRig r;
        r.write(R::kRegB, uint8_t(R::kSet | b));
        for (uint8_t i : {R::kSeconds, R::kMinutes, R::kHours, R::kDayOfWeek, R::kDayOfMonth,
                          R::kMonth, R::kYear, R::kCentury})
            r.write(i, 0xff);
        CHECK(r.read(R::kSeconds) == 0xff); // stopped: the bytes as written
        r.write(R::kRegB, b);
        T8 t = r.time();
        if (!(b & R::kDm)) {
            for (size_t i = 0; i < t.size(); i++) {
                CHECK((t[i] & 0x0f) <= 9);
                CHECK(((t[i] & 0x70) >> 4) <= 9);
            }
        }
        r.clock.advance(kSec);
        CHECK(r.time() != t);
    }
}

TEST_CASE("the index register is 7 bits: no index reaches outside the 128 bytes") {
    RtcRig r;
    for (unsigned i = 0x0e; i < 0x80; i++) r.rtc.cmos_write(i, uint8_t(i ^ 0xa5));
    std::array<uint8_t, 128> before{};
    for (unsigned i = 0x0e; i < 0x80; i++) before[i] = r.rtc.cmos_read(i);

    r.out(0x70, 0xff); // NMI disabled, index 0x7f
    CHECK(r.rtc.nmi_masked());
    r.out(0x71, 0x5a);
    CHECK(r.rtc.cmos_read(0x7f) == 0x5a);
    CHECK(r.in(0x70) == 0xff); // the index register is write-only
    for (unsigned v = 0x80; v < 0x100; v++) {
        r.out(0x70, uint8_t(v));
        CHECK(r.in(0x71) == (v == 0xff ? 0x5a : r.rtc.cmos_read(v & 0x7f)));
    }
    before[0x7f] = 0x5a;
    for (unsigned i = 0x0e; i < 0x80; i++) {
        if (i == R::kCentury || i == R::kPs2Century) continue;
        CHECK(r.rtc.cmos_read(i) == before[i]);
    }
    r.out(0x70, 0x0e);
    CHECK(!r.rtc.nmi_masked());

    // The machine API ignores indices >= 128.
    r.rtc.cmos_write(128, 1);
    r.rtc.cmos_write(1000, 1);
    CHECK(r.rtc.cmos_read(128) == 0xff);
    CHECK(r.rtc.cmos_read(0xffffffff) == 0xff);
    for (unsigned i = 0x0e; i < 0x80; i++) {
        if (i == R::kCentury || i == R::kPs2Century) continue;
        CHECK(r.rtc.cmos_read(i) == before[i]);
    }
}

TEST_CASE("registers C and D are read-only; UIP cannot be written") {
    RtcRig r;
    r.write(R::kRegC, 0xff);
    r.write(R::kRegD, 0x00);
    CHECK(r.read(R::kRegC) == 0);
    CHECK(r.read(R::kRegD) == 0x80);
    r.write(R::kRegA, 0xa6);
    CHECK(r.read(R::kRegA) == 0x26);
    CHECK(r.sink.events.empty());
}

TEST_CASE("lost ticks: with Reinject, coalesced ticks are delivered after each read of C") {
    RtcRig r(k2023_11_14_22_13_20, 0, RtcLostTickPolicy::Reinject);
    r.write(R::kRegB, R::kPie | R::k24Hour);
    r.clock.advance(10 * kMs); // 10 ticks, the guest handles none
    CHECK(r.edges() == 1);
    CHECK(r.rtc.coalesced_ticks() == 9);
    for (int i = 0; i < 9; i++) {
        CHECK((r.read(R::kRegC) & (R::kIrqf | R::kPf)) == (R::kIrqf | R::kPf));
        CHECK(r.sink.level(kIrq8)); // lowered, then raised again for the next one
    }
    CHECK(r.edges() == 10);
    CHECK(r.rtc.coalesced_ticks() == 0);
    CHECK(r.read(R::kRegC) == (R::kIrqf | R::kPf));
    CHECK(!r.sink.level(kIrq8));
    // From then on ticks are delivered normally: in total, one interrupt per tick.
    r.run_acking(kSec - 10 * kMs, 50000);
    CHECK(r.edges() == 1024);
}

TEST_CASE("lost ticks: at most 20 re-deliveries per tick, at most one second's worth kept") {
    RtcRig r(k2023_11_14_22_13_20, 0, RtcLostTickPolicy::Reinject);
    r.write(R::kRegB, R::kPie | R::k24Hour);
    r.clock.advance(100 * kMs);
    uint32_t lost = r.rtc.coalesced_ticks();
    CHECK(lost == 101);
    for (int i = 0; i < 30; i++) r.read(R::kRegC);
    CHECK(r.rtc.coalesced_ticks() == lost - 20);
    CHECK(!r.sink.level(kIrq8));
    r.clock.advance(1 * kMs); // the next tick renews the allowance
    for (int i = 0; i < 30; i++) r.read(R::kRegC);
    CHECK(r.rtc.coalesced_ticks() == lost - 40);

    r.clock.advance(10 * kSec);
    CHECK(r.rtc.coalesced_ticks() == 1024);
    // Turning PIE off forgets them.
    r.write(R::kRegB, R::k24Hour);
    CHECK(r.rtc.coalesced_ticks() == 0);
}

TEST_CASE("lost ticks: with Discard, nothing is re-delivered") {
    RtcRig r;
    r.write(R::kRegB, R::kPie | R::k24Hour);
    r.clock.advance(10 * kMs);
    CHECK(r.rtc.coalesced_ticks() == 0);
    r.read(R::kRegC);
    CHECK(!r.sink.level(kIrq8));
    CHECK(r.edges() == 1);
}

TEST_CASE("reset keeps time and CMOS, clears interrupt enables and flags") {
    RtcRig r;
    r.rtc.cmos_write(R::kShutdownStatus, 0x05);
    r.rtc.cmos_write(0x10, 0x50);
    r.write(R::kRegB, R::kPie | R::kAie | R::kUie | R::kSqwe | R::k24Hour);
    r.clock.advance(1500 * kMs);
    CHECK(r.sink.level(kIrq8));
    r.rtc.reset(ResetKind::Hard);
    CHECK(!r.sink.level(kIrq8));
    CHECK(r.read(R::kRegB) == (R::kUie | R::k24Hour)); // as QEMU: UIE survives
    CHECK(r.rtc.cmos_read(R::kRegC) == 0);
    CHECK(r.rtc.cmos_read(R::kShutdownStatus) == 0x00);
    CHECK(r.rtc.cmos_read(0x10) == 0x50);
    CHECK(r.read(R::kSeconds) == 0x21);
    r.rtc.cmos_write(R::kShutdownStatus, 0xfe); // S3 resume survives
    r.rtc.reset(ResetKind::Hard);
    CHECK(r.rtc.cmos_read(R::kShutdownStatus) == 0xfe);
}

TEST_CASE("save, change, load: equal state and the same behaviour afterwards") {
    RtcRig r(k2023_11_14_22_13_20, 0, RtcLostTickPolicy::Reinject);
    r.rtc.cmos_write(0x34, 0x3f);
    r.write(R::kSecondsAlarm, 0x25);
    r.write(R::kRegB, R::kPie | R::kAie | R::k24Hour);
    r.clock.advance(2500 * kMs + 123);
    r.out(0x70, 0x80 | 0x34);
    StateWriter a;
    r.rtc.save(a);
    uint8_t c_before = r.rtc.cmos_read(R::kRegC);
    uint32_t lost = r.rtc.coalesced_ticks();
    T8 t = r.time();

    r.write(R::kRegB, R::kSet | R::kDm);
    r.write(R::kHours, 3);
    r.rtc.cmos_write(0x34, 0);
    r.read(R::kRegC);
    r.write(R::kRegA, 0x70);
    r.out(0x70, 0x01);
    StateReader in(a.data());
    r.rtc.load(in);
    CHECK(in.at_end());
    StateWriter b;
    r.rtc.save(b);
    CHECK(a.data() == b.data());
    CHECK(r.rtc.nmi_masked());
    CHECK(r.in(0x71) == 0x3f); // index 0x34 restored
    CHECK(r.sink.level(kIrq8));
    CHECK(r.rtc.cmos_read(R::kRegC) == c_before);
    CHECK(r.rtc.coalesced_ticks() == lost);
    CHECK(r.time() == t);
    r.clock.advance(500 * kMs - 123);
    CHECK(r.read(R::kSeconds) == 0x23); // the divider phase came back too
}

TEST_CASE("state loads onto another clock; corrupt state is refused") {
    RtcRig r;
    r.clock.advance(700 * kMs);
    StateWriter a;
    r.rtc.save(a);

    FakeClock later(77 * kSec);
    RecordingIrqSink sink(later);
    Mc146818Rtc rtc(later, IrqPin(&sink, kIrq8), 0);
    StateReader in(a.data());
    rtc.load(in);
    CHECK(rtc.cmos_read(R::kSeconds) == 0x20);
    later.advance(300 * kMs);
    CHECK(rtc.cmos_read(R::kSeconds) == 0x21);

    // Layout: header (4 + 11 + 4), cmos (4 + 128), seconds (4 + 8), phase (4 + 8), ...
    const std::vector<uint8_t>& good = a.data();
    size_t cmos_at = 4 + 11 + 4 + 4;
    auto refused = [&](size_t at, uint8_t value) {
        std::vector<uint8_t> bad = good;
        bad[at] = value;
        StateReader bin(bad);
        uint8_t before = rtc.cmos_read(R::kSeconds);
        CHECK_THROWS_AS(rtc.load(bin), StateError);
        CHECK(rtc.cmos_read(R::kSeconds) == before);
    };
    refused(cmos_at + R::kRegD, 0x00);
    refused(cmos_at + R::kRegC, 0x01);
    refused(cmos_at + R::kRegA, 0xa6);
    size_t phase_at = cmos_at + 128 + 4 + 8 + 4;
    refused(phase_at + 7, 0x10); // phase >= 1 s
    size_t index_at = good.size() - 5 - 4;
    REQUIRE(good[index_at] == 0x00);
    refused(index_at, 0x80);
    std::vector<uint8_t> cut(good.begin(), good.end() - 1);
    StateReader cin(cut);
    CHECK_THROWS_AS(rtc.load(cin), StateError);
}

TEST_CASE("random guest traffic: no crash, IRQ 8 always equals IRQF, state round-trips") {
    for (RtcLostTickPolicy policy : {RtcLostTickPolicy::Discard, RtcLostTickPolicy::Reinject}) {
        RtcRig r(k2023_11_14_22_13_20, 0, policy);
        std::mt19937 rng(146818);
        for (int i = 0; i < 100000; i++) {
            uint32_t x = rng();
            switch (x % 8) {
            case 0: r.out(0x70, uint8_t(x >> 8)); break;
            case 1: r.out(0x70, uint8_t((x >> 8) % 0x0e)); break; // mostly clock registers
            case 2:
            case 3: r.out(0x71, uint8_t(x >> 16)); break;
            case 4: r.in(uint16_t(0x70 + (x >> 8) % 2)); break;
            case 5: r.clock.advance((x >> 8) % (5 * kMs)); break;
            case 6:
                if ((x >> 8) % 500 == 0) r.clock.advance(((x >> 16) % 100000) * kSec);
                break;
            default:
                if ((x >> 8) % 50 == 0) {
                    StateWriter a;
                    r.rtc.save(a);
                    StateReader in(a.data());
                    r.rtc.load(in);
                    StateWriter b;
                    r.rtc.save(b);
                    CHECK(a.data() == b.data());
                }
                break;
            }
            bool irqf = r.rtc.cmos_read(R::kRegC) & R::kIrqf;
            if (irqf != r.sink.level(kIrq8)) {
                FAIL("IRQ 8 differs from IRQF at step " << i);
            }
        }
    }
}
