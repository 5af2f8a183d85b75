// Robustness: random instruction bytes and random register values in every mode must never crash
// hvm, trip a sanitizer, or escape run() with an exception. Whatever the guest does ends as a
// guest exception, a halt, a shutdown or an InternalError for something not implemented.
#include <doctest/doctest.h>

#include <random>

#include "base/log.hpp"
#include "tests/unit/emu/emu_harness.hpp"

using namespace emu_test;

namespace {
enum class Mode { Real, Prot32, Long64, User64 };

CpuState state_for(Machine& m, Mode mode) {
    CpuState s;
    switch (mode) {
    case Mode::Real: s = m.real_mode_state(); break;
    case Mode::Prot32:
        s = m.long_mode_state();
        s.cr0 = 0x11;
        s.cr4 = 0;
        s.efer = 0;
        s.seg[CS] = m.gdt_seg(kSelCode32);
        s.seg[TR].type = 11;
        s.idt.limit = 0x7ff;
        break;
    case Mode::Long64: s = m.long_mode_state(); break;
    case Mode::User64:
        s = m.long_mode_state();
        s.seg[CS] = m.gdt_seg(kSelUCode64);
        s.seg[SS] = m.gdt_seg(kSelUData);
        break;
    }
    return s;
}
} // namespace

TEST_CASE("random code in every mode never crashes the emulator") {
    // The #UD reports are expected here; keep the test output readable.
    LogLevel saved = log_level();
    set_log_level(LogLevel::Error);
    std::mt19937_64 rng(777);
    const Mode modes[] = {Mode::Real, Mode::Prot32, Mode::Long64, Mode::User64};
    int programs = 0, shutdowns = 0;
    for (Mode mode : modes) {
        Machine m;
        for (int round = 0; round < 1000; round++) {
            // Half of the rounds: an IDT of random bytes (delivery must fail safely); the other
            // half: valid gates into more random code, so execution goes on after exceptions.
            if (round % 2 == 0) {
                for (int i = 0; i < 0x1000; i++) m.ram[kIdt + i] = uint8_t(rng());
            } else {
                for (unsigned v = 0; v < 256; v++) {
                    if (mode == Mode::Long64 || mode == Mode::User64) {
                        m.set_gate64(v, kCode + 0x40 + (rng() % 64), 3, unsigned(rng() % 2));
                    } else if (mode == Mode::Prot32) {
                        uint32_t h = uint32_t(kCode + 0x40 + (rng() % 64));
                        m.poke<uint64_t>(kIdt + v * 8, (h & 0xffff) | (uint64_t(kSelCode32) << 16) |
                                                           (14ull << 40) | (3ull << 45) |
                                                           (1ull << 47) |
                                                           (uint64_t(h >> 16) << 48));
                    } else {
                        m.poke<uint32_t>(v * 4, uint32_t(0x7c40 + rng() % 64));
                    }
                }
            }
            uint64_t code = mode == Mode::Real ? 0x7c00 : kCode;
            for (int i = 0; i < 128; i++) {
                uint8_t b = uint8_t(rng());
                // bias towards prefixes and the two-byte escape
                if (rng() % 8 == 0) b = "\x66\x67\xf0\xf2\xf3\x0f\x48\x26"[rng() % 8];
                m.ram[code + i] = b;
            }
            CpuState s = state_for(m, mode);
            for (int i = 0; i < 16; i++) {
                if (i == RSP) continue;
                switch (rng() % 4) {
                case 0: s.gpr[i] = rng(); break;
                case 1: s.gpr[i] = rng() % 0x400000; break;
                case 2: s.gpr[i] = 0xfed00000 + rng() % 0x1000; break;
                default: s.gpr[i] = rng() % 64; break;
                }
            }
            s.gpr[RCX] &= 0x3f; // keep REP loops short so the test stays fast
            s.rflags = 2 | (rng() & 0xcd5);
            m.vcpu->set_state(s);
            m.cpu().error.clear();
            m.cpu().step_n(256);
            programs++;
            if (m.cpu().shut_down()) shutdowns++;
        }
    }
    set_log_level(saved);
    CHECK(programs == 4000);
    MESSAGE("programs: " << programs << ", ended in triple fault: " << shutdowns);
}
