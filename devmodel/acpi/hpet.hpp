// The HPET of QEMU's `pc` at MMIO 0xFED00000 (IA-PC HPET Specification 1.0a; QEMU
// hw/timer/hpet.c). 1 KiB of registers, 64-bit accesses atomic, 32-bit halves as QEMU splits them:
//  - 0x000 GCAP_ID: 0x8086A201 (vendor 8086, LEG_RT_CAP, COUNT_SIZE_CAP 64-bit, 3 timers, rev 1);
//    high dword = period 10,000,000 fs (100 MHz), the value the DSDT's HPET._STA checks.
//  - 0x010 GEN_CONF: ENABLE_CNF runs the main counter and allows interrupts; LEG_RT_CNF routes
//    timer 0 to ISA IRQ 0 (IOAPIC pin 2 through the GSI router) and timer 1 to IRQ 8.
//  - 0x020 GINTR_STA: per-timer status of level-triggered interrupts, write-1-to-clear.
//  - 0x0F0 MAIN_CNT: writable while halted.
//  - 0x100 + 0x20 n, n = 0..2: Tn_CONF_CAP (INT_TYPE, INT_ENB, TYPE periodic, VAL_SET, 32MODE,
//    INT_ROUTE; all timers periodic- and 64-bit-capable, no FSB, as QEMU), its high dword the
//    route capability 0x00000004 (IOAPIC pin 2 only, QEMU's `pc` hpet-intcap); +0x08 comparator;
//    +0x10 FSB route (no FSB: reads 0).
// A route outside the capability is not accepted (the spec's "value read back will not match").
// In 32-bit mode a one-shot timer also interrupts when the counter's low half wraps (spec
// §2.3.9.2.4, QEMU wrap_flag). Periodic timers advance their comparator by whole periods; the
// host timer is never armed more often than every kMinRearmNs (a guest period of 10 ns would
// otherwise spin the timer thread), the guest sees late ticks coalesced.
//
// Legacy replacement also has to silence the PIT's IRQ 0 and the RTC's IRQ 8: as in QEMU, their
// outputs come in through legacy_inputs() (line kPitInput, kRtcInput) and go on to GSI 0 / 8
// only while LEG_RT_CNF is clear. `pit_enabled` (QEMU's pit_enabled GPIO) is told as well, for
// a PIT whose output does not pass through here (KVM's in-kernel PIT: KVM_PIT_FLAGS_HPET_LEGACY).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>

#include "base/clock.hpp"
#include "base/log.hpp"
#include "devmodel/device.hpp"
#include "devmodel/irq/irq_pin.hpp"

namespace hvm {

class Hpet : public IoHandler, public Device {
  public:
    static constexpr uint64_t kBase = 0xFED00000;
    static constexpr uint64_t kLength = 0x400;
    static constexpr unsigned kTimers = 3;
    static constexpr uint64_t kPeriodFs = 10000000; // 10 ns
    static constexpr uint64_t kNsPerTick = 10;
    static constexpr uint64_t kMinRearmNs = 10000;

    static constexpr unsigned kCapId = 0x000, kConfig = 0x010, kIntStatus = 0x020, kCounter = 0x0F0,
                              kTimerBase = 0x100, kTimerStride = 0x20;
    static constexpr unsigned kTnConfig = 0x00, kTnComparator = 0x08, kTnFsbRoute = 0x10;

    static constexpr uint64_t kCfgEnable = 0x1, kCfgLegacy = 0x2;
    static constexpr uint64_t kTnLevel = 1u << 1, kTnIntEnable = 1u << 2, kTnPeriodic = 1u << 3,
                              kTnPeriodicCap = 1u << 4, kTnSizeCap = 1u << 5, kTnSetVal = 1u << 6,
                              kTn32Bit = 1u << 8;
    static constexpr unsigned kTnRouteShift = 9;
    static constexpr uint64_t kTnRouteMask = 0x1Fu << kTnRouteShift;
    static constexpr uint64_t kTnWritable =
        kTnLevel | kTnIntEnable | kTnPeriodic | kTnSetVal | kTn32Bit | kTnRouteMask;
    static constexpr uint32_t kRouteCap = 0x00000004; // IOAPIC pin 2 (QEMU pc hpet-intcap)
    static constexpr uint32_t kCapIdLow = 0x8086A201;

    static constexpr unsigned kPitInput = 0, kRtcInput = 1; // legacy_inputs() lines
    static constexpr unsigned kPitIrq = 0, kRtcIrq = 8;     // ISA IRQs = GSIs

    // `gsi`: the machine's GSI router (GSI n < 16 = ISA IRQ n).
    Hpet(Clock& clock, IrqSink& gsi, std::function<void(bool)> pit_enabled = {});
    ~Hpet() override;
    Hpet(const Hpet&) = delete;
    Hpet& operator=(const Hpet&) = delete;

    // Register at kBase, length kLength, AccessSizes{4, 8}.
    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    // Where the PIT's and the RTC's interrupt outputs plug in.
    IrqSink& legacy_inputs() { return legacy_inputs_; }

    uint64_t main_counter() const;
    bool legacy_mode() const { return config_ & kCfgLegacy; }
    uint32_t interrupt_status() const { return uint32_t(isr_); }

    const char* name() const override { return "hpet"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

  private:
    struct HpetTimer {
        uint64_t config = 0; // low: configuration, high: route capability
        uint64_t cmp = ~0ull;
        uint64_t period = 0;
        bool wrap_flag = false;
        int asserted_route = -1; // GSI this timer holds high (level mode), -1 none
        std::unique_ptr<Timer> timer;
    };
    class LegacyInputs : public IrqSink {
      public:
        explicit LegacyInputs(Hpet& h) : h_(h) {}
        void set_irq(unsigned line, bool level) override;

      private:
        Hpet& h_;
    };

    bool enabled() const { return config_ & kCfgEnable; }
    uint64_t read_reg(uint64_t offset) const; // offset 8-aligned
    void write_reg(uint64_t offset, uint64_t value, uint64_t mask);
    void write_config(uint64_t value);
    void write_timer_config(HpetTimer& t, uint64_t value);
    void write_comparator(HpetTimer& t, uint64_t value, uint64_t mask);
    int route_of(unsigned n) const;
    void update_irq(unsigned n, bool set);
    void set_gsi(unsigned gsi, bool level);
    void drive_lines();
    void set_timer(unsigned n);
    void del_timer(unsigned n);
    void on_timer(unsigned n);
    void arm_in(unsigned n, uint64_t diff_ticks, bool periodic);
    uint64_t diff_to_cmp(const HpetTimer& t, uint64_t now) const;

    Clock& clock_;
    IrqSink& gsi_;
    std::function<void(bool)> pit_enabled_;
    uint64_t config_ = 0;
    uint64_t isr_ = 0;
    uint64_t counter_ = 0; // main counter while halted; value at base_ns_ while running
    uint64_t base_ns_ = 0; // clock time at which the running counter read counter_
    std::array<HpetTimer, kTimers> timers_;
    uint32_t driven_ = 0; // GSIs held high by level-triggered timers
    bool pit_level_ = false, rtc_level_ = false;
    LegacyInputs legacy_inputs_{*this};
    RateLimiter log_limit_{8, 4096};
};

} // namespace hvm
