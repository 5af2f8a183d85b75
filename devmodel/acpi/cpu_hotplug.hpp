// QEMU's ACPI CPU hotplug register block at 0xAF00 (QEMU docs/specs/acpi_cpu_hotplug.rst,
// hw/acpi/cpu.c, hw/acpi/cpu_hotplug.c), which the DSDT's \_SB.CPUS methods read: without it
// every processor's _STA reads 0 ("not present").
//
// It starts in QEMU's legacy mode, a 32-byte bitmap of present CPUs by APIC ID (byte access),
// and switches for good to the "modern" interface when the OSPM writes 0 to offset 0, which
// QEMU's DSDT does in \_SB.CPUS._INI. Modern registers (12 bytes):
//   write 0x0 (dword) CSEL  selects CPU n for the other registers (valid: n < possible CPUs)
//   read  0x0 (dword) command data 2: upper 32 bits of the arch ID after command 3, else 0
//   r/w   0x4 (byte)  flags: read bit 0 CPEN (present), 1 CINS (insert event), 2 CRMV (remove
//                     event), 4 CEJF (firmware eject request); write 1 to bit 1 / bit 2 clears
//                     the insert / remove event, bit 3 asks to eject, bit 4 hands eject to FW
//   write 0x5 (byte)  CCMD: 0 = select the next CPU with an event (CDAT then reads its
//                     selector), 1 = next CDAT write is the _OST event, 2 = the _OST status,
//                     3 = CDAT / data 2 read the CPU's arch (APIC) ID
//   r/w   0x8 (dword) CDAT command data
// hvm offers no CPU hotplug: every possible CPU is present (cold-plugged, no pending events)
// and an eject request is logged and refused, as for a CPU without an unplug handler.
#pragma once
#include <cstdint>
#include <vector>

#include "base/log.hpp"
#include "devmodel/device.hpp"

namespace hvm {

class AcpiCpuHotplug : public IoHandler, public Device {
  public:
    static constexpr uint16_t kPort = 0xAF00;
    static constexpr unsigned kLegacyLength = 32; // register the block with this length
    static constexpr unsigned kModernLength = 12;
    static constexpr unsigned kSelector = 0x0, kData2 = 0x0, kFlags = 0x4, kCommand = 0x5,
                              kData = 0x8;
    static constexpr uint8_t kCpen = 0x01, kCins = 0x02, kCrmv = 0x04, kCej0 = 0x08, kCejf = 0x10;
    enum Command : uint8_t { kGetNextWithEvent = 0, kOstEvent = 1, kOstStatus = 2, kGetCpuId = 3 };
    static constexpr unsigned kMaxCpus = 8 * kLegacyLength; // the legacy bitmap's reach

    // `apic_ids`: arch IDs of the possible CPUs in ACPI processor order; all are present.
    explicit AcpiCpuHotplug(std::vector<uint32_t> apic_ids);

    // Register at kPort, length kLegacyLength, AccessSizes{1, 4}.
    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    bool modern() const { return modern_; }
    uint32_t selector() const { return selector_; }
    uint32_t ost_event() const { return ost_event_; }
    uint32_t ost_status() const { return ost_status_; }

    const char* name() const override { return "acpi-cpu-hotplug"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

  private:
    uint32_t modern_read(uint64_t offset);
    void modern_write(uint64_t offset, uint32_t value);

    std::vector<uint32_t> apic_ids_;
    bool modern_ = false;
    uint32_t selector_ = 0;
    uint8_t command_ = 0;
    uint32_t ost_event_ = 0, ost_status_ = 0;
    RateLimiter log_limit_{8, 4096};
};

} // namespace hvm
