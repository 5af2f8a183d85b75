// System instructions: control and debug registers, MSRs, CPUID, descriptor-table instructions
// (LGDT ... VERW), INVLPG, SWAPGS, RDTSCP.
#include <cstring>

#include "vcpu/emu/cpuid_model.hpp"
#include "vcpu/emu/x86_cpu.hpp"

namespace hvm::emu {

namespace {
constexpr uint64_t kCr0Pe = 1u << 0, kCr0Mp = 1u << 1, kCr0Em = 1u << 2, kCr0Ts = 1u << 3,
                   kCr0Et = 1u << 4, kCr0Ne = 1u << 5, kCr0Wp = 1u << 16, kCr0Am = 1u << 18,
                   kCr0Nw = 1u << 29, kCr0Cd = 1u << 30, kCr0Pg = 1ull << 31;
constexpr uint64_t kCr0Valid = kCr0Pe | kCr0Mp | kCr0Em | kCr0Ts | kCr0Et | kCr0Ne | kCr0Wp |
                               kCr0Am | kCr0Nw | kCr0Cd | kCr0Pg;
constexpr uint64_t kCr4Tsd = 1u << 2, kCr4De = 1u << 3, kCr4Pse = 1u << 4, kCr4Pae = 1u << 5,
                   kCr4Mce = 1u << 6, kCr4Pge = 1u << 7, kCr4Pce = 1u << 8, kCr4Osfxsr = 1u << 9,
                   kCr4Osxmmexcpt = 1u << 10;
// CR4 bits this CPU model implements (no VME/PVI, UMIP, FSGSBASE, PCIDE, OSXSAVE, SMEP, SMAP).
constexpr uint64_t kCr4Valid = kCr4Tsd | kCr4De | kCr4Pse | kCr4Pae | kCr4Mce | kCr4Pge | kCr4Pce |
                               kCr4Osfxsr | kCr4Osxmmexcpt;
constexpr uint64_t kEferSce = 1u << 0, kEferLme = 1u << 8, kEferLma = 1u << 10, kEferNxe = 1u << 11;

// MSR numbers (SDM Vol. 4).
enum : uint32_t {
    kMsrTsc = 0x10,
    kMsrApicBase = 0x1b,
    kMsrUcodeRev = 0x8b,
    kMsrMtrrCap = 0xfe,
    kMsrSysenterCs = 0x174,
    kMsrSysenterEsp = 0x175,
    kMsrSysenterEip = 0x176,
    kMsrMiscEnable = 0x1a0,
    kMsrMtrrPhysBase0 = 0x200,
    kMsrMtrrFix64k = 0x250,
    kMsrMtrrFix16k0 = 0x258,
    kMsrMtrrFix16k1 = 0x259,
    kMsrMtrrFix4k0 = 0x268,
    kMsrPat = 0x277,
    kMsrMtrrDefType = 0x2ff,
    kMsrEfer = 0xc0000080,
    kMsrStar = 0xc0000081,
    kMsrLstar = 0xc0000082,
    kMsrCstar = 0xc0000083,
    kMsrSfmask = 0xc0000084,
    kMsrFsBase = 0xc0000100,
    kMsrGsBase = 0xc0000101,
    kMsrKernelGsBase = 0xc0000102,
    kMsrTscAux = 0xc0000103,
};

bool canonical(uint64_t v) {
    return uint64_t(int64_t(v << 16) >> 16) == v;
}
} // namespace

void X86Cpu::write_cr(unsigned cr, uint64_t v) {
    switch (cr) {
    case 0: {
        if (v >> 32) throw GuestFault{kGP, true, 0};
        if ((v & kCr0Pg) && !(v & kCr0Pe)) throw GuestFault{kGP, true, 0};
        if ((v & kCr0Nw) && !(v & kCr0Cd)) throw GuestFault{kGP, true, 0};
        v = (v & kCr0Valid) | kCr0Et;
        uint64_t changed = s.cr0 ^ v;
        if ((changed & kCr0Pg) && (v & kCr0Pg) && (s.efer & kEferLme)) {
            // Activating long mode (SDM Vol. 3 §10.8.5): needs PAE and a non-64-bit CS.
            if (!(s.cr4 & kCr4Pae) || s.seg[CS].l) throw GuestFault{kGP, true, 0};
            s.efer |= kEferLma;
        }
        if ((changed & kCr0Pg) && !(v & kCr0Pg) && lma()) {
            if (mode64_) throw GuestFault{kGP, true, 0};
            s.efer &= ~kEferLma;
        }
        s.cr0 = v;
        if (changed & (kCr0Pg | kCr0Wp | kCr0Pe)) tlb_flush_all();
        update_mode();
        return;
    }
    case 2: s.cr2 = v; return;
    case 3:
        if (lma() && (v >> 52)) throw GuestFault{kGP, true, 0};
        s.cr3 = v;
        if (s.cr4 & kCr4Pge)
            tlb_flush_nonglobal();
        else
            tlb_flush_all();
        return;
    case 4: {
        if (v & ~kCr4Valid) throw GuestFault{kGP, true, 0};
        if (lma() && !(v & kCr4Pae)) throw GuestFault{kGP, true, 0};
        uint64_t changed = s.cr4 ^ v;
        s.cr4 = v;
        if (changed & (kCr4Pge | kCr4Pae | kCr4Pse)) tlb_flush_all();
        return;
    }
    case 8:
        if (!mode64_) throw GuestFault{kUD, false, 0};
        if (v >> 4) throw GuestFault{kGP, true, 0};
        s.cr8 = v;
        if (irq_) with_device_lock([&] { irq_->set_tpr(uint8_t(v)); });
        return;
    default: throw GuestFault{kUD, false, 0};
    }
}

uint64_t X86Cpu::read_cr(unsigned cr) {
    switch (cr) {
    case 0: return s.cr0;
    case 2: return s.cr2;
    case 3: return s.cr3;
    case 4: return s.cr4;
    case 8:
        if (!mode64_) throw GuestFault{kUD, false, 0};
        if (irq_) return with_device_lock([&] { return uint64_t(irq_->tpr() & 15); });
        return s.cr8;
    default: throw GuestFault{kUD, false, 0};
    }
}

void X86Cpu::write_dr(unsigned dr, uint64_t v) {
    // Breakpoints are stored but not armed yet (debug-exception delivery is a later step).
    if (dr == 4 || dr == 5) {
        if (s.cr4 & kCr4De) throw GuestFault{kUD, false, 0};
        dr += 2;
    }
    if (dr > 7) throw GuestFault{kUD, false, 0};
    if ((dr == 6 || dr == 7) && (v >> 32)) throw GuestFault{kGP, true, 0};
    if (dr == 6) v = (v & 0xe00f) | 0xffff0ff0;
    if (dr == 7) v = (v & 0xffff2bff) | 0x400;
    s.dr[dr] = v;
}

uint64_t X86Cpu::read_dr(unsigned dr) {
    if (dr == 4 || dr == 5) {
        if (s.cr4 & kCr4De) throw GuestFault{kUD, false, 0};
        dr += 2;
    }
    if (dr > 7) throw GuestFault{kUD, false, 0};
    return s.dr[dr];
}

void X86Cpu::set_efer(uint64_t v) {
    // SCE, LME, LMA (read-only), NXE; LME cannot change while paging is on.
    if (v & ~(kEferSce | kEferLme | kEferLma | kEferNxe)) throw GuestFault{kGP, true, 0};
    if ((s.cr0 & kCr0Pg) && ((v ^ s.efer) & kEferLme)) throw GuestFault{kGP, true, 0};
    uint64_t n = (v & ~kEferLma) | (s.efer & kEferLma);
    if ((n ^ s.efer) & kEferNxe) tlb_flush_all();
    s.efer = n;
    update_mode();
}

void X86Cpu::rdmsr() {
    if (cpl_ != 0) throw GuestFault{kGP, true, 0};
    uint32_t msr = uint32_t(s.gpr[RCX]);
    uint64_t v = 0;
    switch (msr) {
    case kMsrTsc: v = rdtsc_value(); break;
    case kMsrApicBase:
        if (irq_) {
            if (!with_device_lock([&] { return irq_->read_msr(msr, v); }))
                throw GuestFault{kGP, true, 0};
            s.apic_base = v;
        } else {
            v = s.apic_base;
        }
        break;
    case kMsrUcodeRev: v = 0; break;
    case kMsrMtrrCap: v = 0x508; break; // 8 variable ranges, fixed ranges, write-combining
    case kMsrSysenterCs: v = s.sysenter_cs; break;
    case kMsrSysenterEsp: v = s.sysenter_esp; break;
    case kMsrSysenterEip: v = s.sysenter_eip; break;
    case kMsrMiscEnable: v = s.misc_enable; break;
    case kMsrPat: v = s.pat; break;
    case kMsrMtrrDefType: v = mtrr_.def_type; break;
    case kMsrMtrrFix64k: v = mtrr_.fixed[0]; break;
    case kMsrMtrrFix16k0: v = mtrr_.fixed[1]; break;
    case kMsrMtrrFix16k1: v = mtrr_.fixed[2]; break;
    case kMsrEfer: v = s.efer; break;
    case kMsrStar: v = s.star; break;
    case kMsrLstar: v = s.lstar; break;
    case kMsrCstar: v = s.cstar; break;
    case kMsrSfmask: v = s.sfmask; break;
    case kMsrFsBase: v = s.seg[FS].base; break;
    case kMsrGsBase: v = s.seg[GS].base; break;
    case kMsrKernelGsBase: v = s.kernel_gs_base; break;
    case kMsrTscAux: v = s.tsc_aux; break;
    default:
        if (msr >= kMsrMtrrPhysBase0 && msr < kMsrMtrrPhysBase0 + 16) {
            v = mtrr_.var[msr - kMsrMtrrPhysBase0];
        } else if (msr >= kMsrMtrrFix4k0 && msr < kMsrMtrrFix4k0 + 8) {
            v = mtrr_.fixed[3 + msr - kMsrMtrrFix4k0];
        } else if (irq_ && msr >= 0x800 && msr <= 0x8ff) {
            if (!with_device_lock([&] { return irq_->read_msr(msr, v); }))
                throw GuestFault{kGP, true, 0};
        } else {
            throw GuestFault{kGP, true, 0};
        }
    }
    set_reg(RAX, 4, v & 0xffffffff, false);
    set_reg(RDX, 4, v >> 32, false);
}

void X86Cpu::wrmsr() {
    if (cpl_ != 0) throw GuestFault{kGP, true, 0};
    uint32_t msr = uint32_t(s.gpr[RCX]);
    uint64_t v = (s.gpr[RAX] & 0xffffffff) | (s.gpr[RDX] << 32);
    // MTRR memory types: 0 UC, 1 WC, 4 WT, 5 WP, 6 WB (others reserved: #GP).
    auto valid_type = [](uint64_t t) { return t == 0 || t == 1 || t == 4 || t == 5 || t == 6; };
    auto valid_fixed = [&](uint64_t x) {
        for (int i = 0; i < 8; i++)
            if (!valid_type((x >> (8 * i)) & 0xff)) return false;
        return true;
    };
    switch (msr) {
    case kMsrTsc: tsc_offset_ = v - (rdtsc_value() - tsc_offset_); return;
    case kMsrApicBase:
        if (irq_) {
            if (!with_device_lock([&] { return irq_->write_msr(msr, v); }))
                throw GuestFault{kGP, true, 0};
        }
        s.apic_base = v;
        return;
    case kMsrUcodeRev: return;
    case kMsrSysenterCs: s.sysenter_cs = v & 0xffff; return;
    case kMsrSysenterEsp:
        if (!canonical(v)) throw GuestFault{kGP, true, 0};
        s.sysenter_esp = v;
        return;
    case kMsrSysenterEip:
        if (!canonical(v)) throw GuestFault{kGP, true, 0};
        s.sysenter_eip = v;
        return;
    case kMsrMiscEnable: s.misc_enable = v; return;
    case kMsrPat:
        for (int i = 0; i < 8; i++) {
            uint64_t t = (v >> (8 * i)) & 0xff;
            if (t == 2 || t == 3 || t > 7) throw GuestFault{kGP, true, 0};
        }
        s.pat = v;
        return;
    case kMsrMtrrDefType:
        if ((v & ~0xcffull) || !valid_type(v & 0xff)) throw GuestFault{kGP, true, 0};
        mtrr_.def_type = v;
        return;
    case kMsrMtrrFix64k:
    case kMsrMtrrFix16k0:
    case kMsrMtrrFix16k1:
        if (!valid_fixed(v)) throw GuestFault{kGP, true, 0};
        mtrr_.fixed[msr == kMsrMtrrFix64k ? 0 : msr == kMsrMtrrFix16k0 ? 1 : 2] = v;
        return;
    case kMsrEfer: set_efer(v); return;
    case kMsrStar: s.star = v; return;
    case kMsrLstar:
    case kMsrCstar:
    case kMsrKernelGsBase:
    case kMsrFsBase:
    case kMsrGsBase:
        if (!canonical(v)) throw GuestFault{kGP, true, 0};
        if (msr == kMsrLstar) s.lstar = v;
        if (msr == kMsrCstar) s.cstar = v;
        if (msr == kMsrKernelGsBase) s.kernel_gs_base = v;
        if (msr == kMsrFsBase) s.seg[FS].base = v;
        if (msr == kMsrGsBase) s.seg[GS].base = v;
        return;
    case kMsrSfmask: s.sfmask = v & 0xffffffff; return;
    case kMsrTscAux: s.tsc_aux = v & 0xffffffff; return;
    default:
        if (msr >= kMsrMtrrPhysBase0 && msr < kMsrMtrrPhysBase0 + 16) {
            unsigned i = msr - kMsrMtrrPhysBase0;
            // Bits above the 40-bit physical address width are reserved.
            uint64_t rsvd = (i & 1) ? (~0ull << 40) | 0x7ff : (~0ull << 40) | 0xf00;
            if ((v & rsvd) || (!(i & 1) && !valid_type(v & 0xff))) throw GuestFault{kGP, true, 0};
            mtrr_.var[i] = v;
            return;
        }
        if (msr >= kMsrMtrrFix4k0 && msr < kMsrMtrrFix4k0 + 8) {
            if (!valid_fixed(v)) throw GuestFault{kGP, true, 0};
            mtrr_.fixed[3 + msr - kMsrMtrrFix4k0] = v;
            return;
        }
        if (irq_ && msr >= 0x800 && msr <= 0x8ff) {
            if (!with_device_lock([&] { return irq_->write_msr(msr, v); }))
                throw GuestFault{kGP, true, 0};
            return;
        }
        throw GuestFault{kGP, true, 0};
    }
}

void X86Cpu::cpuid() {
    CpuidResult r = cpuid_model(uint32_t(s.gpr[RAX]), uint32_t(s.gpr[RCX]), index_);
    set_reg(RAX, 4, r.eax, false);
    set_reg(RBX, 4, r.ebx, false);
    set_reg(RCX, 4, r.ecx, false);
    set_reg(RDX, 4, r.edx, false);
}

void X86Cpu::exec_group6(const Insn& in) {
    if (!pe() || v86()) undefined_opcode(&in, "0F 00 outside protected mode");
    const unsigned r = in.reg & 7;
    switch (r) {
    case 0:
    case 1: { // SLDT, STR
        uint16_t v = s.seg[r == 0 ? LDTR : TR].selector;
        if (in.mem())
            write_sized(in.seg, ea(in), 2, v);
        else
            set_reg(in.rm, in.osize, v, in.rex);
        return;
    }
    case 2:
    case 3: { // LLDT, LTR
        if (cpl_ != 0) throw GuestFault{kGP, true, 0};
        uint16_t sel = uint16_t(read_rm(in, 2));
        const uint32_t err = sel & 0xfffc;
        if (r == 2 && err == 0) {
            s.seg[LDTR] = Segment{};
            s.seg[LDTR].selector = sel;
            s.seg[LDTR].unusable = 1;
            return;
        }
        if (err == 0) throw GuestFault{kGP, true, 0};
        if (sel & 4) throw GuestFault{kGP, true, err};
        Desc d;
        if (!fetch_descriptor(sel, d, lma())) throw GuestFault{kGP, true, err};
        Segment sg = parse_descriptor(sel, d);
        if (r == 2) {
            if (sg.s || sg.type != 2) throw GuestFault{kGP, true, err};
        } else {
            bool ok = !sg.s && (sg.type == 9 || (!lma() && sg.type == 1));
            if (!ok) throw GuestFault{kGP, true, err};
        }
        // 16-byte form: the upper half's type field (bits 12:8 of its high dword) must be 0
        if (lma() && ((d.hi >> 40) & 0x1f)) throw GuestFault{kGP, true, err};
        if (!sg.present) throw GuestFault{kNP, true, err};
        if (r == 3) {
            // Mark the TSS busy in the GDT.
            d.lo |= 2ull << 40;
            write_lin<uint8_t>(s.gdt.base + (sel & ~7u) + 5, uint8_t(d.lo >> 40), true);
            sg.type |= 2;
            s.seg[TR] = sg;
        } else {
            s.seg[LDTR] = sg;
        }
        return;
    }
    case 4:
    case 5: { // VERR, VERW
        uint16_t sel = uint16_t(read_rm(in, 2));
        bool ok = false;
        Desc d;
        if ((sel & 0xfffc) && fetch_descriptor(sel, d)) {
            Segment sg = parse_descriptor(sel, d);
            bool priv = is_code_conforming_ok(sg, sel);
            if (sg.s && priv) {
                if (r == 4)
                    ok = !(sg.type & 8) || (sg.type & 2);
                else
                    ok = !(sg.type & 8) && (sg.type & 2);
            }
        }
        s.rflags = ok ? (s.rflags | kZF) : (s.rflags & ~kZF);
        return;
    }
    default: undefined_opcode(&in, "0F 00 /6 /7");
    }
}

bool X86Cpu::is_code_conforming_ok(const Segment& sg, uint16_t sel) const {
    // Conforming code is visible from any level; everything else needs DPL >= CPL and RPL.
    if (sg.s && (sg.type & 0xc) == 0xc) return true;
    return sg.dpl >= cpl_ && sg.dpl >= (sel & 3);
}

void X86Cpu::exec_lar_lsl(const Insn& in, bool lsl) {
    if (!pe() || v86()) undefined_opcode(&in, "LAR/LSL outside protected mode");
    uint16_t sel = uint16_t(read_rm(in, 2));
    Desc d;
    bool ok = false;
    if ((sel & 0xfffc) && fetch_descriptor(sel, d)) {
        Segment sg = parse_descriptor(sel, d);
        bool type_ok;
        if (sg.s) {
            type_ok = true;
        } else if (lma()) {
            type_ok = sg.type == 2 || sg.type == 9 || sg.type == 11 || (!lsl && sg.type == 12);
        } else {
            static constexpr bool lar_ok[16] = {0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0};
            static constexpr bool lsl_ok[16] = {0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0};
            type_ok = lsl ? lsl_ok[sg.type] : lar_ok[sg.type];
        }
        if (type_ok && is_code_conforming_ok(sg, sel)) {
            ok = true;
            uint64_t v = lsl ? uint64_t(sg.limit) : (d.lo >> 32) & 0x00f0ff00;
            set_reg(in.reg, in.osize, v, in.rex);
        }
    }
    s.rflags = ok ? (s.rflags | kZF) : (s.rflags & ~kZF);
}

void X86Cpu::exec_group7(const Insn& in) {
    const unsigned r = in.reg & 7;
    if (in.mod == 3) {
        switch (in.modrm) {
        case 0xf8: // SWAPGS
            if (!mode64_) undefined_opcode(&in, "SWAPGS outside 64-bit mode");
            if (cpl_ != 0) throw GuestFault{kGP, true, 0};
            std::swap(s.seg[GS].base, s.kernel_gs_base);
            return;
        case 0xf9: { // RDTSCP
            if ((s.cr4 & kCr4Tsd) && cpl_ != 0) throw GuestFault{kGP, true, 0};
            uint64_t t = rdtsc_value();
            set_reg(RAX, 4, t & 0xffffffff, false);
            set_reg(RDX, 4, t >> 32, false);
            set_reg(RCX, 4, s.tsc_aux & 0xffffffff, false);
            return;
        }
        default: break;
        }
        if (r == 4) { // SMSW r
            set_reg(in.rm, in.osize, in.osize == 2 ? s.cr0 & 0xffff : s.cr0, in.rex);
            return;
        }
        if (r == 6) { // LMSW r
            if (cpl_ != 0) throw GuestFault{kGP, true, 0};
            uint64_t v = reg(in.rm, 2, in.rex);
            write_cr(0, (s.cr0 & ~0xeull) | (v & 0xf) | (s.cr0 & 1));
            return;
        }
        undefined_opcode(&in, "0F 01 register form not implemented");
    }
    const uint64_t a = ea(in);
    switch (r) {
    case 0:
    case 1: { // SGDT, SIDT
        const DescriptorTable& t = r == 0 ? s.gdt : s.idt;
        // Both stores are checked before either is made visible... the limit goes first.
        uint64_t a2 = (a + 2) & size_mask(in.asize);
        if (mode64_) {
            seg_linear(in.seg, a2, 8, Access::Write);
            write_seg<uint16_t>(in.seg, a, t.limit);
            write_seg<uint64_t>(in.seg, a2, t.base);
        } else {
            seg_linear(in.seg, a2, 4, Access::Write);
            write_seg<uint16_t>(in.seg, a, t.limit);
            write_seg<uint32_t>(in.seg, a2, uint32_t(t.base));
        }
        return;
    }
    case 2:
    case 3: { // LGDT, LIDT
        if (cpl_ != 0) throw GuestFault{kGP, true, 0};
        uint16_t limit = read_seg<uint16_t>(in.seg, a);
        uint64_t a2 = (a + 2) & size_mask(in.asize);
        uint64_t base;
        if (mode64_) {
            base = read_seg<uint64_t>(in.seg, a2);
            if (!canonical(base)) throw GuestFault{kGP, true, 0};
        } else {
            base = read_seg<uint32_t>(in.seg, a2);
            if (in.osize == 2) base &= 0xffffff;
        }
        DescriptorTable& t = r == 2 ? s.gdt : s.idt;
        t.base = base;
        t.limit = limit;
        return;
    }
    case 4: write_seg<uint16_t>(in.seg, a, uint16_t(s.cr0)); return; // SMSW m16
    case 6: {                                                        // LMSW m16
        if (cpl_ != 0) throw GuestFault{kGP, true, 0};
        uint64_t v = read_seg<uint16_t>(in.seg, a);
        write_cr(0, (s.cr0 & ~0xeull) | (v & 0xf) | (s.cr0 & 1));
        return;
    }
    case 7: { // INVLPG
        if (cpl_ != 0) throw GuestFault{kGP, true, 0};
        uint64_t lin = mode64_ ? a + (in.seg >= FS ? s.seg[in.seg].base : 0)
                               : (s.seg[in.seg].base + a) & 0xffffffffull;
        tlb_flush_page(lin);
        return;
    }
    default: undefined_opcode(&in, "0F 01 /5");
    }
}

} // namespace hvm::emu
