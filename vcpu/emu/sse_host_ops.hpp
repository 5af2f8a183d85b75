// SIMD operations executed by the host CPU's own instruction, one tiny inline-assembly wrapper per
// instruction. The guest and the host are both x86, so running the very instruction the guest
// asked for is the only way to be bit-exact for every operand (NaN payloads and quieting, the
// approximations of RCPPS/RSQRTPS, DAZ/FTZ, rounding modes, exception flags) without
// re-deriving each rule of the SDM.
//
// Floating-point wrappers run under the guest's MXCSR with every exception masked and its flags
// cleared, and return the flags the instruction raised; the caller decides about #XM. They never
// trap on the host. MMX wrappers end with EMMS so the host's x87 stack stays empty.
#pragma once
#include <cstdint>

#include "vcpu/emu/fpu_state.hpp"

namespace hvm::emu::host {

// clang-format off
// Integer operations that exist as MMX (mm, mm/m64) and SSE2/SSSE3 (xmm, xmm/m128) forms.
#define HVM_MMX_XMM_OPS(X)                                                                  \
    X(paddb) X(paddw) X(paddd) X(paddq) X(psubb) X(psubw) X(psubd) X(psubq) X(paddsb)       \
    X(paddsw) X(paddusb) X(paddusw) X(psubsb) X(psubsw) X(psubusb) X(psubusw) X(pcmpeqb)    \
    X(pcmpeqw) X(pcmpeqd) X(pcmpgtb) X(pcmpgtw) X(pcmpgtd) X(pand) X(pandn) X(por) X(pxor)  \
    X(pminub) X(pmaxub) X(pminsw) X(pmaxsw) X(pavgb) X(pavgw) X(pmullw) X(pmulhw)           \
    X(pmulhuw) X(pmuludq) X(pmaddwd) X(psadbw) X(punpcklbw) X(punpcklwd) X(punpckldq)       \
    X(punpckhbw) X(punpckhwd) X(punpckhdq) X(packsswb) X(packssdw) X(packuswb) X(psllw)     \
    X(pslld) X(psllq) X(psrlw) X(psrld) X(psrlq) X(psraw) X(psrad) X(pshufb) X(phaddw)      \
    X(phaddd) X(phaddsw) X(pmaddubsw) X(phsubw) X(phsubd) X(phsubsw) X(psignb) X(psignw)    \
    X(psignd) X(pmulhrsw) X(pabsb) X(pabsw) X(pabsd)

// Integer/bitwise/shuffle operations that exist only on XMM registers (no MXCSR involvement).
#define HVM_XMM_ONLY_OPS(X)                                                                 \
    X(punpcklqdq) X(punpckhqdq) X(andps) X(andnps) X(orps) X(xorps) X(andpd) X(andnpd)      \
    X(orpd) X(xorpd) X(unpcklps) X(unpckhps) X(unpcklpd) X(unpckhpd) X(movshdup)            \
    X(movsldup) X(movddup) X(pmulld) X(pminsb) X(pminsd) X(pminuw) X(pminud) X(pmaxsb)      \
    X(pmaxsd) X(pmaxuw) X(pmaxud) X(pcmpeqq) X(packusdw) X(pmuldq) X(pmovsxbw) X(pmovsxbd)  \
    X(pmovsxbq) X(pmovsxwd) X(pmovsxwq) X(pmovsxdq) X(pmovzxbw) X(pmovzxbd) X(pmovzxbq)     \
    X(pmovzxwd) X(pmovzxwq) X(pmovzxdq) X(phminposuw) X(pcmpgtq)

// Floating-point operations (MXCSR rounding, DAZ/FZ, exception flags).
#define HVM_FP_OPS(X)                                                                   \
    X(addps) X(addpd) X(addss) X(addsd) X(subps) X(subpd) X(subss) X(subsd) X(mulps)    \
    X(mulpd) X(mulss) X(mulsd) X(divps) X(divpd) X(divss) X(divsd) X(sqrtps) X(sqrtpd)  \
    X(sqrtss) X(sqrtsd) X(minps) X(minpd) X(minss) X(minsd) X(maxps) X(maxpd) X(maxss)  \
    X(maxsd) X(cvtps2pd) X(cvtpd2ps) X(cvtss2sd) X(cvtsd2ss) X(cvtdq2ps) X(cvtps2dq)    \
    X(cvttps2dq) X(cvttpd2dq) X(cvtdq2pd) X(cvtpd2dq) X(rcpps) X(rcpss) X(rsqrtps)      \
    X(rsqrtss) X(addsubps) X(addsubpd) X(haddps) X(haddpd) X(hsubps) X(hsubpd)
// clang-format on

using XmmOp = void (*)(Xmm& d, const Xmm& s);
using MmxOp = void (*)(uint64_t& d, uint64_t s);
using FpOp = uint32_t (*)(Xmm& d, const Xmm& s, uint32_t mxcsr);

#define HVM_DECL_BOTH(n)                                                                           \
    void x_##n(Xmm& d, const Xmm& s);                                                              \
    void m_##n(uint64_t& d, uint64_t s);
#define HVM_DECL_X(n) void x_##n(Xmm& d, const Xmm& s);
#define HVM_DECL_FP(n) uint32_t f_##n(Xmm& d, const Xmm& s, uint32_t mxcsr);
HVM_MMX_XMM_OPS(HVM_DECL_BOTH)
HVM_XMM_ONLY_OPS(HVM_DECL_X)
HVM_FP_OPS(HVM_DECL_FP)
#undef HVM_DECL_BOTH
#undef HVM_DECL_X
#undef HVM_DECL_FP

// CMPccPS/PD/SS/SD with predicate imm8 & 7: index [kind][pred], kind 0 ps, 1 pd, 2 ss, 3 sd.
uint32_t cmp_fp(unsigned kind, unsigned pred, Xmm& d, const Xmm& s, uint32_t mxcsr);
// ROUNDPS/PD/SS/SD (SSE4.1) with imm8 & 15.
uint32_t round_fp(unsigned kind, unsigned imm, Xmm& d, const Xmm& s, uint32_t mxcsr);
// COMISS/UCOMISS/COMISD/UCOMISD: returns raised flags; `zpc` gets ZF/PF/CF as RFLAGS bits.
uint32_t comi(unsigned kind, const Xmm& a, const Xmm& b, uint32_t mxcsr, uint64_t& zpc);
// CVTSI2SS/SD: dbl = SD form; q = 64-bit source.
uint32_t cvt_int_to_fp(bool dbl, bool q, Xmm& d, uint64_t src, uint32_t mxcsr);
// CVT(T)SS2SI / CVT(T)SD2SI: dbl = SD form; q = 64-bit destination; trunc = CVTT form.
uint32_t cvt_fp_to_int(bool dbl, bool q, bool trunc, uint64_t& dst, const Xmm& s, uint32_t mxcsr);
// DPPS/DPPD (SSE4.1) with imm8 (DPPD uses bits 5:4 and 1:0).
uint32_t dpps(unsigned imm, Xmm& d, const Xmm& s, uint32_t mxcsr);
uint32_t dppd(unsigned imm, Xmm& d, const Xmm& s, uint32_t mxcsr);
// MPSADBW (SSE4.1) with imm8 & 7.
void mpsadbw(unsigned imm, Xmm& d, const Xmm& s);
// PCMPESTRI/PCMPESTRM/PCMPISTRI/PCMPISTRM (SSE4.2). `kind`: 0 ESTRM, 1 ESTRI, 2 ISTRM, 3 ISTRI
// (opcode 0F 3A 60 + kind). `la`/`ld` are the explicit lengths (E forms), already saturated to
// what the instruction uses. Writes `xmm0` (M forms) or `ecx` (I forms) and the arithmetic flags
// (CF ZF SF OF; AF PF cleared) to `rflags`.
void pcmpstr(unsigned kind, unsigned imm, const Xmm& a, const Xmm& b, int32_t la, int32_t ld,
             Xmm& xmm0, uint32_t& ecx, uint64_t& rflags);
// CRC32 (SSE4.2) of `size` bytes of `v` into `crc`.
uint32_t crc32(uint32_t crc, uint64_t v, unsigned size);
// Instruction sets beyond SSE2 that the wrappers need from the host CPU. An instruction the host
// lacks raises #UD in the guest instead of SIGILL in hvm.
struct HostSimd {
    bool sse3, ssse3, sse41, sse42;
};
const HostSimd& host_simd();

// The MXCSR value the wrappers run under: the guest's control bits, all exceptions masked.
inline uint32_t host_mxcsr(uint32_t guest) {
    return (guest & 0xffc0 & kMxcsrMask) | 0x1f80;
}

} // namespace hvm::emu::host
