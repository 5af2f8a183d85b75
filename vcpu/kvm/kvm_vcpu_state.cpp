// KvmVcpu's architectural state: CpuState <-> kvm_regs, kvm_sregs, kvm_fpu, XCR0, debug registers,
// MSRs, kvm_vcpu_events and the MP state; and guest code bytes for diagnosis.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "base/error.hpp"
#include "base/log.hpp"
#include "vcpu/guest_memory.hpp"
#include "vcpu/kvm/kvm_abi.hpp"
#include "vcpu/kvm/kvm_vcpu.hpp"
#include "vcpu/kvm/kvm_vm.hpp"

namespace hvm {

namespace {

// MSRs in CpuState (SDM Vol. 4 numbering).
constexpr uint32_t kMsrTsc = 0x10, kMsrSysenterCs = 0x174, kMsrSysenterEsp = 0x175,
                   kMsrSysenterEip = 0x176, kMsrMiscEnable = 0x1a0, kMsrPat = 0x277,
                   kMsrStar = 0xc0000081, kMsrLstar = 0xc0000082, kMsrCstar = 0xc0000083,
                   kMsrSfmask = 0xc0000084, kMsrKernelGsBase = 0xc0000102, kMsrTscAux = 0xc0000103;

constexpr uint64_t kApicBaseBsp = 1u << 8;
constexpr uint64_t kRflagsIf = 1u << 9;
constexpr uint32_t kCpuidXsave = 1u << 26; // leaf 1 ECX

uint64_t* msr_field(CpuState& s, uint32_t index) {
    switch (index) {
    case kMsrTsc: return &s.tsc;
    case kMsrSysenterCs: return &s.sysenter_cs;
    case kMsrSysenterEsp: return &s.sysenter_esp;
    case kMsrSysenterEip: return &s.sysenter_eip;
    case kMsrMiscEnable: return &s.misc_enable;
    case kMsrPat: return &s.pat;
    case kMsrStar: return &s.star;
    case kMsrLstar: return &s.lstar;
    case kMsrCstar: return &s.cstar;
    case kMsrSfmask: return &s.sfmask;
    case kMsrKernelGsBase: return &s.kernel_gs_base;
    case kMsrTscAux: return &s.tsc_aux;
    default: return nullptr;
    }
}

constexpr uint32_t kStateMsrs[] = {
    kMsrTsc,  kMsrSysenterCs, kMsrSysenterEsp, kMsrSysenterEip, kMsrMiscEnable,   kMsrPat,
    kMsrStar, kMsrLstar,      kMsrCstar,       kMsrSfmask,      kMsrKernelGsBase, kMsrTscAux};

// RESET and INIT leave CS = F000 with base FFFF0000 and IP = FFF0 (SDM Vol. 3 §9.1.4); real-mode
// code cannot reach that CS base, so this state identifies a processor that was just reset.
bool is_reset_state(const CpuState& s) {
    return s.seg[CS].base == 0xffff0000 && s.seg[CS].selector == 0xf000 && s.rip == 0xfff0;
}

void to_kvm(const Segment& in, kvm_segment& out) {
    out.base = in.base;
    out.limit = in.limit;
    out.selector = in.selector;
    out.type = in.type;
    out.present = in.present;
    out.dpl = in.dpl;
    out.db = in.db;
    out.s = in.s;
    out.l = in.l;
    out.g = in.g;
    out.avl = in.avl;
    out.unusable = in.unusable;
    out.padding = 0;
}

Segment from_kvm(const kvm_segment& in) {
    Segment s;
    s.base = in.base;
    s.limit = in.limit;
    s.selector = in.selector;
    s.type = in.type;
    s.present = in.present;
    s.dpl = in.dpl;
    s.db = in.db;
    s.s = in.s;
    s.l = in.l;
    s.g = in.g;
    s.avl = in.avl;
    s.unusable = in.unusable;
    return s;
}

// FXSAVE image offsets (SDM Vol. 1 §10.5.1, 64-bit format).
constexpr size_t kFxFcw = 0, kFxFsw = 2, kFxFtw = 4, kFxFop = 6, kFxFip = 8, kFxFdp = 16,
                 kFxMxcsr = 24, kFxSt = 32, kFxXmm = 160;

void fxsave_to_kvm(const uint8_t* fx, kvm_fpu& f) {
    std::memset(&f, 0, sizeof f);
    std::memcpy(&f.fcw, fx + kFxFcw, 2);
    std::memcpy(&f.fsw, fx + kFxFsw, 2);
    f.ftwx = fx[kFxFtw];
    std::memcpy(&f.last_opcode, fx + kFxFop, 2);
    std::memcpy(&f.last_ip, fx + kFxFip, 8);
    std::memcpy(&f.last_dp, fx + kFxFdp, 8);
    std::memcpy(&f.mxcsr, fx + kFxMxcsr, 4);
    for (int i = 0; i < 8; i++) std::memcpy(f.fpr[i], fx + kFxSt + 16 * i, 16);
    for (int i = 0; i < 16; i++) std::memcpy(f.xmm[i], fx + kFxXmm + 16 * i, 16);
}

void kvm_to_fxsave(const kvm_fpu& f, uint8_t* fx) {
    std::memset(fx, 0, 512);
    std::memcpy(fx + kFxFcw, &f.fcw, 2);
    std::memcpy(fx + kFxFsw, &f.fsw, 2);
    fx[kFxFtw] = f.ftwx;
    std::memcpy(fx + kFxFop, &f.last_opcode, 2);
    std::memcpy(fx + kFxFip, &f.last_ip, 8);
    std::memcpy(fx + kFxFdp, &f.last_dp, 8);
    std::memcpy(fx + kFxMxcsr, &f.mxcsr, 4);
    for (int i = 0; i < 8; i++) std::memcpy(fx + kFxSt + 16 * i, f.fpr[i], 16);
    for (int i = 0; i < 16; i++) std::memcpy(fx + kFxXmm + 16 * i, f.xmm[i], 16);
}

} // namespace

// Keeps the CpuState MSRs that KVM lists (KVM_GET_MSR_INDEX_LIST) and that this vCPU actually
// accepts: some depend on CPUID (TSC_AUX needs RDTSCP), and setting an MSR KVM refuses is what
// makes QEMU's -cpu host abort on hosts like this one (MSR 0x10A).
void KvmVcpu::probe_msrs() {
    for (uint32_t m : kStateMsrs) {
        bool listed = false;
        for (uint32_t l : vm_->msr_index_list) listed |= (l == m);
        if (!listed) continue;
        kvm::FlexBuffer<kvm_msrs, kvm_msr_entry> buf(1);
        buf->nmsrs = 1;
        buf.elems()[0].index = m;
        if (kvm_ioctl(fd_, KVM_GET_MSRS, buf.get()) == 1) msrs_.push_back(m);
    }
}

void KvmVcpu::get_state(CpuState& out) {
    kvm_regs r{};
    ioctl_or_throw(KVM_GET_REGS, &r, "KVM_GET_REGS");
    out.gpr[RAX] = r.rax;
    out.gpr[RCX] = r.rcx;
    out.gpr[RDX] = r.rdx;
    out.gpr[RBX] = r.rbx;
    out.gpr[RSP] = r.rsp;
    out.gpr[RBP] = r.rbp;
    out.gpr[RSI] = r.rsi;
    out.gpr[RDI] = r.rdi;
    out.gpr[R8] = r.r8;
    out.gpr[R9] = r.r9;
    out.gpr[R10] = r.r10;
    out.gpr[R11] = r.r11;
    out.gpr[R12] = r.r12;
    out.gpr[R13] = r.r13;
    out.gpr[R14] = r.r14;
    out.gpr[R15] = r.r15;
    out.rip = r.rip;
    out.rflags = r.rflags;

    kvm_sregs s{};
    ioctl_or_throw(KVM_GET_SREGS, &s, "KVM_GET_SREGS");
    out.seg[ES] = from_kvm(s.es);
    out.seg[CS] = from_kvm(s.cs);
    out.seg[SS] = from_kvm(s.ss);
    out.seg[DS] = from_kvm(s.ds);
    out.seg[FS] = from_kvm(s.fs);
    out.seg[GS] = from_kvm(s.gs);
    out.seg[LDTR] = from_kvm(s.ldt);
    out.seg[TR] = from_kvm(s.tr);
    out.gdt = {s.gdt.base, s.gdt.limit};
    out.idt = {s.idt.base, s.idt.limit};
    out.cr0 = s.cr0;
    out.cr2 = s.cr2;
    out.cr3 = s.cr3;
    out.cr4 = s.cr4;
    out.cr8 = s.cr8;
    out.efer = s.efer;
    out.apic_base = s.apic_base;

    kvm_fpu f{};
    ioctl_or_throw(KVM_GET_FPU, &f, "KVM_GET_FPU");
    kvm_to_fxsave(f, out.fxsave);

    out.xcr0 = 1;
    if (vm_->has_xcrs) {
        kvm_xcrs x{};
        ioctl_or_throw(KVM_GET_XCRS, &x, "KVM_GET_XCRS");
        for (uint32_t i = 0; i < x.nr_xcrs && i < KVM_MAX_XCRS; i++)
            if (x.xcrs[i].xcr == 0) out.xcr0 = x.xcrs[i].value;
    }

    if (vm_->has_debugregs) {
        kvm_debugregs d{};
        ioctl_or_throw(KVM_GET_DEBUGREGS, &d, "KVM_GET_DEBUGREGS");
        for (int i = 0; i < 4; i++) out.dr[i] = d.db[i];
        out.dr[6] = d.dr6;
        out.dr[7] = d.dr7;
    }

    if (!msrs_.empty()) {
        kvm::FlexBuffer<kvm_msrs, kvm_msr_entry> buf(msrs_.size());
        buf->nmsrs = static_cast<uint32_t>(msrs_.size());
        for (size_t i = 0; i < msrs_.size(); i++) buf.elems()[i].index = msrs_[i];
        int n = kvm_ioctl(fd_, KVM_GET_MSRS, buf.get());
        if (n < 0)
            throw std::runtime_error("kvm: vCPU " + std::to_string(index_) + ": " +
                                     errno_text("KVM_GET_MSRS"));
        for (int i = 0; i < n; i++)
            if (uint64_t* field = msr_field(out, buf.elems()[i].index))
                *field = buf.elems()[i].data;
    }

    kvm_vcpu_events ev{};
    ioctl_or_throw(KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
    out.interrupt_shadow = ev.interrupt.shadow != 0;
    out.nmi_masked = ev.nmi.masked != 0;

    if (interrupts_) {
        out.halted = halted_ || wait_for_sipi_;
    } else {
        kvm_mp_state mp{};
        ioctl_or_throw(KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE");
        out.halted = mp.mp_state == KVM_MP_STATE_HALTED ||
                     mp.mp_state == KVM_MP_STATE_UNINITIALIZED ||
                     mp.mp_state == KVM_MP_STATE_INIT_RECEIVED;
    }
}

void KvmVcpu::set_msrs(const CpuState& in) {
    CpuState copy = in;
    for (;;) {
        if (msrs_.empty()) return;
        kvm::FlexBuffer<kvm_msrs, kvm_msr_entry> buf(msrs_.size());
        buf->nmsrs = static_cast<uint32_t>(msrs_.size());
        for (size_t i = 0; i < msrs_.size(); i++) {
            buf.elems()[i].index = msrs_[i];
            buf.elems()[i].data = *msr_field(copy, msrs_[i]);
        }
        int n = kvm_ioctl(fd_, KVM_SET_MSRS, buf.get());
        if (n < 0)
            throw std::runtime_error("kvm: vCPU " + std::to_string(index_) + ": " +
                                     errno_text("KVM_SET_MSRS"));
        if (static_cast<size_t>(n) >= msrs_.size()) return;
        // KVM stops at the first MSR it refuses: leave that one out from now on, set the rest.
        LOG_WARN("kvm: vCPU %u: KVM refused MSR %#x = %#llx; not carried in the CPU state", index_,
                 msrs_[n], static_cast<unsigned long long>(*msr_field(copy, msrs_[n])));
        msrs_.erase(msrs_.begin() + n);
    }
}

void KvmVcpu::set_state(const CpuState& in) {
    const bool reset = is_reset_state(in);
    const bool wait_sipi = reset && !(in.apic_base & kApicBaseBsp);

    kvm_regs r{};
    r.rax = in.gpr[RAX];
    r.rcx = in.gpr[RCX];
    r.rdx = in.gpr[RDX];
    r.rbx = in.gpr[RBX];
    r.rsp = in.gpr[RSP];
    r.rbp = in.gpr[RBP];
    r.rsi = in.gpr[RSI];
    r.rdi = in.gpr[RDI];
    r.r8 = in.gpr[R8];
    r.r9 = in.gpr[R9];
    r.r10 = in.gpr[R10];
    r.r11 = in.gpr[R11];
    r.r12 = in.gpr[R12];
    r.r13 = in.gpr[R13];
    r.r14 = in.gpr[R14];
    r.r15 = in.gpr[R15];
    r.rip = in.rip;
    r.rflags = in.rflags | 2; // bit 1 is always set
    ioctl_or_throw(KVM_SET_REGS, &r, "KVM_SET_REGS");

    kvm_fpu f;
    fxsave_to_kvm(in.fxsave, f);
    ioctl_or_throw(KVM_SET_FPU, &f, "KVM_SET_FPU");

    const CpuidEntry* l1 = find_cpuid(cpuid_, 1);
    if (vm_->has_xcrs && l1 && (l1->ecx & kCpuidXsave)) {
        kvm_xcrs x{};
        x.nr_xcrs = 1;
        x.xcrs[0].xcr = 0;
        x.xcrs[0].value = in.xcr0;
        if (kvm_ioctl(fd_, KVM_SET_XCRS, &x) < 0)
            fail("vCPU " + std::to_string(index_) + ": KVM rejected XCR0 " +
                 std::to_string(in.xcr0));
    }

    // Keep KVM's queued interrupt (interrupt_bitmap) unless this is a RESET/INIT.
    kvm_sregs s{};
    ioctl_or_throw(KVM_GET_SREGS, &s, "KVM_GET_SREGS");
    to_kvm(in.seg[ES], s.es);
    to_kvm(in.seg[CS], s.cs);
    to_kvm(in.seg[SS], s.ss);
    to_kvm(in.seg[DS], s.ds);
    to_kvm(in.seg[FS], s.fs);
    to_kvm(in.seg[GS], s.gs);
    to_kvm(in.seg[LDTR], s.ldt);
    to_kvm(in.seg[TR], s.tr);
    s.gdt = {in.gdt.base, in.gdt.limit, {0, 0, 0}};
    s.idt = {in.idt.base, in.idt.limit, {0, 0, 0}};
    s.cr0 = in.cr0;
    s.cr2 = in.cr2;
    s.cr3 = in.cr3;
    s.cr4 = in.cr4;
    s.cr8 = in.cr8;
    s.efer = in.efer;
    s.apic_base = in.apic_base;
    if (reset) std::memset(s.interrupt_bitmap, 0, sizeof s.interrupt_bitmap);
    if (kvm_ioctl(fd_, KVM_SET_SREGS, &s) < 0)
        fail("vCPU " + std::to_string(index_) +
             ": KVM rejected the segment/control register state: " + std::strerror(errno));

    set_msrs(in);

    kvm_vcpu_events ev{};
    ioctl_or_throw(KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS");
    ev.flags = KVM_VCPUEVENT_VALID_SHADOW;
    ev.interrupt.shadow = in.interrupt_shadow ? 1 : 0; // KVM_X86_SHADOW_INT_MOV_SS | _STI
    ev.nmi.masked = in.nmi_masked ? 1 : 0;
    if (reset) {
        ev.exception.injected = 0;
        ev.exception.pending = 0;
        ev.interrupt.injected = 0;
        ev.nmi.injected = 0;
        ev.nmi.pending = 0;
        ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING;
    }
    ioctl_or_throw(KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS");

    if (vm_->has_debugregs) {
        kvm_debugregs d{};
        for (int i = 0; i < 4; i++) d.db[i] = in.dr[i];
        d.dr6 = in.dr[6];
        d.dr7 = in.dr[7];
        ioctl_or_throw(KVM_SET_DEBUGREGS, &d, "KVM_SET_DEBUGREGS");
    }

    if (interrupts_) {
        halted_ = in.halted && !wait_sipi;
        wait_for_sipi_ = wait_sipi;
        halt_reported_ = false;
        can_inject_ = false;
        if_flag_ = (in.rflags & kRflagsIf) != 0;
        run_->cr8 = in.cr8 & 0xf; // KVM_RUN loads CR8 from here with a user-space LAPIC
        cr8_shadow_ = in.cr8 & 0xf;
        run_->request_interrupt_window = 0;
    } else {
        // With the in-kernel LAPIC, KVM runs INIT/SIPI: APs sit in UNINITIALIZED until then.
        kvm_mp_state mp{};
        mp.mp_state = wait_sipi             ? KVM_MP_STATE_UNINITIALIZED
                      : in.halted && !reset ? KVM_MP_STATE_HALTED
                                            : KVM_MP_STATE_RUNNABLE;
        ioctl_or_throw(KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE");
    }
}

size_t KvmVcpu::read_code(uint64_t linear, uint8_t* out, size_t len) {
    GuestMemory* mem = vm_->memory.load();
    if (!mem) return 0;
    size_t n = 0;
    while (n < len) {
        const uint64_t la = linear + n;
        kvm_translation tr{};
        tr.linear_address = la;
        if (kvm_ioctl(fd_, KVM_TRANSLATE, &tr) < 0 || !tr.valid) break;
        const size_t chunk = std::min<uint64_t>(len - n, 0x1000 - (la & 0xfff));
        if (!mem->read(tr.physical_address, std::span<uint8_t>(out + n, chunk))) break;
        n += chunk;
    }
    return n;
}

} // namespace hvm
