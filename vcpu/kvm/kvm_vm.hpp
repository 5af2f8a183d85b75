// State shared by a KVM VM and its vCPUs (file descriptors, capabilities, the host's CPUID and MSR
// lists). The engine and every vCPU, IRQ sink and PIT view hold it by shared_ptr, so the VM file
// descriptor outlives whichever of them goes last. No KVM types here.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "base/log.hpp"
#include "vcpu/engine.hpp"
#include "vcpu/kvm/kvm_cpuid.hpp"

namespace hvm {

class GuestMemory;

struct KvmVm {
    KvmVm() = default;
    ~KvmVm();
    KvmVm(const KvmVm&) = delete;
    KvmVm& operator=(const KvmVm&) = delete;

    int kvm_fd = -1; // /dev/kvm
    int vm_fd = -1;
    EngineConfig config;
    CpuModel model = CpuModel::Host;
    size_t run_mmap_size = 0;

    // Capabilities hvm uses when present.
    bool has_readonly_mem = false;
    bool has_xcrs = false;
    bool has_debugregs = false;
    bool has_irq_status = false;
    bool has_user_msr = false;

    std::vector<CpuidEntry> supported_cpuid;
    std::vector<uint32_t> msr_index_list; // KVM_GET_MSR_INDEX_LIST

    std::atomic<GuestMemory*> memory{nullptr}; // set by map_memory()
    std::mutex* device_lock = nullptr;         // userspace irqchip: held around CpuInterrupts calls
    std::function<bool(Vcpu&)> emulation_assist;
    RateLimiter unknown_msr_log{16, 65536};
    RateLimiter bad_irq_log;
    bool warned_readonly = false;
};

// "what: strerror(errno)".
std::string errno_text(const char* what);

// ioctl() that retries on EINTR (for VM-level and state ioctls, never KVM_RUN).
int kvm_ioctl(int fd, unsigned long request, unsigned long arg = 0);
template <typename T> int kvm_ioctl(int fd, unsigned long request, T* arg) {
    return kvm_ioctl(fd, request, reinterpret_cast<unsigned long>(arg));
}

} // namespace hvm
