#include "devmodel/irq/local_apic.hpp"

#include <stdexcept>

namespace hvm {

namespace {

constexpr uint32_t kLvtWritable[] = {
    // timer: vector, mask, timer mode
    LocalApic::kLvtVector | LocalApic::kLvtMasked | (3u << LocalApic::kLvtTimerModeShift),
    // thermal, performance counter: vector, delivery mode, mask
    LocalApic::kLvtVector | (7u << LocalApic::kLvtDeliveryModeShift) | LocalApic::kLvtMasked,
    LocalApic::kLvtVector | (7u << LocalApic::kLvtDeliveryModeShift) | LocalApic::kLvtMasked,
    // LINT0, LINT1: also polarity and trigger mode
    LocalApic::kLvtVector | (7u << LocalApic::kLvtDeliveryModeShift) | LocalApic::kLvtPolarityLow |
        LocalApic::kLvtLevel | LocalApic::kLvtMasked,
    LocalApic::kLvtVector | (7u << LocalApic::kLvtDeliveryModeShift) | LocalApic::kLvtPolarityLow |
        LocalApic::kLvtLevel | LocalApic::kLvtMasked,
    // error: vector, mask
    LocalApic::kLvtVector | LocalApic::kLvtMasked,
};

// ICR low: vector, delivery mode, destination mode, level, trigger mode, shorthand. Delivery
// status (bit 12) always reads idle: messages are delivered at once.
constexpr uint32_t kIcrLowWritable = 0x000CCFFF;
constexpr uint32_t kIcrLevelAssert = 1u << 14;
constexpr uint32_t kIcrTriggerLevel = 1u << 15;
constexpr uint32_t kIcrDestLogical = 1u << 11;
constexpr uint32_t kDestFieldMask = 0xFF000000; // ICR high, LDR
constexpr uint32_t kDfrModelFlat = 0xF;
constexpr uint32_t kDfrModelCluster = 0x0;
constexpr uint32_t kSvrWritable = 0x3FF; // vector, APIC enable, focus check; no EOI suppression
constexpr uint32_t kDivideWritable = 0xB;
constexpr uint32_t kEsrDefined = 0xFF;
constexpr uint64_t kApicBaseReserved =
    ~(LocalApic::kApicBaseAddress | LocalApic::kApicBaseEnable | LocalApic::kApicBaseBsp);
constexpr uint64_t kMaxTimerDelayNs = 1ull << 62;
constexpr uint32_t kStateVersion = 1;

int highest_bit(const uint32_t (&bank)[8]) {
    for (int i = 7; i >= 0; i--)
        if (bank[i]) return i * 32 + (31 - __builtin_clz(bank[i]));
    return -1;
}
bool test_bit(const uint32_t (&bank)[8], unsigned v) {
    return bank[v >> 5] & (1u << (v & 31));
}
void set_bit(uint32_t (&bank)[8], unsigned v) {
    bank[v >> 5] |= 1u << (v & 31);
}
void clear_bit(uint32_t (&bank)[8], unsigned v) {
    bank[v >> 5] &= ~(1u << (v & 31));
}

} // namespace

LocalApic::LocalApic(ApicBus& bus, Clock& clock, const Config& config)
    : bus_(bus), clock_(clock), config_(config), timer_(clock, [this] { timer_fired(); }) {
    if (config.tsc_hz == 0) throw std::invalid_argument("lapic: TSC frequency must be nonzero");
    reset(ResetKind::PowerOn);
}

LocalApic::~LocalApic() {
    bus_.detach(*this);
}

// ---- state helpers ---------------------------------------------------------------------------

// Power-on / INIT values of the register file (SDM §10.4.7.1). ID and IA32_APIC_BASE are the
// caller's business.
void LocalApic::reset_registers() {
    tpr_ = 0;
    ldr_ = 0;
    dfr_ = 0xFFFFFFFF;
    svr_ = 0xFF;
    for (unsigned i = 0; i < 8; i++) isr_[i] = tmr_[i] = irr_[i] = 0;
    esr_ = esr_pending_ = 0;
    icr_low_ = icr_high_ = 0;
    for (auto& l : lvt_) l = kLvtMasked;
    // QEMU and KVM start the BSP in virtual-wire mode: the 8259 reaches it through LINT0.
    if (config_.bsp)
        lvt_[kLvtLint0Idx] = uint32_t(ApicDeliveryMode::ExtInt) << kLvtDeliveryModeShift;
    initial_count_ = 0;
    divide_ = 0;
    countdown_running_ = false;
    countdown_start_ns_ = 0;
    tsc_deadline_ = 0;
    extint_pending_ = false;
    timer_.cancel();
}

void LocalApic::reset(ResetKind) {
    id_ = config_.apic_id;
    apic_base_ = kDefaultBase | kApicBaseEnable | (config_.bsp ? kApicBaseBsp : 0);
    reset_registers();
    nmi_pending_ = init_pending_ = sipi_pending_ = false;
    sipi_vector_ = 0;
    wait_for_sipi_ = !config_.bsp; // APs wait for the BSP's INIT-SIPI-SIPI
    mmio_base_.store(kDefaultBase, std::memory_order_relaxed);
    update_pending();
}

// The PIC's INT is taken as ExtINT when the APIC is globally disabled (LINT0 is then the INTR
// pin) or LINT0 is an unmasked ExtINT entry.
bool LocalApic::accepts_pic() const {
    if (!hw_enabled()) return true;
    uint32_t lint0 = lvt_[kLvtLint0Idx];
    return !(lint0 & kLvtMasked) &&
           ((lint0 >> kLvtDeliveryModeShift) & 7) == uint32_t(ApicDeliveryMode::ExtInt);
}

// SDM §10.8.3.1: PPR is the TPR or the class of the highest in-service vector, whichever is higher.
uint32_t LocalApic::ppr() const {
    int isrv = highest_bit(isr_);
    uint32_t isr_class = isrv < 0 ? 0 : uint32_t(isrv) & 0xF0;
    return (tpr_ & 0xF0) >= isr_class ? tpr_ : isr_class;
}

// SDM §10.6.2.4 / §10.8.3.1 (APR): the priority this APIC bids with in lowest-priority arbitration.
uint8_t LocalApic::arbitration_priority() const {
    int irrv = highest_bit(irr_), isrv = highest_bit(isr_);
    uint32_t irr_class = irrv < 0 ? 0 : uint32_t(irrv) & 0xF0;
    uint32_t isr_class = isrv < 0 ? 0 : uint32_t(isrv) & 0xF0;
    uint32_t tpr_class = tpr_ & 0xF0;
    if (tpr_class >= irr_class && tpr_class > isr_class) return uint8_t(tpr_);
    uint32_t m = tpr_class > isr_class ? tpr_class : isr_class;
    return uint8_t(m > irr_class ? m : irr_class);
}

bool LocalApic::interrupt_deliverable() const {
    if (accepts_pic() && lint_level_[0]) return true;
    if (!hw_enabled()) return false;
    if (extint_pending_) return true;
    if (!sw_enabled()) return false;
    int v = highest_bit(irr_);
    return v >= 0 && (uint32_t(v) & 0xF0) > (ppr() & 0xF0);
}

void LocalApic::update_pending() {
    uint32_t p = 0;
    if (!wait_for_sipi_) {
        if (interrupt_deliverable()) p |= kIntr;
        if (nmi_pending_) p |= kNmi;
    }
    if (init_pending_) p |= kInit;
    if (sipi_pending_) p |= kSipi;
    uint32_t old = pending.exchange(p);
    if ((p & ~old) && kick) kick();
}

bool LocalApic::matches_destination(uint8_t dest, bool logical) const {
    if (dest == 0xFF) return true; // broadcast, physical or logical (as KVM treats it)
    if (!logical) return dest == id_;
    uint8_t ldr = uint8_t(ldr_ >> 24);
    switch (dfr_ >> 28) {
    case kDfrModelFlat: return (dest & ldr) != 0;
    case kDfrModelCluster: return (dest >> 4) == (ldr >> 4) && (dest & ldr & 0x0F) != 0;
    default: return false; // reserved model
    }
}

// ---- receiving ---------------------------------------------------------------------------------

bool LocalApic::accept_vector(uint8_t vector, bool level) {
    if (vector < 16) {
        // Vectors 0-15 are reserved for exceptions: refused and logged in ESR (SDM §10.5.3).
        signal_error(kEsrReceiveIllegalVector);
        return false;
    }
    set_bit(irr_, vector);
    if (level)
        set_bit(tmr_, vector);
    else
        clear_bit(tmr_, vector);
    update_pending();
    return true;
}

bool LocalApic::accept(const ApicMessage& msg) {
    if (!hw_enabled()) return false;
    switch (msg.mode) {
    case ApicDeliveryMode::Fixed:
    case ApicDeliveryMode::LowestPriority:
        // A software-disabled APIC refuses fixed interrupts but still takes NMI/INIT/SIPI
        // (SDM §10.4.7.2).
        if (!sw_enabled()) return false;
        return accept_vector(msg.vector, msg.level_trigger);
    case ApicDeliveryMode::Nmi: nmi_pending_ = true; break;
    case ApicDeliveryMode::Init:
        if (!msg.assert) return false;
        init_pending_ = true;
        break;
    case ApicDeliveryMode::Startup:
        if (!wait_for_sipi_ && !init_pending_) return true; // ignored outside wait-for-SIPI
        sipi_vector_ = msg.vector;
        sipi_pending_ = true;
        break;
    case ApicDeliveryMode::ExtInt: extint_pending_ = true; break;
    case ApicDeliveryMode::Smi:
    default:
        if (log_limit_.allow()) LOG_DEBUG("lapic %u: SMI dropped (no SMM)", id_);
        return false;
    }
    update_pending();
    return true;
}

// Delivers a local interrupt through its LVT entry.
void LocalApic::local_deliver(unsigned index) {
    uint32_t lvt = lvt_[index];
    if (lvt & kLvtMasked) return;
    bool has_mode = index != kLvtTimerIdx && index != kLvtErrorIdx;
    auto mode =
        has_mode ? ApicDeliveryMode((lvt >> kLvtDeliveryModeShift) & 7) : ApicDeliveryMode::Fixed;
    switch (mode) {
    case ApicDeliveryMode::Fixed: accept_vector(uint8_t(lvt & kLvtVector), false); return;
    case ApicDeliveryMode::Nmi: nmi_pending_ = true; break;
    case ApicDeliveryMode::Init: init_pending_ = true; break;
    case ApicDeliveryMode::ExtInt: break; // level-sensitive, see set_lint()
    default:
        if (log_limit_.allow()) LOG_DEBUG("lapic %u: LVT %u delivery mode unsupported", id_, index);
        return;
    }
    update_pending();
}

void LocalApic::signal_error(uint32_t esr_bits) {
    esr_pending_ |= esr_bits;
    // An error LVT with an illegal vector must not recurse into another error.
    if (delivering_error_) return;
    delivering_error_ = true;
    local_deliver(kLvtErrorIdx);
    delivering_error_ = false;
}

// A level-triggered fixed LINT0 entry requests while its line is high and Remote IRR is clear.
void LocalApic::check_lint_level(unsigned pin) {
    uint32_t& lvt = lvt_[kLvtLint0Idx + pin];
    bool fixed = ((lvt >> kLvtDeliveryModeShift) & 7) == uint32_t(ApicDeliveryMode::Fixed);
    // LINT1 is always edge-sensitive (SDM §10.5.1, trigger mode note).
    if (pin != 0 || !fixed || !(lvt & kLvtLevel) || (lvt & kLvtMasked)) return;
    if (!lint_level_[pin] || (lvt & kLvtRemoteIrr)) return;
    if (accept_vector(uint8_t(lvt & kLvtVector), true)) lvt |= kLvtRemoteIrr;
}

void LocalApic::set_lint(unsigned pin, bool level) {
    if (pin > 1) return;
    bool was = lint_level_[pin];
    lint_level_[pin] = level;
    if (!hw_enabled()) {
        // Globally disabled: LINT0 is the INTR pin and LINT1 the NMI pin.
        if (pin == 1 && level && !was) nmi_pending_ = true;
        update_pending();
        return;
    }
    uint32_t lvt = lvt_[kLvtLint0Idx + pin];
    auto mode = ApicDeliveryMode((lvt >> kLvtDeliveryModeShift) & 7);
    bool level_fixed = pin == 0 && mode == ApicDeliveryMode::Fixed && (lvt & kLvtLevel);
    if (level_fixed)
        check_lint_level(pin);
    else if (mode != ApicDeliveryMode::ExtInt && level && !was)
        local_deliver(kLvtLint0Idx + pin);
    update_pending();
}

// ---- CpuInterrupts -----------------------------------------------------------------------------

int LocalApic::acknowledge_interrupt() {
    int vector = -1;
    ExtIntController* pic = bus_.ext_int();
    if (hw_enabled() && extint_pending_) {
        extint_pending_ = false;
        if (pic) vector = pic->acknowledge();
    } else if (accepts_pic() && lint_level_[0]) {
        // ExtINT ignores the TPR/PPR and never enters the ISR (SDM §10.5.1).
        if (pic) vector = pic->acknowledge();
    } else if (accepts_fixed()) {
        int v = highest_bit(irr_);
        if (v >= 0 && (uint32_t(v) & 0xF0) > (ppr() & 0xF0)) {
            clear_bit(irr_, unsigned(v));
            set_bit(isr_, unsigned(v));
            vector = v;
        }
    }
    update_pending();
    return vector;
}

bool LocalApic::acknowledge_nmi() {
    if (!nmi_pending_ || wait_for_sipi_) return false;
    nmi_pending_ = false;
    update_pending();
    return true;
}

bool LocalApic::acknowledge_init() {
    if (!init_pending_) return false;
    init_pending_ = false;
    // INIT: power-on register state except the ID and IA32_APIC_BASE (SDM §10.4.7.3).
    reset_registers();
    nmi_pending_ = false;
    wait_for_sipi_ = !is_bsp();
    update_pending();
    return true;
}

int LocalApic::acknowledge_sipi() {
    if (!sipi_pending_) return -1;
    sipi_pending_ = false;
    int vector = -1;
    if (wait_for_sipi_) {
        wait_for_sipi_ = false;
        vector = sipi_vector_;
    }
    update_pending();
    return vector;
}

void LocalApic::set_tpr(uint8_t cr8) {
    tpr_ = uint32_t(cr8 & 0x0F) << 4; // CR8[3:0] = TPR[7:4]
    update_pending();
}

uint8_t LocalApic::tpr() const {
    return uint8_t(tpr_ >> 4);
}

bool LocalApic::read_msr(uint32_t msr, uint64_t& value) {
    switch (msr) {
    case kMsrApicBase: value = apic_base_; return true;
    case kMsrTscDeadline:
        // Reads 0 outside TSC-deadline mode (SDM §10.5.4.1).
        value = timer_mode() == kTimerTscDeadline ? tsc_deadline_ : 0;
        return true;
    default: return false; // includes the x2APIC MSRs 0x800-0x8FF
    }
}

bool LocalApic::write_msr(uint32_t msr, uint64_t value) {
    switch (msr) {
    case kMsrApicBase: return write_apic_base(value);
    case kMsrTscDeadline:
        if (!hw_enabled() || timer_mode() != kTimerTscDeadline) return true; // ignored
        tsc_deadline_ = value;
        arm_tsc_deadline();
        return true;
    default: return false;
    }
}

bool LocalApic::write_apic_base(uint64_t value) {
    // EXTD (x2APIC) is not offered; reserved bits #GP.
    if (value & (kApicBaseReserved | kApicBaseExtd)) return false;
    bool was_enabled = hw_enabled();
    bool enable = value & kApicBaseEnable;
    apic_base_ = (value & (kApicBaseAddress | kApicBaseEnable)) | (apic_base_ & kApicBaseBsp);
    if (was_enabled && !enable) {
        // SDM §10.4.3: a globally disabled APIC returns to its power-on state.
        reset_registers();
    }
    mmio_base_.store(enable ? (apic_base_ & kApicBaseAddress) : 0, std::memory_order_relaxed);
    update_pending();
    return true;
}

// ---- registers ---------------------------------------------------------------------------------

void LocalApic::io_read(uint64_t offset, std::span<uint8_t> data) {
    uint32_t v = 0;
    // Registers are 32 bits at 16-byte strides; the rest of each slot reads as zero.
    if (data.size() == 4 && offset < kMmioSize && (offset & 0xF) == 0)
        v = read_register(uint32_t(offset));
    le_store(data, v);
}

void LocalApic::io_write(uint64_t offset, std::span<const uint8_t> data) {
    if (data.size() == 4 && offset < kMmioSize && (offset & 0xF) == 0)
        write_register(uint32_t(offset), uint32_t(le_load(data)));
}

uint32_t LocalApic::read_register(uint32_t off) {
    if (off >= kRegIsr && off < kRegIsr + 0x80) return isr_[(off - kRegIsr) >> 4];
    if (off >= kRegTmr && off < kRegTmr + 0x80) return tmr_[(off - kRegTmr) >> 4];
    if (off >= kRegIrr && off < kRegIrr + 0x80) return irr_[(off - kRegIrr) >> 4];
    if (off >= kRegLvtTimer && off <= kRegLvtError) return lvt_[(off - kRegLvtTimer) >> 4];
    switch (off) {
    case kRegId: return uint32_t(id_) << 24;
    case kRegVersion: return kVersion;
    case kRegTpr: return tpr_;
    case kRegApr: return arbitration_priority();
    case kRegPpr: return ppr();
    case kRegEoi:
    case kRegRrd: return 0;
    case kRegLdr: return ldr_;
    case kRegDfr: return dfr_;
    case kRegSvr: return svr_;
    case kRegEsr: return esr_;
    case kRegIcrLow: return icr_low_;
    case kRegIcrHigh: return icr_high_;
    case kRegTimerInitial: return initial_count_;
    case kRegTimerCurrent: return current_count(clock_.now_ns());
    case kRegTimerDivide: return divide_;
    default: signal_error(kEsrIllegalRegister); return 0;
    }
}

void LocalApic::write_register(uint32_t off, uint32_t value) {
    if (off >= kRegLvtTimer && off <= kRegLvtError) {
        write_lvt((off - kRegLvtTimer) >> 4, value);
        return;
    }
    if (off >= kRegIsr && off < kRegIrr + 0x80) return; // ISR/TMR/IRR are read-only
    switch (off) {
    case kRegId: id_ = uint8_t(value >> 24); break;
    case kRegVersion:
    case kRegApr:
    case kRegPpr:
    case kRegRrd:
    case kRegTimerCurrent: break; // read-only
    case kRegTpr:
        tpr_ = value & 0xFF;
        update_pending();
        break;
    case kRegEoi: eoi(); break;
    case kRegLdr: ldr_ = value & kDestFieldMask; break;
    case kRegDfr: dfr_ = value | 0x0FFFFFFF; break; // bits 27:0 read as ones
    case kRegSvr: write_svr(value); break;
    case kRegEsr:
        // A write latches the errors seen since the previous write (SDM §10.5.3).
        esr_ = esr_pending_;
        esr_pending_ = 0;
        break;
    case kRegIcrLow:
        icr_low_ = value & kIcrLowWritable;
        send_ipi();
        break;
    case kRegIcrHigh: icr_high_ = value & kDestFieldMask; break;
    case kRegTimerInitial: {
        if (timer_mode() == kTimerTscDeadline) break; // ignored in TSC-deadline mode
        initial_count_ = value;
        countdown_running_ = value != 0;
        uint64_t now = clock_.now_ns();
        countdown_start_ns_ = now;
        arm_countdown(now + period_ns());
        break;
    }
    case kRegTimerDivide: {
        uint64_t now = clock_.now_ns();
        uint32_t count = current_count(now);
        divide_ = value & kDivideWritable;
        if (countdown_running_) {
            rebase_countdown(now, count);
            arm_countdown(now);
        }
        break;
    }
    default: signal_error(kEsrIllegalRegister); break;
    }
}

void LocalApic::write_svr(uint32_t value) {
    svr_ = value & kSvrWritable;
    if (!sw_enabled()) {
        // Software disable masks every LVT entry (SDM §10.4.7.2).
        for (auto& l : lvt_) l |= kLvtMasked;
    }
    update_pending();
}

void LocalApic::write_lvt(unsigned index, uint32_t value) {
    uint32_t old = lvt_[index];
    uint32_t v = value & kLvtWritable[index];
    if (!sw_enabled()) v |= kLvtMasked; // cannot unmask while software-disabled
    // Remote IRR is read-only and only means something for a level-triggered entry.
    if ((index == kLvtLint0Idx || index == kLvtLint1Idx) && (v & kLvtLevel))
        v |= old & kLvtRemoteIrr;

    if (index == kLvtTimerIdx) {
        uint32_t old_mode = (old >> kLvtTimerModeShift) & 3;
        uint32_t new_mode = (v >> kLvtTimerModeShift) & 3;
        uint64_t now = clock_.now_ns();
        uint32_t count = current_count(now);
        lvt_[index] = v;
        if ((old_mode == kTimerTscDeadline) != (new_mode == kTimerTscDeadline)) {
            // Switching to or from TSC-deadline mode disarms the timer (SDM §10.5.4.1).
            timer_.cancel();
            countdown_running_ = false;
            initial_count_ = 0;
            tsc_deadline_ = 0;
        } else if (old_mode != new_mode && countdown_running_) {
            rebase_countdown(now, count);
            arm_countdown(now);
        }
    } else {
        lvt_[index] = v;
        if (index == kLvtLint0Idx || index == kLvtLint1Idx)
            check_lint_level(index - kLvtLint0Idx); // an unmasked level line requests now
    }
    update_pending();
}

void LocalApic::eoi() {
    int v = highest_bit(isr_);
    if (v < 0) return;
    clear_bit(isr_, unsigned(v));
    for (unsigned pin = 0; pin < 2; pin++) {
        uint32_t& lvt = lvt_[kLvtLint0Idx + pin];
        if ((lvt & kLvtRemoteIrr) && (lvt & kLvtVector) == uint32_t(v)) lvt &= ~kLvtRemoteIrr;
    }
    // Level-triggered vectors (TMR set) are EOI'd at their source too.
    if (test_bit(tmr_, unsigned(v))) bus_.broadcast_eoi(uint8_t(v));
    check_lint_level(0);
    update_pending();
}

void LocalApic::send_ipi() {
    uint32_t lo = icr_low_;
    uint8_t vector = uint8_t(lo & 0xFF);
    unsigned mode = (lo >> 8) & 7;
    if (mode == 3 || mode == uint32_t(ApicDeliveryMode::ExtInt)) {
        if (log_limit_.allow()) LOG_DEBUG("lapic %u: ICR delivery mode %u is reserved", id_, mode);
        return;
    }
    auto dm = ApicDeliveryMode(mode);
    if ((dm == ApicDeliveryMode::Fixed || dm == ApicDeliveryMode::LowestPriority) && vector < 16) {
        signal_error(kEsrSendIllegalVector);
        return;
    }
    // INIT level de-assert only resynchronises arbitration IDs; P4 and later ignore it
    // (SDM §10.6.1).
    if (dm == ApicDeliveryMode::Init && (lo & kIcrTriggerLevel) && !(lo & kIcrLevelAssert)) return;
    ApicMessage msg;
    msg.vector = vector;
    msg.mode = dm;
    msg.logical = lo & kIcrDestLogical;
    msg.dest = uint8_t(icr_high_ >> 24);
    msg.level_trigger = false; // the ICR trigger bit matters only for INIT de-assert
    bus_.deliver_ipi(msg, *this, ApicShorthand((lo >> 18) & 3));
}

// ---- timer -------------------------------------------------------------------------------------

// Divide configuration bits 3,1,0: 0b000 = /2 ... 0b110 = /128, 0b111 = /1.
unsigned LocalApic::divide_shift() const {
    unsigned v = (divide_ & 3) | ((divide_ >> 1) & 4);
    return (v + 1) & 7;
}

uint32_t LocalApic::current_count(uint64_t now) const {
    if (!countdown_running_ || timer_mode() == kTimerTscDeadline) return 0;
    uint64_t ticks = (now - countdown_start_ns_) >> divide_shift();
    if (timer_mode() == kTimerPeriodic) return initial_count_ - uint32_t(ticks % initial_count_);
    return ticks >= initial_count_ ? 0 : initial_count_ - uint32_t(ticks);
}

// Moves the count-down's start so that it reads `count` at `now` (divider or mode changed).
void LocalApic::rebase_countdown(uint64_t now, uint32_t count) {
    countdown_start_ns_ = now - (uint64_t(initial_count_ - count) << divide_shift());
}

// Arms the next count-down expiry at the first period boundary at or after `earliest`.
void LocalApic::arm_countdown(uint64_t earliest) {
    if (!countdown_running_) {
        timer_.cancel();
        return;
    }
    uint64_t period = period_ns();
    uint64_t since_start = earliest - countdown_start_ns_;
    uint64_t next = countdown_start_ns_ + period;
    if (timer_mode() == kTimerPeriodic && since_start > period)
        next = countdown_start_ns_ + (since_start + period - 1) / period * period;
    timer_.arm(next);
}

void LocalApic::timer_fired() {
    uint64_t now = clock_.now_ns();
    if (timer_mode() == kTimerTscDeadline) {
        if (tsc_deadline_ == 0) return;
        tsc_deadline_ = 0;
        local_deliver(kLvtTimerIdx);
        return;
    }
    if (!countdown_running_) return;
    if (timer_mode() == kTimerPeriodic) {
        uint64_t fired_at = timer_.deadline();
        uint64_t period = period_ns();
        uint64_t gap = period < kMinPeriodicNs ? kMinPeriodicNs : period;
        // Several periods missed (a late timer thread) still make one interrupt: the IRR bit
        // holds one.
        uint64_t earliest = fired_at + gap;
        if (int64_t(earliest - now) <= 0) earliest = now + 1;
        arm_countdown(earliest);
    } else {
        countdown_running_ = false;
    }
    local_deliver(kLvtTimerIdx);
}

uint64_t LocalApic::guest_tsc_at(uint64_t ns) const {
    return uint64_t((unsigned __int128)ns * config_.tsc_hz / 1'000'000'000u) + tsc_offset_;
}

void LocalApic::set_tsc_offset(uint64_t offset) {
    tsc_offset_ = offset;
    if (timer_mode() == kTimerTscDeadline) arm_tsc_deadline();
}

void LocalApic::arm_tsc_deadline() {
    if (tsc_deadline_ == 0) {
        timer_.cancel();
        return;
    }
    uint64_t now = clock_.now_ns();
    uint64_t tsc = guest_tsc_at(now);
    if (tsc_deadline_ <= tsc) {
        // Already due: the interrupt is immediate.
        timer_.cancel();
        tsc_deadline_ = 0;
        local_deliver(kLvtTimerIdx);
        return;
    }
    unsigned __int128 delta =
        ((unsigned __int128)(tsc_deadline_ - tsc) * 1'000'000'000u + config_.tsc_hz - 1) /
        config_.tsc_hz;
    // A deadline centuries away is armed at most ~146 years out, keeping clock arithmetic sane.
    timer_.arm(now + (delta > kMaxTimerDelayNs ? kMaxTimerDelayNs : uint64_t(delta)));
}

// ---- state -------------------------------------------------------------------------------------

void LocalApic::save(StateWriter& out) const {
    out.begin("lapic", kStateVersion);
    out.put(id_);
    out.put(apic_base_);
    out.put(tpr_);
    out.put(ldr_);
    out.put(dfr_);
    out.put(svr_);
    out.put_bytes(std::span(reinterpret_cast<const uint8_t*>(isr_), sizeof isr_));
    out.put_bytes(std::span(reinterpret_cast<const uint8_t*>(tmr_), sizeof tmr_));
    out.put_bytes(std::span(reinterpret_cast<const uint8_t*>(irr_), sizeof irr_));
    out.put(esr_);
    out.put(esr_pending_);
    out.put(icr_low_);
    out.put(icr_high_);
    out.put_bytes(std::span(reinterpret_cast<const uint8_t*>(lvt_), sizeof lvt_));
    out.put(initial_count_);
    out.put(divide_);
    // Times are saved relative to now: a restored machine runs on another clock epoch.
    out.put(uint64_t(countdown_running_ ? clock_.now_ns() - countdown_start_ns_ : 0));
    out.put(tsc_deadline_);
    uint8_t flags[] = {countdown_running_, lint_level_[0], lint_level_[1],  nmi_pending_,
                       init_pending_,      sipi_pending_,  extint_pending_, wait_for_sipi_};
    out.put_bytes(flags);
    out.put(sipi_vector_);
}

void LocalApic::load(StateReader& in) {
    in.begin("lapic", kStateVersion, kStateVersion);
    uint8_t id = in.get<uint8_t>();
    uint64_t apic_base = in.get<uint64_t>();
    uint32_t tpr = in.get<uint32_t>(), ldr = in.get<uint32_t>(), dfr = in.get<uint32_t>(),
             svr = in.get<uint32_t>();
    uint32_t isr[8], tmr[8], irr[8], lvt[kLvtCount];
    in.get_bytes(std::span(reinterpret_cast<uint8_t*>(isr), sizeof isr));
    in.get_bytes(std::span(reinterpret_cast<uint8_t*>(tmr), sizeof tmr));
    in.get_bytes(std::span(reinterpret_cast<uint8_t*>(irr), sizeof irr));
    uint32_t esr = in.get<uint32_t>(), esr_pending = in.get<uint32_t>();
    uint32_t icr_low = in.get<uint32_t>(), icr_high = in.get<uint32_t>();
    in.get_bytes(std::span(reinterpret_cast<uint8_t*>(lvt), sizeof lvt));
    uint32_t initial = in.get<uint32_t>(), divide = in.get<uint32_t>();
    uint64_t elapsed = in.get<uint64_t>();
    uint64_t tsc_deadline = in.get<uint64_t>();
    uint8_t flags[8];
    in.get_bytes(flags);
    uint8_t sipi_vector = in.get<uint8_t>();

    auto bad = [](const char* what) { throw StateError(std::string("lapic: bad ") + what); };
    if ((apic_base & kApicBaseReserved) || bool(apic_base & kApicBaseBsp) != config_.bsp)
        bad("IA32_APIC_BASE");
    if (tpr > 0xFF || (ldr & ~kDestFieldMask) || (dfr | 0xF0000000) != 0xFFFFFFFF ||
        (svr & ~kSvrWritable) || (icr_low & ~kIcrLowWritable) || (icr_high & ~kDestFieldMask) ||
        (divide & ~kDivideWritable) || (esr & ~kEsrDefined) || (esr_pending & ~kEsrDefined))
        bad("register");
    if ((isr[0] | tmr[0] | irr[0]) & 0xFFFF) bad("vector bank (vectors 0-15)");
    for (unsigned i = 0; i < kLvtCount; i++) {
        uint32_t ro = (i == kLvtLint0Idx || i == kLvtLint1Idx) ? kLvtRemoteIrr : 0;
        if (lvt[i] & ~(kLvtWritable[i] | ro)) bad("LVT entry");
    }
    for (uint8_t f : flags)
        if (f > 1) bad("flag");
    bool running = flags[0];
    uint32_t mode = (lvt[kLvtTimerIdx] >> kLvtTimerModeShift) & 3;
    if (running && (initial == 0 || mode == kTimerTscDeadline)) bad("timer state");
    if (tsc_deadline && mode != kTimerTscDeadline) bad("TSC deadline");

    timer_.cancel();
    id_ = id;
    apic_base_ = apic_base;
    tpr_ = tpr;
    ldr_ = ldr;
    dfr_ = dfr;
    svr_ = svr;
    for (unsigned i = 0; i < 8; i++) {
        isr_[i] = isr[i];
        tmr_[i] = tmr[i];
        irr_[i] = irr[i];
    }
    esr_ = esr;
    esr_pending_ = esr_pending;
    icr_low_ = icr_low;
    icr_high_ = icr_high;
    for (unsigned i = 0; i < kLvtCount; i++) lvt_[i] = lvt[i];
    initial_count_ = initial;
    divide_ = divide;
    tsc_deadline_ = tsc_deadline;
    countdown_running_ = running;
    lint_level_[0] = flags[1];
    lint_level_[1] = flags[2];
    nmi_pending_ = flags[3];
    init_pending_ = flags[4];
    sipi_pending_ = flags[5];
    extint_pending_ = flags[6];
    wait_for_sipi_ = flags[7];
    sipi_vector_ = sipi_vector;
    mmio_base_.store(hw_enabled() ? (apic_base_ & kApicBaseAddress) : 0, std::memory_order_relaxed);

    uint64_t now = clock_.now_ns();
    if (countdown_running_) {
        // Only the position within the period matters; an expired one-shot fires at once.
        uint64_t period = period_ns();
        elapsed = timer_mode() == kTimerPeriodic ? elapsed % period
                                                 : (elapsed > period ? period : elapsed);
        countdown_start_ns_ = now - elapsed;
        arm_countdown(timer_mode() == kTimerPeriodic ? now + 1 : now);
    } else if (mode == kTimerTscDeadline) {
        arm_tsc_deadline();
    }
    update_pending();
}

} // namespace hvm
