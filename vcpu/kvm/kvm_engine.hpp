// The KVM engine: hvm::Engine and hvm::Vcpu on /dev/kvm. This is the only header of vcpu/kvm the
// machine includes; it shows no KVM type.
//
//   KvmEngine engine(config);               // opens /dev/kvm, creates the VM (+ irqchip, PIT)
//   engine.set_device_lock(device_lock);    // userspace irqchip: CpuInterrupts calls run under it
//   engine.map_memory(guest_memory);
//   auto vcpu = engine.create_vcpu(i, dispatcher, interrupts_or_null);
//   engine.irq_sink()->set_irq(gsi, level); // in-kernel irqchip: ISA/PCI lines by GSI
//   engine.pit_channel2()->out2();          // in-kernel PIT: port 0x61's view of channel 2
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "devmodel/irq/irq_pin.hpp"
#include "devmodel/timer/pit_channel2.hpp"
#include "vcpu/engine.hpp"

namespace hvm {

struct KvmVm;

// The inputs of KVM's in-kernel PIC and IOAPIC, numbered by GSI with QEMU's `pc` routing: GSI 0-15
// reach the 8259s (except GSI 2, the cascade) and GSI 0-23 the IOAPIC, GSI 0 on IOAPIC pin 2.
// Wire ISA device n to GSI n and PCI PIRQ lines to their routed IRQ, exactly as on QEMU.
class KvmIrqSink final : public IrqSink {
  public:
    explicit KvmIrqSink(std::shared_ptr<KvmVm> vm);
    void set_irq(unsigned gsi, bool level) override;
    // As set_irq, returning KVM's delivery status: > 0 delivered, 0 coalesced (the previous edge
    // was not yet taken by the guest: the RTC "lost tick" signal), < 0 masked or no route.
    int set_irq_status(unsigned gsi, bool level);
    static constexpr unsigned kGsiCount = 24;

    // The controllers' request and mask registers, for diagnostics (what QEMU's "info pic" shows
    // for kvm-i8259/kvm-ioapic, read with KVM_GET_IRQCHIP).
    struct ChipState {
        uint8_t pic_irr[2] = {}, pic_imr[2] = {}; // master, slave
        uint32_t ioapic_irr = 0;
    };
    ChipState irqchip_state();

  private:
    std::shared_ptr<KvmVm> vm_;
};

// Channel 2 of KVM's in-kernel 8254, for the port 0x61 (NMI status and control) device: the gate
// is port 0x61 bit 0, OUT2 is read back in bit 5. QEMU's kvm-i8254 semantics: OUT is computed
// from the mode, the count and the time since the count was loaded; any gate change reloads the
// counters (KVM_SET_PIT2), so the gate is only written when it changes.
class KvmPitChannel2 final : public PitChannel2 {
  public:
    explicit KvmPitChannel2(std::shared_ptr<KvmVm> vm);
    bool gate2() override;
    void set_gate2(bool level) override;
    bool out2() override;

  private:
    std::shared_ptr<KvmVm> vm_;
};

// OUT of an 8254 counter in `mode` (0-5; others as mode 0), `elapsed_ns` after `count` (1..65536,
// 0 meaning 65536) was loaded, at 1.193182 MHz. Linux arch/x86/kvm/i8254.c pit_get_out and QEMU's
// pit_get_out agree on these formulas (including mode 2 being high only on the terminal tick).
bool pit_counter_output(unsigned mode, uint32_t count, int64_t elapsed_ns);

class KvmEngine final : public Engine {
  public:
    static constexpr const char* kDefaultDevice = "/dev/kvm";
    // Throws UserError (one line) when KVM is missing, inaccessible or lacks what hvm needs, or
    // when config.cpu_model is not "host", "max" or "qemu64".
    explicit KvmEngine(const EngineConfig& config, const char* device = kDefaultDevice);
    ~KvmEngine() override;
    KvmEngine(const KvmEngine&) = delete;
    KvmEngine& operator=(const KvmEngine&) = delete;

    const char* name() const override { return "kvm"; }
    bool in_kernel_irqchip() const override;
    // One KVM memory slot per region; read-only regions become KVM_MEM_READONLY slots (guest
    // writes exit as MMIO writes, which nothing claims). Regions must be page aligned. `mem`
    // must outlive the engine and its vCPUs (KVM maps its host memory; read_code reads it).
    void map_memory(GuestMemory& mem) override;
    // Without an in-kernel irqchip `interrupts` is required and set_device_lock() must have been
    // called (the vCPU then takes the device lock to set interrupts->kick, here and when it is
    // destroyed); with one, `interrupts` must be null. The vCPU starts in the reset state: the
    // BSP at F000:FFF0, the others waiting for INIT/SIPI. A vCPU keeps the VM alive and may
    // outlive the engine; irq_sink() and pit_channel2() live as long as the engine.
    std::unique_ptr<Vcpu> create_vcpu(unsigned index, IoSink& io,
                                      CpuInterrupts* interrupts) override;

    // The device-model lock, taken by vCPU threads around CpuInterrupts::acknowledge_*, set_tpr,
    // tpr and the APIC MSR calls (userspace irqchip only). Call before create_vcpu().
    void set_device_lock(std::mutex& lock);
    // Called on the vCPU thread when KVM's instruction emulator gives up
    // (KVM_INTERNAL_ERROR_EMULATION). It may step the instruction with hvm's emulator through
    // get_state/set_state; returning true resumes the guest, false ends run() with InternalError.
    // Set before the vCPUs run.
    void set_emulation_assist(std::function<bool(Vcpu&)> assist);

    // In-kernel irqchip only (null otherwise).
    IrqSink* irq_sink();
    KvmIrqSink* kvm_irq_sink() { return irq_sink_.get(); }
    KvmPitChannel2* pit_channel2() { return pit2_.get(); }

    // True when the host CPU virtualises in hardware (vmx or svm in /proc/cpuinfo). KVM without it
    // (a paravirtualised or nested software KVM) works but runs guest kernel code much slower.
    static bool is_hardware_backed();
    static bool cpuinfo_has_hardware_virt(std::string_view cpuinfo);

  private:
    void open_device(const char* device);
    void create_vm();
    void create_irqchip();
    void setup_msr_handling();
    std::shared_ptr<KvmVm> vm_;
    std::unique_ptr<KvmIrqSink> irq_sink_;
    std::unique_ptr<KvmPitChannel2> pit2_;
    // The memory slots KVM has now, by slot number (size 0 = free). A remap (PAM, BAR moves)
    // deletes the slots whose region changed and adds the new ones: KVM cannot move or resize a
    // slot in place.
    struct Slot {
        uint64_t gpa = 0, size = 0, host = 0;
        uint32_t flags = 0;
        bool operator==(const Slot&) const = default;
    };
    std::vector<Slot> slots_;
};

} // namespace hvm
