// The 8254's CLK input on a PC: the 14.31818 MHz system crystal divided by 12. Every PIT counter
// (and the refresh toggle of port 0x61) counts pulses of this one clock, so all of them share a
// single pulse grid derived from the injected Clock: pulse k happens at the first nanosecond t
// with t * f / 1e9 >= k. Counts read back are then an exact function of the clock time.
#pragma once
#include <cstdint>

namespace hvm {

inline constexpr uint64_t kPitClockHz = 1193182;

// Number of PIT clock pulses that have happened at clock time `ns`.
inline uint64_t pit_ticks_at(uint64_t ns) {
    return uint64_t(static_cast<unsigned __int128>(ns) * kPitClockHz / 1000000000u);
}

// Clock time of pulse `tick` (the first ns at which pit_ticks_at() reaches it).
inline uint64_t pit_tick_time(uint64_t tick) {
    unsigned __int128 t =
        (static_cast<unsigned __int128>(tick) * 1000000000u + kPitClockHz - 1) / kPitClockHz;
    return t > UINT64_MAX ? UINT64_MAX : uint64_t(t);
}

} // namespace hvm
