// RFLAGS bits and the arithmetic-flag rules shared by the integer instructions (SDM Vol. 1 §3.4.3,
// Vol. 2 per instruction). Flags are computed eagerly: every ALU helper returns the result and
// updates the six status flags in `fl`.
#pragma once
#include <cstdint>

namespace hvm::emu {

inline constexpr uint64_t kCF = 1u << 0;
inline constexpr uint64_t kPF = 1u << 2;
inline constexpr uint64_t kAF = 1u << 4;
inline constexpr uint64_t kZF = 1u << 6;
inline constexpr uint64_t kSF = 1u << 7;
inline constexpr uint64_t kTF = 1u << 8;
inline constexpr uint64_t kIF = 1u << 9;
inline constexpr uint64_t kDF = 1u << 10;
inline constexpr uint64_t kOF = 1u << 11;
inline constexpr uint64_t kIOPL = 3u << 12;
inline constexpr uint64_t kNT = 1u << 14;
inline constexpr uint64_t kRF = 1u << 16;
inline constexpr uint64_t kVM = 1u << 17;
inline constexpr uint64_t kAC = 1u << 18;
inline constexpr uint64_t kVIF = 1u << 19;
inline constexpr uint64_t kVIP = 1u << 20;
inline constexpr uint64_t kID = 1u << 21;
inline constexpr uint64_t kStatusFlags = kCF | kPF | kAF | kZF | kSF | kOF;
inline constexpr uint64_t kFlagsFixed1 = 1u << 1;

inline constexpr uint64_t size_mask(unsigned bytes) {
    return bytes >= 8 ? ~0ull : (1ull << (bytes * 8)) - 1;
}
inline constexpr uint64_t sign_bit(unsigned bytes) {
    return 1ull << (bytes * 8 - 1);
}
inline constexpr int64_t sign_extend(uint64_t v, unsigned bytes) {
    unsigned sh = 64 - bytes * 8;
    return int64_t(v << sh) >> sh;
}

inline uint64_t parity_flag(uint64_t r) {
    return __builtin_parity(unsigned(r & 0xff)) ? 0 : kPF;
}

// SF, ZF and PF of a result of `bytes` width.
inline uint64_t szp_flags(uint64_t r, unsigned bytes) {
    r &= size_mask(bytes);
    return (r == 0 ? kZF : 0) | ((r & sign_bit(bytes)) ? kSF : 0) | parity_flag(r);
}

// MUL/IMUL: CF = OF = overflow; SF and PF from the low half; ZF and AF cleared (Intel).
inline uint64_t mul_flags(uint64_t lo, unsigned bytes, bool overflow) {
    return ((lo & sign_bit(bytes)) ? kSF : 0) | parity_flag(lo) | (overflow ? kCF | kOF : 0);
}

inline void set_status(uint64_t& fl, uint64_t status) {
    fl = (fl & ~kStatusFlags) | status;
}

// a + b + carry
inline uint64_t alu_add(uint64_t& fl, uint64_t a, uint64_t b, unsigned carry, unsigned bytes) {
    uint64_t m = size_mask(bytes);
    a &= m;
    b &= m;
    uint64_t r = (a + b + carry) & m;
    bool cf = bytes == 8 ? (r < a || (carry && r == a)) : ((a + b + carry) >> (bytes * 8)) != 0;
    uint64_t of = ((a ^ r) & (b ^ r) & sign_bit(bytes)) ? kOF : 0;
    set_status(fl, szp_flags(r, bytes) | (cf ? kCF : 0) | of | ((a ^ b ^ r) & kAF));
    return r;
}

// a - b - borrow
inline uint64_t alu_sub(uint64_t& fl, uint64_t a, uint64_t b, unsigned borrow, unsigned bytes) {
    uint64_t m = size_mask(bytes);
    a &= m;
    b &= m;
    uint64_t r = (a - b - borrow) & m;
    bool cf = a < b || (borrow && a == b);
    uint64_t of = ((a ^ b) & (a ^ r) & sign_bit(bytes)) ? kOF : 0;
    set_status(fl, szp_flags(r, bytes) | (cf ? kCF : 0) | of | ((a ^ b ^ r) & kAF));
    return r;
}

// AND/OR/XOR/TEST: CF = OF = 0; AF is undefined and Intel clears it.
inline uint64_t alu_logic(uint64_t& fl, uint64_t r, unsigned bytes) {
    r &= size_mask(bytes);
    set_status(fl, szp_flags(r, bytes));
    return r;
}

// The eight classic ALU operations by their ModRM.reg / opcode-row number.
enum AluOp : unsigned { kAdd, kOr, kAdc, kSbb, kAnd, kSub, kXor, kCmp };

inline uint64_t alu_op(unsigned op, uint64_t& fl, uint64_t a, uint64_t b, unsigned bytes) {
    switch (op & 7) {
    case kAdd: return alu_add(fl, a, b, 0, bytes);
    case kOr: return alu_logic(fl, a | b, bytes);
    case kAdc: return alu_add(fl, a, b, unsigned(fl & kCF), bytes);
    case kSbb: return alu_sub(fl, a, b, unsigned(fl & kCF), bytes);
    case kAnd: return alu_logic(fl, a & b, bytes);
    case kSub:
    case kCmp: return alu_sub(fl, a, b, 0, bytes);
    default: return alu_logic(fl, a ^ b, bytes);
    }
}

// Condition codes of Jcc/SETcc/CMOVcc (low nibble of the opcode).
inline bool condition(unsigned cc, uint64_t fl) {
    bool r;
    switch (cc >> 1) {
    case 0: r = fl & kOF; break;
    case 1: r = fl & kCF; break;
    case 2: r = fl & kZF; break;
    case 3: r = fl & (kCF | kZF); break;
    case 4: r = fl & kSF; break;
    case 5: r = fl & kPF; break;
    case 6: r = !(fl & kSF) != !(fl & kOF); break;
    default: r = (fl & kZF) || (!(fl & kSF) != !(fl & kOF)); break;
    }
    return (cc & 1) ? !r : r;
}

} // namespace hvm::emu
