// The x87/SSE state instructions and the rules that guard the unit: FXSAVE/FXRSTOR (both forms)
// and LDMXCSR/STMXCSR against the host, the CR0.EM/TS/MP and CR4.OSFXSR/OSXMMEXCPT faults,
// alignment #GP, reserved MXCSR bits, unmasked SIMD exceptions (#XM / #UD, destination kept),
// deferred x87 exceptions (#MF at the next waiting instruction), MMX mode and EMMS, the 16-bit
// real-mode FNSTENV layout and CPUID.
#include "tests/unit/emu/test_fpu_common.hpp"
#include "vcpu/emu/cpuid_model.hpp"

using namespace fpu_test;
using hvm::emu::fx_get;
using hvm::emu::fx_put;

namespace {

void random_image(Gen& g, uint8_t* fx) {
    for (unsigned i = 0; i < 512; i += 16) g.xmm(fx + i);
    // What a real FXSAVE can produce: FCW reserved bits as hardware keeps them, canonical
    // 64-bit instruction and data pointers.
    fx_put<uint16_t>(fx, 0, uint16_t((g.u64() & 0x1f3f) | 0x7f));
    fx_put<uint64_t>(fx, 8, uint64_t(int64_t(g.u64() << 16) >> 16));
    fx_put<uint64_t>(fx, 16, uint64_t(int64_t(g.u64() << 16) >> 16));
    fx_put<uint16_t>(fx, 2, uint16_t(g.u64() & 0x7f7f & ~0x80)); // nothing pending
    fx[5] = 0;
    fx_put<uint16_t>(fx, 6, uint16_t(g.u64() & 0x7ff));
    fx_put<uint32_t>(fx, 24, g.mxcsr_masked());
    fx_put<uint32_t>(fx, 28, 0xffff);
    for (unsigned i = 0; i < 8; i++) memset(fx + 32 + 16 * i + 10, 0, 6);
}

bool same_except(const uint8_t* a, const uint8_t* b, size_t n, std::string& why) {
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            why = "byte " + std::to_string(i) + " host " + hexbytes(a + (i & ~15u), 16) + " emu " +
                  hexbytes(b + (i & ~15u), 16);
            return false;
        }
    }
    return true;
}

} // namespace

TEST_CASE("FXSAVE, FXRSTOR, LDMXCSR and STMXCSR match the host") {
    Runner r;
    Gen g(99);
    struct F {
        std::vector<uint8_t> insn;
        const char* what;
    };
    const F forms[] = {{{0x0f, 0xae, 0x06}, "FXSAVE"},  {{0x48, 0x0f, 0xae, 0x06}, "FXSAVE64"},
                       {{0x0f, 0xae, 0x0e}, "FXRSTOR"}, {{0x48, 0x0f, 0xae, 0x0e}, "FXRSTOR64"},
                       {{0x0f, 0xae, 0x16}, "LDMXCSR"}, {{0x0f, 0xae, 0x1e}, "STMXCSR"}};
    unsigned failures = 0;
    for (const F& f : forms) {
        for (unsigned it = 0; it < 200; it++) {
            random_image(g, r.fx);
            for (unsigned i = 0; i < 16; i++) r.gpr[i] = g.u64();
            for (unsigned i = 0; i < sizeof r.mem; i += 16) g.xmm(r.mem + i);
            random_image(g, r.mem);                       // FXRSTOR source: a valid image
            fx_put<uint32_t>(r.mem, 0, g.mxcsr_masked()); // LDMXCSR source
            if (f.insn.back() == 0x16) fx_put<uint32_t>(r.mem, 0, g.mxcsr_masked());
            Runner::Out h, e;
            r.run_host(f.insn, h);
            r.run_emu(f.insn, e);
            std::string why;
            bool ok = e.vector < 0 && same_except(h.fx, e.fx, 416, why) &&
                      same_except(h.mem, e.mem, sizeof h.mem, why);
            if (!ok) {
                failures++;
                std::string msg =
                    std::string(f.what) + ": " + why + " vector " + std::to_string(e.vector);
                MESSAGE(msg);
                break;
            }
        }
    }
    CHECK(failures == 0);
}

namespace {

// Runs `insn` in the emulator with the given CR0/CR4 and returns the vector raised (-1: none).
int fault_of(Runner& r, const std::vector<uint8_t>& insn, uint64_t cr0, uint64_t cr4,
             Runner::Out* out = nullptr) {
    CpuState saved = r.base;
    r.base.cr0 = cr0;
    r.base.cr4 = cr4;
    Runner::Out o;
    r.run_emu(insn, o);
    r.base = saved;
    if (out) *out = o;
    return o.vector;
}

} // namespace

TEST_CASE("CR0.EM/TS/MP and CR4.OSFXSR decide #UD and #NM") {
    Runner r;
    memset(r.fx, 0, sizeof r.fx);
    fx_put<uint16_t>(r.fx, 0, 0x37f);
    fx_put<uint32_t>(r.fx, 24, 0x1f80);
    const uint64_t cr0 = r.base.cr0, cr4 = r.base.cr4;
    const uint64_t EM = hvm::emu::kCr0EM, TS = hvm::emu::kCr0TS, MP = hvm::emu::kCr0MP;
    const uint64_t OSFXSR = hvm::emu::kCr4OsFxsr;
    const std::vector<uint8_t> addps = {0x0f, 0x58, 0xc1}, paddb_mmx = {0x0f, 0xfc, 0xc1},
                               fadd = {0xd8, 0xc1}, fxsave = {0x0f, 0xae, 0x06}, fwait = {0x9b},
                               ldmxcsr = {0x0f, 0xae, 0x16};
    fx_put<uint32_t>(r.mem, 0, 0x1f80);
    CHECK(fault_of(r, addps, cr0, cr4) == -1);
    CHECK(fault_of(r, addps, cr0 | TS, cr4) == 7);
    CHECK(fault_of(r, addps, cr0 | EM, cr4) == 6);
    CHECK(fault_of(r, addps, cr0 | EM | TS, cr4) == 6); // #UD wins over #NM
    CHECK(fault_of(r, addps, cr0, cr4 & ~OSFXSR) == 6);
    CHECK(fault_of(r, ldmxcsr, cr0, cr4 & ~OSFXSR) == 6);
    CHECK(fault_of(r, paddb_mmx, cr0, cr4 & ~OSFXSR) == -1); // MMX does not need OSFXSR
    CHECK(fault_of(r, paddb_mmx, cr0 | EM, cr4) == 6);
    CHECK(fault_of(r, paddb_mmx, cr0 | TS, cr4) == 7);
    CHECK(fault_of(r, fadd, cr0 | EM, cr4) == 7); // x87: EM means "emulate": #NM
    CHECK(fault_of(r, fadd, cr0 | TS, cr4) == 7);
    CHECK(fault_of(r, fadd, cr0, cr4 & ~OSFXSR) == -1);
    CHECK(fault_of(r, fxsave, cr0 | TS, cr4) == 7);
    CHECK(fault_of(r, fxsave, cr0 | EM, cr4) == 7);
    CHECK(fault_of(r, fwait, (cr0 | TS) & ~MP, cr4) == -1); // WAIT faults only with MP and TS
    CHECK(fault_of(r, fwait, cr0 | TS | MP, cr4) == 7);
}

TEST_CASE("alignment and reserved MXCSR bits raise #GP") {
    Runner r;
    memset(r.fx, 0, sizeof r.fx);
    fx_put<uint32_t>(r.fx, 24, 0x1f80);
    const uint64_t cr0 = r.base.cr0, cr4 = r.base.cr4;
    // [rsi + 8]: misaligned for 16-byte operands
    CHECK(fault_of(r, {0x0f, 0x28, 0x46, 0x08}, cr0, cr4) == 13);       // MOVAPS
    CHECK(fault_of(r, {0x0f, 0x10, 0x46, 0x08}, cr0, cr4) == -1);       // MOVUPS
    CHECK(fault_of(r, {0x66, 0x0f, 0xfe, 0x46, 0x08}, cr0, cr4) == 13); // PADDD
    CHECK(fault_of(r, {0x0f, 0x58, 0x46, 0x08}, cr0, cr4) == 13);       // ADDPS
    CHECK(fault_of(r, {0xf3, 0x0f, 0x58, 0x46, 0x08}, cr0, cr4) == -1); // ADDSS m32
    CHECK(fault_of(r, {0xf2, 0x0f, 0xf0, 0x46, 0x08}, cr0, cr4) == -1); // LDDQU
    CHECK(fault_of(r, {0x0f, 0xae, 0x46, 0x08}, cr0, cr4) == 13);       // FXSAVE
    CHECK(fault_of(r, {0x0f, 0xae, 0x4e, 0x08}, cr0, cr4) == 13);       // FXRSTOR
    // Reserved MXCSR bits: LDMXCSR and FXRSTOR #GP and change nothing.
    fx_put<uint32_t>(r.mem, 0, 0x11f80);
    Runner::Out o;
    CHECK(fault_of(r, {0x0f, 0xae, 0x16}, cr0, cr4, &o) == 13);
    CHECK(fx_get<uint32_t>(o.fx, 24) == 0x1f80);
    memset(r.mem, 0, 512);
    fx_put<uint32_t>(r.mem, 24, 0x10000);
    CHECK(fault_of(r, {0x0f, 0xae, 0x0e}, cr0, cr4, &o) == 13);
    CHECK(fx_get<uint32_t>(o.fx, 24) == 0x1f80);
    fx_put<uint32_t>(r.mem, 24, 0xffff); // every defined bit, DAZ included, loads
    CHECK(fault_of(r, {0x0f, 0xae, 0x0e}, cr0, cr4, &o) == -1);
    CHECK(fx_get<uint32_t>(o.fx, 24) == 0xffff);
}

TEST_CASE("unmasked SIMD exceptions raise #XM (or #UD) and keep the destination") {
    Runner r;
    memset(r.fx, 0, sizeof r.fx);
    fx_put<uint32_t>(r.fx, 24, 0x1f80 & ~0x200); // divide-by-zero unmasked
    float one[4] = {1, 2, 3, 4}, zero[4] = {0, 1, 1, 1};
    memcpy(r.fx + 160, one, 16);
    memcpy(r.fx + 176, zero, 16);
    const std::vector<uint8_t> divps = {0x0f, 0x5e, 0xc1};
    Runner::Out o;
    CHECK(fault_of(r, divps, r.base.cr0, r.base.cr4, &o) == 19);
    CHECK(memcmp(o.fx + 160, one, 16) == 0);
    CHECK((fx_get<uint32_t>(o.fx, 24) & 0x3f) == 0x04); // ZE set
    CHECK(fault_of(r, divps, r.base.cr0, r.base.cr4 & ~hvm::emu::kCr4OsXmmExcpt, &o) == 6);
    // Masked: the quotient is infinity and only the flag is set.
    fx_put<uint32_t>(r.fx, 24, 0x1f80);
    CHECK(fault_of(r, divps, r.base.cr0, r.base.cr4, &o) == -1);
    float q[4];
    memcpy(q, o.fx + 160, 16);
    CHECK(q[0] == __builtin_inff());
    CHECK(q[1] == 2.0f);
    CHECK((fx_get<uint32_t>(o.fx, 24) & 0x3f) == 0x04);
    // An unmasked precision exception on a scalar conversion also faults.
    fx_put<uint32_t>(r.fx, 24, 0x1f80 & ~0x1000);
    float third = 1.0f / 3.0f;
    memcpy(r.fx + 176, &third, 4);
    CHECK(fault_of(r, {0xf3, 0x0f, 0x2d, 0xc1}, r.base.cr0, r.base.cr4, &o) == 19); // CVTSS2SI
}

TEST_CASE("x87 exceptions are deferred to the next waiting instruction as #MF") {
    Runner r;
    memset(r.fx, 0, sizeof r.fx);
    fx_put<uint32_t>(r.fx, 24, 0x1f80);
    fx_put<uint16_t>(r.fx, 0, 0x037b); // ZM clear
    // Program: FLD1; FLDZ; FDIVP (1/0: unmasked #Z, pending); FNSTSW AX; FADD ST0 -> #MF
    Machine& m = r.m;
    std::vector<uint8_t> code = {0xd9, 0xe8, 0xd9, 0xee, 0xde, 0xf9, 0xdf, 0xe0, 0xd8, 0xc0, 0xf4};
    m.load(kCode, code);
    CpuState st = r.base;
    memcpy(st.fxsave, r.fx, 512);
    m.vcpu->set_state(st);
    m.cpu().step_n(4);
    CpuState s;
    m.vcpu->get_state(s);
    CHECK(s.rip == kCode + 8);
    uint16_t fsw = uint16_t(s.gpr[RAX]);
    CHECK((fsw & 0x04) != 0);        // ZE
    CHECK((fsw & 0x8080) == 0x8080); // ES and B
    m.cpu().step_n(1);
    m.vcpu->get_state(s);
    CHECK(s.rip == kHandlers + 16 * 16); // #MF delivered at FADD
    // FNCLEX clears it; then FWAIT passes.
    code = {0xdb, 0xe2, 0x9b, 0xf4};
    m.load(kCode, code);
    s.rip = kCode;
    m.vcpu->set_state(s);
    m.cpu().step_n(2);
    m.vcpu->get_state(s);
    CHECK(s.rip == kCode + 3);
    // With the exception pending, FWAIT itself faults.
    fx_put<uint16_t>(s.fxsave, 2, 0x8084);
    s.rip = kCode + 2;
    m.vcpu->set_state(s);
    m.cpu().step_n(1);
    m.vcpu->get_state(s);
    CHECK(s.rip == kHandlers + 16 * 16);
}

TEST_CASE("an unmasked flag loaded without ES is still pending (and never traps the host)") {
    Runner r;
    memset(r.fx, 0, sizeof r.fx);
    fx_put<uint32_t>(r.fx, 24, 0x1f80);
    fx_put<uint16_t>(r.fx, 0, 0x037e); // IM clear
    fx_put<uint16_t>(r.fx, 2, 0x0001); // IE set, ES clear
    r.fx[4] = 0xff;
    CHECK(fault_of(r, {0xd8, 0xc1}, r.base.cr0, r.base.cr4) == 16);       // FADD
    CHECK(fault_of(r, {0x0f, 0xfc, 0xc1}, r.base.cr0, r.base.cr4) == 16); // PADDB mm
    CHECK(fault_of(r, {0xdf, 0xe0}, r.base.cr0, r.base.cr4) == -1);       // FNSTSW AX
}

TEST_CASE("MMX mode: TOP = 0 and all tags valid, EMMS empties them, a fault changes nothing") {
    Runner r;
    memset(r.fx, 0, sizeof r.fx);
    fx_put<uint32_t>(r.fx, 24, 0x1f80);
    fx_put<uint16_t>(r.fx, 0, 0x037f);
    fx_put<uint16_t>(r.fx, 2, 5 << 11); // TOP = 5
    for (unsigned i = 0; i < 8; i++) fx_put<uint64_t>(r.fx, 32 + 16 * i, 0x1111111111111111ull * i);
    Runner::Out o;
    // PADDB mm0, mm1: MM0 is physical R0 = slot (0 - 5) & 7 = 3
    CHECK(fault_of(r, {0x0f, 0xfc, 0xc1}, r.base.cr0, r.base.cr4, &o) == -1);
    CHECK(((fx_get<uint16_t>(o.fx, 2) >> 11) & 7) == 0);
    CHECK(o.fx[4] == 0xff);
    CHECK(fx_get<uint64_t>(o.fx, 32) == 0x3333333333333333ull + 0x4444444444444444ull);
    CHECK(fx_get<uint16_t>(o.fx, 40) == 0xffff);
    CHECK(fx_get<uint64_t>(o.fx, 48) == 0x4444444444444444ull);
    // EMMS
    memcpy(r.fx, o.fx, 512);
    CHECK(fault_of(r, {0x0f, 0x77}, r.base.cr0, r.base.cr4, &o) == -1);
    CHECK(o.fx[4] == 0);
    // A faulting MMX load (non-canonical address) leaves TOP and the tags alone.
    fx_put<uint16_t>(r.fx, 2, 5 << 11);
    r.fx[4] = 0x21;
    r.gpr[RBX] = 0x8000000000000000ull;
    CHECK(fault_of(r, {0x0f, 0xfc, 0x03}, r.base.cr0, r.base.cr4, &o) == 13); // [rbx]
    CHECK(((fx_get<uint16_t>(o.fx, 2) >> 11) & 7) == 5);
    CHECK(o.fx[4] == 0x21);
}

TEST_CASE("FNSTENV and FLDENV use the 16-bit real-mode layout in real mode") {
    Machine m;
    CpuState st = m.real_mode_state();
    st.cr4 |= hvm::emu::kCr4OsFxsr;
    fx_put<uint16_t>(st.fxsave, 0, 0x027f);
    fx_put<uint16_t>(st.fxsave, 2, 0x3800 | 0x4100);        // TOP 7, C3 C0
    st.fxsave[4] = 0x80;                                    // R7 valid
    fx_put<uint64_t>(st.fxsave, 32, 0x8000000000000000ull); // ST0 = R7 = 1.0
    fx_put<uint16_t>(st.fxsave, 40, 0x3fff);
    // FLD1 at 0x7c00 sets FIP/FOP; then FNSTENV [0x500]; HLT
    std::vector<uint8_t> code = {0xd9, 0xe8, 0xd9, 0x36, 0x00, 0x05, 0xf4};
    m.load(0x7c00, code);
    m.vcpu->set_state(st);
    m.run_until_halt(10);
    CHECK(m.peek<uint16_t>(0x500) == (0x027f | 0x3f));
    uint16_t fsw = m.peek<uint16_t>(0x502);
    CHECK(((fsw >> 11) & 7) == 6);
    // Tags: R6 valid (1.0), R7 valid (1.0), the rest empty.
    CHECK(m.peek<uint16_t>(0x504) == 0x0fff);
    CHECK(m.peek<uint16_t>(0x506) == 0x7c00);              // FIP[15:0]
    CHECK(m.peek<uint16_t>(0x508) == ((0 << 12) | 0x1e8)); // FIP[19:16], FOP (D9 E8)
    CpuState s;
    m.vcpu->get_state(s);
    CHECK((fx_get<uint16_t>(s.fxsave, 0) & 0x3f) == 0x3f); // FNSTENV masks everything
}

TEST_CASE("CPUID advertises the x87/MMX/SSE unit") {
    hvm::emu::CpuidResult r = hvm::emu::cpuid_model(1, 0, 0);
    for (unsigned bit : {0u, 23u, 24u, 25u, 26u})
        CHECK(((r.edx >> bit) & 1) == 1); // FPU MMX FXSR SSE SSE2
    CHECK((r.ecx & 1) == 1);              // SSE3
    CHECK(((r.ecx >> 26) & 1) == 0);      // no XSAVE
}

TEST_CASE("a faulting x87 or SSE store changes no register state") {
    Runner r;
    Gen g(5);
    memset(r.fx, 0, sizeof r.fx);
    fx_put<uint16_t>(r.fx, 0, 0x037f);
    fx_put<uint16_t>(r.fx, 2, 3 << 11); // TOP 3
    r.fx[4] = 0x08;                     // R3 = ST0 valid
    fx_put<uint64_t>(r.fx, 32, 0x8000000000000000ull);
    fx_put<uint16_t>(r.fx, 40, 0x3fff);
    fx_put<uint32_t>(r.fx, 24, 0x1f80);
    for (unsigned i = 0; i < 16; i++) g.xmm(r.fx + 160 + 16 * i);
    r.gpr[RBX] = 0x8000000000000000ull; // non-canonical: #GP
    Runner::Out o;
    for (const std::vector<uint8_t>& insn :
         {std::vector<uint8_t>{0xdd, 0x1b},          // FSTP qword [rbx]
          std::vector<uint8_t>{0xdf, 0x3b},          // FISTP qword [rbx]
          std::vector<uint8_t>{0xd9, 0x33},          // FNSTENV [rbx]
          std::vector<uint8_t>{0xdd, 0x33},          // FNSAVE [rbx]
          std::vector<uint8_t>{0x0f, 0xae, 0x03},    // FXSAVE [rbx]
          std::vector<uint8_t>{0x0f, 0x11, 0x03},    // MOVUPS [rbx], xmm0
          std::vector<uint8_t>{0x0f, 0x58, 0x03}}) { // ADDPS xmm0, [rbx]
        CHECK(fault_of(r, insn, r.base.cr0, r.base.cr4, &o) == 13);
        CHECK(memcmp(o.fx, r.fx, 416) == 0);
    }
}

TEST_CASE("32-bit protected mode: FXSAVE stores XMM0-7 only, FNSTENV uses the 28-byte layout") {
    Machine m;
    CpuState st = reset_cpu_state(0);
    st.cr0 = 0x33; // PE MP ET NE, no paging
    st.cr4 = hvm::emu::kCr4OsFxsr | hvm::emu::kCr4OsXmmExcpt;
    st.gdt = {kGdt, 0x7f};
    st.seg[CS] = m.gdt_seg(kSelCode32);
    for (unsigned r : {ES, SS, DS, FS, GS}) st.seg[r] = m.gdt_seg(kSelData);
    st.rip = kCode;
    st.gpr[RSP] = 0x90000;
    for (unsigned i = 0; i < 16 * 16; i++) st.fxsave[160 + i] = uint8_t(i + 1);
    // FLD1; MOVAPS xmm1, xmm0; FXSAVE [0x200000]; FNSTENV [0x200400]; HLT
    std::vector<uint8_t> code = {0xd9, 0xe8, 0x0f, 0x28, 0xc8, 0x0f, 0xae, 0x05, 0x00, 0x00,
                                 0x20, 0x00, 0xd9, 0x35, 0x00, 0x04, 0x20, 0x00, 0xf4};
    m.load(kCode, code);
    memset(m.ram + kData, 0xee, 0x1000);
    m.vcpu->set_state(st);
    m.run_until_halt(10);
    CpuState s;
    m.vcpu->get_state(s);
    REQUIRE(s.rip == kCode + code.size());
    CHECK(m.peek<uint16_t>(kData) == 0x037f);
    CHECK(m.peek<uint32_t>(kData + 8) == kCode); // FIP (32-bit offset)
    CHECK(m.peek<uint32_t>(kData + 24) == 0x1f80);
    CHECK(m.peek<uint32_t>(kData + 28) == 0xffff); // MXCSR_MASK
    CHECK(m.peek<uint8_t>(kData + 160 + 16) == 1); // XMM1 = old XMM0
    CHECK(m.peek<uint8_t>(kData + 160 + 7 * 16) == 7 * 16 + 1);
    CHECK(m.peek<uint8_t>(kData + 288) == 0xee); // XMM8-15 are not saved outside 64-bit mode
    CHECK(m.peek<uint8_t>(kData + 511) == 0xee);
    const uint64_t env = kData + 0x400;
    CHECK(m.peek<uint16_t>(env) == 0x037f);
    CHECK(m.peek<uint16_t>(env + 2) == 0xffff); // reserved upper words read as ones
    CHECK(((m.peek<uint16_t>(env + 4) >> 11) & 7) == 7);
    CHECK(m.peek<uint16_t>(env + 8) == 0x3fff); // ST0 (R7) valid, the rest empty
    CHECK(m.peek<uint32_t>(env + 12) == kCode);
    CHECK((m.peek<uint32_t>(env + 16) >> 16) == 0x1e8); // FOP of FLD1
}
