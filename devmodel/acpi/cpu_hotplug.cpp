#include "devmodel/acpi/cpu_hotplug.hpp"

#include <cassert>

namespace hvm {

namespace {
constexpr uint32_t kStateVersion = 1;
}

AcpiCpuHotplug::AcpiCpuHotplug(std::vector<uint32_t> apic_ids) : apic_ids_(std::move(apic_ids)) {
    assert(!apic_ids_.empty() && apic_ids_.size() <= kMaxCpus);
}

void AcpiCpuHotplug::io_read(uint64_t offset, std::span<uint8_t> data) {
    if (!modern_) {
        // Legacy: bit n of the 32-byte map is set when the CPU with APIC ID n is present.
        for (size_t i = 0; i < data.size(); i++) {
            uint64_t byte = offset + i;
            uint8_t v = 0;
            for (uint32_t id : apic_ids_)
                if (id / 8 == byte) v |= uint8_t(1u << (id % 8));
            data[i] = v;
        }
        return;
    }
    if (offset >= kModernLength) { // outside the 12-byte modern block nothing decodes
        for (auto& b : data) b = 0xFF;
        return;
    }
    le_store(data, modern_read(offset));
}

void AcpiCpuHotplug::io_write(uint64_t offset, std::span<const uint8_t> data) {
    if (data.empty()) return;
    if (!modern_) {
        // Firmware never wrote the legacy bitmap, so QEMU uses a 0 written at offset 0 as the
        // OSPM's request for the modern interface (QEMU's DSDT does it in \_SB.CPUS._INI).
        if (offset == 0 && data[0] == 0) {
            modern_ = true;
            selector_ = 0;
            command_ = 0;
        }
        return;
    }
    if (offset >= kModernLength) return;
    modern_write(offset, uint32_t(le_load(data)));
}

uint32_t AcpiCpuHotplug::modern_read(uint64_t offset) {
    if (selector_ >= apic_ids_.size()) return 0;
    switch (offset) {
    case kFlags: return kCpen; // present, no insert/remove event, no firmware eject request
    case kData:
        if (command_ == kGetNextWithEvent) return selector_;
        if (command_ == kGetCpuId) return apic_ids_[selector_];
        return 0;
    case kData2: // upper half of the 64-bit arch ID: APIC IDs are 32-bit
        return 0;
    default: return 0;
    }
}

void AcpiCpuHotplug::modern_write(uint64_t offset, uint32_t value) {
    if (offset != kSelector && selector_ >= apic_ids_.size()) return;
    switch (offset) {
    case kSelector:
        selector_ = value; // checked against the CPU count on every use
        break;
    case kFlags:
        // CINS/CRMV clear events that never occur here. An eject or firmware-eject request has
        // nothing to act on: no CPU was ever offered for removal.
        if ((value & (kCej0 | kCejf)) && log_limit_.allow())
            LOG_WARN("acpi-cpu-hotplug: eject of CPU %u refused (no CPU hot-unplug)", selector_);
        break;
    case kCommand:
        command_ = uint8_t(value);
        // kGetNextWithEvent: no CPU has an event, so the selector stays where it is.
        break;
    case kData:
        if (command_ == kOstEvent)
            ost_event_ = value;
        else if (command_ == kOstStatus)
            ost_status_ = value;
        break;
    default: break;
    }
}

void AcpiCpuHotplug::reset(ResetKind kind) {
    // QEMU keeps the interface mode across a guest reset (the DSDT's _INI write of 0 is then a
    // plain selector write); power-on starts in legacy mode again.
    if (kind == ResetKind::PowerOn) modern_ = false;
    selector_ = 0;
    command_ = 0;
    ost_event_ = ost_status_ = 0;
}

void AcpiCpuHotplug::save(StateWriter& out) const {
    out.begin(name(), kStateVersion);
    out.put<uint8_t>(modern_);
    out.put(selector_);
    out.put(command_);
    out.put(ost_event_);
    out.put(ost_status_);
}

void AcpiCpuHotplug::load(StateReader& in) {
    in.begin(name(), kStateVersion, kStateVersion);
    uint8_t modern = in.get<uint8_t>();
    uint32_t selector = in.get<uint32_t>();
    uint8_t command = in.get<uint8_t>();
    uint32_t ev = in.get<uint32_t>(), st = in.get<uint32_t>();
    if (modern > 1) throw StateError("acpi-cpu-hotplug: bad mode");
    // Any selector and command are values a guest can write; both are checked on use.
    modern_ = modern != 0;
    selector_ = selector;
    command_ = command;
    ost_event_ = ev;
    ost_status_ = st;
}

} // namespace hvm
