// KvmVcpu without the in-kernel irqchip: INIT, SIPI, NMI and INTR from the device model's local
// APIC (CpuInterrupts), HLT and wait-for-SIPI sleeping, and CR8 <-> TPR.
#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "vcpu/kvm/kvm_abi.hpp"
#include "vcpu/kvm/kvm_vcpu.hpp"
#include "vcpu/kvm/kvm_vm.hpp"

namespace hvm {

namespace {

constexpr uint64_t kRflagsIf = 1u << 9;

} // namespace

void KvmVcpu::sync_tpr_from_kvm() {
    if (run_->cr8 == cr8_shadow_) return;
    uint8_t cr8 = static_cast<uint8_t>(run_->cr8 & 0xf);
    with_device_lock([&] { interrupts_->set_tpr(cr8); });
    cr8_shadow_ = cr8;
    run_->cr8 = cr8;
}

void KvmVcpu::sync_tpr_to_kvm() {
    uint8_t tpr = with_device_lock([&] { return interrupts_->tpr(); });
    // KVM_RUN loads CR8 from kvm_run->cr8 when the LAPIC is in user space.
    run_->cr8 = tpr & 0xf;
    cr8_shadow_ = tpr & 0xf;
}

// What kvm_run.ready_for_interrupt_injection would say: IF set, no STI/MOV SS shadow, and no
// event already queued in KVM.
bool KvmVcpu::kvm_can_inject_now() {
    kvm_regs r{};
    kvm_vcpu_events ev{};
    if (kvm_ioctl(fd_, KVM_GET_REGS, &r) < 0 || kvm_ioctl(fd_, KVM_GET_VCPU_EVENTS, &ev) < 0)
        return false;
    return (r.rflags & kRflagsIf) && !ev.interrupt.shadow && !ev.interrupt.injected &&
           !ev.exception.injected && !ev.nmi.injected;
}

void KvmVcpu::do_init() {
    // INIT keeps the APIC base, the x87/SSE state and PAT (SDM Vol. 3 table 9-1), as hvm's
    // emulator does; the TSC keeps counting. The BSP restarts at the reset vector, the others wait
    // for a SIPI (set_state sees a reset state without the BSP flag).
    CpuState cur;
    get_state(cur);
    CpuState n = reset_cpu_state(index_);
    std::memcpy(n.fxsave, cur.fxsave, sizeof n.fxsave);
    n.apic_base = cur.apic_base;
    n.pat = cur.pat;
    n.tsc = cur.tsc;
    set_state(n);
}

void KvmVcpu::do_sipi(int vector) {
    // SIPI vector V starts the AP in real mode at V << 8 : 0 (SDM Vol. 3 §9.4.4).
    kvm_sregs s{};
    ioctl_or_throw(KVM_GET_SREGS, &s, "KVM_GET_SREGS");
    s.cs.selector = static_cast<uint16_t>(vector << 8);
    s.cs.base = static_cast<uint64_t>(vector) << 12;
    s.cs.limit = 0xffff;
    ioctl_or_throw(KVM_SET_SREGS, &s, "KVM_SET_SREGS");
    kvm_regs r{};
    ioctl_or_throw(KVM_GET_REGS, &r, "KVM_GET_REGS");
    r.rip = 0;
    ioctl_or_throw(KVM_SET_REGS, &r, "KVM_SET_REGS");
    wait_for_sipi_ = false;
    halted_ = false;
    can_inject_ = false;
}

// Before each entry: INIT, SIPI, NMI and INTR from the device model's local APIC. While halted or
// waiting for a SIPI, sleeps until something can wake the vCPU. Returns a reason to leave run().
std::optional<VcpuExit> KvmVcpu::service_interrupts() {
    for (;;) {
        const uint32_t seq = wake_seq_.load();
        if (kick_requested_.exchange(false)) return VcpuExit::Kicked;
        uint32_t p = interrupts_->pending.load();
        if ((p & CpuInterrupts::kInit) &&
            with_device_lock([&] { return interrupts_->acknowledge_init(); })) {
            do_init();
            continue;
        }
        if (p & CpuInterrupts::kSipi) {
            // A SIPI outside wait-for-SIPI is ignored by the processor, but still consumed.
            int v = with_device_lock([&] { return interrupts_->acknowledge_sipi(); });
            if (v >= 0 && wait_for_sipi_) {
                do_sipi(v & 0xff);
                continue;
            }
        }
        if (!wait_for_sipi_) {
            if ((p & CpuInterrupts::kNmi) &&
                with_device_lock([&] { return interrupts_->acknowledge_nmi(); })) {
                if (kvm_ioctl(fd_, KVM_NMI) < 0)
                    LOG_ERROR("kvm: vCPU %u: KVM_NMI: %s", index_, std::strerror(errno));
                halted_ = false;
            }
            if (p & CpuInterrupts::kIntr) {
                if (can_inject_) {
                    int v = with_device_lock([&] { return interrupts_->acknowledge_interrupt(); });
                    if (v >= 0) {
                        kvm_interrupt irq{static_cast<uint32_t>(v & 0xff)};
                        if (kvm_ioctl(fd_, KVM_INTERRUPT, &irq) < 0)
                            LOG_ERROR("kvm: vCPU %u: KVM_INTERRUPT: %s", index_,
                                      std::strerror(errno));
                        halted_ = false;
                        can_inject_ = false;
                    }
                    run_->request_interrupt_window = 0;
                } else {
                    // Exit as soon as the guest can take it (IF set, no STI/MOV SS shadow).
                    run_->request_interrupt_window = 1;
                }
            } else {
                run_->request_interrupt_window = 0;
            }
        }
        if (!halted_ && !wait_for_sipi_) {
            halt_reported_ = false; // the vCPU runs again: a later dead halt is news
            return std::nullopt;
        }

        p = interrupts_->pending.load();
        if (halted_ && (p & CpuInterrupts::kIntr) && if_flag_ && !can_inject_) {
            // The halt can end but the last exit did not say whether KVM can take an interrupt
            // (the state was just set): ask KVM. If it already holds an event, that event ends
            // the halt on entry.
            if (!(can_inject_ = kvm_can_inject_now())) halted_ = false;
            continue;
        }
        const bool wakeable = (p & (CpuInterrupts::kInit | CpuInterrupts::kSipi)) ||
                              (!wait_for_sipi_ && ((p & CpuInterrupts::kNmi) ||
                                                   ((p & CpuInterrupts::kIntr) && if_flag_)));
        if (wakeable) continue;
        if (halted_ && !wait_for_sipi_ && !if_flag_ && !halt_reported_) {
            // HLT with interrupts off and nothing that could wake it; reported once, then the vCPU
            // keeps sleeping until NMI, INIT or a kick.
            halt_reported_ = true;
            return VcpuExit::Halted;
        }
        if (kick_requested_.load()) continue;
        wake_seq_.wait(seq);
    }
}

} // namespace hvm
