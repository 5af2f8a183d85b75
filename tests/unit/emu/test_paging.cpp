// TLB flush rules and paging variants: global pages survive CR3 writes until CR4.PGE changes or
// INVLPG; CR0.WP; 1 GiB pages; PSE-36 4 MiB pages above 4 GiB.
#include <doctest/doctest.h>

#include "tests/unit/emu/emu_harness.hpp"

using namespace emu_test;

TEST_CASE("CR3 writes keep global translations; CR4.PGE changes and INVLPG drop them") {
    Machine m;
    const uint64_t g = 1ull << 8;
    m.poke<uint64_t>(kPt + 5 * 8, 0x5000 | 3 | g); // 0x5000 global
    m.poke<uint64_t>(kPt + 6 * 8, 0x6000 | 3);     // 0x6000 not global
    m.poke<uint64_t>(0x5000, 0x55);
    m.poke<uint64_t>(0x6000, 0x66);
    m.poke<uint64_t>(0x8000, 0x88);
    Asm a(kCode);
    a.b({0x48, 0x8b, 0x04, 0x25}).d32(0x5000); // load both translations
    a.b({0x48, 0x8b, 0x04, 0x25}).d32(0x6000);
    // remap both pages to 0x8000 in the page table
    a.b({0x48, 0xc7, 0x04, 0x25}).d32(uint32_t(kPt + 5 * 8)).d32(0x8003 | 0x100);
    a.b({0x48, 0xc7, 0x04, 0x25}).d32(uint32_t(kPt + 6 * 8)).d32(0x8003);
    a.b({0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8});       // mov rax, cr3; mov cr3, rax
    a.b({0x48, 0x8b, 0x1c, 0x25}).d32(0x5000);       // rbx: stale global (0x55)
    a.b({0x48, 0x8b, 0x0c, 0x25}).d32(0x6000);       // rcx: new mapping (0x88)
    a.b({0x0f, 0x20, 0xe0, 0x48, 0x83, 0xf0, 0x00}); // mov rax, cr4; xor rax, 0 (no change)
    a.b({0x0f, 0x22, 0xe0});                         // mov cr4, rax (same value: no flush)
    a.b({0x48, 0x8b, 0x14, 0x25}).d32(0x5000);       // rdx: still stale (0x55)
    a.b({0x48, 0x35, 0x80, 0x00, 0x00, 0x00});       // xor rax, 0x80 (clear PGE)
    a.b({0x0f, 0x22, 0xe0});                         // mov cr4, rax: flush everything
    a.b({0x48, 0x8b, 0x34, 0x25}).d32(0x5000);       // rsi: 0x88
    a.b({0xf4});
    m.load(kCode, a.finish());
    m.vcpu->set_state(m.long_mode_state());
    m.run_until_halt(100);
    auto& s = m.cpu().s;
    CHECK(s.gpr[RBX] == 0x55);
    CHECK(s.gpr[RCX] == 0x88);
    CHECK(s.gpr[RDX] == 0x55);
    CHECK(s.gpr[RSI] == 0x88);
}

TEST_CASE("CR0.WP = 0 lets supervisor code write read-only pages; user writes still fault") {
    Machine m;
    m.poke<uint64_t>(kPt + 5 * 8, 0x5000 | 5); // present, user, read-only
    Asm a(kCode);
    a.b({0xc7, 0x04, 0x25}).d32(0x5000).d32(0x1234); // mov dword [0x5000], 0x1234
    a.b({0xf4});
    m.load(kCode, a.finish());
    CpuState s = m.long_mode_state();
    s.cr0 &= ~(1ull << 16);
    m.vcpu->set_state(s);
    m.run_until_halt(10);
    CHECK(m.peek<uint32_t>(0x5000) == 0x1234);
    CHECK((m.peek<uint64_t>(kPt + 5 * 8) & 0x40) != 0); // dirty
}

TEST_CASE("1 GiB pages and PSE-36 4 MiB pages above 4 GiB") {
    // 1 GiB page: map linear 1 GiB..2 GiB onto physical 0 and read through it.
    {
        Machine m;
        m.poke<uint64_t>(kPdpt + 8, 0x0 | 0x83); // PDPTE[1]: 1 GiB page at 0
        m.poke<uint64_t>(0x4010, 0xabcdef);
        Asm a(kCode);
        a.b({0x48, 0xbb}).d64(0x40004010).b({0x48, 0x8b, 0x03, 0xf4}); // mov rax, [1G + 0x4010]
        m.load(kCode, a.finish());
        m.vcpu->set_state(m.long_mode_state());
        m.run_until_halt(10);
        CHECK(m.cpu().s.gpr[RAX] == 0xabcdef);
        CHECK((m.peek<uint64_t>(kPdpt + 8) & 0x20) != 0); // accessed
    }
    // PSE-36: a 4 MiB page whose PDE bits 20:13 give physical bits 39:32 -> outside RAM: MMIO
    {
        Machine m;
        const uint64_t pd = 0x20000;
        m.poke<uint32_t>(pd, 0x87);                            // 0..4M identity (4 MiB page)
        m.poke<uint32_t>(pd + 4 * 4, 0x00400087 | (1u << 13)); // 16M.. -> phys 0x1_0040_0000
        Asm a(kCode);
        a.b({0xa1}).d32(0x1000010); // mov eax, [0x1000010]
        a.b({0xf4});
        m.load(kCode, a.finish());
        CpuState s = m.long_mode_state();
        s.cr0 = 0x80000011;
        s.cr4 = 0x10;
        s.efer = 0;
        s.cr3 = pd;
        s.seg[CS] = m.gdt_seg(kSelCode32);
        m.vcpu->set_state(s);
        m.run_until_halt(10);
        REQUIRE(m.sink.records.size() == 1);
        CHECK(m.sink.records[0].kind == IoRequest::Kind::Mmio);
        CHECK(m.sink.records[0].addr == 0x100400010ull);
    }
}

TEST_CASE("A20 gate closed: FFFF:0010 wraps to physical 0; opening it takes effect after OUT") {
    struct A20Sink : RecordingSink {
        emu::EmuEngine* engine = nullptr;
        void handle_io(IoRequest& r) override {
            // port 0x92 bit 1 = A20 (System Control Port A)
            if (r.kind == IoRequest::Kind::Pio && r.addr == 0x92 && r.is_write)
                engine->set_a20(r.data[0] & 2);
            RecordingSink::handle_io(r);
        }
    };
    GuestMemory mem;
    uint8_t* ram = mem.allocate(2 << 20, "ram");
    mem.add_region({0, 2 << 20, ram, false, "ram"});
    emu::EmuEngine engine(nullptr);
    engine.map_memory(mem);
    A20Sink sink;
    sink.engine = &engine;
    auto v = engine.create_vcpu(0, sink, nullptr);
    engine.set_a20(false);
    const uint8_t code[] = {
        0xb8, 0xff, 0xff, 0x8e, 0xd8, // mov ax, 0xffff; mov ds, ax
        0xc6, 0x06, 0x10, 0x00, 0x11, // mov byte [0x10], 0x11 -> phys 0 (A20 closed)
        0xb0, 0x02, 0xe6, 0x92,       // mov al, 2; out 0x92, al (open A20)
        0xc6, 0x06, 0x10, 0x00, 0x22, // mov byte [0x10], 0x22 -> phys 0x100000
        0xf4};
    memcpy(ram + 0x7c00, code, sizeof code);
    CpuState s = reset_cpu_state(0);
    s.seg[CS].selector = 0;
    s.seg[CS].base = 0;
    s.rip = 0x7c00;
    v->set_state(s);
    static_cast<emu::EmuVcpu&>(*v).cpu().step_n(20);
    CHECK(ram[0] == 0x11);
    CHECK(ram[0x100000] == 0x22);
    CHECK(engine.a20());
}
