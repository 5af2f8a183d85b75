#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "base/log.hpp"
#include "vcpu/kvm/kvm_abi.hpp"
#include "vcpu/kvm/kvm_engine.hpp"
#include "vcpu/kvm/kvm_vm.hpp"

namespace hvm {

namespace {

constexpr uint64_t kPitHz = 1193182; // 14.31818 MHz / 12
constexpr unsigned kChannel2 = 2;

// KVM stamps count_load_time with ktime_get(), i.e. CLOCK_MONOTONIC of this same kernel.
int64_t monotonic_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

bool get_pit(KvmVm& vm, kvm_pit_state2& st) {
    if (kvm_ioctl(vm.vm_fd, KVM_GET_PIT2, &st) == 0) return true;
    LOG_ERROR("kvm: KVM_GET_PIT2: %s", std::strerror(errno));
    return false;
}

} // namespace

bool pit_counter_output(unsigned mode, uint32_t count, int64_t elapsed_ns) {
    if (count == 0 || count > 0x10000) count = 0x10000;
    if (elapsed_ns < 0) elapsed_ns = 0;
    // Ticks since the load; 128-bit so that days of uptime cannot overflow the product.
    const uint64_t d = uint64_t((unsigned __int128)uint64_t(elapsed_ns) * kPitHz / 1000000000u);
    switch (mode) {
    case 1: return d < count;                // hardware one-shot: low until terminal count
    case 2: return d != 0 && d % count == 0; // rate generator (the KVM/QEMU formula)
    case 3: return d % count < (uint64_t(count) + 1) / 2; // square wave: high for the first half
    case 4:
    case 5: return d == count;  // strobes
    default: return d >= count; // mode 0: interrupt on terminal count
    }
}

KvmPitChannel2::KvmPitChannel2(std::shared_ptr<KvmVm> vm) : vm_(std::move(vm)) {}

bool KvmPitChannel2::gate2() {
    kvm_pit_state2 st{};
    return get_pit(*vm_, st) && st.channels[kChannel2].gate != 0;
}

void KvmPitChannel2::set_gate2(bool level) {
    kvm_pit_state2 st{};
    if (!get_pit(*vm_, st)) return;
    if ((st.channels[kChannel2].gate != 0) == level) return;
    // KVM_SET_PIT2 reloads every channel's count_load_time (Linux kvm_vm_ioctl_set_pit2 calls
    // kvm_pit_load_count for each), which is the restart a rising gate causes in modes 1, 2, 3 and
    // 5. QEMU's kvm_pit_set_gate takes this same path on every port 0x61 write; hvm only on a
    // change, so the other channels are disturbed no more than necessary.
    st.channels[kChannel2].gate = level ? 1 : 0;
    if (kvm_ioctl(vm_->vm_fd, KVM_SET_PIT2, &st) < 0)
        LOG_ERROR("kvm: KVM_SET_PIT2: %s", std::strerror(errno));
}

bool KvmPitChannel2::out2() {
    kvm_pit_state2 st{};
    if (!get_pit(*vm_, st)) return false;
    const kvm_pit_channel_state& c = st.channels[kChannel2];
    return pit_counter_output(c.mode, c.count, monotonic_ns() - c.count_load_time);
}

} // namespace hvm
