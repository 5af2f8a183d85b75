// Differential tests of the x87 instructions: every valid D8-DF register form and every memory
// form (loads, stores, integer/BCD conversions, environment and save/restore in the 64-bit
// layout) runs natively and in the emulator on random stacks (TOP, tags, zeros, denormals,
// pseudo-denormals, unnormals, infinities, NaNs, integers), random precision/rounding control
// and exception masks (unmasked exceptions included: they stay pending as ES). The FXSAVE image
// (but the instruction/data pointers and opcode, which record the host's own addresses), the
// flags (FCOMI, FCMOVcc), RAX (FNSTSW AX) and memory must match.
#include "tests/unit/emu/test_fpu_common.hpp"

using namespace fpu_test;
using hvm::emu::fx_get;
using hvm::emu::fx_put;

namespace {

// Register forms that raise #UD (kept apart from the emulator's own table on purpose: this is
// the SDM's opcode map, appendix A.5).
bool invalid_reg_form(unsigned op, unsigned m) {
    switch (op) {
    case 0xd9:
        return (m >= 0xd1 && m <= 0xd7) || m == 0xe2 || m == 0xe3 || m == 0xe6 || m == 0xe7 ||
               m == 0xef;
    case 0xda: return m >= 0xe0 && m != 0xe9;
    case 0xdd: return m >= 0xf0;
    case 0xdb: return (m >= 0xe5 && m <= 0xe7) || m >= 0xf8;
    case 0xde: return m == 0xd8 || (m >= 0xda && m <= 0xdf);
    case 0xdf: return (m >= 0xe1 && m <= 0xe7) || m >= 0xf8;
    default: return false;
    }
}

bool invalid_mem_form(unsigned op, unsigned r) {
    return (op == 0xd9 && r == 1) || (op == 0xdb && (r == 4 || r == 6)) || (op == 0xdd && r == 5);
}

void random_ext(Gen& g, uint8_t* p) {
    uint64_t mant;
    uint16_t se;
    const uint16_t sign = g.below(2) ? 0x8000 : 0;
    switch (g.below(12)) {
    case 0: mant = 0, se = 0; break;                            // zero
    case 1: mant = g.u64() >> (1 + g.below(60)), se = 0; break; // denormal
    case 2: mant = (g.u64() | (1ull << 63)), se = 0; break;     // pseudo-denormal
    case 3: mant = 1ull << 63, se = 0x7fff; break;              // infinity
    case 4: mant = (3ull << 62) | (g.u64() >> 2 >> g.below(60)), se = 0x7fff; break; // QNaN
    case 5: mant = (1ull << 63) | ((g.u64() >> 2) | 1), se = 0x7fff; break;          // SNaN
    case 6: mant = g.u64() >> 1, se = uint16_t(1 + g.below(0x7ffe)); break;          // unnormal
    case 7: { // small integer
        int64_t v = int64_t(g.u64() % 20000) - 10000;
        long double d = (long double)(v) / (g.below(2) ? 1 : 4);
        memcpy(p, &d, 10);
        return;
    }
    case 8: mant = g.u64() | (1ull << 63), se = uint16_t(g.below(0x7fff)); break; // any normal
    case 9: mant = g.u64() | (1ull << 63), se = uint16_t(0x3fff - 64 + g.below(200)); break;
    case 10:
        mant = g.u64() | (1ull << 63),
        se = uint16_t(g.below(2) ? g.below(70) : 0x7ffe - g.below(70));
        break;
    default: mant = g.u64() | (1ull << 63), se = uint16_t(0x3fff - 3 + g.below(6)); break;
    }
    se |= sign;
    memcpy(p, &mant, 8);
    memcpy(p + 8, &se, 2);
}

void random_x87_state(Gen& g, Runner& r) {
    memset(r.fx, 0, sizeof r.fx);
    uint16_t fcw = uint16_t(0x40 | (g.below(4) << 8) | (g.below(4) << 10));
    fcw |= g.below(4) ? 0x3f : uint16_t(g.u64() & 0x3f);
    uint16_t fsw = uint16_t(g.below(8) << 11 | (g.u64() & 0x4700));
    fsw |= uint16_t(g.u64() & fcw & 0x3f); // only masked flags: nothing pending
    if ((fsw & 1) && g.below(2)) fsw |= 0x40;
    fx_put<uint16_t>(r.fx, 0, fcw);
    fx_put<uint16_t>(r.fx, 2, fsw);
    r.fx[4] = g.below(4) ? uint8_t(g.u64()) : (g.below(2) ? 0xff : 0);
    fx_put<uint32_t>(r.fx, 24, 0x1f80);
    fx_put<uint32_t>(r.fx, 28, 0xffff);
    for (unsigned i = 0; i < 8; i++) random_ext(g, r.fx + 32 + 16 * i);
    for (unsigned i = 0; i < 16; i++) g.xmm(r.fx + 160 + 16 * i);
    for (unsigned i = 0; i < 16; i++) r.gpr[i] = g.u64();
    r.flags = g.u64() & 0x8d5;
}

void random_memory(Gen& g, Runner& r, unsigned op, unsigned rr) {
    for (unsigned i = 0; i < sizeof r.mem; i += 16) g.xmm(r.mem + i);
    switch (op) {
    case 0xd8: {
        uint32_t v = g.f32();
        memcpy(r.mem, &v, 4);
        break;
    }
    case 0xdc: {
        uint64_t v = g.f64();
        memcpy(r.mem, &v, 8);
        break;
    }
    case 0xd9:
        if (rr == 0) {
            uint32_t v = g.f32();
            memcpy(r.mem, &v, 4);
        } else if (rr == 4) { // FLDENV: a plausible environment
            fx_put<uint16_t>(r.mem, 0, uint16_t(g.u64()));
            fx_put<uint16_t>(r.mem, 4, uint16_t(g.u64()));
            fx_put<uint16_t>(r.mem, 8, g.below(2) ? uint16_t(g.u64()) : 0xffff);
        } else if (rr == 5) { // FLDCW
            fx_put<uint16_t>(r.mem, 0, uint16_t(g.u64()));
        }
        break;
    case 0xdd:
        if (rr == 0) {
            uint64_t v = g.f64();
            memcpy(r.mem, &v, 8);
        } else if (rr == 4) {
            fx_put<uint16_t>(r.mem, 0, uint16_t(g.u64()));
            fx_put<uint16_t>(r.mem, 4, uint16_t(g.u64()));
            fx_put<uint16_t>(r.mem, 8, uint16_t(g.u64()));
            for (unsigned i = 0; i < 8; i++) random_ext(g, r.mem + 28 + 10 * i);
        }
        break;
    case 0xdb:
        if (rr == 5) random_ext(g, r.mem);
        break;
    case 0xdf:
        if (rr == 4) { // FBLD: mostly valid packed BCD
            for (unsigned i = 0; i < 9; i++)
                r.mem[i] = g.below(8) ? uint8_t(g.below(10) << 4 | g.below(10)) : uint8_t(g.u64());
            r.mem[9] = g.below(2) ? 0x80 : 0;
        }
        break;
    default: break;
    }
}

struct Tally {
    unsigned checked = 0, failures = 0;
};

void compare(Runner& r, const std::vector<uint8_t>& insn, unsigned env_mask_lo,
             unsigned env_mask_hi, Tally& t, unsigned& form_fail) {
    Runner::Out h, e;
    r.run_host(insn, h);
    r.run_emu(insn, e);
    std::string why;
    if (e.vector >= 0) why += "exception " + std::to_string(e.vector) + "; ";
    for (unsigned i = 0; i < 16; i++)
        if (i != RSP && h.gpr[i] != e.gpr[i]) why += "gpr" + std::to_string(i) + "; ";
    if (h.flags != e.flags) why += "flags; ";
    for (unsigned i = 0; i < 160; i++) {
        if (i >= 6 && i < 24) continue; // FOP, FIP, FDP: the host's own
        if (h.fx[i] != e.fx[i]) {
            why += "fx byte " + std::to_string(i) + " host " + hexbytes(h.fx + (i & ~15u), 16) +
                   " emu " + hexbytes(e.fx + (i & ~15u), 16) + "; ";
            break;
        }
    }
    for (unsigned i = 0; i < sizeof h.mem; i++) {
        if (i >= env_mask_lo && i < env_mask_hi) continue;
        if (h.mem[i] != e.mem[i]) {
            why += "memory byte " + std::to_string(i) + " host " + hexbytes(h.mem, 16) + " emu " +
                   hexbytes(e.mem, 16) + "; ";
            break;
        }
    }
    t.checked++;
    if (!why.empty()) {
        form_fail++;
        t.failures++;
        std::string msg = std::string("insn [") + hex(insn) + "]: " + why +
                          " in: " + hexbytes(r.fx, 48) + " st0 " + hexbytes(r.fx + 32, 10) +
                          " st1 " + hexbytes(r.fx + 48, 10);
        MESSAGE(msg);
    }
}

} // namespace

TEST_CASE("x87 register forms match the host CPU") {
    Runner r;
    Gen g(777);
    Tally t;
    for (unsigned op = 0xd8; op <= 0xdf; op++) {
        for (unsigned m = 0xc0; m <= 0xff; m++) {
            if (invalid_reg_form(op, m)) continue;
            unsigned form_fail = 0;
            for (unsigned it = 0; it < 60 && form_fail < 2; it++) {
                random_x87_state(g, r);
                compare(r, {uint8_t(op), uint8_t(m)}, 0, 0, t, form_fail);
            }
        }
    }
    MESSAGE("checked " << t.checked);
    CHECK(t.failures == 0);
}

TEST_CASE("x87 memory forms match the host CPU") {
    Runner r;
    Gen g(4242);
    Tally t;
    for (unsigned op = 0xd8; op <= 0xdf; op++) {
        for (unsigned rr = 0; rr < 8; rr++) {
            if (invalid_mem_form(op, rr)) continue;
            // FNSTENV/FNSAVE write the host's instruction and data pointers (bytes 12-27)
            bool env = (op == 0xd9 && rr == 6) || (op == 0xdd && rr == 6);
            unsigned form_fail = 0;
            for (unsigned it = 0; it < 300 && form_fail < 2; it++) {
                random_x87_state(g, r);
                random_memory(g, r, op, rr);
                bool rex = g.below(2);
                std::vector<uint8_t> insn;
                if (rex) insn.push_back(0x48); // REX.W changes nothing for x87
                insn.push_back(uint8_t(op));
                insn.push_back(uint8_t(rr << 3 | 6)); // [rsi]
                compare(r, insn, env ? 12 : 0, env ? 28 : 0, t, form_fail);
            }
        }
    }
    MESSAGE("checked " << t.checked);
    CHECK(t.failures == 0);
}

TEST_CASE("x87 reserved forms raise #UD") {
    Runner r;
    Gen g(1);
    for (unsigned op = 0xd8; op <= 0xdf; op++) {
        for (unsigned m = 0xc0; m <= 0xff; m++) {
            if (!invalid_reg_form(op, m)) continue;
            random_x87_state(g, r);
            Runner::Out e;
            r.run_emu({uint8_t(op), uint8_t(m)}, e);
            CHECK(e.vector == 6);
        }
    }
}
