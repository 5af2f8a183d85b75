#include "vcpu/kvm/kvm_cpuid.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <utility>

namespace hvm {

namespace {

using namespace cpuid_bits;

// QEMU 7.2 target/i386/cpu.c, builtin_x86_defs[] "qemu64": level 0xd, xlevel 0x8000000A,
// family 15 model 107 stepping 1, model id "QEMU Virtual CPU version 2.5+".
constexpr uint32_t kQemu64Level = 0xd;
constexpr uint32_t kQemu64XLevel = 0x8000000a;
constexpr uint32_t kQemu64Version = 0x00060fb1; // family 0xf, ext model 6, model 0xb, stepping 1
constexpr char kQemu64ModelId[] = "QEMU Virtual CPU version 2.5+";
// PPRO_FEATURES (FPU DE PSE TSC MSR MCE CX8 PGE CMOV PAT FXSR MMX SSE SSE2 PAE SEP APIC) plus
// MTRR CLFLUSH MCA PSE36.
constexpr uint32_t kQemu64Leaf1Edx = 0x078bfbfd;
// SSE3 CX16 from the model; x2APIC from QEMU's kvm_default_props ("x2apic" on).
constexpr uint32_t kQemu64Leaf1Ecx = kSse3 | kCx16 | kX2apic;
constexpr uint32_t kQemu64Ext1Edx = kLm | kSyscall | kNx;
// LAHF_LM; the model's SVM is switched off by kvm_default_props ("svm" off).
constexpr uint32_t kQemu64Ext1Ecx = kLahfLm;
// On AMD, leaf 0x80000001 EDX repeats these leaf-1 EDX bits (QEMU's CPUID_EXT2_AMD_ALIASES).
constexpr uint32_t kAmdAliases = 0x0183f3ff;
// QEMU's default phys-bits for KVM guests without host-phys-bits.
constexpr uint32_t kQemu64PhysBits = 40;
// kvm_default_props: kvmclock (both clocksource bits), kvm-nopiodelay, kvm-asyncpf, kvm-steal-time,
// kvm-pv-eoi, kvmclock-stable-bit.
constexpr uint32_t kQemu64KvmFeatures = kKvmClocksource | kKvmNopIoDelay | kKvmClocksource2 |
                                        kKvmAsyncPf | kKvmStealTime | kKvmPvEoi |
                                        kKvmClocksourceStable;
// The KVM features QEMU 7.2 knows by name (target/i386/cpu.c feature_word_info[FEAT_KVM]): bits
// 0-7, 9, 11-15 and 24. "host" offers those KVM supports, except MSI extended destination IDs,
// which need a split irqchip. Not among them: bit 10 (ASYNC_PF_VMEXIT), 16 (HC_MAP_GPA_RANGE)
// and 17 (MIGRATION_CONTROL), which need user-space support hvm does not have.
constexpr uint32_t kQemuKnownKvmFeatures = 0x0100faff;
constexpr uint32_t kKvmFeaturesNeverOffered = kKvmMsiExtDestId | ~kQemuKnownKvmFeatures;
// These work only with KVM's own local APIC (EOI, IPI and wakeup through the in-kernel LAPIC).
constexpr uint32_t kKvmFeaturesNeedKernelLapic =
    kKvmPvEoi | kKvmPvUnhalt | kKvmPvSendIpi | kKvmAsyncPfInt;

constexpr uint32_t kKvmSignatureLeaf = 0x40000000;
constexpr uint32_t kKvmFeaturesLeaf = 0x40000001;

// Keyed by (function, index); leaves without sub-leaves use index 0. A node-based map, so
// references to entries stay valid while others are added or removed.
struct Table {
    std::map<std::pair<uint32_t, uint32_t>, CpuidEntry> e;

    explicit Table(std::span<const CpuidEntry> in) {
        for (const auto& x : in) {
            CpuidEntry c = x;
            if (!(c.flags & kCpuidSignificantIndex)) c.index = 0;
            e.emplace(std::pair(c.function, c.index), c);
        }
    }
    CpuidEntry* find(uint32_t fn, uint32_t idx = 0) {
        auto it = e.find({fn, idx});
        if (it == e.end() && idx != 0) {
            it = e.find({fn, 0});
            if (it != e.end() && (it->second.flags & kCpuidSignificantIndex)) return nullptr;
        }
        return it == e.end() ? nullptr : &it->second;
    }
    CpuidEntry& ensure(uint32_t fn, uint32_t idx = 0, uint32_t flags = 0) {
        if (auto* x = find(fn, idx)) return *x;
        return e.emplace(std::pair(fn, idx), CpuidEntry{fn, idx, flags, 0, 0, 0, 0}).first->second;
    }
    void put(const CpuidEntry& x) { e.insert_or_assign(std::pair(x.function, x.index), x); }
    template <typename Pred> void erase_if(Pred pred) {
        std::erase_if(e, [&](const auto& kv) { return pred(kv.second); });
    }
    void erase_leaf(uint32_t fn) {
        erase_if([fn](const CpuidEntry& x) { return x.function == fn; });
    }
};

unsigned bits_for_count(unsigned n) {
    unsigned b = 0;
    while (b < 32 && (1ull << b) < n) b++;
    return b;
}

void put_string(Table& t, uint32_t first_leaf, const char* s, size_t len) {
    char buf[48] = {};
    std::memcpy(buf, s, std::min(len, sizeof buf));
    for (uint32_t i = 0; i < 3; i++) {
        CpuidEntry& x = t.ensure(first_leaf + i);
        std::memcpy(&x.eax, buf + i * 16 + 0, 4);
        std::memcpy(&x.ebx, buf + i * 16 + 4, 4);
        std::memcpy(&x.ecx, buf + i * 16 + 8, 4);
        std::memcpy(&x.edx, buf + i * 16 + 12, 4);
    }
}

bool vendor_is_amd(Table& t) {
    const CpuidEntry* l0 = t.find(0);
    if (!l0) return false;
    char v[13] = {};
    std::memcpy(v + 0, &l0->ebx, 4);
    std::memcpy(v + 4, &l0->edx, 4);
    std::memcpy(v + 8, &l0->ecx, 4);
    return std::strcmp(v, "AuthenticAMD") == 0 || std::strcmp(v, "HygonGenuine") == 0;
}

void apply_qemu64(Table& t, bool amd) {
    CpuidEntry& l0 = t.ensure(0);
    const uint32_t level = std::min(l0.eax, kQemu64Level);
    l0.eax = level;
    CpuidEntry& x0 = t.ensure(0x80000000);
    const uint32_t host_xlevel = x0.eax;
    x0.eax = kQemu64XLevel;

    // Basic leaves: the model has no feature in leaves 3, 5-0xA and 0xD (no monitor, no leaf-7
    // features, no PMU, no XSAVE), so they read as zero. Leaves 2, 4, 5 and 0xB are rewritten for
    // every model later.
    t.erase_if([&](const CpuidEntry& x) { return x.function < 0x40000000 && x.function > level; });
    for (auto& [key, x] : t.e) {
        if (x.function >= 0x40000000) continue;
        if (x.function == 0 || x.function == 1 || x.function == 2 || x.function == 4 ||
            x.function == 0xb)
            continue;
        x.eax = x.ebx = x.ecx = x.edx = 0;
    }
    // Only the first sub-leaf of the zeroed multi-index leaves remains meaningful (all zero).
    t.erase_if([](const CpuidEntry& x) {
        return (x.function == 7 || x.function == 0xd) && (x.flags & kCpuidSignificantIndex) &&
               x.index != 0;
    });

    CpuidEntry& l1 = t.ensure(1);
    l1.eax = kQemu64Version;
    l1.ebx = 8u << 8; // CLFLUSH line size in 8-byte units; APIC ID and count set later
    l1.ecx &= kQemu64Leaf1Ecx;
    l1.edx &= kQemu64Leaf1Edx;

    // Extended leaves.
    t.erase_if([](const CpuidEntry& x) { return x.function > kQemu64XLevel; });
    CpuidEntry& x1 = t.ensure(0x80000001);
    x1.ebx = 0;
    x1.ecx &= kQemu64Ext1Ecx;
    x1.edx &= kQemu64Ext1Edx | (amd ? (l1.edx & kAmdAliases) : 0);
    put_string(t, 0x80000002, kQemu64ModelId, sizeof kQemu64ModelId - 1);
    // 0x80000007: no invariant TSC in this model.
    t.put(CpuidEntry{0x80000007, 0, 0, 0, 0, 0, 0});
    CpuidEntry& x8 = t.ensure(0x80000008);
    uint32_t host_phys = x8.eax & 0xff;
    if (host_xlevel < 0x80000008 || host_phys == 0) host_phys = 36;
    x8.eax = (48u << 8) | std::min(kQemu64PhysBits, host_phys); // 48 virtual bits: no LA57
    x8.ebx = x8.ecx = x8.edx = 0;
    t.put(CpuidEntry{0x80000009, 0, 0, 0, 0, 0, 0});
    t.put(CpuidEntry{0x8000000a, 0, 0, 0, 0, 0, 0}); // SVM off

    CpuidEntry& kf = t.ensure(kKvmFeaturesLeaf);
    kf.eax &= kQemu64KvmFeatures;
}

// The caches QEMU presents unless told to pass the host's through (host-cache-info=off, the
// default, also for -cpu host): its "legacy" L1d/L1i 32 KiB 8-way, L2 4 MiB 16-way, L3 16 MiB
// 16-way in leaves 2 and 4, and the AMD-style L1/L2 descriptions in 0x80000005/6. Values as QEMU
// 7.2 returns them (measured on this host). QEMU leaves 2 and 4 empty on AMD (vendor_cpuid_only).
void put_qemu_caches(Table& t, bool amd, unsigned n, uint32_t level, uint32_t xlevel) {
    t.erase_leaf(2);
    t.erase_leaf(4);
    if (level >= 2)
        t.put(amd ? CpuidEntry{2, 0, 0, 0, 0, 0, 0} : CpuidEntry{2, 0, 0, 1, 0, 0x4d, 0x002c307d});
    if (level >= 4) {
        if (amd) {
            t.put(CpuidEntry{4, 0, kCpuidSignificantIndex, 0, 0, 0, 0});
        } else {
            // EAX[4:0] type, [7:5] level, bit 8 self-initialising; EBX ways-1 << 22 | line-1;
            // ECX sets-1; EDX bit 0 no-INVD-sharing, bit 1 inclusive, bit 2 complex indexing.
            struct Cache {
                uint32_t eax, ebx, ecx, edx;
            };
            static constexpr Cache caches[4] = {{0x121, 0x01c0003f, 0x3f, 1},
                                                {0x122, 0x01c0003f, 0x3f, 1},
                                                {0x143, 0x03c0003f, 0xfff, 1},
                                                {0x163, 0x03c0003f, 0x3fff, 6}};
            // Cores per package - 1 in EAX[31:26]; APIC IDs sharing the cache - 1 in [25:14]:
            // one (the core's single thread) for L1/L2, all the package's for L3.
            const uint32_t cores = std::min(n, 64u) - 1;
            const uint32_t package_ids = std::min((1u << bits_for_count(n)), 4096u) - 1;
            for (uint32_t i = 0; i < 4; i++) {
                const uint32_t sharing = i == 3 ? package_ids : 0;
                t.put(CpuidEntry{4, i, kCpuidSignificantIndex,
                                 caches[i].eax | (sharing << 14) | (cores << 26), caches[i].ebx,
                                 caches[i].ecx, caches[i].edx});
            }
            t.put(CpuidEntry{4, 4, kCpuidSignificantIndex, 0, 0, 0, 0});
        }
    }
    if (xlevel >= 0x80000005)
        t.put(CpuidEntry{0x80000005, 0, 0, 0x01ff01ff, 0x01ff01ff, 0x40020140, 0x40020140});
    if (xlevel >= 0x80000006)
        t.put(CpuidEntry{0x80000006, 0, 0, 0, 0x42004200, 0x02008140, 0x00808140});
}

// Leaf 0xB or 0x1F: SMT level (1 thread) and core level (`n` cores), then the invalid level.
void put_extended_topology(Table& t, uint32_t leaf, unsigned apic_id, unsigned n) {
    t.erase_leaf(leaf);
    const uint32_t core_bits = bits_for_count(n);
    const uint32_t logical = std::min(n, 0xffffu);
    t.put(CpuidEntry{leaf, 0, kCpuidSignificantIndex, 0, 1, (1u << 8) | 0, apic_id});
    t.put(CpuidEntry{leaf, 1, kCpuidSignificantIndex, core_bits, logical, (2u << 8) | 1, apic_id});
    t.put(CpuidEntry{leaf, 2, kCpuidSignificantIndex, 0, 0, 2, apic_id});
}

} // namespace

std::optional<CpuModel> parse_cpu_model(const std::string& name) {
    if (name == "host" || name == "max") return CpuModel::Host;
    if (name == "qemu64") return CpuModel::Qemu64;
    return std::nullopt;
}

const CpuidEntry* find_cpuid(std::span<const CpuidEntry> table, uint32_t function, uint32_t index) {
    for (const auto& x : table)
        if (x.function == function && (!(x.flags & kCpuidSignificantIndex) || x.index == index))
            return &x;
    return nullptr;
}

std::vector<CpuidEntry> build_guest_cpuid(std::span<const CpuidEntry> supported,
                                          const CpuidConfig& config) {
    Table t(supported);
    const bool amd = vendor_is_amd(t);
    const unsigned n = std::max(1u, config.vcpu_count);
    const unsigned apic_id = config.vcpu_index;

    // Hypervisor leaves: only KVM's signature and feature leaves, as QEMU without Hyper-V.
    uint32_t kvm_features = 0;
    if (const CpuidEntry* kf = t.find(kKvmFeaturesLeaf)) kvm_features = kf->eax;
    t.erase_if(
        [](const CpuidEntry& x) { return x.function >= 0x40000000 && x.function < 0x80000000; });
    CpuidEntry sig{kKvmSignatureLeaf, 0, 0, kKvmFeaturesLeaf, 0, 0, 0};
    std::memcpy(&sig.ebx, "KVMK", 4);
    std::memcpy(&sig.ecx, "VMKV", 4);
    std::memcpy(&sig.edx, "M\0\0\0", 4);
    t.put(sig);
    t.put(CpuidEntry{kKvmFeaturesLeaf, 0, 0, kvm_features & ~kKvmFeaturesNeverOffered, 0, 0, 0});

    if (config.model == CpuModel::Qemu64) apply_qemu64(t, amd);

    CpuidEntry& l0 = t.ensure(0);
    const uint32_t level = l0.eax;
    const uint32_t xlevel = t.find(0x80000000) ? t.find(0x80000000)->eax : 0;

    // Leaf 1: initial APIC ID, logical processor count (QEMU leaves it 0 and HTT clear for one
    // CPU), hypervisor present.
    CpuidEntry& l1 = t.ensure(1);
    l1.ebx = (l1.ebx & 0xffff) | ((apic_id & 0xff) << 24);
    if (n > 1) {
        l1.ebx |= std::min(n, 255u) << 16;
        l1.edx |= kHtt;
    } else {
        l1.edx &= ~kHtt;
    }
    l1.ecx |= kHypervisor;
    if (!config.kernel_irqchip) {
        // The device model's LAPIC is xAPIC only and has no TSC-deadline mode (KVM would silently
        // drop IA32_TSC_DEADLINE writes without its own LAPIC).
        l1.ecx &= ~(kX2apic | kTscDeadline);
        t.find(kKvmFeaturesLeaf)->eax &= ~kKvmFeaturesNeedKernelLapic;
    }

    put_qemu_caches(t, amd, n, level, xlevel);
    // MONITOR/MWAIT leaf: QEMU reports EMX and IBE whatever the model (its cpu->mwait default).
    if (level >= 5) t.put(CpuidEntry{5, 0, 0, 0, 0, 3, 0});

    if (level >= 0xb)
        put_extended_topology(t, 0xb, apic_id, n);
    else
        t.erase_leaf(0xb);
    if (level >= 0x1f)
        put_extended_topology(t, 0x1f, apic_id, n);
    else
        t.erase_leaf(0x1f);

    // The vendor again in 0x80000000 and the signature in 0x80000001 EAX, as QEMU fills them for
    // every model and vendor.
    if (xlevel >= 0x80000001) {
        CpuidEntry& x0 = t.ensure(0x80000000);
        x0.ebx = l0.ebx;
        x0.ecx = l0.ecx;
        x0.edx = l0.edx;
        t.ensure(0x80000001).eax = l1.eax;
    }
    // Cores in the package (ECX[7:0]) and APIC ID bits (ECX[15:12]); QEMU sets these for any
    // vendor.
    const uint32_t core_bits = bits_for_count(n);
    if (xlevel >= 0x80000008) {
        CpuidEntry& x8 = t.ensure(0x80000008);
        x8.ecx = (x8.ecx & ~0xf0ffu) | ((core_bits & 0xf) << 12) | ((std::min(n, 256u) - 1) & 0xff);
    }
    if (amd) {
        // CmpLegacy when there are several cores, and the extended APIC ID / core ID in 0x8000001E
        // (one node, one thread per core).
        if (CpuidEntry* x1 = t.find(0x80000001)) {
            if (n > 1)
                x1->ecx |= kCmpLegacy;
            else
                x1->ecx &= ~kCmpLegacy;
        }
        if (xlevel >= 0x8000001e) {
            if (CpuidEntry* x1e = t.find(0x8000001e)) {
                x1e->eax = apic_id;
                x1e->ebx = apic_id & 0xff; // compute unit (core) ID; threads per core - 1 = 0
                x1e->ecx = 0;              // node 0 of 1
            }
        }
    }

    std::vector<CpuidEntry> out;
    out.reserve(t.e.size());
    for (const auto& [key, x] : t.e) out.push_back(x);
    return out;
}

} // namespace hvm
