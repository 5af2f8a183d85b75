// The vCPU engine interface. Everything outside vcpu/ (device model, firmware, display, machine)
// talks to guest CPUs only through these types and never learns whether KVM or hvm's emulator
// runs them. Both engines deliver the same I/O records (the shape of KVM's kvm_run and of Xen's
// ioreq) synchronously from the vCPU thread, and both take interrupts either from KVM's in-kernel
// irqchip or from the device model's controllers through CpuInterrupts.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace hvm {

class GuestMemory;

// ---- architectural state --------------------------------------------------------------------

enum SegReg : unsigned { ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5, LDTR = 6, TR = 7 };
enum GprIndex : unsigned {
    RAX,
    RCX,
    RDX,
    RBX,
    RSP,
    RBP,
    RSI,
    RDI,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15
};

struct Segment {
    uint64_t base = 0;
    uint32_t limit = 0; // byte-granular effective limit (already scaled by G)
    uint16_t selector = 0;
    uint8_t type = 0; // descriptor type field (4 bits)
    uint8_t s = 0, dpl = 0, present = 0, avl = 0, l = 0, db = 0, g = 0;
    uint8_t unusable = 0; // null selector loaded (VMX/KVM notion)
};

struct DescriptorTable {
    uint64_t base = 0;
    uint16_t limit = 0;
};

struct CpuState {
    uint64_t gpr[16] = {};
    uint64_t rip = 0xfff0, rflags = 0x2;
    Segment seg[8]; // indexed by SegReg
    DescriptorTable gdt, idt;
    uint64_t cr0 = 0x60000010, cr2 = 0, cr3 = 0, cr4 = 0, cr8 = 0;
    uint64_t efer = 0, apic_base = 0xfee00900;
    uint64_t dr[8] = {0, 0, 0, 0, 0, 0, 0xffff0ff0, 0x400};
    uint64_t xcr0 = 1;
    alignas(16) uint8_t fxsave[512] = {}; // x87/MMX/SSE state in FXSAVE layout
    // MSRs both engines carry
    uint64_t star = 0, lstar = 0, cstar = 0, sfmask = 0, kernel_gs_base = 0;
    uint64_t sysenter_cs = 0, sysenter_esp = 0, sysenter_eip = 0;
    uint64_t pat = 0x0007040600070406ull, tsc = 0, tsc_aux = 0;
    uint64_t misc_enable = 1; // fast strings
    // Pending event state
    bool halted = false;
    bool interrupt_shadow = false; // STI/MOV SS blocking
    bool nmi_masked = false;
};

// The architectural state of an x86 CPU after RESET/INIT (real mode at F000:FFF0).
CpuState reset_cpu_state(unsigned vcpu_index);

// ---- I/O ------------------------------------------------------------------------------------

struct IoRequest {
    enum class Kind : uint8_t { Pio, Mmio };
    Kind kind = Kind::Pio;
    bool is_write = false;
    uint8_t size = 1;        // bytes per element: 1, 2, 4 or 8
    uint32_t count = 1;      // elements (REP INS/OUTS deliver several at once)
    uint64_t addr = 0;       // port or guest-physical address
    uint8_t* data = nullptr; // size*count bytes; the handler fills it on reads
    unsigned vcpu = 0;
};

// The device model's end of the exit path (vmexit::ExitDispatcher implements it).
class IoSink {
  public:
    virtual ~IoSink() = default;
    virtual void handle_io(IoRequest& req) = 0;
};

// ---- interrupts without an in-kernel irqchip --------------------------------------------------

// What a vCPU asks its local APIC (the device model's LocalApic implements it). `pending` is kept
// up to date by the device model under the device lock and read lock-free by the vCPU thread on
// every instruction boundary / entry; the acknowledge calls need the device lock.
class CpuInterrupts {
  public:
    enum : uint32_t { kIntr = 1u << 0, kNmi = 1u << 1, kInit = 1u << 2, kSipi = 1u << 3 };
    virtual ~CpuInterrupts() = default;
    // INTA cycle: the vector of the highest-priority deliverable interrupt, moved to in-service;
    // -1 if it vanished (spurious).
    virtual int acknowledge_interrupt() = 0;
    virtual bool acknowledge_nmi() = 0;
    virtual bool acknowledge_init() = 0;
    virtual int acknowledge_sipi() = 0; // vector, or -1
    // CR8 <-> TPR for engines that see CR8 accesses.
    virtual void set_tpr(uint8_t cr8) = 0;
    virtual uint8_t tpr() const = 0;
    // Local APIC MSRs (IA32_APIC_BASE and the x2APIC range): false = not handled (#GP).
    virtual bool read_msr(uint32_t msr, uint64_t& value) = 0;
    virtual bool write_msr(uint32_t msr, uint64_t value) = 0;

    std::atomic<uint32_t> pending{0};
    // Set by the engine: called (under the device lock) when `pending` gains a bit, to wake a
    // halted vCPU or make it leave the guest.
    std::function<void()> kick;
};

// ---- engines ----------------------------------------------------------------------------------

// Why Vcpu::run() returned to the machine.
enum class VcpuExit {
    Kicked,        // kick() was called (the machine wants to stop, pause or reset)
    Shutdown,      // triple fault / shutdown cycle
    InternalError, // the engine could not go on; details in `error`
    Halted,        // HLT with interrupts disabled and nothing pending (a dead vCPU)
};

class Vcpu {
  public:
    virtual ~Vcpu() = default;
    virtual unsigned index() const = 0;
    // Runs guest code until it needs the machine. I/O goes to the IoSink inside run().
    virtual VcpuExit run() = 0;
    // From any thread: make run() return VcpuExit::Kicked soon.
    virtual void kick() = 0;
    virtual void get_state(CpuState& out) = 0;
    virtual void set_state(const CpuState& in) = 0;
    // Guest bytes at the current RIP (for diagnosis); returns the count read.
    virtual size_t read_code(uint64_t linear, uint8_t* out, size_t len) = 0;
    std::string error; // why the last InternalError happened
};

struct EngineConfig {
    unsigned vcpus = 1;
    bool kernel_irqchip = true; // KVM only: in-kernel PIC/IOAPIC/LAPIC/PIT
    std::string cpu_model = "host";
};

class Engine {
  public:
    virtual ~Engine() = default;
    virtual const char* name() const = 0;
    // True when interrupts come from the engine's own irqchip (KVM in-kernel); false when the
    // device model's PIC/IOAPIC/LAPIC drive the vCPUs through CpuInterrupts.
    virtual bool in_kernel_irqchip() const = 0;
    // Makes guest memory visible to the vCPUs (called after all regions are added).
    virtual void map_memory(GuestMemory& mem) = 0;
    // `interrupts` is null with an in-kernel irqchip.
    virtual std::unique_ptr<Vcpu> create_vcpu(unsigned index, IoSink& io,
                                              CpuInterrupts* interrupts) = 0;
};

} // namespace hvm
