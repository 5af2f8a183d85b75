// Shared pieces of the x87/MMX/SSE differential tests: a host runner that loads a full FXSAVE
// image and the GPRs into the host CPU, runs one instruction from an executable buffer and saves
// everything back; an emulator runner doing the same through EmuVcpu in 64-bit mode; and random
// operand generators biased towards the floating-point special cases.
#pragma once
#include <doctest/doctest.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <sys/mman.h>
#include <vector>

#include "tests/unit/emu/emu_harness.hpp"
#include "vcpu/emu/fpu_state.hpp"

namespace fpu_test {

using namespace emu_test;

struct alignas(16) HostCtx {
    uint64_t gpr[16];  // 0
    uint64_t flags;    // 128
    uint64_t code;     // 136
    uint8_t fx[512];   // 144: input image
    uint8_t out[512];  // 656: image after the instruction
    uint8_t host[512]; // 1168: the test's own FPU state
};
static_assert(offsetof(HostCtx, fx) == 144 && offsetof(HostCtx, out) == 656 &&
              offsetof(HostCtx, host) == 1168);

extern "C" void fpu_test_host_run(HostCtx* ctx);

// rdi = ctx. Loads the image, flags and all GPRs but RSP; calls the code (instruction + RET);
// stores them back; restores the test's FPU state. FXSAVE/FXRSTOR do not wait, so an unmasked
// x87 exception stays pending in the saved image instead of trapping here.
asm(R"(
    .text
    .globl fpu_test_host_run
    .type fpu_test_host_run, @function
fpu_test_host_run:
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    push %rdi
    pushq 136(%rdi)
    fxsave64 1168(%rdi)
    fxrstor64 144(%rdi)
    pushq 128(%rdi)
    popfq
    mov 0(%rdi), %rax
    mov 8(%rdi), %rcx
    mov 16(%rdi), %rdx
    mov 24(%rdi), %rbx
    mov 40(%rdi), %rbp
    mov 48(%rdi), %rsi
    mov 64(%rdi), %r8
    mov 72(%rdi), %r9
    mov 80(%rdi), %r10
    mov 88(%rdi), %r11
    mov 96(%rdi), %r12
    mov 104(%rdi), %r13
    mov 112(%rdi), %r14
    mov 120(%rdi), %r15
    mov 56(%rdi), %rdi
    call *(%rsp)
    push %rdi
    mov 16(%rsp), %rdi
    mov %rax, 0(%rdi)
    mov %rcx, 8(%rdi)
    mov %rdx, 16(%rdi)
    mov %rbx, 24(%rdi)
    mov %rbp, 40(%rdi)
    mov %rsi, 48(%rdi)
    mov %r8, 64(%rdi)
    mov %r9, 72(%rdi)
    mov %r10, 80(%rdi)
    mov %r11, 88(%rdi)
    mov %r12, 96(%rdi)
    mov %r13, 104(%rdi)
    mov %r14, 112(%rdi)
    mov %r15, 120(%rdi)
    pop %rax
    mov %rax, 56(%rdi)
    pushfq
    pop %rax
    mov %rax, 128(%rdi)
    fxsave64 656(%rdi)
    fxrstor64 1168(%rdi)
    add $8, %rsp
    pop %rdi
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    ret
    .size fpu_test_host_run, .-fpu_test_host_run
)");

// The instruction under test, as the host runs it (followed by RET) and as the guest runs it
// (followed by HLT, with exception handlers that HLT at kHandlers + 16 * vector).
inline constexpr uint64_t kHandlers = kCode + 0x1000;

class Runner {
  public:
    Runner() {
        code_ = static_cast<uint8_t*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        REQUIRE(code_ != MAP_FAILED);
        data_ = static_cast<uint8_t*>(aligned_alloc(64, 4096));
        for (unsigned v = 0; v < 32; v++) {
            m.set_gate64(v, kHandlers + 16 * v);
            m.poke<uint8_t>(kHandlers + 16 * v, 0xf4);
        }
        base = m.long_mode_state();
        base.cr0 |= hvm::emu::kCr0NE | hvm::emu::kCr0MP;
        base.cr4 |= hvm::emu::kCr4OsFxsr | hvm::emu::kCr4OsXmmExcpt;
    }
    ~Runner() {
        munmap(code_, 4096);
        free(data_);
    }

    // Inputs (set by the test): GPRs (RSI is replaced by the data buffer's address), status
    // flags, the FXSAVE image and 256 bytes of memory operand at [rsi].
    uint64_t gpr[16] = {};
    uint64_t flags = 2;
    alignas(16) uint8_t fx[512] = {};
    uint8_t mem[1024] = {};

    // Results.
    struct Out {
        uint64_t gpr[16];
        uint64_t flags;
        alignas(16) uint8_t fx[512];
        uint8_t mem[1024];
        int vector = -1; // emulator only: exception raised, -1 none
    };

    void run_host(const std::vector<uint8_t>& insn, Out& o) {
        memcpy(code_, insn.data(), insn.size());
        code_[insn.size()] = 0xc3;
        __builtin___clear_cache(reinterpret_cast<char*>(code_),
                                reinterpret_cast<char*>(code_ + insn.size() + 1));
        HostCtx c{};
        memcpy(c.gpr, gpr, sizeof gpr);
        c.gpr[RSI] = reinterpret_cast<uint64_t>(data_);
        c.flags = (flags & 0x8d5) | 2;
        c.code = reinterpret_cast<uint64_t>(code_);
        memcpy(c.fx, fx, 512);
        memcpy(data_, mem, sizeof mem);
        fpu_test_host_run(&c);
        memcpy(o.gpr, c.gpr, sizeof o.gpr);
        o.gpr[RSI] = gpr[RSI];
        o.flags = c.flags & 0x8d5;
        memcpy(o.fx, c.out, 512);
        memcpy(o.mem, data_, sizeof o.mem);
    }

    void run_emu(const std::vector<uint8_t>& insn, Out& o) {
        std::vector<uint8_t> code = insn;
        code.push_back(0xf4);
        m.load(kCode, code);
        CpuState st = base;
        memcpy(st.gpr, gpr, sizeof gpr);
        st.gpr[RSP] = kStack;
        st.gpr[RSI] = kData;
        st.rflags = (flags & 0x8d5) | 2;
        memcpy(st.fxsave, fx, 512);
        memcpy(m.ram + kData, mem, sizeof mem);
        m.vcpu->set_state(st);
        m.cpu().step_n(1);
        CpuState r;
        m.vcpu->get_state(r);
        o.vector = -1;
        if (r.rip >= kHandlers && r.rip < kHandlers + 16 * 32)
            o.vector = int((r.rip - kHandlers) / 16);
        else if (check_rip)
            CHECK_MESSAGE(r.rip == kCode + insn.size(), "RIP after the instruction");
        memcpy(o.gpr, r.gpr, sizeof o.gpr);
        o.gpr[RSI] = gpr[RSI];
        o.gpr[RSP] = gpr[RSP];
        o.flags = r.rflags & 0x8d5;
        memcpy(o.fx, r.fxsave, 512);
        memcpy(o.mem, m.ram + kData, sizeof o.mem);
    }

    Machine m;
    CpuState base;
    bool check_rip = true; // the test knows the instruction's length

  private:
    uint8_t* code_;
    uint8_t* data_;
};

inline std::string hex(const std::vector<uint8_t>& b) {
    std::string s;
    char t[4];
    for (uint8_t x : b) {
        snprintf(t, sizeof t, "%02x ", x);
        s += t;
    }
    return s;
}

inline std::string hexbytes(const uint8_t* p, size_t n) {
    return hex(std::vector<uint8_t>(p, p + n));
}

// Random values biased to floating-point edge cases.
class Gen {
  public:
    explicit Gen(uint64_t seed) : rng(seed) {}
    std::mt19937_64 rng;
    uint64_t u64() { return rng(); }
    unsigned below(unsigned n) { return unsigned(rng() % n); }

    uint32_t f32() {
        static const uint32_t special[] = {
            0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000,
            0xffc00000, 0x7f800001, 0x7fa00000, 0xffbfffff, 0x00000001, 0x807fffff, 0x00800000,
            0x7f7fffff, 0xff7fffff, 0x4f000000, 0xcf000000, 0x5f000000, 0x3f000000, 0x4b000000,
            0x3fc00000, 0x40490fdb, 0x4effffff, 0xcf000001, 0x34000000};
        switch (below(4)) {
        case 0: return special[below(sizeof special / 4)];
        case 1: return uint32_t(rng());
        case 2: { // moderate magnitude
            uint32_t e = 100 + below(60);
            return (uint32_t(rng()) & 0x807fffff) | e << 23;
        }
        default: { // near the extremes
            uint32_t e = below(2) ? below(4) : 250 + below(5);
            return (uint32_t(rng()) & 0x807fffff) | e << 23;
        }
        }
    }
    uint64_t f64() {
        static const uint64_t special[] = {0,
                                           0x8000000000000000,
                                           0x3ff0000000000000,
                                           0xbff0000000000000,
                                           0x7ff0000000000000,
                                           0xfff0000000000000,
                                           0x7ff8000000000000,
                                           0xfff8000000000000,
                                           0x7ff0000000000001,
                                           0x7ff4000000000000,
                                           0x0000000000000001,
                                           0x800fffffffffffff,
                                           0x0010000000000000,
                                           0x7fefffffffffffff,
                                           0x41e0000000000000,
                                           0xc1e0000000000000,
                                           0x43e0000000000000,
                                           0xc3e0000000000000,
                                           0x3fe0000000000000,
                                           0x4330000000000000,
                                           0x41dfffffffc00000,
                                           0xc1e0000000200000,
                                           0x3ca0000000000000,
                                           0x47efffffe0000000,
                                           0x36a0000000000000};
        switch (below(4)) {
        case 0: return special[below(sizeof special / 8)];
        case 1: return rng();
        case 2: {
            uint64_t e = 1000 + below(60);
            return (rng() & 0x800fffffffffffffull) | e << 52;
        }
        default: {
            uint64_t e = below(2) ? below(4) : 2040 + below(7);
            return (rng() & 0x800fffffffffffffull) | e << 52;
        }
        }
    }
    void xmm(uint8_t* p) {
        switch (below(4)) {
        case 0:
            for (unsigned i = 0; i < 4; i++) {
                uint32_t v = f32();
                memcpy(p + 4 * i, &v, 4);
            }
            break;
        case 1:
            for (unsigned i = 0; i < 2; i++) {
                uint64_t v = f64();
                memcpy(p + 8 * i, &v, 8);
            }
            break;
        case 2: { // integer lanes near the saturation points
            static const uint16_t w[] = {0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x100};
            for (unsigned i = 0; i < 8; i++) {
                uint16_t v = below(2) ? w[below(9)] : uint16_t(rng());
                memcpy(p + 2 * i, &v, 2);
            }
            break;
        }
        default:
            for (unsigned i = 0; i < 2; i++) {
                uint64_t v = rng();
                memcpy(p + 8 * i, &v, 8);
            }
        }
    }
    // MXCSR with every exception masked: random rounding, DAZ, FZ and sticky flags.
    uint32_t mxcsr_masked() {
        uint32_t v = 0x1f80 | (below(4) << 13);
        if (below(4) == 0) v |= 0x40;
        if (below(4) == 0) v |= 0x8000;
        if (below(3) == 0) v |= uint32_t(rng()) & 0x3f;
        return v;
    }
};

} // namespace fpu_test
