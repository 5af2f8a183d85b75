// String instructions (direction flag, REPE/REPNE termination, 16-bit address wrap) and
// self-modifying code / DMA into code through the decode cache.
#include <doctest/doctest.h>

#include "tests/unit/emu/emu_harness.hpp"

using namespace emu_test;

TEST_CASE("MOVS backwards, REPNE SCASB and REPE CMPSB stop where the SDM says") {
    Machine m;
    const char* text = "hello, world";
    memcpy(m.ram + kData, text, 12);
    memcpy(m.ram + kData + 0x100, "hello, wOrld", 12);
    Asm a(kCode);
    // backwards copy of 12 bytes from kData to kData+0x200
    a.b({0xfd}); // std
    a.b({0x48, 0xbe}).d64(kData + 11).b({0x48, 0xbf}).d64(kData + 0x200 + 11);
    a.b({0xb9}).d32(12).b({0xf3, 0xa4}); // rep movsb
    a.b({0xfc});                         // cld
    a.b({0x48, 0x89, 0xfd});             // mov rbp, rdi (after movs)
    // repne scasb for ','
    a.b({0x48, 0xbf}).d64(kData).b({0xb0, ','}).b({0xb9}).d32(12).b({0xf2, 0xae});
    a.b({0x49, 0x89, 0xc8, 0x49, 0x89, 0xf9}); // mov r8, rcx; mov r9, rdi
    // repe cmpsb: first difference at index 8
    a.b({0x48, 0xbe}).d64(kData).b({0x48, 0xbf}).d64(kData + 0x100);
    a.b({0xb9}).d32(12).b({0xf3, 0xa6});
    a.b({0x9c, 0x41, 0x5a}); // pushf; pop r10
    a.b({0xf4});
    m.load(kCode, a.finish());
    m.vcpu->set_state(m.long_mode_state());
    m.run_until_halt(100);
    auto& s = m.cpu().s;
    CHECK(memcmp(m.ram + kData + 0x200, text, 12) == 0);
    CHECK(s.gpr[RBP] == kData + 0x200 - 1);
    CHECK(s.gpr[R8] == 12 - 6); // ',' is the 6th byte: 6 iterations
    CHECK(s.gpr[R9] == kData + 6);
    CHECK(s.gpr[RSI] == kData + 9); // stopped after comparing index 8
    CHECK(s.gpr[RCX] == 12 - 9);
    CHECK((s.gpr[R10] & 0x40) == 0); // ZF clear: mismatch
}

TEST_CASE("real mode: REP STOSB wraps DI at 64 KiB inside ES") {
    Machine m;
    Asm a(0x7c00);
    a.b({0xb8, 0x00, 0x20, 0x8e, 0xc0});       // mov ax, 0x2000; mov es, ax (base 0x20000)
    a.b({0xbf, 0xfe, 0xff, 0xb9, 0x04, 0x00}); // mov di, 0xfffe; mov cx, 4
    a.b({0xb0, 0x77, 0xf3, 0xaa, 0xf4});       // mov al, 0x77; rep stosb; hlt
    m.load(0x7c00, a.finish());
    m.vcpu->set_state(m.real_mode_state());
    m.run_until_halt(100);
    CHECK(m.ram[0x2fffe] == 0x77);
    CHECK(m.ram[0x2ffff] == 0x77);
    CHECK(m.ram[0x20000] == 0x77);
    CHECK(m.ram[0x20001] == 0x77);
    CHECK(m.ram[0x30000] == 0);
    CHECK((m.cpu().s.gpr[RDI] & 0xffff) == 2);
}

TEST_CASE("self-modifying code executes the new bytes") {
    Machine m;
    Asm a(kCode);
    a.b({0x31, 0xdb}); // xor ebx, ebx
    a.label("loop");
    a.label("insn").b({0xb8}).d32(1);   // mov eax, imm32 (patched below)
    a.b({0x01, 0xc3});                  // add ebx, eax
    a.b({0xc7, 0x05}).d32(0).d32(0x10); // mov dword [rip+disp], 0x10 (disp below)
    a.label("after_patch");
    a.b({0x83, 0xfb, 0x10});  // cmp ebx, 16
    a.b({0x72}).rel8("loop"); // jb loop
    a.b({0xf4});
    auto code = a.finish();
    // The patch instruction's rel32 points at "imm_slot", which is insn + 1. Build it by hand
    // because the label is inside another instruction.
    m.load(kCode, code);
    uint64_t insn = a.addr("insn");
    // mov dword [rip+disp], imm32 is C7 05 disp32 imm32; its end is after_patch.
    int32_t disp = int32_t((insn + 1) - a.addr("after_patch"));
    uint64_t patch_at = a.addr("after_patch") - 10;
    memcpy(m.ram + patch_at + 2, &disp, 4);
    m.vcpu->set_state(m.long_mode_state());
    m.run_until_halt(100);
    // first pass adds 1 (cached decode), the patch makes later passes add 0x10
    CHECK(uint32_t(m.cpu().s.gpr[RBX]) == 1 + 0x10);
}

TEST_CASE("DMA into code is seen by the next execution") {
    Machine m;
    m.load(kCode, {0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4}); // mov eax, 1; hlt
    m.vcpu->set_state(m.long_mode_state());
    m.run_until_halt(10);
    CHECK(m.cpu().s.gpr[RAX] == 1);
    uint8_t two[4] = {2, 0, 0, 0};
    REQUIRE(m.mem.write(kCode + 1, two)); // a device writing guest memory (notifies the engine)
    CpuState s = m.long_mode_state();
    m.vcpu->set_state(s);
    m.run_until_halt(10);
    CHECK(m.cpu().s.gpr[RAX] == 2);
}
