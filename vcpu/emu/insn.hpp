// A decoded x86 instruction. The decoder is a pure function of the instruction bytes and the
// code-segment mode, so decoded instructions can be cached per guest-physical page later.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hvm::emu {

inline constexpr uint8_t kNoReg = 0xff;
inline constexpr unsigned kMaxInsnLen = 15; // SDM Vol. 2 §2.3.11: longer raises #GP(0)

// Opcode maps, packed into Insn::op as map << 8 | byte.
enum OpMap : uint16_t { kMap1 = 0x000, kMap0F = 0x100, kMap0F38 = 0x200, kMap0F3A = 0x300 };

struct Insn {
    uint16_t op = 0;   // map << 8 | opcode byte
    uint8_t len = 0;   // total length in bytes, prefixes included
    uint8_t osize = 4; // operand size in bytes: 2, 4 or 8 (byte forms are chosen by opcode)
    uint8_t asize = 4; // address size in bytes: 2, 4 or 8
    uint8_t seg = 3;   // segment of the memory operand (SegReg), after overrides
    uint8_t rep = 0;   // 0, 0xf2 or 0xf3 (the last of them wins, as on hardware)
    uint8_t rex = 0;   // 0x40 | WRXB when a REX prefix directly precedes the opcode, else 0
    bool lock = false;
    bool opsize_prefix = false; // 66 seen (also an SSE mandatory prefix)
    bool seg_override = false;
    bool has_modrm = false;
    uint8_t modrm = 0;
    uint8_t mod = 0, reg = 0, rm = 0;                 // reg and rm include REX.R / REX.B
    uint8_t base = kNoReg, index = kNoReg, scale = 0; // memory operand; scale is a shift count
    bool rip_rel = false;
    int32_t disp = 0;  // x86 displacements are at most 32 bits (moffs go in imm)
    uint64_t imm = 0;  // first immediate (sign-extended where the encoding says so)
    uint16_t imm2 = 0; // ENTER's nesting level; a far pointer's selector

    bool mem() const { return has_modrm && mod != 3; }
};
// Kept small: a decoded instruction plus its cache tag and bytes fill one 64-byte cache line.
static_assert(sizeof(Insn) <= 40);

enum class DecodeStatus {
    Ok,
    NeedMore, // ran past the available bytes (the fetch stopped at a fault or the CS limit)
    TooLong,  // more than 15 bytes: #GP(0)
    Invalid,  // no such instruction in this mode: #UD
};

struct DecodeMode {
    bool long64 = false; // 64-bit mode (EFER.LMA && CS.L)
    bool def32 = false;  // CS.D in legacy/compatibility mode
};

// Decodes one instruction from `bytes` (`avail` of them readable).
DecodeStatus decode(const uint8_t* bytes, size_t avail, DecodeMode mode, Insn& out);

} // namespace hvm::emu
