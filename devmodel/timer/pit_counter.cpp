#include "devmodel/timer/pit_counter.hpp"

#include <algorithm>

namespace hvm {

namespace {

constexpr unsigned kModeInterruptOnTerminalCount = 0;
constexpr unsigned kModeOneShot = 1; // hardware retriggerable
constexpr unsigned kModeRateGenerator = 2;
constexpr unsigned kModeSquareWave = 3;
constexpr unsigned kModeSoftwareStrobe = 4;
constexpr unsigned kModeHardwareStrobe = 5;

// A pending segment can start at most one full count (plus the load pulse) in the future.
constexpr uint64_t kMaxPendingDelay = 65536 + 1;

// Digits above 9 are not valid BCD; they count as 9 so the value stays within 0..9999.
uint32_t bcd_to_binary(uint16_t v) {
    uint32_t r = 0;
    for (int shift = 12; shift >= 0; shift -= 4) r = r * 10 + std::min((v >> shift) & 0xfu, 9u);
    return r;
}

uint16_t binary_to_bcd(uint32_t v) {
    uint16_t r = 0;
    for (int shift = 0; shift < 16; shift += 4) {
        r = uint16_t(r | ((v % 10) << shift));
        v /= 10;
    }
    return r;
}

// CE after `e` pulses of counting count `n` (n >= 1), before reduction to the counter width.
uint32_t ce_after(unsigned mode, uint32_t n, uint64_t e, uint32_t modulus) {
    switch (mode) {
    case kModeRateGenerator:
        // Counts N, N-1, ..., 1 and reloads N on the pulse after 1.
        return (n - uint32_t(e % n)) % modulus;
    case kModeSquareWave: {
        // Even N: N, N-2, ..., 2 in each half. Odd N: N-1 is loaded and counts down by two; the
        // high half lasts one pulse longer ((N+1)/2 pulses), the low half (N-1)/2 pulses.
        uint32_t high = (n + 1) / 2;
        uint32_t p = uint32_t(e % n);
        uint32_t q = p < high ? p : p - high;
        uint32_t top = (n & 1) ? n - 1 : n;
        return (top - 2 * q) % modulus;
    }
    default:
        // Modes 0, 1, 4, 5 count down and wrap (to FFFF, or 9999 in BCD) after terminal count.
        return uint32_t((n + modulus - e % modulus) % modulus);
    }
}

bool out_after(unsigned mode, uint32_t n, uint64_t e) {
    switch (mode) {
    case kModeInterruptOnTerminalCount:
    case kModeOneShot: return e >= n;               // low until terminal count
    case kModeRateGenerator: return e % n != n - 1; // low for the one pulse at CE == 1
    case kModeSquareWave: return e % n < (n + 1) / 2;
    default: return e != n; // modes 4 and 5: low for the one pulse at terminal count
    }
}

} // namespace

uint32_t PitCounter::count_from_cr() const {
    uint32_t v = bcd_ ? bcd_to_binary(cr_) : cr_;
    return v == 0 ? modulus() : v; // 0 is the largest count: 2^16, or 10^4 in BCD
}

const PitCounter::Segment& PitCounter::effective(uint64_t tick) const {
    return has_next_ && tick >= next_.start ? next_ : cur_;
}

uint64_t PitCounter::elapsed(const Segment& s, uint64_t tick) {
    return s.counting && tick > s.start ? s.e0 + (tick - s.start) : s.e0;
}

bool PitCounter::segment_out(const Segment& s, uint64_t tick) const {
    if (s.out_force >= 0) return s.out_force != 0;
    if (s.n == 0) return true;
    return out_after(mode(), s.n, elapsed(s, tick));
}

std::optional<uint64_t> PitCounter::segment_next_change(const Segment& s, uint64_t tick) const {
    if (s.n == 0 || s.out_force >= 0 || !s.counting) return std::nullopt;
    uint64_t t = std::max(tick, s.start);
    uint64_t e = elapsed(s, t);
    uint32_t n = s.n;
    switch (mode()) {
    case kModeInterruptOnTerminalCount:
    case kModeOneShot:
        if (e < n) return t + (n - e);
        return std::nullopt;
    case kModeSoftwareStrobe:
    case kModeHardwareStrobe:
        if (e < n) return t + (n - e);
        if (e == n) return t + 1;
        return std::nullopt;
    case kModeRateGenerator: {
        if (n == 1) return std::nullopt; // illegal count: OUT stays low
        uint32_t p = uint32_t(e % n);
        return t + (p < n - 1 ? n - 1 - p : 1);
    }
    default: {                           // square wave
        if (n == 1) return std::nullopt; // OUT stays high
        uint32_t high = (n + 1) / 2;
        uint32_t p = uint32_t(e % n);
        return t + (p < high ? high - p : n - p);
    }
    }
}

// The current segment, stopped at `tick`: CE and OUT keep their values from then on.
PitCounter::Segment PitCounter::stopped(uint64_t tick) const {
    Segment s = effective(tick);
    s.e0 = elapsed(s, tick);
    s.start = tick;
    s.counting = false;
    return s;
}

// CR transferred to CE on the next CLK pulse; that pulse does not decrement.
PitCounter::Segment PitCounter::load_from_cr(uint64_t tick) const {
    Segment s;
    s.start = tick + 1;
    s.e0 = 0;
    s.n = count_from_cr();
    s.counting = gate_;
    s.loads_cr = true;
    return s;
}

void PitCounter::promote(uint64_t tick) {
    if (!has_next_ || tick < next_.start) return;
    cur_ = next_;
    has_next_ = false;
    if (cur_.loads_cr) null_pending_ = false;
}

void PitCounter::reset(bool gate, uint64_t tick) {
    *this = PitCounter();
    gate_ = gate;
    write_control(uint8_t(kRwWord << 4 | kModeSquareWave << 1), tick);
    write(0, tick);
    write(0, tick);
}

void PitCounter::write_control(uint8_t control_word, uint64_t tick) {
    promote(tick);
    uint8_t rw = (control_word >> 4) & 3;
    if (rw == kRwLatch) {
        latch_count(tick);
        return;
    }
    uint16_t shown = count(tick);
    rw_ = rw;
    mode_raw_ = (control_word >> 1) & 7;
    bcd_ = control_word & 1;
    // "When a Control Word is written to a Counter, all Control Logic is immediately reset and
    // OUT goes to a known initial state": low in mode 0, high in all others.
    Segment idle;
    idle.start = tick;
    idle.out_force = mode() == kModeInterruptOnTerminalCount ? 0 : 1;
    idle.idle_ce = shown;
    cur_ = idle;
    has_next_ = false;
    null_pending_ = true;
    cr_written_ = false;
    write_msb_ = false;
    read_msb_ = false;
    latch_state_ = 0;
    status_latched_ = false;
}

void PitCounter::latch_count(uint64_t tick) {
    // A second latch command before the latched count is read is ignored.
    if (latch_state_ != 0) return;
    latched_count_ = count(tick);
    latch_state_ = rw_ == kRwLsb ? 1 : rw_ == kRwMsb ? 2 : 3;
}

void PitCounter::latch_status(uint64_t tick) {
    if (status_latched_) return;
    latched_status_ = status(tick);
    status_latched_ = true;
}

uint8_t PitCounter::status(uint64_t tick) const {
    return uint8_t((out(tick) ? 0x80 : 0) | (null_count(tick) ? 0x40 : 0) | rw_ << 4 |
                   mode_raw_ << 1 | (bcd_ ? 1 : 0));
}

uint8_t PitCounter::read(uint64_t tick) {
    // With both latched, the status comes first, then the count.
    if (status_latched_) {
        status_latched_ = false;
        return latched_status_;
    }
    switch (latch_state_) {
    case 1: latch_state_ = 0; return uint8_t(latched_count_);
    case 2: latch_state_ = 0; return uint8_t(latched_count_ >> 8);
    case 3: latch_state_ = 2; return uint8_t(latched_count_);
    default: break;
    }
    uint16_t v = count(tick);
    switch (rw_) {
    case kRwLsb: return uint8_t(v);
    case kRwMsb: return uint8_t(v >> 8);
    default: read_msb_ = !read_msb_; return read_msb_ ? uint8_t(v) : uint8_t(v >> 8);
    }
}

void PitCounter::write(uint8_t value, uint64_t tick) {
    promote(tick);
    switch (rw_) {
    case kRwLsb: cr_ = value; break;
    case kRwMsb: cr_ = uint16_t(value << 8); break;
    default:
        if (!write_msb_) {
            cr_ = uint16_t((cr_ & 0xff00) | value);
            write_msb_ = true;
            // Mode 0: "Writing the first byte disables counting. OUT is set low immediately."
            if (mode() == kModeInterruptOnTerminalCount) {
                cur_ = stopped(tick);
                cur_.out_force = 0;
                has_next_ = false;
            }
            return;
        }
        cr_ = uint16_t((cr_ & 0x00ff) | value << 8);
        write_msb_ = false;
        break;
    }
    count_written(tick);
}

void PitCounter::count_written(uint64_t tick) {
    null_pending_ = true;
    bool initial = !cr_written_;
    cr_written_ = true;
    switch (mode()) {
    case kModeInterruptOnTerminalCount:
        // OUT goes low at once and stays low until the new count reaches zero.
        cur_ = stopped(tick);
        cur_.out_force = 0;
        next_ = load_from_cr(tick);
        has_next_ = true;
        break;
    case kModeSoftwareStrobe:
        // Writing the count is the trigger; the current count runs on until the load.
        next_ = load_from_cr(tick);
        has_next_ = true;
        break;
    case kModeOneShot:
    case kModeHardwareStrobe: break; // CR waits for a GATE trigger
    default: {                       // rate generator, square wave
        uint32_t n = count_from_cr();
        if (initial) {
            next_ = load_from_cr(tick);
            if (!gate_) next_.out_force = 1;
            has_next_ = true;
        } else if (has_next_ && next_.loads_cr) {
            // A load is already pending (period end or trigger): it takes the newest CR.
            next_.n = n;
            if (next_.e0 != 0) next_.e0 = (n + 1) / 2;
        } else if (cur_.counting && cur_.n != 0) {
            // "Writing a new count while counting does not affect the current counting
            // sequence": mode 2 loads it at the end of the period, mode 3 at the end of the
            // current half-cycle, where OUT toggles.
            uint64_t e = elapsed(cur_, tick);
            uint32_t n0 = cur_.n;
            uint32_t p = uint32_t(e % n0);
            Segment s;
            s.n = n;
            s.counting = true;
            s.loads_cr = true;
            if (mode() == kModeRateGenerator) {
                s.start = tick + (n0 - p);
            } else {
                uint32_t high = (n0 + 1) / 2;
                if (p < high) {
                    s.start = tick + (high - p);
                    s.e0 = (n + 1) / 2; // the new count starts with the low half
                } else {
                    s.start = tick + (n0 - p);
                }
            }
            next_ = s;
            has_next_ = true;
        }
        // Otherwise GATE is low: the next trigger loads CR.
        break;
    }
    }
}

void PitCounter::set_gate(bool level, uint64_t tick) {
    promote(tick);
    if (level == gate_) return;
    gate_ = level;
    switch (mode()) {
    case kModeInterruptOnTerminalCount:
    case kModeSoftwareStrobe:
        // GATE low suspends counting; OUT is not affected.
        if (!level) {
            cur_ = stopped(tick);
            if (has_next_ && next_.loads_cr)
                next_.counting = false; // the count is still loaded, but does not count
            else
                has_next_ = false; // a resumption that has not happened yet
        } else if (has_next_) {
            next_.counting = true;
        } else if (cur_.n != 0 && cur_.out_force < 0) {
            Segment s = cur_;
            s.e0 = elapsed(cur_, tick) + 1; // counting resumes with the next pulse
            s.start = tick + 1;
            s.counting = true;
            s.loads_cr = false;
            next_ = s;
            has_next_ = true;
        }
        break;
    case kModeOneShot:
    case kModeHardwareStrobe:
        // A rising edge (trigger) loads CR on the next pulse and (re)starts the sequence.
        if (level && cr_written_) {
            next_ = load_from_cr(tick);
            has_next_ = true;
        }
        break;
    default: // rate generator, square wave
        if (!level) {
            // Counting stops and OUT is set high immediately.
            cur_ = stopped(tick);
            cur_.out_force = 1;
            if (has_next_ && next_.start == tick + 1) {
                // The initial count is still loaded on the next pulse, but does not count.
                next_.counting = false;
                next_.out_force = 1;
            } else {
                has_next_ = false; // a reload at the period end: now the next trigger loads CR
            }
        } else if (cr_written_) {
            // The trigger reloads the counter on the next pulse (synchronises the counter).
            next_ = load_from_cr(tick);
            has_next_ = true;
        }
        break;
    }
}

bool PitCounter::out(uint64_t tick) const {
    return segment_out(effective(tick), tick);
}

uint16_t PitCounter::count(uint64_t tick) const {
    const Segment& s = effective(tick);
    if (s.n == 0) return s.idle_ce;
    uint32_t v = ce_after(mode(), s.n, elapsed(s, tick), modulus());
    return bcd_ ? binary_to_bcd(v) : uint16_t(v);
}

bool PitCounter::null_count(uint64_t tick) const {
    return null_pending_ && !(has_next_ && next_.loads_cr && tick >= next_.start);
}

std::optional<uint64_t> PitCounter::next_out_change(uint64_t tick) const {
    std::optional<uint64_t> next = segment_next_change(effective(tick), tick);
    if (has_next_ && next_.start > tick && (!next || next_.start < *next)) next = next_.start;
    return next;
}

bool PitCounter::rising_edge_between(uint64_t after, uint64_t upto) const {
    // OUT alternates, and at most one candidate (a pending segment's start) is not a change, so
    // the first rising edge is at most the third candidate.
    bool level = out(after);
    uint64_t t = after;
    for (int i = 0; i < 4; i++) {
        std::optional<uint64_t> next = next_out_change(t);
        if (!next || *next > upto) return false;
        t = *next;
        bool now = out(t);
        if (now && !level) return true;
        level = now;
    }
    return false;
}

uint32_t PitCounter::periodic_ticks(uint64_t tick) const {
    const Segment& s = effective(tick);
    unsigned m = mode();
    if ((m != kModeRateGenerator && m != kModeSquareWave) || !s.counting || s.n == 0 ||
        s.out_force >= 0)
        return 0;
    return s.n;
}

// --- state ---------------------------------------------------------------------------------

void PitCounter::save_segment(StateWriter& out, const Segment& s) {
    out.put<uint64_t>(s.e0);
    out.put<uint32_t>(s.n);
    out.put<uint8_t>(s.counting);
    out.put<uint8_t>(s.loads_cr);
    out.put<int8_t>(s.out_force);
    out.put<uint16_t>(s.idle_ce);
}

PitCounter::Segment PitCounter::load_segment(StateReader& in) const {
    Segment s;
    s.e0 = in.get<uint64_t>();
    s.n = in.get<uint32_t>();
    uint8_t counting = in.get<uint8_t>();
    uint8_t loads_cr = in.get<uint8_t>();
    s.out_force = in.get<int8_t>();
    s.idle_ce = in.get<uint16_t>();
    if (counting > 1 || loads_cr > 1 || s.out_force < -1 || s.out_force > 1)
        throw StateError("pit8254: bad segment flags");
    if (s.n > modulus()) throw StateError("pit8254: count out of range");
    if (s.n == 0 && s.out_force < 0) throw StateError("pit8254: idle counter without OUT level");
    s.counting = counting;
    s.loads_cr = loads_cr;
    return s;
}

void PitCounter::save(StateWriter& out, uint64_t tick) const {
    PitCounter c = *this;
    c.promote(tick);
    out.put<uint8_t>(c.mode_raw_);
    out.put<uint8_t>(c.rw_);
    out.put<uint8_t>(c.bcd_);
    out.put<uint8_t>(c.gate_);
    out.put<uint16_t>(c.cr_);
    out.put<uint8_t>(c.write_msb_);
    out.put<uint8_t>(c.read_msb_);
    out.put<uint8_t>(c.cr_written_);
    out.put<uint8_t>(c.null_pending_);
    out.put<uint16_t>(c.latched_count_);
    out.put<uint8_t>(c.latch_state_);
    out.put<uint8_t>(c.latched_status_);
    out.put<uint8_t>(c.status_latched_);
    // The current segment as "counted so far"; the pending one as "starts this many pulses on".
    Segment cur = c.cur_;
    cur.e0 = elapsed(c.cur_, tick);
    save_segment(out, cur);
    out.put<uint8_t>(c.has_next_);
    if (c.has_next_) {
        out.put<uint64_t>(c.next_.start - tick);
        save_segment(out, c.next_);
    }
}

void PitCounter::load(StateReader& in, uint64_t tick) {
    PitCounter c;
    c.mode_raw_ = in.get<uint8_t>();
    c.rw_ = in.get<uint8_t>();
    uint8_t bcd = in.get<uint8_t>();
    uint8_t gate = in.get<uint8_t>();
    c.cr_ = in.get<uint16_t>();
    uint8_t write_msb = in.get<uint8_t>();
    uint8_t read_msb = in.get<uint8_t>();
    uint8_t cr_written = in.get<uint8_t>();
    uint8_t null_pending = in.get<uint8_t>();
    c.latched_count_ = in.get<uint16_t>();
    c.latch_state_ = in.get<uint8_t>();
    c.latched_status_ = in.get<uint8_t>();
    uint8_t status_latched = in.get<uint8_t>();
    if (c.mode_raw_ > 7 || c.rw_ == kRwLatch || c.rw_ > kRwWord || c.latch_state_ > 3)
        throw StateError("pit8254: bad counter mode");
    if (bcd > 1 || gate > 1 || write_msb > 1 || read_msb > 1 || cr_written > 1 ||
        null_pending > 1 || status_latched > 1)
        throw StateError("pit8254: bad counter flags");
    c.bcd_ = bcd;
    c.gate_ = gate;
    c.write_msb_ = write_msb;
    c.read_msb_ = read_msb;
    c.cr_written_ = cr_written;
    c.null_pending_ = null_pending;
    c.status_latched_ = status_latched;
    c.cur_ = c.load_segment(in);
    c.cur_.start = tick;
    uint8_t has_next = in.get<uint8_t>();
    if (has_next > 1) throw StateError("pit8254: bad counter flags");
    c.has_next_ = has_next;
    if (c.has_next_) {
        uint64_t delay = in.get<uint64_t>();
        if (delay == 0 || delay > kMaxPendingDelay) throw StateError("pit8254: bad pending load");
        c.next_ = c.load_segment(in);
        c.next_.start = tick + delay;
    }
    *this = c;
}

} // namespace hvm
