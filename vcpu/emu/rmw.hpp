// Read-modify-write of an instruction's r/m operand; LOCKed forms (and XCHG) are atomic on the
// host pointer so that other vCPUs see them as atomic (shared by exec.cpp and exec0f.cpp).
#pragma once
#include <type_traits>

#include "vcpu/emu/x86_cpu.hpp"

namespace hvm::emu {

template <typename F> void X86Cpu::rmw(const Insn& in, unsigned size, F&& f) {
    if (in.mod == 3) {
        set_reg(in.rm, size, f(reg(in.rm, size, in.rex)), in.rex);
        return;
    }
    rmw_at(in.seg, ea(in), size, in.lock || in.op == 0x86 || in.op == 0x87, f);
}

template <typename F>
void X86Cpu::rmw_at(unsigned seg, uint64_t off, unsigned size, bool atomic, F&& f) {
    uint64_t lin = seg_linear(seg, off, size, Access::Write);
    uint8_t* p = lin_rmw_ptr(lin, size);
    if (!p) {
        // MMIO, ROM or a page-crossing operand: not atomic, like a split access on hardware.
        uint64_t old = 0;
        read_lin_slow(lin, &old, size, false);
        uint64_t nv = f(old);
        write_lin_slow(lin, &nv, size, false);
        return;
    }
    auto go = [&](auto* q) {
        using T = std::remove_pointer_t<decltype(q)>;
        if (atomic) {
            // Host atomics on the guest RAM pointer: other vCPUs see LOCKed RMWs as atomic.
            T old = __atomic_load_n(q, __ATOMIC_RELAXED);
            for (;;) {
                T nv = T(f(old));
                if (__atomic_compare_exchange_n(q, &old, nv, false, __ATOMIC_SEQ_CST,
                                                __ATOMIC_RELAXED))
                    break;
            }
        } else {
            T old;
            memcpy(&old, q, sizeof old);
            T nv = T(f(old));
            memcpy(q, &nv, sizeof nv);
        }
    };
    switch (size) {
    case 1: go(reinterpret_cast<uint8_t*>(p)); break;
    case 2: go(reinterpret_cast<uint16_t*>(p)); break;
    case 4: go(reinterpret_cast<uint32_t*>(p)); break;
    default: go(reinterpret_cast<uint64_t*>(p)); break;
    }
}

} // namespace hvm::emu
