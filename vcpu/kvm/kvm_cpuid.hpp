// The guest's CPUID table, built from what KVM supports (KVM_GET_SUPPORTED_CPUID) for one vCPU.
// A pure function of its inputs, so it is unit-tested without /dev/kvm.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace hvm {

struct CpuidEntry {
    uint32_t function = 0;
    uint32_t index = 0;
    uint32_t flags = 0; // kCpuidSignificantIndex when `index` selects a sub-leaf
    uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};
inline constexpr uint32_t kCpuidSignificantIndex = 1; // KVM_CPUID_FLAG_SIGNIFCANT_INDEX

enum class CpuModel {
    Host,   // every feature KVM supports on this host ("-cpu host", also "max")
    Qemu64, // QEMU's qemu64 model, intersected with what KVM supports (vendor stays the host's)
};

// "host"/"max" or "qemu64"; nullopt for anything else.
std::optional<CpuModel> parse_cpu_model(const std::string& name);

struct CpuidConfig {
    CpuModel model = CpuModel::Host;
    unsigned vcpu_index = 0; // also the initial APIC ID (one socket, vCPUs are its cores)
    unsigned vcpu_count = 1;
    bool kernel_irqchip = true; // false: the device model's LAPIC (no x2APIC, no TSC deadline)
};

// Topology: `vcpu_count` cores in one socket, one thread per core, APIC ID = vCPU index.
std::vector<CpuidEntry> build_guest_cpuid(std::span<const CpuidEntry> supported,
                                          const CpuidConfig& config);

// Looks up (function, index); index is ignored for leaves without sub-leaves.
const CpuidEntry* find_cpuid(std::span<const CpuidEntry> table, uint32_t function,
                             uint32_t index = 0);

// Bit numbers used by the model tables and tests.
namespace cpuid_bits {
// Leaf 1 ECX
inline constexpr uint32_t kSse3 = 1u << 0, kCx16 = 1u << 13, kX2apic = 1u << 21,
                          kTscDeadline = 1u << 24, kHypervisor = 1u << 31;
// Leaf 1 EDX
inline constexpr uint32_t kHtt = 1u << 28;
// Leaf 0x80000001 ECX
inline constexpr uint32_t kLahfLm = 1u << 0, kCmpLegacy = 1u << 1, kSvm = 1u << 2;
// Leaf 0x80000001 EDX
inline constexpr uint32_t kSyscall = 1u << 11, kNx = 1u << 20, kLm = 1u << 29;
// Leaf 0x40000001 EAX (KVM paravirtual features, Linux arch/x86/include/uapi/asm/kvm_para.h)
inline constexpr uint32_t kKvmClocksource = 1u << 0, kKvmNopIoDelay = 1u << 1,
                          kKvmClocksource2 = 1u << 3, kKvmAsyncPf = 1u << 4,
                          kKvmStealTime = 1u << 5, kKvmPvEoi = 1u << 6, kKvmPvUnhalt = 1u << 7,
                          kKvmPvSendIpi = 1u << 11, kKvmAsyncPfInt = 1u << 14,
                          kKvmMsiExtDestId = 1u << 15, kKvmHcMapGpaRange = 1u << 16,
                          kKvmMigrationControl = 1u << 17, kKvmClocksourceStable = 1u << 24;
} // namespace cpuid_bits

} // namespace hvm
