#include "vcpu/engine.hpp"

namespace hvm {

CpuState reset_cpu_state(unsigned vcpu_index) {
    CpuState s;
    // Intel SDM Vol. 3 §9.1.1, table 9-1: real mode, CS = F000 with base FFFF0000, IP = FFF0.
    for (unsigned i = 0; i < 6; i++) {
        s.seg[i] = Segment{0, 0xffff, 0, 3 /* data RW accessed */, 1, 0, 1, 0, 0, 0, 0, 0};
    }
    s.seg[CS] =
        Segment{0xffff0000, 0xffff, 0xf000, 11 /* code RX accessed */, 1, 0, 1, 0, 0, 0, 0, 0};
    s.seg[LDTR] = Segment{0, 0xffff, 0, 2 /* LDT */, 0, 0, 1, 0, 0, 0, 0, 0};
    s.seg[TR] = Segment{0, 0xffff, 0, 11 /* busy 32-bit TSS */, 0, 0, 1, 0, 0, 0, 0, 0};
    s.gdt = {0, 0xffff};
    s.idt = {0, 0xffff};
    s.gpr[RDX] = 0x600; // family/model/stepping signature, as QEMU's default
    s.apic_base = 0xfee00000ull | (1u << 11) | (vcpu_index == 0 ? (1u << 8) : 0);
    // FXSAVE image: FCW = 0x037f after FNINIT-like reset, MXCSR = 0x1f80.
    s.fxsave[0] = 0x7f;
    s.fxsave[1] = 0x03;
    s.fxsave[24] = 0x80;
    s.fxsave[25] = 0x1f;
    return s;
}

} // namespace hvm
