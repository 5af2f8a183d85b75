// PCI bus 0 of the i440FX host bridge and configuration mechanism #1 (PCI 3.0 §3.2.2.3.2;
// QEMU hw/pci/pci_host.c).
//
// Ports 0xCF8-0xCFF form one window (register config_io() at 0xCF8, length 8, AccessSizes{1,4}):
//  - 0xCF8 CONFIG_ADDRESS latches only on a 32-bit write (QEMU pci_host_config_write ignores any
//    other size, as the i440FX does: narrower cycles fall through to ISA). The value is kept as
//    written, reserved bits included, as QEMU does. Narrower reads return its bytes.
//  - 0xCF9 as a single byte is the PIIX3 Reset Control register (Intel decodes CF9h only on byte
//    cycles, so a dword at 0xCF8 never touches it); the PciBus forwards it to the handler given
//    to set_reset_control().
//  - 0xCFC-0xCFF CONFIG_DATA: byte, word or dword at any offset that stays inside the dword; the
//    register is CONFIG_ADDRESS bits 7:2 plus the port's offset. Nothing happens unless bit 31
//    (enable) is set: reads then give all-ones. Only bus 0 exists: other buses and absent
//    functions read all-ones and ignore writes.
//
// The bus also owns the BAR mappings' view of the machine: devices place their BARs on the
// injected PIO and MMIO Buses, and their INTx pins go through the injected PciIrqRouter.
#pragma once
#include <array>
#include <cstdint>

#include "base/log.hpp"
#include "devmodel/device.hpp"
#include "devmodel/pci/pci_device.hpp"
#include "devmodel/pci/pci_irq_router.hpp"
#include "vmexit/bus.hpp"

namespace hvm {

class PciBus : public Device {
  public:
    static constexpr uint16_t kConfigAddressPort = 0xCF8; // window of 8 ports
    static constexpr uint16_t kConfigDataPort = 0xCFC;
    static constexpr uint16_t kResetControlPort = 0xCF9;
    static constexpr uint32_t kConfigEnable = 0x80000000u;

    PciBus(Bus& pio, Bus& mmio, PciIrqRouter& irq_router);
    PciBus(const PciBus&) = delete;
    PciBus& operator=(const PciBus&) = delete;

    // Plugs `dev` in at `devfn`. Throws std::invalid_argument if the slot is taken (a wiring
    // error of the machine, not a guest action). The device must outlive the bus.
    void attach(PciDevice& dev, uint8_t devfn);
    PciDevice* device(uint8_t devfn) const { return devices_[devfn]; }

    // The 0xCF8-0xCFF window. Register with AccessSizes{1, 4}.
    IoHandler& config_io() { return config_io_; }
    // The byte register behind port 0xCF9 (the PIIX3's reset control). May be null.
    void set_reset_control(IoHandler* rcr) { rcr_ = rcr; }

    // Host-side configuration access (firmware builders, tests). All-ones for absent functions.
    uint32_t config_read(uint8_t bus, uint8_t devfn, unsigned offset, unsigned size);
    void config_write(uint8_t bus, uint8_t devfn, unsigned offset, unsigned size, uint32_t value);

    uint32_t config_address() const { return config_address_; }
    Bus& pio() { return pio_; }
    Bus& mmio() { return mmio_; }
    PciIrqRouter& irq_router() { return irq_router_; }

    const char* name() const override { return "pci-host-config"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

  private:
    class ConfigIo : public IoHandler {
      public:
        explicit ConfigIo(PciBus& bus) : bus_(bus) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;

      private:
        PciBus& bus_;
    };

    Bus& pio_;
    Bus& mmio_;
    PciIrqRouter& irq_router_;
    std::array<PciDevice*, 256> devices_{};
    IoHandler* rcr_ = nullptr;
    uint32_t config_address_ = 0;
    ConfigIo config_io_{*this};
};

} // namespace hvm
