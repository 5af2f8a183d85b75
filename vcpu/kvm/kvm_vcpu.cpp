#include "vcpu/kvm/kvm_vcpu.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/error.hpp"
#include "base/log.hpp"
#include "vcpu/kvm/kvm_abi.hpp"
#include "vcpu/kvm/kvm_vm.hpp"

namespace hvm {

namespace {

// The signal kick() sends to a vCPU thread; see kvm_vcpu.hpp for why it is blocked outside KVM_RUN.
constexpr int kKickSignal = SIGUSR1;

constexpr uint32_t kMsrApicBase = 0x1b, kMsrX2apicFirst = 0x800, kMsrX2apicLast = 0x8ff;

bool is_apic_msr(uint32_t index) {
    return index == kMsrApicBase || (index >= kMsrX2apicFirst && index <= kMsrX2apicLast);
}

void noop_signal_handler(int) {}

// The kick signal needs a handler in the whole process (a blocked signal without one would still
// kill the process if delivered to a thread that does not block it). SA_RESTART: a kick reaching
// some other thread never interrupts its system calls.
void install_kick_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_handler = noop_signal_handler;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(kKickSignal, &sa, nullptr);
    });
}

const char* internal_suberror_name(uint32_t s) {
    switch (s) {
    case KVM_INTERNAL_ERROR_EMULATION: return "emulation failure";
    case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception while delivering an exception";
    case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failed";
    case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: return "unexpected exit reason";
    default: return "unknown";
    }
}

} // namespace

// ---- lifetime --------------------------------------------------------------------------------

KvmVcpu::KvmVcpu(std::shared_ptr<KvmVm> vm, unsigned index, IoSink& io, CpuInterrupts* interrupts)
    : vm_(std::move(vm)), index_(index), io_(io), interrupts_(interrupts) {
    install_kick_handler();
    fd_ = ::ioctl(vm_->vm_fd, KVM_CREATE_VCPU, static_cast<unsigned long>(index));
    if (fd_ < 0) throw std::runtime_error("kvm: " + errno_text("KVM_CREATE_VCPU"));
    void* p = mmap(nullptr, vm_->run_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        ::close(fd_);
        errno = e;
        throw std::runtime_error("kvm: " + errno_text("mmap(kvm_run)"));
    }
    run_ = static_cast<kvm_run*>(p);
    try {
        setup_cpuid();
        probe_msrs();
        set_state(reset_cpu_state(index_));
    } catch (...) {
        munmap(run_, vm_->run_mmap_size);
        ::close(fd_);
        throw;
    }
    if (interrupts_) {
        std::lock_guard g(*vm_->device_lock);
        interrupts_->kick = [this] { wake(); };
    }
}

KvmVcpu::~KvmVcpu() {
    if (interrupts_) {
        std::lock_guard g(*vm_->device_lock);
        interrupts_->kick = nullptr;
    }
    munmap(run_, vm_->run_mmap_size);
    ::close(fd_);
}

void KvmVcpu::ioctl_or_throw(unsigned long request, void* arg, const char* what) {
    if (kvm_ioctl(fd_, request, arg) < 0)
        throw std::runtime_error("kvm: vCPU " + std::to_string(index_) + ": " + errno_text(what));
}

void KvmVcpu::setup_cpuid() {
    CpuidConfig cc;
    cc.model = vm_->model;
    cc.vcpu_index = index_;
    cc.vcpu_count = vm_->config.vcpus;
    cc.kernel_irqchip = vm_->config.kernel_irqchip;
    cpuid_ = build_guest_cpuid(vm_->supported_cpuid, cc);
    kvm::FlexBuffer<kvm_cpuid2, kvm_cpuid_entry2> buf(cpuid_.size());
    buf->nent = static_cast<uint32_t>(cpuid_.size());
    for (size_t i = 0; i < cpuid_.size(); i++) {
        kvm_cpuid_entry2& e = buf.elems()[i];
        e.function = cpuid_[i].function;
        e.index = cpuid_[i].index;
        e.flags = cpuid_[i].flags;
        e.eax = cpuid_[i].eax;
        e.ebx = cpuid_[i].ebx;
        e.ecx = cpuid_[i].ecx;
        e.edx = cpuid_[i].edx;
    }
    ioctl_or_throw(KVM_SET_CPUID2, buf.get(), "KVM_SET_CPUID2");
}

// ---- kick ------------------------------------------------------------------------------------

void KvmVcpu::wake() {
    wake_seq_.fetch_add(1);
    wake_seq_.notify_all();
    std::lock_guard g(thread_mutex_);
    // On the vCPU's own thread (a device raising an interrupt during an exit) the run loop looks
    // at `pending` again before re-entering, so no signal is needed.
    if (in_run_ && !pthread_equal(thread_, pthread_self())) pthread_kill(thread_, kKickSignal);
}

void KvmVcpu::kick() {
    kick_requested_.store(true);
    wake();
}

// Registers the running thread for kick() and arranges the signal masks for the duration of run().
struct KvmVcpu::RunScope {
    KvmVcpu& v;
    sigset_t old_mask;

    explicit RunScope(KvmVcpu& vcpu) : v(vcpu) {
        sigset_t block;
        sigemptyset(&block);
        sigaddset(&block, kKickSignal);
        pthread_sigmask(SIG_BLOCK, &block, &old_mask);
        // Inside KVM_RUN: the thread's own mask, minus the kick signal.
        sigset_t in_guest = old_mask;
        sigdelset(&in_guest, kKickSignal);
        uint64_t kernel_mask = 0;
        std::memcpy(&kernel_mask, &in_guest, sizeof kernel_mask); // the kernel's sigset is 64 bits
        if (!v.sigmask_set_ || kernel_mask != v.kvm_sigmask_) {
            kvm::FlexBuffer<kvm_signal_mask, uint8_t> sm(8);
            sm->len = 8;
            std::memcpy(sm.elems(), &kernel_mask, 8);
            if (kvm_ioctl(v.fd_, KVM_SET_SIGNAL_MASK, sm.get()) < 0) {
                std::string msg = "kvm: vCPU " + std::to_string(v.index_) + ": " +
                                  errno_text("KVM_SET_SIGNAL_MASK");
                pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
                throw std::runtime_error(msg);
            }
            v.kvm_sigmask_ = kernel_mask;
            v.sigmask_set_ = true;
        }
        std::lock_guard g(v.thread_mutex_);
        v.thread_ = pthread_self();
        v.in_run_ = true;
    }
    ~RunScope() {
        {
            std::lock_guard g(v.thread_mutex_);
            v.in_run_ = false;
        }
        consume_kick_signal();
        pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    }
    static void consume_kick_signal() {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, kKickSignal);
        timespec zero{0, 0};
        while (sigtimedwait(&s, nullptr, &zero) == kKickSignal) {
        }
    }
};

// ---- run loop --------------------------------------------------------------------------------

VcpuExit KvmVcpu::run() {
    RunScope scope(*this);
    for (;;) {
        if (kick_requested_.exchange(false)) return VcpuExit::Kicked;
        if (interrupts_) {
            if (auto r = service_interrupts()) return *r;
            if (halted_ || wait_for_sipi_) continue;
        }
        int rc = ::ioctl(fd_, KVM_RUN, 0);
        int err = errno;
        if (interrupts_) {
            can_inject_ = run_->ready_for_interrupt_injection && run_->if_flag;
            if_flag_ = run_->if_flag;
            sync_tpr_from_kvm();
        }
        if (rc < 0) {
            if (err == EINTR || err == EAGAIN) {
                RunScope::consume_kick_signal();
                continue;
            }
            errno = err;
            error = "kvm: vCPU " + std::to_string(index_) + ": " + errno_text("KVM_RUN");
            return VcpuExit::InternalError;
        }
        if (auto r = handle_exit()) return *r;
    }
}

std::optional<VcpuExit> KvmVcpu::handle_exit() {
    switch (run_->exit_reason) {
    case KVM_EXIT_IO: {
        auto& io = run_->io;
        const uint64_t bytes = uint64_t(io.size) * io.count;
        if ((io.size != 1 && io.size != 2 && io.size != 4) || io.count == 0 ||
            io.data_offset > vm_->run_mmap_size || bytes > vm_->run_mmap_size - io.data_offset) {
            error = "kvm: vCPU " + std::to_string(index_) + ": malformed KVM_EXIT_IO";
            return VcpuExit::InternalError;
        }
        IoRequest req;
        req.kind = IoRequest::Kind::Pio;
        req.is_write = io.direction == KVM_EXIT_IO_OUT;
        req.size = io.size;
        req.count = io.count;
        req.addr = io.port;
        req.data = reinterpret_cast<uint8_t*>(run_) + io.data_offset;
        req.vcpu = index_;
        io_.handle_io(req);
        return std::nullopt;
    }
    case KVM_EXIT_MMIO: handle_mmio(); return std::nullopt;
    case KVM_EXIT_HLT:
        // Only without the in-kernel irqchip; service_interrupts() sleeps until something wakes
        // the vCPU. RIP already points after the HLT.
        if (interrupts_) halted_ = true;
        return std::nullopt;
    case KVM_EXIT_SHUTDOWN: return VcpuExit::Shutdown;
    case KVM_EXIT_INTERNAL_ERROR: return handle_internal_error();
    case KVM_EXIT_FAIL_ENTRY: {
        char buf[128];
        std::snprintf(
            buf, sizeof buf, "kvm: vCPU %u: VM entry failed, hardware reason %#llx (host CPU %u)",
            index_, static_cast<unsigned long long>(run_->fail_entry.hardware_entry_failure_reason),
            run_->fail_entry.cpu);
        error = buf;
        return VcpuExit::InternalError;
    }
    case KVM_EXIT_X86_RDMSR:
    case KVM_EXIT_X86_WRMSR:
        handle_msr(run_->exit_reason == KVM_EXIT_X86_RDMSR);
        return std::nullopt;
    case KVM_EXIT_IRQ_WINDOW_OPEN:
    case KVM_EXIT_SET_TPR:
    case KVM_EXIT_INTR: return std::nullopt;
    case KVM_EXIT_SYSTEM_EVENT:
        if (run_->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ||
            run_->system_event.type == KVM_SYSTEM_EVENT_RESET)
            return VcpuExit::Shutdown;
        error = "kvm: vCPU " + std::to_string(index_) + ": system event " +
                std::to_string(run_->system_event.type);
        return VcpuExit::InternalError;
    default:
        error = "kvm: vCPU " + std::to_string(index_) + ": unexpected exit reason " +
                std::to_string(run_->exit_reason);
        return VcpuExit::InternalError;
    }
}

std::optional<VcpuExit> KvmVcpu::handle_internal_error() {
    const auto& ie = run_->internal;
    if (ie.suberror == KVM_INTERNAL_ERROR_EMULATION && vm_->emulation_assist) {
        if (vm_->emulation_assist(*this)) return std::nullopt;
    }
    char buf[96];
    std::snprintf(buf, sizeof buf, "kvm: vCPU %u: internal error, suberror %u (%s)", index_,
                  ie.suberror, internal_suberror_name(ie.suberror));
    error = buf;
    const uint32_t n = std::min<uint32_t>(ie.ndata, 16);
    for (uint32_t i = 0; i < n; i++) {
        std::snprintf(buf, sizeof buf, "%s%#llx", i == 0 ? ", data " : " ",
                      static_cast<unsigned long long>(ie.data[i]));
        error += buf;
    }
    return VcpuExit::InternalError;
}

// KVM hands over MMIO accesses of 1 to 8 bytes; a fragment of an access that straddles into MMIO
// can have any length in between. The bus understands 1, 2, 4 and 8, so odd lengths go as
// naturally sized pieces in address order.
void KvmVcpu::handle_mmio() {
    auto& m = run_->mmio;
    const uint32_t len = std::min<uint32_t>(m.len, sizeof m.data);
    uint32_t off = 0;
    while (off < len) {
        uint32_t left = len - off;
        uint8_t size = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        IoRequest req;
        req.kind = IoRequest::Kind::Mmio;
        req.is_write = m.is_write;
        req.size = size;
        req.count = 1;
        req.addr = m.phys_addr + off;
        req.data = m.data + off;
        req.vcpu = index_;
        io_.handle_io(req);
        off += size;
    }
    if (interrupts_) sync_tpr_to_kvm(); // the access may have been a write to the APIC's TPR
}

// MSRs KVM does not know (KVM_MSR_EXIT_REASON_UNKNOWN) read as 0 and ignore writes, as
// pc-platform.md §5.2 asks (Windows reads model-specific MSRs such as 0x606 and 0x611 and
// bug-checks on the #GP). Without the in-kernel irqchip, IA32_APIC_BASE and the x2APIC range are
// filtered to user space and go to the device model's local APIC.
void KvmVcpu::handle_msr(bool is_read) {
    auto& m = run_->msr;
    if (interrupts_ && is_apic_msr(m.index)) {
        bool ok;
        if (is_read) {
            uint64_t v = 0;
            ok = with_device_lock([&] { return interrupts_->read_msr(m.index, v); });
            m.data = ok ? v : 0;
        } else {
            ok = with_device_lock([&] { return interrupts_->write_msr(m.index, m.data); });
            sync_tpr_to_kvm();
        }
        m.error = ok ? 0 : 1;
        return;
    }
    if (vm_->unknown_msr_log.allow())
        LOG_WARN("kvm: vCPU %u: %s of unknown MSR %#x %s", index_, is_read ? "read" : "write",
                 m.index, is_read ? "returns 0" : "ignored");
    if (is_read) m.data = 0;
    m.error = 0;
}

} // namespace hvm
