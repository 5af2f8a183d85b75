#include <doctest/doctest.h>

#include <vector>

#include "base/clock.hpp"
#include "base/state.hpp"

using namespace hvm;

TEST_CASE("fake clock fires timers in deadline order at their deadlines") {
    FakeClock clock(1000);
    std::vector<std::pair<int, uint64_t>> fired;
    Timer a(clock, [&] { fired.push_back({1, clock.now_ns()}); });
    Timer b(clock, [&] { fired.push_back({2, clock.now_ns()}); });
    a.arm(3000);
    b.arm(2000);
    clock.advance(500);
    CHECK(fired.empty());
    clock.advance(5000);
    REQUIRE(fired.size() == 2);
    CHECK(fired[0] == std::pair<int, uint64_t>{2, 2000});
    CHECK(fired[1] == std::pair<int, uint64_t>{1, 3000});
    CHECK(clock.now_ns() == 6500);
}

TEST_CASE("a periodic timer re-arms itself from its callback") {
    FakeClock clock;
    int ticks = 0;
    Timer* self = nullptr;
    Timer t(clock, [&] {
        ticks++;
        self->arm(self->deadline() + 100);
    });
    self = &t;
    t.arm(100);
    clock.advance(1050);
    CHECK(ticks == 10);
    t.cancel();
    clock.advance(1000);
    CHECK(ticks == 10);
}

TEST_CASE("state sections round-trip and reject mismatches") {
    StateWriter w;
    w.begin("uart", 2);
    w.put<uint8_t>(7);
    w.put<uint32_t>(0xdeadbeef);
    StateReader r(w.data());
    CHECK(r.begin("uart", 1, 2) == 2);
    CHECK(r.get<uint8_t>() == 7);
    CHECK(r.get<uint32_t>() == 0xdeadbeef);
    CHECK(r.at_end());

    StateReader bad_name(w.data());
    CHECK_THROWS_AS(bad_name.begin("rtc", 1, 2), StateError);
    StateReader bad_version(w.data());
    CHECK_THROWS_AS(bad_version.begin("uart", 3, 4), StateError);
    StateReader bad_size(w.data());
    bad_size.begin("uart", 1, 2);
    CHECK_THROWS_AS(bad_size.get<uint16_t>(), StateError);
    std::vector<uint8_t> cut(w.data().begin(), w.data().end() - 2);
    StateReader truncated(cut);
    truncated.begin("uart", 1, 2);
    truncated.get<uint8_t>();
    CHECK_THROWS_AS(truncated.get<uint32_t>(), StateError);
}
