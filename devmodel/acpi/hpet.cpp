#include "devmodel/acpi/hpet.hpp"

#include <algorithm>

namespace hvm {

namespace {
constexpr uint32_t kStateVersion = 1;
constexpr unsigned kGsiCount = 24;
constexpr uint64_t kMaxArmNs = uint64_t(1) << 62; // "never" without overflowing the clock

bool activating(uint64_t old, uint64_t now, uint64_t bit) {
    return !(old & bit) && (now & bit);
}
bool deactivating(uint64_t old, uint64_t now, uint64_t bit) {
    return (old & bit) && !(now & bit);
}
} // namespace

void Hpet::LegacyInputs::set_irq(unsigned line, bool level) {
    // QEMU hpet_handle_legacy_irq: the PIT and RTC reach their ISA IRQs only outside legacy mode.
    if (line == kPitInput) {
        h_.pit_level_ = level;
        if (!h_.legacy_mode()) h_.gsi_.set_irq(kPitIrq, level);
    } else if (line == kRtcInput) {
        h_.rtc_level_ = level;
        if (!h_.legacy_mode()) h_.gsi_.set_irq(kRtcIrq, level);
    }
}

Hpet::Hpet(Clock& clock, IrqSink& gsi, std::function<void(bool)> pit_enabled)
    : clock_(clock), gsi_(gsi), pit_enabled_(std::move(pit_enabled)) {
    for (unsigned n = 0; n < kTimers; n++) {
        timers_[n].timer = std::make_unique<Timer>(clock_, [this, n] { on_timer(n); });
        timers_[n].config = kTnPeriodicCap | kTnSizeCap | (uint64_t(kRouteCap) << 32);
    }
}

Hpet::~Hpet() = default;

uint64_t Hpet::main_counter() const {
    if (!enabled()) return counter_;
    return counter_ + (clock_.now_ns() - base_ns_) / kNsPerTick;
}

// ---- interrupts ----------------------------------------------------------------------------

int Hpet::route_of(unsigned n) const {
    // Spec §2.3.9.2.1: legacy replacement wires timer 0 to IRQ 0 (IOAPIC pin 2) and timer 1 to
    // IRQ 8; the GSI router applies the IRQ 0 -> pin 2 override.
    if (n <= 1 && legacy_mode()) return n == 0 ? int(kPitIrq) : int(kRtcIrq);
    return int((timers_[n].config & kTnRouteMask) >> kTnRouteShift);
}

void Hpet::set_gsi(unsigned gsi, bool level) {
    if (gsi < kGsiCount) gsi_.set_irq(gsi, level);
}

// Level-triggered timers hold their route high; lines are the OR of the timers on them.
void Hpet::drive_lines() {
    uint32_t want = 0;
    for (const HpetTimer& t : timers_)
        if (t.asserted_route >= 0) want |= 1u << t.asserted_route;
    uint32_t changed = want ^ driven_;
    driven_ = want;
    for (unsigned g = 0; g < kGsiCount; g++)
        if ((changed >> g) & 1) set_gsi(g, (want >> g) & 1);
}

// QEMU update_irq: deassert when told to or when the timer or the HPET is disabled; otherwise a
// level interrupt sets the status bit and holds the line, an edge interrupt pulses it.
void Hpet::update_irq(unsigned n, bool set) {
    HpetTimer& t = timers_[n];
    int route = route_of(n);
    uint64_t bit = uint64_t(1) << n;
    if (!set || !(t.config & kTnIntEnable) || !enabled()) {
        isr_ &= ~bit;
        t.asserted_route = -1;
        drive_lines();
    } else if (t.config & kTnLevel) {
        isr_ |= bit;
        t.asserted_route = route < int(kGsiCount) ? route : -1;
        drive_lines();
    } else {
        isr_ &= ~bit;
        t.asserted_route = -1;
        drive_lines();
        if (route < int(kGsiCount) && !((driven_ >> route) & 1)) {
            set_gsi(unsigned(route), true);
            set_gsi(unsigned(route), false);
        }
    }
}

// ---- comparators ---------------------------------------------------------------------------

// Ticks from `now` to the comparator, at least 1 (QEMU hpet_calculate_diff).
uint64_t Hpet::diff_to_cmp(const HpetTimer& t, uint64_t now) const {
    if (t.config & kTn32Bit) {
        uint32_t d = uint32_t(t.cmp) - uint32_t(now);
        return int32_t(d) > 0 ? d : 1;
    }
    uint64_t d = t.cmp - now;
    return int64_t(d) > 0 ? d : 1;
}

void Hpet::arm_in(unsigned n, uint64_t diff_ticks, bool periodic) {
    uint64_t ns = diff_ticks > kMaxArmNs / kNsPerTick ? kMaxArmNs : diff_ticks * kNsPerTick;
    if (periodic && ns < kMinRearmNs) ns = kMinRearmNs;
    timers_[n].timer->arm(clock_.now_ns() + ns);
}

void Hpet::set_timer(unsigned n) {
    HpetTimer& t = timers_[n];
    uint64_t now = main_counter();
    t.wrap_flag = false;
    uint64_t diff = diff_to_cmp(t, now);
    if ((t.config & kTn32Bit) && !(t.config & kTnPeriodic)) {
        // A 32-bit one-shot timer also fires when the low half of the counter wraps.
        uint32_t wrap_diff = 0xFFFFFFFFu - uint32_t(now);
        if (wrap_diff < uint32_t(diff)) {
            diff = wrap_diff;
            t.wrap_flag = true;
        }
    }
    arm_in(n, diff, false);
}

void Hpet::del_timer(unsigned n) {
    timers_[n].timer->cancel();
    update_irq(n, false);
}

void Hpet::on_timer(unsigned n) {
    HpetTimer& t = timers_[n];
    uint64_t now = main_counter();
    uint64_t period = (t.config & kTn32Bit) ? uint32_t(t.period) : t.period;
    if ((t.config & kTnPeriodic) && period != 0) {
        // Advance by whole periods past the counter (a late host timer coalesces ticks).
        if (t.config & kTn32Bit) {
            uint32_t p = uint32_t(period);
            uint32_t d = uint32_t(now) - uint32_t(t.cmp);
            if (int32_t(d) >= 0) t.cmp = uint32_t(uint32_t(t.cmp) + (uint64_t(d / p) + 1) * p);
        } else {
            uint64_t d = now - t.cmp;
            if (int64_t(d) >= 0) t.cmp += (d / period + 1) * period;
        }
        arm_in(n, diff_to_cmp(t, now), true);
    } else if ((t.config & kTn32Bit) && !(t.config & kTnPeriodic) && t.wrap_flag) {
        arm_in(n, diff_to_cmp(t, now), false);
        t.wrap_flag = false;
    }
    update_irq(n, true);
}

// ---- registers -----------------------------------------------------------------------------

uint64_t Hpet::read_reg(uint64_t offset) const {
    if (offset >= kTimerBase) {
        uint64_t n = (offset - kTimerBase) / kTimerStride;
        if (n >= kTimers) return 0;
        const HpetTimer& t = timers_[n];
        switch ((offset - kTimerBase) % kTimerStride) {
        case kTnConfig: return t.config;
        case kTnComparator: return t.cmp;
        default: return 0; // FSB route: no FSB delivery
        }
    }
    switch (offset) {
    case kCapId: return uint64_t(kCapIdLow) | (kPeriodFs << 32);
    case kConfig: return config_;
    case kIntStatus: return isr_;
    case kCounter: return main_counter();
    default: return 0;
    }
}

void Hpet::io_read(uint64_t offset, std::span<uint8_t> data) {
    uint64_t v = read_reg(offset & ~uint64_t(7));
    if (data.size() == 4 && (offset & 4)) v >>= 32;
    le_store(data, v);
}

void Hpet::io_write(uint64_t offset, std::span<const uint8_t> data) {
    uint64_t v = le_load(data);
    if (data.size() == 8) {
        write_reg(offset, v, ~uint64_t(0));
    } else if (offset & 4) {
        write_reg(offset & ~uint64_t(7), v << 32, 0xFFFFFFFF00000000ull);
    } else {
        write_reg(offset, v, 0xFFFFFFFFull);
    }
}

// `mask` covers the dword(s) the guest wrote; `value` is already in place.
void Hpet::write_reg(uint64_t offset, uint64_t value, uint64_t mask) {
    if (offset >= kTimerBase) {
        uint64_t n = (offset - kTimerBase) / kTimerStride;
        if (n >= kTimers) return;
        HpetTimer& t = timers_[n];
        switch ((offset - kTimerBase) % kTimerStride) {
        case kTnConfig:
            if (mask & 0xFFFFFFFFull) write_timer_config(t, value & 0xFFFFFFFFull);
            break; // the high dword is the read-only route capability
        case kTnComparator: write_comparator(t, value, mask); break;
        default: break;
        }
        return;
    }
    switch (offset) {
    case kConfig:
        if (mask & 0xFFFFFFFFull) write_config(value & 0xFFFFFFFFull);
        break;
    case kIntStatus: {
        uint64_t clear = value & mask & isr_;
        for (unsigned n = 0; n < kTimers; n++)
            if ((clear >> n) & 1) update_irq(n, false);
        break;
    }
    case kCounter:
        // Spec §2.3.6: software writes the counter only while halted. QEMU stores a write to a
        // running counter in a field that halting overwrites, so it never takes effect.
        if (enabled()) {
            if (log_limit_.allow()) LOG_DEBUG("hpet: main counter written while running");
            break;
        }
        counter_ = (counter_ & ~mask) | (value & mask);
        break;
    default: break;
    }
}

void Hpet::write_config(uint64_t value) {
    uint64_t old = config_;
    config_ = (old & ~(kCfgEnable | kCfgLegacy)) | (value & (kCfgEnable | kCfgLegacy));
    if (activating(old, config_, kCfgEnable)) {
        base_ns_ = clock_.now_ns(); // counter_ holds the halted value
        for (unsigned n = 0; n < kTimers; n++)
            if (timers_[n].cmp != ~0ull) set_timer(n);
    } else if (deactivating(old, config_, kCfgEnable)) {
        counter_ = counter_ + (clock_.now_ns() - base_ns_) / kNsPerTick;
        for (unsigned n = 0; n < kTimers; n++) del_timer(n);
    }
    if (activating(old, config_, kCfgLegacy)) {
        // Timers 0 and 1 take over IRQ 0 and 8: the PIT and RTC outputs are cut off.
        if (pit_enabled_) pit_enabled_(false);
        for (unsigned n = 0; n < 2; n++) {
            if (timers_[n].asserted_route >= 0) timers_[n].asserted_route = route_of(n);
        }
        if (!((driven_ >> kPitIrq) & 1)) set_gsi(kPitIrq, false);
        if (!((driven_ >> kRtcIrq) & 1)) set_gsi(kRtcIrq, false);
        drive_lines();
    } else if (deactivating(old, config_, kCfgLegacy)) {
        for (unsigned n = 0; n < 2; n++) {
            if (timers_[n].asserted_route >= 0) timers_[n].asserted_route = route_of(n);
        }
        drive_lines();
        // The PIT and RTC drive their lines again with the levels they have now.
        if (pit_enabled_) pit_enabled_(true);
        if (!((driven_ >> kPitIrq) & 1)) set_gsi(kPitIrq, pit_level_);
        if (!((driven_ >> kRtcIrq) & 1)) set_gsi(kRtcIrq, rtc_level_);
    }
}

void Hpet::write_timer_config(HpetTimer& t, uint64_t value) {
    unsigned n = unsigned(&t - timers_.data());
    uint64_t old = t.config;
    uint64_t route = (value & kTnRouteMask) >> kTnRouteShift;
    if (!((kRouteCap >> route) & 1)) value = (value & ~kTnRouteMask) | (old & kTnRouteMask);
    t.config = (old & ~kTnWritable) | (value & kTnWritable);
    if (t.config & kTn32Bit) {
        t.cmp = uint32_t(t.cmp);
        t.period = uint32_t(t.period);
    }
    if (t.asserted_route >= 0) { // a held level moves with its route
        t.asserted_route = route_of(n);
        drive_lines();
    }
    if (activating(old, t.config, kTnIntEnable) && enabled())
        set_timer(n);
    else if (deactivating(old, t.config, kTnIntEnable))
        del_timer(n);
}

// QEMU hpet_ram_write HPET_TN_CMP: a one-shot comparator, or a periodic one with VAL_SET, takes
// the value; a periodic timer takes it as its period. VAL_SET lasts for one write.
void Hpet::write_comparator(HpetTimer& t, uint64_t value, uint64_t mask) {
    unsigned n = unsigned(&t - timers_.data());
    if (t.config & kTn32Bit) {
        mask &= 0xFFFFFFFFull; // the upper half does not exist in 32-bit mode
        if (!mask) return;
    }
    bool periodic = t.config & kTnPeriodic;
    if (!periodic || (t.config & kTnSetVal)) t.cmp = (t.cmp & ~mask) | (value & mask);
    if (periodic) {
        uint64_t limit = (t.config & kTn32Bit) ? 0x7FFFFFFFull : 0x7FFFFFFFFFFFFFFFull;
        t.period = ((t.period & ~mask) | (value & mask)) & limit;
    }
    t.config &= ~kTnSetVal;
    if (enabled()) set_timer(n);
}

// ---- lifecycle -----------------------------------------------------------------------------

void Hpet::reset(ResetKind) {
    for (unsigned n = 0; n < kTimers; n++) {
        HpetTimer& t = timers_[n];
        t.timer->cancel();
        t.asserted_route = -1;
        t.cmp = ~0ull;
        t.config = kTnPeriodicCap | kTnSizeCap | (uint64_t(kRouteCap) << 32);
        t.period = 0;
        t.wrap_flag = false;
    }
    isr_ = 0;
    drive_lines();
    bool was_legacy = legacy_mode();
    config_ = 0;
    counter_ = 0;
    base_ns_ = 0;
    // QEMU hpet_reset: the PIT is enabled again; the RTC lowers its output on reset as well.
    pit_level_ = false;
    rtc_level_ = false;
    if (pit_enabled_) pit_enabled_(true);
    if (was_legacy) {
        set_gsi(kPitIrq, false);
        set_gsi(kRtcIrq, false);
    }
}

void Hpet::save(StateWriter& out) const {
    uint64_t now_ns = clock_.now_ns();
    out.begin(name(), kStateVersion);
    out.put(config_);
    out.put(isr_);
    out.put<uint64_t>(main_counter());
    for (const HpetTimer& t : timers_) {
        out.put(t.config);
        out.put(t.cmp);
        out.put(t.period);
        out.put<uint8_t>(t.wrap_flag);
        out.put<int32_t>(t.asserted_route);
        out.put<uint8_t>(t.timer->armed());
        out.put<uint64_t>(
            t.timer->armed() && t.timer->deadline() > now_ns ? t.timer->deadline() - now_ns : 0);
    }
    out.put<uint8_t>(pit_level_);
    out.put<uint8_t>(rtc_level_);
}

void Hpet::load(StateReader& in) {
    in.begin(name(), kStateVersion, kStateVersion);
    uint64_t config = in.get<uint64_t>(), isr = in.get<uint64_t>(), counter = in.get<uint64_t>();
    struct Loaded {
        uint64_t config, cmp, period;
        uint8_t wrap, armed;
        int32_t route;
        uint64_t remaining;
    };
    std::array<Loaded, kTimers> lt;
    for (Loaded& l : lt) {
        l.config = in.get<uint64_t>();
        l.cmp = in.get<uint64_t>();
        l.period = in.get<uint64_t>();
        l.wrap = in.get<uint8_t>();
        l.route = in.get<int32_t>();
        l.armed = in.get<uint8_t>();
        l.remaining = in.get<uint64_t>();
    }
    uint8_t pit = in.get<uint8_t>(), rtc = in.get<uint8_t>();

    if (config & ~(kCfgEnable | kCfgLegacy)) throw StateError("hpet: bad configuration");
    if (isr >> kTimers) throw StateError("hpet: bad interrupt status");
    if (pit > 1 || rtc > 1) throw StateError("hpet: bad legacy input levels");
    uint64_t fixed = kTnPeriodicCap | kTnSizeCap | (uint64_t(kRouteCap) << 32);
    for (const Loaded& l : lt) {
        uint64_t route = (l.config & kTnRouteMask) >> kTnRouteShift;
        if ((l.config & ~kTnWritable) != fixed || (route != 0 && !((kRouteCap >> route) & 1)))
            throw StateError("hpet: bad timer configuration");
        if (l.wrap > 1 || l.armed > 1 || l.route < -1 || l.route >= int32_t(kGsiCount))
            throw StateError("hpet: bad timer state");
        if ((l.config & kTn32Bit) && (l.cmp >> 32 || l.period >> 32))
            throw StateError("hpet: 32-bit timer with a 64-bit value");
    }

    uint64_t now_ns = clock_.now_ns();
    config_ = config;
    isr_ = isr;
    counter_ = counter;
    base_ns_ = now_ns;
    pit_level_ = pit != 0;
    rtc_level_ = rtc != 0;
    for (unsigned n = 0; n < kTimers; n++) {
        HpetTimer& t = timers_[n];
        t.config = lt[n].config;
        t.cmp = lt[n].cmp;
        t.period = lt[n].period;
        t.wrap_flag = lt[n].wrap != 0;
        t.asserted_route = lt[n].route;
        t.timer->cancel();
        if (lt[n].armed) t.timer->arm(now_ns + std::min(lt[n].remaining, kMaxArmNs));
    }
    // The lines carry what the loaded state says; the GSI router restores its own view.
    driven_ = 0;
    for (const HpetTimer& t : timers_)
        if (t.asserted_route >= 0) driven_ |= 1u << t.asserted_route;
    if (pit_enabled_) pit_enabled_(!legacy_mode());
}

} // namespace hvm
