// A PCI function with a type-0 configuration header (PCI Local Bus Specification 3.0, ch. 6).
//
// The 256-byte configuration space is a byte array with two masks, as in QEMU's PCIDevice:
// `wmask` says which bits a guest write may change, `w1cmask` which bits a guest clears by
// writing 1 (status error bits). Everything else is read-only. A derived chip fills in its
// identity and device-specific registers, widens the masks where the datasheet makes a register
// writable, and reacts to writes in config_written().
//
// BARs are described by the device (I/O or 32-bit memory, power-of-two size, prefetchable, the
// IoHandler that serves the window) and mapped on the PIO or MMIO Bus of the PciBus the device
// is attached to whenever the BAR and the command register's I/O or memory enable bit say so.
// A guest may program a BAR on top of anything: the strict Bus refuses the overlap, and the BAR
// is then logged and left unmapped (real hardware would decode both and collide on the bus).
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "base/log.hpp"
#include "devmodel/device.hpp"
#include "vmexit/bus.hpp"

namespace hvm {

class PciBus;

// Type-0 header offsets and bits (PCI 3.0 §6.1, §6.2).
namespace pci {
constexpr unsigned kVendorId = 0x00;
constexpr unsigned kDeviceId = 0x02;
constexpr unsigned kCommand = 0x04;
constexpr unsigned kStatus = 0x06;
constexpr unsigned kRevisionId = 0x08;
constexpr unsigned kClassCode = 0x09; // 3 bytes: prog-if, subclass, base class
constexpr unsigned kCacheLineSize = 0x0C;
constexpr unsigned kLatencyTimer = 0x0D;
constexpr unsigned kHeaderType = 0x0E;
constexpr unsigned kBar0 = 0x10;
constexpr unsigned kSubsystemVendorId = 0x2C;
constexpr unsigned kSubsystemId = 0x2E;
constexpr unsigned kRomAddress = 0x30;
constexpr unsigned kCapabilitiesPointer = 0x34;
constexpr unsigned kInterruptLine = 0x3C;
constexpr unsigned kInterruptPin = 0x3D;
constexpr unsigned kHeaderSize = 0x40; // device-specific registers start here

constexpr uint16_t kCommandIo = 0x0001;
constexpr uint16_t kCommandMemory = 0x0002;
constexpr uint16_t kCommandMaster = 0x0004;
constexpr uint16_t kCommandParity = 0x0040;
constexpr uint16_t kCommandSerr = 0x0100;
constexpr uint16_t kCommandIntxDisable = 0x0400;

constexpr uint16_t kStatusInterrupt = 0x0008;
constexpr uint16_t kStatusCapList = 0x0010;
constexpr uint16_t kStatusFastBackToBack = 0x0080;
constexpr uint16_t kStatusMasterParity = 0x0100;
constexpr uint16_t kStatusDevselMedium = 0x0200;
constexpr uint16_t kStatusSigTargetAbort = 0x0800;
constexpr uint16_t kStatusRecTargetAbort = 0x1000;
constexpr uint16_t kStatusRecMasterAbort = 0x2000;
constexpr uint16_t kStatusSigSystemError = 0x4000;
constexpr uint16_t kStatusDetectedParity = 0x8000;

constexpr uint8_t kHeaderTypeMultiFunction = 0x80;

constexpr uint32_t kBarIo = 0x1;              // bit 0: I/O space indicator
constexpr uint32_t kBarMemPrefetch = 0x8;     // bit 3 of a memory BAR
constexpr uint32_t kRomEnable = 0x1;          // bit 0 of the expansion ROM BAR
constexpr uint32_t kRomAddressMask = ~0x7FFu; // bits 31:11

// QEMU gives every function of its `pc` machine this subsystem; SeaBIOS only enables its QEMU
// paths (fw_cfg, ACPI loader) when 00:00.0 reports it (seabios src/fw/paravirt.c qemu_detect).
constexpr uint16_t kQemuSubsystemVendor = 0x1AF4;
constexpr uint16_t kQemuSubsystem = 0x1100;

constexpr uint8_t devfn(unsigned slot, unsigned function) {
    return uint8_t(((slot & 0x1F) << 3) | (function & 7));
}
} // namespace pci

struct PciIdentity {
    uint16_t vendor_id = 0;
    uint16_t device_id = 0;
    uint8_t revision = 0;
    uint32_t class_code = 0; // base class << 16 | subclass << 8 | prog-if
    uint8_t header_type =
        0; // 0, or pci::kHeaderTypeMultiFunction for function 0 of a multi-function device
    uint16_t subsystem_vendor_id = pci::kQemuSubsystemVendor;
    uint16_t subsystem_id = pci::kQemuSubsystem;
    uint8_t interrupt_pin = 0; // 0 none, 1..4 = INTA#..INTD#
    uint16_t status = 0;       // read-only status bits (DEVSEL timing, fast back-to-back)
};

enum class PciBarKind : uint8_t { Io, Memory32 };

// What the device decodes behind one BAR.
struct PciBar {
    PciBarKind kind = PciBarKind::Memory32;
    uint32_t size = 0; // power of two; I/O >= 4, memory >= 16
    bool prefetchable = false;
    IoHandler* handler = nullptr;
    AccessSizes sizes{};
    std::string name;
};

// One window a device places on a Bus at a guest-chosen address (a BAR, or a chip's own base
// register such as the PIIX4 PMBA). set_base() moves it; a refused placement is logged and left
// unmapped, never thrown to the guest.
class BusMapping {
  public:
    static constexpr uint64_t kUnmapped = ~uint64_t(0);

    BusMapping() = default;
    BusMapping(uint64_t length, IoHandler* handler, AccessSizes sizes, std::string name) {
        configure(length, handler, sizes, std::move(name));
    }
    ~BusMapping(); // takes the window off its bus: the Bus must outlive the mapping
    BusMapping(const BusMapping&) = delete;
    BusMapping& operator=(const BusMapping&) = delete;

    // Describes the window (while unmapped).
    void configure(uint64_t length, IoHandler* handler, AccessSizes sizes, std::string name);
    // Maps the window at `base` (kUnmapped: nowhere). Returns false if the bus refused it.
    bool set_base(Bus& bus, uint64_t base);
    uint64_t base() const { return base_; }
    bool mapped() const { return base_ != kUnmapped; }
    uint64_t length() const { return length_; }

  private:
    uint64_t length_ = 0;
    IoHandler* handler_ = nullptr;
    AccessSizes sizes_{};
    std::string name_;
    uint64_t base_ = kUnmapped;
    Bus* bus_ = nullptr;
    RateLimiter refused_{4, 1024};
};

class PciDevice : public Device {
  public:
    static constexpr unsigned kConfigSize = 256;
    static constexpr unsigned kBarCount = 6;
    static constexpr unsigned kRomSlot = kBarCount; // index of the expansion ROM in mappings

    explicit PciDevice(const PciIdentity& id);
    ~PciDevice() override = default;
    PciDevice(const PciDevice&) = delete;
    PciDevice& operator=(const PciDevice&) = delete;

    // Configuration access from the host bridge. `size` is 1, 2 or 4 and offset + size <= 256;
    // PciBus guarantees both.
    uint32_t config_read(unsigned offset, unsigned size);
    void config_write(unsigned offset, unsigned size, uint32_t value);

    // The device's INTx output (the pin named by config 0x3D). Level-triggered and shared: the
    // bus's PciIrqRouter ORs it with the other functions on the same PIRQ.
    void set_intx(bool level);
    bool intx_level() const { return intx_level_; }

    uint8_t config_byte(unsigned offset) const { return config_[offset & 0xFF]; }
    uint16_t config_word(unsigned offset) const;
    uint32_t config_dword(unsigned offset) const;
    // Where BAR n (or kRomSlot) is mapped now, BusMapping::kUnmapped if nowhere.
    uint64_t mapped_base(unsigned slot) const;

    uint8_t devfn() const { return devfn_; }
    PciBus* bus() const { return bus_; }

    // Resets the standard header as QEMU's pci_do_device_reset does (command, status, cache line,
    // interrupt line, BARs) after the chip's own device_reset(); a power-on reset also restores
    // every device-specific register to its initial value first.
    void reset(ResetKind kind) final;
    // Saves config space and INTx level under the device's name; then the chip's extra state.
    void save(StateWriter& out) const final;
    void load(StateReader& in) final;

  protected:
    // Describes BAR `index` (0..5). Call from the constructor only.
    void define_bar(unsigned index, const PciBar& bar);
    // Describes the expansion ROM (size a power of two >= 2 KiB). Call from the constructor only.
    void define_rom(uint32_t size, IoHandler* handler, std::string name);

    // Links a capability of `size` bytes at `offset` (>= 0x40, dword-aligned) into the list
    // at 0x34 and sets the status Capabilities List bit (QEMU pci_add_capability): the ID and
    // next pointer are written, the whole structure read-only until the chip widens wmask.
    // Call from the constructor only.
    void add_capability(uint8_t id, uint8_t offset, uint8_t size);

    // Initial-value helpers for constructors and device_reset().
    void set_config_byte(unsigned offset, uint8_t v) { config_[offset & 0xFF] = v; }
    void set_config_word(unsigned offset, uint16_t v);
    void set_config_dword(unsigned offset, uint32_t v);
    void set_wmask_byte(unsigned offset, uint8_t m) { wmask_[offset & 0xFF] = m; }
    void set_w1cmask_byte(unsigned offset, uint8_t m) { w1cmask_[offset & 0xFF] = m; }

    // Called after every guest write has been applied to config space.
    virtual void config_written(unsigned offset, unsigned size) {
        (void)offset;
        (void)size;
    }
    // Chip-specific reset of registers at and above 0x40 and of internal state. Runs before
    // the header reset, so it may call nothing that depends on BAR mappings.
    virtual void device_reset(ResetKind kind) { (void)kind; }
    // Chip state beyond config space (timers, latches). Default: none.
    virtual void save_extra(StateWriter& out) const { (void)out; }
    virtual void load_extra(StateReader& in) { (void)in; }
    // Called after attach, after reset and after load: recompute everything the chip derives
    // from config space (windows it maps itself, routes, listeners).
    virtual void sync_derived_state() {}

    // Re-places every BAR according to config space and the command register.
    void update_mappings();

    static bool overlaps(unsigned offset, unsigned size, unsigned reg, unsigned reg_size) {
        return offset < reg + reg_size && reg < offset + size;
    }

  private:
    friend class PciBus;
    void attach(PciBus* bus, uint8_t devfn);
    uint64_t bar_target(unsigned slot) const;
    bool intx_effective() const;
    void intx_changed(bool old_effective);

    std::array<uint8_t, kConfigSize> config_{};
    std::array<uint8_t, kConfigSize> wmask_{};
    std::array<uint8_t, kConfigSize> w1cmask_{};
    std::array<uint8_t, kConfigSize> initial_{}; // config after construction (power-on image)
    bool initial_taken_ = false;

    struct BarSlot {
        PciBar bar;
        BusMapping mapping;
    };
    std::array<BarSlot, kBarCount + 1> bars_{};

    PciBus* bus_ = nullptr;
    uint8_t devfn_ = 0;
    bool intx_level_ = false;
};

} // namespace hvm
