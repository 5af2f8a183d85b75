// QEMU's legacy PIIX ACPI PCI hotplug registers at 0xAE00-0xAE17 (QEMU
// docs/specs/acpi_pci_hotplug.rst, hw/acpi/pcihp.c), read by the DSDT's PCNT/PCEJ/AIDX methods
// and _RMV. All dword registers:
//   0xAE00 PCIU  slots with an insertion to report (read-only)
//   0xAE04 PCID  slots with a removal to report (read-only)
//   0xAE08 B0EJ  write: eject the slots whose bits are set; read: hotplug feature bits (none)
//   0xAE0C RMV   slots whose device the OSPM may remove (read-only)
//   0xAE10 BNUM  selects the bus the other registers describe (bus 0 only here)
//   0xAE14 PIDX  write: selects a device (slot << 3 | function); read: its acpi-index, then 0
// hvm offers no PCI hotplug: nothing is ever inserted or removed, no slot is removable (every
// device is built in), so ejects have nothing to act on and are logged, and no device has an
// acpi-index. Reads on a bus other than 0 give 0, as QEMU's do for an unknown bus.
#pragma once
#include <cstdint>

#include "base/log.hpp"
#include "devmodel/device.hpp"

namespace hvm {

class AcpiPciHotplug : public IoHandler, public Device {
  public:
    static constexpr uint16_t kPort = 0xAE00;
    static constexpr unsigned kLength = 0x18;
    static constexpr unsigned kUp = 0x00, kDown = 0x04, kEject = 0x08, kRemovable = 0x0C,
                              kBusSelect = 0x10, kAcpiIndex = 0x14;

    AcpiPciHotplug() = default;

    // Register at kPort, length kLength, AccessSizes{4, 4} (QEMU accepts dword accesses only).
    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    uint32_t bus_select() const { return bus_select_; }

    const char* name() const override { return "acpi-pci-hotplug"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

  private:
    uint32_t bus_select_ = 0;
    uint32_t device_select_ = 0;
    RateLimiter log_limit_{8, 4096};
};

} // namespace hvm
