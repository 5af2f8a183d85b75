// x87 FPU, MMX and SSE execution unit: dispatch, the CR0/CR4 rules that guard it, MXCSR and
// SIMD exception delivery, FXSAVE/FXRSTOR/LDMXCSR/STMXCSR and FWAIT. The instructions themselves
// are in sse_exec.cpp (0F, 0F 38, 0F 3A maps) and fpu_x87.cpp (D8-DF).
//
// The live state is CpuState::fxsave (fpu_state.hpp). XSAVE is not offered (CPUID.1:ECX.XSAVE
// stays 0), so guests use FXSAVE/FXRSTOR and XCR0 stays x87 only.
#include "vcpu/emu/cpuid_model.hpp"
#include "vcpu/emu/fpu_state.hpp"
#include "vcpu/emu/x86_cpu.hpp"

namespace hvm::emu {

bool fpu_sse_implemented() {
    return true;
}

void X86Cpu::exec_fpu_sse(const Insn& in) {
    const unsigned map = in.op >> 8, op = in.op & 0xff;
    if (map == 0) {
        exec_x87(in);
        return;
    }
    if (map == 1 && op == 0xae && in.mem()) {
        exec_0fae_fpu(in);
        return;
    }
    exec_sse(in);
}

// ---- guards -----------------------------------------------------------------------------------

// x87 instructions: CR0.EM or CR0.TS -> #NM (SDM Vol. 3 §2.5, CR0.EM/TS and table 2-2).
void X86Cpu::fpu_check_x87() {
    if (s.cr0 & (kCr0EM | kCr0TS)) throw GuestFault{kNM, false, 0};
}

// SSE/SSE2/SSE3 instructions: #UD when CR0.EM = 1 or CR4.OSFXSR = 0, then #NM when CR0.TS = 1
// (SDM Vol. 3 §13.1, table 13-1 / Vol. 2 "Exceptions (All Operating Modes)").
void X86Cpu::fpu_check_sse() {
    if ((s.cr0 & kCr0EM) || !(s.cr4 & kCr4OsFxsr)) throw GuestFault{kUD, false, 0};
    if (s.cr0 & kCr0TS) throw GuestFault{kNM, false, 0};
}

// A pending unmasked x87 exception is reported by the next waiting x87 or MMX instruction as
// #MF (CR0.NE = 1). With CR0.NE = 0 hardware signals FERR# to IRQ13 instead; hvm does not model
// FERR#/IGNNE# and reports #MF in both cases (only pre-486 style DOS handlers care).
// An image loaded by FXRSTOR or set_state() may carry unmasked flags with ES clear; they count
// as pending too (as after FLDCW unmasks a set flag), so the host never runs a waiting x87
// instruction with an exception pending.
void X86Cpu::fpu_pending_mf() {
    uint16_t fsw = fx_get<uint16_t>(s.fxsave, kFxFsw), fcw = fx_get<uint16_t>(s.fxsave, kFxFcw);
    if ((fsw & kFswES) || (fsw & ~fcw & 0x3f)) throw GuestFault{kMF, false, 0};
}

void X86Cpu::fpu_wait() {
    if ((s.cr0 & (kCr0MP | kCr0TS)) == (kCr0MP | kCr0TS)) throw GuestFault{kNM, false, 0};
    fpu_pending_mf();
}

// MMX instructions: #UD on CR0.EM, #NM on CR0.TS, #MF on a pending x87 exception. The switch to
// MMX mode (TOP = 0, every tag valid) happens when the instruction completes (MmxTransition in
// sse_exec.cpp), so a faulting MMX instruction changes nothing.
void X86Cpu::fpu_check_mmx() {
    if (s.cr0 & kCr0EM) throw GuestFault{kUD, false, 0};
    if (s.cr0 & kCr0TS) throw GuestFault{kNM, false, 0};
    fpu_pending_mf();
}

// ---- memory operands ----------------------------------------------------------------------

void X86Cpu::fpu_mem_read(const Insn& in, void* out, unsigned size, unsigned align) {
    uint64_t lin = seg_linear(in.seg, ea(in), size, Access::Read);
    if (align && (lin & (align - 1))) throw GuestFault{kGP, true, 0};
    read_lin_slow(lin, out, size, false);
}

// All-or-nothing: write_lin_slow checks both pages of a page-crossing store before writing.
void X86Cpu::fpu_mem_write(const Insn& in, const void* data, unsigned size, unsigned align) {
    uint64_t lin = seg_linear(in.seg, ea(in), size, Access::Write);
    if (align && (lin & (align - 1))) throw GuestFault{kGP, true, 0};
    write_lin_slow(lin, data, size, false);
}

// SIMD floating-point exceptions (SDM Vol. 1 §11.5.2): masked ones only set their MXCSR flag;
// an unmasked one leaves the destination unchanged and raises #XM, or #UD when the OS did not
// set CR4.OSXMMEXCPT. When an unmasked pre-computation exception (invalid, denormal, divide by
// zero) occurs no post-computation condition is reported. Callers commit results only after
// this returns.
void X86Cpu::fpu_mxcsr_commit(uint32_t raised) {
    uint32_t mx = fx_get<uint32_t>(s.fxsave, kFxMxcsr);
    uint32_t unmasked = raised & ~(mx >> 7) & 0x3f;
    if (unmasked) {
        uint32_t pre = raised & (kMxIE | kMxDE | kMxZE);
        if (pre & unmasked) raised = pre;
        fx_put<uint32_t>(s.fxsave, kFxMxcsr, mx | raised);
        throw GuestFault{uint8_t((s.cr4 & kCr4OsXmmExcpt) ? kXM : kUD), false, 0};
    }
    fx_put<uint32_t>(s.fxsave, kFxMxcsr, mx | raised);
}

// ---- 0F AE memory forms ---------------------------------------------------------------------

void X86Cpu::exec_0fae_fpu(const Insn& in) {
    const unsigned r = in.reg & 7;
    if (in.rep) undefined_opcode(&in, "F2/F3 0F AE memory form");
    if (in.opsize_prefix && r >= 6) undefined_opcode(&in, "CLWB/CLFLUSHOPT not offered");
    switch (r) {
    case 0: { // FXSAVE (SDM Vol. 2 FXSAVE; #NM on EM or TS, #GP if not 16-byte aligned)
        if (s.cr0 & (kCr0EM | kCr0TS)) throw GuestFault{kNM, false, 0};
        alignas(16) uint8_t img[512];
        memcpy(img, s.fxsave, sizeof img);
        img[5] = 0;
        fx_put<uint32_t>(img, kFxMxcsrMask, kMxcsrMask);
        for (unsigned i = 0; i < 8; i++) memset(img + kFxSt + 16 * i + 10, 0, 6);
        if (in.osize != 8) { // 32-bit form: FIP/FDP offsets with FCS/FDS (kept 0)
            fx_put<uint32_t>(img, kFxFip + 4, 0);
            fx_put<uint32_t>(img, kFxFdp + 4, 0);
        }
        unsigned n = kFxXmm + 16 * (mode64_ ? 16 : 8);
        fpu_mem_write(in, img, n, 16);
        return;
    }
    case 1: { // FXRSTOR: #GP on reserved MXCSR bits; the image is validated before any change
        if (s.cr0 & (kCr0EM | kCr0TS)) throw GuestFault{kNM, false, 0};
        alignas(16) uint8_t img[512];
        unsigned n = kFxXmm + 16 * (mode64_ ? 16 : 8);
        fpu_mem_read(in, img, n, 16);
        uint32_t mx = fx_get<uint32_t>(img, kFxMxcsr);
        if (mx & ~kMxcsrMask) throw GuestFault{kGP, true, 0};
        uint8_t* fx = s.fxsave;
        // FCW reserved bits read back as on hardware (bit 6 set, 7 and 13-15 clear).
        fx_put<uint16_t>(fx, kFxFcw, uint16_t((fx_get<uint16_t>(img, kFxFcw) & 0x1f3f) | 0x40));
        memcpy(fx + kFxFsw, img + kFxFsw, 3); // FSW, abridged FTW
        fx[5] = 0;
        fx_put<uint16_t>(fx, kFxFop, fx_get<uint16_t>(img, kFxFop) & 0x7ff);
        if (in.osize == 8) { // 64-bit pointers are linear addresses: kept canonical
            auto canon = [](uint64_t v) { return uint64_t(int64_t(v << 16) >> 16); };
            fx_put<uint64_t>(fx, kFxFip, canon(fx_get<uint64_t>(img, kFxFip)));
            fx_put<uint64_t>(fx, kFxFdp, canon(fx_get<uint64_t>(img, kFxFdp)));
        } else {
            fx_put<uint64_t>(fx, kFxFip, fx_get<uint32_t>(img, kFxFip));
            fx_put<uint64_t>(fx, kFxFdp, fx_get<uint32_t>(img, kFxFdp));
        }
        fx_put<uint32_t>(fx, kFxMxcsr, mx);
        fx_put<uint32_t>(fx, kFxMxcsrMask, kMxcsrMask);
        for (unsigned i = 0; i < 8; i++) {
            memcpy(fx + kFxSt + 16 * i, img + kFxSt + 16 * i, 10);
            memset(fx + kFxSt + 16 * i + 10, 0, 6);
        }
        memcpy(fx + kFxXmm, img + kFxXmm, n - kFxXmm);
        return;
    }
    case 2: { // LDMXCSR
        fpu_check_sse();
        uint32_t mx;
        fpu_mem_read(in, &mx, 4, 0);
        if (mx & ~kMxcsrMask) throw GuestFault{kGP, true, 0};
        fx_put<uint32_t>(s.fxsave, kFxMxcsr, mx);
        return;
    }
    case 3: { // STMXCSR
        fpu_check_sse();
        uint32_t mx = fx_get<uint32_t>(s.fxsave, kFxMxcsr);
        fpu_mem_write(in, &mx, 4, 0);
        return;
    }
    default:
        // XSAVE/XRSTOR/XSAVEOPT: not offered (CPUID.1:ECX.XSAVE = 0, CR4.OSXSAVE cannot be set)
        undefined_opcode(&in, "XSAVE family not offered");
    }
}

} // namespace hvm::emu
