// Protection: descriptor loads with their checks (SDM Vol. 3 ch. 5), far JMP/CALL/RET, interrupt
// and exception delivery through the IVT and the IDT (Vol. 3 ch. 6), IRET in its forms, and
// SYSCALL/SYSRET/SYSENTER/SYSEXIT.
#include "vcpu/emu/x86_cpu.hpp"

namespace hvm::emu {

namespace {
constexpr uint64_t kEferSce = 1u << 0;

bool is_code(const Segment& s) {
    return s.s && (s.type & 8);
}
bool is_conforming(const Segment& s) {
    return is_code(s) && (s.type & 4);
}
bool is_writable_data(const Segment& s) {
    return s.s && !(s.type & 8) && (s.type & 2);
}

// A flat segment as SYSCALL/SYSENTER load it (SDM Vol. 2 SYSCALL: "fixed values").
Segment flat_segment(uint16_t sel, bool code, unsigned dpl, bool l64, bool db) {
    Segment s;
    s.base = 0;
    s.limit = 0xffffffff;
    s.selector = sel;
    s.type = code ? 11 : 3;
    s.s = 1;
    s.dpl = uint8_t(dpl);
    s.present = 1;
    s.l = l64;
    s.db = db;
    s.g = 1;
    return s;
}
} // namespace

bool X86Cpu::fetch_descriptor(uint16_t sel, Desc& d, bool system16) {
    uint32_t idx = sel & ~7u;
    uint64_t base;
    uint32_t limit;
    if (sel & 4) {
        const Segment& ldt = s.seg[LDTR];
        if (ldt.unusable || (ldt.selector & ~3u) == 0 || !ldt.present) return false;
        base = ldt.base;
        limit = ldt.limit;
    } else {
        base = s.gdt.base;
        limit = s.gdt.limit;
    }
    unsigned n = system16 ? 16 : 8;
    if (uint64_t(idx) + n - 1 > limit) return false;
    uint64_t lin = base + idx;
    if (!lma()) lin &= 0xffffffffull;
    d.lo = read_lin<uint64_t>(lin, true);
    d.hi = system16 ? read_lin<uint64_t>(lin + 8, true) : 0;
    return true;
}

Segment X86Cpu::parse_descriptor(uint16_t sel, const Desc& d) {
    Segment s;
    uint64_t lo = d.lo;
    s.selector = sel;
    s.base = ((lo >> 16) & 0xffffff) | (((lo >> 56) & 0xff) << 24);
    uint32_t limit = uint32_t((lo & 0xffff) | (((lo >> 48) & 0xf) << 16));
    s.type = (lo >> 40) & 0xf;
    s.s = (lo >> 44) & 1;
    s.dpl = (lo >> 45) & 3;
    s.present = (lo >> 47) & 1;
    s.avl = (lo >> 52) & 1;
    s.l = (lo >> 53) & 1;
    s.db = (lo >> 54) & 1;
    s.g = (lo >> 55) & 1;
    s.limit = s.g ? (limit << 12) | 0xfff : limit;
    if (!s.s && d.hi) s.base |= (d.hi & 0xffffffff) << 32; // 16-byte system descriptor
    return s;
}

void X86Cpu::set_accessed(uint16_t sel, Desc& d) {
    if (!((d.lo >> 44) & 1) || (d.lo & (1ull << 40))) return;
    d.lo |= 1ull << 40;
    uint64_t base = (sel & 4) ? s.seg[LDTR].base : s.gdt.base;
    uint64_t lin = base + (sel & ~7u) + 5;
    if (!lma()) lin &= 0xffffffffull;
    write_lin<uint8_t>(lin, uint8_t(d.lo >> 40), true);
}

void X86Cpu::load_real_seg(unsigned sreg, uint16_t sel) {
    Segment& sg = s.seg[sreg];
    sg.selector = sel;
    sg.base = uint64_t(sel) << 4;
    sg.unusable = 0;
    if (v86()) {
        sg.limit = 0xffff;
        sg.type = sreg == CS ? 11 : 3;
        sg.s = 1;
        sg.dpl = 3;
        sg.present = 1;
        sg.db = sg.g = sg.l = 0;
    }
    if (sreg == CS) update_mode();
}

void X86Cpu::load_seg(unsigned sreg, uint16_t sel) {
    if (!pe() || v86()) {
        load_real_seg(sreg, sel);
        return;
    }
    const uint32_t err = sel & 0xfffc;
    const unsigned rpl = sel & 3;
    if ((sel & 0xfffc) == 0) {
        if (sreg == SS) {
            // 64-bit mode allows a null SS below CPL 3 (SDM Vol. 2 MOV, "IA-32e mode").
            if (!(mode64_ && cpl_ != 3 && rpl == cpl_)) throw GuestFault{kGP, true, 0};
            Segment n;
            n.selector = sel;
            n.unusable = 1;
            n.dpl = uint8_t(cpl_);
            n.db = 1;
            s.seg[SS] = n;
            return;
        }
        Segment n;
        n.selector = sel;
        n.unusable = 1;
        s.seg[sreg] = n;
        return;
    }
    Desc d;
    if (!fetch_descriptor(sel, d)) throw GuestFault{kGP, true, err};
    Segment sg = parse_descriptor(sel, d);
    if (sreg == SS) {
        if (rpl != cpl_ || !is_writable_data(sg) || sg.dpl != cpl_)
            throw GuestFault{kGP, true, err};
        if (!sg.present) throw GuestFault{kSSv, true, err};
    } else {
        if (!sg.s || (is_code(sg) && !(sg.type & 2))) throw GuestFault{kGP, true, err};
        if (!is_conforming(sg) && (rpl > sg.dpl || cpl_ > sg.dpl)) throw GuestFault{kGP, true, err};
        if (!sg.present) throw GuestFault{kNP, true, err};
    }
    set_accessed(sel, d);
    sg.type |= 1;
    s.seg[sreg] = sg;
}

void X86Cpu::invalidate_data_segs_for_cpl() {
    // After a return to an outer level, data segment registers the new CPL may not use become
    // null (SDM Vol. 2 RET/IRET "FOR each of segment register (ES, FS, GS, and DS)").
    for (unsigned r : {ES, DS, FS, GS}) {
        Segment& sg = s.seg[r];
        if (sg.unusable) continue;
        if ((!is_code(sg) || !is_conforming(sg)) && sg.dpl < cpl_) {
            sg = Segment{};
            sg.unusable = 1;
        }
    }
}

// Checks a code-segment descriptor for a direct far JMP/CALL and loads CS with RPL = CPL.
void X86Cpu::load_cs_checked(uint16_t sel, const Desc& d, unsigned new_cpl) {
    Segment sg = parse_descriptor(sel, d);
    sg.selector = uint16_t((sel & 0xfffc) | new_cpl);
    sg.type |= 1;
    Desc dd = d;
    set_accessed(sel, dd);
    s.seg[CS] = sg;
    update_mode();
}

void X86Cpu::far_jump(uint16_t sel, uint64_t off, unsigned osize) {
    if (!pe() || v86()) {
        off &= size_mask(osize);
        if (off > s.seg[CS].limit) throw GuestFault{kGP, true, 0};
        load_real_seg(CS, sel);
        s.rip = off;
        return;
    }
    const uint32_t err = sel & 0xfffc;
    if (err == 0) throw GuestFault{kGP, true, 0};
    Desc d;
    if (!fetch_descriptor(sel, d)) throw GuestFault{kGP, true, err};
    Segment sg = parse_descriptor(sel, d);
    if (!sg.s) {
        far_via_gate(sel, d, false, 0);
        return;
    }
    if (!is_code(sg)) throw GuestFault{kGP, true, err};
    if (is_conforming(sg) ? sg.dpl > cpl_ : ((sel & 3) > cpl_ || sg.dpl != cpl_))
        throw GuestFault{kGP, true, err};
    if (!sg.present) throw GuestFault{kNP, true, err};
    if (lma() && sg.l && sg.db) throw GuestFault{kGP, true, err};
    bool to64 = lma() && sg.l;
    if (!to64) {
        off &= size_mask(osize);
        if (off > sg.limit) throw GuestFault{kGP, true, 0};
    } else if (uint64_t(int64_t(off << 16) >> 16) != off) {
        throw GuestFault{kGP, true, 0};
    }
    load_cs_checked(sel, d, cpl_);
    s.rip = off;
}

void X86Cpu::far_call(uint16_t sel, uint64_t off, unsigned osize, uint64_t ret_rip) {
    const uint16_t old_cs = s.seg[CS].selector;
    if (!pe() || v86()) {
        off &= size_mask(osize);
        if (off > s.seg[CS].limit) throw GuestFault{kGP, true, 0};
        uint64_t sp = s.gpr[RSP];
        uint64_t a1 = rsp_add(sp, -int64_t(osize));
        uint64_t a2 = rsp_add(sp, -2 * int64_t(osize));
        write_sized(SS, a1 & sp_mask(), osize, old_cs);
        write_sized(SS, a2 & sp_mask(), osize, ret_rip);
        s.gpr[RSP] = a2;
        load_real_seg(CS, sel);
        s.rip = off;
        return;
    }
    const uint32_t err = sel & 0xfffc;
    if (err == 0) throw GuestFault{kGP, true, 0};
    Desc d;
    if (!fetch_descriptor(sel, d)) throw GuestFault{kGP, true, err};
    Segment sg = parse_descriptor(sel, d);
    if (!sg.s) {
        far_via_gate(sel, d, true, ret_rip);
        return;
    }
    if (!is_code(sg)) throw GuestFault{kGP, true, err};
    if (is_conforming(sg) ? sg.dpl > cpl_ : ((sel & 3) > cpl_ || sg.dpl != cpl_))
        throw GuestFault{kGP, true, err};
    if (!sg.present) throw GuestFault{kNP, true, err};
    if (lma() && sg.l && sg.db) throw GuestFault{kGP, true, err};
    bool to64 = lma() && sg.l;
    if (!to64) {
        off &= size_mask(osize);
        if (off > sg.limit) throw GuestFault{kGP, true, 0};
    } else if (uint64_t(int64_t(off << 16) >> 16) != off) {
        throw GuestFault{kGP, true, 0};
    }
    uint64_t sp = s.gpr[RSP];
    uint64_t a1 = rsp_add(sp, -int64_t(osize));
    uint64_t a2 = rsp_add(sp, -2 * int64_t(osize));
    write_sized(SS, a1 & sp_mask(), osize, old_cs);
    write_sized(SS, a2 & sp_mask(), osize, ret_rip);
    s.gpr[RSP] = a2;
    load_cs_checked(sel, d, cpl_);
    s.rip = off;
}

// Far CALL/JMP whose selector names a system descriptor: call gates (SDM Vol. 3 §5.8.4-5.8.6);
// task gates and TSSs (task switches) are not implemented yet.
void X86Cpu::far_via_gate(uint16_t sel, Desc d, bool call, uint64_t ret_rip) {
    const uint32_t err = sel & 0xfffc;
    unsigned type = (d.lo >> 40) & 0xf;
    const bool gate64 = lma();
    if (!gate64 && (type == 5 || type == 1 || type == 9 || type == 3 || type == 11)) {
        // Task gate or TSS: a task switch. DPL >= CPL and >= RPL (SDM Vol. 3 §8.3).
        unsigned dpl = (d.lo >> 45) & 3;
        if (dpl < cpl_ || dpl < (sel & 3u)) throw GuestFault{kGP, true, err};
        if (!((d.lo >> 47) & 1)) throw GuestFault{kNP, true, err};
        uint16_t tss = type == 5 ? uint16_t(d.lo >> 16) : sel;
        task_switch(tss, call ? TaskReason::Call : TaskReason::Jmp, next_rip_, false, 0);
        return;
    }
    if (gate64) {
        if (type != 12) throw GuestFault{kGP, true, err};
        if (!fetch_descriptor(sel, d, true)) throw GuestFault{kGP, true, err};
        // the upper half's type field (bits 12:8 of its high dword) must be 0
        if ((d.hi >> 40) & 0x1f) throw GuestFault{kGP, true, err};
    } else if (type != 4 && type != 12) {
        throw GuestFault{kGP, true, err};
    }
    unsigned gdpl = (d.lo >> 45) & 3;
    if (gdpl < cpl_ || gdpl < (sel & 3u)) throw GuestFault{kGP, true, err};
    if (!((d.lo >> 47) & 1)) throw GuestFault{kNP, true, err};
    const uint16_t tsel = uint16_t(d.lo >> 16);
    const uint32_t terr = tsel & 0xfffc;
    uint64_t off = (d.lo & 0xffff) | (type == 12 ? ((d.lo >> 48) & 0xffff) << 16 : 0);
    if (gate64) off |= (d.hi & 0xffffffff) << 32;
    const unsigned param_count = gate64 ? 0 : unsigned((d.lo >> 32) & 0x1f);
    if (terr == 0) throw GuestFault{kGP, true, 0};
    Desc td;
    if (!fetch_descriptor(tsel, td)) throw GuestFault{kGP, true, terr};
    Segment cs = parse_descriptor(tsel, td);
    if (!is_code(cs) || cs.dpl > cpl_) throw GuestFault{kGP, true, terr};
    if (!call && !is_conforming(cs) && cs.dpl != cpl_) throw GuestFault{kGP, true, terr};
    if (!cs.present) throw GuestFault{kNP, true, terr};
    if (gate64 && (!cs.l || cs.db)) throw GuestFault{kGP, true, terr};
    if (gate64 ? uint64_t(int64_t(off << 16) >> 16) != off : off > cs.limit)
        throw GuestFault{kGP, true, 0};
    const unsigned gs = gate64 ? 8 : (type == 12 ? 4 : 2);
    const uint16_t old_cs = s.seg[CS].selector;
    if (!call) {
        load_cs_checked(tsel, td, cpl_);
        s.rip = off;
        return;
    }
    if (is_conforming(cs) || cs.dpl == cpl_) {
        uint64_t sp = s.gpr[RSP];
        uint64_t a1 = rsp_add(sp, -int64_t(gs)), a2 = rsp_add(sp, -2 * int64_t(gs));
        write_sized(SS, a1 & sp_mask(), gs, old_cs);
        write_sized(SS, a2 & sp_mask(), gs, ret_rip);
        s.gpr[RSP] = a2;
        load_cs_checked(tsel, td, cpl_);
        s.rip = off;
        return;
    }
    // More privileged: switch to the stack the TSS gives for the target's DPL.
    const unsigned new_cpl = cs.dpl;
    const uint64_t old_sp = s.gpr[RSP];
    const Segment old_ss = s.seg[SS];
    Segment new_ss;
    Desc sd;
    bool ss_desc = false;
    uint64_t sp;
    if (gate64) {
        const Segment& tr = s.seg[TR];
        uint32_t toff = 4 + new_cpl * 8;
        if (toff + 7 > tr.limit) throw GuestFault{kTS, true, uint32_t(tr.selector & 0xfffc)};
        sp = read_lin<uint64_t>(tr.base + toff, true);
        new_ss.selector = uint16_t(new_cpl);
        new_ss.unusable = 1;
        new_ss.dpl = uint8_t(new_cpl);
        new_ss.db = 1;
    } else {
        uint16_t ss_sel = 0;
        sp = tss_stack(new_cpl, ss_sel);
        const uint32_t serr = ss_sel & 0xfffc;
        if (serr == 0 || (ss_sel & 3) != new_cpl || !fetch_descriptor(ss_sel, sd))
            throw GuestFault{kTS, true, serr};
        new_ss = parse_descriptor(ss_sel, sd);
        if (!is_writable_data(new_ss) || new_ss.dpl != new_cpl) throw GuestFault{kTS, true, serr};
        if (!new_ss.present) throw GuestFault{kSSv, true, serr};
        ss_desc = true;
    }
    // Frame: old SS, old rSP, the parameters (copied from the old stack), old CS, return rIP.
    uint64_t items[36];
    unsigned n = 0;
    items[n++] = old_ss.selector;
    items[n++] = old_sp;
    for (unsigned i = param_count; i-- > 0;)
        items[n++] = read_sized(SS, rsp_add(old_sp, int64_t(i * gs)) & sp_mask(), gs);
    items[n++] = old_cs;
    items[n++] = ret_rip;
    const uint64_t m = gate64 ? ~0ull : (new_ss.db ? 0xffffffffull : 0xffffull);
    const bool sys = new_cpl < 3;
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = (sp - gs * (i + 1)) & m;
        uint64_t lin;
        if (gate64) {
            lin = canonical_or_fault(a, SS);
        } else {
            bool bad = (new_ss.type & 0xc) == 0x4 ? a <= new_ss.limit : a + gs - 1 > new_ss.limit;
            if (bad) throw GuestFault{kSSv, true, uint32_t(new_ss.selector & 0xfffc)};
            lin = (new_ss.base + a) & 0xffffffffull;
        }
        if (gs == 8)
            write_lin<uint64_t>(lin, items[i], sys);
        else if (gs == 4)
            write_lin<uint32_t>(lin, uint32_t(items[i]), sys);
        else
            write_lin<uint16_t>(lin, uint16_t(items[i]), sys);
    }
    if (ss_desc) {
        set_accessed(new_ss.selector, sd);
        new_ss.type |= 1;
    }
    s.seg[SS] = new_ss;
    uint64_t nsp = (sp - gs * n) & m;
    s.gpr[RSP] = (gate64 || new_ss.db) ? nsp : (s.gpr[RSP] & ~0xffffull) | nsp;
    load_cs_checked(tsel, td, new_cpl);
    s.rip = off;
    update_mode();
}

void X86Cpu::far_ret(unsigned osize, uint16_t extra) {
    uint64_t sp = s.gpr[RSP];
    uint64_t new_rip = read_sized(SS, sp & sp_mask(), osize);
    uint16_t sel = uint16_t(read_sized(SS, rsp_add(sp, osize) & sp_mask(), osize));
    if (!pe() || v86()) {
        new_rip &= size_mask(osize);
        if (new_rip > s.seg[CS].limit) throw GuestFault{kGP, true, 0};
        load_real_seg(CS, sel);
        s.rip = new_rip;
        s.gpr[RSP] = rsp_add(sp, 2 * osize + extra);
        return;
    }
    const uint32_t err = sel & 0xfffc;
    const unsigned rpl = sel & 3;
    if (err == 0) throw GuestFault{kGP, true, 0};
    if (rpl < cpl_) throw GuestFault{kGP, true, err};
    Desc d;
    if (!fetch_descriptor(sel, d)) throw GuestFault{kGP, true, err};
    Segment sg = parse_descriptor(sel, d);
    if (!is_code(sg)) throw GuestFault{kGP, true, err};
    if (is_conforming(sg) ? sg.dpl > rpl : sg.dpl != rpl) throw GuestFault{kGP, true, err};
    if (!sg.present) throw GuestFault{kNP, true, err};
    if (lma() && sg.l && sg.db) throw GuestFault{kGP, true, err};
    bool to64 = lma() && sg.l;
    if (!to64) new_rip &= size_mask(osize);
    if (!to64 && new_rip > sg.limit) throw GuestFault{kGP, true, 0};
    if (to64 && uint64_t(int64_t(new_rip << 16) >> 16) != new_rip) throw GuestFault{kGP, true, 0};
    if (rpl == cpl_) {
        load_cs_checked(sel, d, rpl);
        s.rip = new_rip;
        s.gpr[RSP] = rsp_add(sp, 2 * osize + extra);
        return;
    }
    // Return to an outer privilege level: SS:rSP follow the parameters on the stack.
    uint64_t base = rsp_add(sp, 2 * osize + extra);
    uint64_t new_sp = read_sized(SS, base & sp_mask(), osize);
    uint16_t ss_sel = uint16_t(read_sized(SS, rsp_add(base, osize) & sp_mask(), osize));
    Segment ss;
    Desc sd;
    if ((ss_sel & 0xfffc) == 0) {
        if (!(to64 && rpl != 3)) throw GuestFault{kGP, true, 0};
        ss.selector = ss_sel;
        ss.unusable = 1;
        ss.dpl = uint8_t(rpl);
    } else {
        if ((ss_sel & 3) != rpl) throw GuestFault{kGP, true, uint32_t(ss_sel & 0xfffc)};
        if (!fetch_descriptor(ss_sel, sd)) throw GuestFault{kGP, true, uint32_t(ss_sel & 0xfffc)};
        ss = parse_descriptor(ss_sel, sd);
        if (!is_writable_data(ss) || ss.dpl != rpl)
            throw GuestFault{kGP, true, uint32_t(ss_sel & 0xfffc)};
        if (!ss.present) throw GuestFault{kSSv, true, uint32_t(ss_sel & 0xfffc)};
        set_accessed(ss_sel, sd);
    }
    load_cs_checked(sel, d, rpl);
    s.seg[SS] = ss;
    update_mode();
    s.rip = new_rip;
    uint64_t nsp = new_sp + extra;
    s.gpr[RSP] = ss.db || mode64_ ? (osize == 8 || mode64_ ? nsp : nsp & 0xffffffff)
                                  : (s.gpr[RSP] & ~0xffffull) | (nsp & 0xffff);
    invalidate_data_segs_for_cpl();
}

// ---- interrupts and exceptions ----------------------------------------------------------------

void X86Cpu::deliver(uint8_t vector, EventKind kind, bool has_err, uint32_t err, uint64_t ret_rip) {
    if (trace_) trace_->event(index_, vector, has_err, err, s.seg[CS].selector, s.rip, s.cr2);
    if (!pe()) {
        deliver_real(vector, ret_rip);
    } else if (lma()) {
        deliver_long(vector, kind, has_err, err, ret_rip);
    } else {
        deliver_protected(vector, kind, has_err, err, ret_rip);
    }
}

void X86Cpu::deliver_real(uint8_t vector, uint64_t ret_rip) {
    // IVT entry: IP then CS (SDM Vol. 3 §20.1.4). Beyond the IDT limit: #GP, which in real mode
    // soon ends in a triple fault, as on hardware.
    if (uint32_t(vector) * 4 + 3 > s.idt.limit)
        throw GuestFault{kGP, true, uint32_t(vector) * 8 + 2};
    uint64_t entry = (s.idt.base + vector * 4u) & 0xffffffffull;
    uint16_t ip = read_lin<uint16_t>(entry, true);
    uint16_t cs = read_lin<uint16_t>(entry + 2, true);
    uint64_t sp = s.gpr[RSP];
    uint64_t a1 = rsp_add(sp, -2), a2 = rsp_add(sp, -4), a3 = rsp_add(sp, -6);
    write_seg<uint16_t>(SS, a1 & sp_mask(), uint16_t(s.rflags));
    write_seg<uint16_t>(SS, a2 & sp_mask(), s.seg[CS].selector);
    write_seg<uint16_t>(SS, a3 & sp_mask(), uint16_t(ret_rip));
    s.gpr[RSP] = a3;
    s.rflags &= ~(kIF | kTF | kAC | kRF);
    load_real_seg(CS, cs);
    s.rip = ip;
}

uint64_t X86Cpu::tss_stack(unsigned dpl, uint16_t& ss_out) {
    const Segment& tr = s.seg[TR];
    const uint32_t err = tr.selector & 0xfffc;
    if (tr.type == 9 || tr.type == 11) {
        uint32_t off = 4 + dpl * 8;
        if (off + 5 > tr.limit) throw GuestFault{kTS, true, err};
        ss_out = read_lin<uint16_t>((tr.base + off + 4) & 0xffffffffull, true);
        return read_lin<uint32_t>((tr.base + off) & 0xffffffffull, true);
    }
    if (tr.type == 1 || tr.type == 3) {
        uint32_t off = 2 + dpl * 4;
        if (off + 3 > tr.limit) throw GuestFault{kTS, true, err};
        ss_out = read_lin<uint16_t>((tr.base + off + 2) & 0xffffffffull, true);
        return read_lin<uint16_t>((tr.base + off) & 0xffffffffull, true);
    }
    throw GuestFault{kTS, true, err};
}

void X86Cpu::deliver_protected(uint8_t vector, EventKind kind, bool has_err, uint32_t err,
                               uint64_t ret_rip) {
    const bool soft = kind == EventKind::SoftInt || kind == EventKind::SoftException;
    const uint32_t ext =
        (kind == EventKind::External || kind == EventKind::Nmi || kind == EventKind::Icebp) ? 1 : 0;
    const uint32_t idt_err = uint32_t(vector) * 8 + 2 + ext;
    // Virtual-8086 mode without VME: INT n is IOPL-sensitive (the monitor emulates it after the
    // #GP); exceptions, INT3, INTO and external interrupts go to a ring-0 handler.
    const bool from_v86 = v86();
    if (from_v86 && kind == EventKind::SoftInt && ((s.rflags >> 12) & 3) < 3)
        throw GuestFault{kGP, true, 0};
    if (uint32_t(vector) * 8 + 7 > s.idt.limit) throw GuestFault{kGP, true, idt_err};
    uint64_t gate = read_lin<uint64_t>((s.idt.base + vector * 8u) & 0xffffffffull, true);
    unsigned type = (gate >> 40) & 0x1f; // S bit included: must be 0
    unsigned gdpl = (gate >> 45) & 3;
    if (type == 5) {
        if (soft && gdpl < cpl_) throw GuestFault{kGP, true, idt_err - ext};
        if (!((gate >> 47) & 1)) throw GuestFault{kNP, true, idt_err};
        task_switch(uint16_t(gate >> 16), TaskReason::Int, ret_rip, has_err, err);
        return;
    }
    if (type != 6 && type != 7 && type != 14 && type != 15) throw GuestFault{kGP, true, idt_err};
    if (soft && gdpl < cpl_) throw GuestFault{kGP, true, idt_err - ext};
    if (!((gate >> 47) & 1)) throw GuestFault{kNP, true, idt_err};
    const bool gate32 = type >= 14;
    const bool trap = type & 1;
    const uint16_t sel = uint16_t(gate >> 16);
    uint64_t off = (gate & 0xffff) | (gate32 ? ((gate >> 48) & 0xffff) << 16 : 0);
    if ((sel & 0xfffc) == 0) throw GuestFault{kGP, true, ext};
    Desc d;
    if (!fetch_descriptor(sel, d)) throw GuestFault{kGP, true, (sel & 0xfffcu) + ext};
    Segment cs = parse_descriptor(sel, d);
    if (!is_code(cs) || cs.dpl > cpl_) throw GuestFault{kGP, true, (sel & 0xfffcu) + ext};
    if (!cs.present) throw GuestFault{kNP, true, (sel & 0xfffcu) + ext};
    if (off > cs.limit) throw GuestFault{kGP, true, 0};
    const unsigned gs = gate32 ? 4 : 2;
    const uint64_t old_flags = s.rflags;
    const uint16_t old_cs = s.seg[CS].selector;
    unsigned new_cpl = cpl_;
    Segment new_ss = s.seg[SS];
    uint64_t sp;
    struct Item {
        uint64_t v;
    } items[10];
    unsigned n = 0;
    if (from_v86 && (is_conforming(cs) || cs.dpl != 0))
        throw GuestFault{kGP, true, (sel & 0xfffcu) + ext};
    if (!is_conforming(cs) && cs.dpl < cpl_) {
        new_cpl = cs.dpl;
        uint16_t ss_sel = 0;
        uint64_t new_sp = tss_stack(new_cpl, ss_sel);
        const uint32_t serr = (ss_sel & 0xfffcu) + ext;
        if ((ss_sel & 0xfffc) == 0) throw GuestFault{kTS, true, ext};
        if ((ss_sel & 3) != new_cpl) throw GuestFault{kTS, true, serr};
        Desc sd;
        if (!fetch_descriptor(ss_sel, sd)) throw GuestFault{kTS, true, serr};
        new_ss = parse_descriptor(ss_sel, sd);
        if (!is_writable_data(new_ss) || new_ss.dpl != new_cpl) throw GuestFault{kTS, true, serr};
        if (!new_ss.present) throw GuestFault{kSSv, true, serr};
        set_accessed(ss_sel, sd);
        new_ss.type |= 1;
        sp = new_sp;
        if (from_v86) { // the real-mode data selectors are saved too (SDM Vol. 3 §20.3.1.1)
            items[n++] = {s.seg[GS].selector};
            items[n++] = {s.seg[FS].selector};
            items[n++] = {s.seg[DS].selector};
            items[n++] = {s.seg[ES].selector};
        }
        items[n++] = {s.seg[SS].selector};
        items[n++] = {s.gpr[RSP]};
    } else if (is_conforming(cs) || cs.dpl == cpl_) {
        sp = s.gpr[RSP];
    } else {
        throw GuestFault{kGP, true, (sel & 0xfffcu) + ext};
    }
    items[n++] = {old_flags};
    items[n++] = {old_cs};
    items[n++] = {ret_rip};
    if (has_err) items[n++] = {err};
    // Write the frame on the (new) stack with the (new) SS's limit checks, then commit.
    const uint64_t m = new_ss.db ? 0xffffffffull : 0xffffull;
    const bool sys = new_cpl < 3;
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = (sp - gs * (i + 1)) & m;
        bool bad = (new_ss.type & 0xc) == 0x4 ? (a <= new_ss.limit) : (a + gs - 1 > new_ss.limit);
        if (bad)
            throw GuestFault{kSSv, true, new_cpl != cpl_ ? (new_ss.selector & 0xfffcu) + ext : 0};
        uint64_t lin = (new_ss.base + a) & 0xffffffffull;
        if (gs == 4)
            write_lin<uint32_t>(lin, uint32_t(items[i].v), sys);
        else
            write_lin<uint16_t>(lin, uint16_t(items[i].v), sys);
    }
    uint64_t final_sp = (sp - gs * n) & m;
    if (new_cpl != cpl_) {
        s.seg[SS] = new_ss;
        s.gpr[RSP] = new_ss.db ? final_sp : (s.gpr[RSP] & ~0xffffull) | final_sp;
    } else {
        s.gpr[RSP] = new_ss.db ? final_sp : (s.gpr[RSP] & ~0xffffull) | final_sp;
    }
    cs.selector = uint16_t((sel & 0xfffc) | new_cpl);
    s.seg[CS] = cs;
    set_accessed(sel, d);
    if (from_v86) {
        for (unsigned r : {ES, DS, FS, GS}) {
            s.seg[r] = Segment{};
            s.seg[r].unusable = 1;
        }
    }
    s.rflags &= ~(kTF | kNT | kRF | kVM);
    if (!trap) s.rflags &= ~kIF;
    s.rip = off;
    update_mode();
}

void X86Cpu::deliver_long(uint8_t vector, EventKind kind, bool has_err, uint32_t err,
                          uint64_t ret_rip) {
    const bool soft = kind == EventKind::SoftInt || kind == EventKind::SoftException;
    const uint32_t ext =
        (kind == EventKind::External || kind == EventKind::Nmi || kind == EventKind::Icebp) ? 1 : 0;
    const uint32_t idt_err = uint32_t(vector) * 8 + 2 + ext;
    if (uint32_t(vector) * 16 + 15 > s.idt.limit) throw GuestFault{kGP, true, idt_err};
    uint64_t lo = read_lin<uint64_t>(s.idt.base + vector * 16u, true);
    uint64_t hi = read_lin<uint64_t>(s.idt.base + vector * 16u + 8, true);
    unsigned type = (lo >> 40) & 0x1f;
    unsigned gdpl = (lo >> 45) & 3;
    // IA-32e mode has only 64-bit interrupt and trap gates (SDM Vol. 3 §6.14.1).
    if (type != 14 && type != 15) throw GuestFault{kGP, true, idt_err};
    if (soft && gdpl < cpl_) throw GuestFault{kGP, true, idt_err - ext};
    if (!((lo >> 47) & 1)) throw GuestFault{kNP, true, idt_err};
    const uint16_t sel = uint16_t(lo >> 16);
    const uint64_t off = (lo & 0xffff) | (((lo >> 48) & 0xffff) << 16) | (hi << 32);
    const unsigned ist = (lo >> 32) & 7;
    if ((sel & 0xfffc) == 0) throw GuestFault{kGP, true, ext};
    Desc d;
    if (!fetch_descriptor(sel, d)) throw GuestFault{kGP, true, (sel & 0xfffcu) + ext};
    Segment cs = parse_descriptor(sel, d);
    if (!is_code(cs) || cs.dpl > cpl_ || !cs.l || cs.db)
        throw GuestFault{kGP, true, (sel & 0xfffcu) + ext};
    if (!cs.present) throw GuestFault{kNP, true, (sel & 0xfffcu) + ext};
    if (uint64_t(int64_t(off << 16) >> 16) != off) throw GuestFault{kGP, true, ext};
    unsigned new_cpl = is_conforming(cs) ? cpl_ : cs.dpl;
    const Segment& tr = s.seg[TR];
    uint64_t sp;
    if (ist || new_cpl < cpl_) {
        uint32_t toff = ist ? 0x24 + (ist - 1) * 8 : 4 + new_cpl * 8;
        if (toff + 7 > tr.limit) throw GuestFault{kTS, true, (tr.selector & 0xfffcu) + ext};
        sp = read_lin<uint64_t>(tr.base + toff, true);
    } else {
        sp = s.gpr[RSP];
    }
    if (uint64_t(int64_t(sp << 16) >> 16) != sp) throw GuestFault{kSSv, true, ext};
    sp &= ~0xfull; // the frame is 16-byte aligned (SDM Vol. 3 §6.14.2)
    uint64_t items[6] = {s.seg[SS].selector, s.gpr[RSP], s.rflags,
                         s.seg[CS].selector, ret_rip,    err};
    unsigned n = has_err ? 6 : 5;
    const bool sys = new_cpl < 3;
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = sp - 8 * (i + 1);
        if (uint64_t(int64_t(a << 16) >> 16) != a) throw GuestFault{kSSv, true, ext};
        write_lin<uint64_t>(a, items[i], sys);
    }
    if (new_cpl != cpl_) {
        // The new SS is a null selector with RPL = new CPL.
        Segment ss;
        ss.selector = uint16_t(new_cpl);
        ss.unusable = 1;
        ss.dpl = uint8_t(new_cpl);
        ss.db = 1;
        s.seg[SS] = ss;
    }
    s.gpr[RSP] = sp - 8 * n;
    cs.selector = uint16_t((sel & 0xfffc) | new_cpl);
    s.seg[CS] = cs;
    set_accessed(sel, d);
    s.rflags &= ~(kTF | kNT | kRF | kVM);
    if (type == 14) s.rflags &= ~kIF;
    s.rip = off;
    update_mode();
}

void X86Cpu::iret(unsigned os) {
    uint64_t sp = s.gpr[RSP];
    auto at = [&](unsigned i) {
        return read_sized(SS, rsp_add(sp, int64_t(i * os)) & sp_mask(), os);
    };
    if (!pe()) {
        uint64_t ip = at(0), cs = at(1), fl = at(2);
        if ((ip & size_mask(os)) > s.seg[CS].limit) throw GuestFault{kGP, true, 0};
        if (os == 4)
            s.rflags = (fl & 0x257fd5) | (s.rflags & 0x1a0000) | kFlagsFixed1;
        else
            s.rflags = (s.rflags & ~0xffffull) | (fl & 0xffff) | kFlagsFixed1;
        s.rflags &= ~0x8028ull;
        load_real_seg(CS, uint16_t(cs));
        s.rip = ip & size_mask(os);
        s.gpr[RSP] = rsp_add(sp, 3 * os);
        s.nmi_masked = false;
        return;
    }
    if (v86()) {
        // IOPL-sensitive; with IOPL 3 it is a real-mode IRET that cannot change IOPL or VM.
        if (((s.rflags >> 12) & 3) < 3) throw GuestFault{kGP, true, 0};
        uint64_t ip = at(0), cs = at(1), fl = at(2);
        if ((ip & size_mask(os)) > 0xffff) throw GuestFault{kGP, true, 0};
        set_rflags(fl, os, false);
        load_real_seg(CS, uint16_t(cs));
        s.rip = ip & size_mask(os);
        s.gpr[RSP] = rsp_add(sp, 3 * os);
        s.nmi_masked = false;
        return;
    }
    if (s.rflags & kNT) {
        if (lma()) throw GuestFault{kGP, true, 0};
        // Nested task return: back to the task linked in this TSS.
        uint16_t link = read_lin<uint16_t>(s.seg[TR].base & 0xffffffffull, true);
        task_switch(link, TaskReason::Iret, next_rip_, false, 0);
        return;
    }
    uint64_t new_rip = at(0);
    uint16_t sel = uint16_t(at(1));
    uint64_t new_fl = at(2);
    if (!lma() && os == 4 && (new_fl & kVM) && cpl_ == 0) {
        // Return to virtual-8086 mode: ESP, SS, ES, DS, FS, GS follow (SDM Vol. 2 IRET).
        uint64_t new_sp = at(3);
        uint16_t sels[5];
        for (unsigned i = 0; i < 5; i++) sels[i] = uint16_t(at(4 + i));
        s.rflags = (new_fl & 0x3f7fd5) | kFlagsFixed1;
        const unsigned order[5] = {SS, ES, DS, FS, GS};
        for (unsigned i = 0; i < 5; i++) load_real_seg(order[i], sels[i]);
        load_real_seg(CS, sel);
        s.rip = new_rip & 0xffff;
        s.gpr[RSP] = new_sp & 0xffffffff;
        s.nmi_masked = false;
        update_mode();
        return;
    }
    const uint32_t err = sel & 0xfffc;
    const unsigned rpl = sel & 3;
    if (err == 0) throw GuestFault{kGP, true, 0};
    Desc d;
    if (!fetch_descriptor(sel, d)) throw GuestFault{kGP, true, err};
    Segment cs = parse_descriptor(sel, d);
    if (!is_code(cs) || rpl < cpl_) throw GuestFault{kGP, true, err};
    if (is_conforming(cs) ? cs.dpl > rpl : cs.dpl != rpl) throw GuestFault{kGP, true, err};
    if (!cs.present) throw GuestFault{kNP, true, err};
    if (lma() && cs.l && cs.db) throw GuestFault{kGP, true, err};
    const bool to64 = lma() && cs.l;
    if (!to64) new_rip &= size_mask(os);
    if (!to64 && new_rip > cs.limit) throw GuestFault{kGP, true, 0};
    if (to64 && uint64_t(int64_t(new_rip << 16) >> 16) != new_rip) throw GuestFault{kGP, true, 0};
    // 64-bit mode always pops SS:RSP; otherwise only a return to an outer level does.
    const bool pop_stack = mode64_ || rpl > cpl_;
    Segment ss = s.seg[SS];
    uint64_t new_sp = 0;
    Desc sd;
    bool ss_desc = false;
    if (pop_stack) {
        new_sp = at(3);
        uint16_t ss_sel = uint16_t(at(4));
        const uint32_t serr = ss_sel & 0xfffc;
        if (serr == 0) {
            if (!(to64 && rpl != 3)) throw GuestFault{kGP, true, 0};
            ss = Segment{};
            ss.selector = ss_sel;
            ss.unusable = 1;
            ss.dpl = uint8_t(rpl);
            ss.db = 1;
        } else {
            if ((ss_sel & 3) != rpl) throw GuestFault{kGP, true, serr};
            if (!fetch_descriptor(ss_sel, sd)) throw GuestFault{kGP, true, serr};
            ss = parse_descriptor(ss_sel, sd);
            if (!is_writable_data(ss) || ss.dpl != rpl) throw GuestFault{kGP, true, serr};
            if (!ss.present) throw GuestFault{kSSv, true, serr};
            ss_desc = true;
        }
    }
    // Commit. Flag rules use the CPL before the return.
    uint64_t mask = kStatusFlags | kTF | kDF | kNT | kRF | kAC | kID;
    unsigned iopl = (s.rflags >> 12) & 3;
    if (cpl_ == 0) mask |= kIOPL | kVIF | kVIP;
    if (cpl_ <= iopl) mask |= kIF;
    if (os == 2) mask &= 0xffff;
    s.rflags = ((s.rflags & ~mask) | (new_fl & mask) | kFlagsFixed1) & ~0xffc08028ull;
    set_accessed(sel, d);
    cs.type |= 1;
    s.seg[CS] = cs;
    if (pop_stack) {
        if (ss_desc) {
            set_accessed(ss.selector, sd);
            ss.type |= 1;
        }
        s.seg[SS] = ss;
        if (lma() || ss.db)
            s.gpr[RSP] =
                os == 8 || to64 ? new_sp : (os == 4 ? new_sp & 0xffffffff : new_sp & 0xffff);
        else
            s.gpr[RSP] = (s.gpr[RSP] & ~0xffffull) | (new_sp & 0xffff);
    } else {
        s.gpr[RSP] = rsp_add(sp, 3 * os);
    }
    bool outer = rpl > cpl_;
    s.rip = new_rip;
    s.nmi_masked = false;
    update_mode();
    if (outer) invalidate_data_segs_for_cpl();
}

// ---- task switches ---------------------------------------------------------------------------

void X86Cpu::task_switch(uint16_t sel, TaskReason why, uint64_t ret_rip, bool has_err,
                         uint32_t err_code) {
    // SDM Vol. 3 §8.3, 32-bit (type 9/11) and 16-bit (type 1/3) TSSs.
    const uint32_t serr = sel & 0xfffc;
    const uint8_t bad_vec = why == TaskReason::Iret ? kTS : kGP;
    if ((sel & 4) || serr == 0) throw GuestFault{bad_vec, true, serr};
    Desc d;
    if (!fetch_descriptor(sel, d)) throw GuestFault{bad_vec, true, serr};
    Segment nt = parse_descriptor(sel, d);
    const bool valid = !nt.s && (nt.type == 1 || nt.type == 3 || nt.type == 9 || nt.type == 11);
    if (!valid) throw GuestFault{bad_vec, true, serr};
    const bool busy = nt.type & 2;
    if (why == TaskReason::Iret ? !busy : busy) throw GuestFault{bad_vec, true, serr};
    if (!nt.present) throw GuestFault{kNP, true, serr};
    const bool n32 = nt.type & 8;
    if (nt.limit < (n32 ? 0x67u : 0x2bu)) throw GuestFault{kTS, true, serr};
    auto lin = [](const Segment& t, uint32_t off) { return (t.base + off) & 0xffffffffull; };

    // Read the whole new state first, so that a fault here leaves the old task untouched.
    uint64_t ncr3 = 0, neip, nflags;
    uint32_t ngpr[8];
    uint16_t nseg[6] = {}, nldt;
    if (n32) {
        ncr3 = read_lin<uint32_t>(lin(nt, 0x1c), true);
        neip = read_lin<uint32_t>(lin(nt, 0x20), true);
        nflags = read_lin<uint32_t>(lin(nt, 0x24), true);
        for (unsigned i = 0; i < 8; i++) ngpr[i] = read_lin<uint32_t>(lin(nt, 0x28 + 4 * i), true);
        for (unsigned i = 0; i < 6; i++) nseg[i] = read_lin<uint16_t>(lin(nt, 0x48 + 4 * i), true);
        nldt = read_lin<uint16_t>(lin(nt, 0x60), true);
    } else {
        neip = read_lin<uint16_t>(lin(nt, 0x0e), true);
        nflags = read_lin<uint16_t>(lin(nt, 0x10), true);
        for (unsigned i = 0; i < 8; i++) ngpr[i] = read_lin<uint16_t>(lin(nt, 0x12 + 2 * i), true);
        for (unsigned i = 0; i < 4; i++) nseg[i] = read_lin<uint16_t>(lin(nt, 0x22 + 2 * i), true);
        nldt = read_lin<uint16_t>(lin(nt, 0x2a), true);
    }

    // Save the outgoing task's state in its TSS.
    const Segment ot = s.seg[TR];
    const bool o32 = ot.type & 8;
    uint64_t oflags = s.rflags;
    if (why == TaskReason::Iret) oflags &= ~kNT;
    if (o32) {
        write_lin<uint32_t>(lin(ot, 0x20), uint32_t(ret_rip), true);
        write_lin<uint32_t>(lin(ot, 0x24), uint32_t(oflags), true);
        for (unsigned i = 0; i < 8; i++)
            write_lin<uint32_t>(lin(ot, 0x28 + 4 * i), uint32_t(s.gpr[i]), true);
        for (unsigned i = 0; i < 6; i++)
            write_lin<uint16_t>(lin(ot, 0x48 + 4 * i), s.seg[i].selector, true);
    } else {
        write_lin<uint16_t>(lin(ot, 0x0e), uint16_t(ret_rip), true);
        write_lin<uint16_t>(lin(ot, 0x10), uint16_t(oflags), true);
        for (unsigned i = 0; i < 8; i++)
            write_lin<uint16_t>(lin(ot, 0x12 + 2 * i), uint16_t(s.gpr[i]), true);
        for (unsigned i = 0; i < 4; i++)
            write_lin<uint16_t>(lin(ot, 0x22 + 2 * i), s.seg[i].selector, true);
    }
    auto set_busy = [&](uint16_t tsel, bool on) {
        uint64_t a = (s.gdt.base + (tsel & ~7u) + 5) & 0xffffffffull;
        uint8_t b = read_lin<uint8_t>(a, true);
        write_lin<uint8_t>(a, on ? (b | 2) : (b & ~2), true);
    };
    if (why == TaskReason::Jmp || why == TaskReason::Iret) set_busy(ot.selector, false);
    if (why == TaskReason::Call || why == TaskReason::Int) {
        write_lin<uint16_t>(lin(nt, 0), ot.selector, true); // back link
        nflags |= kNT;
    }
    if (why != TaskReason::Iret) set_busy(sel, true);

    // Commit: TR, CR0.TS, CR3, flags, registers; then the segments, whose faults are raised in
    // the context of the new task (#TS with the offending selector).
    nt.type |= 2;
    s.seg[TR] = nt;
    s.cr0 |= 8;
    if (n32 && (s.cr0 & (1ull << 31))) {
        s.cr3 = ncr3;
        tlb_flush_nonglobal();
    }
    if (n32) {
        s.rflags = (nflags & 0x3f7fd7) | kFlagsFixed1;
        s.rip = neip;
        for (unsigned i = 0; i < 8; i++) s.gpr[i] = ngpr[i];
    } else {
        s.rflags = (s.rflags & ~0xffffull) | (nflags & 0x7fd7) | kFlagsFixed1;
        s.rip = neip;
        for (unsigned i = 0; i < 8; i++) s.gpr[i] = (s.gpr[i] & ~0xffffull) | ngpr[i];
    }
    for (unsigned i = 0; i < 6; i++) {
        s.seg[i].selector = nseg[i];
        s.seg[i].unusable = 1; // until loaded below
    }
    s.seg[LDTR].selector = nldt;
    // LDT: from the GDT, type 2, present.
    if ((nldt & 0xfffc) == 0) {
        s.seg[LDTR] = Segment{};
        s.seg[LDTR].unusable = 1;
    } else {
        Desc ld;
        if ((nldt & 4) || !fetch_descriptor(nldt, ld)) throw GuestFault{kTS, true, nldt & 0xfffcu};
        Segment l = parse_descriptor(nldt, ld);
        if (l.s || l.type != 2) throw GuestFault{kTS, true, nldt & 0xfffcu};
        if (!l.present) throw GuestFault{kTS, true, nldt & 0xfffcu};
        s.seg[LDTR] = l;
    }
    if (s.rflags & kVM) {
        for (unsigned i = 0; i < 6; i++) load_real_seg(i, nseg[i]);
    } else {
        // CS decides the new CPL; SS must match it; then the data segments.
        const uint16_t cs_sel = nseg[CS];
        const unsigned ncpl = cs_sel & 3;
        Desc cd;
        if ((cs_sel & 0xfffc) == 0 || !fetch_descriptor(cs_sel, cd))
            throw GuestFault{kTS, true, cs_sel & 0xfffcu};
        Segment cs = parse_descriptor(cs_sel, cd);
        if (!is_code(cs) || (is_conforming(cs) ? cs.dpl > ncpl : cs.dpl != ncpl))
            throw GuestFault{kTS, true, cs_sel & 0xfffcu};
        if (!cs.present) throw GuestFault{kNP, true, cs_sel & 0xfffcu};
        const uint16_t ss_sel = nseg[SS];
        Desc sd;
        if ((ss_sel & 0xfffc) == 0 || !fetch_descriptor(ss_sel, sd))
            throw GuestFault{kTS, true, ss_sel & 0xfffcu};
        Segment ss = parse_descriptor(ss_sel, sd);
        if ((ss_sel & 3) != ncpl || !is_writable_data(ss) || ss.dpl != ncpl)
            throw GuestFault{kTS, true, ss_sel & 0xfffcu};
        if (!ss.present) throw GuestFault{kSSv, true, ss_sel & 0xfffcu};
        set_accessed(cs_sel, cd);
        set_accessed(ss_sel, sd);
        cs.type |= 1;
        ss.type |= 1;
        s.seg[CS] = cs;
        s.seg[SS] = ss;
        update_mode();
        for (unsigned r : {ES, DS, FS, GS}) {
            try {
                load_seg(r, nseg[r]);
            } catch (const GuestFault& f) {
                if (f.vector == kGP) throw GuestFault{kTS, true, nseg[r] & 0xfffcu};
                throw;
            }
        }
    }
    update_mode();
    // An exception delivered through a task gate pushes its error code on the new stack.
    if (has_err) push(err_code, n32 ? 4 : 2);
}

// ---- fast system calls ----------------------------------------------------------------------

void X86Cpu::syscall_insn(const Insn& in) {
    // Intel offers SYSCALL/SYSRET in 64-bit mode only (SDM Vol. 2 SYSCALL: #UD unless CS.L,
    // EFER.LMA and EFER.SCE); 32-bit guests on Intel use SYSENTER.
    if (!(s.efer & kEferSce) || !mode64_)
        undefined_opcode(&in, "SYSCALL outside 64-bit mode or SCE = 0");
    uint16_t sel = uint16_t((s.star >> 32) & 0xfffc);
    s.gpr[RCX] = next_rip_;
    s.gpr[R11] = s.rflags & ~kRF;
    s.rip = s.lstar;
    s.seg[CS] = flat_segment(sel, true, 0, true, false);
    s.seg[SS] = flat_segment(uint16_t(sel + 8), false, 0, false, true);
    s.rflags = (s.rflags & ~(s.sfmask | kRF)) | kFlagsFixed1;
    update_mode();
}

void X86Cpu::sysret_insn(const Insn& in) {
    if (!(s.efer & kEferSce) || !mode64_)
        undefined_opcode(&in, "SYSRET outside 64-bit mode or SCE = 0");
    if (cpl_ != 0) throw GuestFault{kGP, true, 0};
    uint16_t base = uint16_t((s.star >> 48) & 0xffff);
    if (in.osize == 8) {
        if (uint64_t(int64_t(s.gpr[RCX] << 16) >> 16) != s.gpr[RCX]) throw GuestFault{kGP, true, 0};
        s.seg[CS] = flat_segment(uint16_t((base + 16) | 3), true, 3, true, false);
        s.rip = s.gpr[RCX];
    } else {
        s.seg[CS] = flat_segment(uint16_t(base | 3), true, 3, false, true);
        s.rip = s.gpr[RCX] & 0xffffffff;
    }
    s.rflags = (s.gpr[R11] & 0x3c7fd7) | kFlagsFixed1;
    // SS keeps its selector + 8 with fixed attributes (Intel leaves the cached DPL at 3).
    s.seg[SS] = flat_segment(uint16_t((base + 8) | 3), false, 3, false, true);
    update_mode();
}

void X86Cpu::sysenter_insn() {
    if (!pe()) throw GuestFault{kGP, true, 0};
    uint16_t sel = uint16_t(s.sysenter_cs & 0xfffc);
    if (sel == 0) throw GuestFault{kGP, true, 0};
    s.rflags &= ~(kVM | kIF | kRF);
    s.seg[CS] = flat_segment(sel, true, 0, lma(), !lma());
    s.seg[SS] = flat_segment(uint16_t(sel + 8), false, 0, false, true);
    s.rip = lma() ? s.sysenter_eip : s.sysenter_eip & 0xffffffff;
    s.gpr[RSP] = lma() ? s.sysenter_esp : s.sysenter_esp & 0xffffffff;
    update_mode();
}

void X86Cpu::sysexit_insn(const Insn& in) {
    if (!pe() || cpl_ != 0) throw GuestFault{kGP, true, 0};
    uint16_t sel = uint16_t(s.sysenter_cs & 0xfffc);
    if (sel == 0) throw GuestFault{kGP, true, 0};
    if (in.osize == 8) {
        if (uint64_t(int64_t(s.gpr[RDX] << 16) >> 16) != s.gpr[RDX] ||
            uint64_t(int64_t(s.gpr[RCX] << 16) >> 16) != s.gpr[RCX])
            throw GuestFault{kGP, true, 0};
        s.seg[CS] = flat_segment(uint16_t((sel + 32) | 3), true, 3, true, false);
        s.seg[SS] = flat_segment(uint16_t((sel + 40) | 3), false, 3, false, true);
        s.rip = s.gpr[RDX];
        s.gpr[RSP] = s.gpr[RCX];
    } else {
        s.seg[CS] = flat_segment(uint16_t((sel + 16) | 3), true, 3, false, true);
        s.seg[SS] = flat_segment(uint16_t((sel + 24) | 3), false, 3, false, true);
        s.rip = s.gpr[RDX] & 0xffffffff;
        s.gpr[RSP] = s.gpr[RCX] & 0xffffffff;
    }
    update_mode();
}

} // namespace hvm::emu
