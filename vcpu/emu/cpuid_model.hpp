// The CPU model hvm's emulator presents through CPUID: QEMU's qemu64 feature set with Intel's
// vendor string (the emulator reproduces Intel's undefined-flag behaviour), limited to what the
// emulator implements. x87/MMX/SSE feature bits switch on when fpu_sse.cpp implements them.
#pragma once
#include <cstdint>

namespace hvm::emu {

struct CpuidResult {
    uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

// Whether the x87/MMX/SSE/SSE2 unit is implemented (fpu_sse.cpp); CPUID hides those features
// until it is, so that guests do not rely on instructions that would raise #UD.
bool fpu_sse_implemented();

CpuidResult cpuid_model(uint32_t leaf, uint32_t subleaf, unsigned vcpu_index);

} // namespace hvm::emu
