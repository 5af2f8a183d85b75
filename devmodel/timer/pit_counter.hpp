// One counter of the Intel 8254 / 82C54 (datasheet sections "Programming the 8254", "Read
// Operations" and "Mode Definitions"), modelled as a pure function of the PIT clock-pulse number:
// it owns no Clock and no Timer. Pit8254 passes the current pulse number to every call.
//
// How counting is represented: the counting element (CE) runs in "segments". A segment says from
// which pulse on it applies, how many pulses it had already counted then (`e0`), the count N it
// counts with, and whether GATE lets it count. CE and OUT at any pulse are closed-form functions
// of N and the elapsed pulses, so reading a count or computing the next OUT edge never loops.
// A second, pending segment describes a change that the datasheet delays to a later pulse: a
// count written is loaded into CE on the next CLK pulse (so OUT in mode 0 goes high N+1 pulses
// after the write), a new count in modes 2 and 3 waits for the end of the current period or
// half-period, a GATE trigger reloads on the next pulse.
#pragma once
#include <cstdint>
#include <optional>

#include "base/state.hpp"

namespace hvm {

class PitCounter {
  public:
    // Control word fields (bits 5-4 RW, bits 3-1 M2-M0, bit 0 BCD).
    static constexpr uint8_t kRwLatch = 0, kRwLsb = 1, kRwMsb = 2, kRwWord = 3;

    // Power-on state as QEMU's i8254 sets it: mode 3, LSB-then-MSB, binary, count 0 (65536).
    void reset(bool gate, uint64_t tick);

    // A control word for this counter with RW != 0 (RW == 0 is the counter latch command).
    void write_control(uint8_t control_word, uint64_t tick);
    void latch_count(uint64_t tick);
    void latch_status(uint64_t tick);
    uint8_t read(uint64_t tick);
    void write(uint8_t value, uint64_t tick);
    void set_gate(bool level, uint64_t tick);
    bool gate() const { return gate_; }

    bool out(uint64_t tick) const;
    uint16_t count(uint64_t tick) const; // CE as an unlatched read returns it (BCD if BCD mode)
    bool null_count(uint64_t tick) const;
    uint8_t status(uint64_t tick) const; // the read-back status byte

    // First pulse after `tick` at which OUT may change (nullopt: never, unless reprogrammed).
    std::optional<uint64_t> next_out_change(uint64_t tick) const;
    // Whether OUT has a rising edge at some pulse in (after, upto].
    bool rising_edge_between(uint64_t after, uint64_t upto) const;
    // The period in pulses while counting in mode 2 or 3, else 0.
    uint32_t periodic_ticks(uint64_t tick) const;
    // Makes a pending segment current once its pulse has come. Every mutating call does this
    // itself; Pit8254 calls it after delivering channel 0's edges up to `tick`.
    void promote(uint64_t tick);

    // State is saved relative to `tick` so that it can be restored on another clock.
    void save(StateWriter& out, uint64_t tick) const;
    void load(StateReader& in, uint64_t tick); // throws StateError; *this unchanged on error

  private:
    struct Segment {
        uint64_t start = 0; // first pulse this segment applies to
        uint64_t e0 = 0;    // pulses counted at `start`
        uint32_t n = 0;     // count (1..65536, BCD 1..10000); 0: nothing loaded since the mode
        bool counting = false;
        bool loads_cr = false; // its start transfers CR to CE (clears null count)
        int8_t out_force = -1; // -1: OUT follows the mode's waveform; else OUT is this level
        uint16_t idle_ce = 0;  // CE shown while n == 0 (whatever CE held before the mode write)
    };

    unsigned mode() const { return mode_raw_ > 5 ? mode_raw_ - 4u : mode_raw_; }
    uint32_t modulus() const { return bcd_ ? 10000u : 65536u; }
    uint32_t count_from_cr() const;
    const Segment& effective(uint64_t tick) const;
    static uint64_t elapsed(const Segment& s, uint64_t tick);
    bool segment_out(const Segment& s, uint64_t tick) const;
    std::optional<uint64_t> segment_next_change(const Segment& s, uint64_t tick) const;
    Segment stopped(uint64_t tick) const;
    Segment load_from_cr(uint64_t tick) const;
    void count_written(uint64_t tick);
    static void save_segment(StateWriter& out, const Segment& s);
    Segment load_segment(StateReader& in) const;

    uint8_t mode_raw_ = 3; // M2-M0 as written (6 and 7 are modes 2 and 3); the status returns it
    uint8_t rw_ = kRwWord;
    bool bcd_ = false;
    bool gate_ = false;
    uint16_t cr_ = 0;          // count register as written
    bool write_msb_ = false;   // LSB-then-MSB: next write is the MSB
    bool read_msb_ = false;    // LSB-then-MSB: next unlatched read is the MSB
    bool cr_written_ = false;  // a full count was written since the control word
    bool null_pending_ = true; // null count, until the pending load of CR happens
    uint16_t latched_count_ = 0;
    uint8_t latch_state_ = 0; // 0 none, 1 LSB left, 2 MSB left, 3 LSB then MSB left
    uint8_t latched_status_ = 0;
    bool status_latched_ = false;
    Segment cur_;
    Segment next_;
    bool has_next_ = false;
};

} // namespace hvm
