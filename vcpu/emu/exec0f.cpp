// The integer and system part of the two-byte (0F) opcode map. SSE/MMX opcodes and the 0F 38 /
// 0F 3A maps go to exec_fpu_sse().
#include "vcpu/emu/rmw.hpp"

namespace hvm::emu {

void X86Cpu::exec_cmpxchg_n(const Insn& in) {
    // CMPXCHG8B / CMPXCHG16B (0F C7 /1): compare rDX:rAX with m64/m128.
    if (!in.mem()) undefined_opcode(&in, "CMPXCHG8B with a register operand");
    const bool wide = in.osize == 8;
    const unsigned n = wide ? 16 : 8;
    uint64_t off = ea(in);
    uint64_t lin = seg_linear(in.seg, off, n, Access::Write);
    if (wide && (lin & 15)) throw GuestFault{kGP, true, 0};
    const unsigned half = wide ? 8 : 4;
    uint64_t cmp_lo = reg(RAX, half, false), cmp_hi = reg(RDX, half, false);
    uint64_t new_lo = reg(RBX, half, false), new_hi = reg(RCX, half, false);
    uint64_t cur_lo = 0, cur_hi = 0;
    bool equal;
    uint8_t* p = lin_rmw_ptr(lin, n);
    if (p && wide) {
        // 16-byte compare-exchange: the guest's LOCK CMPXCHG16B on the host.
        uint64_t rax = cmp_lo, rdx = cmp_hi;
        uint8_t ok;
        asm volatile("lock cmpxchg16b %1\n\tsete %0"
                     : "=q"(ok), "+m"(*reinterpret_cast<unsigned __int128*>(p)), "+a"(rax),
                       "+d"(rdx)
                     : "b"(new_lo), "c"(new_hi)
                     : "memory", "cc");
        equal = ok;
        cur_lo = rax;
        cur_hi = rdx;
    } else if (p) {
        uint64_t expect = cmp_lo | (cmp_hi << 32);
        uint64_t desired = new_lo | (new_hi << 32);
        equal = __atomic_compare_exchange_n(reinterpret_cast<uint64_t*>(p), &expect, desired, false,
                                            __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        cur_lo = expect & 0xffffffff;
        cur_hi = expect >> 32;
    } else {
        uint64_t buf[2] = {};
        read_lin_slow(lin, buf, n, false);
        if (wide) {
            cur_lo = buf[0];
            cur_hi = buf[1];
        } else {
            cur_lo = buf[0] & 0xffffffff;
            cur_hi = buf[0] >> 32;
        }
        equal = cur_lo == cmp_lo && cur_hi == cmp_hi;
        if (equal) {
            if (wide) {
                buf[0] = new_lo;
                buf[1] = new_hi;
            } else {
                buf[0] = new_lo | (new_hi << 32);
            }
        }
        // The destination is written back whether or not the comparison succeeded.
        write_lin_slow(lin, buf, n, false);
    }
    if (equal) {
        s.rflags |= kZF;
    } else {
        s.rflags &= ~kZF;
        set_reg(RAX, half, cur_lo, false);
        set_reg(RDX, half, cur_hi, false);
    }
}

void X86Cpu::exec_0f(const Insn& in) {
    const unsigned os = in.osize;
    const bool rex = in.rex != 0;
    uint64_t& fl = s.rflags;
    const unsigned op = in.op & 0xff;
    if ((in.op >> 8) != 1) {
        exec_fpu_sse(in); // 0F 38 and 0F 3A
        return;
    }
    if (op >= 0x40 && op <= 0x4f) { // CMOVcc: the source is always read
        uint64_t v = read_rm(in, os);
        if (condition(op & 15, fl))
            set_reg(in.reg, os, v, rex);
        else if (os == 4)
            set_reg(in.reg, 4, reg(in.reg, 4, rex), rex); // 32-bit form zero-extends anyway
        return;
    }
    if (op >= 0x80 && op <= 0x8f) {
        if (condition(op & 15, fl)) jump_near(next_rip_ + in.imm, os);
        return;
    }
    if (op >= 0x90 && op <= 0x9f) {
        write_rm(in, 1, condition(op & 15, fl) ? 1 : 0);
        return;
    }
    if (op >= 0xc8 && op <= 0xcf) { // BSWAP (16-bit form: Intel produces zero)
        unsigned r = (op & 7) | ((in.rex & 1) << 3);
        if (os == 8)
            s.gpr[r] = __builtin_bswap64(s.gpr[r]);
        else if (os == 4)
            set_reg(r, 4, __builtin_bswap32(uint32_t(s.gpr[r])), rex);
        else
            set_reg(r, 2, 0, rex);
        return;
    }
    switch (op) {
    case 0x00: exec_group6(in); return;
    case 0x01: exec_group7(in); return;
    case 0x02: exec_lar_lsl(in, false); return;
    case 0x03: exec_lar_lsl(in, true); return;
    case 0x05: syscall_insn(in); return;
    case 0x06: // CLTS
        if (cpl_ != 0) throw GuestFault{kGP, true, 0};
        s.cr0 &= ~8ull;
        return;
    case 0x07: sysret_insn(in); return;
    case 0x08:
    case 0x09: // INVD, WBINVD: no caches to write back
        if (cpl_ != 0) throw GuestFault{kGP, true, 0};
        return;
    case 0x0b: throw GuestFault{kUD, false, 0}; // UD2: a deliberate #UD (Linux BUG/WARN), no report
    case 0x0d:
    case 0x18:
    case 0x19:
    case 0x1a:
    case 0x1b:
    case 0x1c:
    case 0x1d:
    case 0x1e:
    case 0x1f: return; // PREFETCH / hint NOPs: no memory access
    case 0x20:
    case 0x22: {
        unsigned cr = in.reg;
        if (cpl_ != 0) throw GuestFault{kGP, true, 0};
        if (in.lock && !mode64_) cr |= 8; // AMD's LOCK MOV CR0 alias for CR8 is not offered
        unsigned size = mode64_ ? 8 : 4;
        if (op == 0x20)
            set_reg(in.rm, size, read_cr(cr), true);
        else
            write_cr(cr, reg(in.rm, size, true));
        return;
    }
    case 0x21:
    case 0x23: {
        if (cpl_ != 0) throw GuestFault{kGP, true, 0};
        unsigned size = mode64_ ? 8 : 4;
        if (op == 0x21)
            set_reg(in.rm, size, read_dr(in.reg), true);
        else
            write_dr(in.reg, reg(in.rm, size, true));
        return;
    }
    case 0x30: wrmsr(); return;
    case 0x31: {                                                      // RDTSC
        if ((s.cr4 & 4) && cpl_ != 0) throw GuestFault{kGP, true, 0}; // CR4.TSD
        uint64_t t = rdtsc_value();
        set_reg(RAX, 4, t & 0xffffffff, false);
        set_reg(RDX, 4, t >> 32, false);
        return;
    }
    case 0x32: rdmsr(); return;
    case 0x33: throw GuestFault{kGP, true, 0}; // RDPMC: no performance counters
    case 0x34: sysenter_insn(); return;
    case 0x35: sysexit_insn(in); return;
    case 0xa0:
    case 0xa8: { // PUSH FS/GS
        uint64_t nsp = rsp_add(s.gpr[RSP], -int64_t(os));
        write_seg<uint16_t>(SS, nsp & sp_mask(), s.seg[op == 0xa0 ? FS : GS].selector);
        s.gpr[RSP] = nsp;
        return;
    }
    case 0xa1:
    case 0xa9: { // POP FS/GS
        uint64_t v = read_sized(SS, s.gpr[RSP] & sp_mask(), os);
        load_seg(op == 0xa1 ? FS : GS, uint16_t(v));
        s.gpr[RSP] = rsp_add(s.gpr[RSP], os);
        return;
    }
    case 0xa2: cpuid(); return;
    case 0xa3: exec_bt(in, 0, false); return;
    case 0xab: exec_bt(in, 1, false); return;
    case 0xb3: exec_bt(in, 2, false); return;
    case 0xbb: exec_bt(in, 3, false); return;
    case 0xba:
        if ((in.reg & 7) < 4) undefined_opcode(&in, "0F BA with reg < 4");
        exec_bt(in, (in.reg & 7) - 4, true);
        return;
    case 0xa4: exec_shd(in, true, in.imm); return;
    case 0xa5: exec_shd(in, true, s.gpr[RCX]); return;
    case 0xac: exec_shd(in, false, in.imm); return;
    case 0xad: exec_shd(in, false, s.gpr[RCX]); return;
    case 0xae:
        if (in.mod == 3) {
            unsigned r = in.reg & 7;
            if (r >= 5 && in.rep == 0) { // LFENCE, MFENCE, SFENCE
                __atomic_thread_fence(__ATOMIC_SEQ_CST);
                return;
            }
            undefined_opcode(&in, "0F AE register form");
        }
        if ((in.reg & 7) == 7 && !in.opsize_prefix && in.rep == 0) { // CLFLUSH
            uint64_t lin = seg_linear(in.seg, ea(in), 1, Access::Read);
            translate(lin, Access::Read, cpl_ == 3);
            return;
        }
        exec_fpu_sse(in); // FXSAVE/FXRSTOR/LDMXCSR/STMXCSR/XSAVE...
        return;
    case 0xaf: {
        int64_t a = sign_extend(reg(in.reg, os, rex), os), b = sign_extend(read_rm(in, os), os);
        __int128 full = __int128(a) * b;
        uint64_t r = uint64_t(full) & size_mask(os);
        bool ovf = full != __int128(sign_extend(r, os));
        set_status(fl, mul_flags(r, os, ovf));
        set_reg(in.reg, os, r, rex);
        return;
    }
    case 0xb0:
    case 0xb1: { // CMPXCHG
        unsigned size = (op & 1) ? os : 1;
        uint64_t acc = reg(RAX, size, false);
        uint64_t src = reg(in.reg, size, rex);
        if (in.mod == 3) {
            // A register destination is written only on success (its upper half survives a
            // failed 32-bit compare, as on the host).
            uint64_t d = reg(in.rm, size, rex);
            alu_sub(fl, acc, d, 0, size);
            if (fl & kZF)
                set_reg(in.rm, size, src, rex);
            else
                set_reg(RAX, size, d, false);
            return;
        }
        uint64_t seen = 0;
        rmw(in, size, [&](uint64_t d) {
            seen = d & size_mask(size);
            alu_sub(fl, acc, seen, 0, size);
            return (fl & kZF) ? src : seen;
        });
        if (!(fl & kZF)) set_reg(RAX, size, seen, false);
        return;
    }
    case 0xb2:
    case 0xb4:
    case 0xb5: { // LSS, LFS, LGS
        if (!in.mem()) undefined_opcode(&in, "LSS/LFS/LGS with a register operand");
        uint64_t a = ea(in);
        uint64_t off = read_sized(in.seg, a, os);
        uint16_t sel = read_seg<uint16_t>(in.seg, (a + os) & size_mask(in.asize));
        load_seg(op == 0xb2 ? SS : op == 0xb4 ? FS : GS, sel);
        set_reg(in.reg, os, off, rex);
        return;
    }
    case 0xb6:
    case 0xb7: // MOVZX
        set_reg(in.reg, os, read_rm(in, op == 0xb6 ? 1 : 2), rex);
        return;
    case 0xbe:
    case 0xbf: { // MOVSX
        unsigned ss = op == 0xbe ? 1 : 2;
        set_reg(in.reg, os, uint64_t(sign_extend(read_rm(in, ss), ss)), rex);
        return;
    }
    case 0xb8: { // POPCNT (F3 0F B8)
        if (in.rep != 0xf3) undefined_opcode(&in, "JMPE (0F B8 without F3)");
        uint64_t v = read_rm(in, os);
        set_status(fl, v == 0 ? kZF : 0);
        set_reg(in.reg, os, uint64_t(__builtin_popcountll(v)), rex);
        return;
    }
    case 0xbc: { // BSF (TZCNT is BMI1, which this CPU model does not have: F3 is ignored)
        uint64_t v = read_rm(in, os);
        // Zero source: ZF, destination unchanged. Intel leaves PF = parity of the result
        // (of 0 for a zero source) and clears CF, OF, SF, AF.
        if (v == 0) {
            set_status(fl, kZF | kPF);
            return;
        }
        uint64_t r = uint64_t(__builtin_ctzll(v));
        set_status(fl, parity_flag(r));
        set_reg(in.reg, os, r, rex);
        return;
    }
    case 0xbd: {
        uint64_t v = read_rm(in, os);
        if (in.rep == 0xf3) { // LZCNT (ABM)
            unsigned bits = os * 8;
            uint64_t r = v == 0 ? bits : uint64_t(__builtin_clzll(v) - (64 - bits));
            set_status(fl, (v == 0 ? kCF : 0) | (r == 0 ? kZF : 0));
            set_reg(in.reg, os, r, rex);
            return;
        }
        if (v == 0) {
            set_status(fl, kZF | kPF);
            return;
        }
        uint64_t r = uint64_t(63 - __builtin_clzll(v));
        set_status(fl, parity_flag(r));
        set_reg(in.reg, os, r, rex);
        return;
    }
    case 0xc0:
    case 0xc1: { // XADD
        unsigned size = (op & 1) ? os : 1;
        uint64_t src = reg(in.reg, size, rex);
        uint64_t old = 0;
        rmw(in, size, [&](uint64_t d) {
            old = d;
            return alu_add(fl, d, src, 0, size);
        });
        if (in.mod == 3 && in.rm == in.reg) return; // same register: the sum wins
        set_reg(in.reg, size, old, rex);
        return;
    }
    case 0xc7: {
        unsigned r = in.reg & 7;
        if (r == 1) {
            exec_cmpxchg_n(in);
            return;
        }
        undefined_opcode(&in, "0F C7 form not implemented (RDRAND/RDSEED/RDPID not offered)");
    }
    default: break;
    }
    exec_fpu_sse(in);
}

} // namespace hvm::emu
