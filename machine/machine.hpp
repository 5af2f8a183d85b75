// The `pc` machine: one object that owns guest memory, the buses, the clock, every chip, the
// vCPU engine and the vCPU threads. No globals: two machines can live in one process (tests).
//
// The board is assembled in build_board() in the order QEMU's pc_init1 uses: interrupt
// controllers, then the ISA devices (PIT, port 0x61, RTC/CMOS, i8042, port 0x92, UARTs, debug
// ports). PCI (i440FX/PIIX3), fw_cfg, ACPI and the remaining devices come with later issues.
#pragma once
#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.hpp"
#include "cli/options.hpp"
#include "devmodel/irq/irq_pin.hpp"
#include "devmodel/pci/i440fx.hpp"
#include "devmodel/platform.hpp"
#include "vcpu/engine.hpp"
#include "vcpu/guest_memory.hpp"
#include "vmexit/bus.hpp"
#include "vmexit/dispatch.hpp"

namespace hvm {

namespace emu {
class EmuEngine;
}
class ApicBus;
class CharBackend;
class CharDevices;
class DebugCon;
class DebugExit;
class I8042;
class IoApic;
class IsaIrqRouter;
class KvmEngine;
class LocalApic;
class Mc146818Rtc;
class Pic8259Pair;
class Pit8254;
class Port92;
class PostCodePort;
class SystemControlPortB;
class Uart16550;

class AcpiCpuHotplug;
class FwCfg;
class AcpiPciHotplug;
class Hpet;
class PciBus;
class PciIrqRouter;
class Piix3IsaBridge;
class Piix4Pm;
struct BiosImage;

class Machine : public PlatformControl, public PamListener {
  public:
    explicit Machine(const MachineConfig& config);
    ~Machine() override;
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;

    // Runs the guest until it powers off, exits (isa-debug-exit) or fails; returns the process
    // exit status (QEMU's conventions: 0 on power-off or, with -no-reboot, on a guest reset).
    int run();

    // PlatformControl (called by chips with the device lock held).
    void request_reset() override;
    void request_poweroff() override;
    void request_exit(int status) override;
    void set_a20(bool enabled) override;
    bool a20() const override { return a20_; }

    const char* engine_name() const { return engine_ ? engine_->name() : "none"; }

    // PamListener (the i440FX's PAM/SMRAM registers, device lock held).
    void pam_changed(unsigned segment, PamState state) override;
    void smram_changed(bool dram_visible) override;

  private:
    enum class Event { None, Reset, PowerOff, Exit, TripleFault, Error };

    void choose_engine();
    void build_memory();
    void build_board();
    void build_interrupt_controllers();
    void build_isa_devices();
    void build_chipset();
    void build_fw_cfg();
    uint64_t place_acpi_tables(std::vector<struct E820Entry>& e820);
    void direct_boot_firmware_setup();
    void map_pam_segment(unsigned segment, PamState state);
    void build_vcpus();
    void load_boot_images();
    void reset_devices(ResetKind kind);
    void start_vcpus();
    void stop_vcpus();
    void vcpu_thread(unsigned index);
    void post_event(Event e, int status = 0, std::string message = {});
    IrqPin isa_irq(unsigned line);
    void add_pio(uint64_t base, uint64_t len, IoHandler& h, AccessSizes sizes, const char* name);

    MachineConfig cfg_;
    std::mutex lock_; // the device-model lock: every chip runs under it
    MonotonicClock clock_{lock_};
    GuestMemory mem_;
    PcRamLayout ram_;
    Bus pio_{"pio"};
    Bus mmio_{"mmio"};
    ExitDispatcher dispatcher_{lock_, pio_, mmio_};

    std::unique_ptr<Engine> engine_;
    KvmEngine* kvm_ = nullptr;      // engine_ when it is KVM
    emu::EmuEngine* emu_ = nullptr; // engine_ when it is hvm's emulator
    bool userspace_irqchip_ = false;
    IrqSink* gsi_ = nullptr; // where ISA/PCI interrupt lines go (by GSI)

    // Interrupt controllers of the device model (userspace irqchip only).
    std::unique_ptr<ApicBus> apic_bus_;
    std::unique_ptr<Pic8259Pair> pic_;
    std::unique_ptr<IoApic> ioapic_;
    std::unique_ptr<IsaIrqRouter> router_;
    std::vector<std::unique_ptr<LocalApic>> lapics_;

    // Firmware and the low-memory areas the PAM registers switch between RAM and ROM.
    bool firmware_boot_ = false;
    std::unique_ptr<BiosImage> bios_;
    uint8_t* ram_low_ = nullptr;  // host address of guest RAM at 0
    uint8_t* bios_rom_ = nullptr; // host copy of the BIOS image (mapped below 4 GiB)
    std::array<PamState, 13> pam_{};
    std::array<std::unique_ptr<IoHandler>, 13> pam_windows_; // write-only segments

    // The PCI side of the chipset.
    std::unique_ptr<PciIrqRouter> pirq_;
    std::unique_ptr<PciBus> pci_;
    std::unique_ptr<I440fxHostBridge> host_bridge_;
    std::unique_ptr<Piix3IsaBridge> piix3_;
    std::unique_ptr<Piix4Pm> pm_;
    std::unique_ptr<AcpiCpuHotplug> cpu_hotplug_;
    std::unique_ptr<AcpiPciHotplug> pci_hotplug_;
    std::unique_ptr<Hpet> hpet_;
    std::unique_ptr<FwCfg> fw_cfg_; // QEMU's firmware configuration interface (SeaBIOS reads it)

    // ISA devices.
    std::unique_ptr<CharDevices> chardevs_;
    std::unique_ptr<Pit8254> pit_;
    std::unique_ptr<SystemControlPortB> port61_;
    std::unique_ptr<Mc146818Rtc> rtc_;
    std::unique_ptr<I8042> i8042_;
    std::unique_ptr<Port92> port92_;
    std::unique_ptr<PostCodePort> post_;
    std::vector<std::unique_ptr<Uart16550>> uarts_;
    std::vector<std::unique_ptr<DebugCon>> debugcons_;
    std::vector<std::unique_ptr<DebugExit>> debug_exits_;
    std::vector<Device*> devices_; // every chip, for reset/save/load, in creation order

    std::vector<std::unique_ptr<Vcpu>> vcpus_;
    std::vector<std::thread> threads_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> a20_{true};

    std::mutex event_mutex_;
    std::condition_variable event_cv_;
    Event event_ = Event::None;
    int event_status_ = 0;
    std::string event_message_;
};

} // namespace hvm
