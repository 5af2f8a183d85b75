// x87 FPU instructions (D8-DF). Arithmetic, loads, stores, comparisons and transcendentals run
// on the host's own x87 unit: the guest's x87 state (fxsave image, fpu_state.hpp) is loaded into
// the host FPU with FXRSTOR, the very same instruction runs on it (register forms as they are,
// memory forms on a copy of the guest operand), and FXSAVE brings the result back. That makes
// every result bit, C0-C3, the tag word, stack faults, precision/rounding control, denormals and
// the biased results of unmasked overflow/underflow exactly those of an Intel x87.
// The host state is saved around it, so hvm's own code never sees the guest's FPU state. x87
// exceptions are deferred on real hardware (they fire at the next waiting instruction), so an
// unmasked guest exception only sets ES in the image and never traps on the host.
//
// The environment instructions (FNSTENV/FLDENV/FNSAVE/FRSTOR), whose layout depends on the
// guest's mode and operand size, and FNSTSW/FNSTCW/FNCLEX/FNINIT are done here directly.
#include <cstring>

#include "vcpu/emu/fpu_state.hpp"
#include "vcpu/emu/sse_host_ops.hpp"
#include "vcpu/emu/x86_cpu.hpp"

// One 4-byte stub per (opcode D8-DF, ModRM byte): the instruction, RET, INT3. Register forms use
// the guest's ModRM as is; memory forms use ModRM mod=00 rm=111, i.e. [rdi].
asm(R"(
    .pushsection .text.hvm_x87_stubs, "ax", @progbits
    .globl hvm_x87_stubs
    .hidden hvm_x87_stubs
    .p2align 4
hvm_x87_stubs:
    .irp op, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf
    .set hvm_x87_m, 0
    .rept 256
    .byte \op, hvm_x87_m, 0xc3, 0xcc
    .set hvm_x87_m, hvm_x87_m + 1
    .endr
    .endr
    .popsection
)");

extern "C" const uint8_t hvm_x87_stubs[];

namespace hvm::emu {

namespace {

// Runs stub `modrm` of opcode `op` on the guest image `img` (FXSAVE layout, 16-byte aligned),
// with `mem` as the memory operand and the guest's arithmetic flags (FCOMI writes them, FCMOVcc
// reads them). `img` is updated in place.
void run_on_host(uint8_t* img, unsigned op, unsigned modrm, void* mem, uint64_t& flags) {
    alignas(16) uint8_t host[512];
    const uint8_t* stub = hvm_x87_stubs + ((op - 0xd8) * 256 + modrm) * 4;
    uint64_t fl = flags & kStatusFlags;
    // The call pushes a return address: step over the red zone first.
    asm volatile(
        "fxsave64 %[host]\n\t"
        "fxrstor64 %[img]\n\t"
        "sub $128, %%rsp\n\t"
        "pushfq\n\t"
        "andq %[keep], (%%rsp)\n\t"
        "orq %[fl], (%%rsp)\n\t"
        "popfq\n\t"
        "call *%[stub]\n\t"
        "pushfq\n\t"
        "popq %[fl]\n\t"
        "add $128, %%rsp\n\t"
        "fxsave64 %[img]\n\t"
        "fxrstor64 %[host]"
        : [fl] "+r"(fl), [host] "=m"(host), [img] "+m"(*reinterpret_cast<uint8_t(*)[512]>(img))
        : [stub] "r"(stub), [keep] "r"(~kStatusFlags), "D"(mem)
        : "memory", "cc");
    flags = (flags & ~kStatusFlags) | (fl & kStatusFlags);
}

// Memory operand size and direction of the D8-DF memory forms that run on the host
// (0 = not such a form). Loads read the guest operand first; stores write it after the run.
struct MemForm {
    uint8_t size;
    bool store;
};
constexpr MemForm mem_form(unsigned op, unsigned r) {
    switch (op) {
    case 0xd8: return {4, false};
    case 0xda: return {4, false};
    case 0xdc: return {8, false};
    case 0xde: return {2, false};
    case 0xd9:
        if (r == 0) return {4, false};
        if (r == 2 || r == 3) return {4, true};
        if (r == 5) return {2, false}; // FLDCW
        return {0, false};
    case 0xdb:
        if (r == 0) return {4, false};
        if (r >= 1 && r <= 3) return {4, true};
        if (r == 5) return {10, false};
        if (r == 7) return {10, true};
        return {0, false};
    case 0xdd:
        if (r == 0) return {8, false};
        if (r >= 1 && r <= 3) return {8, true};
        return {0, false};
    default: // 0xdf
        if (r == 0) return {2, false};
        if (r >= 1 && r <= 3) return {2, true};
        if (r == 4) return {10, false};
        if (r == 5) return {8, false};
        if (r == 6) return {10, true};
        return {8, true}; // FISTP m64
    }
}

// Register forms that do not exist (#UD on Intel). The undocumented aliases (FSTP1, FCOM2,
// FCOMP3, FXCH4, FCOMP5, FFREEP, FXCH7, FSTP8/9) are real instructions and run.
bool reg_form_invalid(unsigned op, unsigned m) {
    switch (op) {
    case 0xd9:
        return (m >= 0xd1 && m <= 0xd7) || m == 0xe2 || m == 0xe3 || m == 0xe6 || m == 0xe7 ||
               m == 0xef;
    case 0xda: return m >= 0xe0 && m != 0xe9;
    case 0xdd: return m >= 0xf0;
    case 0xdb: return (m >= 0xe5 && m <= 0xe7) || m >= 0xf8;
    case 0xde: return m == 0xd8 || (m >= 0xda && m <= 0xdf);
    case 0xdf: return (m >= 0xe1 && m <= 0xe7) || m >= 0xf8;
    default: return false;
    }
}

// x87 control instructions do not update FIP/FDP/FOP (SDM Vol. 1 §8.1.8).
bool is_control(unsigned op, unsigned m) {
    if (op == 0xd9) return m == 0xd0 || m == 0xf6 || m == 0xf7;
    if (op == 0xdd) return m >= 0xc0 && m <= 0xc7;                // FFREE
    if (op == 0xdf) return (m >= 0xc0 && m <= 0xc7) || m == 0xe0; // FFREEP, FNSTSW AX
    if (op == 0xdb) return m == 0xe0 || m == 0xe1 || m == 0xe2 || m == 0xe3 || m == 0xe4;
    return false;
}

} // namespace

void X86Cpu::exec_x87(const Insn& in) {
    const unsigned op = in.op & 0xff, r = in.reg & 7, modrm = in.modrm;
    uint8_t* fx = s.fxsave;
    fpu_check_x87();

    if (!in.mem()) {
        if (reg_form_invalid(op, modrm)) undefined_opcode(&in, "reserved x87 register form");
        if (op == 0xdb && modrm == 0xe2) { // FNCLEX
            fx_put<uint16_t>(fx, kFxFsw, fx_get<uint16_t>(fx, kFxFsw) & 0x7f00);
            return;
        }
        if (op == 0xdb && modrm == 0xe3) { // FNINIT
            fx_rotate_to_top0(fx);
            fx_put<uint16_t>(fx, kFxFcw, kFcwDefault);
            fx_put<uint16_t>(fx, kFxFsw, 0);
            fx[kFxFtw] = 0;
            fx_put<uint16_t>(fx, kFxFop, 0);
            fx_put<uint64_t>(fx, kFxFip, 0);
            fx_put<uint64_t>(fx, kFxFdp, 0);
            return;
        }
        if (op == 0xdf && modrm == 0xe0) { // FNSTSW AX
            set_reg(RAX, 2, fx_get<uint16_t>(fx, kFxFsw), false);
            return;
        }
        fpu_pending_mf();
        if (op == 0xdb && (modrm == 0xe0 || modrm == 0xe1 || modrm == 0xe4))
            return; // FENI/FDISI (8087 only) and FSETPM (287 only): no-ops since the 387
    } else {
        const unsigned key = op << 4 | r;
        switch (key) {
        case 0xd96: x87_env_store(in, false); return; // FNSTENV
        case 0xdd6: x87_env_store(in, true); return;  // FNSAVE
        case 0xd97: {                                 // FNSTCW
            uint16_t v = fx_get<uint16_t>(fx, kFxFcw);
            fpu_mem_write(in, &v, 2, 0);
            return;
        }
        case 0xdd7: { // FNSTSW m16
            uint16_t v = fx_get<uint16_t>(fx, kFxFsw);
            fpu_mem_write(in, &v, 2, 0);
            return;
        }
        case 0xd94:
            fpu_pending_mf();
            x87_env_load(in, false);
            return; // FLDENV
        case 0xdd4:
            fpu_pending_mf();
            x87_env_load(in, true);
            return; // FRSTOR
        default: break;
        }
        if (mem_form(op, r).size == 0) undefined_opcode(&in, "reserved x87 memory form");
        if (r == 1 && (op == 0xdb || op == 0xdd || op == 0xdf) && !host::host_simd().sse3)
            undefined_opcode(&in, "FISTTP (SSE3) and the host has no SSE3");
        fpu_pending_mf();
    }

    // Run it on the host on a copy of the state, so a faulting store leaves the guest unchanged.
    alignas(16) uint8_t img[512];
    memcpy(img, fx, sizeof img);
    fx_put<uint32_t>(img, kFxMxcsr, fx_get<uint32_t>(img, kFxMxcsr) & kMxcsrMask);
    uint8_t buf[16] = {};
    uint64_t flags = s.rflags;
    uint64_t ea_off = 0;
    if (in.mem()) {
        MemForm f = mem_form(op, r);
        ea_off = ea(in);
        if (!f.store) fpu_mem_read(in, buf, f.size, 0);
        run_on_host(img, op, 0x07 | r << 3, buf, flags);
        // A store does not happen when it raised an unmasked exception other than precision
        // (SDM Vol. 1 §8.5: invalid, denormal, overflow, underflow to memory). Nothing was
        // pending before (checked above), so any unmasked flag now set is new.
        uint16_t fcw = fx_get<uint16_t>(img, kFxFcw), fsw = fx_get<uint16_t>(img, kFxFsw);
        if (f.store && !(fsw & ~fcw & 0x1f)) fpu_mem_write(in, buf, f.size, 0);
    } else {
        run_on_host(img, op, modrm, buf, flags);
    }
    // The host recorded its own instruction pointers: put the guest's (or the old ones back).
    if (is_control(op, modrm) || (in.mem() && op == 0xd9 && r == 5)) {
        memcpy(img + kFxFop, fx + kFxFop, 2);
        memcpy(img + kFxFip, fx + kFxFip, 8);
        memcpy(img + kFxFdp, fx + kFxFdp, 8);
    } else {
        fx_put<uint16_t>(img, kFxFop, uint16_t((op & 7) << 8 | modrm));
        uint64_t ip = rip_start_;
        if (!pe() || v86()) ip = (s.seg[CS].base + ip) & 0xfffff; // real mode: linear address
        fx_put<uint64_t>(img, kFxFip, ip);
        if (in.mem())
            fx_put<uint64_t>(img, kFxFdp, ea_off);
        else
            memcpy(img + kFxFdp, fx + kFxFdp, 8);
    }
    memcpy(fx, img, kFxXmm); // the x87 part; MXCSR (offset 24) is unchanged by x87 code
    fx_put<uint32_t>(fx, kFxMxcsr, fx_get<uint32_t>(img, kFxMxcsr));
    s.rflags = flags;
}

// FNSTENV / FNSAVE: the 14/28-byte environment (SDM Vol. 1 figures 8-9 to 8-12), in the real-
// mode layout in real and virtual-8086 mode, then (FNSAVE) the eight registers in stack order.
// FNSTENV then masks all exceptions; FNSAVE then initialises the FPU like FNINIT.
void X86Cpu::x87_env_store(const Insn& in, bool full) {
    uint8_t* fx = s.fxsave;
    const bool real = !pe() || v86();
    const bool o32 = in.osize != 2;
    const uint16_t fcw = fx_get<uint16_t>(fx, kFxFcw), fsw = fx_get<uint16_t>(fx, kFxFsw);
    const uint16_t ftw = fx_full_tag_word(fx), fop = fx_get<uint16_t>(fx, kFxFop) & 0x7ff;
    const uint32_t fip = uint32_t(fx_get<uint64_t>(fx, kFxFip));
    const uint32_t fdp = uint32_t(fx_get<uint64_t>(fx, kFxFdp));
    uint8_t buf[108];
    memset(buf, 0xff, sizeof buf);
    unsigned n;
    if (o32) {
        fx_put<uint16_t>(buf, 0, fcw);
        fx_put<uint16_t>(buf, 4, fsw);
        fx_put<uint16_t>(buf, 8, ftw);
        if (real) {
            fx_put<uint16_t>(buf, 12, uint16_t(fip));
            fx_put<uint32_t>(buf, 16, ((fip >> 16) & 0xffff) << 12 | fop);
            fx_put<uint16_t>(buf, 20, uint16_t(fdp));
            fx_put<uint32_t>(buf, 24, ((fdp >> 16) & 0xffff) << 12);
        } else {
            fx_put<uint32_t>(buf, 12, fip);
            fx_put<uint32_t>(buf, 16, uint32_t(fop) << 16); // FCS = 0 (deprecated)
            fx_put<uint32_t>(buf, 20, fdp);
            fx_put<uint16_t>(buf, 24, 0); // FDS = 0 (deprecated)
        }
        n = 28;
    } else {
        fx_put<uint16_t>(buf, 0, fcw);
        fx_put<uint16_t>(buf, 2, fsw);
        fx_put<uint16_t>(buf, 4, ftw);
        fx_put<uint16_t>(buf, 6, uint16_t(fip));
        if (real) {
            fx_put<uint16_t>(buf, 8, uint16_t(((fip >> 16) & 0xf) << 12 | fop));
            fx_put<uint16_t>(buf, 10, uint16_t(fdp));
            fx_put<uint16_t>(buf, 12, uint16_t(((fdp >> 16) & 0xf) << 12));
        } else {
            fx_put<uint16_t>(buf, 8, 0);
            fx_put<uint16_t>(buf, 10, uint16_t(fdp));
            fx_put<uint16_t>(buf, 12, 0);
        }
        n = 14;
    }
    if (full) {
        for (unsigned i = 0; i < 8; i++) memcpy(buf + n + 10 * i, fx + kFxSt + 16 * i, 10);
        n += 80;
    }
    fpu_mem_write(in, buf, n, 0);
    if (full) {
        fx_rotate_to_top0(fx);
        fx_put<uint16_t>(fx, kFxFcw, kFcwDefault);
        fx_put<uint16_t>(fx, kFxFsw, 0);
        fx[kFxFtw] = 0;
        fx_put<uint16_t>(fx, kFxFop, 0);
        fx_put<uint64_t>(fx, kFxFip, 0);
        fx_put<uint64_t>(fx, kFxFdp, 0);
    } else {
        fx_put<uint16_t>(fx, kFxFcw, fcw | 0x3f);
    }
}

// FLDENV / FRSTOR. ES and B follow the loaded flags and masks.
void X86Cpu::x87_env_load(const Insn& in, bool full) {
    uint8_t* fx = s.fxsave;
    const bool real = !pe() || v86();
    const bool o32 = in.osize != 2;
    uint8_t buf[108];
    unsigned n = (o32 ? 28 : 14) + (full ? 80 : 0);
    fpu_mem_read(in, buf, n, 0);
    uint16_t fcw, fsw, ftw, fop;
    uint32_t fip, fdp;
    if (o32) {
        fcw = fx_get<uint16_t>(buf, 0);
        fsw = fx_get<uint16_t>(buf, 4);
        ftw = fx_get<uint16_t>(buf, 8);
        if (real) {
            uint32_t w = fx_get<uint32_t>(buf, 16);
            fip = fx_get<uint16_t>(buf, 12) | ((w >> 12) & 0xffff) << 16;
            fop = w & 0x7ff;
            fdp = fx_get<uint16_t>(buf, 20) | ((fx_get<uint32_t>(buf, 24) >> 12) & 0xffff) << 16;
        } else {
            fip = fx_get<uint32_t>(buf, 12);
            fop = (fx_get<uint32_t>(buf, 16) >> 16) & 0x7ff;
            fdp = fx_get<uint32_t>(buf, 20);
        }
    } else {
        fcw = fx_get<uint16_t>(buf, 0);
        fsw = fx_get<uint16_t>(buf, 2);
        ftw = fx_get<uint16_t>(buf, 4);
        fip = fx_get<uint16_t>(buf, 6);
        if (real) {
            uint16_t w = fx_get<uint16_t>(buf, 8);
            fip |= uint32_t(w >> 12) << 16;
            fop = w & 0x7ff;
            fdp = fx_get<uint16_t>(buf, 10) | uint32_t(fx_get<uint16_t>(buf, 12) >> 12) << 16;
        } else {
            fop = 0;
            fdp = fx_get<uint16_t>(buf, 10);
        }
    }
    // The registers keep their contents; the loaded TOP renames them.
    fx_set_top(fx, (fsw >> 11) & 7);
    fcw = uint16_t((fcw & 0x1f3f) | 0x40); // reserved bits: 6 reads as 1, 7 and 13-15 as 0
    fx_put<uint16_t>(fx, kFxFcw, fcw);
    fx_put<uint16_t>(fx, kFxFsw, fsw_with_es(fsw, fcw));
    fx[kFxFtw] = abridged_tag(ftw);
    fx_put<uint16_t>(fx, kFxFop, fop);
    fx_put<uint64_t>(fx, kFxFip, fip);
    fx_put<uint64_t>(fx, kFxFdp, fdp);
    if (full) {
        unsigned base = o32 ? 28 : 14;
        for (unsigned i = 0; i < 8; i++) {
            memcpy(fx + kFxSt + 16 * i, buf + base + 10 * i, 10);
            memset(fx + kFxSt + 16 * i + 10, 0, 6);
        }
    }
}

} // namespace hvm::emu
