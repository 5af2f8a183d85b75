// x86 instruction decoder: legacy prefixes, REX, the one-byte map, 0F, 0F 38 and 0F 3A, ModRM,
// SIB, displacements (RIP-relative in 64-bit mode) and immediates (SDM Vol. 2 ch. 2 and appendix
// A).
#include <array>

#include "vcpu/emu/insn.hpp"

namespace hvm::emu {
namespace {

enum : uint16_t {
    kM = 1 << 0,     // has a ModRM byte
    kIb = 1 << 1,    // imm8
    kIw = 1 << 2,    // imm16
    kIz = 1 << 3,    // imm16 or imm32 by operand size (sign-extended to 64)
    kIv = 1 << 4,    // imm16, imm32 or imm64 by operand size (MOV r, imm)
    kIp = 1 << 5,    // far pointer: offset16/32 then selector16
    kMoffs = 1 << 6, // address-size offset (MOV AL/eAX <-> moffs)
    kD64 = 1 << 7,   // 64-bit mode: operand size defaults to 64 (66 gives 16)
    kF64 = 1 << 8,   // 64-bit mode: operand size is 64 whatever the prefixes (Intel)
    kI64 = 1 << 9,   // invalid in 64-bit mode
    kBad = 1 << 10,  // not an instruction: #UD
};

struct Tables {
    std::array<uint16_t, 256> one{}, two{}, three38{}, three3a{};
};

constexpr Tables make_tables() {
    Tables t;
    auto& o = t.one;
    // ALU blocks 00-3F: op Eb,Gb / Ev,Gv / Gb,Eb / Gv,Ev / AL,Ib / eAX,Iz
    for (int b = 0; b < 0x40; b += 8) {
        o[b + 0] = o[b + 1] = o[b + 2] = o[b + 3] = kM;
        o[b + 4] = kIb;
        o[b + 5] = kIz;
    }
    for (int b : {0x06, 0x07, 0x0e, 0x16, 0x17, 0x1e, 0x1f, 0x27, 0x2f, 0x37, 0x3f}) o[b] = kI64;
    o[0x0f] = kBad; // escape, handled by the decoder
    for (int b = 0x50; b < 0x60; b++) o[b] = kD64;
    o[0x60] = o[0x61] = kI64;
    o[0x62] = kM | kI64;
    o[0x63] = kM;
    o[0x68] = kIz | kD64;
    o[0x69] = kM | kIz;
    o[0x6a] = kIb | kD64;
    o[0x6b] = kM | kIb;
    for (int b = 0x70; b < 0x80; b++) o[b] = kIb | kF64;
    o[0x80] = o[0x83] = kM | kIb;
    o[0x81] = kM | kIz;
    o[0x82] = kM | kIb | kI64;
    for (int b = 0x84; b <= 0x8e; b++) o[b] = kM;
    o[0x8f] = kM | kD64;
    o[0x9a] = kIp | kI64;
    o[0x9c] = o[0x9d] = kD64;
    for (int b = 0xa0; b <= 0xa3; b++) o[b] = kMoffs;
    o[0xa8] = kIb;
    o[0xa9] = kIz;
    for (int b = 0xb0; b < 0xb8; b++) o[b] = kIb;
    for (int b = 0xb8; b < 0xc0; b++) o[b] = kIv;
    o[0xc0] = o[0xc1] = kM | kIb;
    o[0xc2] = kIw | kF64;
    o[0xc3] = kF64;
    o[0xc4] = o[0xc5] = kM | kI64; // LES/LDS (VEX in 64-bit mode: not implemented, #UD)
    o[0xc6] = kM | kIb;
    o[0xc7] = kM | kIz;
    o[0xc8] = kIw | kIb | kD64;
    o[0xc9] = kD64;
    o[0xca] = kIw;
    o[0xcd] = kIb;
    o[0xce] = kI64;
    for (int b = 0xd0; b <= 0xd3; b++) o[b] = kM;
    o[0xd4] = o[0xd5] = kIb | kI64;
    o[0xd6] = kI64; // SALC
    for (int b = 0xd8; b <= 0xdf; b++) o[b] = kM;
    for (int b = 0xe0; b <= 0xe3; b++) o[b] = kIb | kF64;
    for (int b = 0xe4; b <= 0xe7; b++) o[b] = kIb;
    o[0xe8] = o[0xe9] = kIz | kF64;
    o[0xea] = kIp | kI64;
    o[0xeb] = kIb | kF64;
    o[0xf6] = o[0xf7] = kM; // TEST's immediate depends on ModRM.reg
    o[0xfe] = o[0xff] = kM;

    auto& w = t.two;
    for (int b = 0; b < 256; b++) w[b] = kM; // most of the SSE space is ModRM-only
    for (int b : {0x04, 0x0a, 0x0c, 0x0f, 0x24, 0x25, 0x26, 0x27, 0x36, 0x39, 0x3b, 0x3c, 0x3d,
                  0x3e, 0x3f, 0x7a, 0x7b, 0xa6, 0xa7})
        w[b] = kBad;
    for (int b : {0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35,
                  0x37, 0x77, 0xa2, 0xaa})
        w[b] = 0;
    for (int b = 0x80; b < 0x90; b++) w[b] = kIz | kF64;
    w[0xa0] = w[0xa1] = w[0xa8] = w[0xa9] = kD64;
    for (int b = 0xc8; b < 0xd0; b++) w[b] = 0;
    for (int b : {0x70, 0x71, 0x72, 0x73, 0xa4, 0xac, 0xba, 0xc2, 0xc4, 0xc5, 0xc6})
        w[b] = kM | kIb;
    w[0xb9] = w[0xff] = kM | kBad; // UD1, UD0 take a ModRM
    w[0x38] = w[0x3a] = kBad;      // escapes, handled by the decoder

    for (int b = 0; b < 256; b++) {
        t.three38[b] = kM;
        t.three3a[b] = kM | kIb;
    }
    return t;
}

constexpr Tables kTables = make_tables();

} // namespace

DecodeStatus decode(const uint8_t* bytes, size_t avail, DecodeMode mode, Insn& in) {
    in = Insn{};
    size_t pos = 0;
    auto need = [&](size_t n) { return pos + n <= avail && pos + n <= kMaxInsnLen; };
    auto too_long_or_more = [&](size_t n) {
        return pos + n > kMaxInsnLen ? DecodeStatus::TooLong : DecodeStatus::NeedMore;
    };
    const bool m64 = mode.long64;
    bool addr_prefix = false;
    int seg = -1;

    // Legacy prefixes (any order), then REX immediately before the opcode in 64-bit mode. A REX
    // followed by another legacy prefix is ignored (SDM Vol. 2 §2.2.1).
    uint8_t b;
    for (;;) {
        if (!need(1)) return too_long_or_more(1);
        b = bytes[pos];
        switch (b) {
        case 0x26: seg = 0; break;
        case 0x2e: seg = 1; break;
        case 0x36: seg = 2; break;
        case 0x3e: seg = 3; break;
        case 0x64: seg = 4; break;
        case 0x65: seg = 5; break;
        case 0x66: in.opsize_prefix = true; break;
        case 0x67: addr_prefix = true; break;
        case 0xf0: in.lock = true; break;
        case 0xf2:
        case 0xf3: in.rep = b; break;
        default:
            if (m64 && (b & 0xf0) == 0x40) {
                in.rex = b;
                pos++;
                if (!need(1)) return too_long_or_more(1);
                uint8_t nb = bytes[pos];
                if (nb == 0x26 || nb == 0x2e || nb == 0x36 || nb == 0x3e || nb == 0x64 ||
                    nb == 0x65 || nb == 0x66 || nb == 0x67 || nb == 0xf0 || nb == 0xf2 ||
                    nb == 0xf3 || (nb & 0xf0) == 0x40) {
                    in.rex = 0; // a prefix after REX cancels it
                    continue;
                }
                b = nb;
            }
            goto opcode;
        }
        pos++;
    }
opcode:
    // In 64-bit mode only FS/GS overrides change the base; ES/CS/SS/DS are ignored.
    if (seg >= 0 && (!m64 || seg >= 4)) {
        in.seg = uint8_t(seg);
        in.seg_override = true;
    }
    const bool rex_w = in.rex & 8;
    if (m64)
        in.asize = addr_prefix ? 4 : 8;
    else
        in.asize = (mode.def32 != addr_prefix) ? 4 : 2;
    uint8_t def_osize = m64 ? 4 : (mode.def32 ? 4 : 2);
    in.osize = in.opsize_prefix ? (def_osize == 2 ? 4 : 2) : def_osize;
    if (rex_w) in.osize = 8;

    uint16_t flags;
    pos++; // opcode byte b consumed
    if (b != 0x0f) {
        in.op = kMap1 | b;
        flags = kTables.one[b];
    } else {
        if (!need(1)) return too_long_or_more(1);
        uint8_t b2 = bytes[pos++];
        if (b2 == 0x38 || b2 == 0x3a) {
            if (!need(1)) return too_long_or_more(1);
            uint8_t b3 = bytes[pos++];
            in.op = (b2 == 0x38 ? kMap0F38 : kMap0F3A) | b3;
            flags = b2 == 0x38 ? kTables.three38[b3] : kTables.three3a[b3];
        } else {
            in.op = kMap0F | b2;
            flags = kTables.two[b2];
        }
    }
    if (m64 && (flags & kI64)) return DecodeStatus::Invalid;
    if (m64) {
        if (flags & kF64)
            in.osize = 8;
        else if ((flags & kD64) && !in.opsize_prefix)
            in.osize = 8;
    }

    if (flags & kM) {
        if (!need(1)) return too_long_or_more(1);
        uint8_t m = bytes[pos++];
        in.has_modrm = true;
        in.modrm = m;
        in.mod = m >> 6;
        in.reg = uint8_t(((m >> 3) & 7) | ((in.rex & 4) << 1));
        uint8_t rm = m & 7;
        in.rm = uint8_t(rm | ((in.rex & 1) << 3));
        // FF /2 /4 (near CALL/JMP) are forced 64-bit; FF /6 (PUSH) defaults to 64-bit.
        if (m64 && in.op == 0xff) {
            unsigned r = (m >> 3) & 7;
            if (r == 2 || r == 4)
                in.osize = 8;
            else if (r == 6 && !in.opsize_prefix)
                in.osize = 8;
        }
        // MOV to/from CRn/DRn: always register operands of the mode's width.
        if (in.op >= (kMap0F | 0x20) && in.op <= (kMap0F | 0x23)) in.mod = 3;
        if (in.mod != 3) {
            if (in.asize == 2) {
                static constexpr uint8_t base16[8] = {3, 3, 5, 5,
                                                      6, 7, 5, 3}; // BX BX BP BP SI DI BP BX
                static constexpr uint8_t index16[8] = {6, 7, 6, 7, kNoReg, kNoReg, kNoReg, kNoReg};
                in.base = base16[rm];
                in.index = index16[rm];
                if (in.mod == 0 && rm == 6) {
                    in.base = kNoReg;
                    if (!need(2)) return too_long_or_more(2);
                    in.disp = int16_t(bytes[pos] | bytes[pos + 1] << 8);
                    pos += 2;
                } else if (in.mod == 1) {
                    if (!need(1)) return too_long_or_more(1);
                    in.disp = int8_t(bytes[pos++]);
                } else if (in.mod == 2) {
                    if (!need(2)) return too_long_or_more(2);
                    in.disp = int16_t(bytes[pos] | bytes[pos + 1] << 8);
                    pos += 2;
                }
                if (!in.seg_override && in.base == 5) in.seg = 2; // BP-based: SS
            } else {
                bool no_base = false;
                if (rm == 4) {
                    if (!need(1)) return too_long_or_more(1);
                    uint8_t sib = bytes[pos++];
                    in.scale = sib >> 6;
                    uint8_t idx = uint8_t(((sib >> 3) & 7) | ((in.rex & 2) << 2));
                    in.index = idx == 4 ? kNoReg : idx; // index 100b without REX.X: none
                    uint8_t bs = sib & 7;
                    if (bs == 5 && in.mod == 0) {
                        no_base = true;
                    } else {
                        in.base = uint8_t(bs | ((in.rex & 1) << 3));
                    }
                } else if (rm == 5 && in.mod == 0) {
                    no_base = true;
                    in.rip_rel = m64;
                } else {
                    in.base = in.rm;
                }
                if (no_base || in.mod == 2) {
                    if (!need(4)) return too_long_or_more(4);
                    in.disp =
                        int32_t(uint32_t(bytes[pos]) | uint32_t(bytes[pos + 1]) << 8 |
                                uint32_t(bytes[pos + 2]) << 16 | uint32_t(bytes[pos + 3]) << 24);
                    pos += 4;
                } else if (in.mod == 1) {
                    if (!need(1)) return too_long_or_more(1);
                    in.disp = int8_t(bytes[pos++]);
                }
                if (!in.seg_override && (in.base == 4 || in.base == 5)) in.seg = 2;
            }
        }
    }

    auto imm = [&](unsigned n, uint64_t& v) -> bool {
        if (!need(n)) return false;
        v = 0;
        for (unsigned i = 0; i < n; i++) v |= uint64_t(bytes[pos + i]) << (8 * i);
        pos += n;
        return true;
    };
    uint16_t iflags = flags;
    if ((in.op == 0xf6 || in.op == 0xf7) && ((in.modrm >> 3) & 7) < 2)
        iflags |= in.op == 0xf6 ? kIb : kIz;
    uint64_t v = 0;
    if (iflags & kIw) {
        if (!imm(2, v)) return too_long_or_more(2);
        in.imm = v;
        if (iflags & kIb) { // ENTER imm16, imm8
            if (!imm(1, v)) return too_long_or_more(1);
            in.imm2 = uint16_t(v);
        }
    } else if (iflags & kIb) {
        if (!imm(1, v)) return too_long_or_more(1);
        in.imm = uint64_t(int64_t(int8_t(v)));
    } else if (iflags & kIz) {
        unsigned n = in.osize == 2 ? 2 : 4;
        if (!imm(n, v)) return too_long_or_more(n);
        in.imm = n == 2 ? uint64_t(int64_t(int16_t(v))) : uint64_t(int64_t(int32_t(v)));
    } else if (iflags & kIv) {
        if (!imm(in.osize, v)) return too_long_or_more(in.osize);
        in.imm = v;
    } else if (iflags & kIp) {
        unsigned n = in.osize == 2 ? 2 : 4;
        if (!imm(n, v)) return too_long_or_more(n);
        in.imm = v;
        if (!imm(2, v)) return too_long_or_more(2);
        in.imm2 = uint16_t(v);
    } else if (iflags & kMoffs) {
        if (!imm(in.asize, v)) return too_long_or_more(in.asize);
        in.imm = v;
    }
    in.len = uint8_t(pos);
    if (flags & kBad) return DecodeStatus::Invalid;
    return DecodeStatus::Ok;
}

} // namespace hvm::emu
