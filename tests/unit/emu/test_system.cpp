// System-level programs through the engine: mode switches, paging faults, IDT delivery with
// privilege changes, IRET, triple fault, port I/O and MMIO as the IoSink sees them.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "tests/unit/emu/emu_harness.hpp"

using namespace emu_test;

namespace {
bool is_pio_write(const RecordingSink::Record& r, uint16_t port) {
    return r.kind == IoRequest::Kind::Pio && r.is_write && r.addr == port;
}
} // namespace

TEST_CASE("real mode -> protected mode -> long mode -> back to real mode") {
    Machine m;
    Asm a(0x7c00);
    a.b({0xfa, 0x0f, 0x01, 0x16}).abs16("gdtr");           // cli; lgdt [gdtr]
    a.b({0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22, 0xc0}); // cr0.PE = 1
    a.b({0x66, 0xea}).abs32("pm32").d16(kSelCode32);       // jmp dword 0x18:pm32
    a.label("pm32");
    a.b({0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xd0, 0x8e, 0xc0}); // ds = ss = es = 0x10
    a.b({0xbc}).d32(0x90000);                                          // mov esp, 0x90000
    a.b({0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0});       // cr4.PAE = 1
    a.b({0xb8}).d32(uint32_t(kPml4)).b({0x0f, 0x22, 0xd8});            // cr3 = pml4
    a.b({0xb9}).d32(0xc0000080).b({0x0f, 0x32, 0x0d}).d32(0x100).b({0x0f, 0x30}); // EFER.LME
    a.b({0x0f, 0x20, 0xc0, 0x0d}).d32(0x80000000).b({0x0f, 0x22, 0xc0});          // cr0.PG = 1
    a.b({0xea}).abs32("lm64").d16(kSelCode64);                                    // jmp 0x08:lm64
    a.label("lm64");
    a.b({0x48, 0xb8}).d64(0x123456789abcdef0ull); // mov rax, imm64
    a.b({0x48, 0x89, 0x04, 0x25}).d32(0x5000);    // mov [0x5000], rax
    a.b({0xe6, 0x80});                            // out 0x80, al
    a.b({0xff, 0x2d}).rel32("farptr");            // jmp far [rip+farptr]
    a.label("farptr").abs32("compat").d16(kSelCode32);
    a.label("compat");
    a.b({0x0f, 0x20, 0xc0, 0x25}).d32(0x7fffffff).b({0x0f, 0x22, 0xc0}); // paging off: LMA = 0
    a.b({0xb9}).d32(0xc0000080).b({0x0f, 0x32, 0x25}).d32(0xfffffeff).b({0x0f, 0x30});
    a.b({0xea}).abs32("pm16").d16(kSelCode16);
    a.label("pm16");
    a.b({0xb8, 0x28, 0x00, 0x8e, 0xd8, 0x8e, 0xd0});       // ds = ss = 0x28
    a.b({0x0f, 0x20, 0xc0, 0x24, 0xfe, 0x0f, 0x22, 0xc0}); // cr0.PE = 0
    a.b({0xea}).abs16("real2").d16(0);                     // jmp 0:real2
    a.label("real2");
    a.b({0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xb0, 0x42, 0xe6, 0x80, 0xf4});
    a.label("gdtr").d16(0x7f).d32(uint32_t(kGdt));
    m.load(0x7c00, a.finish());
    m.vcpu->set_state(m.real_mode_state());
    m.run_until_halt(1000);
    CpuState s;
    m.vcpu->get_state(s);
    CHECK(m.cpu().error == "");
    CHECK(s.halted);
    CHECK((s.cr0 & 0x80000001) == 0);
    CHECK((s.efer & 0x500) == 0);
    CHECK(s.seg[CS].selector == 0);
    CHECK(m.peek<uint64_t>(0x5000) == 0x123456789abcdef0ull);
    REQUIRE(m.sink.records.size() == 2);
    CHECK(is_pio_write(m.sink.records[0], 0x80));
    CHECK(m.sink.records[0].data[0] == 0xf0);
    CHECK(m.sink.records[1].data[0] == 0x42);
}

TEST_CASE("real mode: INT through the IVT, IRET, REP STOSB with ES") {
    Machine m;
    Asm a(0x7c00);
    a.b({0xb8, 0x00, 0x10, 0x8e, 0xc0});       // mov ax, 0x1000; mov es, ax
    a.b({0xbf, 0x00, 0x00, 0xb9, 0x10, 0x00}); // mov di, 0; mov cx, 16
    a.b({0xb0, 0xab, 0xf3, 0xaa});             // mov al, 0xab; rep stosb
    a.b({0xfb, 0xcd, 0x10, 0xf4});             // sti; int 0x10; hlt
    a.label("handler");
    a.b({0xc6, 0x06, 0x00, 0x60, 0x55}); // mov byte [0x6000], 0x55
    a.b({0x9c, 0x58, 0xa3, 0x02, 0x60}); // pushf; pop ax; mov [0x6002], ax
    a.b({0x89, 0xe0, 0xa3, 0x04, 0x60}); // mov ax, sp; mov [0x6004], ax
    a.b({0xcf});                         // iret
    auto code = a.finish();
    m.load(0x7c00, code);
    m.poke<uint16_t>(0x10 * 4, uint16_t(a.addr("handler")));
    m.poke<uint16_t>(0x10 * 4 + 2, 0);
    m.vcpu->set_state(m.real_mode_state());
    m.run_until_halt(1000);
    auto& s = m.cpu().s;
    for (int i = 0; i < 16; i++) CHECK(m.ram[0x10000 + i] == 0xab);
    CHECK(m.ram[0x10010] == 0);
    CHECK(s.gpr[RDI] == 16);
    CHECK((s.gpr[RCX] & 0xffff) == 0);
    CHECK(m.ram[0x6000] == 0x55);
    CHECK((m.peek<uint16_t>(0x6002) & 0x200) == 0); // IF cleared in the handler
    CHECK(m.peek<uint16_t>(0x6004) == 0x7000 - 6);  // FLAGS, CS, IP pushed
    CHECK((s.rflags & 0x200) != 0);                 // IRET restored IF
    CHECK(s.gpr[RSP] == 0x7000);
    CHECK(s.halted);
}

TEST_CASE("page faults report the error code and CR2") {
    struct Case {
        const char* name;
        uint64_t pte;
        bool user;
        bool write;
        bool fetch;
        uint32_t err;
    };
    const uint64_t nx = 1ull << 63;
    Case cases[] = {
        {"not present read", 0, false, false, false, 0x0},
        {"not present write", 0, false, true, false, 0x2},
        {"read-only write, WP=1", 0x5000 | 5, false, true, false, 0x3},
        {"NX fetch", 0x5000 | 3 | nx, false, false, true, 0x11},
        {"user read of supervisor page", 0x5000 | 3, true, false, false, 0x5},
        {"user write of read-only page", 0x5000 | 5, true, true, false, 0x7},
        {"reserved bit", 0x5000 | 3 | (1ull << 45), false, false, false, 0x9},
    };
    for (auto& c : cases) {
        CAPTURE(c.name);
        Machine m;
        m.poke<uint64_t>(kPt + 5 * 8, c.pte);
        Asm a(kCode);
        if (c.fetch) {
            a.b({0x48, 0xc7, 0xc0}).d32(0x5008).b({0xff, 0xe0}); // mov rax, 0x5008; jmp rax
        } else if (c.write) {
            a.b({0x48, 0x89, 0x04, 0x25}).d32(0x5008); // mov [0x5008], rax
        } else {
            a.b({0x48, 0x8b, 0x04, 0x25}).d32(0x5008); // mov rax, [0x5008]
        }
        a.b({0xf4});
        a.label("handler");
        a.b({0x58, 0x48, 0x89, 0x04, 0x25}).d32(0x6000);             // pop rax; mov [0x6000], rax
        a.b({0x0f, 0x20, 0xd0, 0x48, 0x89, 0x04, 0x25}).d32(0x6008); // cr2 -> [0x6008]
        a.b({0x48, 0x8b, 0x04, 0x24, 0x48, 0x89, 0x04, 0x25}).d32(0x6010);       // [rsp] (rip)
        a.b({0x48, 0x8b, 0x44, 0x24, 0x08, 0x48, 0x89, 0x04, 0x25}).d32(0x6018); // cs
        a.b({0xf4});
        m.load(kCode, a.finish());
        m.set_gate64(14, a.addr("handler"));
        CpuState s = m.long_mode_state();
        if (c.user) {
            s.seg[CS] = m.gdt_seg(kSelUCode64);
            s.seg[SS] = m.gdt_seg(kSelUData);
            s.gpr[RSP] = 0x280000;
            m.set_gate64(14, a.addr("handler"));
        }
        m.vcpu->set_state(s);
        m.run_until_halt(100);
        CHECK(m.peek<uint64_t>(0x6000) == c.err);
        CHECK(m.peek<uint64_t>(0x6008) == 0x5008);
        CHECK(m.peek<uint64_t>(0x6010) == (c.fetch ? 0x5008 : kCode));
        CHECK(m.peek<uint64_t>(0x6018) == (c.user ? kSelUCode64 : kSelCode64));
        CHECK(m.cpu().s.seg[CS].selector == kSelCode64);
    }
}

TEST_CASE("A and D bits are set by the walk; INVLPG and CR3 writes flush the TLB") {
    Machine m;
    m.poke<uint64_t>(kPt + 5 * 8, 0x5000 | 3);
    m.poke<uint64_t>(kPt + 6 * 8, 0x7000 | 3);
    Asm a(kCode);
    a.b({0x48, 0x8b, 0x04, 0x25}).d32(0x5000); // mov rax, [0x5000]: A
    a.b({0x48, 0x89, 0x04, 0x25}).d32(0x6000); // mov [0x6000], rax: A + D
    // remap 0x5000 -> 0x8000; without INVLPG the stale translation would still be used
    a.b({0x48, 0xc7, 0x04, 0x25}).d32(uint32_t(kPt + 5 * 8)).d32(0x8003);
    a.b({0x0f, 0x01, 0x3c, 0x25}).d32(0x5000); // invlpg [0x5000]
    a.b({0x48, 0x8b, 0x1c, 0x25}).d32(0x5000); // mov rbx, [0x5000]
    a.b({0xf4});
    m.load(kCode, a.finish());
    m.poke<uint64_t>(0x5000, 0x1111);
    m.poke<uint64_t>(0x8000, 0x2222);
    m.vcpu->set_state(m.long_mode_state());
    m.run_until_halt(100);
    CHECK((m.peek<uint64_t>(kPt + 5 * 8) & 0x60) == 0x20); // accessed (fresh entry: A)
    CHECK((m.peek<uint64_t>(kPt + 6 * 8) & 0x60) == 0x60); // accessed + dirty
    CHECK(m.cpu().s.gpr[RAX] == 0x1111);
    CHECK(m.cpu().s.gpr[RBX] == 0x2222);
}

TEST_CASE("INT from CPL 3 switches to the TSS stack; IRETQ returns; IST stacks") {
    Machine m;
    Asm a(kCode);
    a.b({0xcd, 0x80});                             // int 0x80
    a.b({0xc6, 0x04, 0x25}).d32(0x7000).b({0x01}); // mov byte [0x7000], 1
    a.b({0xcd, 0x81});                             // int 0x81
    a.label("h80");
    a.b({0x48, 0x89, 0x24, 0x25}).d32(0x6000).b({0x48, 0xcf}); // mov [0x6000], rsp; iretq
    a.label("h81");
    a.b({0x48, 0x89, 0x24, 0x25}).d32(0x6008).b({0xf4}); // mov [0x6008], rsp; hlt
    m.load(kCode, a.finish());
    m.set_gate64(0x80, a.addr("h80"), 3);
    m.set_gate64(0x81, a.addr("h81"), 3, 1);
    CpuState s = m.long_mode_state();
    s.seg[CS] = m.gdt_seg(kSelUCode64);
    s.seg[SS] = m.gdt_seg(kSelUData);
    s.gpr[RSP] = 0x280000;
    s.rflags = 0x202;
    m.vcpu->set_state(s);
    m.run_until_halt(100);
    uint64_t frame = kStack - 0x10000 - 40;
    CHECK(m.peek<uint64_t>(0x6000) == frame);
    CHECK(m.peek<uint64_t>(frame) == kCode + 2);
    CHECK(m.peek<uint64_t>(frame + 8) == kSelUCode64);
    CHECK(m.peek<uint64_t>(frame + 16) == 0x202);
    CHECK(m.peek<uint64_t>(frame + 24) == 0x280000);
    CHECK(m.peek<uint64_t>(frame + 32) == kSelUData);
    CHECK(m.ram[0x7000] == 1);
    CHECK(m.peek<uint64_t>(0x6008) == kStack - 0x20000 - 40); // IST1
    CHECK(m.cpu().s.seg[CS].selector == kSelCode64);
    CHECK((m.cpu().s.rflags & 0x200) == 0); // interrupt gate cleared IF
}

TEST_CASE("INT to a DPL 0 gate from CPL 3 is #GP with the IDT error code") {
    Machine m;
    Asm a(kCode);
    a.b({0xcd, 0x80});
    a.label("gp");
    a.b({0x58, 0x48, 0x89, 0x04, 0x25}).d32(0x6000).b({0xf4}); // pop rax; mov [0x6000], rax
    m.load(kCode, a.finish());
    m.set_gate64(0x80, kCode, 0);
    m.set_gate64(13, a.addr("gp"), 0);
    CpuState s = m.long_mode_state();
    s.seg[CS] = m.gdt_seg(kSelUCode64);
    s.seg[SS] = m.gdt_seg(kSelUData);
    s.gpr[RSP] = 0x280000;
    m.vcpu->set_state(s);
    m.run_until_halt(100);
    CHECK(m.peek<uint64_t>(0x6000) == 0x80 * 8 + 2);
}

TEST_CASE("IRETQ to 32-bit compatibility mode and IRET privilege checks") {
    Machine m;
    Asm a(kCode);
    // Build an IRET frame to CS 0x43 (user 32-bit code) at CPL 3.
    a.b({0x6a, 0x3b});           // push 0x3b (ss)
    a.b({0x68}).d32(0x280000);   // push 0x280000 (rsp)
    a.b({0x68}).d32(0x2);        // push 2 (rflags)
    a.b({0x6a, 0x43});           // push 0x43 (cs)
    a.b({0x68}).abs32("compat"); // push compat
    a.b({0x48, 0xcf});           // iretq
    a.label("compat");
    a.b({0xb8}).d32(0xcafe); // mov eax, 0xcafe (32-bit code)
    a.b({0xcd, 0x81});       // int 0x81 -> 64-bit handler
    a.label("h81");
    a.b({0xf4});
    m.load(kCode, a.finish());
    m.set_gate64(0x81, a.addr("h81"), 3);
    m.vcpu->set_state(m.long_mode_state());
    m.run_until_halt(100);
    auto& s = m.cpu().s;
    CHECK(s.gpr[RAX] == 0xcafe);
    CHECK(s.seg[CS].selector == kSelCode64);
    uint64_t frame = kStack - 0x10000 - 40;
    CHECK(m.peek<uint64_t>(frame + 8) == kSelUCode32);
    CHECK(m.peek<uint64_t>(frame + 24) == 0x280000);

    // IRET to a more privileged level (RPL 0 < CPL 3) is #GP(selector).
    Machine m2;
    Asm b(kCode);
    b.b({0x6a, 0x10, 0x68}).d32(0x280000).b({0x68}).d32(2).b({0x6a, 0x08, 0x68}).d32(0x1234);
    b.b({0x48, 0xcf});
    b.label("gp");
    b.b({0x58, 0x48, 0x89, 0x04, 0x25}).d32(0x6000).b({0xf4});
    m2.load(kCode, b.finish());
    m2.set_gate64(13, b.addr("gp"));
    CpuState u = m2.long_mode_state();
    u.seg[CS] = m2.gdt_seg(kSelUCode64);
    u.seg[SS] = m2.gdt_seg(kSelUData);
    u.gpr[RSP] = 0x280000;
    m2.vcpu->set_state(u);
    m2.run_until_halt(100);
    CHECK(m2.peek<uint64_t>(0x6000) == kSelCode64);
}

TEST_CASE("triple fault ends run() with Shutdown") {
    Machine m;
    m.load(kCode, {0x0f, 0x0b}); // ud2
    CpuState s = m.long_mode_state();
    s.idt.limit = 0; // every delivery faults: #UD -> #GP -> #DF -> shutdown
    m.vcpu->set_state(s);
    CHECK(m.vcpu->run() == VcpuExit::Shutdown);
}

TEST_CASE("#DE, #UD (UD2) and #BP are delivered with the right RIP") {
    Machine m;
    Asm a(kCode);
    a.b({0x31, 0xc9, 0xf7, 0xf1}); // xor ecx, ecx; div ecx -> #DE (fault: rip = div)
    a.label("after_de");
    a.b({0x0f, 0x0b}); // ud2 -> #UD
    a.label("after_ud");
    a.b({0xcc}); // int3 -> #BP (trap: rip = next)
    a.label("after_bp");
    a.b({0xf4});
    // Handlers record the pushed RIP, then skip the faulting instruction.
    a.label("de");
    a.b({0x48, 0x8b, 0x04, 0x24, 0x48, 0x89, 0x04, 0x25}).d32(0x6000);
    a.b({0x48, 0xc7, 0x04, 0x24}).abs32("after_de").b({0x48, 0xcf});
    a.label("ud");
    a.b({0x48, 0x8b, 0x04, 0x24, 0x48, 0x89, 0x04, 0x25}).d32(0x6008);
    a.b({0x48, 0xc7, 0x04, 0x24}).abs32("after_ud").b({0x48, 0xcf});
    a.label("bp");
    a.b({0x48, 0x8b, 0x04, 0x24, 0x48, 0x89, 0x04, 0x25}).d32(0x6010).b({0x48, 0xcf});
    m.load(kCode, a.finish());
    m.set_gate64(0, a.addr("de"));
    m.set_gate64(6, a.addr("ud"));
    m.set_gate64(3, a.addr("bp"), 3);
    m.vcpu->set_state(m.long_mode_state());
    m.run_until_halt(100);
    CHECK(m.peek<uint64_t>(0x6000) == kCode + 2);
    CHECK(m.peek<uint64_t>(0x6008) == a.addr("after_de"));
    CHECK(m.peek<uint64_t>(0x6010) == a.addr("after_bp"));
    CHECK(m.cpu().s.rip == a.addr("after_bp") + 1);
}

TEST_CASE("MMIO accesses reach the sink; ROM ignores writes") {
    Machine m;
    m.sink.mmio[0x10] = 0x78;
    m.sink.mmio[0x11] = 0x56;
    m.sink.mmio[0x12] = 0x34;
    m.sink.mmio[0x13] = 0x12;
    m.rom[0] = 0xaa;
    Asm a(kCode);
    a.b({0x48, 0xbb}).d64(0xfed00010);       // mov rbx, 0xfed00010
    a.b({0x8b, 0x03});                       // mov eax, [rbx]
    a.b({0xc7, 0x43, 0x04}).d32(0x11223344); // mov dword [rbx+4], 0x11223344
    a.b({0x48, 0xbe}).d64(kRom);             // mov rsi, kRom
    a.b({0xc6, 0x06, 0x55});                 // mov byte [rsi], 0x55 (dropped)
    a.b({0x8a, 0x0e});                       // mov cl, [rsi]
    a.b({0xf4});
    m.load(kCode, a.finish());
    m.vcpu->set_state(m.long_mode_state());
    m.run_until_halt(100);
    auto& s = m.cpu().s;
    CHECK(s.gpr[RAX] == 0x12345678);
    CHECK((s.gpr[RCX] & 0xff) == 0xaa);
    CHECK(m.rom[0] == 0xaa);
    REQUIRE(m.sink.records.size() == 2);
    CHECK(m.sink.records[0].kind == IoRequest::Kind::Mmio);
    CHECK(!m.sink.records[0].is_write);
    CHECK(m.sink.records[0].size == 4);
    CHECK(m.sink.records[0].addr == 0xfed00010);
    CHECK(m.sink.records[1].is_write);
    CHECK(m.sink.records[1].addr == 0xfed00014);
    CHECK(m.sink.mmio[0x14] == 0x44);
    CHECK(m.sink.mmio[0x17] == 0x11);
}

TEST_CASE("REP OUTSB and REP INSW go to the sink as multi-element requests") {
    Machine m;
    for (int i = 0; i < 16; i++) m.ram[kData + i] = uint8_t(i * 3);
    m.sink.pio_read_value = 0xbeef;
    Asm a(kCode);
    a.b({0x48, 0xbe}).d64(kData);             // mov rsi, kData
    a.b({0x66, 0xba, 0xf8, 0x03});            // mov dx, 0x3f8
    a.b({0xb9}).d32(16).b({0xf3, 0x6e});      // mov ecx, 16; rep outsb
    a.b({0x48, 0xbf}).d64(kData + 0x100);     // mov rdi, kData + 0x100
    a.b({0xb9}).d32(8).b({0x66, 0xf3, 0x6d}); // mov ecx, 8; rep insw
    a.b({0xe4, 0x71});                        // in al, 0x71
    a.b({0xf4});
    m.load(kCode, a.finish());
    m.vcpu->set_state(m.long_mode_state());
    m.run_until_halt(100);
    auto& s = m.cpu().s;
    REQUIRE(m.sink.records.size() == 3);
    auto& out = m.sink.records[0];
    CHECK((out.is_write && out.addr == 0x3f8 && out.size == 1 && out.count == 16));
    for (int i = 0; i < 16; i++) CHECK(out.data[i] == uint8_t(i * 3));
    auto& in = m.sink.records[1];
    CHECK((!in.is_write && in.addr == 0x3f8 && in.size == 2 && in.count == 8));
    for (int i = 0; i < 8; i++) CHECK(m.peek<uint16_t>(kData + 0x100 + 2 * i) == 0xbeef);
    CHECK(s.gpr[RSI] == kData + 16);
    CHECK(s.gpr[RDI] == kData + 0x110);
    CHECK(s.gpr[RCX] == 0);
    CHECK(m.sink.records[2].addr == 0x71);
    CHECK((s.gpr[RAX] & 0xff) == 0xef);
}

TEST_CASE("external interrupt waits for the STI shadow; HLT with IF=0 returns Halted") {
    FakeInterrupts irq;
    Machine m(&irq);
    Asm a(kCode);
    a.b({0xfb});                                   // sti
    a.b({0xc6, 0x04, 0x25}).d32(0x7000).b({0x01}); // mov byte [0x7000], 1
    a.b({0xc6, 0x04, 0x25}).d32(0x7001).b({0x01}); // mov byte [0x7001], 1
    a.b({0xf4});
    a.label("h");
    a.b({0x8a, 0x04, 0x25}).d32(0x7000).b({0x88, 0x04, 0x25}).d32(0x7100);
    a.b({0x8a, 0x04, 0x25}).d32(0x7001).b({0x88, 0x04, 0x25}).d32(0x7101);
    a.b({0xfa, 0xf4}); // cli; hlt
    m.load(kCode, a.finish());
    m.set_gate64(0x20, a.addr("h"));
    m.vcpu->set_state(m.long_mode_state());
    irq.pending = CpuInterrupts::kIntr;
    CHECK(m.vcpu->run() == VcpuExit::Halted);
    CHECK(m.ram[0x7100] == 1);
    CHECK(m.ram[0x7101] == 0);
    CHECK(irq.acks == 1);
}

TEST_CASE("HLT sleeps until the interrupt controller kicks; Vcpu::kick stops a busy loop") {
    FakeInterrupts irq;
    Machine m(&irq);
    Asm a(kCode);
    a.b({0xfb, 0xf4}); // sti; hlt
    a.b({0xfa, 0xf4}); // cli; hlt (after the handler)
    a.label("h");
    a.b({0xc6, 0x04, 0x25}).d32(0x7200).b({0x01, 0x48, 0xcf}); // mov byte [0x7200], 1; iretq
    m.load(kCode, a.finish());
    m.set_gate64(0x20, a.addr("h"));
    m.vcpu->set_state(m.long_mode_state());
    VcpuExit exit{};
    std::thread t([&] { exit = m.vcpu->run(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(m.ram[0x7200] == 0);
    irq.pending |= CpuInterrupts::kIntr;
    irq.kick();
    t.join();
    CHECK(exit == VcpuExit::Halted);
    CHECK(m.ram[0x7200] == 1);

    Machine m2;
    m2.load(kCode, {0xeb, 0xfe}); // jmp $
    m2.vcpu->set_state(m2.long_mode_state());
    std::thread t2([&] { exit = m2.vcpu->run(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    m2.vcpu->kick();
    t2.join();
    CHECK(exit == VcpuExit::Kicked);
}

TEST_CASE("SYSRET to user mode and SYSCALL back") {
    Machine m;
    Asm a(kCode);
    a.b({0x48, 0xb9}).abs32("user").d32(0); // mov rcx, user
    a.b({0x49, 0xc7, 0xc3}).d32(0x202);     // mov r11, 0x202
    a.b({0x48, 0x0f, 0x07});                // sysretq
    a.label("user");
    a.b({0x0f, 0x05}); // syscall
    a.label("after");
    a.b({0xf4});
    a.label("entry");
    a.b({0x48, 0x89, 0x0c, 0x25}).d32(0x6000); // mov [0x6000], rcx
    a.b({0x4c, 0x89, 0x1c, 0x25}).d32(0x6008); // mov [0x6008], r11
    a.b({0xf4});
    m.load(kCode, a.finish());
    CpuState s = m.long_mode_state();
    s.star = (uint64_t(0x20) << 48) | (uint64_t(kSelCode64) << 32);
    s.lstar = a.addr("entry");
    s.sfmask = 0x200;
    m.vcpu->set_state(s);
    m.run_until_halt(100);
    auto& c = m.cpu().s;
    CHECK(m.peek<uint64_t>(0x6000) == a.addr("after"));
    CHECK((m.peek<uint64_t>(0x6008) & 0x202) == 0x202);
    CHECK(c.seg[CS].selector == kSelCode64);
    CHECK((c.rflags & 0x200) == 0);
}

TEST_CASE("INIT and SIPI start an application processor at vector << 12") {
    FakeInterrupts irq;
    GuestMemory mem;
    uint8_t* ram = mem.allocate(1 << 20, "ram");
    mem.add_region({0, 1 << 20, ram, false, "ram"});
    RecordingSink sink;
    emu::EmuEngine engine(nullptr);
    engine.map_memory(mem);
    auto ap = engine.create_vcpu(1, sink, &irq);
    // AP code at 0x9000: out 0x80, al; cli; hlt
    ram[0x9000] = 0xb0;
    ram[0x9001] = 0x5a;
    ram[0x9002] = 0xe6;
    ram[0x9003] = 0x80;
    ram[0x9004] = 0xfa;
    ram[0x9005] = 0xf4;
    irq.sipi_vector = 0x09;
    irq.pending = CpuInterrupts::kInit | CpuInterrupts::kSipi;
    CHECK(ap->run() == VcpuExit::Halted);
    REQUIRE(sink.records.size() == 1);
    CHECK(sink.records[0].addr == 0x80);
    CHECK(sink.records[0].data[0] == 0x5a);
    CpuState s;
    ap->get_state(s);
    CHECK(s.seg[CS].selector == 0x900);
}

TEST_CASE("TF single-steps: #DB after each instruction, not after INT n") {
    Machine m;
    Asm a(kCode);
    a.b({0x9c, 0x48, 0x81, 0x0c, 0x24}).d32(0x100).b({0x9d}); // pushf; or qword [rsp], TF; popf
    a.b({0x90});                                              // nop     -> #DB after it
    a.b({0xcd, 0x81});                                        // int 0x81 (no #DB after it)
    a.b({0x90});                                              // nop      -> #DB
    a.b({0xf4});
    a.label("db");
    // count traps in [0x6000], record RIPs at [0x6008 + 8*n]
    a.b({0x48, 0x8b, 0x04, 0x25}).d32(0x6000); // mov rax, [0x6000]
    a.b({0x48, 0x8b, 0x1c, 0x24});             // mov rbx, [rsp]
    a.b({0x48, 0x89, 0x1c, 0xc5}).d32(0x6008); // mov [rax*8+0x6008], rbx
    a.b({0x48, 0xff, 0x04, 0x25}).d32(0x6000); // inc qword [0x6000]
    a.b({0x48, 0xcf});                         // iretq
    a.label("h81");
    a.b({0x48, 0xcf}); // iretq (TF restored on return)
    m.load(kCode, a.finish());
    m.set_gate64(1, a.addr("db"));
    m.set_gate64(0x81, a.addr("h81"));
    m.vcpu->set_state(m.long_mode_state());
    m.run_until_halt(200);
    uint64_t n = m.peek<uint64_t>(0x6000);
    // traps after: nop, then after IRETQ from h81? no (TF was 0 in the handler), nop, hlt
    REQUIRE(n >= 2);
    CHECK(m.peek<uint64_t>(0x6008) == kCode + 11); // after the first nop
    CHECK(m.peek<uint64_t>(0x6010) == kCode + 14); // after the nop following INT 0x81
    CHECK((m.cpu().s.dr[6] & 0x4000) != 0);
}

TEST_CASE("trace hooks see instructions, events and resets") {
    struct Trace : emu::EmuTrace {
        std::vector<uint64_t> rips;
        std::vector<uint8_t> vectors;
        int resets = 0;
        void insn(unsigned, uint16_t, uint64_t rip, bool, bool, const uint8_t*, size_t) override {
            rips.push_back(rip);
        }
        void event(unsigned, uint8_t v, bool, uint32_t, uint16_t, uint64_t, uint64_t) override {
            vectors.push_back(v);
        }
        void cpu_reset(unsigned) override { resets++; }
    } trace;
    FakeInterrupts irq;
    Machine m(&irq);
    static_cast<emu::EmuVcpu&>(*m.vcpu).set_trace(&trace);
    Asm a(kCode);
    a.b({0x90, 0xcd, 0x40});
    a.label("h");
    a.b({0xfa, 0xf4});
    m.load(kCode, a.finish());
    m.set_gate64(0x40, a.addr("h"));
    m.vcpu->set_state(m.long_mode_state());
    CHECK(m.vcpu->run() == VcpuExit::Halted);
    CHECK(trace.rips == std::vector<uint64_t>{kCode, kCode + 1, kCode + 3, kCode + 4});
    CHECK(trace.vectors == std::vector<uint8_t>{0x40});
    m.rom[0xffff0] = 0xfa; // reset vector: cli; hlt
    m.rom[0xffff1] = 0xf4;
    irq.pending = CpuInterrupts::kInit;
    CHECK(m.vcpu->run() == VcpuExit::Halted); // INIT restarts the BSP at F000:FFF0
    CHECK(trace.resets == 1);
    CHECK(trace.rips.back() == 0xfff1); // cli at FFF0, then hlt
}
