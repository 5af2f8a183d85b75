// Differential tests of the MMX/SSE/SSE2/SSE3/SSSE3 (and implemented SSE4.1) instructions: each
// form runs natively on the host and in the emulator on thousands of random operands (NaNs,
// infinities, denormals, zeros, saturation points, random bits), random MXCSR rounding modes,
// DAZ/FZ and sticky flags, random x87 TOP/tags under the MMX forms; every GPR, status flag, byte
// of the FXSAVE image and of the memory operand must match.
#include "tests/unit/emu/test_fpu_common.hpp"

using namespace fpu_test;

namespace {

struct Form {
    const char* bytes; // mandatory prefix (optional) and opcode, e.g. "66 0f fe"
    char regk, rmk;    // x xmm, m mmx, g gpr, e opcode extension in ModRM.reg
    int ext = -1;
    bool imm = false, mem_only = false, reg_only = false, w = false;
};

std::vector<uint8_t> parse(const char* s) {
    std::vector<uint8_t> v;
    while (*s) {
        if (*s == ' ') {
            s++;
            continue;
        }
        v.push_back(uint8_t(strtoul(s, nullptr, 16)));
        s += 2;
    }
    return v;
}

std::vector<Form> forms() {
    std::vector<Form> f;
    auto add = [&](const char* b, char rk, char mk) { f.push_back({b, rk, mk}); };
    // SSE2 integer (66) and the same opcodes as MMX (no prefix)
    static const char* const intops[] = {
        "0f 60",    "0f 61",    "0f 62",    "0f 63",    "0f 64",    "0f 65",    "0f 66",
        "0f 67",    "0f 68",    "0f 69",    "0f 6a",    "0f 6b",    "0f 74",    "0f 75",
        "0f 76",    "0f d1",    "0f d2",    "0f d3",    "0f d4",    "0f d5",    "0f d8",
        "0f d9",    "0f da",    "0f db",    "0f dc",    "0f dd",    "0f de",    "0f df",
        "0f e0",    "0f e1",    "0f e2",    "0f e3",    "0f e4",    "0f e5",    "0f e8",
        "0f e9",    "0f ea",    "0f eb",    "0f ec",    "0f ed",    "0f ee",    "0f ef",
        "0f f1",    "0f f2",    "0f f3",    "0f f4",    "0f f5",    "0f f6",    "0f f8",
        "0f f9",    "0f fa",    "0f fb",    "0f fc",    "0f fd",    "0f fe",    "0f 38 00",
        "0f 38 01", "0f 38 02", "0f 38 03", "0f 38 04", "0f 38 05", "0f 38 06", "0f 38 07",
        "0f 38 08", "0f 38 09", "0f 38 0a", "0f 38 0b", "0f 38 1c", "0f 38 1d", "0f 38 1e"};
    static std::vector<std::string> keep; // storage for the composed strings
    keep.reserve(512);
    for (const char* o : intops) {
        keep.push_back(std::string("66 ") + o);
        add(keep.back().c_str(), 'x', 'x');
        add(o, 'm', 'm');
    }
    for (const char* o :
         {"66 0f 6c",    "66 0f 6d",    "66 0f 38 28", "66 0f 38 29", "66 0f 38 2b", "66 0f 38 37",
          "66 0f 38 38", "66 0f 38 39", "66 0f 38 3a", "66 0f 38 3b", "66 0f 38 3c", "66 0f 38 3d",
          "66 0f 38 3e", "66 0f 38 3f", "66 0f 38 40", "66 0f 38 41", "66 0f 38 20", "66 0f 38 21",
          "66 0f 38 22", "66 0f 38 23", "66 0f 38 24", "66 0f 38 25", "66 0f 38 30", "66 0f 38 31",
          "66 0f 38 32", "66 0f 38 33", "66 0f 38 34", "66 0f 38 35"})
        add(o, 'x', 'x');
    // floating point arithmetic, all prefixes
    for (unsigned op : {0x51, 0x58, 0x59, 0x5a, 0x5c, 0x5d, 0x5e, 0x5f}) {
        for (const char* p : {"", "66 ", "f3 ", "f2 "}) {
            char b[32];
            snprintf(b, sizeof b, "%s0f %02x", p, op);
            keep.push_back(b);
            add(keep.back().c_str(), 'x', 'x');
        }
    }
    for (const char* o :
         {"0f 52", "f3 0f 52", "0f 53", "f3 0f 53", "0f 5b", "66 0f 5b", "f3 0f 5b", "0f 54",
          "66 0f 54", "0f 55", "66 0f 55", "0f 56", "66 0f 56", "0f 57", "66 0f 57", "0f 14",
          "66 0f 14", "0f 15", "66 0f 15", "f2 0f 12", "f3 0f 12", "f3 0f 16", "66 0f 7c",
          "f2 0f 7c", "66 0f 7d", "f2 0f 7d", "66 0f d0", "f2 0f d0", "66 0f e6", "f3 0f e6",
          "f2 0f e6", "0f 2e", "66 0f 2e", "0f 2f", "66 0f 2f",
          // moves
          "0f 10", "66 0f 10", "f3 0f 10", "f2 0f 10", "0f 11", "66 0f 11", "f3 0f 11", "f2 0f 11",
          "0f 28", "66 0f 28", "0f 29", "66 0f 29", "66 0f 6f", "f3 0f 6f", "66 0f 7f", "f3 0f 7f",
          "f3 0f 7e", "66 0f d6"})
        add(o, 'x', 'x');
    for (const char* o : {"0f 12", "0f 16"}) add(o, 'x', 'x'); // MOVLPS/MOVHLPS, MOVHPS/MOVLHPS
    for (const char* o : {"66 0f 12", "66 0f 16", "0f 13", "66 0f 13", "0f 17", "66 0f 17", "0f 2b",
                          "66 0f 2b", "66 0f e7", "f2 0f f0"}) {
        f.push_back({o, 'x', 'x'});
        f.back().mem_only = true;
    }
    // with an immediate
    for (const char* o :
         {"0f c2", "66 0f c2", "f3 0f c2", "f2 0f c2", "0f c6", "66 0f c6", "66 0f 70", "f3 0f 70",
          "f2 0f 70", "66 0f 3a 0f", "66 0f 3a 08", "66 0f 3a 09", "66 0f 3a 0a", "66 0f 3a 0b"}) {
        f.push_back({o, 'x', 'x'});
        f.back().imm = true;
    }
    for (const char* o : {"0f 70", "0f 3a 0f"}) {
        f.push_back({o, 'm', 'm'});
        f.back().imm = true;
    }
    // shift by immediate groups
    for (auto [o, e] : std::initializer_list<std::pair<const char*, int>>{{"0f 71", 2},
                                                                          {"0f 71", 4},
                                                                          {"0f 71", 6},
                                                                          {"0f 72", 2},
                                                                          {"0f 72", 4},
                                                                          {"0f 72", 6},
                                                                          {"0f 73", 2},
                                                                          {"0f 73", 6}}) {
        keep.push_back(std::string("66 ") + o);
        f.push_back({keep.back().c_str(), 'e', 'x', e, true, false, true});
        f.push_back({o, 'e', 'm', e, true, false, true});
    }
    f.push_back({"66 0f 73", 'e', 'x', 3, true, false, true});
    f.push_back({"66 0f 73", 'e', 'x', 7, true, false, true});
    // MMX moves and conversions between MMX and XMM
    for (const char* o : {"0f 6f", "0f 7f"}) add(o, 'm', 'm');
    f.push_back({"0f e7", 'm', 'm', -1, false, true});
    for (const char* o : {"0f 2a", "66 0f 2a"}) add(o, 'x', 'm');
    for (const char* o : {"0f 2c", "0f 2d", "66 0f 2c", "66 0f 2d"}) add(o, 'm', 'x');
    f.push_back({"f3 0f d6", 'x', 'm', -1, false, false, true});
    f.push_back({"f2 0f d6", 'm', 'x', -1, false, false, true});
    // GPR forms
    for (const char* o : {"66 0f 6e", "66 0f 7e"})
        f.push_back({o, 'x', 'g', -1, false, false, false, true});
    for (const char* o : {"0f 6e", "0f 7e"})
        f.push_back({o, 'm', 'g', -1, false, false, false, true});
    for (const char* o : {"f3 0f 2a", "f2 0f 2a"})
        f.push_back({o, 'x', 'g', -1, false, false, false, true});
    for (const char* o : {"f3 0f 2c", "f3 0f 2d", "f2 0f 2c", "f2 0f 2d"})
        f.push_back({o, 'g', 'x', -1, false, false, false, true});
    for (const char* o : {"0f 50", "66 0f 50", "66 0f d7"})
        f.push_back({o, 'g', 'x', -1, false, false, true});
    f.push_back({"0f d7", 'g', 'm', -1, false, false, true});
    f.push_back({"66 0f c5", 'g', 'x', -1, true, false, true});
    f.push_back({"0f c5", 'g', 'm', -1, true, false, true});
    f.push_back({"66 0f c4", 'x', 'g', -1, true});
    f.push_back({"0f c4", 'm', 'g', -1, true});
    f.push_back({"0f c3", 'g', 'g', -1, false, true, false, true});
    // SSE4.1 / SSE4.2
    for (const char* o : {"66 0f 38 10", "66 0f 38 14", "66 0f 38 15", "66 0f 38 17"})
        add(o, 'x', 'x');
    f.push_back({"66 0f 38 2a", 'x', 'x', -1, false, true});
    for (const char* o :
         {"66 0f 3a 0c", "66 0f 3a 0d", "66 0f 3a 0e", "66 0f 3a 21", "66 0f 3a 40", "66 0f 3a 41",
          "66 0f 3a 42", "66 0f 3a 60", "66 0f 3a 61", "66 0f 3a 62", "66 0f 3a 63"}) {
        f.push_back({o, 'x', 'x'});
        f.back().imm = true;
        f.back().w = o[9] == '6'; // PCMPESTRx: REX.W selects RAX/RDX
    }
    for (const char* o : {"66 0f 3a 14", "66 0f 3a 15", "66 0f 3a 16", "66 0f 3a 17"})
        f.push_back({o, 'x', 'g', -1, true, false, false, true});
    for (const char* o : {"66 0f 3a 20", "66 0f 3a 22"})
        f.push_back({o, 'x', 'g', -1, true, false, false, true});
    for (const char* o : {"f2 0f 38 f0", "f2 0f 38 f1", "66 f2 0f 38 f1"})
        f.push_back({o, 'g', 'g', -1, false, false, false, true});
    return f;
}

unsigned pick_reg(Gen& g, char kind) {
    switch (kind) {
    case 'x': return g.below(16);
    case 'm': return g.below(8);
    default:
        for (;;) {
            unsigned r = g.below(16);
            if (r != RSP && r != RSI) return r;
        }
    }
}

std::vector<uint8_t> encode(Gen& g, const Form& f, bool& is_mem) {
    std::vector<uint8_t> op = parse(f.bytes);
    std::vector<uint8_t> out;
    size_t i = 0;
    while (op[i] == 0x66 || op[i] == 0xf2 || op[i] == 0xf3) out.push_back(op[i++]);
    unsigned reg = f.regk == 'e' ? unsigned(f.ext) : pick_reg(g, f.regk);
    is_mem = f.mem_only || (!f.reg_only && g.below(2));
    unsigned rm = is_mem ? 6 : pick_reg(g, f.rmk);
    bool w = f.w && g.below(2);
    uint8_t rex = uint8_t(0x40 | (w ? 8 : 0) | ((reg >> 3) << 2) | (rm >> 3));
    if (rex != 0x40 || g.below(8) == 0) out.push_back(rex);
    for (; i < op.size(); i++) out.push_back(op[i]);
    out.push_back(uint8_t((is_mem ? 0 : 0xc0) | (reg & 7) << 3 | (rm & 7)));
    if (f.imm) out.push_back(uint8_t(g.below(2) ? g.below(72) : g.u64()));
    return out;
}

void random_state(Gen& g, Runner& r) {
    memset(r.fx, 0, sizeof r.fx);
    hvm::emu::fx_put<uint16_t>(r.fx, 0, 0x037f);
    hvm::emu::fx_put<uint16_t>(r.fx, 2, uint16_t(g.below(8) << 11 | (g.u64() & 0x4700)));
    r.fx[4] = uint8_t(g.u64());
    hvm::emu::fx_put<uint32_t>(r.fx, 24, g.mxcsr_masked());
    hvm::emu::fx_put<uint32_t>(r.fx, 28, 0xffff);
    for (unsigned i = 0; i < 8; i++) {
        uint64_t m = g.below(2) ? g.u64() : (uint64_t(g.f32()) << 32 | g.f32());
        hvm::emu::fx_put<uint64_t>(r.fx, 32 + 16 * i, m);
        hvm::emu::fx_put<uint16_t>(r.fx, 40 + 16 * i, g.below(2) ? 0xffff : uint16_t(g.u64()));
    }
    for (unsigned i = 0; i < 16; i++) g.xmm(r.fx + 160 + 16 * i);
    for (unsigned i = 0; i < 16; i++) r.gpr[i] = g.below(4) ? g.u64() : g.f32();
    r.flags = g.u64() & 0x8d5;
    for (unsigned i = 0; i < sizeof r.mem; i += 16) g.xmm(r.mem + i);
    // PCMPESTRx lengths: mostly in or near range, negative ones included
    for (unsigned reg : {unsigned(RAX), unsigned(RDX)})
        if (g.below(4)) r.gpr[reg] = uint64_t(int64_t(g.below(41)) - 20);
}

void fx_put_rand(Gen& g, uint8_t* p) {
    uint64_t v = g.u64();
    memcpy(p, &v, 8);
}

} // namespace

TEST_CASE("SSE/MMX instructions match the host CPU") {
    Runner r;
    Gen g(12345);
    unsigned failures = 0, checked = 0;
    const unsigned kIters = 300;
    for (const Form& f : forms()) {
        unsigned form_fail = 0;
        for (unsigned it = 0; it < kIters && form_fail < 2; it++) {
            bool is_mem;
            std::vector<uint8_t> insn = encode(g, f, is_mem);
            random_state(g, r);
            Runner::Out h, e;
            r.run_host(insn, h);
            r.run_emu(insn, e);
            std::string why;
            if (e.vector >= 0) why += "exception " + std::to_string(e.vector) + "; ";
            for (unsigned i = 0; i < 16; i++)
                if (i != RSP && h.gpr[i] != e.gpr[i]) why += "gpr" + std::to_string(i) + "; ";
            if (h.flags != e.flags) why += "flags; ";
            for (unsigned i = 0; i < 416; i++) {
                if (h.fx[i] != e.fx[i]) {
                    why += "fx byte " + std::to_string(i) + " host " +
                           hexbytes(h.fx + (i & ~15u), 16) + " emu " +
                           hexbytes(e.fx + (i & ~15u), 16) + "; ";
                    break;
                }
            }
            if (memcmp(h.mem, e.mem, sizeof h.mem)) why += "memory; ";
            checked++;
            if (!why.empty()) {
                form_fail++;
                failures++;
                MESSAGE("form " << f.bytes << " insn [" << hex(insn) << "]: " << why << " mxcsr in "
                                << std::hex << hvm::emu::fx_get<uint32_t>(r.fx, 24));
            }
        }
    }
    MESSAGE("checked " << checked << " instruction executions");
    CHECK(failures == 0);
}

// Guest-controlled opcodes, operands and state (inconsistent images included) must never reach
// the host as a trap: every instruction either runs or raises a guest exception.
TEST_CASE("random x87/MMX/SSE encodings and states never fault the host") {
    Runner r;
    Gen g(2024);
    unsigned ran = 0, faulted = 0;
    r.check_rip = false;
    for (unsigned it = 0; it < 5000; it++) {
        std::vector<uint8_t> insn;
        switch (g.below(4)) {
        case 0: insn.push_back(0x66); break;
        case 1: insn.push_back(g.below(2) ? 0xf2 : 0xf3); break;
        default: break;
        }
        if (g.below(3) == 0) insn.push_back(uint8_t(0x40 | g.below(16)));
        unsigned kind = g.below(4);
        if (kind == 0) {
            insn.push_back(uint8_t(0xd8 + g.below(8)));
        } else {
            insn.push_back(0x0f);
            if (kind == 2) insn.push_back(0x38);
            if (kind == 3) insn.push_back(0x3a);
            insn.push_back(uint8_t(g.u64()));
        }
        // ModRM: registers, or [rsi] (the data buffer)
        insn.push_back(g.below(2) ? uint8_t(0xc0 | g.below(64)) : uint8_t(g.below(8) << 3 | 6));
        insn.push_back(uint8_t(g.u64())); // an immediate, or padding the HLT skips
        if (g.below(2)) {
            for (unsigned i = 0; i < 512; i += 8) fx_put_rand(g, r.fx + i); // anything
        } else {
            random_state(g, r); // a state a real CPU could have
        }
        for (unsigned i = 0; i < 16; i++) r.gpr[i] = g.u64();
        for (unsigned i = 0; i < sizeof r.mem; i += 16) g.xmm(r.mem + i);
        CpuState saved = r.base;
        if (g.below(4) == 0) r.base.cr0 ^= uint64_t(g.below(16)) << 1; // MP EM TS ET
        if (g.below(4) == 0) r.base.cr4 ^= uint64_t(g.below(4)) << 9;  // OSFXSR OSXMMEXCPT
        Runner::Out o;
        r.run_emu(insn, o);
        r.base = saved;
        (o.vector >= 0 ? faulted : ran)++;
        CHECK(r.m.cpu().error.empty());
    }
    MESSAGE("ran " << ran << ", guest exceptions " << faulted);
}
