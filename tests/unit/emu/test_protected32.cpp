// 32-bit protected mode: 32-bit paging (4 KiB + PSE 4 MiB pages), PAE with NX, far RET to an
// outer level, INT/IRETD through a 32-bit interrupt gate with a TSS stack switch, LDT segments,
// LAR/LSL/VERR/VERW.
#include <doctest/doctest.h>

#include "tests/unit/emu/emu_harness.hpp"

using namespace emu_test;

namespace {
constexpr uint64_t kPd32 = 0x20000, kPt32 = 0x21000;

void gate32(Machine& m, unsigned vector, uint32_t handler, unsigned dpl,
            uint16_t sel = kSelCode32) {
    uint64_t lo = (handler & 0xffff) | (uint64_t(sel) << 16) | (14ull << 40) |
                  (uint64_t(dpl) << 45) | (1ull << 47) | (uint64_t(handler >> 16) << 48);
    m.poke<uint64_t>(kIdt + vector * 8, lo);
}

CpuState pm32_state(Machine& m, bool user) {
    // 32-bit paging: first 4 MiB with 4 KiB pages, then 4 MiB PSE pages, all user-writable.
    m.poke<uint32_t>(kPd32, uint32_t(kPt32 | 7));
    for (uint32_t i = 0; i < 1024; i++) m.poke<uint32_t>(kPt32 + i * 4, (i << 12) | 7);
    for (uint32_t i = 1; i < 4; i++) m.poke<uint32_t>(kPd32 + i * 4, (i << 22) | 0x87);
    // 32-bit TSS: ESP0 = 0x90000, SS0 = 0x10
    m.poke<uint32_t>(kTss + 4, 0x90000);
    m.poke<uint32_t>(kTss + 8, kSelData);
    CpuState s = reset_cpu_state(0);
    s.cr0 = 0x80010011;
    s.cr3 = kPd32;
    s.cr4 = 0x10; // PSE
    s.gdt = {kGdt, 0x7f};
    s.idt = {kIdt, 0x7ff};
    s.seg[TR] = m.gdt_seg(kSelTss);
    s.seg[TR].type = 11;
    s.seg[LDTR] = Segment{};
    s.seg[LDTR].unusable = 1;
    uint16_t cs = user ? kSelUCode32 : kSelCode32, ds = user ? kSelUData : kSelData;
    s.seg[CS] = m.gdt_seg(cs);
    for (unsigned r : {ES, SS, DS, FS, GS}) s.seg[r] = m.gdt_seg(ds);
    s.rip = kCode;
    s.gpr[RSP] = user ? 0x280000 : 0x90000;
    s.rflags = 0x202;
    return s;
}
} // namespace

TEST_CASE("32-bit: RETF to CPL 3, INT through a 32-bit gate with TSS stack switch, IRETD") {
    Machine m;
    Asm a(kCode);
    // kernel: far return to user code at CPL 3 with a user stack
    a.b({0x6a, 0x3b, 0x68}).d32(0x280000).b({0x6a, 0x43, 0x68}).abs32("user").b({0xcb});
    a.label("user");
    a.b({0x8c, 0xd9});                         // mov ecx, ds (nulled by RETF)
    a.b({0x66, 0xb8, 0x3b, 0x00, 0x8e, 0xd8}); // mov ax, 0x3b; mov ds, ax
    a.b({0xcd, 0x80});                         // int 0x80
    a.b({0xc6, 0x05}).d32(0x7000).b({0x01});   // mov byte [0x7000], 1
    a.b({0xa1}).d32(0x400004);                 // mov eax, [0x400004] (PSE page)
    a.b({0xcd, 0x81});                         // int 0x81
    a.label("h80");
    a.b({0x89, 0x25}).d32(0x6000).b({0xcf}); // mov [0x6000], esp; iretd
    a.label("h81");
    a.b({0xf4});
    m.load(kCode, a.finish());
    m.poke<uint32_t>(0x400004, 0xfeedf00d);
    gate32(m, 0x80, uint32_t(a.addr("h80")), 3);
    gate32(m, 0x81, uint32_t(a.addr("h81")), 3);
    m.vcpu->set_state(pm32_state(m, false));
    m.run_until_halt(200);
    auto& s = m.cpu().s;
    CHECK(m.cpu().error == "");
    uint32_t frame = 0x90000 - 20;
    CHECK(m.peek<uint32_t>(0x6000) == frame);
    // the INT 0x81 frame (same ESP0) has replaced the INT 0x80 one
    CHECK(m.peek<uint32_t>(frame) == a.addr("user") + 24);
    CHECK(m.peek<uint32_t>(frame + 4) == kSelUCode32);
    CHECK(m.peek<uint32_t>(frame + 12) == 0x280000);
    CHECK(m.peek<uint32_t>(frame + 16) == kSelUData);
    CHECK(m.ram[0x7000] == 1);
    CHECK(uint32_t(s.gpr[RAX]) == 0xfeedf00d);
    // RETF to CPL 3 nulled DS (DPL 0 data is not usable at CPL 3): the selector read back is 0
    CHECK((s.gpr[RCX] & 0xffff) == 0);
    CHECK(s.seg[CS].selector == kSelCode32);
    CHECK(s.seg[SS].selector == kSelData);
}

TEST_CASE("PAE paging in legacy mode: NX fetch fault through a 32-bit gate") {
    Machine m;
    const uint64_t pdpt = 0x30000, pd = 0x31000, pt = 0x32000;
    m.poke<uint64_t>(pdpt, pd | 1);
    m.poke<uint64_t>(pd, pt | 7);
    for (uint64_t i = 1; i < 512; i++) m.poke<uint64_t>(pd + i * 8, (i << 21) | 0x87);
    for (uint64_t i = 0; i < 512; i++) m.poke<uint64_t>(pt + i * 8, (i << 12) | 7);
    m.poke<uint64_t>(pt + 5 * 8, 0x5000 | 7 | (1ull << 63));
    Asm a(kCode);
    a.b({0xb8}).d32(0x5000).b({0xff, 0xe0}); // mov eax, 0x5000; jmp eax
    a.label("pf");
    a.b({0x58, 0xa3}).d32(0x6000);             // pop eax; mov [0x6000], eax
    a.b({0x0f, 0x20, 0xd0, 0xa3}).d32(0x6004); // mov eax, cr2; mov [0x6004], eax
    a.b({0xf4});
    m.load(kCode, a.finish());
    gate32(m, 14, uint32_t(a.addr("pf")), 0);
    CpuState s = pm32_state(m, false);
    s.cr3 = pdpt;
    s.cr4 = 0x20;   // PAE
    s.efer = 0x800; // NXE
    m.vcpu->set_state(s);
    m.run_until_halt(100);
    CHECK(m.peek<uint32_t>(0x6000) == 0x11);
    CHECK(m.peek<uint32_t>(0x6004) == 0x5000);
}

TEST_CASE("LLDT and an LDT data segment; LAR, LSL, VERR, VERW") {
    Machine m;
    // LDT at 0x3000 with one data segment (base 0x8000, limit 0xff, DPL 3) in slot 1.
    m.poke<uint64_t>(0x3000 + 8, seg_desc(0x8000, 0xff, 3, 3, false, true, false));
    m.poke<uint64_t>(kGdt + 12 * 8, seg_desc(0x3000, 0x0f, 2, 0, false, false, false, false));
    m.poke<uint32_t>(0x8010, 0x600dcafe);
    Asm a(kCode);
    a.b({0x66, 0xb8, 0x60, 0x00, 0x0f, 0x00, 0xd0}); // mov ax, 0x60; lldt ax
    a.b({0x66, 0xb8, 0x0f, 0x00, 0x8e, 0xe0});       // mov ax, 0x0f (LDT, RPL 3); mov fs, ax
    a.b({0x64, 0x8b, 0x1d}).d32(0x10);               // mov ebx, fs:[0x10]
    a.b({0x0f, 0x02, 0xc8});                         // lar ecx, eax
    a.b({0x0f, 0x03, 0xd0});                         // lsl edx, eax
    a.b({0x0f, 0x00, 0xe0});                         // verr ax
    a.b({0x9c, 0x5e});                               // pushf; pop esi
    a.b({0x66, 0xbf, 0x18, 0x00, 0x0f, 0x00, 0xef}); // mov di, 0x18; verw di (code: no)
    a.b({0x9c, 0x5f});                               // pushf; pop edi
    a.b({0x64, 0x8b, 0x2d}).d32(0x100);              // mov ebp, fs:[0x100] -> #GP (limit)
    a.b({0xf4});
    a.label("gp");
    a.b({0x58, 0xa3}).d32(0x6000).b({0xf4});
    m.load(kCode, a.finish());
    gate32(m, 13, uint32_t(a.addr("gp")), 0);
    m.vcpu->set_state(pm32_state(m, false));
    m.run_until_halt(100);
    auto& s = m.cpu().s;
    CHECK(uint32_t(s.gpr[RBX]) == 0x600dcafe);
    CHECK(uint32_t(s.gpr[RCX]) == 0x0040f300); // D/B=1, P, DPL 3, S, type 3
    CHECK(uint32_t(s.gpr[RDX]) == 0xff);
    CHECK((s.gpr[RSI] & 0x40) != 0);      // VERR: readable
    CHECK((s.gpr[RDI] & 0x40) == 0);      // VERW on code: not writable
    CHECK(m.peek<uint32_t>(0x6000) == 0); // #GP(0) for the limit violation
}

TEST_CASE("32-bit call gate from CPL 3 to CPL 0 copies parameters; RETF n returns") {
    Machine m;
    Asm a(kCode);
    a.b({0x68}).d32(0x11111111).b({0x68}).d32(0x22222222); // push two parameters
    a.b({0x9a}).d32(0).d16(0x6b);                          // call far 0x6b:0 (gate, RPL 3)
    a.b({0x89, 0x25}).d32(0x7008);                         // mov [0x7008], esp
    a.b({0xcd, 0x81});                                     // int 0x81 -> hlt
    a.label("gate_target");
    a.b({0x8b, 0x44, 0x24, 0x08, 0x8b, 0x5c, 0x24, 0x0c}); // mov eax,[esp+8]; mov ebx,[esp+12]
    a.b({0x8b, 0x54, 0x24, 0x04});                         // mov edx, [esp+4] (caller CS)
    a.b({0x89, 0x25}).d32(0x6000);                         // mov [0x6000], esp
    a.b({0x8c, 0xd1});                                     // mov ecx, ss
    a.b({0xca, 0x08, 0x00});                               // retf 8
    a.label("h81");
    a.b({0xf4});
    m.load(kCode, a.finish());
    uint32_t target = uint32_t(a.addr("gate_target"));
    uint64_t gate = (target & 0xffff) | (uint64_t(kSelCode32) << 16) | (2ull << 32) |
                    (12ull << 40) | (3ull << 45) | (1ull << 47) | (uint64_t(target >> 16) << 48);
    m.poke<uint64_t>(kGdt + 13 * 8, gate);
    gate32(m, 0x81, uint32_t(a.addr("h81")), 3);
    m.vcpu->set_state(pm32_state(m, true));
    m.run_until_halt(100);
    auto& s = m.cpu().s;
    CHECK(m.cpu().error == "");
    CHECK(uint32_t(s.gpr[RAX]) == 0x22222222);
    CHECK(uint32_t(s.gpr[RBX]) == 0x11111111);
    CHECK((s.gpr[RCX] & 0xffff) == kSelData);        // SS0 from the TSS
    CHECK(m.peek<uint32_t>(0x6000) == 0x90000 - 24); // SS, ESP, 2 params, CS, EIP
    CHECK((s.gpr[RDX] & 0xffff) == kSelUCode32);
    CHECK(m.peek<uint32_t>(0x7008) == 0x280000); // RETF 8 dropped the parameters
}

TEST_CASE("virtual-8086 mode: IRETD into it, IOPL-sensitive INT n, ring-0 frames") {
    for (unsigned iopl : {0u, 3u}) {
        CAPTURE(iopl);
        Machine m;
        Asm a(kCode);
        // IRETD frame for v86: GS FS DS ES SS ESP EFLAGS CS EIP
        a.b({0x6a, 0x00, 0x6a, 0x00, 0x68}).d32(0x2000).b({0x6a, 0x00, 0x68}).d32(0x3000);
        a.b({0x68}).d32(0x100).b({0x68}).d32(0x20002 | (iopl << 12));
        a.b({0x68}).d32(0x1000).b({0x6a, 0x00, 0xcf});
        a.label("gp");     // #GP handler: save ESP and the DS seen by ring 0, halt
        a.b({0x8c, 0xd9}); // mov ecx, ds (null after the v86 exit)
        a.b({0x36, 0x89, 0x25}).d32(0x6000); // mov ss:[0x6000], esp
        a.b({0xf4});
        a.label("int21"); // INT 0x21 handler (IOPL 3 case): record ESP, return to v86
        a.b({0x36, 0x89, 0x25}).d32(0x6004); // mov ss:[0x6004], esp
        a.b({0xcf});                         // iretd
        m.load(kCode, a.finish());
        // v86 code at 1000:0000
        const uint8_t v86code[] = {0xb8, 0x34, 0x12, 0xa3, 0x10, 0x00,
                                   0xcd, 0x21, 0xb0, 0x01, 0xf4};
        memcpy(m.ram + 0x10000, v86code, sizeof v86code);
        gate32(m, 13, uint32_t(a.addr("gp")), 0);
        gate32(m, 0x21, uint32_t(a.addr("int21")), 3);
        m.vcpu->set_state(pm32_state(m, false));
        m.run_until_halt(100);
        auto& s = m.cpu().s;
        CHECK(m.cpu().error == "");
        CHECK(m.peek<uint16_t>(0x20010) == 0x1234); // v86 store through DS = 0x2000
        CHECK(s.halted);
        CHECK(!(s.rflags & 0x20000)); // halted in ring 0
        CHECK((s.gpr[RCX] & 0xffff) == 0);
        CHECK(m.peek<uint32_t>(0x6000) == 0x90000 - 40);
        // The #GP frame on the ring-0 stack (ESP0 = 0x90000): err EIP CS EFLAGS ESP SS ES DS FS GS
        uint32_t f = 0x90000 - 40;
        CHECK(m.peek<uint32_t>(f) == 0);                  // error code 0
        CHECK(m.peek<uint32_t>(f + 8) == 0x1000);         // CS
        CHECK((m.peek<uint32_t>(f + 12) & 0x20000) != 0); // VM in the saved EFLAGS
        CHECK(m.peek<uint32_t>(f + 16) == 0x100);         // ESP
        CHECK(m.peek<uint32_t>(f + 20) == 0x3000);        // SS
        CHECK(m.peek<uint32_t>(f + 28) == 0x2000);        // DS
        if (iopl == 0) {
            CHECK(m.peek<uint32_t>(f + 4) == 6); // faulting INT 0x21
        } else {
            CHECK(m.peek<uint32_t>(0x6004) == 0x90000 - 36); // INT frame without error code
            CHECK(m.peek<uint32_t>(f + 4) == 10); // HLT at CPL 3 faulted after INT returned
            CHECK((s.gpr[RAX] & 0xffff) == 0x1201);
        }
    }
}

TEST_CASE("task switches: CALL to a TSS, IRET back through the link, INT through a task gate") {
    Machine m;
    const uint32_t tss2 = 0x2800;
    const uint16_t sel_tss2 = 0x80;
    m.poke<uint64_t>(kGdt + 16 * 8, seg_desc(tss2, 0x67, 9, 0, false, false, false, false));
    Asm a(kCode);
    a.b({0xb8}).d32(0xaaaa);          // mov eax, 0xaaaa
    a.b({0x9a}).d32(0).d16(sel_tss2); // call far TSS2:0 (task switch)
    a.b({0xa3}).d32(0x7000);          // mov [0x7000], eax (restored)
    a.b({0xcd, 0x22});                // int 0x22 -> task gate -> TSS2
    a.b({0x89, 0x1d}).d32(0x7008);    // mov [0x7008], ebx (task 1's EBX)
    a.b({0xf4});
    a.label("task2");
    a.b({0xa3}).d32(0x7004);       // mov [0x7004], eax
    a.b({0xff, 0x05}).d32(0x700c); // inc dword [0x700c] (entries)
    a.b({0xbb}).d32(0x2222);       // mov ebx, 0x2222
    a.b({0xcf});                   // iretd (NT = 1: back to task 1)
    a.b({0xeb}).rel8("task2");     // next entry resumes here
    m.load(kCode, a.finish());
    CpuState s = pm32_state(m, false);
    s.gdt.limit = 0x87;
    // the running task's TSS descriptor is busy, as LTR leaves it
    m.poke<uint64_t>(kGdt + 9 * 8,
                     seg_desc(uint32_t(kTss), 0x67, 11, 0, false, false, false, false));
    // TSS2: CR3, EIP, EFLAGS, EAX..EDI, ES CS SS DS FS GS, LDT
    m.poke<uint32_t>(tss2 + 0x1c, uint32_t(s.cr3));
    m.poke<uint32_t>(kTss + 0x1c, uint32_t(s.cr3)); // task 1's CR3 (a switch does not save it)
    m.poke<uint32_t>(tss2 + 0x20, uint32_t(a.addr("task2")));
    m.poke<uint32_t>(tss2 + 0x24, 2);
    m.poke<uint32_t>(tss2 + 0x28, 0x1111);
    m.poke<uint32_t>(tss2 + 0x38, 0x70000); // ESP
    const uint16_t segs[6] = {kSelData, kSelCode32, kSelData, kSelData, kSelData, kSelData};
    for (int i = 0; i < 6; i++) m.poke<uint32_t>(tss2 + 0x48 + 4 * i, segs[i]);
    // IDT vector 0x22: task gate to TSS2
    m.poke<uint64_t>(kIdt + 0x22 * 8, (uint64_t(sel_tss2) << 16) | (5ull << 40) | (1ull << 47));
    s.gpr[RBX] = 0xbbbb;
    m.vcpu->set_state(s);
    m.run_until_halt(100);
    auto& c = m.cpu().s;
    CHECK(m.cpu().error == "");
    CHECK(c.halted);
    CHECK(m.peek<uint32_t>(0x7004) == 0x1111);
    CHECK(m.peek<uint32_t>(0x7000) == 0xaaaa);
    CHECK(m.peek<uint32_t>(0x700c) == 2);      // entered twice (CALL, then the task gate)
    CHECK(m.peek<uint32_t>(0x7008) == 0xbbbb); // task 1's registers came back
    CHECK(m.peek<uint16_t>(tss2) == kSelTss);  // back link
    CHECK(c.seg[TR].selector == kSelTss);
    CHECK(((m.peek<uint64_t>(kGdt + 16 * 8) >> 40) & 0xf) == 9); // TSS2 no longer busy
    CHECK((c.cr0 & 8) != 0);                                     // CR0.TS
    CHECK((c.rflags & 0x4000) == 0);                             // NT clear in task 1
}
