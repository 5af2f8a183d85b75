// The run loop: event delivery at instruction boundaries (INIT, SIPI, NMI, INTR), HLT and
// wait-for-SIPI sleeping, instruction fetch and fault handling (#DF, triple fault).
#include "vcpu/emu/x86_cpu.hpp"

#include <cinttypes>
#include <cstdio>
#include <x86intrin.h>

#include "base/log.hpp"
#include "vcpu/guest_memory.hpp"

namespace hvm::emu {

X86Cpu::X86Cpu(unsigned index, GuestMemory& mem, IoSink& io, CpuInterrupts* irq,
               std::mutex* device_lock)
    : index_(index), mem_(mem), io_(io), irq_(irq), device_lock_(device_lock),
      dcache_(new DecodedInsn[kDecodeCacheSize]) {
    s = reset_cpu_state(index);
    // Application processors sleep in wait-for-SIPI after power-on (SDM Vol. 3 §9.4.1).
    wait_sipi_ = index != 0;
    tsc_offset_ = -__rdtsc();
    if (irq_) {
        irq_->kick = [this] {
            wake_seq_.fetch_add(1);
            wake_seq_.notify_all();
        };
    }
    update_mode();
}

X86Cpu::~X86Cpu() {
    if (irq_ && device_lock_) {
        std::lock_guard g(*device_lock_);
        irq_->kick = nullptr;
    } else if (irq_) {
        irq_->kick = nullptr;
    }
}

void X86Cpu::kick() {
    kick_.store(true);
    wake_seq_.fetch_add(1);
    wake_seq_.notify_all();
}

void X86Cpu::get_state(CpuState& out) {
    out = s;
    out.tsc = rdtsc_value();
    out.halted = s.halted || wait_sipi_;
}

void X86Cpu::set_state(const CpuState& in) {
    s = in;
    s.rflags = (s.rflags | kFlagsFixed1) & 0x3f7fd7ull;
    tsc_offset_ = in.tsc - __rdtsc();
    // An application processor given the RESET state waits for a SIPI (it never executes the
    // reset vector: SDM Vol. 3 §9.4); any other state runs.
    wait_sipi_ = index_ != 0 && in.seg[CS].selector == 0xf000 && in.seg[CS].base == 0xffff0000 &&
                 in.rip == 0xfff0 && !(in.cr0 & 1);
    shutdown_ = false;
    halt_reported_ = false;
    update_mode();
    tlb_flush_all();
}

uint64_t X86Cpu::rdtsc_value() const {
    return __rdtsc() + tsc_offset_;
}

void X86Cpu::update_mode() {
    const Segment& cs = s.seg[CS];
    mode64_ = lma() && cs.l;
    def32_ = !mode64_ && cs.db && pe() && !v86();
    if (!pe())
        cpl_ = 0;
    else if (v86())
        cpl_ = 3;
    else
        cpl_ = s.seg[SS].dpl;
    write_need_ = kPermHostW | kPermDirty | ((s.cr0 & (1u << 16)) ? kPermWrite : 0);
}

size_t X86Cpu::read_code(uint64_t linear, uint8_t* out, size_t len) {
    size_t n = 0;
    try {
        for (; n < len; n++) out[n] = read_lin<uint8_t>(linear + n, true);
    } catch (const GuestFault&) {
        // a fault reading code for diagnosis is not a guest event
    }
    return n;
}

// ---- registers ------------------------------------------------------------------------------

uint64_t X86Cpu::reg(unsigned r, unsigned size, bool rex) const {
    switch (size) {
    case 1:
        if (r >= 4 && r < 8 && !rex) return (s.gpr[r - 4] >> 8) & 0xff; // AH CH DH BH
        return s.gpr[r] & 0xff;
    case 2: return s.gpr[r] & 0xffff;
    case 4: return s.gpr[r] & 0xffffffff;
    default: return s.gpr[r];
    }
}

void X86Cpu::set_reg(unsigned r, unsigned size, uint64_t v, bool rex) {
    switch (size) {
    case 1:
        if (r >= 4 && r < 8 && !rex)
            s.gpr[r - 4] = (s.gpr[r - 4] & ~0xff00ull) | ((v & 0xff) << 8);
        else
            s.gpr[r] = (s.gpr[r] & ~0xffull) | (v & 0xff);
        break;
    case 2: s.gpr[r] = (s.gpr[r] & ~0xffffull) | (v & 0xffff); break;
    case 4: s.gpr[r] = v & 0xffffffff; break; // 32-bit writes zero-extend (SDM Vol. 1 §3.4.1.1)
    default: s.gpr[r] = v; break;
    }
}

uint64_t X86Cpu::ea(const Insn& in) const {
    uint64_t a = uint64_t(in.disp);
    if (in.rip_rel) return next_rip_ + a;
    if (in.base != kNoReg) a += s.gpr[in.base];
    if (in.index != kNoReg) a += s.gpr[in.index] << in.scale;
    return a & size_mask(in.asize);
}

uint64_t X86Cpu::read_rm(const Insn& in, unsigned size) {
    if (in.mod == 3) return reg(in.rm, size, in.rex);
    return read_sized(in.seg, ea(in), size);
}

void X86Cpu::write_rm(const Insn& in, unsigned size, uint64_t v) {
    if (in.mod == 3)
        set_reg(in.rm, size, v, in.rex);
    else
        write_sized(in.seg, ea(in), size, v);
}

// ---- stack ----------------------------------------------------------------------------------

uint64_t X86Cpu::rsp_add(uint64_t rsp, int64_t d) const {
    uint64_t m = sp_mask();
    return (rsp & ~m) | ((rsp + d) & m);
}

void X86Cpu::push(uint64_t v, unsigned size) {
    uint64_t nsp = rsp_add(s.gpr[RSP], -int64_t(size));
    write_sized(SS, nsp & sp_mask(), size, v);
    s.gpr[RSP] = nsp;
}

uint64_t X86Cpu::pop(unsigned size) {
    uint64_t v = read_sized(SS, s.gpr[RSP] & sp_mask(), size);
    s.gpr[RSP] = rsp_add(s.gpr[RSP], size);
    return v;
}

// ---- events ---------------------------------------------------------------------------------

void X86Cpu::do_init() {
    // INIT keeps the APIC base, MTRRs and the x87/SSE state (SDM Vol. 3 table 9-1: "INIT does
    // not change"); everything else returns to the reset state.
    uint64_t apic_base = s.apic_base;
    CpuState n = reset_cpu_state(index_);
    memcpy(n.fxsave, s.fxsave, sizeof n.fxsave);
    n.apic_base = apic_base;
    n.pat = s.pat;
    s = n;
    update_mode();
    tlb_flush_all();
    if (trace_) trace_->cpu_reset(index_);
    // The bootstrap processor restarts at the reset vector; the others wait for a SIPI.
    wait_sipi_ = !(apic_base & (1u << 8));
}

// Returns true when an event was delivered or state changed.
bool X86Cpu::service_events(uint32_t p) {
    if (!irq_) return false;
    if (p & CpuInterrupts::kInit) {
        if (with_device_lock([&] { return irq_->acknowledge_init(); })) {
            do_init();
            return true;
        }
    }
    if (p & CpuInterrupts::kSipi) {
        int v = with_device_lock([&] { return irq_->acknowledge_sipi(); });
        if (v >= 0 && wait_sipi_) {
            // SIPI vector V starts the AP in real mode at V << 8 : 0 (SDM Vol. 3 §9.4.4).
            wait_sipi_ = false;
            s.halted = false;
            s.seg[CS].selector = uint16_t(v << 8);
            s.seg[CS].base = uint64_t(v) << 12;
            s.rip = 0;
            update_mode();
            return true;
        }
    }
    if (wait_sipi_) return false;
    if ((p & CpuInterrupts::kNmi) && !s.nmi_masked) {
        if (with_device_lock([&] { return irq_->acknowledge_nmi(); })) {
            s.halted = false;
            s.nmi_masked = true;
            try {
                rip_start_ = s.rip;
                deliver(kNMI, EventKind::Nmi, false, 0, s.rip);
            } catch (const GuestFault& f) {
                handle_fault(f);
            }
            return true;
        }
    }
    if ((p & CpuInterrupts::kIntr) && (s.rflags & kIF) && !s.interrupt_shadow) {
        int v = with_device_lock([&] { return irq_->acknowledge_interrupt(); });
        if (v >= 0) {
            s.halted = false;
            try {
                rip_start_ = s.rip;
                deliver(uint8_t(v), EventKind::External, false, 0, s.rip);
            } catch (const GuestFault& f) {
                handle_fault(f);
            }
            return true;
        }
    }
    return false;
}

void X86Cpu::handle_fault(const GuestFault& first) {
    // Exception classes for double faults (SDM Vol. 3 table 6-5).
    auto contributory = [](uint8_t v) { return v == kDE || (v >= kTS && v <= kGP); };
    GuestFault f = first;
    s.rip = rip_start_;
    for (int depth = 0;; depth++) {
        try {
            s.halted = false;
            deliver(f.vector, EventKind::Exception, f.has_error, f.error, s.rip);
            return;
        } catch (const GuestFault& g) {
            uint8_t prev = f.vector;
            if (prev == kDFv || depth >= 2) {
                shutdown_ = true; // triple fault
                LOG_INFO("emu: vCPU %u triple fault (vector %u while delivering #DF) at %#" PRIx64,
                         index_, g.vector, rip_start_);
                return;
            }
            bool df = (contributory(prev) && contributory(g.vector)) ||
                      (prev == kPFv && (contributory(g.vector) || g.vector == kPFv));
            if (df)
                f = GuestFault{kDFv, true, 0};
            else
                f = g; // benign: deliver the second one serially
            s.rip = rip_start_;
        }
    }
}

[[noreturn]] void X86Cpu::undefined_opcode(const Insn* in, const char* why) {
    static RateLimiter limiter(32, 100000);
    if (limiter.allow()) {
        uint8_t bytes[16] = {};
        size_t n = read_code(s.seg[CS].base + rip_start_, bytes, in && in->len ? in->len : 8);
        char hex[64] = {};
        size_t o = 0;
        for (size_t i = 0; i < n && o + 4 < sizeof hex; i++)
            o += snprintf(hex + o, sizeof hex - o, "%02x ", bytes[i]);
        LOG_WARN("emu: vCPU %u #UD at %04x:%#" PRIx64 " (%s mode) bytes [%s]: %s", index_,
                 s.seg[CS].selector, rip_start_,
                 mode64_ ? "64-bit" : (pe() ? (def32_ ? "32-bit" : "16-bit pm") : "real"), hex,
                 why);
    }
    throw GuestFault{kUD, false, 0};
}

size_t X86Cpu::fetch_bytes(uint8_t* buf, GuestFault& pending, bool& have_fault) {
    // Fetch up to 15 bytes, stopping at a fault or the CS limit; the fault is raised only if the
    // decoder actually needs the bytes behind it.
    have_fault = false;
    size_t n = 0;
    const Segment& cs = s.seg[CS];
    uint64_t rip = s.rip;
    size_t want = kMaxInsnLen;
    if (!mode64_) {
        if (rip > cs.limit) {
            pending = GuestFault{kGP, true, 0};
            have_fault = true;
            return 0;
        }
        uint64_t room = uint64_t(cs.limit) - rip + 1;
        if (room < want) {
            want = size_t(room);
            pending = GuestFault{kGP, true, 0};
            have_fault = true;
        }
    }
    const bool user = cpl_ == 3;
    while (n < want) {
        uint64_t lin = mode64_ ? rip + n : ((cs.base + rip + n) & 0xffffffffull);
        if (mode64_ && uint64_t(int64_t(lin << 16) >> 16) != lin) {
            pending = GuestFault{kGP, true, 0};
            have_fault = true;
            break;
        }
        TlbEntry* e = &tlb_[(lin >> 12) & (kTlbSize - 1)];
        uint32_t need = kPermHostR | kPermExec | (user ? kPermUser : 0);
        if (!(e->tag == (lin >> 12) && (e->perm & need) == need)) {
            // A fault on bytes the instruction turns out not to need must not change CR2.
            uint64_t cr2 = s.cr2;
            try {
                e = &translate(lin, Access::Fetch, user);
            } catch (const GuestFault& f) {
                fetch_fault_cr2_ = s.cr2;
                s.cr2 = cr2;
                pending = f;
                have_fault = true;
                break;
            }
        }
        size_t chunk = std::min<size_t>(want - n, 0x1000 - (lin & 0xfff));
        if (e->perm & kPermHostR) {
            memcpy(buf + n, e->host + (lin & 0xfff), chunk);
        } else {
            phys_read(e->gpa + (lin & 0xfff), buf + n, unsigned(chunk));
        }
        n += chunk;
    }
    return n;
}

namespace {
// Compares the first `len` (<= 15) bytes at `p` with a cached copy; `p + 16` must be readable.
inline bool same_bytes16(const uint64_t cached[2], const uint8_t* p, unsigned len) {
    uint64_t a, b;
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    uint64_t ma = len >= 8 ? ~0ull : (1ull << (8 * len)) - 1;
    uint64_t mb = len > 8 ? (1ull << (8 * (len - 8))) - 1 : 0;
    return ((a ^ cached[0]) & ma) == 0 && ((b ^ cached[1]) & mb) == 0;
}
} // namespace

void X86Cpu::step() {
    rip_start_ = s.rip;
    const DecodeMode dm{mode64_, def32_};
    // Fast path: the code TLB hits, the instruction is in the decode cache with the same bytes,
    // and (outside 64-bit mode) lies inside the CS limit.
    uint64_t lin = mode64_ ? s.rip : ((s.seg[CS].base + s.rip) & 0xffffffffull);
    const TlbEntry& e = tlb_[(lin >> 12) & (kTlbSize - 1)];
    const uint32_t need = kPermHostR | kPermExec | (cpl_ == 3 ? kPermUser : 0);
    const unsigned off = lin & 0xfff;
    if (e.tag == (lin >> 12) && (e.perm & need) == need && off <= 0x1000 - 16) {
        const uint8_t* p = e.host + off;
        const uint64_t gpa = e.gpa + off;
        const uint64_t tag = gpa << 2 | (mode64_ ? 2 : def32_ ? 1 : 0);
        DecodedInsn& d = dcache_[(gpa ^ (gpa >> 14)) & (kDecodeCacheSize - 1)];
        const Insn* in = nullptr;
        if (d.tag == tag && same_bytes16(d.bytes, p, d.insn.len)) {
            in = &d.insn;
        } else {
            DecodeStatus st = decode(p, kMaxInsnLen, dm, d.insn);
            if (st == DecodeStatus::Ok) {
                memcpy(d.bytes, p, 16);
                d.tag = tag;
                in = &d.insn;
            } else {
                d.tag = ~0ull;
            }
        }
        if (in && (mode64_ || s.rip + in->len - 1 <= s.seg[CS].limit)) {
            if (trace_)
                trace_->insn(index_, s.seg[CS].selector, s.rip, mode64_, def32_, p, in->len);
            next_rip_ = s.rip + in->len;
            if (!mode64_) next_rip_ &= def32_ ? 0xffffffffull : 0xffffull;
            exec(*in);
            icount_++;
            return;
        }
    }
    // Slow path: page-crossing instructions, CS-limit edges, faults while fetching, #UD.
    Insn in;
    uint8_t buf[16];
    GuestFault pending{};
    bool have_fault = false;
    size_t n = fetch_bytes(buf, pending, have_fault);
    DecodeStatus st = decode(buf, n, dm, in);
    switch (st) {
    case DecodeStatus::Ok: break;
    case DecodeStatus::NeedMore:
        if (have_fault) {
            if (pending.vector == kPFv) s.cr2 = fetch_fault_cr2_;
            throw pending;
        }
        throw GuestFault{kGP, true, 0};
    case DecodeStatus::TooLong: throw GuestFault{kGP, true, 0};
    case DecodeStatus::Invalid: undefined_opcode(&in, "invalid opcode in this mode");
    }
    if (trace_) trace_->insn(index_, s.seg[CS].selector, s.rip, mode64_, def32_, buf, in.len);
    next_rip_ = s.rip + in.len;
    if (!mode64_) next_rip_ &= def32_ ? 0xffffffffull : 0xffffull;
    exec(in);
    icount_++;
}

void X86Cpu::step_traced() {
    if (!(s.rflags & kTF)) {
        step();
        return;
    }
    // Single-step: a #DB trap after an instruction that began with TF = 1 (SDM Vol. 3 §18.3.1.4),
    // except after INT n / INT3 / INTO / INT1, whose delivery clears TF.
    soft_event_ = false;
    step();
    if (soft_event_) return;
    s.dr[6] |= 1u << 14; // DR6.BS
    rip_start_ = s.rip;
    deliver(kDB, EventKind::Exception, false, 0, s.rip);
}

uint64_t X86Cpu::step_n(uint64_t max) {
    sync_a20();
    uint64_t done = 0;
    while (done < max && !shutdown_ && !s.halted && error.empty()) {
        s.interrupt_shadow = false;
        try {
            try {
                step_traced();
            } catch (const GuestFault& f) {
                handle_fault(f);
            }
        } catch (const Unimplemented& u) {
            error = "emu: " + u.what;
            s.rip = rip_start_;
            break;
        }
        done++;
    }
    return done;
}

void X86Cpu::run_batch(unsigned max) {
    sync_a20();
    for (unsigned i = 0; i < max; i++) {
        if (i != 0) {
            uint32_t p = irq_ ? irq_->pending.load(std::memory_order_relaxed) : 0;
            if ((p & (CpuInterrupts::kNmi | CpuInterrupts::kInit | CpuInterrupts::kSipi)) ||
                ((p & CpuInterrupts::kIntr) && (s.rflags & kIF) && !s.interrupt_shadow))
                return;
            if (kick_.load(std::memory_order_relaxed)) return;
        }
        // The STI / MOV SS shadow covers exactly the next instruction.
        s.interrupt_shadow = false;
        step_traced();
        if (s.halted || shutdown_) return;
    }
}

VcpuExit X86Cpu::run() {
    try {
        return run_loop();
    } catch (const Unimplemented& u) {
        // Thrown before the instruction or the event delivery committed anything.
        s.rip = rip_start_;
        error = "emu: " + u.what;
        LOG_ERROR("%s (vCPU %u at %04x:%#" PRIx64 ")", error.c_str(), index_, s.seg[CS].selector,
                  rip_start_);
        return VcpuExit::InternalError;
    }
}

VcpuExit X86Cpu::run_loop() {
    for (;;) {
        if (kick_.exchange(false)) return VcpuExit::Kicked;
        if (shutdown_) {
            shutdown_ = false;
            return VcpuExit::Shutdown;
        }
        uint32_t seq = wake_seq_.load();
        uint32_t p = irq_ ? irq_->pending.load() : 0;
        if (p) service_events(p);
        if (shutdown_) continue;
        if (wait_sipi_ || s.halted) {
            // Sleep until something could wake this vCPU (kick() or irq_->kick bump wake_seq_).
            p = irq_ ? irq_->pending.load() : 0;
            bool wakeable = (p & (CpuInterrupts::kInit | CpuInterrupts::kSipi)) ||
                            (!wait_sipi_ && (((p & CpuInterrupts::kNmi) && !s.nmi_masked) ||
                                             ((p & CpuInterrupts::kIntr) && (s.rflags & kIF))));
            if (wakeable) continue;
            if (s.halted && !wait_sipi_ && !(s.rflags & kIF) && !halt_reported_) {
                halt_reported_ = true;
                return VcpuExit::Halted;
            }
            if (kick_.load()) continue;
            wake_seq_.wait(seq);
            continue;
        }
        halt_reported_ = false;
        try {
            run_batch(4096);
        } catch (const GuestFault& f) {
            handle_fault(f);
        }
    }
}

void X86Cpu::halt() {
    s.halted = true;
    s.rip = next_rip_;
}

} // namespace hvm::emu
