// Integer instruction execution: the one-byte map and the integer part of the 0F map. One switch,
// no virtual calls; system instructions are in system.cpp, far transfers and interrupts in
// protect.cpp, x87/SSE in fpu_sse.cpp.
#include "vcpu/emu/rmw.hpp"

namespace hvm::emu {

namespace {
// Instructions that accept LOCK with a memory destination (SDM Vol. 2 "LOCK").
bool lockable(const Insn& in) {
    if (!in.mem()) return false;
    unsigned r = in.reg & 7;
    switch (in.op) {
    case 0x00:
    case 0x01:
    case 0x08:
    case 0x09:
    case 0x10:
    case 0x11:
    case 0x18:
    case 0x19:
    case 0x20:
    case 0x21:
    case 0x28:
    case 0x29:
    case 0x30:
    case 0x31:
    case 0x86:
    case 0x87: return true;
    case 0x80:
    case 0x81:
    case 0x82:
    case 0x83: return r != 7;
    case 0xf6:
    case 0xf7: return r == 2 || r == 3;
    case 0xfe:
    case 0xff: return r < 2;
    case 0x1ab:
    case 0x1b3:
    case 0x1bb:
    case 0x1b0:
    case 0x1b1:
    case 0x1c0:
    case 0x1c1: return true;
    case 0x1ba: return r >= 5;
    case 0x1c7: return r == 1;
    default: return false;
    }
}
} // namespace

void X86Cpu::jump_near(uint64_t target, unsigned osize) {
    if (mode64_) {
        if (osize != 8) target &= size_mask(osize);
        if (uint64_t(int64_t(target << 16) >> 16) != target) throw GuestFault{kGP, true, 0};
    } else {
        target &= size_mask(osize);
        check_cs_limit(target);
    }
    s.rip = target;
}

void X86Cpu::check_cs_limit(uint64_t rip) {
    if (!mode64_ && rip > s.seg[CS].limit) throw GuestFault{kGP, true, 0};
}

void X86Cpu::set_rflags(uint64_t v, unsigned osize, bool popf) {
    // POPF/IRET rules (SDM Vol. 2 POPF): IOPL only at CPL 0, IF only when CPL <= IOPL; VM, VIP,
    // VIF and RF are never set by POPF.
    uint64_t mask = kStatusFlags | kTF | kDF | kNT | kAC | kID;
    unsigned iopl = (s.rflags >> 12) & 3;
    if (cpl_ == 0) mask |= kIOPL;
    if (cpl_ <= iopl) mask |= kIF;
    if (!popf) mask |= kRF;
    if (osize == 2) mask &= 0xffff;
    s.rflags = ((s.rflags & ~mask) | (v & mask) | kFlagsFixed1) & ~0xffc08028ull;
}

uint64_t X86Cpu::io_in(uint16_t port, unsigned size) {
    uint8_t buf[4] = {0xff, 0xff, 0xff, 0xff};
    IoRequest req;
    req.kind = IoRequest::Kind::Pio;
    req.size = uint8_t(size);
    req.addr = port;
    req.data = buf;
    req.vcpu = index_;
    io_.handle_io(req);
    uint32_t v = 0;
    memcpy(&v, buf, size);
    return v;
}

void X86Cpu::io_out(uint16_t port, unsigned size, uint64_t v) {
    uint8_t buf[4];
    memcpy(buf, &v, 4);
    IoRequest req;
    req.kind = IoRequest::Kind::Pio;
    req.is_write = true;
    req.size = uint8_t(size);
    req.addr = port;
    req.data = buf;
    req.vcpu = index_;
    io_.handle_io(req);
    sync_a20(); // port 0x92 / the keyboard controller may have moved the A20 gate
}

void X86Cpu::check_io(uint16_t port, unsigned size) {
    // Protected mode with CPL > IOPL (or v8086): the TSS I/O permission bitmap decides
    // (SDM Vol. 1 §19.5).
    if (!pe()) return;
    unsigned iopl = (s.rflags >> 12) & 3;
    if (!v86() && cpl_ <= iopl) return;
    const Segment& tr = s.seg[TR];
    if ((tr.type != 9 && tr.type != 11) || tr.limit < 103) throw GuestFault{kGP, true, 0};
    uint16_t base = read_lin<uint16_t>(tr.base + 0x66, true);
    uint32_t byte = base + port / 8u;
    if (byte + 1 > tr.limit) throw GuestFault{kGP, true, 0};
    uint16_t bits = read_lin<uint16_t>(tr.base + byte, true);
    if ((bits >> (port & 7)) & ((1u << size) - 1)) throw GuestFault{kGP, true, 0};
}

void X86Cpu::exec(const Insn& in) {
    const unsigned os = in.osize;
    const bool rex = in.rex != 0;
    uint64_t& fl = s.rflags;
    s.rip = next_rip_;
    if (in.lock && !lockable(in)) undefined_opcode(&in, "LOCK prefix on a non-lockable form");

    if (in.op < 0x40 && (in.op & 7) < 6) {
        unsigned aop = (in.op >> 3) & 7;
        unsigned size = (in.op & 1) ? os : 1;
        switch (in.op & 7) {
        case 0:
        case 1: {
            uint64_t src = reg(in.reg, size, rex);
            if (aop == kCmp)
                alu_op(aop, fl, read_rm(in, size), src, size);
            else
                rmw(in, size, [&](uint64_t d) { return alu_op(aop, fl, d, src, size); });
            return;
        }
        case 2:
        case 3: {
            uint64_t v = alu_op(aop, fl, reg(in.reg, size, rex), read_rm(in, size), size);
            if (aop != kCmp) set_reg(in.reg, size, v, rex);
            return;
        }
        default: {
            uint64_t v = alu_op(aop, fl, reg(RAX, size, false), in.imm, size);
            if (aop != kCmp) set_reg(RAX, size, v, false);
            return;
        }
        }
    }
    if (in.op >= 0x100) {
        exec_0f(in);
        return;
    }

    switch (in.op) {
    case 0x06:
    case 0x0e:
    case 0x16:
    case 0x1e: { // PUSH ES/CS/SS/DS
        // Recent Intel CPUs write only the 16-bit selector into a 32/64-bit slot.
        uint64_t nsp = rsp_add(s.gpr[RSP], -int64_t(os));
        write_seg<uint16_t>(SS, nsp & sp_mask(), s.seg[in.op >> 3].selector);
        s.gpr[RSP] = nsp;
        return;
    }
    case 0x07:
    case 0x17:
    case 0x1f: { // POP ES/SS/DS
        uint64_t v = read_sized(SS, s.gpr[RSP] & sp_mask(), os);
        load_seg(in.op >> 3, uint16_t(v));
        s.gpr[RSP] = rsp_add(s.gpr[RSP], os);
        if (in.op == 0x17) s.interrupt_shadow = true;
        return;
    }
    case 0x27:
    case 0x2f:
    case 0x37:
    case 0x3f:
    case 0xd4:
    case 0xd5:
    case 0xd6: exec_bcd(in); return;
    case 0x40:
    case 0x41:
    case 0x42:
    case 0x43:
    case 0x44:
    case 0x45:
    case 0x46:
    case 0x47: {
        uint64_t cf = fl & kCF;
        set_reg(in.op & 7, os, alu_add(fl, reg(in.op & 7, os, false), 1, 0, os), false);
        fl = (fl & ~kCF) | cf;
        return;
    }
    case 0x48:
    case 0x49:
    case 0x4a:
    case 0x4b:
    case 0x4c:
    case 0x4d:
    case 0x4e:
    case 0x4f: {
        uint64_t cf = fl & kCF;
        set_reg(in.op & 7, os, alu_sub(fl, reg(in.op & 7, os, false), 1, 0, os), false);
        fl = (fl & ~kCF) | cf;
        return;
    }
    case 0x50:
    case 0x51:
    case 0x52:
    case 0x53:
    case 0x54:
    case 0x55:
    case 0x56:
    case 0x57: {
        unsigned r = (in.op & 7) | ((in.rex & 1) << 3);
        push(reg(r, os, rex), os);
        return;
    }
    case 0x58:
    case 0x59:
    case 0x5a:
    case 0x5b:
    case 0x5c:
    case 0x5d:
    case 0x5e:
    case 0x5f: {
        unsigned r = (in.op & 7) | ((in.rex & 1) << 3);
        uint64_t v = pop(os);
        set_reg(r, os, v, rex);
        return;
    }
    case 0x60: { // PUSHA: all eight stores before RSP changes
        uint64_t sp = s.gpr[RSP];
        for (unsigned i = 0; i < 8; i++) {
            uint64_t a = rsp_add(sp, -int64_t(os * (i + 1))) & sp_mask();
            write_sized(SS, a, os, reg(i, os, false));
        }
        s.gpr[RSP] = rsp_add(sp, -int64_t(os * 8));
        return;
    }
    case 0x61: { // POPA (the SP image is skipped)
        uint64_t sp = s.gpr[RSP];
        uint64_t v[8];
        for (unsigned i = 0; i < 8; i++)
            v[7 - i] = read_sized(SS, rsp_add(sp, int64_t(os * i)) & sp_mask(), os);
        for (unsigned i = 0; i < 8; i++)
            if (i != RSP) set_reg(i, os, v[i], false);
        s.gpr[RSP] = rsp_add(sp, int64_t(os * 8));
        return;
    }
    case 0x62: { // BOUND
        if (!in.mem()) undefined_opcode(&in, "BOUND with a register operand");
        uint64_t a = ea(in);
        int64_t lo = sign_extend(read_sized(in.seg, a, os), os);
        int64_t hi = sign_extend(read_sized(in.seg, (a + os) & size_mask(in.asize), os), os);
        int64_t idx = sign_extend(reg(in.reg, os, false), os);
        if (idx < lo || idx > hi) throw GuestFault{kBR, false, 0};
        return;
    }
    case 0x63:
        if (mode64_) { // MOVSXD
            uint64_t v = read_rm(in, 4);
            set_reg(in.reg, os, os == 8 ? uint64_t(int64_t(int32_t(v))) : v, rex);
            return;
        }
        if (!pe() || v86()) undefined_opcode(&in, "ARPL outside protected mode");
        { // ARPL
            uint64_t src = reg(in.reg, 2, false);
            bool changed = false;
            rmw(in, 2, [&](uint64_t d) {
                changed = (d & 3) < (src & 3);
                return changed ? (d & ~3ull) | (src & 3) : d;
            });
            fl = changed ? (fl | kZF) : (fl & ~kZF);
        }
        return;
    case 0x68:
    case 0x6a: push(in.imm, os); return;
    case 0x69:
    case 0x6b: {
        int64_t a = sign_extend(read_rm(in, os), os), b = sign_extend(in.imm, os);
        __int128 full = __int128(a) * b;
        uint64_t r = uint64_t(full) & size_mask(os);
        bool ovf = full != __int128(sign_extend(r, os));
        set_status(fl, mul_flags(r, os, ovf));
        set_reg(in.reg, os, r, rex);
        return;
    }
    case 0x6c:
    case 0x6d:
    case 0x6e:
    case 0x6f:
    case 0xa4:
    case 0xa5:
    case 0xa6:
    case 0xa7:
    case 0xaa:
    case 0xab:
    case 0xac:
    case 0xad:
    case 0xae:
    case 0xaf: exec_string(in); return;
    case 0x70:
    case 0x71:
    case 0x72:
    case 0x73:
    case 0x74:
    case 0x75:
    case 0x76:
    case 0x77:
    case 0x78:
    case 0x79:
    case 0x7a:
    case 0x7b:
    case 0x7c:
    case 0x7d:
    case 0x7e:
    case 0x7f:
        if (condition(in.op & 15, fl)) jump_near(next_rip_ + in.imm, os);
        return;
    case 0x80:
    case 0x81:
    case 0x82:
    case 0x83: {
        unsigned aop = in.reg & 7;
        unsigned size = (in.op == 0x81 || in.op == 0x83) ? os : 1;
        if (aop == kCmp)
            alu_op(aop, fl, read_rm(in, size), in.imm, size);
        else
            rmw(in, size, [&](uint64_t d) { return alu_op(aop, fl, d, in.imm, size); });
        return;
    }
    case 0x84:
    case 0x85: {
        unsigned size = (in.op & 1) ? os : 1;
        alu_logic(fl, read_rm(in, size) & reg(in.reg, size, rex), size);
        return;
    }
    case 0x86:
    case 0x87: { // XCHG (always locked with memory)
        unsigned size = (in.op & 1) ? os : 1;
        uint64_t r = reg(in.reg, size, rex);
        uint64_t old = 0;
        rmw(in, size, [&](uint64_t d) {
            old = d;
            return r;
        });
        set_reg(in.reg, size, old, rex);
        return;
    }
    case 0x88:
    case 0x89: {
        unsigned size = (in.op & 1) ? os : 1;
        write_rm(in, size, reg(in.reg, size, rex));
        return;
    }
    case 0x8a:
    case 0x8b: {
        unsigned size = (in.op & 1) ? os : 1;
        set_reg(in.reg, size, read_rm(in, size), rex);
        return;
    }
    case 0x8c: { // MOV r/m, Sreg
        unsigned sr = in.reg & 7;
        if (sr > 5) undefined_opcode(&in, "MOV from a segment register that does not exist");
        if (in.mem())
            write_sized(in.seg, ea(in), 2, s.seg[sr].selector);
        else
            set_reg(in.rm, os == 2 ? 2 : 4, s.seg[sr].selector, rex);
        return;
    }
    case 0x8d:
        if (!in.mem()) undefined_opcode(&in, "LEA with a register operand");
        set_reg(in.reg, os, ea(in), rex);
        return;
    case 0x8e: { // MOV Sreg, r/m
        unsigned sr = in.reg & 7;
        if (sr == CS || sr > 5) undefined_opcode(&in, "MOV to CS or to a nonexistent segment");
        load_seg(sr, uint16_t(read_rm(in, 2)));
        if (sr == SS) s.interrupt_shadow = true;
        return;
    }
    case 0x8f: { // POP r/m: the address is computed with the incremented RSP
        if ((in.reg & 7) != 0) undefined_opcode(&in, "8F with reg != 0 (XOP not supported)");
        uint64_t v = read_sized(SS, s.gpr[RSP] & sp_mask(), os);
        uint64_t old_sp = s.gpr[RSP];
        s.gpr[RSP] = rsp_add(old_sp, os);
        try {
            write_rm(in, os, v);
        } catch (...) {
            s.gpr[RSP] = old_sp;
            throw;
        }
        return;
    }
    case 0x90:
        if (in.rex & 1) { // XCHG R8, rAX
            uint64_t a = reg(RAX, os, false), b = reg(R8, os, true);
            set_reg(RAX, os, b, false);
            set_reg(R8, os, a, true);
        }
        return; // NOP, PAUSE
    case 0x91:
    case 0x92:
    case 0x93:
    case 0x94:
    case 0x95:
    case 0x96:
    case 0x97: {
        unsigned r = (in.op & 7) | ((in.rex & 1) << 3);
        uint64_t a = reg(RAX, os, false), b = reg(r, os, rex);
        set_reg(RAX, os, b, false);
        set_reg(r, os, a, rex);
        return;
    }
    case 0x98: // CBW/CWDE/CDQE
        set_reg(RAX, os, uint64_t(sign_extend(reg(RAX, os / 2, false), os / 2)), false);
        return;
    case 0x99: // CWD/CDQ/CQO
        set_reg(RDX, os, (reg(RAX, os, false) & sign_bit(os)) ? ~0ull : 0, false);
        return;
    case 0x9a: far_call(in.imm2, in.imm, os, next_rip_); return;
    case 0x9b: // FWAIT: #NM when CR0.MP and CR0.TS are both set, #MF when an x87 one is pending
        fpu_wait();
        return;
    case 0x9c: // PUSHF: VM and RF read as 0 in the image
        if (v86() && ((fl >> 12) & 3) < 3) throw GuestFault{kGP, true, 0};
        push(fl & ~(kVM | kRF), os);
        return;
    case 0x9d: {
        if (v86() && ((fl >> 12) & 3) < 3) throw GuestFault{kGP, true, 0};
        uint64_t v = read_sized(SS, s.gpr[RSP] & sp_mask(), os);
        s.gpr[RSP] = rsp_add(s.gpr[RSP], os);
        set_rflags(v, os, true);
        return;
    }
    case 0x9e: // SAHF
        fl = (fl & ~0xffull) | (reg(4, 1, false) & (kSF | kZF | kAF | kPF | kCF)) | kFlagsFixed1;
        return;
    case 0x9f: set_reg(4, 1, (fl & 0xff) | kFlagsFixed1, false); return;
    case 0xa0:
    case 0xa1: {
        unsigned size = (in.op & 1) ? os : 1;
        set_reg(RAX, size, read_sized(in.seg, in.imm & size_mask(in.asize), size), false);
        return;
    }
    case 0xa2:
    case 0xa3: {
        unsigned size = (in.op & 1) ? os : 1;
        write_sized(in.seg, in.imm & size_mask(in.asize), size, reg(RAX, size, false));
        return;
    }
    case 0xa8:
    case 0xa9: {
        unsigned size = (in.op & 1) ? os : 1;
        alu_logic(fl, reg(RAX, size, false) & in.imm, size);
        return;
    }
    case 0xb0:
    case 0xb1:
    case 0xb2:
    case 0xb3:
    case 0xb4:
    case 0xb5:
    case 0xb6:
    case 0xb7: set_reg((in.op & 7) | ((in.rex & 1) << 3), 1, in.imm, rex); return;
    case 0xb8:
    case 0xb9:
    case 0xba:
    case 0xbb:
    case 0xbc:
    case 0xbd:
    case 0xbe:
    case 0xbf: set_reg((in.op & 7) | ((in.rex & 1) << 3), os, in.imm, rex); return;
    case 0xc0:
    case 0xc1: exec_shift(in, (in.op & 1) ? os : 1, in.imm & 0xff, true); return;
    case 0xd0:
    case 0xd1: exec_shift(in, (in.op & 1) ? os : 1, 1, false); return;
    case 0xd2:
    case 0xd3: exec_shift(in, (in.op & 1) ? os : 1, s.gpr[RCX] & 0xff, false); return;
    case 0xc2:
    case 0xc3: { // RET near
        uint64_t target = read_sized(SS, s.gpr[RSP] & sp_mask(), os);
        uint64_t nsp = rsp_add(s.gpr[RSP], os + (in.op == 0xc2 ? (in.imm & 0xffff) : 0));
        jump_near(target, os);
        s.gpr[RSP] = nsp;
        return;
    }
    case 0xc4:
    case 0xc5: { // LES, LDS
        if (!in.mem()) undefined_opcode(&in, "LES/LDS with a register operand (VEX)");
        uint64_t a = ea(in);
        uint64_t off = read_sized(in.seg, a, os);
        uint16_t sel = read_seg<uint16_t>(in.seg, (a + os) & size_mask(in.asize));
        load_seg(in.op == 0xc4 ? ES : DS, sel);
        set_reg(in.reg, os, off, rex);
        return;
    }
    case 0xc6:
    case 0xc7:
        if ((in.reg & 7) != 0) undefined_opcode(&in, "C6/C7 with reg != 0 (TSX not supported)");
        write_rm(in, (in.op & 1) ? os : 1, in.imm);
        return;
    case 0xc8: { // ENTER
        unsigned level = in.imm2 & 31;
        uint64_t size = in.imm & 0xffff;
        unsigned ss = stack_size();
        uint64_t sp = s.gpr[RSP];
        uint64_t bp = s.gpr[RBP];
        sp = rsp_add(sp, -int64_t(os));
        write_sized(SS, sp & sp_mask(), os, reg(RBP, os, false));
        uint64_t frame = sp;
        for (unsigned i = 1; i < level; i++) {
            bp = (bp & ~size_mask(ss)) | ((bp - os) & size_mask(ss));
            uint64_t v = read_sized(SS, bp & size_mask(ss), os);
            sp = rsp_add(sp, -int64_t(os));
            write_sized(SS, sp & sp_mask(), os, v);
        }
        if (level > 0) {
            sp = rsp_add(sp, -int64_t(os));
            write_sized(SS, sp & sp_mask(), os, frame);
        }
        sp = rsp_add(sp, -int64_t(size));
        // The final stack pointer must be writable too (SDM: ENTER checks it).
        if (size) read_sized(SS, sp & sp_mask(), 1);
        set_reg(RBP, os, frame, false);
        s.gpr[RSP] = sp;
        return;
    }
    case 0xc9: { // LEAVE
        uint64_t sp = (s.gpr[RSP] & ~sp_mask()) | (s.gpr[RBP] & sp_mask());
        uint64_t v = read_sized(SS, sp & sp_mask(), os);
        s.gpr[RSP] = rsp_add(sp, os);
        set_reg(RBP, os, v, false);
        return;
    }
    case 0xca: far_ret(os, uint16_t(in.imm)); return;
    case 0xcb: far_ret(os, 0); return;
    case 0xcc:
        soft_event_ = true;
        deliver(kBP, EventKind::SoftException, false, 0, next_rip_);
        return;
    case 0xcd:
        soft_event_ = true;
        deliver(uint8_t(in.imm), EventKind::SoftInt, false, 0, next_rip_);
        return;
    case 0xce:
        if (fl & kOF) {
            soft_event_ = true;
            deliver(kOFv, EventKind::SoftException, false, 0, next_rip_);
        }
        return;
    case 0xcf: iret(os); return;
    case 0xd7: { // XLAT
        uint64_t a = (s.gpr[RBX] + (s.gpr[RAX] & 0xff)) & size_mask(in.asize);
        set_reg(RAX, 1, read_seg<uint8_t>(in.seg, a), false);
        return;
    }
    case 0xd8:
    case 0xd9:
    case 0xda:
    case 0xdb:
    case 0xdc:
    case 0xdd:
    case 0xde:
    case 0xdf: exec_fpu_sse(in); return;
    case 0xe0:
    case 0xe1:
    case 0xe2:
    case 0xe3: { // LOOPNE, LOOPE, LOOP, JrCXZ
        uint64_t m = size_mask(in.asize);
        uint64_t c = s.gpr[RCX] & m;
        bool take;
        if (in.op == 0xe3) {
            take = c == 0;
        } else {
            c = (c - 1) & m;
            take = c != 0;
            if (in.op == 0xe0) take = take && !(fl & kZF);
            if (in.op == 0xe1) take = take && (fl & kZF);
        }
        uint64_t target = next_rip_ + in.imm;
        if (take) jump_near(target, os);
        if (in.op != 0xe3) {
            if (in.asize == 4)
                s.gpr[RCX] = c;
            else
                s.gpr[RCX] = (s.gpr[RCX] & ~m) | c;
        }
        return;
    }
    case 0xe4:
    case 0xe5:
    case 0xec:
    case 0xed: { // IN
        unsigned size = (in.op & 1) ? (os == 2 ? 2 : 4) : 1;
        uint16_t port = in.op >= 0xec ? uint16_t(s.gpr[RDX]) : uint16_t(in.imm & 0xff);
        check_io(port, size);
        set_reg(RAX, size, io_in(port, size), false);
        return;
    }
    case 0xe6:
    case 0xe7:
    case 0xee:
    case 0xef: { // OUT
        unsigned size = (in.op & 1) ? (os == 2 ? 2 : 4) : 1;
        uint16_t port = in.op >= 0xee ? uint16_t(s.gpr[RDX]) : uint16_t(in.imm & 0xff);
        check_io(port, size);
        io_out(port, size, reg(RAX, size, false));
        return;
    }
    case 0xe8: { // CALL rel
        uint64_t target = (next_rip_ + in.imm) & size_mask(os);
        if (mode64_) {
            if (uint64_t(int64_t(target << 16) >> 16) != target) throw GuestFault{kGP, true, 0};
        } else {
            check_cs_limit(target);
        }
        push(next_rip_, os);
        s.rip = target;
        return;
    }
    case 0xe9:
    case 0xeb: jump_near(next_rip_ + in.imm, os); return;
    case 0xea: far_jump(in.imm2, in.imm, os); return;
    case 0xf1:
        soft_event_ = true;
        deliver(kDB, EventKind::Icebp, false, 0, next_rip_);
        return;
    case 0xf4:
        if (cpl_ != 0) throw GuestFault{kGP, true, 0};
        halt();
        return;
    case 0xf5: fl ^= kCF; return;
    case 0xf6:
    case 0xf7: exec_group3(in); return;
    case 0xf8: fl &= ~kCF; return;
    case 0xf9: fl |= kCF; return;
    case 0xfa:
    case 0xfb: { // CLI, STI
        if (pe() && ((fl >> 12) & 3) < cpl_) throw GuestFault{kGP, true, 0};
        if (in.op == 0xfa) {
            fl &= ~kIF;
        } else {
            // STI blocks interrupts for one instruction only if IF was 0 (SDM Vol. 2 STI).
            if (!(fl & kIF)) s.interrupt_shadow = true;
            fl |= kIF;
        }
        return;
    }
    case 0xfc: fl &= ~kDF; return;
    case 0xfd: fl |= kDF; return;
    case 0xfe:
    case 0xff: exec_group45(in); return;
    default: break;
    }
    undefined_opcode(&in, "opcode not implemented");
}

void X86Cpu::exec_group3(const Insn& in) {
    const unsigned size = (in.op & 1) ? in.osize : 1;
    uint64_t& fl = s.rflags;
    const uint64_t m = size_mask(size);
    switch (in.reg & 7) {
    case 0:
    case 1: alu_logic(fl, read_rm(in, size) & in.imm, size); return;
    case 2: rmw(in, size, [&](uint64_t d) { return ~d & m; }); return;
    case 3: rmw(in, size, [&](uint64_t d) { return alu_sub(fl, 0, d, 0, size); }); return;
    case 4:
    case 5: { // MUL, IMUL (one operand)
        uint64_t src = read_rm(in, size);
        uint64_t a = reg(RAX, size, false);
        uint64_t lo, hi;
        bool ovf;
        if ((in.reg & 7) == 4) {
            unsigned __int128 p = (unsigned __int128)(a & m) * (src & m);
            if (size == 8) {
                lo = uint64_t(p);
                hi = uint64_t(p >> 64);
            } else {
                lo = uint64_t(p) & m;
                hi = uint64_t(p >> (size * 8)) & m;
            }
            ovf = hi != 0;
        } else {
            __int128 p = __int128(sign_extend(a, size)) * sign_extend(src, size);
            if (size == 8) {
                lo = uint64_t(p);
                hi = uint64_t(p >> 64);
            } else {
                lo = uint64_t(p) & m;
                hi = uint64_t(p >> (size * 8)) & m;
            }
            ovf = p != __int128(sign_extend(lo, size));
        }
        set_status(fl, mul_flags(lo, size, ovf));
        if (size == 1) {
            set_reg(RAX, 2, lo | (hi << 8), false);
        } else {
            set_reg(RAX, size, lo, false);
            set_reg(RDX, size, hi, false);
        }
        return;
    }
    case 6:
    case 7: { // DIV, IDIV: #DE on a zero divisor or a quotient that does not fit
        uint64_t src = read_rm(in, size) & m;
        if (src == 0) throw GuestFault{kDE, false, 0};
        uint64_t lo = size == 1 ? reg(RAX, 1, false) : reg(RAX, size, false);
        uint64_t hi = size == 1 ? reg(4, 1, false) : reg(RDX, size, false);
        unsigned bits = size * 8;
        uint64_t q, r;
        if ((in.reg & 7) == 6) {
            unsigned __int128 n = ((unsigned __int128)hi << bits) | lo;
            unsigned __int128 qq = n / src;
            if (qq > m) throw GuestFault{kDE, false, 0};
            q = uint64_t(qq);
            r = uint64_t(n % src);
        } else {
            __int128 n = __int128(((unsigned __int128)hi << bits) | lo);
            if (bits < 64) n = (n << (128 - 2 * bits)) >> (128 - 2 * bits); // sign-extend
            __int128 d = sign_extend(src, size);
            if (d == -1 && n == (__int128(1) << 127)) throw GuestFault{kDE, false, 0};
            __int128 qq = n / d;
            __int128 lim = __int128(1) << (bits - 1);
            if (qq >= lim || qq < -lim) throw GuestFault{kDE, false, 0};
            q = uint64_t(qq) & m;
            r = uint64_t(n % d) & m;
        }
        if (size == 1) {
            set_reg(RAX, 2, q | (r << 8), false);
        } else {
            set_reg(RAX, size, q, false);
            set_reg(RDX, size, r, false);
        }
        return;
    }
    }
}

void X86Cpu::exec_group45(const Insn& in) {
    const unsigned os = in.osize;
    uint64_t& fl = s.rflags;
    const unsigned r = in.reg & 7;
    if (in.op == 0xfe && r > 1) undefined_opcode(&in, "FE with reg > 1");
    const unsigned size = in.op == 0xfe ? 1 : os;
    switch (r) {
    case 0:
    case 1: {
        uint64_t cf = fl & kCF;
        rmw(in, size, [&](uint64_t d) {
            return r == 0 ? alu_add(fl, d, 1, 0, size) : alu_sub(fl, d, 1, 0, size);
        });
        fl = (fl & ~kCF) | cf;
        return;
    }
    case 2: { // CALL near indirect
        uint64_t target = read_rm(in, os);
        if (mode64_) {
            if (uint64_t(int64_t(target << 16) >> 16) != target) throw GuestFault{kGP, true, 0};
        } else {
            target &= size_mask(os);
            check_cs_limit(target);
        }
        push(next_rip_, os);
        s.rip = target;
        return;
    }
    case 3:
    case 5: { // far CALL/JMP through memory: offset, then selector
        if (!in.mem()) undefined_opcode(&in, "far CALL/JMP with a register operand");
        uint64_t a = ea(in);
        uint64_t off = read_sized(in.seg, a, os);
        uint16_t sel = read_seg<uint16_t>(in.seg, (a + os) & size_mask(in.asize));
        if (r == 3)
            far_call(sel, off, os, next_rip_);
        else
            far_jump(sel, off, os);
        return;
    }
    case 4: jump_near(read_rm(in, os), os); return;
    case 6: push(read_rm(in, os), os); return;
    default: undefined_opcode(&in, "FF /7");
    }
}

void X86Cpu::exec_shift(const Insn& in, unsigned size, uint64_t count, bool imm_form) {
    uint64_t& fl = s.rflags;
    const unsigned bits = size * 8;
    const uint64_t m = size_mask(size);
    const unsigned op = in.reg & 7;
    count &= size == 8 ? 0x3f : 0x1f;
    if (count == 0) {
        // Flags unchanged; the operand is still read (and may fault), and a 32-bit register
        // destination is still written, which zero-extends it (as the host does).
        uint64_t v = read_rm(in, size);
        if (in.mod == 3 && size == 4) set_reg(in.rm, 4, v, in.rex);
        return;
    }
    const unsigned c = unsigned(count);
    rmw(in, size, [&](uint64_t a) -> uint64_t {
        a &= m;
        uint64_t r = 0;
        uint64_t st = fl & kStatusFlags;
        auto msb = [&](uint64_t v) -> uint64_t { return (v >> (bits - 1)) & 1; };
        switch (op) {
        // Intel computes OF of every rotate and shift as the one-bit form's rule applied to the
        // original operand, whatever the count; except ROL/ROR with an immediate count other
        // than 1, which leave OF alone (measured on the host by test_diff_host).
        case 0: { // ROL: only CF and OF change
            unsigned k = c % bits;
            r = k ? ((a << k) | (a >> (bits - k))) & m : a;
            uint64_t of = msb(a) ^ ((a >> (bits - 2)) & 1);
            if (imm_form && c != 1) of = (st & kOF) ? 1 : 0;
            st = (st & ~(kCF | kOF)) | ((r & 1) ? kCF : 0) | (of ? kOF : 0);
            break;
        }
        case 1: { // ROR
            unsigned k = c % bits;
            r = k ? ((a >> k) | (a << (bits - k))) & m : a;
            uint64_t of = msb(a) ^ (a & 1);
            if (imm_form && c != 1) of = (st & kOF) ? 1 : 0;
            st = (st & ~(kCF | kOF)) | (msb(r) ? kCF : 0) | (of ? kOF : 0);
            break;
        }
        case 2:
        case 3: { // RCL, RCR: rotate through CF, modulo size+1; a zero rotation changes nothing
            unsigned k = c % (bits + 1);
            if (k == 0) return a;
            const uint64_t cf_in = fl & kCF;
            unsigned __int128 v = ((unsigned __int128)cf_in << bits) | a;
            unsigned __int128 vm = (((unsigned __int128)1) << (bits + 1)) - 1;
            if (op == 2)
                v = ((v << k) | (v >> (bits + 1 - k))) & vm;
            else
                v = ((v >> k) | (v << (bits + 1 - k))) & vm;
            r = uint64_t(v) & m;
            uint64_t cf = uint64_t(v >> bits) & 1;
            uint64_t of = op == 2 ? (msb(a) ^ ((a >> (bits - 2)) & 1)) : (msb(a) ^ cf_in);
            st = (st & ~(kCF | kOF)) | (cf ? kCF : 0) | (of ? kOF : 0);
            break;
        }
        case 4:
        case 6: { // SHL/SAL
            uint64_t cf;
            if (c < bits) {
                r = (a << c) & m;
                cf = (a >> (bits - c)) & 1;
            } else {
                r = 0;
                cf = c == bits ? (a & 1) : 0;
            }
            uint64_t of = msb(a) ^ ((a >> (bits - 2)) & 1);
            st = szp_flags(r, size) | (cf ? kCF : 0) | (of ? kOF : 0);
            break;
        }
        case 5: { // SHR
            uint64_t cf = c <= bits ? (a >> (c - 1)) & 1 : 0;
            r = c < bits ? a >> c : 0;
            st = szp_flags(r, size) | (cf ? kCF : 0) | (msb(a) ? kOF : 0);
            break;
        }
        default: { // SAR
            int64_t sa = sign_extend(a, size);
            unsigned k = c < bits ? c : bits - 1;
            r = uint64_t(sa >> k) & m;
            uint64_t cf = uint64_t(sa >> (c - 1 < bits ? c - 1 : bits - 1)) & 1;
            st = szp_flags(r, size) | (cf ? kCF : 0);
            break;
        }
        }
        set_status(fl, st);
        return r;
    });
}

void X86Cpu::exec_shd(const Insn& in, bool left, uint64_t count) {
    const unsigned size = in.osize;
    const unsigned bits = size * 8;
    const uint64_t m = size_mask(size);
    uint64_t& fl = s.rflags;
    unsigned c = unsigned(count & (size == 8 ? 0x3f : 0x1f));
    if (c == 0) {
        // Nothing shifts, but a 32-bit register destination is still written (zero-extended).
        uint64_t v = read_rm(in, size);
        if (in.mod == 3 && size == 4) set_reg(in.rm, 4, v, in.rex);
        return;
    }
    const uint64_t b = reg(in.reg, size, in.rex) & m;
    rmw(in, size, [&](uint64_t a) -> uint64_t {
        a &= m;
        uint64_t r, cf;
        if (size == 2) {
            // 16-bit with a count above 16: P6-family behaviour, the 48-bit value a:b:a shifted.
            uint64_t v = (a << 32) | (b << 16) | a;
            if (left) {
                r = (v << c >> 32) & m;
                cf = (v >> (48 - c)) & 1;
            } else {
                r = (v >> c) & m;
                cf = (v >> (c - 1)) & 1;
            }
        } else if (left) {
            r = ((a << c) | (b >> (bits - c))) & m;
            cf = (a >> (bits - c)) & 1;
        } else {
            r = ((a >> c) | (b << (bits - c))) & m;
            cf = (a >> (c - 1)) & 1;
        }
        // OF: the one-bit rule on the original operands (Intel, whatever the count).
        uint64_t of =
            left ? ((a >> (bits - 1)) ^ (a >> (bits - 2))) & 1 : ((a >> (bits - 1)) ^ b) & 1;
        set_status(fl, szp_flags(r, size) | (cf ? kCF : 0) | (of ? kOF : 0));
        return r;
    });
}

void X86Cpu::exec_bt(const Insn& in, unsigned kind, bool imm) {
    // kind: 0 BT, 1 BTS, 2 BTR, 3 BTC
    const unsigned size = in.osize;
    const unsigned bits = size * 8;
    uint64_t& fl = s.rflags;
    int64_t offset;
    if (imm)
        offset = int64_t(in.imm & (bits - 1));
    else
        offset = in.mem() ? sign_extend(reg(in.reg, size, in.rex), size)
                          : int64_t(reg(in.reg, size, in.rex) & (bits - 1));
    const uint64_t bit = 1ull << (offset & (bits - 1));
    auto set_cf = [&](uint64_t v) { fl = (fl & ~kCF) | ((v & bit) ? kCF : 0); };
    auto apply = [&](uint64_t v) {
        set_cf(v);
        return kind == 1 ? (v | bit) : kind == 2 ? (v & ~bit) : (v ^ bit);
    };
    if (!in.mem()) {
        uint64_t v = reg(in.rm, size, in.rex);
        if (kind == 0)
            set_cf(v);
        else
            set_reg(in.rm, size, apply(v), in.rex);
        return;
    }
    uint64_t addr = ea(in);
    if (!imm) {
        // A register bit offset addresses memory beyond the operand (signed, in operand units).
        int64_t units = offset >> (bits == 16 ? 4 : bits == 32 ? 5 : 6);
        addr = (addr + uint64_t(units) * size) & size_mask(in.asize);
    }
    if (kind == 0) {
        set_cf(read_sized(in.seg, addr, size));
        return;
    }
    rmw_at(in.seg, addr, size, in.lock, apply);
}

void X86Cpu::exec_string(const Insn& in) {
    const unsigned op = in.op;
    const bool io = op < 0x70;
    unsigned size = (op & 1) ? in.osize : 1;
    if (io && size == 8) size = 4;
    const uint64_t am = size_mask(in.asize);
    const int64_t delta = (s.rflags & kDF) ? -int64_t(size) : int64_t(size);
    const bool rep = in.rep != 0;
    auto areg = [&](unsigned r) { return s.gpr[r] & am; };
    auto set_areg = [&](unsigned r, uint64_t v) {
        if (in.asize == 2)
            s.gpr[r] = (s.gpr[r] & ~0xffffull) | (v & 0xffff);
        else
            s.gpr[r] = v & am;
    };
    const bool cmp = op == 0xa6 || op == 0xa7 || op == 0xae || op == 0xaf;
    if (io) check_io(uint16_t(s.gpr[RDX]), size);
    // Bounded work per execution so interrupts stay responsive; the instruction restarts.
    for (unsigned budget = 0; budget < 4096; budget++) {
        if (rep && areg(RCX) == 0) return;
        switch (op) {
        case 0x6c:
        case 0x6d: { // INS: check the store before the port read (the read has side effects)
            uint64_t lin = seg_linear(ES, areg(RDI), size, Access::Write);
            if (!(lin_rmw_ptr(lin, size))) translate(lin, Access::Write, cpl_ == 3);
            // REP INS into RAM within one page goes to the device as one multi-element request.
            uint64_t n = 1;
            if (rep && delta > 0) {
                uint64_t room = (0x1000 - (lin & 0xfff)) / size;
                n = std::min<uint64_t>({areg(RCX), room, 1024});
                if (n > 1) {
                    uint64_t last_off = areg(RDI) + (n - 1) * size;
                    if (last_off > am) n = 1;
                }
                uint8_t* p = n > 1 ? lin_rmw_ptr(lin, unsigned(n * size)) : nullptr;
                if (p && n > 1) {
                    // all elements are in this page and writable; check the segment limit too
                    seg_linear(ES, areg(RDI) + (n - 1) * size, size, Access::Write);
                    IoRequest req;
                    req.kind = IoRequest::Kind::Pio;
                    req.size = uint8_t(size);
                    req.count = uint32_t(n);
                    req.addr = uint16_t(s.gpr[RDX]);
                    req.data = p;
                    req.vcpu = index_;
                    memset(p, 0xff, n * size);
                    io_.handle_io(req);
                    set_areg(RDI, areg(RDI) + n * size);
                    set_areg(RCX, areg(RCX) - n);
                    budget += unsigned(n);
                    continue;
                }
                n = 1;
            }
            uint64_t v = io_in(uint16_t(s.gpr[RDX]), size);
            write_lin_slow(lin, &v, size, false);
            set_areg(RDI, areg(RDI) + delta);
            break;
        }
        case 0x6e:
        case 0x6f: { // OUTS
            if (rep && delta > 0) {
                uint64_t lin = seg_linear(in.seg, areg(RSI), size, Access::Read);
                uint64_t room = (0x1000 - (lin & 0xfff)) / size;
                uint64_t n = std::min<uint64_t>({areg(RCX), room, 1024});
                if (n > 1 && areg(RSI) + (n - 1) * size <= am) {
                    seg_linear(in.seg, areg(RSI) + (n - 1) * size, size, Access::Read);
                    TlbEntry& e = translate(lin, Access::Read, cpl_ == 3);
                    if (e.perm & kPermHostR) {
                        uint8_t buf[4096];
                        memcpy(buf, e.host + (lin & 0xfff), n * size);
                        IoRequest req;
                        req.kind = IoRequest::Kind::Pio;
                        req.is_write = true;
                        req.size = uint8_t(size);
                        req.count = uint32_t(n);
                        req.addr = uint16_t(s.gpr[RDX]);
                        req.data = buf;
                        req.vcpu = index_;
                        io_.handle_io(req);
                        set_areg(RSI, areg(RSI) + n * size);
                        set_areg(RCX, areg(RCX) - n);
                        budget += unsigned(n);
                        continue;
                    }
                }
            }
            uint64_t v = read_sized(in.seg, areg(RSI), size);
            io_out(uint16_t(s.gpr[RDX]), size, v);
            set_areg(RSI, areg(RSI) + delta);
            break;
        }
        case 0xa4:
        case 0xa5: {
            uint64_t v = read_sized(in.seg, areg(RSI), size);
            write_sized(ES, areg(RDI), size, v);
            set_areg(RSI, areg(RSI) + delta);
            set_areg(RDI, areg(RDI) + delta);
            break;
        }
        case 0xa6:
        case 0xa7: {
            uint64_t a = read_sized(in.seg, areg(RSI), size);
            uint64_t b = read_sized(ES, areg(RDI), size);
            alu_sub(s.rflags, a, b, 0, size);
            set_areg(RSI, areg(RSI) + delta);
            set_areg(RDI, areg(RDI) + delta);
            break;
        }
        case 0xaa:
        case 0xab:
            write_sized(ES, areg(RDI), size, reg(RAX, size, false));
            set_areg(RDI, areg(RDI) + delta);
            break;
        case 0xac:
        case 0xad:
            set_reg(RAX, size, read_sized(in.seg, areg(RSI), size), false);
            set_areg(RSI, areg(RSI) + delta);
            break;
        default: { // SCAS
            uint64_t b = read_sized(ES, areg(RDI), size);
            alu_sub(s.rflags, reg(RAX, size, false), b, 0, size);
            set_areg(RDI, areg(RDI) + delta);
            break;
        }
        }
        if (!rep) return;
        set_areg(RCX, areg(RCX) - 1);
        if (areg(RCX) == 0) return;
        if (cmp) {
            bool zf = s.rflags & kZF;
            if (in.rep == 0xf3 && !zf) return; // REPE stops on mismatch
            if (in.rep == 0xf2 && zf) return;  // REPNE stops on match
        }
    }
    s.rip = rip_start_; // budget used up: continue this REP on the next step
}

void X86Cpu::exec_bcd(const Insn& in) {
    uint64_t& fl = s.rflags;
    uint8_t al = uint8_t(s.gpr[RAX]);
    uint8_t ah = uint8_t(s.gpr[RAX] >> 8);
    switch (in.op) {
    case 0x27:   // DAA (SDM Vol. 2 DAA pseudo-code)
    case 0x2f: { // DAS
        bool daa = in.op == 0x27;
        uint8_t old_al = al;
        bool old_cf = fl & kCF;
        bool cf = false, af = false;
        if ((al & 0xf) > 9 || (fl & kAF)) {
            al = daa ? uint8_t(al + 6) : uint8_t(al - 6);
            cf = old_cf || (daa ? (old_al > 0xf9) : (old_al < 6));
            af = true;
        }
        if (old_al > 0x99 || old_cf) {
            al = daa ? uint8_t(al + 0x60) : uint8_t(al - 0x60);
            cf = true;
        }
        // OF is undefined; Intel leaves the sign change of the adjustment in it.
        uint64_t of = daa ? ((~old_al & al & 0x80) ? kOF : 0) : ((old_al & ~al & 0x80) ? kOF : 0);
        set_status(fl, szp_flags(al, 1) | (cf ? kCF : 0) | (af ? kAF : 0) | of);
        set_reg(RAX, 1, al, false);
        return;
    }
    case 0x37:   // AAA
    case 0x3f: { // AAS
        bool adj = (al & 0xf) > 9 || (fl & kAF);
        uint16_t ax = uint16_t(s.gpr[RAX]);
        if (adj) {
            if (in.op == 0x37) {
                ax = uint16_t(ax + 0x106);
            } else {
                ax = uint16_t(ax - 6);
                ax = uint16_t((ax & 0xff) | (((ax >> 8) - 1) & 0xff) << 8);
            }
        }
        ax &= 0xff0f;
        uint64_t st = fl & (kSF | kZF | kPF | kOF);
        set_status(fl, st | (adj ? kCF | kAF : 0));
        set_reg(RAX, 2, ax, false);
        return;
    }
    case 0xd4: { // AAM imm8
        uint8_t base = uint8_t(in.imm);
        if (base == 0) throw GuestFault{kDE, false, 0};
        ah = uint8_t(al / base);
        al = uint8_t(al % base);
        set_status(fl, szp_flags(al, 1));
        set_reg(RAX, 2, uint64_t(ah) << 8 | al, false);
        return;
    }
    case 0xd5: { // AAD imm8
        uint8_t base = uint8_t(in.imm);
        al = uint8_t(al + ah * base);
        set_status(fl, szp_flags(al, 1));
        set_reg(RAX, 2, al, false);
        return;
    }
    default: // SALC (undocumented, but executed by real CPUs): AL = CF ? FF : 00
        set_reg(RAX, 1, (fl & kCF) ? 0xff : 0, false);
        return;
    }
}

} // namespace hvm::emu
