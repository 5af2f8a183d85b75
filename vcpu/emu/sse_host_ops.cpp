// Host-executed SIMD wrappers (see sse_host_ops.hpp). Operands travel through memory and fixed
// registers (xmm0/xmm1, mm0/mm1) so the compiler never holds guest values in SIMD registers
// across a changed MXCSR.
#include "vcpu/emu/sse_host_ops.hpp"

namespace hvm::emu::host {

#define HVM_DEF_X(n)                                                                               \
    void x_##n(Xmm& d, const Xmm& s) {                                                             \
        asm volatile("movdqu %0, %%xmm0\n\tmovdqu %1, %%xmm1\n\t" #n " %%xmm1, %%xmm0\n\t"         \
                     "movdqu %%xmm0, %0"                                                           \
                     : "+m"(d)                                                                     \
                     : "m"(s)                                                                      \
                     : "xmm0", "xmm1");                                                            \
    }
#define HVM_DEF_M(n)                                                                               \
    void m_##n(uint64_t& d, uint64_t s) {                                                          \
        asm volatile("movq %0, %%mm0\n\tmovq %1, %%mm1\n\t" #n " %%mm1, %%mm0\n\t"                 \
                     "movq %%mm0, %0\n\temms"                                                      \
                     : "+m"(d)                                                                     \
                     : "m"(s)                                                                      \
                     : "mm0", "mm1", "st", "st(1)");                                               \
    }
#define HVM_DEF_BOTH(n) HVM_DEF_X(n) HVM_DEF_M(n)

// Runs `insn` (operands xmm1 -> xmm0) under MXCSR `mx`, returns the raised flags.
#define HVM_FP_BODY(insn)                                                                          \
    uint32_t saved, out;                                                                           \
    asm volatile("stmxcsr %[sv]\n\tldmxcsr %[mx]\n\tmovdqu %[d], %%xmm0\n\t"                       \
                 "movdqu %[s], %%xmm1\n\t" insn "\n\tmovdqu %%xmm0, %[d]\n\t"                      \
                 "stmxcsr %[out]\n\tldmxcsr %[sv]"                                                 \
                 : [d] "+m"(d), [sv] "=m"(saved), [out] "=m"(out)                                  \
                 : [s] "m"(s), [mx] "m"(mx)                                                        \
                 : "xmm0", "xmm1");                                                                \
    return out & 0x3f;

#define HVM_DEF_FP(n)                                                                              \
    uint32_t f_##n(Xmm& d, const Xmm& s, uint32_t mx) {                                            \
        HVM_FP_BODY(#n " %%xmm1, %%xmm0")                                                          \
    }

HVM_MMX_XMM_OPS(HVM_DEF_BOTH)
HVM_XMM_ONLY_OPS(HVM_DEF_X)
HVM_FP_OPS(HVM_DEF_FP)

namespace {
#define HVM_DEF_IMM(name, insn, imm)                                                               \
    uint32_t name##_##imm(Xmm& d, const Xmm& s, uint32_t mx) {                                     \
        HVM_FP_BODY(insn " $" #imm ", %%xmm1, %%xmm0")                                             \
    }
#define HVM_DEF_IMM8(name, insn)                                                                   \
    HVM_DEF_IMM(name, insn, 0)                                                                     \
    HVM_DEF_IMM(name, insn, 1)                                                                     \
    HVM_DEF_IMM(name, insn, 2)                                                                     \
    HVM_DEF_IMM(name, insn, 3)                                                                     \
    HVM_DEF_IMM(name, insn, 4)                                                                     \
    HVM_DEF_IMM(name, insn, 5)                                                                     \
    HVM_DEF_IMM(name, insn, 6) HVM_DEF_IMM(name, insn, 7)
#define HVM_DEF_IMM16(name, insn)                                                                  \
    HVM_DEF_IMM8(name, insn)                                                                       \
    HVM_DEF_IMM(name, insn, 8)                                                                     \
    HVM_DEF_IMM(name, insn, 9)                                                                     \
    HVM_DEF_IMM(name, insn, 10)                                                                    \
    HVM_DEF_IMM(name, insn, 11)                                                                    \
    HVM_DEF_IMM(name, insn, 12)                                                                    \
    HVM_DEF_IMM(name, insn, 13) HVM_DEF_IMM(name, insn, 14) HVM_DEF_IMM(name, insn, 15)
#define HVM_LIST8(name)                                                                            \
    name##_0, name##_1, name##_2, name##_3, name##_4, name##_5, name##_6, name##_7
#define HVM_LIST16(name)                                                                           \
    HVM_LIST8(name), name##_8, name##_9, name##_10, name##_11, name##_12, name##_13, name##_14,    \
        name##_15

HVM_DEF_IMM8(cmpps, "cmpps")
HVM_DEF_IMM8(cmppd, "cmppd")
HVM_DEF_IMM8(cmpss, "cmpss")
HVM_DEF_IMM8(cmpsd, "cmpsd")
HVM_DEF_IMM16(roundps, "roundps")
HVM_DEF_IMM16(roundpd, "roundpd")
HVM_DEF_IMM16(roundss, "roundss")
HVM_DEF_IMM16(roundsd, "roundsd")

constexpr FpOp kCmp[4][8] = {
    {HVM_LIST8(cmpps)}, {HVM_LIST8(cmppd)}, {HVM_LIST8(cmpss)}, {HVM_LIST8(cmpsd)}};
constexpr FpOp kRound[4][16] = {
    {HVM_LIST16(roundps)}, {HVM_LIST16(roundpd)}, {HVM_LIST16(roundss)}, {HVM_LIST16(roundsd)}};
// clang-format off
// 256-way immediates: one wrapper per imm8 value, named name_HL (hex digits).
#define HVM_IMM_ROW(M, name, insn, h)                                                  \
    M(name, insn, h, 0) M(name, insn, h, 1) M(name, insn, h, 2) M(name, insn, h, 3)    \
    M(name, insn, h, 4) M(name, insn, h, 5) M(name, insn, h, 6) M(name, insn, h, 7)    \
    M(name, insn, h, 8) M(name, insn, h, 9) M(name, insn, h, a) M(name, insn, h, b)    \
    M(name, insn, h, c) M(name, insn, h, d) M(name, insn, h, e) M(name, insn, h, f)
#define HVM_IMM_ALL(M, name, insn)                                                     \
    HVM_IMM_ROW(M, name, insn, 0) HVM_IMM_ROW(M, name, insn, 1)                        \
    HVM_IMM_ROW(M, name, insn, 2) HVM_IMM_ROW(M, name, insn, 3)                        \
    HVM_IMM_ROW(M, name, insn, 4) HVM_IMM_ROW(M, name, insn, 5)                        \
    HVM_IMM_ROW(M, name, insn, 6) HVM_IMM_ROW(M, name, insn, 7)                        \
    HVM_IMM_ROW(M, name, insn, 8) HVM_IMM_ROW(M, name, insn, 9)                        \
    HVM_IMM_ROW(M, name, insn, a) HVM_IMM_ROW(M, name, insn, b)                        \
    HVM_IMM_ROW(M, name, insn, c) HVM_IMM_ROW(M, name, insn, d)                        \
    HVM_IMM_ROW(M, name, insn, e) HVM_IMM_ROW(M, name, insn, f)
// clang-format on
#define HVM_REF(name, insn, h, l) name##_##h##l,

#define HVM_DEF_FP256(name, insn, h, l)                                                            \
    uint32_t name##_##h##l(Xmm& d, const Xmm& s, uint32_t mx) {                                    \
        HVM_FP_BODY(insn " $0x" #h #l ", %%xmm1, %%xmm0")                                          \
    }
HVM_IMM_ALL(HVM_DEF_FP256, dpps, "dpps")
constexpr FpOp kDpps[256] = {HVM_IMM_ALL(HVM_REF, dpps, "")};

// PCMPxSTRx: a = xmm1 (first operand), b = xmm2; EAX/EDX lengths; outputs ECX, XMM0, flags.
using StrOp = void (*)(const Xmm& a, const Xmm& b, int32_t la, int32_t ld, Xmm& x0, uint32_t& c,
                       uint64_t& fl);
#define HVM_DEF_STR(name, insn, h, l)                                                              \
    void name##_##h##l(const Xmm& a, const Xmm& b, int32_t la, int32_t ld, Xmm& x0, uint32_t& c,   \
                       uint64_t& fl) {                                                             \
        uint32_t ecx = 0;                                                                          \
        uint64_t f;                                                                                \
        asm volatile("movdqu %[a], %%xmm1\n\tmovdqu %[b], %%xmm2\n\tpxor %%xmm0, %%xmm0\n\t" insn  \
                     " $0x" #h #l ", %%xmm2, %%xmm1\n\tpushfq\n\tpopq %[f]\n\t"                    \
                     "movdqu %%xmm0, %[x0]"                                                        \
                     : [x0] "=m"(x0), "+c"(ecx), [f] "=r"(f)                                       \
                     : [a] "m"(a), [b] "m"(b), "a"(la), "d"(ld)                                    \
                     : "xmm0", "xmm1", "xmm2", "cc");                                              \
        c = ecx;                                                                                   \
        fl = f;                                                                                    \
    }
HVM_IMM_ALL(HVM_DEF_STR, pcmpestrm, "pcmpestrm")
HVM_IMM_ALL(HVM_DEF_STR, pcmpestri, "pcmpestri")
HVM_IMM_ALL(HVM_DEF_STR, pcmpistrm, "pcmpistrm")
HVM_IMM_ALL(HVM_DEF_STR, pcmpistri, "pcmpistri")
constexpr StrOp kStr[4][256] = {{HVM_IMM_ALL(HVM_REF, pcmpestrm, "")},
                                {HVM_IMM_ALL(HVM_REF, pcmpestri, "")},
                                {HVM_IMM_ALL(HVM_REF, pcmpistrm, "")},
                                {HVM_IMM_ALL(HVM_REF, pcmpistri, "")}};

// DPPD defines only imm bits 5:4 (multiply mask) and 1:0 (result mask): 16 distinct forms.
HVM_DEF_IMM(dppd, "dppd", 0x0)
HVM_DEF_IMM(dppd, "dppd", 0x1)
HVM_DEF_IMM(dppd, "dppd", 0x2)
HVM_DEF_IMM(dppd, "dppd", 0x3)
HVM_DEF_IMM(dppd, "dppd", 0x10)
HVM_DEF_IMM(dppd, "dppd", 0x11)
HVM_DEF_IMM(dppd, "dppd", 0x12)
HVM_DEF_IMM(dppd, "dppd", 0x13)
HVM_DEF_IMM(dppd, "dppd", 0x20)
HVM_DEF_IMM(dppd, "dppd", 0x21)
HVM_DEF_IMM(dppd, "dppd", 0x22)
HVM_DEF_IMM(dppd, "dppd", 0x23)
HVM_DEF_IMM(dppd, "dppd", 0x30)
HVM_DEF_IMM(dppd, "dppd", 0x31)
HVM_DEF_IMM(dppd, "dppd", 0x32)
HVM_DEF_IMM(dppd, "dppd", 0x33)
constexpr FpOp kDppd[16] = {dppd_0x0,  dppd_0x1,  dppd_0x2,  dppd_0x3,  dppd_0x10, dppd_0x11,
                            dppd_0x12, dppd_0x13, dppd_0x20, dppd_0x21, dppd_0x22, dppd_0x23,
                            dppd_0x30, dppd_0x31, dppd_0x32, dppd_0x33};

#define HVM_DEF_INT_IMM(name, insn, imm)                                                           \
    void name##_##imm(Xmm& d, const Xmm& s) {                                                      \
        asm volatile("movdqu %0, %%xmm0\n\tmovdqu %1, %%xmm1\n\t" insn " $" #imm                   \
                     ", %%xmm1, %%xmm0\n\tmovdqu %%xmm0, %0"                                       \
                     : "+m"(d)                                                                     \
                     : "m"(s)                                                                      \
                     : "xmm0", "xmm1");                                                            \
    }
HVM_DEF_INT_IMM(mpsadbw, "mpsadbw", 0)
HVM_DEF_INT_IMM(mpsadbw, "mpsadbw", 1)
HVM_DEF_INT_IMM(mpsadbw, "mpsadbw", 2)
HVM_DEF_INT_IMM(mpsadbw, "mpsadbw", 3)
HVM_DEF_INT_IMM(mpsadbw, "mpsadbw", 4)
HVM_DEF_INT_IMM(mpsadbw, "mpsadbw", 5)
HVM_DEF_INT_IMM(mpsadbw, "mpsadbw", 6)
HVM_DEF_INT_IMM(mpsadbw, "mpsadbw", 7)
constexpr XmmOp kMpsadbw[8] = {HVM_LIST8(mpsadbw)};

} // namespace

uint32_t dpps(unsigned imm, Xmm& d, const Xmm& s, uint32_t mx) {
    return kDpps[imm & 0xff](d, s, mx);
}

uint32_t dppd(unsigned imm, Xmm& d, const Xmm& s, uint32_t mx) {
    return kDppd[((imm >> 2) & 12) | (imm & 3)](d, s, mx);
}

void mpsadbw(unsigned imm, Xmm& d, const Xmm& s) {
    kMpsadbw[imm & 7](d, s);
}

void pcmpstr(unsigned kind, unsigned imm, const Xmm& a, const Xmm& b, int32_t la, int32_t ld,
             Xmm& xmm0, uint32_t& ecx, uint64_t& rflags) {
    uint64_t fl;
    Xmm x0;
    uint32_t c;
    kStr[kind & 3][imm & 0xff](a, b, la, ld, x0, c, fl);
    if (kind & 1)
        ecx = c;
    else
        xmm0 = x0;
    rflags = (rflags & ~uint64_t(0x8d5)) | (fl & 0x8c1); // CF ZF SF OF; AF PF cleared
}

uint32_t crc32(uint32_t crc, uint64_t v, unsigned size) {
    switch (size) {
    case 1: asm("crc32b %b1, %0" : "+r"(crc) : "r"(uint8_t(v))); break;
    case 2: asm("crc32w %w1, %0" : "+r"(crc) : "r"(uint16_t(v))); break;
    case 4: asm("crc32l %k1, %0" : "+r"(crc) : "r"(uint32_t(v))); break;
    default: {
        uint64_t c = crc;
        asm("crc32q %1, %0" : "+r"(c) : "r"(v));
        crc = uint32_t(c);
    }
    }
    return crc;
}

const HostSimd& host_simd() {
    static const HostSimd h = [] {
        __builtin_cpu_init();
        return HostSimd{__builtin_cpu_supports("sse3") != 0, __builtin_cpu_supports("ssse3") != 0,
                        __builtin_cpu_supports("sse4.1") != 0,
                        __builtin_cpu_supports("sse4.2") != 0};
    }();
    return h;
}

uint32_t cmp_fp(unsigned kind, unsigned pred, Xmm& d, const Xmm& s, uint32_t mx) {
    return kCmp[kind & 3][pred & 7](d, s, mx);
}

uint32_t round_fp(unsigned kind, unsigned imm, Xmm& d, const Xmm& s, uint32_t mx) {
    return kRound[kind & 3][imm & 15](d, s, mx);
}

uint32_t comi(unsigned kind, const Xmm& a, const Xmm& b, uint32_t mx, uint64_t& zpc) {
    uint32_t saved, out;
    uint64_t fl;
#define HVM_COMI(insn)                                                                             \
    asm volatile("stmxcsr %[sv]\n\tldmxcsr %[mx]\n\tmovdqu %[a], %%xmm0\n\t"                       \
                 "movdqu %[b], %%xmm1\n\t" insn " %%xmm1, %%xmm0\n\tpushfq\n\tpopq %[fl]\n\t"      \
                 "stmxcsr %[out]\n\tldmxcsr %[sv]"                                                 \
                 : [sv] "=m"(saved), [out] "=m"(out), [fl] "=r"(fl)                                \
                 : [a] "m"(a), [b] "m"(b), [mx] "m"(mx)                                            \
                 : "xmm0", "xmm1", "cc")
    switch (kind & 3) {
    case 0: HVM_COMI("comiss"); break;
    case 1: HVM_COMI("ucomiss"); break;
    case 2: HVM_COMI("comisd"); break;
    default: HVM_COMI("ucomisd"); break;
    }
#undef HVM_COMI
    zpc = fl & 0x45; // ZF PF CF; OF SF AF are cleared by these instructions
    return out & 0x3f;
}

uint32_t cvt_int_to_fp(bool dbl, bool q, Xmm& d, uint64_t src, uint32_t mx) {
    uint32_t saved, out;
#define HVM_CVTI(insn)                                                                             \
    asm volatile("stmxcsr %[sv]\n\tldmxcsr %[mx]\n\tmovdqu %[d], %%xmm0\n\t" insn                  \
                 "\n\tmovdqu %%xmm0, %[d]\n\tstmxcsr %[out]\n\tldmxcsr %[sv]"                      \
                 : [d] "+m"(d), [sv] "=m"(saved), [out] "=m"(out)                                  \
                 : [src] "r"(src), [mx] "m"(mx)                                                    \
                 : "xmm0")
    switch ((dbl ? 2 : 0) | (q ? 1 : 0)) {
    case 0: HVM_CVTI("cvtsi2ssl %k[src], %%xmm0"); break;
    case 1: HVM_CVTI("cvtsi2ssq %q[src], %%xmm0"); break;
    case 2: HVM_CVTI("cvtsi2sdl %k[src], %%xmm0"); break;
    default: HVM_CVTI("cvtsi2sdq %q[src], %%xmm0"); break;
    }
#undef HVM_CVTI
    return out & 0x3f;
}

uint32_t cvt_fp_to_int(bool dbl, bool q, bool trunc, uint64_t& dst, const Xmm& s, uint32_t mx) {
    uint32_t saved, out;
    uint64_t r = 0;
#define HVM_CVTO(insn)                                                                             \
    asm volatile("stmxcsr %[sv]\n\tldmxcsr %[mx]\n\tmovdqu %[s], %%xmm1\n\t" insn                  \
                 "\n\tstmxcsr %[out]\n\tldmxcsr %[sv]"                                             \
                 : [r] "+r"(r), [sv] "=m"(saved), [out] "=m"(out)                                  \
                 : [s] "m"(s), [mx] "m"(mx)                                                        \
                 : "xmm1")
    switch ((dbl ? 4 : 0) | (q ? 2 : 0) | (trunc ? 1 : 0)) {
    case 0: HVM_CVTO("cvtss2si %%xmm1, %k[r]"); break;
    case 1: HVM_CVTO("cvttss2si %%xmm1, %k[r]"); break;
    case 2: HVM_CVTO("cvtss2si %%xmm1, %q[r]"); break;
    case 3: HVM_CVTO("cvttss2si %%xmm1, %q[r]"); break;
    case 4: HVM_CVTO("cvtsd2si %%xmm1, %k[r]"); break;
    case 5: HVM_CVTO("cvttsd2si %%xmm1, %k[r]"); break;
    case 6: HVM_CVTO("cvtsd2si %%xmm1, %q[r]"); break;
    default: HVM_CVTO("cvttsd2si %%xmm1, %q[r]"); break;
    }
#undef HVM_CVTO
    dst = q ? r : uint32_t(r);
    return out & 0x3f;
}

} // namespace hvm::emu::host
