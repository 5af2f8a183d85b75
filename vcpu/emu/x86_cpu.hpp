// hvm's x86 interpreter core: one X86Cpu per vCPU thread. The architectural state is the engine
// contract's CpuState; everything else here (software TLB, derived mode bits, event flags) is a
// cache rebuilt from it by set_state().
//
// Guest faults unwind the current instruction as a C++ exception (GuestFault) caught at the
// instruction boundary; instructions therefore do all their memory accesses before they commit
// register state, so that a faulting instruction leaves the CPU as it was (SDM Vol. 3 §6.5).
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "vcpu/emu/flags.hpp"
#include "vcpu/emu/insn.hpp"
#include "vcpu/emu/trace.hpp"
#include "vcpu/engine.hpp"

namespace hvm {
class GuestMemory;
}

namespace hvm::emu {

// Exception vectors (SDM Vol. 3 table 6-1).
enum Vector : uint8_t {
    kDE = 0,
    kDB = 1,
    kNMI = 2,
    kBP = 3,
    kOFv = 4,
    kBR = 5,
    kUD = 6,
    kNM = 7,
    kDFv = 8,
    kTS = 10,
    kNP = 11,
    kSSv = 12,
    kGP = 13,
    kPFv = 14,
    kMF = 16,
    kACv = 17,
    kMC = 18,
    kXM = 19,
};

// A guest exception raised while executing an instruction (thrown, caught at the boundary).
struct GuestFault {
    uint8_t vector;
    bool has_error;
    uint32_t error;
};

// Something hvm's emulator does not implement yet (task switches, v8086 mode, ...): the vCPU stops
// with VcpuExit::InternalError and this text, rather than inventing behaviour.
struct Unimplemented {
    std::string what;
};

// CPUID model and MSR storage that are not in CpuState.
struct MtrrState {
    uint64_t def_type = 0;
    uint64_t var[16] = {}; // base/mask pairs for 8 variable ranges
    uint64_t fixed[11] = {};
};

enum class Access : uint8_t { Read, Write, Fetch };

// Software TLB entry: one 4 KiB linear page (large pages are cached in 4 KiB pieces).
struct TlbEntry {
    uint64_t tag = ~0ull;    // linear page number, ~0 = empty
    uint64_t gpa = 0;        // guest-physical page address
    uint8_t* host = nullptr; // host address of the page when it is RAM/ROM, else nullptr
    uint32_t perm = 0;       // kPerm* bits
};

inline constexpr uint32_t kPermUser = 1 << 0;
inline constexpr uint32_t kPermWrite = 1 << 1;
inline constexpr uint32_t kPermExec = 1 << 2;
inline constexpr uint32_t kPermDirty = 1 << 3;
inline constexpr uint32_t kPermGlobal = 1 << 4;
inline constexpr uint32_t kPermHostR = 1 << 5;
inline constexpr uint32_t kPermHostW = 1 << 6;
inline constexpr uint32_t kPermLarge = 1 << 7;

// Decoded-instruction cache entry, keyed by guest-physical address and decode mode. The raw bytes
// are kept and compared on every hit, so an entry can never be stale: self-modifying code, DMA
// and other vCPUs' stores need no invalidation protocol (a 16-byte compare costs less than any
// page-tracking scheme on the store path).
struct alignas(64) DecodedInsn {
    uint64_t tag = ~0ull; // gpa << 2 | mode (0 = 16-bit, 1 = 32-bit, 2 = 64-bit)
    uint64_t bytes[2] = {};
    Insn insn;
};
static_assert(sizeof(DecodedInsn) == 64, "one cache line per decoded instruction");

class X86Cpu {
  public:
    X86Cpu(unsigned index, GuestMemory& mem, IoSink& io, CpuInterrupts* irq,
           std::mutex* device_lock);
    ~X86Cpu();
    X86Cpu(const X86Cpu&) = delete;
    X86Cpu& operator=(const X86Cpu&) = delete;

    unsigned index() const { return index_; }
    VcpuExit run();
    void kick();
    void get_state(CpuState& out);
    void set_state(const CpuState& in);
    size_t read_code(uint64_t linear, uint8_t* out, size_t len);

    // Executes at most `max` instructions (no event delivery between them except faults); for
    // tests and benchmarks. Returns the number executed; stops early on HLT, shutdown or error.
    uint64_t step_n(uint64_t max);
    uint64_t instructions() const { return icount_; }
    bool shut_down() const { return shutdown_; }
    bool waiting_for_sipi() const { return wait_sipi_; }
    void set_waiting_for_sipi(bool w) { wait_sipi_ = w; }
    // The machine's A20 gate, shared by all vCPUs: bit 0 = enabled, the rest counts changes
    // (EmuEngine::set_a20). Checked after every port write and at every batch start.
    void set_a20_source(const std::atomic<uint32_t>* a20) {
        a20_ = a20;
        sync_a20();
    }
    void sync_a20() {
        if (!a20_) return;
        uint32_t v = a20_->load(std::memory_order_acquire);
        if (v == a20_seen_) return;
        a20_seen_ = v;
        a20_mask_ = (v & 1) ? ~0ull : ~(1ull << 20);
        tlb_flush_all();
    }
    // Installs (or with nullptr removes) diagnosis hooks; call while the vCPU is not running.
    void set_trace(EmuTrace* trace) { trace_ = trace; }
    // Flushes decoded/cached translations of guest-physical [gpa, gpa+len) (DMA writes).
    void memory_written(uint64_t gpa, uint64_t len);

    std::string error;

    // ---- everything below is the interpreter's own business -----------------------------------
    CpuState s;

  private:
    friend struct ExecAccess;
    // run loop and events (x86_cpu.cpp)
    VcpuExit run_loop();
    bool service_events(uint32_t pending);
    void run_batch(unsigned max);
    void do_init();
    void handle_fault(const GuestFault& f);
    void step();
    void step_traced();
    void exec(const Insn& in);
    [[noreturn]] void undefined_opcode(const Insn* in, const char* why);
    template <typename F> auto with_device_lock(F&& f) {
        if (device_lock_) {
            std::lock_guard g(*device_lock_);
            return f();
        }
        return f();
    }

    // mode (x86_cpu.cpp)
    void update_mode();
    bool pe() const { return s.cr0 & 1; }
    bool v86() const { return s.rflags & kVM; }
    bool lma() const { return s.efer & (1u << 10); }
    unsigned stack_size() const { return mode64_ ? 8 : (s.seg[SS].db ? 4 : 2); }

    // memory (mmu.cpp)
    void tlb_flush_all();
    void tlb_flush_nonglobal();
    void tlb_flush_page(uint64_t lin);
    TlbEntry& translate(uint64_t lin, Access acc, bool user);
    [[noreturn]] void page_fault(uint64_t lin, uint32_t err);
    uint64_t canonical_or_fault(uint64_t lin, unsigned seg);
    // Segmentation: offset -> linear address with limit/type checks (64-bit mode: FS/GS base
    // and the canonical check only). The 64-bit case is inline, the rest in mmu.cpp.
    uint64_t seg_linear(unsigned seg, uint64_t off, unsigned size, Access acc) {
        if (mode64_) {
            uint64_t lin = off + (seg >= FS ? s.seg[seg].base : 0);
            uint64_t last = lin + size - 1;
            if (uint64_t(int64_t(lin << 16) >> 16) == lin &&
                uint64_t(int64_t(last << 16) >> 16) == last)
                return lin;
        }
        return seg_linear_slow(seg, off, size, acc);
    }
    uint64_t seg_linear_slow(unsigned seg, uint64_t off, unsigned size, Access acc);
    void read_lin_slow(uint64_t lin, void* out, unsigned size, bool sys);
    void write_lin_slow(uint64_t lin, const void* in, unsigned size, bool sys);
    void phys_read(uint64_t gpa, void* out, unsigned size);
    void phys_write(uint64_t gpa, const void* in, unsigned size);
    uint8_t* lin_rmw_ptr(uint64_t lin, unsigned size);

    bool user_access(bool sys) const { return cpl_ == 3 && !sys; }

  public:
    // Linear-address accesses (after segmentation). `sys` = implicit supervisor access
    // (descriptor tables, TSS, IDT), which ignores CPL (SDM Vol. 3 §4.6).
    template <typename T> T read_lin(uint64_t lin, bool sys = false) {
        TlbEntry& e = tlb_[(lin >> 12) & (kTlbSize - 1)];
        uint32_t need = kPermHostR | (user_access(sys) ? kPermUser : 0);
        if (e.tag == (lin >> 12) && (e.perm & need) == need &&
            (lin & 0xfff) <= 0x1000 - sizeof(T)) {
            T v;
            memcpy(&v, e.host + (lin & 0xfff), sizeof(T));
            return v;
        }
        T v;
        read_lin_slow(lin, &v, sizeof(T), sys);
        return v;
    }
    template <typename T> void write_lin(uint64_t lin, T v, bool sys = false) {
        TlbEntry& e = tlb_[(lin >> 12) & (kTlbSize - 1)];
        uint32_t need = write_need_ | (user_access(sys) ? kPermUser | kPermWrite : 0);
        if (e.tag == (lin >> 12) && (e.perm & need) == need &&
            (lin & 0xfff) <= 0x1000 - sizeof(T)) {
            memcpy(e.host + (lin & 0xfff), &v, sizeof(T));
            return;
        }
        write_lin_slow(lin, &v, sizeof(T), sys);
    }
    template <typename T> T read_seg(unsigned seg, uint64_t off) {
        return read_lin<T>(seg_linear(seg, off, sizeof(T), Access::Read));
    }
    template <typename T> void write_seg(unsigned seg, uint64_t off, T v) {
        write_lin<T>(seg_linear(seg, off, sizeof(T), Access::Write), v);
    }
    uint64_t read_sized(unsigned seg, uint64_t off, unsigned size) {
        switch (size) {
        case 1: return read_seg<uint8_t>(seg, off);
        case 2: return read_seg<uint16_t>(seg, off);
        case 4: return read_seg<uint32_t>(seg, off);
        default: return read_seg<uint64_t>(seg, off);
        }
    }
    void write_sized(unsigned seg, uint64_t off, unsigned size, uint64_t v) {
        switch (size) {
        case 1: write_seg<uint8_t>(seg, off, uint8_t(v)); break;
        case 2: write_seg<uint16_t>(seg, off, uint16_t(v)); break;
        case 4: write_seg<uint32_t>(seg, off, uint32_t(v)); break;
        default: write_seg<uint64_t>(seg, off, v); break;
        }
    }

  private:
    // instruction fetch (x86_cpu.cpp)
    size_t fetch_bytes(uint8_t* buf, GuestFault& pending_fault, bool& have_fault);

    // registers
    uint64_t reg(unsigned r, unsigned size, bool rex) const;
    void set_reg(unsigned r, unsigned size, uint64_t v, bool rex);
    uint64_t ea(const Insn& in) const;
    uint64_t read_rm(const Insn& in, unsigned size);
    void write_rm(const Insn& in, unsigned size, uint64_t v);
    template <typename F> void rmw(const Insn& in, unsigned size, F&& f);
    template <typename F>
    void rmw_at(unsigned seg, uint64_t off, unsigned size, bool atomic, F&& f);

    // stack
    void push(uint64_t v, unsigned size);
    uint64_t pop(unsigned size);
    uint64_t sp_mask() const { return size_mask(stack_size()); }
    uint64_t rsp_add(uint64_t rsp, int64_t d) const;

    // segments (protect.cpp)
    struct Desc {
        uint64_t lo = 0, hi = 0;
    };
    bool fetch_descriptor(uint16_t sel, Desc& d, bool system16 = false);
    static Segment parse_descriptor(uint16_t sel, const Desc& d);
    void set_accessed(uint16_t sel, Desc& d);
    void load_seg(unsigned sreg, uint16_t sel);
    void load_real_seg(unsigned sreg, uint16_t sel);
    void load_cs_checked(uint16_t sel, const Desc& d, unsigned new_cpl);
    void far_jump(uint16_t sel, uint64_t off, unsigned osize);
    void far_call(uint16_t sel, uint64_t off, unsigned osize, uint64_t ret_rip);
    void far_ret(unsigned osize, uint16_t extra);
    void far_via_gate(uint16_t sel, Desc d, bool call, uint64_t ret_rip);
    enum class TaskReason { Jmp, Call, Int, Iret };
    void task_switch(uint16_t sel, TaskReason why, uint64_t ret_rip, bool has_err, uint32_t err);
    void iret(unsigned osize);
    void invalidate_data_segs_for_cpl();
    void check_cs_limit(uint64_t rip);

    // interrupts (protect.cpp)
    enum class EventKind { External, Nmi, Exception, SoftInt, SoftException, Icebp };
    void deliver(uint8_t vector, EventKind kind, bool has_err, uint32_t err, uint64_t ret_rip);
    void deliver_real(uint8_t vector, uint64_t ret_rip);
    void deliver_protected(uint8_t vector, EventKind kind, bool has_err, uint32_t err,
                           uint64_t ret_rip);
    void deliver_long(uint8_t vector, EventKind kind, bool has_err, uint32_t err, uint64_t ret_rip);
    uint64_t tss_stack(unsigned dpl, uint16_t& ss_out);

    // system instructions (system.cpp)
    void write_cr(unsigned cr, uint64_t v);
    uint64_t read_cr(unsigned cr);
    void write_dr(unsigned dr, uint64_t v);
    uint64_t read_dr(unsigned dr);
    void rdmsr();
    void wrmsr();
    void cpuid();
    uint64_t rdtsc_value() const;
    void exec_group6(const Insn& in);
    void exec_group7(const Insn& in);
    void exec_lar_lsl(const Insn& in, bool lsl);
    bool is_code_conforming_ok(const Segment& sg, uint16_t sel) const;
    void syscall_insn(const Insn& in);
    void sysret_insn(const Insn& in);
    void sysenter_insn();
    void sysexit_insn(const Insn& in);
    void set_efer(uint64_t v);

    // integer helpers (exec.cpp)
    void exec_string(const Insn& in);
    void exec_shift(const Insn& in, unsigned size, uint64_t count, bool imm_form);
    void exec_group3(const Insn& in);
    void exec_group45(const Insn& in);
    void exec_bt(const Insn& in, unsigned kind, bool imm);
    void exec_0f(const Insn& in);
    void exec_shd(const Insn& in, bool left, uint64_t count);
    void exec_cmpxchg_n(const Insn& in);
    void exec_io(const Insn& in);
    void exec_bcd(const Insn& in);
    void set_rflags(uint64_t v, unsigned osize, bool popf);
    uint64_t io_in(uint16_t port, unsigned size);
    void io_out(uint16_t port, unsigned size, uint64_t v);
    void check_io(uint16_t port, unsigned size);
    void jump_near(uint64_t target, unsigned osize);
    void halt();
    // x87/MMX/SSE: a separate unit (fpu_sse.cpp) so it can grow on its own.
    void exec_fpu_sse(const Insn& in);
    // ---- x87/MMX/SSE unit (fpu_sse.cpp, sse_exec.cpp, fpu_x87.cpp) ----
    // The live state is s.fxsave (FXSAVE layout, 64-bit form); see fpu_state.hpp.
  public:
    void fpu_wait(); // FWAIT: #NM when CR0.MP and TS, #MF on a pending unmasked x87 exception
  private:
    void fpu_check_x87();  // #NM (EM/TS)
    void fpu_check_sse();  // #UD (EM, !OSFXSR), #NM (TS)
    void fpu_check_mmx();  // #UD (EM), #NM (TS), #MF
    void fpu_pending_mf(); // #MF if FSW.ES (a waiting instruction)
    void fpu_mem_read(const Insn& in, void* out, unsigned size, unsigned align);
    void fpu_mem_write(const Insn& in, const void* in_data, unsigned size, unsigned align);
    void fpu_mxcsr_commit(uint32_t raised); // merges flags; #XM/#UD on unmasked exceptions
    void exec_0fae_fpu(const Insn& in);     // FXSAVE/FXRSTOR/LDMXCSR/STMXCSR
    void exec_sse(const Insn& in);          // 0F, 0F 38, 0F 3A SSE/MMX opcodes (sse_exec.cpp)
    bool exec_sse_0f38(const Insn& in, unsigned pfx);
    bool exec_sse_0f3a(const Insn& in, unsigned pfx);
    void exec_x87(const Insn& in); // D8-DF (fpu_x87.cpp)
    void x87_env_store(const Insn& in, bool full);
    void x87_env_load(const Insn& in, bool full);
    // ---- end of x87/MMX/SSE unit ----

    static constexpr unsigned kTlbSize = 256;
    static constexpr unsigned kDecodeCacheSize = 1u << 14;

    unsigned index_;
    GuestMemory& mem_;
    IoSink& io_;
    CpuInterrupts* irq_;
    std::mutex* device_lock_;

    // derived from CpuState by update_mode()
    bool mode64_ = false;
    bool def32_ = false;
    unsigned cpl_ = 0;
    uint32_t write_need_ = kPermHostW | kPermDirty;
    uint64_t tsc_offset_ = 0;

    uint64_t rip_start_ = 0; // RIP of the instruction being executed (faults restart here)
    uint64_t next_rip_ = 0;
    uint64_t fetch_fault_cr2_ = 0;
    bool shutdown_ = false;
    bool soft_event_ = false; // the instruction delivered INT n/INT3/INTO/INT1 (no TF trap)
    bool wait_sipi_ = false;
    bool halt_reported_ = false;
    bool large_pages_in_tlb_ = false;
    uint64_t icount_ = 0;
    MtrrState mtrr_;

    std::atomic<bool> kick_{false};
    std::atomic<uint32_t> wake_seq_{0};

    EmuTrace* trace_ = nullptr;
    const std::atomic<uint32_t>* a20_ = nullptr;
    uint32_t a20_seen_ = 1;
    uint64_t a20_mask_ = ~0ull;
    TlbEntry tlb_[kTlbSize];
    std::unique_ptr<DecodedInsn[]> dcache_;
};

} // namespace hvm::emu
