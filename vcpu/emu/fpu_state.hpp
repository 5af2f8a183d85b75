// The x87/MMX/SSE architectural state as the emulator keeps it: CpuState::fxsave, in the 64-bit
// FXSAVE layout (SDM Vol. 1 §10.5.1, table 10-2), is the live state, so get_state()/set_state()
// and INIT need no conversion and KVM's kvm_fpu maps onto it field by field.
//   - ST(i) lives in slot i (as FXSAVE stores it, relative to TOP); the abridged tag byte has one
//     "not empty" bit per physical register R0..R7. The full tag word (FNSTENV/FNSAVE) is
//     recomputed from the register contents, as hardware does.
//   - FIP/FDP are 64-bit offsets; FCS/FDS are kept as 0 (as CPUs that deprecate them).
//   - MMX register MMi is physical register Ri; MMX instructions set TOP = 0 first, so MMi is
//     slot i.
#pragma once
#include <cstdint>
#include <cstring>

namespace hvm::emu {

inline constexpr unsigned kFxFcw = 0, kFxFsw = 2, kFxFtw = 4, kFxFop = 6, kFxFip = 8, kFxFdp = 16,
                          kFxMxcsr = 24, kFxMxcsrMask = 28, kFxSt = 32, kFxXmm = 160;

// MXCSR (SDM Vol. 1 §10.2.3): flags 0-5, DAZ 6, masks 7-12, RC 13-14, FZ 15. Bits 16-31 are
// reserved: loading them raises #GP. MXCSR_MASK as FXSAVE reports it (DAZ supported).
inline constexpr uint32_t kMxcsrMask = 0xffff;
inline constexpr uint32_t kMxcsrDefault = 0x1f80;
inline constexpr uint32_t kMxIE = 1, kMxDE = 2, kMxZE = 4, kMxOE = 8, kMxUE = 16, kMxPE = 32;

// x87 status word bits (SDM Vol. 1 §8.1.3).
inline constexpr uint16_t kFswIE = 1 << 0, kFswSF = 1 << 6, kFswES = 1 << 7, kFswC0 = 1 << 8,
                          kFswC1 = 1 << 9, kFswC2 = 1 << 10, kFswC3 = 1 << 14, kFswB = 1 << 15;
inline constexpr uint16_t kFcwDefault = 0x037f;

// CR0 / CR4 bits the unit checks.
inline constexpr uint64_t kCr0MP = 1u << 1, kCr0EM = 1u << 2, kCr0TS = 1u << 3, kCr0NE = 1u << 5;
inline constexpr uint64_t kCr4OsFxsr = 1u << 9, kCr4OsXmmExcpt = 1u << 10;

union Xmm {
    uint8_t b[16];
    uint16_t w[8];
    uint32_t d[4];
    uint64_t q[2];
    float f[4];
    double f64[2];
};
static_assert(sizeof(Xmm) == 16);

template <typename T> inline T fx_get(const uint8_t* fx, unsigned off) {
    T v;
    memcpy(&v, fx + off, sizeof v);
    return v;
}
template <typename T> inline void fx_put(uint8_t* fx, unsigned off, T v) {
    memcpy(fx + off, &v, sizeof v);
}

inline unsigned fx_top(const uint8_t* fx) {
    return (fx_get<uint16_t>(fx, kFxFsw) >> 11) & 7;
}

// Makes TOP = 0 while keeping every physical register's contents (slot i becomes Ri).
inline void fx_rotate_to_top0(uint8_t* fx) {
    unsigned top = fx_top(fx);
    if (top == 0) return;
    uint8_t phys[8][16];
    for (unsigned i = 0; i < 8; i++) memcpy(phys[(top + i) & 7], fx + kFxSt + 16 * i, 16);
    memcpy(fx + kFxSt, phys, sizeof phys);
    fx_put<uint16_t>(fx, kFxFsw, uint16_t(fx_get<uint16_t>(fx, kFxFsw) & ~(7u << 11)));
}

// Sets TOP to `top` while keeping every physical register's contents (FLDENV, FNINIT).
inline void fx_set_top(uint8_t* fx, unsigned top) {
    fx_rotate_to_top0(fx);
    top &= 7;
    if (top == 0) return;
    uint8_t slots[8][16];
    for (unsigned i = 0; i < 8; i++) memcpy(slots[i], fx + kFxSt + 16 * ((top + i) & 7), 16);
    memcpy(fx + kFxSt, slots, sizeof slots);
    uint16_t fsw = fx_get<uint16_t>(fx, kFxFsw);
    fx_put<uint16_t>(fx, kFxFsw, uint16_t((fsw & ~(7u << 11)) | top << 11));
}

// The full two-bit tag of physical register `phys` (SDM Vol. 1 §8.1.7): 0 valid, 1 zero,
// 2 special (NaN, infinity, denormal, unsupported), 3 empty.
inline unsigned fx_full_tag(const uint8_t* fx, unsigned phys) {
    if (!(fx[kFxFtw] & (1u << phys))) return 3;
    unsigned slot = (phys - fx_top(fx)) & 7;
    uint64_t mant = fx_get<uint64_t>(fx, kFxSt + 16 * slot);
    uint16_t exp = fx_get<uint16_t>(fx, kFxSt + 16 * slot + 8) & 0x7fff;
    if (exp == 0x7fff) return 2;
    if (exp == 0) return mant == 0 ? 1 : 2;
    return (mant >> 63) ? 0 : 2; // no integer bit: unnormal (unsupported)
}

inline uint16_t fx_full_tag_word(const uint8_t* fx) {
    uint16_t t = 0;
    for (unsigned r = 0; r < 8; r++) t |= uint16_t(fx_full_tag(fx, r) << (2 * r));
    return t;
}

inline uint8_t abridged_tag(uint16_t full) {
    uint8_t t = 0;
    for (unsigned r = 0; r < 8; r++)
        if (((full >> (2 * r)) & 3) != 3) t |= uint8_t(1u << r);
    return t;
}

// ES (and B, its alias) follow the unmasked exception flags (SDM Vol. 1 §8.1.3.1), after a load
// of the status or control word.
inline uint16_t fsw_with_es(uint16_t fsw, uint16_t fcw) {
    fsw &= uint16_t(~(kFswES | kFswB));
    if (fsw & ~fcw & 0x3f) fsw |= kFswES | kFswB;
    return fsw;
}

} // namespace hvm::emu
