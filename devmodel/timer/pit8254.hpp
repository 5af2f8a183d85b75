// Intel 8254 programmable interval timer at ports 0x40-0x43, as the PC wires it: counter 0's OUT
// is ISA IRQ 0, counter 1 was the DRAM refresh timer, counter 2 drives the speaker and is gated
// and read through port 0x61 (see system_control_port_b.hpp). GATE of counters 0 and 1 is tied
// high. All three count one 1.193182 MHz clock derived from the injected Clock (pit_clock.hpp).
//
// Counter 0's OUT is delivered with a Timer armed at its next edge (never by polling): the pin
// is lowered and raised as the mode's waveform does, so a PIC or IOAPIC sees the rising edges at
// their exact times. For periods shorter than ~50 us (counts below 60 in modes 2 and 3) the
// timer fires at most every 50 us and each firing delivers the rising edge it missed as a pulse:
// a guest cannot make hvm's timer thread spin (KVM's in-kernel PIT clamps such periods too).
#pragma once
#include <array>
#include <cstdint>

#include "base/clock.hpp"
#include "devmodel/device.hpp"
#include "devmodel/irq/irq_pin.hpp"
#include "devmodel/timer/pit_channel2.hpp"
#include "devmodel/timer/pit_clock.hpp"
#include "devmodel/timer/pit_counter.hpp"

namespace hvm {

class Pit8254 final : public IoHandler, public Device, public PitChannel2 {
  public:
    static constexpr uint64_t kBasePort = 0x40;
    static constexpr uint64_t kPortCount = 4; // register with AccessSizes{1, 1}
    static constexpr unsigned kCounters = 3;
    static constexpr uint64_t kControlWord = 3; // offset of port 0x43
    // Control word bits 7-6 (SC) == 3: the read-back command (there is no fourth counter).
    static constexpr uint8_t kReadBack = 3;
    static constexpr uint8_t kReadBackNoCount = 0x20;  // bit 5 = 0 latches the count
    static constexpr uint8_t kReadBackNoStatus = 0x10; // bit 4 = 0 latches the status
    static constexpr uint32_t kThrottlePeriodTicks = 60;
    static constexpr uint64_t kMinIrqIntervalNs = 50000;

    Pit8254(Clock& clock, IrqPin irq0);

    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    const char* name() const override { return "pit8254"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

    bool gate2() override { return counters_[2].gate(); }
    void set_gate2(bool level) override;
    bool out2() override;

  private:
    uint64_t now_tick() const { return pit_ticks_at(clock_.now_ns()); }
    void read_back(uint8_t command, uint64_t tick);
    void before_change(unsigned counter, uint64_t tick);
    void after_change(unsigned counter, uint64_t tick);
    void deliver_irq(uint64_t tick);
    void drive(bool level);
    void arm_irq_timer();
    void on_irq_timer();

    Clock& clock_;
    IrqPin irq0_;
    std::array<PitCounter, kCounters> counters_{};
    Timer irq_timer_;
    bool irq_level_ = false;
    uint64_t irq_tick_ = 0;         // counter 0's OUT has been delivered up to this pulse
    uint64_t last_callback_ns_ = 0; // for the short-period throttle
};

} // namespace hvm
