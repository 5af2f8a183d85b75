// One CPU's local APIC in xAPIC mode (Intel SDM Vol. 3 chapter 10), as QEMU/KVM present it to a
// `pc` guest: version 0x50014 (6 LVT entries, no directed-EOI support), 1 GHz timer input clock,
// BSP LINT0 set to ExtINT at reset so the 8259 works before any OS touches the APIC.
//
// It implements the engine's CpuInterrupts: `pending` is recomputed after every state change and
// `kick` is called when a bit appears. The MMIO page is registered by the machine at
// `mmio_base()` (0 while the APIC is globally disabled), e.g. through ExitDispatcher's
// LocalApicWindow.
//
// Choices worth knowing:
//  - the 8259's INT reaches the CPU as ExtINT when the APIC is globally disabled, or through an
//    unmasked ExtINT LINT0 (virtual wire) whether or not the APIC is software-enabled (KVM's
//    kvm_apic_accept_pic_intr); ExtINT bypasses TPR/PPR and the ISR;
//  - IOAPIC messages in ExtINT mode latch an ExtINT request whose vector the 8259 supplies;
//  - INIT resets the register file (not the ID or IA32_APIC_BASE) and puts an AP into
//    wait-for-SIPI; a SIPI is taken only in that state (or with an INIT still pending). Engines
//    must act on kInit before kSipi. While waiting for SIPI, kIntr and kNmi are held back;
//  - the timer counts at 1 GHz / divider. Periodic interrupts are spaced at least 200 us apart
//    (KVM's min_timer_period_us) so a guest cannot make the timer thread spin; the count register
//    still reads the true count;
//  - the guest TSC for IA32_TSC_DEADLINE is clock_ns * tsc_hz / 1e9 + tsc_offset;
//  - SMI (any source) is dropped: there is no SMM. x2APIC (MSRs 0x800-0x8FF, IA32_APIC_BASE.EXTD)
//    is not implemented: those accesses #GP.
#pragma once
#include <atomic>
#include <cstdint>

#include "base/clock.hpp"
#include "base/log.hpp"
#include "devmodel/device.hpp"
#include "devmodel/irq/apic_bus.hpp"
#include "vcpu/engine.hpp"

namespace hvm {

class LocalApic : public CpuInterrupts, public IoHandler, public Device {
  public:
    struct Config {
        uint8_t apic_id = 0;
        bool bsp = false;
        uint64_t tsc_hz = 0; // guest TSC frequency, for IA32_TSC_DEADLINE; must be nonzero
    };

    static constexpr uint64_t kDefaultBase = 0xFEE00000;
    static constexpr uint64_t kMmioSize = 0x1000;
    static constexpr uint32_t kVersion = 0x00050014;  // version 0x14, max LVT entry 5
    static constexpr uint64_t kBusHz = 1'000'000'000; // timer input clock (QEMU, KVM)
    static constexpr uint64_t kMinPeriodicNs = 200'000;

    // MSRs.
    static constexpr uint32_t kMsrApicBase = 0x1B;
    static constexpr uint32_t kMsrTscDeadline = 0x6E0;
    static constexpr uint64_t kApicBaseBsp = 1ull << 8;
    static constexpr uint64_t kApicBaseExtd = 1ull << 10; // x2APIC enable: not supported
    static constexpr uint64_t kApicBaseEnable = 1ull << 11;
    static constexpr uint64_t kApicBaseAddress = 0x000FFFFFFFFFF000ull;

    // Register offsets in the MMIO page.
    static constexpr uint32_t kRegId = 0x020;
    static constexpr uint32_t kRegVersion = 0x030;
    static constexpr uint32_t kRegTpr = 0x080;
    static constexpr uint32_t kRegApr = 0x090;
    static constexpr uint32_t kRegPpr = 0x0A0;
    static constexpr uint32_t kRegEoi = 0x0B0;
    static constexpr uint32_t kRegRrd = 0x0C0;
    static constexpr uint32_t kRegLdr = 0x0D0;
    static constexpr uint32_t kRegDfr = 0x0E0;
    static constexpr uint32_t kRegSvr = 0x0F0;
    static constexpr uint32_t kRegIsr = 0x100; // 8 registers, 0x10 apart
    static constexpr uint32_t kRegTmr = 0x180;
    static constexpr uint32_t kRegIrr = 0x200;
    static constexpr uint32_t kRegEsr = 0x280;
    static constexpr uint32_t kRegIcrLow = 0x300;
    static constexpr uint32_t kRegIcrHigh = 0x310;
    static constexpr uint32_t kRegLvtTimer = 0x320;
    static constexpr uint32_t kRegLvtThermal = 0x330;
    static constexpr uint32_t kRegLvtPerf = 0x340;
    static constexpr uint32_t kRegLvtLint0 = 0x350;
    static constexpr uint32_t kRegLvtLint1 = 0x360;
    static constexpr uint32_t kRegLvtError = 0x370;
    static constexpr uint32_t kRegTimerInitial = 0x380;
    static constexpr uint32_t kRegTimerCurrent = 0x390;
    static constexpr uint32_t kRegTimerDivide = 0x3E0;

    // Register fields.
    static constexpr uint32_t kSvrEnable = 1u << 8;
    static constexpr uint32_t kSvrFocusDisable = 1u << 9;
    static constexpr uint32_t kLvtVector = 0xFF;
    static constexpr unsigned kLvtDeliveryModeShift = 8;
    static constexpr uint32_t kLvtDeliveryStatus = 1u << 12;
    static constexpr uint32_t kLvtPolarityLow = 1u << 13;
    static constexpr uint32_t kLvtRemoteIrr = 1u << 14;
    static constexpr uint32_t kLvtLevel = 1u << 15;
    static constexpr uint32_t kLvtMasked = 1u << 16;
    static constexpr unsigned kLvtTimerModeShift = 17;
    static constexpr uint32_t kTimerOneShot = 0, kTimerPeriodic = 1, kTimerTscDeadline = 2;
    static constexpr uint32_t kEsrSendIllegalVector = 1u << 5;
    static constexpr uint32_t kEsrReceiveIllegalVector = 1u << 6;
    static constexpr uint32_t kEsrIllegalRegister = 1u << 7;

    LocalApic(ApicBus& bus, Clock& clock, const Config& config);
    ~LocalApic() override;
    LocalApic(const LocalApic&) = delete;
    LocalApic& operator=(const LocalApic&) = delete;

    // ---- CpuInterrupts (device lock held) ----
    int acknowledge_interrupt() override;
    bool acknowledge_nmi() override;
    bool acknowledge_init() override;
    int acknowledge_sipi() override;
    void set_tpr(uint8_t cr8) override;
    uint8_t tpr() const override;
    bool read_msr(uint32_t msr, uint64_t& value) override;
    bool write_msr(uint32_t msr, uint64_t value) override;

    // ---- the xAPIC page: 4-byte accesses at offsets 0..0xFFF ----
    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    // ---- Device ----
    const char* name() const override { return "lapic"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

    // ---- for the machine ----
    std::atomic<uint64_t>& mmio_base() { return mmio_base_; }
    uint8_t apic_id() const { return id_; }
    bool is_bsp() const { return apic_base_ & kApicBaseBsp; }
    bool waiting_for_sipi() const { return wait_for_sipi_; }
    // Guest TSC = clock ns * tsc_hz / 1e9 + offset (wrapping); re-arms a TSC-deadline timer.
    void set_tsc_offset(uint64_t offset);
    uint64_t guest_tsc() const { return guest_tsc_at(clock_.now_ns()); }

    // ---- for ApicBus ----
    bool matches_destination(uint8_t dest, bool logical) const;
    bool accepts_fixed() const { return hw_enabled() && sw_enabled(); }
    uint8_t arbitration_priority() const;
    bool accept(const ApicMessage& msg); // true if taken
    void set_lint(unsigned pin, bool level);

  private:
    enum Lvt : unsigned {
        kLvtTimerIdx,
        kLvtThermalIdx,
        kLvtPerfIdx,
        kLvtLint0Idx,
        kLvtLint1Idx,
        kLvtErrorIdx,
        kLvtCount
    };

    bool hw_enabled() const { return apic_base_ & kApicBaseEnable; }
    bool sw_enabled() const { return svr_ & kSvrEnable; }
    bool accepts_pic() const;
    bool interrupt_deliverable() const;
    uint32_t ppr() const;
    void update_pending();
    void reset_registers();

    uint32_t read_register(uint32_t offset);
    void write_register(uint32_t offset, uint32_t value);
    void write_svr(uint32_t value);
    void write_lvt(unsigned index, uint32_t value);
    bool write_apic_base(uint64_t value);
    void eoi();
    void send_ipi();

    bool accept_vector(uint8_t vector, bool level);
    void local_deliver(unsigned lvt_index);
    void signal_error(uint32_t esr_bits);
    void check_lint_level(unsigned pin);

    // Timer.
    uint32_t timer_mode() const { return (lvt_[kLvtTimerIdx] >> kLvtTimerModeShift) & 3; }
    unsigned divide_shift() const;
    uint64_t period_ns() const { return uint64_t(initial_count_) << divide_shift(); }
    uint32_t current_count(uint64_t now) const;
    void rebase_countdown(uint64_t now, uint32_t count);
    void arm_countdown(uint64_t earliest);
    void arm_tsc_deadline();
    void timer_fired();
    uint64_t guest_tsc_at(uint64_t ns) const;

    ApicBus& bus_;
    Clock& clock_;
    const Config config_;
    Timer timer_;
    std::atomic<uint64_t> mmio_base_{0};
    RateLimiter log_limit_;

    uint8_t id_ = 0;
    uint64_t apic_base_ = 0;
    uint32_t tpr_ = 0, ldr_ = 0, dfr_ = 0, svr_ = 0;
    uint32_t isr_[8] = {}, tmr_[8] = {}, irr_[8] = {};
    uint32_t esr_ = 0, esr_pending_ = 0;
    uint32_t icr_low_ = 0, icr_high_ = 0;
    uint32_t lvt_[kLvtCount] = {};
    uint32_t initial_count_ = 0, divide_ = 0;
    bool countdown_running_ = false;
    uint64_t countdown_start_ns_ = 0; // when the count was `initial_count_` (modular arithmetic)
    uint64_t tsc_deadline_ = 0;
    uint64_t tsc_offset_ = 0;

    bool lint_level_[2] = {false, false};
    bool nmi_pending_ = false, init_pending_ = false, sipi_pending_ = false;
    bool extint_pending_ = false, wait_for_sipi_ = false;
    uint8_t sipi_vector_ = 0;
    bool delivering_error_ = false;
};

} // namespace hvm
