// One KVM vCPU (KvmEngine::create_vcpu returns it as a Vcpu). Internal to vcpu/kvm and its tests.
//
// Kicking: run() blocks the kick signal on its thread and lets KVM_RUN unblock it
// (KVM_SET_SIGNAL_MASK), so a kick() landing before KVM_RUN stays pending and makes KVM_RUN return
// at once, and one landing inside KVM_RUN interrupts it. No other system call of the vCPU thread
// ever sees EINTR from it.
//
// Without an in-kernel irqchip the vCPU takes interrupts from CpuInterrupts before each entry,
// sleeps in HLT and in wait-for-SIPI on a futex woken by CpuInterrupts::kick, and keeps CR8 and
// the device model's TPR in step (KVM only reports CR8 writes that lower it).
//
// kvm_vcpu.cpp: lifetime, kick, the run loop and exits; kvm_vcpu_interrupts.cpp: the userspace
// irqchip side; kvm_vcpu_state.cpp: CpuState <-> KVM.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <vector>

#include "vcpu/engine.hpp"
#include "vcpu/kvm/kvm_cpuid.hpp"
#include "vcpu/kvm/kvm_vm.hpp"

struct kvm_run;

namespace hvm {

class KvmVcpu final : public Vcpu {
  public:
    KvmVcpu(std::shared_ptr<KvmVm> vm, unsigned index, IoSink& io, CpuInterrupts* interrupts);
    // With CpuInterrupts, construction and destruction take the device lock (to install and
    // remove CpuInterrupts::kick): do not hold it around them.
    ~KvmVcpu() override;
    KvmVcpu(const KvmVcpu&) = delete;
    KvmVcpu& operator=(const KvmVcpu&) = delete;

    unsigned index() const override { return index_; }
    VcpuExit run() override;
    void kick() override;
    // Only while run() is not executing.
    void get_state(CpuState& out) override;
    // A state at the architectural reset vector (CS base FFFF0000, selector F000, IP FFF0) is a
    // RESET/INIT: queued events are dropped and, for a processor without IA32_APIC_BASE.BSP, the
    // vCPU waits for a SIPI. No other state can have CS base FFFF0000 with selector F000.
    void set_state(const CpuState& in) override;
    size_t read_code(uint64_t linear, uint8_t* out, size_t len) override;

    const std::vector<CpuidEntry>& cpuid() const { return cpuid_; }

  private:
    struct RunScope;
    std::optional<VcpuExit> service_interrupts();
    std::optional<VcpuExit> handle_exit();
    std::optional<VcpuExit> handle_internal_error();
    void handle_mmio();
    void handle_msr(bool is_read);
    bool kvm_can_inject_now();
    void do_init();
    void do_sipi(int vector);
    void wake();
    void sync_tpr_from_kvm();
    void sync_tpr_to_kvm();
    template <typename F> auto with_device_lock(F&& f) {
        std::lock_guard g(*vm_->device_lock);
        return f();
    }
    void setup_cpuid();
    void probe_msrs();
    void set_msrs(const CpuState& in);
    void ioctl_or_throw(unsigned long request, void* arg, const char* what);

    std::shared_ptr<KvmVm> vm_;
    unsigned index_;
    IoSink& io_;
    CpuInterrupts* interrupts_; // null with the in-kernel irqchip
    int fd_ = -1;
    kvm_run* run_ = nullptr;
    std::vector<CpuidEntry> cpuid_;
    std::vector<uint32_t> msrs_; // CpuState MSRs KVM accepts on this vCPU

    // kick()
    std::atomic<bool> kick_requested_{false};
    std::atomic<uint32_t> wake_seq_{0};
    std::mutex thread_mutex_; // guards thread_ / in_run_ against kick() from other threads
    pthread_t thread_{};
    bool in_run_ = false;
    bool sigmask_set_ = false;
    uint64_t kvm_sigmask_ = 0;

    // Userspace irqchip state (vCPU thread only).
    bool halted_ = false;
    bool halt_reported_ = false;
    bool wait_for_sipi_ = false;
    bool can_inject_ = false; // last exit: ready_for_interrupt_injection && IF
    bool if_flag_ = false;
    uint8_t cr8_shadow_ = 0;
};

} // namespace hvm
