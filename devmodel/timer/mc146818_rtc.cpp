#include "devmodel/timer/mc146818_rtc.hpp"

#include <algorithm>

#include "devmodel/timer/civil_time.hpp"

namespace hvm {

namespace {

constexpr uint32_t kStateVersion = 1;
constexpr uint64_t kNsPerSecond = 1000000000;
constexpr uint64_t kCyclesPerSecond = 32768; // the time base crystal
// UIP rises 244 us (8 cycles of 32.768 kHz) before each update (datasheet, "UIP bit").
constexpr uint64_t kUipCycles = 8;
// Saved calendar times beyond this are refused (about 35 million years either way).
constexpr int64_t kMaxSeconds = int64_t(1) << 50;

uint64_t cycles_at(uint64_t ns) {
    return uint64_t(static_cast<unsigned __int128>(ns) * kCyclesPerSecond / kNsPerSecond);
}

// First ns of the divider position at which `cycle` is reached.
uint64_t ns_of_cycle(uint64_t cycle) {
    return uint64_t((static_cast<unsigned __int128>(cycle) * kNsPerSecond + kCyclesPerSecond - 1) /
                    kCyclesPerSecond);
}

bool is_time_index(uint8_t index) {
    switch (index) {
    case Mc146818Rtc::kSeconds:
    case Mc146818Rtc::kMinutes:
    case Mc146818Rtc::kHours:
    case Mc146818Rtc::kDayOfWeek:
    case Mc146818Rtc::kDayOfMonth:
    case Mc146818Rtc::kMonth:
    case Mc146818Rtc::kYear:
    case Mc146818Rtc::kCentury: return true;
    default: return false;
    }
}

constexpr uint8_t kTimeIndices[] = {
    Mc146818Rtc::kSeconds,    Mc146818Rtc::kMinutes, Mc146818Rtc::kHours, Mc146818Rtc::kDayOfWeek,
    Mc146818Rtc::kDayOfMonth, Mc146818Rtc::kMonth,   Mc146818Rtc::kYear,  Mc146818Rtc::kCentury};

// Register B DM: 1 = binary, 0 = BCD. Values are 0..99 here.
uint8_t to_register(uint8_t reg_b, unsigned v) {
    if (reg_b & Mc146818Rtc::kDm) return uint8_t(v);
    return uint8_t((v / 10) << 4 | (v % 10));
}

// Any byte decodes to something (0xFF in BCD is 15*10+15); restarting the clock normalises it.
unsigned from_register(uint8_t reg_b, uint8_t v) {
    if (reg_b & Mc146818Rtc::kDm) return v;
    return (v >> 4) * 10u + (v & 0xfu);
}

uint8_t hour_register(uint8_t reg_b, unsigned hour) {
    if (reg_b & Mc146818Rtc::k24Hour) return to_register(reg_b, hour);
    // 12-hour mode: 12 AM, 1 AM ... 11 AM, 12 PM, 1 PM ...; bit 7 is PM.
    unsigned h12 = hour % 12 ? hour % 12 : 12;
    return uint8_t(to_register(reg_b, h12) | (hour >= 12 ? 0x80 : 0));
}

bool alarm_field_matches(uint8_t alarm, uint8_t value) {
    return (alarm & Mc146818Rtc::kAlarmDontCare) == Mc146818Rtc::kAlarmDontCare || alarm == value;
}

} // namespace

Mc146818Rtc::Mc146818Rtc(Clock& clock, IrqPin irq, int64_t utc_seconds, int64_t offset_seconds,
                         RtcLostTickPolicy policy)
    : clock_(clock), irq_(irq), policy_(policy), periodic_timer_(clock,
                                                                 [this] {
                                                                     sync();
                                                                     st_.reinjected_on_ack = 0;
                                                                     reschedule();
                                                                 }),
      update_timer_(clock, [this] {
          sync();
          reschedule();
      }) {
    // Power-on values as QEMU sets them (and SeaBIOS writes again): 32.768 kHz divider with a
    // 1024 Hz periodic rate, 24-hour BCD, VRT set.
    st_.cmos[kRegA] = 0x26;
    st_.cmos[kRegB] = 0x02;
    st_.cmos[kRegD] = kVrt;
    int64_t start = 0;
    if (__builtin_add_overflow(utc_seconds, offset_seconds, &start)) start = kMaxSeconds;
    st_.seconds = std::clamp(start, -kMaxSeconds, kMaxSeconds);
    st_.synced_ns = clock_.now_ns();
    freeze_time(st_); // the registers show the start time even before the first access
    reschedule();
}

// --- state helpers ---------------------------------------------------------------------------

bool Mc146818Rtc::divider_running(const State& s) {
    return (s.cmos[kRegA] & kDividerMask) == kDivider32k;
}

// The time only counts with the 32.768 kHz divider and SET clear. (QEMU also counts with the
// 4.194304 and 1.048576 MHz selections, which a PC's 32.768 kHz crystal cannot drive.)
bool Mc146818Rtc::clock_running(const State& s) {
    return divider_running(s) && !(s.cmos[kRegB] & kSet);
}

// Periodic rate (datasheet table "Periodic Interrupt Rate"): RS 1 and 2 repeat the rates of
// 8 and 9 (with a 32.768 kHz base); RS = n gives 2^(n-1) divider cycles; 0 disables.
uint32_t Mc146818Rtc::period_cycles(const State& s) {
    unsigned rs = s.cmos[kRegA] & kRateMask;
    if (rs == 0) return 0;
    if (rs <= 2) rs += 7;
    return 1u << (rs - 1);
}

uint8_t Mc146818Rtc::time_register(const State& s, uint8_t index, int64_t seconds) {
    uint8_t b = s.cmos[kRegB];
    CivilTime t = civil_from_seconds(seconds);
    int64_t year = t.year % 10000;
    if (year < 0) year += 10000;
    switch (index) {
    case kSeconds: return to_register(b, t.second);
    case kMinutes: return to_register(b, t.minute);
    case kHours: return hour_register(b, t.hour);
    case kDayOfWeek: return to_register(b, t.weekday + 1); // 1 = Sunday
    case kDayOfMonth: return to_register(b, t.day);
    case kMonth: return to_register(b, t.month);
    case kYear: return to_register(b, unsigned(year % 100));
    case kCentury: return to_register(b, unsigned(year / 100)); // in the DM format, as QEMU
    default: return s.cmos[index];
    }
}

// Stopping the clock: the registers keep the time it had.
void Mc146818Rtc::freeze_time(State& s) {
    for (uint8_t i : kTimeIndices) s.cmos[i] = time_register(s, i, s.seconds);
}

// Starting it: the registers, in the current format, become the calendar seconds.
void Mc146818Rtc::thaw_time(State& s) {
    uint8_t b = s.cmos[kRegB];
    uint8_t hours = s.cmos[kHours];
    int64_t hour = from_register(b, hours & 0x7f);
    if (!(b & k24Hour)) hour = hour % 12 + ((hours & 0x80) ? 12 : 0);
    int64_t year =
        from_register(b, s.cmos[kYear]) + 100 * int64_t(from_register(b, s.cmos[kCentury]));
    s.seconds = seconds_from_civil(
        year, from_register(b, s.cmos[kMonth]), from_register(b, s.cmos[kDayOfMonth]), hour,
        from_register(b, s.cmos[kMinutes]), from_register(b, s.cmos[kSeconds]));
}

// The alarm compares register bytes, so it must match in the current format. The pattern
// repeats every day, so at most the last day of a long gap needs checking.
bool Mc146818Rtc::alarm_matched(const State& s, int64_t before, int64_t after) {
    int64_t n = std::min<int64_t>(after - before, 86400);
    for (int64_t k = 0; k < n; k++) {
        int64_t t = after - k;
        if (alarm_field_matches(s.cmos[kSecondsAlarm], time_register(s, kSeconds, t)) &&
            alarm_field_matches(s.cmos[kMinutesAlarm], time_register(s, kMinutes, t)) &&
            alarm_field_matches(s.cmos[kHoursAlarm], time_register(s, kHours, t)))
            return true;
    }
    return false;
}

// Brings `s` to clock time `now`: moves the divider chain, counts update cycles (UF, AF) and
// periodic tap edges (PF), and counts the periodic interrupts that found PF still set.
void Mc146818Rtc::advance(State& s, uint64_t now) const {
    if (now <= s.synced_ns) return;
    uint64_t elapsed = now - s.synced_ns;
    s.synced_ns = now;
    if (!divider_running(s)) return;

    uint64_t total = s.phase_ns + elapsed;
    uint64_t whole_seconds = total / kNsPerSecond;
    if (uint32_t p = period_cycles(s)) {
        uint64_t edges = cycles_at(total) / p - cycles_at(s.phase_ns) / p;
        if (edges != 0) {
            if (policy_ == RtcLostTickPolicy::Reinject && (s.cmos[kRegB] & kPie)) {
                uint64_t lost = (s.cmos[kRegC] & kPf) ? edges : edges - 1;
                uint64_t cap = kCyclesPerSecond / p; // replay at most one second of ticks
                s.coalesced = uint32_t(std::min<uint64_t>(cap, s.coalesced + lost));
            }
            s.cmos[kRegC] |= kPf;
        }
    }
    // SET inhibits update cycles; the divider chain (and so the periodic rate) keeps running.
    if (whole_seconds != 0 && !(s.cmos[kRegB] & kSet)) {
        int64_t before = s.seconds;
        s.seconds = std::min<int64_t>(s.seconds + int64_t(whole_seconds), kMaxSeconds);
        s.cmos[kRegC] |= kUf;
        if (s.seconds > before && alarm_matched(s, before, s.seconds)) s.cmos[kRegC] |= kAf;
    }
    s.phase_ns = total % kNsPerSecond;
}

// --- register access -------------------------------------------------------------------------

void Mc146818Rtc::sync() {
    advance(st_, clock_.now_ns());
    uint8_t& c = st_.cmos[kRegC];
    // IRQF = PF.PIE + AF.AIE + UF.UIE; the line follows IRQF.
    if (c & st_.cmos[kRegB] & kIrqSources) c |= kIrqf;
    drive(c & kIrqf);
}

void Mc146818Rtc::drive(bool level) {
    if (level == irq_level_) return;
    irq_level_ = level;
    irq_.set(level);
}

bool Mc146818Rtc::update_in_progress() const {
    return clock_running(st_) && cycles_at(st_.phase_ns) >= kCyclesPerSecond - kUipCycles;
}

void Mc146818Rtc::io_read(uint64_t offset, std::span<uint8_t> data) {
    // The index register is write-only; QEMU reads it as 0xFF.
    uint8_t value = offset == 1 ? read_register(index_, /*acknowledge=*/true) : 0xff;
    le_store(data, value);
}

void Mc146818Rtc::io_write(uint64_t offset, std::span<const uint8_t> data) {
    if (data.empty()) return;
    if (offset == 0) {
        // Only 7 bits address the CMOS: no index can reach past its 128 bytes.
        index_ = data[0] & kIndexMask;
        nmi_masked_ = data[0] & kNmiDisable;
    } else if (offset == 1) {
        write_register(index_, data[0]);
    }
}

uint8_t Mc146818Rtc::cmos_read(unsigned index) {
    if (index >= kCmosSize) return 0xff;
    return read_register(uint8_t(index), /*acknowledge=*/false);
}

void Mc146818Rtc::cmos_write(unsigned index, uint8_t value) {
    if (index >= kCmosSize) return;
    write_register(uint8_t(index), value);
}

uint8_t Mc146818Rtc::read_register(uint8_t index, bool ack) {
    if (index == kPs2Century) index = kCentury;
    sync();
    if (is_time_index(index))
        return clock_running(st_) ? time_register(st_, index, st_.seconds) : st_.cmos[index];
    switch (index) {
    case kRegA: return uint8_t(st_.cmos[kRegA] | (update_in_progress() ? kUip : 0));
    case kRegC: {
        uint8_t value = st_.cmos[kRegC];
        if (ack) acknowledge();
        return value;
    }
    case kRegD: return kVrt; // the battery is always good
    default: return st_.cmos[index];
    }
}

// Reading register C clears its flags and releases IRQ 8 (the IRQ pin is IRQF).
void Mc146818Rtc::acknowledge() {
    st_.cmos[kRegC] = 0;
    drive(false);
    if (policy_ == RtcLostTickPolicy::Reinject && st_.coalesced != 0 && (st_.cmos[kRegB] & kPie) &&
        st_.reinjected_on_ack < kMaxReinjectOnAck) {
        st_.coalesced--;
        st_.reinjected_on_ack++;
        st_.cmos[kRegC] = kIrqf | kPf;
        drive(true);
    }
    reschedule();
}

void Mc146818Rtc::write_register(uint8_t index, uint8_t value) {
    if (index == kPs2Century) index = kCentury;
    sync();
    if (is_time_index(index)) {
        if (clock_running(st_)) {
            // Takes effect at once; the divider phase (time to the next update) is kept.
            freeze_time(st_);
            st_.cmos[index] = value;
            thaw_time(st_);
        } else {
            st_.cmos[index] = value;
        }
    } else {
        switch (index) {
        case kRegA: write_reg_a(value); break;
        case kRegB: write_reg_b(value); break;
        case kRegC:
        case kRegD: break;                       // read-only
        default: st_.cmos[index] = value; break; // alarms and RAM
        }
    }
    reschedule();
}

void Mc146818Rtc::write_reg_a(uint8_t value) {
    uint8_t old = st_.cmos[kRegA];
    bool was_running = clock_running(st_);
    if (was_running) freeze_time(st_);
    uint8_t old_dv = old & kDividerMask;
    uint8_t new_dv = value & kDividerMask;
    st_.cmos[kRegA] = value & ~kUip; // UIP is read-only
    if ((new_dv & 0x60) == 0x60) {
        st_.phase_ns = 0; // DV = 11x holds the divider chain in reset
    } else if ((old_dv & 0x60) == 0x60 && new_dv == kDivider32k) {
        // "When the divider reset is removed, the first update cycle begins one-half second
        // later" (datasheet; QEMU does the same).
        st_.phase_ns = kNsPerSecond / 2;
    }
    if (!was_running && clock_running(st_)) thaw_time(st_);
    if ((old ^ value) & kRateMask) st_.coalesced = 0; // lost ticks of another rate
}

void Mc146818Rtc::write_reg_b(uint8_t value) {
    uint8_t old = st_.cmos[kRegB];
    bool was_running = clock_running(st_);
    // "UIE is cleared when SET goes high" (datasheet; QEMU too).
    if (value & kSet) value &= uint8_t(~kUie);
    if (was_running && (value & kSet)) freeze_time(st_); // in the format it ran in
    st_.cmos[kRegB] = value;
    if (!was_running && clock_running(st_)) thaw_time(st_); // in the format now declared
    // A flag already set raises IRQ 8 as soon as its enable is set; IRQF follows the enables.
    uint8_t& c = st_.cmos[kRegC];
    if (c & value & kIrqSources) {
        c |= kIrqf;
        drive(true);
    } else {
        c &= uint8_t(~kIrqf);
        drive(false);
    }
    if ((old & kPie) && !(value & kPie)) st_.coalesced = 0;
}

// Timers only for what can still change the IRQ line: the next periodic edge while PIE is set
// (under Discard, none is needed while PF is still set), the next update cycle while UIE or AIE
// is set and its flag is clear.
void Mc146818Rtc::reschedule() {
    const uint8_t b = st_.cmos[kRegB], c = st_.cmos[kRegC];
    uint32_t p = period_cycles(st_);
    bool periodic = divider_running(st_) && (b & kPie) && p != 0 &&
                    (policy_ == RtcLostTickPolicy::Reinject || !(c & kPf));
    if (periodic) {
        uint64_t next_cycle = (cycles_at(st_.phase_ns) / p + 1) * p;
        periodic_timer_.arm(st_.synced_ns + ns_of_cycle(next_cycle) - st_.phase_ns);
    } else {
        periodic_timer_.cancel();
    }
    bool update = clock_running(st_) && (((b & kUie) && !(c & kUf)) || ((b & kAie) && !(c & kAf)));
    if (update)
        update_timer_.arm(st_.synced_ns + kNsPerSecond - st_.phase_ns);
    else
        update_timer_.cancel();
}

// --- lifecycle -------------------------------------------------------------------------------

// The RTC is battery-backed: time and RAM survive; interrupt enables and flags do not (QEMU's
// rtc_reset). The shutdown status byte is cleared unless it asks for S3 resume (0xFE).
void Mc146818Rtc::reset(ResetKind) {
    sync();
    if (st_.cmos[kShutdownStatus] != 0xfe) st_.cmos[kShutdownStatus] = 0;
    st_.cmos[kRegB] &= uint8_t(~(kPie | kAie | kSqwe));
    st_.cmos[kRegC] = 0;
    st_.coalesced = 0;
    st_.reinjected_on_ack = 0;
    drive(false);
    reschedule();
}

void Mc146818Rtc::save(StateWriter& out) const {
    State s = st_;
    advance(s, clock_.now_ns());
    if (s.cmos[kRegC] & s.cmos[kRegB] & kIrqSources) s.cmos[kRegC] |= kIrqf;
    if (clock_running(s)) freeze_time(s); // the time registers show the saved time
    out.begin(name(), kStateVersion);
    out.put_bytes(s.cmos);
    out.put<int64_t>(s.seconds);
    out.put<uint64_t>(s.phase_ns);
    out.put<uint32_t>(s.coalesced);
    out.put<uint32_t>(s.reinjected_on_ack);
    out.put<uint8_t>(index_);
    out.put<uint8_t>(nmi_masked_);
}

void Mc146818Rtc::load(StateReader& in) {
    in.begin(name(), 1, kStateVersion);
    State s;
    in.get_bytes(s.cmos);
    s.seconds = in.get<int64_t>();
    s.phase_ns = in.get<uint64_t>();
    s.coalesced = in.get<uint32_t>();
    s.reinjected_on_ack = in.get<uint32_t>();
    uint8_t index = in.get<uint8_t>();
    uint8_t nmi = in.get<uint8_t>();
    if (s.seconds < -kMaxSeconds || s.seconds > kMaxSeconds)
        throw StateError("mc146818rtc: time out of range");
    if (s.phase_ns >= kNsPerSecond) throw StateError("mc146818rtc: bad divider phase");
    if (index > kIndexMask || nmi > 1) throw StateError("mc146818rtc: bad index register");
    if (s.cmos[kRegA] & kUip) throw StateError("mc146818rtc: bad register A");
    if (s.cmos[kRegC] & 0x0f) throw StateError("mc146818rtc: bad register C");
    if (s.cmos[kRegD] != kVrt) throw StateError("mc146818rtc: bad register D");
    if (s.coalesced > kCyclesPerSecond || s.reinjected_on_ack > kMaxReinjectOnAck)
        throw StateError("mc146818rtc: bad lost-tick counts");
    if (policy_ == RtcLostTickPolicy::Discard) s.coalesced = 0;
    // IRQF is derived from the flags and enables.
    s.cmos[kRegC] &= kIrqSources;
    if (s.cmos[kRegC] & s.cmos[kRegB] & kIrqSources) s.cmos[kRegC] |= kIrqf;
    s.synced_ns = clock_.now_ns();

    st_ = s;
    index_ = index;
    nmi_masked_ = nmi;
    drive(st_.cmos[kRegC] & kIrqf); // the IRQ pin is IRQF
    reschedule();
}

} // namespace hvm
