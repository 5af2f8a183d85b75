// Decoder: instruction lengths, prefixes, ModRM/SIB/displacement and immediates across modes.
#include <doctest/doctest.h>

#include <vector>

#include "vcpu/emu/insn.hpp"

using namespace hvm::emu;

namespace {
constexpr DecodeMode k16{false, false}, k32{false, true}, k64{true, false};

Insn dec(std::vector<uint8_t> b, DecodeMode m, DecodeStatus expect = DecodeStatus::Ok) {
    Insn in;
    b.resize(b.size() + 16, 0x90);
    DecodeStatus st = decode(b.data(), b.size(), m, in);
    CHECK(st == expect);
    return in;
}
} // namespace

TEST_CASE("lengths of common instructions in each mode") {
    struct Case {
        std::vector<uint8_t> bytes;
        DecodeMode mode;
        unsigned len;
    };
    Case cases[] = {
        {{0x90}, k64, 1},
        {{0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8}, k64, 10},      // mov rax, imm64
        {{0xb8, 1, 2, 3, 4}, k64, 5},                         // mov eax, imm32
        {{0x66, 0xb8, 1, 2}, k64, 4},                         // mov ax, imm16
        {{0xb8, 1, 2}, k16, 3},                               // mov ax, imm16
        {{0x66, 0xb8, 1, 2, 3, 4}, k16, 6},                   // mov eax, imm32 in 16-bit code
        {{0x8b, 0x04, 0x25, 0, 0, 0, 0}, k64, 7},             // mov eax, [disp32] (SIB, no base)
        {{0x8b, 0x05, 0, 0, 0, 0}, k64, 6},                   // mov eax, [rip+disp32]
        {{0x8b, 0x44, 0x24, 0x08}, k64, 4},                   // mov eax, [rsp+8]
        {{0x8b, 0x84, 0x24, 0, 1, 0, 0}, k32, 7},             // mov eax, [esp+256]
        {{0x8b, 0x46, 0x02}, k16, 3},                         // mov ax, [bp+2]
        {{0x8b, 0x06, 0x34, 0x12}, k16, 4},                   // mov ax, [0x1234]
        {{0x67, 0x8b, 0x06, 0x34, 0x12}, k32, 5},             // 16-bit addressing in 32-bit code
        {{0x67, 0x8b, 0x05, 1, 2, 3, 4}, k16, 7},             // 32-bit addressing in 16-bit code
        {{0xc7, 0x80, 0, 1, 0, 0, 1, 2, 3, 4}, k32, 10},      // mov dword [eax+256], imm32
        {{0x66, 0xc7, 0x00, 1, 2}, k32, 5},                   // mov word [eax], imm16
        {{0xf6, 0xc3, 0x01}, k64, 3},                         // test bl, imm8
        {{0xf7, 0xc3, 1, 2, 3, 4}, k64, 6},                   // test ebx, imm32
        {{0xf7, 0xd3}, k64, 2},                               // not ebx (no immediate)
        {{0xc8, 0x10, 0x00, 0x01}, k64, 4},                   // enter 16, 1
        {{0xea, 1, 2, 3, 4, 5, 6}, k32, 7},                   // jmp far ptr16:32
        {{0xea, 1, 2, 3, 4}, k16, 5},                         // jmp far ptr16:16
        {{0xa1, 1, 2, 3, 4, 5, 6, 7, 8}, k64, 9},             // mov eax, [moffs64]
        {{0x67, 0xa1, 1, 2, 3, 4}, k64, 6},                   // mov eax, [moffs32]
        {{0xa1, 1, 2}, k16, 3},                               // mov ax, [moffs16]
        {{0xe8, 1, 2, 3, 4}, k64, 5},                         // call rel32
        {{0x66, 0xe8, 1, 2, 3, 4}, k64, 6},                   // 66 ignored for near branches
        {{0xe8, 1, 2}, k16, 3},                               // call rel16
        {{0x0f, 0x84, 1, 2, 3, 4}, k32, 6},                   // jz rel32
        {{0x0f, 0xba, 0xe0, 0x05}, k64, 4},                   // bt eax, 5
        {{0x0f, 0xa4, 0xc3, 0x05}, k64, 4},                   // shld ebx, eax, 5
        {{0xf3, 0x48, 0xab}, k64, 3},                         // rep stosq
        {{0xf0, 0x48, 0x0f, 0xb1, 0x0e}, k64, 5},             // lock cmpxchg [rsi], rcx
        {{0x0f, 0x38, 0x00, 0xc1}, k64, 4},                   // pshufb mm0, mm1 (0F 38)
        {{0x66, 0x0f, 0x3a, 0x0f, 0xc1, 0x08}, k64, 6},       // palignr xmm0, xmm1, 8 (0F 3A)
        {{0x0f, 0x70, 0xc1, 0x1b}, k64, 4},                   // pshufw (imm8)
        {{0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x90}, k32, 7}, // many prefixes
    };
    for (auto& c : cases) {
        CAPTURE(c.bytes[0]);
        CAPTURE(c.len);
        Insn in = dec(c.bytes, c.mode);
        CHECK(in.len == c.len);
    }
}

TEST_CASE("REX, operand size and register fields") {
    Insn in = dec({0x4d, 0x8b, 0x4c, 0x8d, 0x10}, k64); // mov r9, [r13+rcx*4+0x10]
    CHECK(in.osize == 8);
    CHECK(in.reg == 9);
    CHECK(in.base == 13);
    CHECK(in.index == 1);
    CHECK(in.scale == 2);
    CHECK(in.disp == 0x10);
    CHECK(in.seg == 3); // DS: R13 is not RBP for the default segment... base 13 -> DS
    in = dec({0x42, 0x8b, 0x04, 0x24}, k64); // REX.X with index 100b: r12 is an index
    CHECK(in.index == 12);
    in = dec({0x8b, 0x04, 0x24}, k64); // [rsp]: no index, SS
    CHECK(in.index == kNoReg);
    CHECK(in.base == 4);
    CHECK(in.seg == 2);
    in = dec({0x48, 0x66, 0x8b, 0xc0}, k64); // REX before 66 is cancelled
    CHECK(in.rex == 0);
    CHECK(in.osize == 2);
    in = dec({0x66, 0x48, 0x8b, 0xc0}, k64); // REX.W beats 66
    CHECK(in.osize == 8);
    in = dec({0x50}, k64); // push defaults to 64
    CHECK(in.osize == 8);
    in = dec({0x66, 0x50}, k64);
    CHECK(in.osize == 2);
    in = dec({0xff, 0xd0}, k64); // call rax
    CHECK(in.osize == 8);
    in = dec({0x2e, 0x8b, 0x00}, k64); // CS override ignored in 64-bit mode
    CHECK(!in.seg_override);
    in = dec({0x64, 0x8b, 0x00}, k64);
    CHECK(in.seg == 4);
    in = dec({0x8b, 0x45, 0x00}, k32); // [ebp+0]: SS
    CHECK(in.seg == 2);
    in = dec({0x8b, 0x05, 1, 0, 0, 0}, k64);
    CHECK(in.rip_rel);
    in = dec({0x8b, 0x05, 1, 0, 0, 0}, k32); // absolute in 32-bit mode
    CHECK(!in.rip_rel);
    CHECK(in.base == kNoReg);
    in = dec({0x83, 0xc0, 0xff}, k64); // imm8 sign-extended
    CHECK(in.imm == ~0ull);
    in = dec({0x48, 0x81, 0xc0, 0, 0, 0, 0x80}, k64); // imm32 sign-extended to 64
    CHECK(in.imm == 0xffffffff80000000ull);
}

TEST_CASE("invalid, truncated and too-long instructions") {
    dec({0x06}, k64, DecodeStatus::Invalid);  // push es
    dec({0x27}, k64, DecodeStatus::Invalid);  // daa
    dec({0x0f, 0x0b}, k64, DecodeStatus::Ok); // ud2 decodes (#UD on execution)
    dec({0x0f, 0x04}, k32, DecodeStatus::Invalid);
    dec({0x06}, k32, DecodeStatus::Ok);
    Insn in;
    uint8_t trunc[] = {0x48, 0xb8, 1, 2};
    CHECK(decode(trunc, sizeof trunc, k64, in) == DecodeStatus::NeedMore);
    uint8_t many[16];
    for (auto& b : many) b = 0x66;
    CHECK(decode(many, sizeof many, k64, in) == DecodeStatus::TooLong);
    // 14 prefixes + 1-byte opcode = 15 bytes: allowed
    uint8_t ok[15];
    for (int i = 0; i < 14; i++) ok[i] = 0x66;
    ok[14] = 0x90;
    CHECK(decode(ok, sizeof ok, k64, in) == DecodeStatus::Ok);
    CHECK(in.len == 15);
}
