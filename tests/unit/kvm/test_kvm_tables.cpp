// The parts of the KVM engine that are pure functions: the guest CPUID table, QEMU's GSI routing,
// the 8254 output formula, /proc/cpuinfo parsing and the user-facing errors. No /dev/kvm needed.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "base/error.hpp"
#include "vcpu/kvm/kvm_cpuid.hpp"
#include "vcpu/kvm/kvm_engine.hpp"
#include "vcpu/kvm/kvm_irq_routing.hpp"

using namespace hvm;
using namespace hvm::cpuid_bits;

namespace {

constexpr uint32_t S = kCpuidSignificantIndex;

// KVM_GET_SUPPORTED_CPUID as KVM-PVM reports it on an Intel Xeon (Sapphire Rapids) host.
const std::vector<CpuidEntry> kIntelSupported = {
    {0x0, 0, 0, 0x00000024, 0x756e6547, 0x6c65746e, 0x49656e69},
    {0x1, 0, 0, 0x000a0671, 0x01020800, 0x81202000, 0x0f8bfbff},
    {0x2, 0, 0, 0x00feff01, 0x000000f0, 0, 0},
    {0x4, 0, S, 0x04000121, 0x02c0003f, 0x0000003f, 0},
    {0x4, 1, S, 0x04000122, 0x03c0003f, 0x0000003f, 0},
    {0x4, 2, S, 0x04000143, 0x03c0003f, 0x000007ff, 0},
    {0x4, 3, S, 0x04004163, 0x03c0003f, 0x00077fff, 0},
    {0x4, 4, S, 0, 0, 0, 0},
    {0x6, 0, 0, 0x00000004, 0, 0, 0},
    {0x7, 0, S, 0x00000002, 0x01802852, 0x1a010104, 0x20010000},
    {0x7, 1, S, 0x00001c00, 0, 0, 0x00004000},
    {0xb, 0, S, 0, 0, 0, 1},
    {0xd, 0, S, 0x000000e7, 0x00000a80, 0x00000a80, 0},
    {0xd, 1, S, 0, 0, 0, 0},
    {0xd, 2, S, 0x00000100, 0x00000240, 0, 0},
    {0x1f, 0, S, 0, 0, 0, 1},
    {0x24, 0, S, 0, 0, 0, 0},
    {0x80000000, 0, 0, 0x80000008, 0, 0, 0},
    {0x80000001, 0, 0, 0, 0, 0x00000101, 0x20100800},
    {0x80000006, 0, 0, 0, 0, 0x08007040, 0},
    {0x80000007, 0, 0, 0, 0, 0, 0x00000100},
    {0x80000008, 0, 0, 0x00003930, 0, 0, 0},
    {0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x0000004d},
    {0x40000001, 0, 0, 0x01007efb, 0, 0, 0},
};

// A synthetic AMD host (EPYC-like values) with topology extensions.
const std::vector<CpuidEntry> kAmdSupported = {
    {0x0, 0, 0, 0x00000010, 0x68747541, 0x444d4163, 0x69746e65}, // "AuthenticAMD"
    {0x1, 0, 0, 0x00a00f11, 0x00080800, 0xf6d83203, 0x178bfbff},
    {0x7, 0, S, 0, 0x219c97a9, 0x0040068c, 0x00000010},
    {0xd, 0, S, 0x00000007, 0x00000340, 0x00000340, 0},
    {0x80000000, 0, 0, 0x80000021, 0x68747541, 0x444d4163, 0x69746e65},
    {0x80000001, 0, 0, 0x00a00f11, 0, 0x75c237ff, 0x2fd3fbff},
    {0x80000008, 0, 0, 0x00003030, 0x0100d000, 0x0000000f, 0},
    {0x8000001e, 0, 0, 0x00000003, 0x00000101, 0x00000000, 0},
    {0x40000000, 0, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x0000004d},
    {0x40000001, 0, 0, 0x01007efb, 0, 0, 0},
};

const CpuidEntry& leaf(const std::vector<CpuidEntry>& t, uint32_t fn, uint32_t idx = 0) {
    const CpuidEntry* e = find_cpuid(t, fn, idx);
    REQUIRE(e != nullptr);
    return *e;
}

// Leaf 0 order: EBX, EDX, ECX.
std::string vendor_string(const CpuidEntry& e) {
    char b[13] = {};
    std::memcpy(b, &e.ebx, 4);
    std::memcpy(b + 4, &e.edx, 4);
    std::memcpy(b + 8, &e.ecx, 4);
    return std::string(b);
}

std::string regs_string(const CpuidEntry& e, bool eax_first) {
    char b[17] = {};
    if (eax_first) {
        std::memcpy(b, &e.eax, 4);
        std::memcpy(b + 4, &e.ebx, 4);
        std::memcpy(b + 8, &e.ecx, 4);
        std::memcpy(b + 12, &e.edx, 4);
    } else {
        std::memcpy(b, &e.ebx, 4);
        std::memcpy(b + 4, &e.ecx, 4);
        std::memcpy(b + 8, &e.edx, 4);
    }
    return std::string(b);
}

} // namespace

TEST_CASE("cpu model names: host, max and qemu64; anything else is unknown") {
    CHECK(parse_cpu_model("host") == CpuModel::Host);
    CHECK(parse_cpu_model("max") == CpuModel::Host);
    CHECK(parse_cpu_model("qemu64") == CpuModel::Qemu64);
    CHECK_FALSE(parse_cpu_model("pentium9").has_value());
    CHECK_FALSE(parse_cpu_model("").has_value());
}

TEST_CASE("an unknown -cpu model is a UserError before /dev/kvm is touched") {
    EngineConfig c;
    c.cpu_model = "pentium9";
    CHECK_THROWS_AS(KvmEngine(c, "/nonexistent/kvm"), UserError);
    try {
        KvmEngine e(c, "/nonexistent/kvm");
    } catch (const UserError& e) {
        CHECK(std::string(e.what()).find("pentium9") != std::string::npos);
    }
}

TEST_CASE("a missing KVM device is a one-line UserError that names -accel emu") {
    EngineConfig c;
    try {
        KvmEngine e(c, "/nonexistent/kvm");
        FAIL("no exception");
    } catch (const UserError& e) {
        std::string m = e.what();
        CHECK(m ==
              "/nonexistent/kvm: No such file or directory (KVM is not available; use -accel emu)");
        CHECK(m.find('\n') == std::string::npos);
    }
}

TEST_CASE("zero vCPUs is a UserError") {
    EngineConfig c;
    c.vcpus = 0;
    CHECK_THROWS_AS(KvmEngine(c, "/nonexistent/kvm"), UserError);
}

TEST_CASE("host model: APIC ID, count, HTT and hypervisor bit in leaf 1") {
    CpuidConfig cc;
    cc.vcpu_index = 2;
    cc.vcpu_count = 4;
    auto t = build_guest_cpuid(kIntelSupported, cc);
    const CpuidEntry& l1 = leaf(t, 1);
    CHECK(l1.eax == 0x000a0671);         // the host's signature
    CHECK((l1.ebx >> 24) == 2);          // initial APIC ID = vCPU index (the host said 1)
    CHECK(((l1.ebx >> 16) & 0xff) == 4); // logical processors in the package
    CHECK(((l1.ebx >> 8) & 0xff) == 8);  // CLFLUSH line size kept
    CHECK((l1.edx & kHtt) != 0);
    CHECK((l1.ecx & kHypervisor) != 0);
    CHECK((l1.ecx & kX2apic) != 0);
    CHECK((l1.ecx & kTscDeadline) != 0);
    CHECK((l1.ecx & kCx16) != 0);
}

TEST_CASE("one vCPU: no HTT and a zero logical count, as QEMU") {
    CpuidConfig cc;
    auto t = build_guest_cpuid(kIntelSupported, cc);
    const CpuidEntry& l1 = leaf(t, 1);
    CHECK((l1.edx & kHtt) == 0);
    CHECK(((l1.ebx >> 16) & 0xff) == 0);
    CHECK((l1.ebx >> 24) == 0);
}

TEST_CASE("caches: QEMU's legacy descriptions, with cores and sharing from the vCPU count") {
    CpuidConfig cc;
    cc.vcpu_count = 3;
    for (CpuModel m : {CpuModel::Host, CpuModel::Qemu64}) {
        cc.model = m;
        auto t = build_guest_cpuid(kIntelSupported, cc);
        const CpuidEntry& l2 = leaf(t, 2);
        CHECK(l2.eax == 1);
        CHECK(l2.ecx == 0x4d);
        CHECK(l2.edx == 0x002c307d);
        // (EAX low bits, EBX, ECX, EDX) of L1d, L1i, L2, L3 as QEMU 7.2 shows them
        const uint32_t expect[4][4] = {{0x121, 0x01c0003f, 0x3f, 1},
                                       {0x122, 0x01c0003f, 0x3f, 1},
                                       {0x143, 0x03c0003f, 0xfff, 1},
                                       {0x163, 0x03c0003f, 0x3fff, 6}};
        for (uint32_t i = 0; i < 4; i++) {
            const CpuidEntry& e = leaf(t, 4, i);
            CHECK((e.eax & 0x3fff) == expect[i][0]);
            CHECK((e.eax >> 26) == 2); // 3 cores - 1
            // APIC IDs sharing the cache - 1: the core's own for L1/L2, the 4 IDs of the package
            // for L3
            CHECK(((e.eax >> 14) & 0xfff) == (i == 3 ? 3u : 0u));
            CHECK(e.ebx == expect[i][1]);
            CHECK(e.ecx == expect[i][2]);
            CHECK(e.edx == expect[i][3]);
        }
        CHECK(leaf(t, 4, 4).eax == 0); // no fifth cache
        CHECK(leaf(t, 0x80000005).ecx == 0x40020140);
        CHECK(leaf(t, 0x80000006).ecx == 0x02008140);
        CHECK(leaf(t, 5).ecx == 3); // MONITOR leaf: EMX | IBE, as QEMU
    }
}

TEST_CASE("QEMU repeats the vendor in 0x80000000 and the signature in 0x80000001; core count in "
          "0x80000008") {
    CpuidConfig cc;
    cc.vcpu_count = 2;
    auto t = build_guest_cpuid(kIntelSupported, cc);
    CHECK(vendor_string(leaf(t, 0x80000000)) == "GenuineIntel");
    CHECK(leaf(t, 0x80000001).eax == 0x000a0671);
    CHECK(leaf(t, 0x80000008).ecx == 0x1001); // 2 cores, 1 APIC ID bit: what QEMU shows here
    CHECK(leaf(t, 0x80000008).eax == 0x3930); // host phys/virt bits for the host model
    cc.vcpu_count = 1;
    CHECK(leaf(build_guest_cpuid(kIntelSupported, cc), 0x80000008).ecx == 0);
}

TEST_CASE("leaf 0xB and 0x1F: one thread per core, N cores, x2APIC ID = index") {
    CpuidConfig cc;
    cc.vcpu_index = 5;
    cc.vcpu_count = 6;
    auto t = build_guest_cpuid(kIntelSupported, cc);
    for (uint32_t fn : {0xbu, 0x1fu}) {
        const CpuidEntry& smt = leaf(t, fn, 0);
        const CpuidEntry& core = leaf(t, fn, 1);
        const CpuidEntry& end = leaf(t, fn, 2);
        CHECK(smt.eax == 0);
        CHECK(smt.ebx == 1);
        CHECK(smt.ecx == 0x100);
        CHECK(smt.edx == 5);
        CHECK(core.eax == 3); // 6 cores need 3 APIC ID bits
        CHECK(core.ebx == 6);
        CHECK(core.ecx == 0x201);
        CHECK(core.edx == 5);
        CHECK(((end.ecx >> 8) & 0xff) == 0); // invalid level ends the enumeration
        CHECK(end.edx == 5);
        CHECK((smt.flags & kCpuidSignificantIndex) != 0);
    }
}

TEST_CASE("KVM signature and QEMU's default KVM features in the hypervisor leaves") {
    CpuidConfig cc;
    auto host = build_guest_cpuid(kIntelSupported, cc);
    CHECK(regs_string(leaf(host, 0x40000000), false) == "KVMKVMKVM");
    CHECK(leaf(host, 0x40000000).eax == 0x40000001);
    // host: what KVM offers among the features QEMU knows (not bit 10, ASYNC_PF_VMEXIT), as
    // QEMU -cpu host shows on this host
    CHECK(leaf(host, 0x40000001).eax == 0x01007afb);

    cc.model = CpuModel::Qemu64;
    auto q = build_guest_cpuid(kIntelSupported, cc);
    // kvmclock, kvm-nopiodelay, kvm-asyncpf, kvm-steal-time, kvm-pv-eoi, kvmclock-stable-bit
    CHECK(leaf(q, 0x40000001).eax == 0x0100007b);
}

TEST_CASE("userspace irqchip: no x2APIC, no TSC deadline, no LAPIC-only PV features") {
    CpuidConfig cc;
    cc.kernel_irqchip = false;
    auto t = build_guest_cpuid(kIntelSupported, cc);
    CHECK((leaf(t, 1).ecx & (kX2apic | kTscDeadline)) == 0);
    CHECK((leaf(t, 0x40000001).eax & (kKvmPvEoi | kKvmPvUnhalt | kKvmPvSendIpi | kKvmAsyncPfInt)) ==
          0);
    CHECK((leaf(t, 0x40000001).eax & kKvmClocksource2) != 0);
}

TEST_CASE("qemu64 on an Intel host: QEMU's model intersected with KVM, host vendor") {
    CpuidConfig cc;
    cc.model = CpuModel::Qemu64;
    cc.vcpu_count = 2;
    cc.vcpu_index = 1;
    auto t = build_guest_cpuid(kIntelSupported, cc);
    CHECK(leaf(t, 0).eax == 0xd);
    CHECK(vendor_string(leaf(t, 0)) == "GenuineIntel");
    const CpuidEntry& l1 = leaf(t, 1);
    CHECK(l1.eax == 0x00060fb1); // family 15, model 107, stepping 1
    CHECK(l1.edx == (0x078bfbfdu | kHtt));
    // SSE3 is in the model but this host's KVM lacks it (QEMU warns "pni" the same way)
    CHECK(l1.ecx == (kCx16 | kX2apic | kHypervisor));
    CHECK((l1.ebx >> 24) == 1);
    CHECK(leaf(t, 7, 0).ebx == 0);
    CHECK(leaf(t, 7, 0).ecx == 0);
    CHECK(find_cpuid(t, 7, 1) == nullptr);
    CHECK(leaf(t, 0xd, 0).eax == 0); // no XSAVE
    CHECK(find_cpuid(t, 0x1f, 0) == nullptr);
    CHECK(find_cpuid(t, 0x24, 0) == nullptr);
    CHECK(leaf(t, 0xb, 1).ebx == 2);
    CHECK(leaf(t, 0x80000000).eax == 0x8000000a);
    const CpuidEntry& x1 = leaf(t, 0x80000001);
    CHECK(x1.ecx == kLahfLm);
    CHECK(x1.edx == (kLm | kSyscall | kNx));
    CHECK(x1.eax == 0x00060fb1);
    std::string brand = regs_string(leaf(t, 0x80000002), true) +
                        regs_string(leaf(t, 0x80000003), true) +
                        regs_string(leaf(t, 0x80000004), true);
    CHECK(brand == "QEMU Virtual CPU version 2.5+");
    CHECK(leaf(t, 0x80000007).edx == 0);      // no invariant TSC
    CHECK(leaf(t, 0x80000008).eax == 0x3028); // 40 physical, 48 virtual bits
    CHECK(leaf(t, 0x8000000a).eax == 0);      // no SVM
}

TEST_CASE("qemu64 on an AMD host: AMD aliases in 0x80000001 EDX, no SVM, topology") {
    CpuidConfig cc;
    cc.model = CpuModel::Qemu64;
    cc.vcpu_count = 4;
    cc.vcpu_index = 3;
    auto t = build_guest_cpuid(kAmdSupported, cc);
    const CpuidEntry& l1 = leaf(t, 1);
    const CpuidEntry& x1 = leaf(t, 0x80000001);
    CHECK((x1.ecx & kSvm) == 0);
    CHECK((x1.ecx & kCmpLegacy) != 0);
    CHECK((x1.edx & 0x0183f3ffu) == (l1.edx & 0x0183f3ffu)); // CPUID_EXT2_AMD_ALIASES
    CHECK((x1.edx & (kLm | kNx | kSyscall)) == (kLm | kNx | kSyscall));
    CHECK((l1.ecx & kSse3) != 0);
    CHECK(leaf(t, 0x80000008).ecx == ((2u << 12) | 3)); // 4 cores, 2 APIC ID bits
    CHECK(find_cpuid(t, 0x8000001e) == nullptr);        // beyond qemu64's xlevel
}

TEST_CASE("host model on AMD: 0x8000001E carries the APIC ID and core ID") {
    CpuidConfig cc;
    cc.vcpu_count = 2;
    cc.vcpu_index = 1;
    auto t = build_guest_cpuid(kAmdSupported, cc);
    const CpuidEntry& e = leaf(t, 0x8000001e);
    CHECK(e.eax == 1);
    CHECK(e.ebx == 1);
    CHECK(e.ecx == 0);
    CHECK((leaf(t, 0x80000008).ecx & 0xff) == 1);
    CHECK((leaf(t, 0x80000001).ecx & kCmpLegacy) != 0);
    CHECK((leaf(t, 0x80000001).ecx & kSvm) != 0); // host model keeps what KVM offers
}

TEST_CASE("QEMU's pc GSI routing: GSI 0 -> IOAPIC pin 2, nothing for GSI 2") {
    auto routes = pc_gsi_routes();
    auto count = [&](unsigned gsi, GsiRoute::Chip chip, unsigned pin) {
        int n = 0;
        for (auto& r : routes) n += r.gsi == gsi && r.chip == chip && r.pin == pin;
        return n;
    };
    CHECK(routes.size() == 7 + 8 + 23);
    CHECK(count(0, GsiRoute::Chip::PicMaster, 0) == 1);
    CHECK(count(0, GsiRoute::Chip::Ioapic, 2) == 1);
    CHECK(count(0, GsiRoute::Chip::Ioapic, 0) == 0);
    for (auto& r : routes) CHECK(r.gsi != 2);
    for (unsigned g = 1; g < 8; g++)
        if (g != 2) CHECK(count(g, GsiRoute::Chip::PicMaster, g) == 1);
    for (unsigned g = 8; g < 16; g++) CHECK(count(g, GsiRoute::Chip::PicSlave, g - 8) == 1);
    for (unsigned g = 1; g < 24; g++)
        if (g != 2) CHECK(count(g, GsiRoute::Chip::Ioapic, g) == 1);
    for (auto& r : routes) {
        CHECK(r.gsi < 24);
        if (r.chip != GsiRoute::Chip::Ioapic) CHECK(r.pin < 8);
    }
}

TEST_CASE("8254 OUT formula (KVM/QEMU pit_get_out)") {
    const int64_t tick = 838; // ns per PIT tick, rounded down: never reaches the next tick
    // mode 0: low until terminal count
    CHECK_FALSE(pit_counter_output(0, 100, 0));
    CHECK_FALSE(pit_counter_output(0, 100, 99 * 838 + 800));
    CHECK(pit_counter_output(0, 100, 101 * 838));
    // count 0 means 65536
    CHECK_FALSE(pit_counter_output(0, 0, 65535 * tick));
    CHECK(pit_counter_output(0, 0, 65537 * 839));
    // mode 1: high until terminal count
    CHECK(pit_counter_output(1, 10, 0));
    CHECK_FALSE(pit_counter_output(1, 10, 11 * 839));
    // mode 3: square wave, high in the first half of each period
    CHECK(pit_counter_output(3, 100, 10 * 839));
    CHECK_FALSE(pit_counter_output(3, 100, 60 * 839));
    CHECK(pit_counter_output(3, 100, 110 * 839));
    // mode 2: the terminal tick only
    CHECK_FALSE(pit_counter_output(2, 10, 0));
    CHECK(pit_counter_output(2, 10, 10 * 839));
    CHECK_FALSE(pit_counter_output(2, 10, 11 * 839));
    // KVM's reset mode 0xff behaves as mode 0; negative time as 0
    CHECK_FALSE(pit_counter_output(0xff, 100, -5));
    // days of uptime do not overflow
    CHECK(pit_counter_output(0, 0x10000, int64_t(86400) * 1000000000 * 30));
}

TEST_CASE("hardware virtualisation is read from the cpuinfo flags words") {
    CHECK(KvmEngine::cpuinfo_has_hardware_virt("processor\t: 0\nflags\t\t: fpu vme vmx sse\n"));
    CHECK(KvmEngine::cpuinfo_has_hardware_virt("flags\t\t: fpu svm\n"));
    CHECK_FALSE(KvmEngine::cpuinfo_has_hardware_virt("flags\t\t: fpu vme hypervisor svm_lock\n"));
    CHECK_FALSE(KvmEngine::cpuinfo_has_hardware_virt("model name\t: vmx svm\nflags\t\t: fpu\n"));
    CHECK_FALSE(KvmEngine::cpuinfo_has_hardware_virt(""));
}
