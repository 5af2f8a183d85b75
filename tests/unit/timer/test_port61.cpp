#include <doctest/doctest.h>

#include "base/clock.hpp"
#include "devmodel/timer/pit8254.hpp"
#include "devmodel/timer/pit_clock.hpp"
#include "devmodel/timer/system_control_port_b.hpp"
#include "unit/timer/recording_irq_sink.hpp"
#include "vmexit/bus.hpp"

using namespace hvm;
using hvm::test::RecordingIrqSink;

namespace {

struct Rig {
    FakeClock clock;
    RecordingIrqSink sink{clock};
    Pit8254 pit{clock, IrqPin(&sink, 0)};
    SystemControlPortB port61{clock, pit};
    Bus io{"pio"};
    Rig() {
        io.add(Pit8254::kBasePort, Pit8254::kPortCount, &pit, AccessSizes{1, 1}, "pit");
        io.add(SystemControlPortB::kPort, SystemControlPortB::kPortCount, &port61,
               AccessSizes{1, 1}, "port61");
    }
    void out(uint16_t port, uint8_t v) { io.write(port, std::span<const uint8_t>(&v, 1)); }
    uint8_t in(uint16_t port) {
        uint8_t v = 0;
        io.read(port, std::span<uint8_t>(&v, 1));
        return v;
    }
    uint64_t tick() const { return pit_ticks_at(clock.now_ns()); }
};

// What KVM's in-kernel PIT would look like from port 0x61.
struct FakeChannel2 : PitChannel2 {
    bool gate = false, out = false;
    int gate_writes = 0;
    bool gate2() override { return gate; }
    void set_gate2(bool level) override {
        gate = level;
        gate_writes++;
    }
    bool out2() override { return out; }
};

} // namespace

TEST_CASE("OUT2 follows counter 2: the SeaBIOS/Linux calibration loop") {
    Rig r;
    r.clock.advance(123456);
    // Gate on, speaker off; counter 2 mode 0 with a 1 ms count.
    r.out(0x61, (r.in(0x61) & ~0x02) | 0x01);
    r.out(0x43, 0xb0);
    r.out(0x42, 1193 & 0xff);
    r.out(0x42, 1193 >> 8);
    uint64_t expire = pit_tick_time(r.tick() + 1 + 1193);
    int polls = 0;
    while (!(r.in(0x61) & SystemControlPortB::kTimer2Out)) {
        r.clock.advance(1000);
        REQUIRE(++polls < 2000);
    }
    CHECK(r.clock.now_ns() >= expire);
    CHECK(r.clock.now_ns() < expire + 1000);
    CHECK((r.in(0x61) & 0x03) == 0x01);
}

TEST_CASE("port 0x61 bit 0 gates counter 2, bit 1 is stored, bit 5 shows a square wave") {
    Rig r;
    // Power-on: gate low, speaker off; counter 2 in mode 3 with GATE low holds OUT high.
    CHECK((r.in(0x61) & 0x23) == 0x20);
    r.out(0x43, 0xb6); // counter 2, mode 3
    r.out(0x42, 100);
    r.out(0x42, 0);
    r.out(0x61, 0x03);
    CHECK(r.port61.speaker_data_enabled());
    CHECK(r.pit.gate2());
    uint64_t load = r.tick() + 1;
    r.clock.advance_to(pit_tick_time(load + 49));
    CHECK((r.in(0x61) & 0x20) == 0x20);
    r.clock.advance_to(pit_tick_time(load + 50));
    CHECK((r.in(0x61) & 0x20) == 0x00);
    r.out(0x61, 0x00); // gate low: mode 3 OUT goes high at once
    CHECK((r.in(0x61) & 0x23) == 0x20);
    CHECK(!r.port61.speaker_data_enabled());
    // Bits other than 0 and 1 are not stored.
    r.out(0x61, 0xfe);
    CHECK((r.in(0x61) & 0xcf) == 0x02);
}

TEST_CASE("refresh toggle flips every 18 PIT clocks (about 15 us), from the clock alone") {
    Rig r;
    bool last = r.in(0x61) & SystemControlPortB::kRefreshToggle;
    std::vector<uint64_t> flips;
    for (uint64_t t = 0; t < 1000000; t += 500) { // 1 ms, sampled every 0.5 us
        r.clock.advance_to(t);
        bool now = r.in(0x61) & SystemControlPortB::kRefreshToggle;
        if (now != last) flips.push_back(t);
        last = now;
    }
    CHECK(flips.size() >= 66);
    CHECK(flips.size() <= 67);
    for (size_t i = 1; i < flips.size(); i++) {
        CHECK(flips[i] - flips[i - 1] >= 14500);
        CHECK(flips[i] - flips[i - 1] <= 15500);
    }
    // Reading does not toggle it (unlike QEMU's pcspk): two reads at one instant agree.
    CHECK(r.in(0x61) == r.in(0x61));
}

TEST_CASE("port 0x61 works with any PitChannel2 (KVM's in-kernel PIT)") {
    FakeClock clock;
    FakeChannel2 ch2;
    SystemControlPortB port(clock, ch2);
    uint8_t v = 0x01;
    port.io_write(0, std::span<const uint8_t>(&v, 1));
    CHECK(ch2.gate);
    ch2.out = true;
    uint8_t got = 0;
    port.io_read(0, std::span<uint8_t>(&got, 1));
    CHECK((got & 0x21) == 0x21);
    ch2.out = false;
    port.io_read(0, std::span<uint8_t>(&got, 1));
    CHECK((got & 0x21) == 0x01);
    port.reset(ResetKind::Hard);
    CHECK(ch2.gate_writes == 1); // the gate is the PIT's to reset
}

TEST_CASE("port 0x61 save, change, load") {
    Rig r;
    r.out(0x61, 0x02);
    StateWriter a;
    r.port61.save(a);
    r.out(0x61, 0x00);
    StateReader in(a.data());
    r.port61.load(in);
    CHECK(r.port61.speaker_data_enabled());
    StateWriter b;
    r.port61.save(b);
    CHECK(a.data() == b.data());

    std::vector<uint8_t> bad = a.data();
    bad.back() = 7;
    StateReader in2(bad);
    CHECK_THROWS_AS(r.port61.load(in2), StateError);
}
