#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "base/clock.hpp"
#include "devmodel/timer/pit8254.hpp"
#include "devmodel/timer/pit_clock.hpp"
#include "unit/timer/recording_irq_sink.hpp"
#include "vmexit/bus.hpp"

using namespace hvm;
using hvm::test::IrqEvent;
using hvm::test::RecordingIrqSink;

namespace {

// Control words: SC (7-6), RW (5-4), M (3-1), BCD (0).
constexpr uint8_t cw(unsigned sc, unsigned rw, unsigned mode, bool bcd = false) {
    return uint8_t(sc << 6 | rw << 4 | mode << 1 | (bcd ? 1 : 0));
}
constexpr unsigned kWord = 3, kLsb = 1, kMsb = 2;

struct PitRig {
    FakeClock clock;
    RecordingIrqSink sink{clock};
    Pit8254 pit{clock, IrqPin(&sink, 0)};
    Bus io{"pio"};

    PitRig() { io.add(Pit8254::kBasePort, Pit8254::kPortCount, &pit, AccessSizes{1, 1}, "pit"); }
    void out(uint16_t port, uint8_t v) { io.write(port, std::span<const uint8_t>(&v, 1)); }
    uint8_t in(uint16_t port) {
        uint8_t v = 0;
        io.read(port, std::span<uint8_t>(&v, 1));
        return v;
    }
    void to_tick(uint64_t tick) { clock.advance_to(pit_tick_time(tick)); }
    uint64_t tick() const { return pit_ticks_at(clock.now_ns()); }
    void program(unsigned ch, unsigned mode, uint16_t count, bool bcd = false) {
        out(0x43, cw(ch, kWord, mode, bcd));
        out(uint16_t(0x40 + ch), uint8_t(count));
        out(uint16_t(0x40 + ch), uint8_t(count >> 8));
    }
    uint16_t latched(unsigned ch) {
        out(0x43, cw(ch, 0, 0)); // counter latch command
        uint8_t lo = in(uint16_t(0x40 + ch));
        return uint16_t(lo | in(uint16_t(0x40 + ch)) << 8);
    }
    uint8_t status(unsigned ch) {
        out(0x43, uint8_t(0xc0 | 0x20 | (2u << ch))); // read-back: status only
        return in(uint16_t(0x40 + ch));
    }
    bool out_of(unsigned ch) { return status(ch) & 0x80; }
    size_t events_from(uint64_t ns) const {
        size_t n = 0;
        for (const IrqEvent& e : sink.events) n += e.ns >= ns;
        return n;
    }
};

} // namespace

TEST_CASE("tick grid: every pulse time maps back to its pulse") {
    for (uint64_t k : {0ull, 1ull, 2ull, 1193ull, 1193182ull, 123456789ull, 1ull << 40}) {
        CHECK(pit_ticks_at(pit_tick_time(k)) == k);
        if (k) CHECK(pit_ticks_at(pit_tick_time(k) - 1) == k - 1);
    }
    CHECK(pit_ticks_at(1000000000) == kPitClockHz);
}

TEST_CASE("power-on state: channel 0 in mode 3 with count 65536, IRQ 0 toggling at 18.2 Hz") {
    PitRig r;
    CHECK(r.status(0) == 0x80 + 0x40 + 0x36); // OUT high, null count until the first pulse
    r.to_tick(1);
    CHECK(r.status(0) == 0x80 + 0x36);
    r.to_tick(1 + 65536 * 2);
    // Load at pulse 1, high for 32768 pulses, low for 32768.
    std::vector<IrqEvent> expect = {{0, 0, true},
                                    {pit_tick_time(1 + 32768), 0, false},
                                    {pit_tick_time(1 + 65536), 0, true},
                                    {pit_tick_time(1 + 65536 + 32768), 0, false},
                                    {pit_tick_time(1 + 2 * 65536), 0, true}};
    CHECK(r.sink.events == expect);
    CHECK(r.pit.gate2() == false);
}

TEST_CASE("mode 0: OUT low on the control word, high N+1 pulses after the count is written") {
    PitRig r;
    r.to_tick(100);
    r.sink.events.clear();
    r.out(0x43, cw(0, kWord, 0));
    CHECK(r.sink.level(0) == false);
    r.out(0x40, 16);
    r.out(0x40, 0);
    r.to_tick(106);
    CHECK(r.latched(0) == 11); // loaded with 16 at pulse 101
    r.clock.advance_to(pit_tick_time(117) - 1);
    CHECK(r.sink.level(0) == false);
    r.to_tick(117);
    CHECK(r.sink.level(0) == true);
    std::vector<IrqEvent> expect = {{pit_tick_time(100), 0, false}, {pit_tick_time(117), 0, true}};
    CHECK(r.sink.events == expect);
    CHECK(r.latched(0) == 0);
    r.to_tick(118);
    CHECK(r.latched(0) == 0xffff); // keeps counting after terminal count, OUT stays high
    r.to_tick(118 + 70000);
    CHECK(r.sink.events.size() == 2);
    // A new count lowers OUT at once and restarts.
    r.out(0x40, 4);
    CHECK(r.sink.level(0) == false);
    r.out(0x40, 0);
    r.to_tick(118 + 70000 + 5);
    CHECK(r.sink.level(0) == true);
}

TEST_CASE("mode 0: the first byte of a two-byte count stops counting") {
    PitRig r;
    r.out(0x43, cw(2, kWord, 0));
    r.pit.set_gate2(true);
    r.program(2, 0, 1000);
    r.to_tick(50);
    uint16_t before = r.latched(2);
    r.out(0x42, 0x20); // LSB only
    r.to_tick(500);
    CHECK(r.latched(2) == before);
    CHECK(r.pit.out2() == false);
    r.out(0x42, 0x00); // MSB: count 0x20 loads on the next pulse
    uint64_t load = r.tick() + 1;
    r.to_tick(load + 31);
    CHECK(r.pit.out2() == false);
    r.to_tick(load + 32);
    CHECK(r.pit.out2() == true);
}

TEST_CASE("mode 0 gate: low suspends counting, high resumes with the next pulse") {
    PitRig r;
    r.pit.set_gate2(true);
    r.to_tick(1000);
    r.program(2, 0, 100); // loaded at 1001
    r.to_tick(1011);
    CHECK(r.latched(2) == 90);
    r.pit.set_gate2(false);
    r.to_tick(1100);
    CHECK(r.latched(2) == 90);
    r.pit.set_gate2(true);
    CHECK(r.latched(2) == 90);
    r.to_tick(1101);
    CHECK(r.latched(2) == 89);
    r.to_tick(1189);
    CHECK(r.pit.out2() == false);
    r.to_tick(1190);
    CHECK(r.pit.out2() == true);
}

TEST_CASE("mode 1: one-shot started by a GATE rising edge, retriggerable") {
    PitRig r;
    r.to_tick(10);
    r.program(2, 1, 5);
    CHECK(r.pit.out2() == true);
    r.to_tick(20);
    CHECK(r.pit.out2() == true);      // nothing happens without a trigger
    CHECK((r.status(2) & 0x40) != 0); // CR not yet in CE: null count
    r.pit.set_gate2(true);            // trigger at pulse 20: load at 21
    CHECK(r.pit.out2() == true);
    r.to_tick(21);
    CHECK(r.pit.out2() == false);
    CHECK(r.latched(2) == 5);
    CHECK((r.status(2) & 0x40) == 0);
    r.to_tick(23);
    CHECK(r.latched(2) == 3);
    r.pit.set_gate2(false); // GATE level does not matter in mode 1
    r.to_tick(24);
    CHECK(r.latched(2) == 2);
    r.pit.set_gate2(true); // retrigger at 24: reload at 25, OUT stays low until 30
    r.to_tick(26);
    CHECK(r.pit.out2() == false);
    CHECK(r.latched(2) == 4);
    r.to_tick(29);
    CHECK(r.pit.out2() == false);
    r.to_tick(30);
    CHECK(r.pit.out2() == true);
    r.to_tick(40);
    CHECK(r.pit.out2() == true);
}

TEST_CASE("mode 1 on channel 0 never starts: its GATE is tied high, there is no trigger") {
    PitRig r;
    r.to_tick(10);
    r.sink.events.clear();
    r.program(0, 1, 5);
    r.to_tick(100000);
    CHECK(r.sink.events.empty());
    CHECK(r.sink.level(0) == true);
}

TEST_CASE("mode 2 on channel 0: IRQ 0 rate generator, one low pulse per period") {
    PitRig r;
    r.to_tick(10);
    r.sink.events.clear();
    r.program(0, 2, 1193);        // load at 11
    CHECK(r.sink.events.empty()); // OUT stays high
    r.to_tick(11 + 100);
    CHECK(r.latched(0) == 1093);
    r.to_tick(11 + 1193 * 3 + 5);
    std::vector<IrqEvent> expect;
    for (uint64_t k = 1; k <= 3; k++) {
        expect.push_back({pit_tick_time(11 + 1193 * k - 1), 0, false});
        expect.push_back({pit_tick_time(11 + 1193 * k), 0, true});
    }
    CHECK(r.sink.events == expect);
    CHECK(r.latched(0) == 1193 - 5);
    // Over a second: 1000 periods of ~1 ms (1193182 / 1193 = 1000.15).
    r.to_tick(11 + 1193182);
    CHECK(r.sink.rising_edges(0).size() == (1193182) / 1193);
}

TEST_CASE("mode 2: counter values at precise pulses, CE reads N..1") {
    PitRig r;
    r.pit.set_gate2(true);
    r.to_tick(5);
    r.program(2, 2, 4); // load at 6
    std::vector<uint16_t> seen;
    std::vector<bool> outs;
    for (uint64_t t = 6; t < 6 + 9; t++) {
        r.to_tick(t);
        seen.push_back(r.latched(2));
        outs.push_back(r.pit.out2());
    }
    CHECK(seen == std::vector<uint16_t>{4, 3, 2, 1, 4, 3, 2, 1, 4});
    CHECK(outs == std::vector<bool>{true, true, true, false, true, true, true, false, true});
}

TEST_CASE("mode 2: a new count takes effect at the end of the current period") {
    PitRig r;
    r.pit.set_gate2(true);
    r.program(2, 2, 10); // load at 1
    r.to_tick(4);
    CHECK(r.latched(2) == 7);
    r.out(0x42, 3);
    r.out(0x42, 0);
    CHECK((r.status(2) & 0x40) != 0);
    r.to_tick(10);
    CHECK(r.latched(2) == 1);
    r.to_tick(11);
    CHECK(r.latched(2) == 3);
    CHECK((r.status(2) & 0x40) == 0);
    r.to_tick(13);
    CHECK(r.pit.out2() == false);
    r.to_tick(14);
    CHECK(r.latched(2) == 3);
}

TEST_CASE("mode 2 gate: low forces OUT high and stops counting, high reloads on the next pulse") {
    PitRig r;
    r.pit.set_gate2(true);
    r.program(2, 2, 10); // load at 1
    r.to_tick(10);       // CE == 1: OUT low
    CHECK(r.pit.out2() == false);
    r.pit.set_gate2(false);
    CHECK(r.pit.out2() == true);
    r.to_tick(50);
    CHECK(r.latched(2) == 1);
    CHECK(r.pit.out2() == true);
    r.pit.set_gate2(true); // trigger at 50
    r.to_tick(51);
    CHECK(r.latched(2) == 10);
    r.to_tick(59);
    CHECK(r.latched(2) == 2);
    r.to_tick(60);
    CHECK(r.pit.out2() == false);
    r.to_tick(61);
    CHECK(r.pit.out2() == true);
}

TEST_CASE("mode 3 on channel 0: square wave, even and odd counts") {
    PitRig r;
    r.to_tick(10);
    r.sink.events.clear();
    r.program(0, 3, 1000); // load at 11
    r.to_tick(11 + 2000);
    std::vector<IrqEvent> even = {{pit_tick_time(11 + 500), 0, false},
                                  {pit_tick_time(11 + 1000), 0, true},
                                  {pit_tick_time(11 + 1500), 0, false},
                                  {pit_tick_time(11 + 2000), 0, true}};
    CHECK(r.sink.events == even);

    r.to_tick(3000);
    r.program(0, 3, 1001); // load at 3001: high 501 pulses, low 500
    // The mode write set OUT high at once (it was in the low half): that is an edge too.
    CHECK(r.sink.events.back() == IrqEvent{pit_tick_time(3000), 0, true});
    r.sink.events.clear();
    r.to_tick(3001 + 2002);
    std::vector<IrqEvent> odd = {{pit_tick_time(3001 + 501), 0, false},
                                 {pit_tick_time(3001 + 1001), 0, true},
                                 {pit_tick_time(3001 + 1001 + 501), 0, false},
                                 {pit_tick_time(3001 + 2002), 0, true}};
    CHECK(r.sink.events == odd);
}

TEST_CASE("mode 3: counter decrements by two; odd counts load N-1") {
    PitRig r;
    r.pit.set_gate2(true);
    r.program(2, 3, 8); // load at 1
    std::vector<uint16_t> seen;
    std::vector<bool> outs;
    for (uint64_t t = 1; t < 1 + 10; t++) {
        r.to_tick(t);
        seen.push_back(r.latched(2));
        outs.push_back(r.pit.out2());
    }
    CHECK(seen == std::vector<uint16_t>{8, 6, 4, 2, 8, 6, 4, 2, 8, 6});
    CHECK(outs == std::vector<bool>{1, 1, 1, 1, 0, 0, 0, 0, 1, 1});

    r.to_tick(100);
    r.program(2, 3, 7); // load at 101
    seen.clear();
    outs.clear();
    for (uint64_t t = 101; t < 101 + 8; t++) {
        r.to_tick(t);
        seen.push_back(r.latched(2));
        outs.push_back(r.pit.out2());
    }
    CHECK(seen == std::vector<uint16_t>{6, 4, 2, 0, 6, 4, 2, 6});
    CHECK(outs == std::vector<bool>{1, 1, 1, 1, 0, 0, 0, 1});
}

TEST_CASE("mode 3: a new count is loaded at the end of the current half-cycle") {
    PitRig r;
    r.pit.set_gate2(true);
    r.program(2, 3, 100); // load at 1: high until 51
    r.to_tick(20);
    r.out(0x42, 20);
    r.out(0x42, 0);
    r.to_tick(50);
    CHECK(r.pit.out2() == true);
    r.to_tick(51); // half-cycle ends: OUT low, new count 20 (low for 10)
    CHECK(r.pit.out2() == false);
    CHECK(r.latched(2) == 20);
    r.to_tick(60);
    CHECK(r.pit.out2() == false);
    r.to_tick(61);
    CHECK(r.pit.out2() == true);
    r.to_tick(71);
    CHECK(r.pit.out2() == false);
}

TEST_CASE("mode 3 gate: low sets OUT high and stops, high restarts the square wave") {
    PitRig r;
    r.pit.set_gate2(true);
    r.program(2, 3, 10); // load at 1, low from 6
    r.to_tick(7);
    CHECK(r.pit.out2() == false);
    uint16_t frozen = r.latched(2);
    r.pit.set_gate2(false);
    CHECK(r.pit.out2() == true);
    r.to_tick(40);
    CHECK(r.latched(2) == frozen);
    r.pit.set_gate2(true); // trigger at 40: reload at 41
    r.to_tick(41);
    CHECK(r.latched(2) == 10);
    r.to_tick(45);
    CHECK(r.pit.out2() == true);
    r.to_tick(46);
    CHECK(r.pit.out2() == false);
}

TEST_CASE("mode 4: software-triggered strobe, one pulse low N+1 pulses after the write") {
    PitRig r;
    r.to_tick(10);
    r.program(1, 4, 5); // load at 11, strobe at 16
    std::vector<bool> outs;
    for (uint64_t t = 11; t <= 18; t++) {
        r.to_tick(t);
        outs.push_back(r.out_of(1));
    }
    CHECK(outs == std::vector<bool>{1, 1, 1, 1, 1, 0, 1, 1});
    r.to_tick(19);
    CHECK(r.latched(1) == uint16_t(5 - 8));
}

TEST_CASE("mode 4 gate: low suspends counting") {
    PitRig r;
    r.pit.set_gate2(true);
    r.program(2, 4, 10); // load at 1, strobe at 11
    r.to_tick(4);
    r.pit.set_gate2(false);
    r.to_tick(30);
    CHECK(r.pit.out2() == true);
    CHECK(r.latched(2) == 7);
    r.pit.set_gate2(true); // resumes at 31: CE 6
    r.to_tick(31);
    CHECK(r.latched(2) == 6);
    r.to_tick(36);
    CHECK(r.pit.out2() == true);
    r.to_tick(37);
    CHECK(r.latched(2) == 0);
    CHECK(r.pit.out2() == false);
    r.to_tick(38);
    CHECK(r.pit.out2() == true);
}

TEST_CASE("mode 5: hardware-triggered strobe, retriggerable") {
    PitRig r;
    r.program(2, 5, 3);
    r.to_tick(20);
    CHECK(r.pit.out2() == true);
    r.pit.set_gate2(true); // trigger at 20: load at 21, strobe at 24
    r.to_tick(23);
    CHECK(r.pit.out2() == true);
    r.to_tick(24);
    CHECK(r.pit.out2() == false);
    r.to_tick(25);
    CHECK(r.pit.out2() == true);
    r.to_tick(30);
    r.pit.set_gate2(false);
    r.pit.set_gate2(true); // retrigger at 30
    r.to_tick(32);
    r.pit.set_gate2(false);
    r.pit.set_gate2(true); // and again at 32, before the strobe: load at 33, strobe at 36
    r.to_tick(34);
    CHECK(r.pit.out2() == true);
    r.to_tick(36);
    CHECK(r.pit.out2() == false);
}

TEST_CASE("modes 6 and 7 are modes 2 and 3; the status shows the bits as written") {
    PitRig r;
    r.pit.set_gate2(true);
    r.out(0x43, cw(2, kWord, 6));
    r.out(0x42, 4);
    r.out(0x42, 0);
    r.to_tick(4);
    CHECK(r.pit.out2() == false); // CE == 1
    CHECK(r.status(2) == (0x30 | 6 << 1));
    r.out(0x43, cw(2, kWord, 7));
    r.out(0x42, 4);
    r.out(0x42, 0);
    r.to_tick(10); // loaded at 5: high for 2 pulses, low for 2
    CHECK(r.status(2) == (0x80 | 0x30 | 7 << 1));
    r.to_tick(12);
    CHECK(r.status(2) == (0x30 | 7 << 1));
}

TEST_CASE("BCD counting") {
    PitRig r;
    r.pit.set_gate2(true);
    r.program(2, 0, 0x0100, /*bcd=*/true); // 100 decimal, load at 1
    r.to_tick(38);
    CHECK(r.latched(2) == 0x0063);
    r.to_tick(101);
    CHECK(r.pit.out2() == true);
    CHECK(r.latched(2) == 0x0000);
    r.to_tick(102);
    CHECK(r.latched(2) == 0x9999); // wraps within four decades
    CHECK(r.status(2) == (0x80 | 0x30 | 1));

    r.program(2, 0, 0x0000, true); // 0 is 10^4 in BCD
    uint64_t load = r.tick() + 1;
    r.to_tick(load + 1);
    CHECK(r.latched(2) == 0x9999);
    r.to_tick(load + 10000);
    CHECK(r.pit.out2() == true);

    r.program(2, 2, 0x0010, true); // mode 2, period 10
    load = r.tick() + 1;
    r.to_tick(load + 3);
    CHECK(r.latched(2) == 0x0007);
    r.to_tick(load + 9);
    CHECK(r.pit.out2() == false);
    r.to_tick(load + 10);
    CHECK(r.latched(2) == 0x0010);

    r.program(2, 0, 0x1a2f, true); // invalid digits count as 9: 1929
    load = r.tick() + 1;
    r.to_tick(load);
    CHECK(r.latched(2) == 0x1929);
}

TEST_CASE("counter latch holds the count until read; a second latch is ignored") {
    PitRig r;
    r.to_tick(10);
    r.program(0, 2, 1193); // load at 11
    r.to_tick(111);
    r.out(0x43, cw(0, 0, 0));
    r.to_tick(611);
    CHECK(r.in(0x40) == 0x45); // 1093 = 0x445
    r.out(0x43, cw(0, 0, 0));  // ignored: MSB still unread
    r.to_tick(811);
    CHECK(r.in(0x40) == 0x04);
    // Unlatched reads follow the count live, LSB then MSB.
    uint16_t live = uint16_t(1193 - 800);
    CHECK(r.in(0x40) == uint8_t(live));
    CHECK(r.in(0x40) == uint8_t(live >> 8));
    CHECK(r.latched(0) == live);
}

TEST_CASE("LSB-only and MSB-only access") {
    PitRig r;
    r.pit.set_gate2(true);
    r.out(0x43, cw(2, kLsb, 2));
    r.out(0x42, 80); // count 80
    r.to_tick(1 + 30);
    CHECK(r.in(0x42) == 50);
    CHECK(r.in(0x42) == 50);
    r.out(0x43, cw(2, 0, 0));
    r.to_tick(40);
    CHECK(r.in(0x42) == 50); // latched, one byte
    CHECK(r.in(0x42) == 80 - 39);

    r.out(0x43, cw(2, kMsb, 0));
    r.out(0x42, 0x02); // count 0x200
    uint64_t load = r.tick() + 1;
    r.to_tick(load + 1);
    CHECK(r.in(0x42) == 0x01); // 0x1ff
    r.to_tick(load + 0x100);
    CHECK(r.in(0x42) == 0x01);
    r.to_tick(load + 0x101);
    CHECK(r.in(0x42) == 0x00);
}

TEST_CASE("read-back: counts and statuses of several counters at once") {
    PitRig r;
    r.pit.set_gate2(true);
    r.to_tick(10);
    r.program(0, 2, 1000);
    r.program(1, 0, 500);
    r.program(2, 3, 300);
    // Status right after the count write: null count until the load pulse.
    CHECK(r.status(0) == (0x80 | 0x40 | 0x34));
    CHECK(r.status(1) == (0x40 | 0x30));
    r.to_tick(111);
    r.out(0x43, 0xc0 | 0x10 | 0x0e); // latch counts of 0, 1, 2
    r.to_tick(200);
    auto word = [&](uint16_t port) { return uint16_t(r.in(port) | r.in(port) << 8); };
    CHECK(word(0x40) == 900);
    CHECK(word(0x41) == 400);
    CHECK(word(0x42) == 300 - 2 * 100); // mode 3 counts by two

    // Count and status of counter 1 together: status first, then the count.
    r.out(0x43, 0xc0 | 0x04);
    r.to_tick(700);
    CHECK(r.in(0x41) == 0x30); // OUT low, no null count, RW=3, mode 0
    CHECK(word(0x41) == 500 - 189);
    // A status latched twice keeps the first.
    r.out(0x43, 0xc0 | 0x20 | 0x04);
    r.to_tick(800);
    r.out(0x43, 0xc0 | 0x20 | 0x04);
    CHECK(r.in(0x41) == 0xb0); // OUT went high at 511
    CHECK(r.in(0x41) == uint8_t(uint16_t(500 - 789)));
}

TEST_CASE("CVE-2015-3214 shape: port 0x43 never indexes a fourth counter") {
    PitRig r;
    r.to_tick(10);
    r.program(0, 2, 1000);
    r.to_tick(20);
    for (unsigned v = 0xc0; v <= 0xff; v++) {
        r.out(0x43, uint8_t(v));
        for (uint16_t port = 0x40; port <= 0x43; port++) {
            r.in(port);
            r.in(port);
            r.in(port);
        }
        CHECK(r.in(0x43) == 0); // the control register is write-only
    }
    // A read-back that selects no counter latches nothing.
    r.to_tick(100);
    r.out(0x43, 0xc1);
    r.out(0x43, 0xf0);
    r.to_tick(300);
    CHECK(r.in(0x40) == uint8_t(1000 - 289));
    // Reads of 0x43 at any time return 0 and have no effect.
    CHECK(r.in(0x43) == 0);
    CHECK(r.latched(0) == 1000 - 289);
}

TEST_CASE("the PIT sees only byte accesses: a 16-bit read at 0x42 is counter 2 then 0x43") {
    PitRig r;
    r.pit.set_gate2(true);
    r.out(0x43, cw(2, kLsb, 0));
    r.out(0x42, 0x34);
    r.to_tick(r.tick() + 1);
    uint8_t word[2] = {0xaa, 0xaa};
    r.io.read(0x42, std::span<uint8_t>(word, 2));
    CHECK(word[0] == 0x34);
    CHECK(word[1] == 0x00);
}

TEST_CASE("short periods on channel 0 are throttled, not lost entirely, and counts stay exact") {
    PitRig r;
    r.to_tick(10);
    r.sink.events.clear();
    r.program(0, 2, 2); // 597 kHz requested
    uint64_t start = r.clock.now_ns();
    r.clock.advance(10000000); // 10 ms
    size_t edges = 0;
    for (uint64_t t : r.sink.rising_edges(0)) edges += t >= start;
    CHECK(edges >= 150);
    CHECK(edges <= 10000000 / Pit8254::kMinIrqIntervalNs + 1);
    uint64_t e = r.tick() - 11;
    CHECK(r.latched(0) == 2 - e % 2);
    // A normal rate afterwards is exact again.
    r.program(0, 2, 1193);
    uint64_t load = r.tick() + 1;
    r.sink.events.clear();
    r.to_tick(load + 1193);
    std::vector<IrqEvent> expect = {{pit_tick_time(load + 1192), 0, false},
                                    {pit_tick_time(load + 1193), 0, true}};
    CHECK(r.sink.events == expect);
}

TEST_CASE("save, change, load: the counters continue where they were") {
    PitRig r;
    r.to_tick(10);
    r.program(0, 2, 1193);         // load at 11
    r.program(1, 0, 0x5000, true); // BCD
    r.pit.set_gate2(true);
    r.program(2, 1, 300);
    r.pit.set_gate2(false);
    r.pit.set_gate2(true); // trigger
    r.to_tick(700);
    r.out(0x43, cw(1, 0, 0));
    uint8_t lsb = r.in(0x41); // latch half read
    StateWriter a;
    r.pit.save(a);

    r.program(0, 0, 5);
    r.program(2, 3, 9);
    r.pit.set_gate2(false);
    r.out(0x43, cw(1, kLsb, 4));
    StateReader in(a.data());
    r.pit.load(in);
    CHECK(in.at_end());
    StateWriter b;
    r.pit.save(b);
    CHECK(a.data() == b.data());

    CHECK(r.in(0x41) != lsb); // the MSB of the latched count comes next
    CHECK(r.pit.gate2() == true);
    CHECK(r.latched(2) == uint16_t(300 - (700 - 11)));
    r.sink.events.clear();
    r.to_tick(11 + 1193);
    std::vector<IrqEvent> expect = {{pit_tick_time(11 + 1192), 0, false},
                                    {pit_tick_time(11 + 1193), 0, true}};
    CHECK(r.sink.events == expect);
}

TEST_CASE("state loads onto another clock relative to its own time") {
    PitRig r;
    r.to_tick(10);
    r.program(0, 3, 1000); // load at 11
    r.to_tick(300);
    StateWriter a;
    r.pit.save(a);

    FakeClock later(5000000000ull);
    RecordingIrqSink sink(later);
    Pit8254 pit(later, IrqPin(&sink, 0));
    StateReader in(a.data());
    pit.load(in);
    uint64_t base = pit_ticks_at(later.now_ns());
    sink.events.clear();
    later.advance_to(pit_tick_time(base + (11 + 1000 - 300)));
    REQUIRE(sink.events.size() == 2);
    CHECK(sink.events[0] == IrqEvent{pit_tick_time(base + (11 + 500 - 300)), 0, false});
    CHECK(sink.events[1] == IrqEvent{pit_tick_time(base + (11 + 1000 - 300)), 0, true});
}

TEST_CASE("corrupt state is refused and leaves the PIT unchanged") {
    PitRig r;
    r.to_tick(10);
    r.program(0, 2, 1193);
    StateWriter a;
    r.pit.save(a);
    std::vector<uint8_t> good = a.data();

    // Byte layout: section header (4 + 7 + 4), then counter 0: mode (4 + 1).
    size_t mode_at = 4 + 7 + 4 + 4;
    REQUIRE(good[mode_at] == 2);
    std::vector<uint8_t> bad = good;
    bad[mode_at] = 9;
    r.to_tick(20);
    uint16_t before = r.latched(0);
    StateReader in(bad);
    CHECK_THROWS_AS(r.pit.load(in), StateError);
    CHECK(r.latched(0) == before);

    std::vector<uint8_t> cut(good.begin(), good.end() - 3);
    StateReader in2(cut);
    CHECK_THROWS_AS(r.pit.load(in2), StateError);
    CHECK(r.latched(0) == before);
}

TEST_CASE("reset returns every counter to the power-on state") {
    PitRig r;
    r.pit.set_gate2(true);
    r.program(0, 0, 100);
    r.program(2, 2, 50);
    r.to_tick(1000);
    r.pit.reset(ResetKind::Hard);
    CHECK(r.pit.gate2() == false);
    CHECK(r.status(0) == (0x80 | 0x40 | 0x36));
    CHECK(r.sink.level(0) == true);
    r.to_tick(1001);
    CHECK(r.latched(0) == 0);
    r.to_tick(1002);
    CHECK(r.latched(0) == 0xfffe);
}

TEST_CASE("random guest traffic: no crash, consistent IRQ line, state round-trips") {
    PitRig r;
    std::mt19937 rng(8254);
    uint64_t ops_since_save = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t x = rng();
        switch (x % 8) {
        case 0:
        case 1: r.out(uint16_t(0x40 + (x >> 8) % 4), uint8_t(x >> 16)); break;
        case 2: r.in(uint16_t(0x40 + (x >> 8) % 4)); break;
        case 3: r.pit.set_gate2((x >> 8) & 1); break;
        case 4: r.pit.out2(); break;
        case 5: r.clock.advance((x >> 8) % 20000); break;
        case 6: r.clock.advance((x >> 8) % 64); break;
        default:
            if (++ops_since_save % 64 == 0) {
                StateWriter a;
                r.pit.save(a);
                StateReader in(a.data());
                r.pit.load(in);
                StateWriter b;
                r.pit.save(b);
                // Loading delivers an edge the (throttled) timer still owed, so only the
                // trailing IRQ fields (two u8 fields with their size words) may differ.
                const std::vector<uint8_t>&av = a.data(), &bv = b.data();
                REQUIRE(av.size() == bv.size());
                CHECK(std::equal(av.begin(), av.end() - 10, bv.begin()));
                StateReader again(bv);
                r.pit.load(again);
                StateWriter c;
                r.pit.save(c);
                CHECK(bv == c.data());
            }
            break;
        }
    }
    // The line only ever changes level, in time order.
    for (size_t i = 1; i < r.sink.events.size(); i++) {
        CHECK(r.sink.events[i].level != r.sink.events[i - 1].level);
        CHECK(r.sink.events[i].ns >= r.sink.events[i - 1].ns);
    }
}
