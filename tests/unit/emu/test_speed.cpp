// Throughput of the interpreter on a simple loop (reported, not asserted: the number depends on
// the build type and the machine). Also checks the loop's result so the test can fail.
#include <doctest/doctest.h>

#include <cstdio>
#include <ctime>

#include "tests/unit/emu/emu_harness.hpp"

using namespace emu_test;

TEST_CASE("simple loop throughput") {
    Machine m;
    // Small enough for the sanitizer build to finish in about a second.
    const uint32_t n = 250000;
    Asm a(kCode);
    a.b({0xb9}).d32(n); // mov ecx, n
    a.b({0x31, 0xc0});  // xor eax, eax
    a.label("loop");
    a.b({0x01, 0xc8});                         // add eax, ecx
    a.b({0x48, 0x89, 0x04, 0x25}).d32(0x6000); // mov [0x6000], rax
    a.b({0xff, 0xc9});                         // dec ecx
    a.b({0x75}).rel8("loop");                  // jnz loop
    a.b({0xf4});
    m.load(kCode, a.finish());
    m.vcpu->set_state(m.long_mode_state());
    // Thread CPU time, not wall time: the build machines are shared.
    auto cpu_now = [] {
        timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
    };
    double t0 = cpu_now();
    uint64_t executed = m.run_until_halt(~0ull);
    double secs = cpu_now() - t0;
    uint32_t expect = 0;
    for (uint32_t i = n; i; i--) expect += i;
    CHECK(uint32_t(m.cpu().s.gpr[RAX]) == expect);
    CHECK(executed == 3 + 4ull * n);
    MESSAGE("emu: " << executed << " instructions in " << secs << " s = " << executed / secs / 1e6
                    << " MIPS (thread CPU time)");
}
