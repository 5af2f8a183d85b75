#include "devmodel/acpi/pci_hotplug.hpp"

namespace hvm {

namespace {
constexpr uint32_t kStateVersion = 1;
}

void AcpiPciHotplug::io_read(uint64_t offset, std::span<uint8_t> data) {
    uint32_t v = 0;
    switch (offset) {
    case kBusSelect: v = bus_select_; break;
    case kUp:
    case kDown:
    case kEject:
    case kRemovable:
    case kAcpiIndex:
        // Bus 0 or not: no events, no features, nothing removable, no acpi-index.
        v = 0;
        break;
    default: break;
    }
    le_store(data, v);
}

void AcpiPciHotplug::io_write(uint64_t offset, std::span<const uint8_t> data) {
    uint32_t v = uint32_t(le_load(data));
    switch (offset) {
    case kBusSelect: bus_select_ = v; break;
    case kAcpiIndex: device_select_ = v; break;
    case kEject:
        if (v && log_limit_.allow())
            LOG_WARN("acpi-pci-hotplug: eject of slots 0x%08x on bus %u refused (not removable)", v,
                     bus_select_);
        break;
    default: break;
    }
}

void AcpiPciHotplug::reset(ResetKind) {
    bus_select_ = 0;
    device_select_ = 0;
}

void AcpiPciHotplug::save(StateWriter& out) const {
    out.begin(name(), kStateVersion);
    out.put(bus_select_);
    out.put(device_select_);
}

void AcpiPciHotplug::load(StateReader& in) {
    in.begin(name(), kStateVersion, kStateVersion);
    bus_select_ = in.get<uint32_t>(); // any value a guest can write; unknown buses read 0
    device_select_ = in.get<uint32_t>();
}

} // namespace hvm
