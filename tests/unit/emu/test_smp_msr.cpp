// Two vCPUs on one guest RAM: LOCKed read-modify-writes and XCHG are atomic across host threads.
// MSR and CPUID behaviour a kernel relies on.
#include <doctest/doctest.h>

#include <thread>

#include "tests/unit/emu/emu_harness.hpp"
#include "vcpu/emu/cpuid_model.hpp"

using namespace emu_test;

TEST_CASE("LOCK ADD, LOCK XADD and XCHG spinlocks are atomic across vCPUs") {
    Machine m;
    auto v1 = m.engine.create_vcpu(1, m.sink, nullptr);
    const uint32_t n = 20000;
    Asm a(kCode);
    a.b({0xb9}).d32(n); // mov ecx, n
    a.label("loop");
    a.b({0xf0, 0x48, 0x83, 0x04, 0x25}).d32(0x6000).b({0x01}); // lock add qword [0x6000], 1
    a.b({0xba, 0x01, 0x00, 0x00, 0x00});                       // mov edx, 1
    a.b({0xf0, 0x0f, 0xc1, 0x14, 0x25}).d32(0x6008);           // lock xadd [0x6008], edx
    // spinlock around a plain increment of [0x6010]
    a.label("spin");
    a.b({0xb8, 0x01, 0x00, 0x00, 0x00});        // mov eax, 1
    a.b({0x87, 0x04, 0x25}).d32(0x6018);        // xchg [0x6018], eax
    a.b({0x85, 0xc0, 0x75}).rel8("spin");       // test eax, eax; jnz spin
    a.b({0xff, 0x04, 0x25}).d32(0x6010);        // inc dword [0x6010]
    a.b({0xc7, 0x04, 0x25}).d32(0x6018).d32(0); // mov dword [0x6018], 0
    a.b({0xff, 0xc9, 0x75}).rel8("loop");       // dec ecx; jnz loop
    a.b({0xf4});
    m.load(kCode, a.finish());
    m.vcpu->set_state(m.long_mode_state());
    v1->set_state(m.long_mode_state());
    auto& c1 = static_cast<emu::EmuVcpu&>(*v1).cpu();
    std::thread t([&] { c1.step_n(~0ull); });
    m.cpu().step_n(~0ull);
    t.join();
    CHECK(m.peek<uint64_t>(0x6000) == 2 * n);
    CHECK(m.peek<uint32_t>(0x6008) == 2 * n);
    CHECK(m.peek<uint32_t>(0x6010) == 2 * n);
}

TEST_CASE("MSRs: EFER checks, unknown MSRs #GP, APIC base goes to the interrupt controller") {
    FakeInterrupts irq;
    Machine m(&irq);
    Asm a(kCode);
    // rdmsr 0x1b -> [0x6000]
    a.b({0xb9}).d32(0x1b).b({0x0f, 0x32, 0x89, 0x04, 0x25}).d32(0x6000);
    // wrmsr 0x1b = 0xfec00900
    a.b({0xb8}).d32(0xfec00900).b({0x31, 0xd2, 0x0f, 0x30});
    // wrmsr EFER with a reserved bit -> #GP (handler counts)
    a.b({0xb9}).d32(0xc0000080).b({0xb8}).d32(0xd01 | 0x10000).b({0x0f, 0x30});
    // rdmsr of an MSR that does not exist -> #GP
    a.b({0xb9}).d32(0x12345).b({0x0f, 0x32});
    // mov cr8, rax (TPR) with rax = 5
    a.b({0xb8}).d32(5).b({0x44, 0x0f, 0x22, 0xc0});
    a.b({0xf4});
    a.label("gp");
    m.load(kCode, a.finish());
    // #GP handler: pop the error code, skip the 2-byte WRMSR/RDMSR, return.
    Asm h(a.addr("gp"));
    h.b({0xff, 0x04, 0x25}).d32(0x6100); // inc dword [0x6100]
    h.b({0x58});                         // pop rax (error code)
    h.b({0x48, 0x83, 0x04, 0x24, 0x02}); // add qword [rsp], 2
    h.b({0x48, 0xcf});                   // iretq
    m.load(a.addr("gp"), h.finish());
    m.set_gate64(13, a.addr("gp"));
    m.vcpu->set_state(m.long_mode_state());
    m.run_until_halt(200);
    CHECK(m.peek<uint32_t>(0x6000) == 0xfee00900);
    CHECK(irq.apic_base == 0xfec00900);
    CHECK(m.peek<uint32_t>(0x6100) == 2);
    CHECK(irq.tpr_value == 5);
    CHECK(m.cpu().s.efer == 0xd01);
}

TEST_CASE("CPUID presents the documented model") {
    auto l0 = emu::cpuid_model(0, 0, 0);
    char vendor[13] = {};
    memcpy(vendor, &l0.ebx, 4);
    memcpy(vendor + 4, &l0.edx, 4);
    memcpy(vendor + 8, &l0.ecx, 4);
    CHECK(std::string(vendor) == "GenuineIntel");
    auto l1 = emu::cpuid_model(1, 0, 3);
    CHECK((l1.ebx >> 24) == 3);        // APIC ID
    CHECK((l1.edx & (1u << 6)) != 0);  // PAE
    CHECK((l1.edx & (1u << 11)) != 0); // SEP
    CHECK((l1.ecx & (1u << 13)) != 0); // CX16
    CHECK(((l1.edx & 1) != 0) == emu::fpu_sse_implemented());
    auto e1 = emu::cpuid_model(0x80000001, 0, 0);
    CHECK((e1.edx & (1u << 29)) != 0); // LM
    CHECK((e1.edx & (1u << 20)) != 0); // NX
    CHECK(emu::cpuid_model(0x80000008, 0, 0).eax == 0x3028);
}

TEST_CASE("an AP given the reset state waits for SIPI; the BSP runs it") {
    FakeInterrupts irq;
    Machine m;
    auto ap = m.engine.create_vcpu(1, m.sink, &irq);
    auto& apc = static_cast<emu::EmuVcpu&>(*ap).cpu();
    ap->set_state(reset_cpu_state(1));
    CHECK(apc.waiting_for_sipi());
    CpuState s;
    ap->get_state(s);
    CHECK(s.halted);
    m.vcpu->set_state(reset_cpu_state(0));
    CHECK(!m.cpu().waiting_for_sipi());
    ap->set_state(m.long_mode_state());
    CHECK(!apc.waiting_for_sipi());
}
