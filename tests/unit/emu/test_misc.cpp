// ENTER/LEAVE, POPF/CLI privilege rules, NMI masking, #DF delivery, descriptor-table stores,
// LTR, SMSW/LMSW/CLTS, XLAT, ARPL.
#include <doctest/doctest.h>

#include "tests/unit/emu/emu_harness.hpp"

using namespace emu_test;

TEST_CASE("ENTER with nesting levels and LEAVE") {
    Machine m;
    Asm a(kCode);
    a.b({0x48, 0xbd}).d64(0x2ffff0); // mov rbp, 0x2ffff0 (outer frame pointer)
    a.b({0x48, 0xc7, 0x04, 0x25}).d32(0x2fffe8).d32(0x1111); // [rbp-8] = outer display entry
    a.b({0xc8, 0x20, 0x00, 0x02});                           // enter 0x20, 2
    a.b({0x48, 0x89, 0xe3, 0x48, 0x89, 0xee});               // mov rbx, rsp; mov rsi, rbp
    a.b({0xc9});                                             // leave
    a.b({0xf4});
    m.load(kCode, a.finish());
    CpuState s = m.long_mode_state();
    m.vcpu->set_state(s);
    m.run_until_halt(20);
    auto& c = m.cpu().s;
    uint64_t frame = kStack - 8;
    CHECK(m.peek<uint64_t>(frame) == 0x2ffff0);   // old RBP
    CHECK(m.peek<uint64_t>(frame - 8) == 0x1111); // copied display entry [rbp-8]
    CHECK(m.peek<uint64_t>(frame - 16) == frame); // the new frame pointer
    CHECK(c.gpr[RSI] == frame);                   // RBP after ENTER
    CHECK(c.gpr[RBX] == frame - 16 - 0x20);       // RSP after ENTER
    CHECK(c.gpr[RSP] == kStack);                  // LEAVE undid it
    CHECK(c.gpr[RBP] == 0x2ffff0);
}

TEST_CASE("POPF and CLI at CPL 3 with IOPL 0") {
    Machine m;
    Asm a(kCode);
    a.b({0x68}).d32(0x3002); // push 0x3002 (IOPL 3, IF 0)
    a.b({0x9d});             // popf: IOPL and IF silently kept
    a.b({0x9c, 0x5b});       // pushf; pop rbx
    a.b({0xfa});             // cli -> #GP
    a.label("gp");
    a.b({0xf4});
    m.load(kCode, a.finish());
    m.set_gate64(13, a.addr("gp"));
    CpuState s = m.long_mode_state();
    s.seg[CS] = m.gdt_seg(kSelUCode64);
    s.seg[SS] = m.gdt_seg(kSelUData);
    s.gpr[RSP] = 0x280000;
    s.rflags = 0x202;
    m.vcpu->set_state(s);
    m.run_until_halt(20);
    CHECK((m.cpu().s.gpr[RBX] & 0x3200) == 0x200);
    CHECK(m.cpu().s.seg[CS].selector == kSelCode64); // in the #GP handler
    uint64_t frame = kStack - 0x10000 - 48;          // error code, RIP, CS, RFLAGS, RSP, SS
    CHECK(m.peek<uint64_t>(frame + 8) == a.addr("gp") - 1);
}

TEST_CASE("NMI is delivered with IF = 0 and blocked until IRET") {
    FakeInterrupts irq;
    Machine m(&irq);
    Asm a(kCode);
    a.b({0xf4}); // hlt (IF = 0, but NMI wakes)
    a.b({0xf4}); // second NMI arrives after IRET
    a.b({0xf4});
    a.label("nmi");
    a.b({0xff, 0x04, 0x25}).d32(0x6000); // inc dword [0x6000]
    a.b({0x8b, 0x04, 0x25}).d32(0x6000); // mov eax, [0x6000]
    a.b({0x48, 0xcf});                   // iretq
    m.load(kCode, a.finish());
    m.set_gate64(2, a.addr("nmi"));
    CpuState s = m.long_mode_state();
    s.rflags = 2;
    m.vcpu->set_state(s);
    irq.pending = CpuInterrupts::kNmi;
    // HLT with IF=0: returns Halted only when nothing can wake it; the NMI does.
    CHECK(m.vcpu->run() == VcpuExit::Halted);
    CHECK(m.peek<uint32_t>(0x6000) == 1);
    irq.pending = CpuInterrupts::kNmi;
    m.cpu().s.halted = false;
    CHECK(m.vcpu->run() == VcpuExit::Halted);
    CHECK(m.peek<uint32_t>(0x6000) == 2);
    CHECK(!m.cpu().s.nmi_masked);
}

TEST_CASE("a fault while delivering #PF becomes #DF") {
    Machine m;
    m.poke<uint64_t>(kPt + 5 * 8, 0);
    Asm a(kCode);
    a.b({0x8b, 0x04, 0x25}).d32(0x5000); // mov eax, [0x5000] -> #PF
    a.b({0xf4});
    a.label("df");
    a.b({0x58, 0x89, 0x04, 0x25}).d32(0x6000).b({0xf4}); // pop rax (error 0); store; hlt
    m.load(kCode, a.finish());
    m.set_gate64(14, kCode);
    m.poke<uint8_t>(kIdt + 14 * 16 + 5, 0x0e); // #PF gate not present -> #NP during delivery
    m.set_gate64(8, a.addr("df"));
    m.poke<uint32_t>(0x6000, 0xffff);
    m.vcpu->set_state(m.long_mode_state());
    m.run_until_halt(20);
    CHECK(m.peek<uint32_t>(0x6000) == 0);
    CHECK(m.cpu().s.rip == a.addr("df") + 9); // after the handler's hlt
    CHECK(m.cpu().s.cr2 == 0x5000);
}

TEST_CASE("SGDT, SIDT, STR, SLDT, LTR, SMSW, LMSW, CLTS, XLAT") {
    Machine m;
    // a second, available 64-bit TSS descriptor at GDT slot 14
    m.poke<uint64_t>(kGdt + 14 * 8, seg_desc(0x2800, 0x67, 9, 0, false, false, false, false));
    m.poke<uint64_t>(kGdt + 15 * 8, 0xffff8880); // base bits 63:32 (Linux puts TSSs up there)
    m.ram[0x4000 + 0x11] = 0x5a;
    Asm a(kCode);
    a.b({0x0f, 0x01, 0x04, 0x25}).d32(0x6000);           // sgdt [0x6000]
    a.b({0x0f, 0x01, 0x0c, 0x25}).d32(0x6010);           // sidt [0x6010]
    a.b({0x66, 0xb8, 0x70, 0x00, 0x0f, 0x00, 0xd8});     // mov ax, 0x70; ltr ax
    a.b({0x0f, 0x00, 0xcf});                             // str edi
    a.b({0x0f, 0x00, 0xc1});                             // sldt ecx
    a.b({0x0f, 0x06});                                   // clts
    a.b({0x0f, 0x01, 0xe2});                             // smsw edx
    a.b({0x66, 0xb8, 0x0f, 0x00, 0x0f, 0x01, 0xf0});     // mov ax, 0xf; lmsw ax (sets TS, EM)
    a.b({0x48, 0xbb}).d64(0x4000).b({0xb0, 0x11, 0xd7}); // mov rbx... xlat -> al = [rbx+0x11]
    a.b({0xf4});
    m.load(kCode, a.finish());
    CpuState s = m.long_mode_state();
    s.cr0 |= 8; // TS
    m.vcpu->set_state(s);
    m.run_until_halt(20);
    auto& c = m.cpu().s;
    CHECK(m.peek<uint16_t>(0x6000) == 0x7f);
    CHECK(m.peek<uint64_t>(0x6002) == kGdt);
    CHECK(m.peek<uint16_t>(0x6010) == 0xfff);
    CHECK(m.peek<uint64_t>(0x6012) == kIdt);
    CHECK(c.seg[TR].selector == 0x70);
    CHECK(c.seg[TR].base == 0xffff888000002800ull);
    CHECK(c.seg[TR].type == 11); // marked busy
    CHECK(((m.peek<uint64_t>(kGdt + 14 * 8) >> 40) & 0xf) == 11);
    CHECK((c.gpr[RDI] & 0xffff) == 0x70);
    CHECK((c.gpr[RCX] & 0xffff) == 0);
    CHECK((c.gpr[RDX] & 8) == 0); // CLTS cleared TS before SMSW
    CHECK((c.cr0 & 0xf) == 0xf);  // LMSW set MP EM TS (PE stays)
    CHECK((c.gpr[RAX] & 0xff) == 0x5a);
}
