#include "devmodel/timer/pit8254.hpp"

#include <algorithm>

namespace hvm {

namespace {
constexpr uint32_t kStateVersion = 1;
}

Pit8254::Pit8254(Clock& clock, IrqPin irq0)
    : clock_(clock), irq0_(irq0), irq_timer_(clock, [this] { on_irq_timer(); }) {
    reset(ResetKind::PowerOn);
}

void Pit8254::reset(ResetKind) {
    uint64_t tick = now_tick();
    for (unsigned i = 0; i < kCounters; i++) counters_[i].reset(/*gate=*/i != 2, tick);
    irq_tick_ = tick;
    last_callback_ns_ = 0;
    drive(counters_[0].out(tick));
    arm_irq_timer();
}

void Pit8254::io_read(uint64_t offset, std::span<uint8_t> data) {
    uint8_t value = 0;
    // The control word register is write-only and reads as 0 (QEMU). Treating port 0x43 as a
    // fourth counter was CVE-2015-3214: only offsets 0-2 ever index a counter.
    if (offset < kCounters) value = counters_[offset].read(now_tick());
    le_store(data, value);
}

void Pit8254::io_write(uint64_t offset, std::span<const uint8_t> data) {
    if (data.empty()) return;
    uint8_t value = data[0];
    uint64_t tick = now_tick();
    if (offset < kCounters) {
        before_change(unsigned(offset), tick);
        counters_[offset].write(value, tick);
        after_change(unsigned(offset), tick);
        return;
    }
    if (offset != kControlWord) return;
    unsigned select = value >> 6;
    if (select == kReadBack) {
        read_back(value, tick);
        return;
    }
    if (((value >> 4) & 3) == PitCounter::kRwLatch) {
        counters_[select].latch_count(tick);
        return;
    }
    before_change(select, tick);
    counters_[select].write_control(value, tick);
    after_change(select, tick);
}

// Read-back command: bits 3-1 select counters 2-1-0; a counter whose count or status is already
// latched keeps its first latch.
void Pit8254::read_back(uint8_t command, uint64_t tick) {
    for (unsigned i = 0; i < kCounters; i++) {
        if (!(command & (2u << i))) continue;
        if (!(command & kReadBackNoCount)) counters_[i].latch_count(tick);
        if (!(command & kReadBackNoStatus)) counters_[i].latch_status(tick);
    }
}

void Pit8254::set_gate2(bool level) {
    uint64_t tick = now_tick();
    counters_[2].set_gate(level, tick);
}

bool Pit8254::out2() {
    return counters_[2].out(now_tick());
}

// Counter 0's edges up to now go out before a change, so a late timer never loses one.
void Pit8254::before_change(unsigned counter, uint64_t tick) {
    if (counter == 0) deliver_irq(tick);
}

void Pit8254::after_change(unsigned counter, uint64_t tick) {
    if (counter != 0) return;
    drive(counters_[0].out(tick)); // e.g. a mode 0 control word lowers OUT at once
    irq_tick_ = tick;
    arm_irq_timer();
}

void Pit8254::deliver_irq(uint64_t tick) {
    if (tick > irq_tick_ && counters_[0].rising_edge_between(irq_tick_, tick)) {
        drive(false);
        drive(true);
    }
    drive(counters_[0].out(tick));
    irq_tick_ = tick;
}

void Pit8254::drive(bool level) {
    if (level == irq_level_) return;
    irq_level_ = level;
    irq0_.set(level);
}

void Pit8254::arm_irq_timer() {
    if (!irq0_.connected()) {
        irq_timer_.cancel();
        return;
    }
    uint64_t tick = now_tick();
    std::optional<uint64_t> next = counters_[0].next_out_change(tick);
    if (!next) {
        irq_timer_.cancel();
        return;
    }
    uint64_t deadline = pit_tick_time(*next);
    uint32_t period = counters_[0].periodic_ticks(tick);
    if (period != 0 && period < kThrottlePeriodTicks)
        deadline = std::max(deadline, last_callback_ns_ + kMinIrqIntervalNs);
    irq_timer_.arm(deadline);
}

void Pit8254::on_irq_timer() {
    last_callback_ns_ = clock_.now_ns();
    uint64_t tick = pit_ticks_at(last_callback_ns_);
    deliver_irq(tick);
    counters_[0].promote(tick);
    arm_irq_timer();
}

void Pit8254::save(StateWriter& out) const {
    uint64_t tick = now_tick();
    out.begin(name(), kStateVersion);
    for (const PitCounter& c : counters_) c.save(out, tick);
    // An edge the timer has not delivered yet (it fires late under load) is delivered on load.
    bool pending_rise = tick > irq_tick_ && counters_[0].rising_edge_between(irq_tick_, tick);
    out.put<uint8_t>(irq_level_);
    out.put<uint8_t>(pending_rise);
}

void Pit8254::load(StateReader& in) {
    in.begin(name(), 1, kStateVersion);
    uint64_t tick = now_tick();
    std::array<PitCounter, kCounters> loaded{};
    for (PitCounter& c : loaded) c.load(in, tick);
    uint8_t level = in.get<uint8_t>();
    uint8_t pending_rise = in.get<uint8_t>();
    if (level > 1 || pending_rise > 1) throw StateError("pit8254: bad IRQ state");

    counters_ = loaded;
    drive(level != 0); // the wire carries what it carried when saved
    if (pending_rise) {
        drive(false);
        drive(true);
    }
    drive(counters_[0].out(tick));
    irq_tick_ = tick;
    last_callback_ns_ = 0;
    arm_irq_timer();
}

} // namespace hvm
