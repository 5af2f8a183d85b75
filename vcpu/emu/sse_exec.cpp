// MMX, SSE, SSE2, SSE3, SSSE3, SSE4.1 and SSE4.2 instructions (0F, 0F 38 and 0F 3A maps).
// Arithmetic, conversions, comparisons and string compares run on the host's own instruction
// (sse_host_ops.hpp); moves, shuffles, blends, inserts/extracts and the GPR forms are done here.
// CPUID (cpuid_model.cpp) advertises SSE/SSE2/SSE3 only, as QEMU's qemu64 model does; the
// SSSE3/SSE4 forms work for guests that use them anyway, and raise #UD if the host lacks them.
//
// Mandatory prefixes (SDM Vol. 2 §2.1.2): F2/F3 (the last one seen) select the instruction,
// otherwise 66; no prefix selects the MMX or packed-single form.
#include <cstring>
#include <exception>

#include "vcpu/emu/fpu_state.hpp"
#include "vcpu/emu/sse_host_ops.hpp"
#include "vcpu/emu/x86_cpu.hpp"

namespace hvm::emu {

namespace {

struct IntOpEntry {
    host::XmmOp x = nullptr;
    host::MmxOp m = nullptr;
};

// 0F-map integer operations that have an MMX (no prefix) and an SSE2 (66) form, and the 0F 38
// SSSE3/SSE4.1 ones.
struct IntTables {
    IntOpEntry map0f[256];
    IntOpEntry map38[256];
};

IntTables make_int_tables() {
    using namespace host;
    IntTables t{};
    auto both = [&](IntOpEntry* tab, unsigned op, XmmOp x, MmxOp m) { tab[op] = {x, m}; };
    IntOpEntry* w = t.map0f;
    both(w, 0x60, x_punpcklbw, m_punpcklbw);
    both(w, 0x61, x_punpcklwd, m_punpcklwd);
    both(w, 0x62, x_punpckldq, m_punpckldq);
    both(w, 0x63, x_packsswb, m_packsswb);
    both(w, 0x64, x_pcmpgtb, m_pcmpgtb);
    both(w, 0x65, x_pcmpgtw, m_pcmpgtw);
    both(w, 0x66, x_pcmpgtd, m_pcmpgtd);
    both(w, 0x67, x_packuswb, m_packuswb);
    both(w, 0x68, x_punpckhbw, m_punpckhbw);
    both(w, 0x69, x_punpckhwd, m_punpckhwd);
    both(w, 0x6a, x_punpckhdq, m_punpckhdq);
    both(w, 0x6b, x_packssdw, m_packssdw);
    both(w, 0x6c, x_punpcklqdq, nullptr);
    both(w, 0x6d, x_punpckhqdq, nullptr);
    both(w, 0x74, x_pcmpeqb, m_pcmpeqb);
    both(w, 0x75, x_pcmpeqw, m_pcmpeqw);
    both(w, 0x76, x_pcmpeqd, m_pcmpeqd);
    both(w, 0xd1, x_psrlw, m_psrlw);
    both(w, 0xd2, x_psrld, m_psrld);
    both(w, 0xd3, x_psrlq, m_psrlq);
    both(w, 0xd4, x_paddq, m_paddq);
    both(w, 0xd5, x_pmullw, m_pmullw);
    both(w, 0xd8, x_psubusb, m_psubusb);
    both(w, 0xd9, x_psubusw, m_psubusw);
    both(w, 0xda, x_pminub, m_pminub);
    both(w, 0xdb, x_pand, m_pand);
    both(w, 0xdc, x_paddusb, m_paddusb);
    both(w, 0xdd, x_paddusw, m_paddusw);
    both(w, 0xde, x_pmaxub, m_pmaxub);
    both(w, 0xdf, x_pandn, m_pandn);
    both(w, 0xe0, x_pavgb, m_pavgb);
    both(w, 0xe1, x_psraw, m_psraw);
    both(w, 0xe2, x_psrad, m_psrad);
    both(w, 0xe3, x_pavgw, m_pavgw);
    both(w, 0xe4, x_pmulhuw, m_pmulhuw);
    both(w, 0xe5, x_pmulhw, m_pmulhw);
    both(w, 0xe8, x_psubsb, m_psubsb);
    both(w, 0xe9, x_psubsw, m_psubsw);
    both(w, 0xea, x_pminsw, m_pminsw);
    both(w, 0xeb, x_por, m_por);
    both(w, 0xec, x_paddsb, m_paddsb);
    both(w, 0xed, x_paddsw, m_paddsw);
    both(w, 0xee, x_pmaxsw, m_pmaxsw);
    both(w, 0xef, x_pxor, m_pxor);
    both(w, 0xf1, x_psllw, m_psllw);
    both(w, 0xf2, x_pslld, m_pslld);
    both(w, 0xf3, x_psllq, m_psllq);
    both(w, 0xf4, x_pmuludq, m_pmuludq);
    both(w, 0xf5, x_pmaddwd, m_pmaddwd);
    both(w, 0xf6, x_psadbw, m_psadbw);
    both(w, 0xf8, x_psubb, m_psubb);
    both(w, 0xf9, x_psubw, m_psubw);
    both(w, 0xfa, x_psubd, m_psubd);
    both(w, 0xfb, x_psubq, m_psubq);
    both(w, 0xfc, x_paddb, m_paddb);
    both(w, 0xfd, x_paddw, m_paddw);
    both(w, 0xfe, x_paddd, m_paddd);

    IntOpEntry* e = t.map38; // SSSE3: MMX and XMM forms
    both(e, 0x00, x_pshufb, m_pshufb);
    both(e, 0x01, x_phaddw, m_phaddw);
    both(e, 0x02, x_phaddd, m_phaddd);
    both(e, 0x03, x_phaddsw, m_phaddsw);
    both(e, 0x04, x_pmaddubsw, m_pmaddubsw);
    both(e, 0x05, x_phsubw, m_phsubw);
    both(e, 0x06, x_phsubd, m_phsubd);
    both(e, 0x07, x_phsubsw, m_phsubsw);
    both(e, 0x08, x_psignb, m_psignb);
    both(e, 0x09, x_psignw, m_psignw);
    both(e, 0x0a, x_psignd, m_psignd);
    both(e, 0x0b, x_pmulhrsw, m_pmulhrsw);
    both(e, 0x1c, x_pabsb, m_pabsb);
    both(e, 0x1d, x_pabsw, m_pabsw);
    both(e, 0x1e, x_pabsd, m_pabsd);
    // SSE4.1 / SSE4.2 (66 only)
    both(e, 0x28, x_pmuldq, nullptr);
    both(e, 0x29, x_pcmpeqq, nullptr);
    both(e, 0x2b, x_packusdw, nullptr);
    both(e, 0x37, x_pcmpgtq, nullptr);
    both(e, 0x38, x_pminsb, nullptr);
    both(e, 0x39, x_pminsd, nullptr);
    both(e, 0x3a, x_pminuw, nullptr);
    both(e, 0x3b, x_pminud, nullptr);
    both(e, 0x3c, x_pmaxsb, nullptr);
    both(e, 0x3d, x_pmaxsd, nullptr);
    both(e, 0x3e, x_pmaxuw, nullptr);
    both(e, 0x3f, x_pmaxud, nullptr);
    both(e, 0x40, x_pmulld, nullptr);
    both(e, 0x41, x_phminposuw, nullptr);
    return t;
}

const IntTables kInt = make_int_tables();

// Packed/scalar floating-point arithmetic 0F 51-5F: [op - 0x51][ps, pd, ss, sd].
struct FpRow {
    host::FpOp f[4];
};
const FpRow kFpArith[15] = {
    {{host::f_sqrtps, host::f_sqrtpd, host::f_sqrtss, host::f_sqrtsd}},         // 51
    {{host::f_rsqrtps, nullptr, host::f_rsqrtss, nullptr}},                     // 52
    {{host::f_rcpps, nullptr, host::f_rcpss, nullptr}},                         // 53
    {{nullptr, nullptr, nullptr, nullptr}},                                     // 54 (logic)
    {{nullptr, nullptr, nullptr, nullptr}},                                     // 55
    {{nullptr, nullptr, nullptr, nullptr}},                                     // 56
    {{nullptr, nullptr, nullptr, nullptr}},                                     // 57
    {{host::f_addps, host::f_addpd, host::f_addss, host::f_addsd}},             // 58
    {{host::f_mulps, host::f_mulpd, host::f_mulss, host::f_mulsd}},             // 59
    {{host::f_cvtps2pd, host::f_cvtpd2ps, host::f_cvtss2sd, host::f_cvtsd2ss}}, // 5A
    {{host::f_cvtdq2ps, host::f_cvtps2dq, host::f_cvttps2dq, nullptr}},         // 5B
    {{host::f_subps, host::f_subpd, host::f_subss, host::f_subsd}},             // 5C
    {{host::f_minps, host::f_minpd, host::f_minss, host::f_minsd}},             // 5D
    {{host::f_divps, host::f_divpd, host::f_divss, host::f_divsd}},             // 5E
    {{host::f_maxps, host::f_maxpd, host::f_maxss, host::f_maxsd}},             // 5F
};

// MMX instructions put the x87 unit in MMX mode (SDM Vol. 1 §9.5.1: TOP = 0, every tag valid)
// when they complete; a faulting one leaves the state alone. Until then MMi is addressed as the
// physical register Ri, wherever TOP points.
class MmxTransition {
  public:
    explicit MmxTransition(uint8_t* fx) : fx_(fx) {}
    ~MmxTransition() {
        if (armed && std::uncaught_exceptions() == exceptions_) {
            fx_rotate_to_top0(fx_);
            fx_[kFxFtw] = 0xff;
        }
    }
    MmxTransition(const MmxTransition&) = delete;
    MmxTransition& operator=(const MmxTransition&) = delete;
    bool armed = false;

  private:
    uint8_t* fx_;
    int exceptions_ = std::uncaught_exceptions();
};

unsigned mm_offset(const uint8_t* fx, unsigned r) {
    return kFxSt + 16 * ((r - fx_top(fx)) & 7);
}
uint64_t mm_get(const uint8_t* fx, unsigned r) {
    return fx_get<uint64_t>(fx, mm_offset(fx, r));
}
// Writing an MMX register sets its exponent field to all ones (the x87 view of an MMX value).
void mm_put(uint8_t* fx, unsigned r, uint64_t v) {
    fx_put<uint64_t>(fx, mm_offset(fx, r), v);
    fx_put<uint16_t>(fx, mm_offset(fx, r) + 8, 0xffff);
}

// Column of a mandatory prefix: none 0, 66 1, F3 2, F2 3.
unsigned prefix_column(const Insn& in) {
    if (in.rep == 0xf3) return 2;
    if (in.rep == 0xf2) return 3;
    return in.opsize_prefix ? 1 : 0;
}

} // namespace

void X86Cpu::exec_sse(const Insn& in) {
    const unsigned map = in.op >> 8, op = in.op & 0xff;
    const unsigned col = prefix_column(in);
    uint8_t* fx = s.fxsave;
    const uint32_t mxcsr = fx_get<uint32_t>(fx, kFxMxcsr);
    const uint32_t hmx = host::host_mxcsr(mxcsr);
    const bool rexw = in.rex & 8;

    auto xmm = [&](unsigned r) {
        Xmm v;
        memcpy(&v, fx + kFxXmm + 16 * (r & 15), 16);
        return v;
    };
    auto set_xmm = [&](unsigned r, const Xmm& v) { memcpy(fx + kFxXmm + 16 * (r & 15), &v, 16); };
    // MMX registers (REX bits do not extend them).
    MmxTransition mmx_mode(fx);
    auto check_mmx = [&] {
        fpu_check_mmx();
        mmx_mode.armed = true;
    };
    auto mm = [&](unsigned r) { return mm_get(fx, r); };
    auto set_mm = [&](unsigned r, uint64_t v) { mm_put(fx, r, v); };
    // xmm/mN source: `size` bytes from memory (zero-extended), alignment 16 when `aligned`.
    auto xsrc = [&](unsigned size, bool aligned) {
        if (!in.mem()) return xmm(in.rm);
        Xmm v{};
        fpu_mem_read(in, &v, size, aligned ? 16 : 0);
        return v;
    };
    auto msrc = [&](unsigned size = 8) -> uint64_t {
        if (!in.mem()) return mm(in.rm);
        uint64_t v = 0;
        fpu_mem_read(in, &v, size, 0);
        return v;
    };
    auto store_xmm_rm = [&](const Xmm& v, unsigned size, bool aligned) {
        if (in.mem())
            fpu_mem_write(in, &v, size, aligned ? 16 : 0);
        else
            set_xmm(in.rm, v);
    };
    auto need_mem = [&] {
        if (!in.mem()) undefined_opcode(&in, "register form of a memory-only SSE instruction");
    };
    auto need_reg = [&] {
        if (in.mem()) undefined_opcode(&in, "memory form of a register-only SSE instruction");
    };
    auto fp_run = [&](host::FpOp f, unsigned msize, bool aligned) {
        Xmm sv = xsrc(msize, aligned);
        Xmm d = xmm(in.reg);
        uint32_t raised = f(d, sv, hmx);
        fpu_mxcsr_commit(raised);
        set_xmm(in.reg, d);
    };
    static constexpr unsigned kFpSize[4] = {16, 16, 4, 8};

    // SSE3 forms (0F 12 F2/F3, 0F 16 F3, 0F 7C/7D, 0F D0, 0F F0) need the host's SSE3.
    if (map == 1 && !host::host_simd().sse3 &&
        (((op == 0x12 || op == 0x16) && col >= 2) || op == 0x7c || op == 0x7d || op == 0xd0 ||
         op == 0xf0))
        undefined_opcode(&in, "SSE3 instruction and the host has no SSE3");
    if (map == 2) {
        if (exec_sse_0f38(in, col)) return;
        undefined_opcode(&in, "0F 38 opcode not implemented");
    }
    if (map == 3) {
        if (exec_sse_0f3a(in, col)) return;
        undefined_opcode(&in, "0F 3A opcode not implemented");
    }

    // Integer operations with MMX and SSE2 forms.
    if (const IntOpEntry& e = kInt.map0f[op]; e.x) {
        if (col == 1) {
            fpu_check_sse();
            Xmm sv = xsrc(16, true);
            Xmm d = xmm(in.reg);
            e.x(d, sv);
            set_xmm(in.reg, d);
            return;
        }
        if (col == 0 && e.m) {
            check_mmx();
            // PUNPCKL* read only the low half of a memory operand (m32).
            uint64_t sv = msrc((op >= 0x60 && op <= 0x62) ? 4 : 8);
            uint64_t d = mm(in.reg);
            e.m(d, sv);
            set_mm(in.reg, d);
            return;
        }
        undefined_opcode(&in, "SSE integer opcode with this prefix");
    }

    if (op >= 0x51 && op <= 0x5f && !(op >= 0x54 && op <= 0x57)) {
        host::FpOp f = kFpArith[op - 0x51].f[col];
        if (!f) undefined_opcode(&in, "SSE FP opcode with this prefix");
        fpu_check_sse();
        unsigned msize = kFpSize[col];
        if (op == 0x5a && col == 0) msize = 8; // CVTPS2PD xmm, xmm/m64
        if (op == 0x5b) msize = 16;
        fp_run(f, msize, msize == 16);
        return;
    }

    switch (op) {
    case 0x10:
    case 0x11: { // MOVUPS/MOVUPD, MOVSS, MOVSD
        fpu_check_sse();
        if (col <= 1) {
            if (op == 0x10)
                set_xmm(in.reg, xsrc(16, false));
            else
                store_xmm_rm(xmm(in.reg), 16, false);
            return;
        }
        const unsigned size = col == 2 ? 4 : 8;
        if (op == 0x10) {
            Xmm d = xmm(in.reg);
            if (in.mem()) {
                d = Xmm{};
                fpu_mem_read(in, &d, size, 0); // load form zeroes the rest
            } else {
                memcpy(&d, fx + kFxXmm + 16 * in.rm, size);
            }
            set_xmm(in.reg, d);
        } else {
            Xmm v = xmm(in.reg);
            if (in.mem()) {
                fpu_mem_write(in, &v, size, 0);
            } else {
                Xmm d = xmm(in.rm);
                memcpy(&d, &v, size);
                set_xmm(in.rm, d);
            }
        }
        return;
    }
    case 0x12:
    case 0x16: {
        fpu_check_sse();
        const bool high = op == 0x16;
        if (col == 2) { // MOVSLDUP / MOVSHDUP
            Xmm sv = xsrc(16, true), d{};
            host::XmmOp f = high ? host::x_movshdup : host::x_movsldup;
            f(d, sv);
            set_xmm(in.reg, d);
            return;
        }
        if (col == 3) {
            if (high) undefined_opcode(&in, "F2 0F 16");
            Xmm sv = xsrc(8, false), d{}; // MOVDDUP xmm, xmm/m64
            host::x_movddup(d, sv);
            set_xmm(in.reg, d);
            return;
        }
        Xmm d = xmm(in.reg);
        if (!in.mem()) {
            if (col == 1) undefined_opcode(&in, "MOVLPD/MOVHPD register form");
            Xmm sv = xmm(in.rm);
            if (high)
                d.q[1] = sv.q[0]; // MOVLHPS
            else
                d.q[0] = sv.q[1]; // MOVHLPS
        } else {
            uint64_t v;
            fpu_mem_read(in, &v, 8, 0);
            d.q[high ? 1 : 0] = v; // MOVLPS/MOVLPD/MOVHPS/MOVHPD
        }
        set_xmm(in.reg, d);
        return;
    }
    case 0x13:
    case 0x17: { // MOVLPS/MOVLPD/MOVHPS/MOVHPD m64, xmm
        if (col > 1) undefined_opcode(&in, "F2/F3 0F 13/17");
        need_mem();
        fpu_check_sse();
        uint64_t v = xmm(in.reg).q[op == 0x17 ? 1 : 0];
        fpu_mem_write(in, &v, 8, 0);
        return;
    }
    case 0x14:
    case 0x15: {
        if (col > 1) undefined_opcode(&in, "F2/F3 0F 14/15");
        fpu_check_sse();
        Xmm sv = xsrc(16, true), d = xmm(in.reg);
        static const host::XmmOp f[2][2] = {{host::x_unpcklps, host::x_unpcklpd},
                                            {host::x_unpckhps, host::x_unpckhpd}};
        f[op - 0x14][col](d, sv);
        set_xmm(in.reg, d);
        return;
    }
    case 0x28:
    case 0x29: // MOVAPS / MOVAPD
        if (col > 1) undefined_opcode(&in, "F2/F3 0F 28/29");
        fpu_check_sse();
        if (op == 0x28)
            set_xmm(in.reg, xsrc(16, true));
        else
            store_xmm_rm(xmm(in.reg), 16, true);
        return;
    case 0x2a: {
        if (col >= 2) { // CVTSI2SS / CVTSI2SD xmm, r/m32/64
            fpu_check_sse();
            unsigned size = rexw ? 8 : 4;
            uint64_t v;
            if (in.mem()) {
                v = 0;
                fpu_mem_read(in, &v, size, 0);
            } else {
                v = reg(in.rm, size, true);
            }
            Xmm d = xmm(in.reg);
            uint32_t raised = host::cvt_int_to_fp(col == 3, rexw, d, v, hmx);
            fpu_mxcsr_commit(raised);
            set_xmm(in.reg, d);
            return;
        }
        // CVTPI2PS / CVTPI2PD xmm, mm/m64: a register source switches to MMX mode.
        fpu_check_sse();
        if (!in.mem()) check_mmx();
        Xmm sv{};
        sv.q[0] = msrc();
        Xmm d = xmm(in.reg);
        if (col == 0) {
            Xmm t = d;
            uint32_t raised = host::f_cvtdq2ps(t, sv, hmx);
            fpu_mxcsr_commit(raised);
            d.q[0] = t.q[0];
        } else {
            host::f_cvtdq2pd(d, sv, hmx); // exact: no exceptions
        }
        set_xmm(in.reg, d);
        return;
    }
    case 0x2b: // MOVNTPS / MOVNTPD
        if (col > 1) undefined_opcode(&in, "F2/F3 0F 2B");
        need_mem();
        fpu_check_sse();
        fpu_mem_write(in, fx + kFxXmm + 16 * in.reg, 16, 16);
        return;
    case 0x2c:
    case 0x2d: {
        const bool trunc = op == 0x2c;
        if (col >= 2) { // CVT(T)SS2SI / CVT(T)SD2SI r32/64, xmm/m32/64
            fpu_check_sse();
            Xmm sv = xsrc(col == 2 ? 4 : 8, false);
            uint64_t r;
            uint32_t raised = host::cvt_fp_to_int(col == 3, rexw, trunc, r, sv, hmx);
            fpu_mxcsr_commit(raised);
            set_reg(in.reg, rexw ? 8 : 4, r, true);
            return;
        }
        // CVT(T)PS2PI mm, xmm/m64 and CVT(T)PD2PI mm, xmm/m128 (MMX mode)
        fpu_check_sse();
        check_mmx();
        Xmm sv = xsrc(col == 0 ? 8 : 16, col == 1);
        if (col == 0) sv.q[1] = 0; // only the low two singles (0.0 converts exactly)
        Xmm d{};
        host::FpOp f = col == 0 ? (trunc ? host::f_cvttps2dq : host::f_cvtps2dq)
                                : (trunc ? host::f_cvttpd2dq : host::f_cvtpd2dq);
        uint32_t raised = f(d, sv, hmx);
        fpu_mxcsr_commit(raised);
        set_mm(in.reg, d.q[0]);
        return;
    }
    case 0x2e:
    case 0x2f: { // (U)COMISS / (U)COMISD
        if (col > 1) undefined_opcode(&in, "F2/F3 0F 2E/2F");
        fpu_check_sse();
        Xmm sv = xsrc(col == 0 ? 4 : 8, false);
        unsigned kind = (col == 1 ? 2 : 0) + (op == 0x2e ? 1 : 0);
        uint64_t zpc;
        uint32_t raised = host::comi(kind, xmm(in.reg), sv, hmx, zpc);
        fpu_mxcsr_commit(raised);
        s.rflags = (s.rflags & ~kStatusFlags) | zpc;
        return;
    }
    case 0x50: { // MOVMSKPS / MOVMSKPD r32, xmm
        if (col > 1) undefined_opcode(&in, "F2/F3 0F 50");
        need_reg();
        fpu_check_sse();
        Xmm v = xmm(in.rm);
        uint32_t m = 0;
        if (col == 0)
            for (unsigned i = 0; i < 4; i++) m |= (v.d[i] >> 31) << i;
        else
            m = unsigned(v.q[0] >> 63) | unsigned(v.q[1] >> 63) << 1;
        set_reg(in.reg, 8, m, true);
        return;
    }
    case 0x54:
    case 0x55:
    case 0x56:
    case 0x57: { // ANDPS ANDNPS ORPS XORPS (and PD)
        if (col > 1) undefined_opcode(&in, "F2/F3 0F 54-57");
        fpu_check_sse();
        static const host::XmmOp f[4][2] = {{host::x_andps, host::x_andpd},
                                            {host::x_andnps, host::x_andnpd},
                                            {host::x_orps, host::x_orpd},
                                            {host::x_xorps, host::x_xorpd}};
        Xmm sv = xsrc(16, true), d = xmm(in.reg);
        f[op - 0x54][col](d, sv);
        set_xmm(in.reg, d);
        return;
    }
    case 0x6e: { // MOVD/MOVQ mm/xmm, r/m32/64
        if (col > 1) undefined_opcode(&in, "F2/F3 0F 6E");
        unsigned size = rexw ? 8 : 4;
        if (col == 1)
            fpu_check_sse();
        else
            check_mmx();
        uint64_t v = 0;
        if (in.mem())
            fpu_mem_read(in, &v, size, 0);
        else
            v = reg(in.rm, size, true);
        if (col == 0) {
            set_mm(in.reg, v);
        } else {
            Xmm d{};
            d.q[0] = v;
            set_xmm(in.reg, d);
        }
        return;
    }
    case 0x7e: {
        if (col == 3) undefined_opcode(&in, "F2 0F 7E");
        if (col == 2) { // MOVQ xmm, xmm/m64
            fpu_check_sse();
            Xmm sv = xsrc(8, false), d{};
            d.q[0] = sv.q[0];
            set_xmm(in.reg, d);
            return;
        }
        unsigned size = rexw ? 8 : 4; // MOVD/MOVQ r/m32/64, mm/xmm
        uint64_t v;
        if (col == 1) {
            fpu_check_sse();
            v = xmm(in.reg).q[0];
        } else {
            check_mmx();
            v = mm(in.reg);
        }
        if (in.mem())
            fpu_mem_write(in, &v, size, 0);
        else
            set_reg(in.rm, size, v, true);
        return;
    }
    case 0x6f:
    case 0x7f: {
        if (col == 3) undefined_opcode(&in, "F2 0F 6F/7F");
        if (col == 0) { // MOVQ mm, mm/m64 and back
            check_mmx();
            if (op == 0x6f) {
                set_mm(in.reg, msrc());
            } else if (in.mem()) {
                uint64_t v = mm(in.reg);
                fpu_mem_write(in, &v, 8, 0);
            } else {
                set_mm(in.rm, mm(in.reg));
            }
            return;
        }
        fpu_check_sse(); // MOVDQA (66, aligned) / MOVDQU (F3)
        if (op == 0x6f)
            set_xmm(in.reg, xsrc(16, col == 1));
        else
            store_xmm_rm(xmm(in.reg), 16, col == 1);
        return;
    }
    case 0x70: { // PSHUFW / PSHUFD / PSHUFHW / PSHUFLW
        const unsigned imm = in.imm & 0xff;
        if (col == 0) {
            check_mmx();
            uint64_t sv = msrc(), r = 0;
            for (unsigned i = 0; i < 4; i++)
                r |= ((sv >> (16 * ((imm >> (2 * i)) & 3))) & 0xffff) << (16 * i);
            set_mm(in.reg, r);
            return;
        }
        fpu_check_sse();
        Xmm sv = xsrc(16, true), d = sv;
        if (col == 1) {
            for (unsigned i = 0; i < 4; i++) d.d[i] = sv.d[(imm >> (2 * i)) & 3];
        } else {
            unsigned base = col == 2 ? 4 : 0; // F3: high words, F2: low words
            for (unsigned i = 0; i < 4; i++) d.w[base + i] = sv.w[base + ((imm >> (2 * i)) & 3)];
        }
        set_xmm(in.reg, d);
        return;
    }
    case 0x71:
    case 0x72:
    case 0x73: { // shift groups by imm8
        need_reg();
        if (col > 1) undefined_opcode(&in, "F2/F3 0F 71-73");
        const unsigned r = in.reg & 7;
        const uint64_t count = in.imm & 0xff;
        host::XmmOp xf = nullptr;
        host::MmxOp mf = nullptr;
        static const host::XmmOp xs[3][8] = {
            {nullptr, nullptr, host::x_psrlw, nullptr, host::x_psraw, nullptr, host::x_psllw,
             nullptr},
            {nullptr, nullptr, host::x_psrld, nullptr, host::x_psrad, nullptr, host::x_pslld,
             nullptr},
            {nullptr, nullptr, host::x_psrlq, nullptr, nullptr, nullptr, host::x_psllq, nullptr}};
        static const host::MmxOp ms[3][8] = {
            {nullptr, nullptr, host::m_psrlw, nullptr, host::m_psraw, nullptr, host::m_psllw,
             nullptr},
            {nullptr, nullptr, host::m_psrld, nullptr, host::m_psrad, nullptr, host::m_pslld,
             nullptr},
            {nullptr, nullptr, host::m_psrlq, nullptr, nullptr, nullptr, host::m_psllq, nullptr}};
        xf = xs[op - 0x71][r];
        mf = ms[op - 0x71][r];
        if (op == 0x73 && (r == 3 || r == 7)) { // PSRLDQ / PSLLDQ (66 only)
            if (col != 1) undefined_opcode(&in, "PSRLDQ/PSLLDQ without 66");
            fpu_check_sse();
            Xmm v = xmm(in.rm), d{};
            unsigned n = count > 16 ? 16 : unsigned(count);
            if (r == 3)
                memcpy(d.b, v.b + n, 16 - n);
            else
                memcpy(d.b + n, v.b, 16 - n);
            set_xmm(in.rm, d);
            return;
        }
        if (!xf) undefined_opcode(&in, "0F 71-73 reserved /reg");
        if (col == 1) {
            fpu_check_sse();
            Xmm c{}, d = xmm(in.rm);
            c.q[0] = count;
            xf(d, c);
            set_xmm(in.rm, d);
        } else {
            check_mmx();
            uint64_t d = mm(in.rm);
            mf(d, count);
            set_mm(in.rm, d);
        }
        return;
    }
    case 0x77: // EMMS: every tag empty
        if (col != 0) undefined_opcode(&in, "prefixed 0F 77");
        if (s.cr0 & kCr0EM) throw GuestFault{kUD, false, 0};
        if (s.cr0 & kCr0TS) throw GuestFault{kNM, false, 0};
        fpu_pending_mf();
        fx[kFxFtw] = 0;
        return;
    case 0x7c:
    case 0x7d: { // HADDPD/HADDPS, HSUBPD/HSUBPS
        if (col != 1 && col != 3) undefined_opcode(&in, "0F 7C/7D prefix");
        fpu_check_sse();
        static const host::FpOp f[2][2] = {{host::f_haddpd, host::f_haddps},
                                           {host::f_hsubpd, host::f_hsubps}};
        fp_run(f[op - 0x7c][col == 3], 16, true);
        return;
    }
    case 0xc2: { // CMPPS/CMPPD/CMPSS/CMPSD
        fpu_check_sse();
        Xmm sv = xsrc(kFpSize[col], col <= 1), d = xmm(in.reg);
        uint32_t raised = host::cmp_fp(col, unsigned(in.imm) & 7, d, sv, hmx);
        fpu_mxcsr_commit(raised);
        set_xmm(in.reg, d);
        return;
    }
    case 0xc3: { // MOVNTI m32/64, r32/64: an integer store with a non-temporal hint
        if (col != 0) undefined_opcode(&in, "prefixed MOVNTI");
        need_mem();
        unsigned size = rexw ? 8 : 4;
        uint64_t v = reg(in.reg, size, true);
        fpu_mem_write(in, &v, size, 0);
        return;
    }
    case 0xc4: { // PINSRW mm/xmm, r32/m16, imm8
        if (col > 1) undefined_opcode(&in, "F2/F3 0F C4");
        uint16_t v;
        if (col == 1)
            fpu_check_sse();
        else
            check_mmx();
        if (in.mem())
            fpu_mem_read(in, &v, 2, 0);
        else
            v = uint16_t(reg(in.rm, 4, true));
        if (col == 1) {
            Xmm d = xmm(in.reg);
            d.w[in.imm & 7] = v;
            set_xmm(in.reg, d);
        } else {
            uint64_t d = mm(in.reg);
            unsigned sh = 16 * (in.imm & 3);
            d = (d & ~(0xffffull << sh)) | (uint64_t(v) << sh);
            set_mm(in.reg, d);
        }
        return;
    }
    case 0xc5: { // PEXTRW r32, mm/xmm, imm8
        if (col > 1) undefined_opcode(&in, "F2/F3 0F C5");
        need_reg();
        uint64_t v;
        if (col == 1) {
            fpu_check_sse();
            v = xmm(in.rm).w[in.imm & 7];
        } else {
            check_mmx();
            v = (mm(in.rm) >> (16 * (in.imm & 3))) & 0xffff;
        }
        set_reg(in.reg, 8, v, true);
        return;
    }
    case 0xc6: { // SHUFPS / SHUFPD
        if (col > 1) undefined_opcode(&in, "F2/F3 0F C6");
        fpu_check_sse();
        const unsigned imm = in.imm & 0xff;
        Xmm sv = xsrc(16, true), d = xmm(in.reg), r;
        if (col == 0) {
            r.d[0] = d.d[imm & 3];
            r.d[1] = d.d[(imm >> 2) & 3];
            r.d[2] = sv.d[(imm >> 4) & 3];
            r.d[3] = sv.d[(imm >> 6) & 3];
        } else {
            r.q[0] = d.q[imm & 1];
            r.q[1] = sv.q[(imm >> 1) & 1];
        }
        set_xmm(in.reg, r);
        return;
    }
    case 0xd0: // ADDSUBPD / ADDSUBPS
        if (col != 1 && col != 3) undefined_opcode(&in, "0F D0 prefix");
        fpu_check_sse();
        fp_run(col == 1 ? host::f_addsubpd : host::f_addsubps, 16, true);
        return;
    case 0xd6: {
        if (col == 1) { // MOVQ xmm/m64, xmm
            fpu_check_sse();
            Xmm v = xmm(in.reg);
            if (in.mem()) {
                fpu_mem_write(in, &v, 8, 0);
            } else {
                Xmm d{};
                d.q[0] = v.q[0];
                set_xmm(in.rm, d);
            }
            return;
        }
        need_reg();
        if (col == 2) { // MOVQ2DQ xmm, mm
            fpu_check_sse();
            check_mmx();
            Xmm d{};
            d.q[0] = mm(in.rm);
            set_xmm(in.reg, d);
            return;
        }
        if (col == 3) { // MOVDQ2Q mm, xmm
            fpu_check_sse();
            check_mmx();
            set_mm(in.reg, xmm(in.rm).q[0]);
            return;
        }
        undefined_opcode(&in, "0F D6 without prefix");
    }
    case 0xd7: { // PMOVMSKB r32, mm/xmm
        if (col > 1) undefined_opcode(&in, "F2/F3 0F D7");
        need_reg();
        uint32_t m = 0;
        if (col == 1) {
            fpu_check_sse();
            Xmm v = xmm(in.rm);
            for (unsigned i = 0; i < 16; i++) m |= uint32_t(v.b[i] >> 7) << i;
        } else {
            check_mmx();
            uint64_t v = mm(in.rm);
            for (unsigned i = 0; i < 8; i++) m |= uint32_t((v >> (8 * i + 7)) & 1) << i;
        }
        set_reg(in.reg, 8, m, true);
        return;
    }
    case 0xe6: { // CVTTPD2DQ (66), CVTDQ2PD (F3), CVTPD2DQ (F2)
        if (col == 0) undefined_opcode(&in, "0F E6 without prefix");
        fpu_check_sse();
        host::FpOp f = col == 1   ? host::f_cvttpd2dq
                       : col == 2 ? host::f_cvtdq2pd
                                  : host::f_cvtpd2dq;
        fp_run(f, col == 2 ? 8 : 16, col != 2);
        return;
    }
    case 0xe7: { // MOVNTQ m64, mm / MOVNTDQ m128, xmm
        if (col > 1) undefined_opcode(&in, "F2/F3 0F E7");
        need_mem();
        if (col == 0) {
            check_mmx();
            uint64_t v = mm(in.reg);
            fpu_mem_write(in, &v, 8, 0);
        } else {
            fpu_check_sse();
            fpu_mem_write(in, fx + kFxXmm + 16 * in.reg, 16, 16);
        }
        return;
    }
    case 0xf0: // LDDQU xmm, m128
        if (col != 3) undefined_opcode(&in, "0F F0 without F2");
        need_mem();
        fpu_check_sse();
        set_xmm(in.reg, xsrc(16, false));
        return;
    case 0xf7: { // MASKMOVQ / MASKMOVDQU: byte stores to DS:rDI (segment overridable)
        if (col > 1) undefined_opcode(&in, "F2/F3 0F F7");
        need_reg();
        uint8_t data[16], mask[16];
        unsigned n = col == 1 ? 16 : 8;
        if (col == 1) {
            fpu_check_sse();
            Xmm d = xmm(in.reg), m = xmm(in.rm);
            memcpy(data, d.b, 16);
            memcpy(mask, m.b, 16);
        } else {
            check_mmx();
            uint64_t d = mm(in.reg), m = mm(in.rm);
            memcpy(data, &d, 8);
            memcpy(mask, &m, 8);
        }
        uint64_t base = s.gpr[RDI] & size_mask(in.asize);
        unsigned seg = in.seg_override ? unsigned(in.seg) : unsigned(DS);
        for (unsigned i = 0; i < n; i++)
            if (mask[i] & 0x80) write_seg<uint8_t>(seg, (base + i) & size_mask(in.asize), data[i]);
        return;
    }
    default: break;
    }
    undefined_opcode(&in, "SSE/MMX opcode not implemented");
}

// 0F 38: SSSE3 (MMX and XMM forms) and the SSE4.1 register operations.
bool X86Cpu::exec_sse_0f38(const Insn& in, unsigned col) {
    const unsigned op = in.op & 0xff;
    uint8_t* fx = s.fxsave;
    const host::HostSimd& h = host::host_simd();
    const bool ssse3_op = op <= 0x0b || (op >= 0x1c && op <= 0x1e);
    const bool sse42_op = op == 0x37 || op >= 0xf0;
    if (!(ssse3_op ? h.ssse3 : sse42_op ? h.sse42 : h.sse41)) return false;
    const IntOpEntry& e = kInt.map38[op];
    if (e.x && (col == 1 || (col == 0 && e.m))) {
        if (col == 1) {
            fpu_check_sse();
            Xmm sv{}, d;
            if (in.mem())
                fpu_mem_read(in, &sv, 16, 16);
            else
                memcpy(&sv, fx + kFxXmm + 16 * in.rm, 16);
            memcpy(&d, fx + kFxXmm + 16 * in.reg, 16);
            e.x(d, sv);
            memcpy(fx + kFxXmm + 16 * in.reg, &d, 16);
        } else {
            fpu_check_mmx();
            MmxTransition mmx_mode(fx);
            mmx_mode.armed = true;
            uint64_t sv, d = mm_get(fx, in.reg);
            if (in.mem())
                fpu_mem_read(in, &sv, 8, 0);
            else
                sv = mm_get(fx, in.rm);
            e.m(d, sv);
            mm_put(fx, in.reg, d);
        }
        return true;
    }
    auto xmm_at = [&](unsigned r) {
        Xmm v;
        memcpy(&v, fx + kFxXmm + 16 * (r & 15), 16);
        return v;
    };
    auto src128 = [&](unsigned align) {
        Xmm v{};
        if (in.mem())
            fpu_mem_read(in, &v, 16, align);
        else
            v = xmm_at(in.rm);
        return v;
    };
    if (col == 1 && (op == 0x10 || op == 0x14 || op == 0x15)) {
        // PBLENDVB / BLENDVPS / BLENDVPD: XMM0's sign bits pick the source elements.
        fpu_check_sse();
        Xmm sv = src128(16), d = xmm_at(in.reg), m = xmm_at(0);
        for (unsigned i = 0; i < 16; i++) {
            unsigned sign_byte = op == 0x10 ? i : op == 0x14 ? (i | 3) : (i | 7);
            if (m.b[sign_byte] & 0x80) d.b[i] = sv.b[i];
        }
        memcpy(fx + kFxXmm + 16 * in.reg, &d, 16);
        return true;
    }
    if (col == 1 && op == 0x17) { // PTEST: ZF = !(src & dst), CF = !(src & ~dst)
        fpu_check_sse();
        Xmm sv = src128(16), d = xmm_at(in.reg);
        bool z = ((sv.q[0] & d.q[0]) | (sv.q[1] & d.q[1])) == 0;
        bool c = ((sv.q[0] & ~d.q[0]) | (sv.q[1] & ~d.q[1])) == 0;
        s.rflags = (s.rflags & ~kStatusFlags) | (z ? kZF : 0) | (c ? kCF : 0);
        return true;
    }
    if (col == 1 && op == 0x2a) { // MOVNTDQA xmm, m128
        if (!in.mem()) undefined_opcode(&in, "MOVNTDQA register form");
        fpu_check_sse();
        Xmm v = src128(16);
        memcpy(fx + kFxXmm + 16 * in.reg, &v, 16);
        return true;
    }
    if (col == 3 && (op == 0xf0 || op == 0xf1)) { // CRC32 r32/64, r/m8/16/32/64 (an integer op)
        unsigned size = op == 0xf0 ? 1 : in.osize;
        uint64_t v = 0;
        if (in.mem())
            fpu_mem_read(in, &v, size, 0);
        else
            v = reg(in.rm, size, in.rex != 0);
        uint32_t crc = host::crc32(uint32_t(s.gpr[in.reg]), v, size);
        set_reg(in.reg, (in.rex & 8) ? 8 : 4, crc, true);
        return true;
    }
    // PMOVSX/PMOVZX xmm, xmm/mN (SSE4.1): the memory operand is only as wide as the source.
    if (col == 1 && ((op >= 0x20 && op <= 0x25) || (op >= 0x30 && op <= 0x35))) {
        static constexpr unsigned kSize[6] = {8, 4, 2, 8, 4, 8};
        static const host::XmmOp f[2][6] = {{host::x_pmovsxbw, host::x_pmovsxbd, host::x_pmovsxbq,
                                             host::x_pmovsxwd, host::x_pmovsxwq, host::x_pmovsxdq},
                                            {host::x_pmovzxbw, host::x_pmovzxbd, host::x_pmovzxbq,
                                             host::x_pmovzxwd, host::x_pmovzxwq, host::x_pmovzxdq}};
        fpu_check_sse();
        Xmm sv{}, d{};
        if (in.mem())
            fpu_mem_read(in, &sv, kSize[op & 7], 0);
        else
            memcpy(&sv, fx + kFxXmm + 16 * in.rm, 16);
        f[op >= 0x30][op & 7](d, sv);
        memcpy(fx + kFxXmm + 16 * in.reg, &d, 16);
        return true;
    }
    return false;
}

// 0F 3A: PALIGNR (SSSE3) and ROUNDxx (SSE4.1).
bool X86Cpu::exec_sse_0f3a(const Insn& in, unsigned col) {
    const unsigned op = in.op & 0xff;
    uint8_t* fx = s.fxsave;
    const unsigned imm = in.imm & 0xff;
    const host::HostSimd& h = host::host_simd();
    if (!(op == 0x0f ? h.ssse3 : op >= 0x60 ? h.sse42 : h.sse41)) return false;
    if (op == 0x0f && col <= 1) { // PALIGNR: (dest:src) >> imm bytes
        uint8_t cat[32] = {}, out[16] = {};
        unsigned n = col == 1 ? 16 : 8;
        MmxTransition mmx_mode(fx);
        if (col == 1) {
            fpu_check_sse();
            if (in.mem())
                fpu_mem_read(in, cat, 16, 16);
            else
                memcpy(cat, fx + kFxXmm + 16 * in.rm, 16);
            memcpy(cat + 16, fx + kFxXmm + 16 * in.reg, 16);
        } else {
            fpu_check_mmx();
            mmx_mode.armed = true;
            uint64_t sv, d = mm_get(fx, in.reg);
            if (in.mem())
                fpu_mem_read(in, &sv, 8, 0);
            else
                sv = mm_get(fx, in.rm);
            memcpy(cat, &sv, 8);
            memcpy(cat + 8, &d, 8);
        }
        for (unsigned i = 0; i < n; i++) out[i] = imm + i < 2 * n ? cat[imm + i] : 0;
        if (col == 1) {
            memcpy(fx + kFxXmm + 16 * in.reg, out, 16);
        } else {
            uint64_t r;
            memcpy(&r, out, 8);
            mm_put(fx, in.reg, r);
        }
        return true;
    }
    if (col == 1 && op >= 0x0c) {
        auto xmm_at = [&](unsigned r) {
            Xmm v;
            memcpy(&v, fx + kFxXmm + 16 * (r & 15), 16);
            return v;
        };
        auto set_at = [&](unsigned r, const Xmm& v) {
            memcpy(fx + kFxXmm + 16 * (r & 15), &v, 16);
        };
        auto src = [&](unsigned size, unsigned align) {
            Xmm v{};
            if (in.mem())
                fpu_mem_read(in, &v, size, align);
            else
                v = xmm_at(in.rm);
            return v;
        };
        const bool rexw = in.rex & 8;
        // r/m destination of the extract forms: a register is written zero-extended.
        auto put_rm = [&](uint64_t v, unsigned size) {
            if (in.mem())
                fpu_mem_write(in, &v, size, 0);
            else
                set_reg(in.rm, rexw ? 8 : 4, v, true);
        };
        auto get_rm = [&](unsigned size) -> uint64_t {
            uint64_t v = 0;
            if (in.mem())
                fpu_mem_read(in, &v, size, 0);
            else
                v = reg(in.rm, 8, true);
            return v & (size == 8 ? ~0ull : (1ull << (8 * size)) - 1);
        };
        switch (op) {
        case 0x0c:
        case 0x0d:
        case 0x0e: { // BLENDPS / BLENDPD / PBLENDW
            fpu_check_sse();
            Xmm sv = src(16, 16), d = xmm_at(in.reg);
            unsigned n = op == 0x0c ? 4 : op == 0x0d ? 2 : 8, w = 16 / n;
            for (unsigned i = 0; i < n; i++)
                if (imm & (1u << i)) memcpy(d.b + w * i, sv.b + w * i, w);
            set_at(in.reg, d);
            return true;
        }
        case 0x14: // PEXTRB r/m8
            fpu_check_sse();
            put_rm(xmm_at(in.reg).b[imm & 15], 1);
            return true;
        case 0x15: // PEXTRW r/m16
            fpu_check_sse();
            put_rm(xmm_at(in.reg).w[imm & 7], 2);
            return true;
        case 0x16: // PEXTRD r/m32 / PEXTRQ r/m64
            fpu_check_sse();
            put_rm(rexw ? xmm_at(in.reg).q[imm & 1] : xmm_at(in.reg).d[imm & 3], rexw ? 8 : 4);
            return true;
        case 0x17: // EXTRACTPS r/m32
            fpu_check_sse();
            put_rm(xmm_at(in.reg).d[imm & 3], 4);
            return true;
        case 0x20: { // PINSRB xmm, r32/m8
            fpu_check_sse();
            uint8_t v = uint8_t(get_rm(1));
            Xmm d = xmm_at(in.reg);
            d.b[imm & 15] = v;
            set_at(in.reg, d);
            return true;
        }
        case 0x21: { // INSERTPS xmm, xmm/m32: pick, place, then zero by mask
            fpu_check_sse();
            uint32_t v;
            if (in.mem())
                fpu_mem_read(in, &v, 4, 0);
            else
                v = xmm_at(in.rm).d[(imm >> 6) & 3];
            Xmm d = xmm_at(in.reg);
            d.d[(imm >> 4) & 3] = v;
            for (unsigned i = 0; i < 4; i++)
                if (imm & (1u << i)) d.d[i] = 0;
            set_at(in.reg, d);
            return true;
        }
        case 0x22: { // PINSRD / PINSRQ
            fpu_check_sse();
            uint64_t v = get_rm(rexw ? 8 : 4);
            Xmm d = xmm_at(in.reg);
            if (rexw)
                d.q[imm & 1] = v;
            else
                d.d[imm & 3] = uint32_t(v);
            set_at(in.reg, d);
            return true;
        }
        case 0x40:
        case 0x41: { // DPPS / DPPD
            fpu_check_sse();
            Xmm sv = src(16, 16), d = xmm_at(in.reg);
            uint32_t hmx = host::host_mxcsr(fx_get<uint32_t>(fx, kFxMxcsr));
            uint32_t raised =
                op == 0x40 ? host::dpps(imm, d, sv, hmx) : host::dppd(imm, d, sv, hmx);
            fpu_mxcsr_commit(raised);
            set_at(in.reg, d);
            return true;
        }
        case 0x42: { // MPSADBW
            fpu_check_sse();
            Xmm sv = src(16, 16), d = xmm_at(in.reg);
            host::mpsadbw(imm, d, sv);
            set_at(in.reg, d);
            return true;
        }
        case 0x60:
        case 0x61:
        case 0x62:
        case 0x63: { // PCMPESTRM / PCMPESTRI / PCMPISTRM / PCMPISTRI (memory need not be aligned)
            fpu_check_sse();
            Xmm b = src(16, 0), a = xmm_at(in.reg);
            // Explicit lengths: |RAX| and |RDX| (|EAX|, |EDX| without REX.W), saturated to the
            // element count.
            const int64_t max = (imm & 1) ? 8 : 16;
            auto len = [&](uint64_t r) -> int32_t {
                int64_t v = rexw ? int64_t(r) : int64_t(int32_t(r));
                uint64_t mag = v < 0 ? 0 - uint64_t(v) : uint64_t(v);
                return int32_t(mag > uint64_t(max) ? max : int64_t(mag));
            };
            Xmm x0 = xmm_at(0);
            uint32_t ecx = 0;
            host::pcmpstr(op - 0x60, imm, a, b, len(s.gpr[RAX]), len(s.gpr[RDX]), x0, ecx,
                          s.rflags);
            if (op & 1)
                set_reg(RCX, 8, ecx, false);
            else
                set_at(0, x0);
            return true;
        }
        default: break;
        }
    }
    if (op >= 0x08 && op <= 0x0b && col == 1) { // ROUNDPS/PD/SS/SD
        fpu_check_sse();
        static constexpr unsigned kSize[4] = {16, 16, 4, 8};
        unsigned kind = op - 0x08;
        Xmm sv{}, d;
        if (in.mem())
            fpu_mem_read(in, &sv, kSize[kind], kSize[kind] == 16 ? 16 : 0);
        else
            memcpy(&sv, fx + kFxXmm + 16 * in.rm, 16);
        memcpy(&d, fx + kFxXmm + 16 * in.reg, 16);
        uint32_t raised =
            host::round_fp(kind, imm, d, sv, host::host_mxcsr(fx_get<uint32_t>(fx, kFxMxcsr)));
        fpu_mxcsr_commit(raised);
        memcpy(fx + kFxXmm + 16 * in.reg, &d, 16);
        return true;
    }
    return false;
}

} // namespace hvm::emu
