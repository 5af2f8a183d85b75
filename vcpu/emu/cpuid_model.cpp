#include "vcpu/emu/cpuid_model.hpp"

#include <cstring>

namespace hvm::emu {

namespace {
// CPUID.1 EDX / ECX and CPUID.80000001 EDX / ECX bits (SDM Vol. 2 CPUID).
constexpr uint32_t kFpu = 1u << 0;
constexpr uint32_t kPse = 1u << 3;
constexpr uint32_t kTsc = 1u << 4;
constexpr uint32_t kMsr = 1u << 5;
constexpr uint32_t kPae = 1u << 6;
constexpr uint32_t kCx8 = 1u << 8;
constexpr uint32_t kApic = 1u << 9;
constexpr uint32_t kSep = 1u << 11;
constexpr uint32_t kMtrr = 1u << 12;
constexpr uint32_t kPge = 1u << 13;
constexpr uint32_t kCmov = 1u << 15;
constexpr uint32_t kPat = 1u << 16;
constexpr uint32_t kPse36 = 1u << 17;
constexpr uint32_t kClflush = 1u << 19;
constexpr uint32_t kMmx = 1u << 23;
constexpr uint32_t kFxsr = 1u << 24;
constexpr uint32_t kSse = 1u << 25;
constexpr uint32_t kSse2 = 1u << 26;
constexpr uint32_t kSse3 = 1u << 0;
constexpr uint32_t kCx16 = 1u << 13;
constexpr uint32_t kPopcnt = 1u << 23;
constexpr uint32_t kHypervisor = 1u << 31;
constexpr uint32_t kSyscall = 1u << 11;
constexpr uint32_t kNx = 1u << 20;
constexpr uint32_t kRdtscp = 1u << 27;
constexpr uint32_t kLm = 1u << 29;
constexpr uint32_t kLahfLm = 1u << 0;
constexpr uint32_t kAbm = 1u << 5;

void put_str(uint32_t* regs, const char* s) {
    memcpy(regs, s, 16);
}
} // namespace

CpuidResult cpuid_model(uint32_t leaf, uint32_t subleaf, unsigned vcpu_index) {
    CpuidResult r;
    const bool fpu = fpu_sse_implemented();
    switch (leaf) {
    case 0:
        r.eax = 7;
        memcpy(&r.ebx, "Genu", 4);
        memcpy(&r.edx, "ineI", 4);
        memcpy(&r.ecx, "ntel", 4);
        break;
    case 1:
        r.eax = 0x663; // family 6, model 6, stepping 3 (qemu64's Intel-side signature)
        r.ebx = (vcpu_index & 0xff) << 24 | 1u << 16 | 8u << 8; // APIC ID, 1 logical, CLFLUSH 64
        r.ecx = kCx16 | kPopcnt | kHypervisor | (fpu ? kSse3 : 0);
        r.edx = kPse | kTsc | kMsr | kPae | kCx8 | kApic | kSep | kMtrr | kPge | kCmov | kPat |
                kPse36 | kClflush | (fpu ? (kFpu | kMmx | kFxsr | kSse | kSse2) : 0);
        break;
    case 4:
    case 7:
        (void)subleaf; // no deterministic cache parameters, no structured extended features
        break;
    case 0x40000000: // hypervisor leaf: no paravirtual interface
        break;
    case 0x80000000: r.eax = 0x80000008; break;
    case 0x80000001:
        r.ecx = kLahfLm | kAbm;
        r.edx = kSyscall | kNx | kRdtscp | kLm;
        break;
    case 0x80000002:
    case 0x80000003:
    case 0x80000004: {
        static const char brand[49] =
            "QEMU Virtual CPU version 2.5+\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        uint32_t regs[4];
        put_str(regs, brand + (leaf - 0x80000002) * 16);
        r.eax = regs[0];
        r.ebx = regs[1];
        r.ecx = regs[2];
        r.edx = regs[3];
        break;
    }
    case 0x80000008: r.eax = 0x3028; break; // 40 physical, 48 linear address bits
    default: break;
    }
    return r;
}

} // namespace hvm::emu
