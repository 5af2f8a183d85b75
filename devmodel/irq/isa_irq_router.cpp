#include "devmodel/irq/isa_irq_router.hpp"

namespace hvm {

namespace {
constexpr uint32_t kStateVersion = 1;
constexpr unsigned kCascadeIrq = 2;
} // namespace

void IsaIrqRouter::set_irq(unsigned gsi, bool level) {
    if (gsi >= kGsiCount) {
        if (log_limit_.allow()) LOG_DEBUG("gsi-router: GSI %u does not exist", gsi);
        return;
    }
    uint32_t bit = 1u << gsi;
    levels_ = level ? (levels_ | bit) : (levels_ & ~bit);
    if (gsi < kIsaIrqCount && gsi != kCascadeIrq) pic_.set_irq(gsi, level);
    if (gsi == 0 || gsi == kPitIoApicPin) {
        // Pin 2 is a wired OR of ISA IRQ 0 and GSI 2.
        ioapic_.set_irq(kPitIoApicPin, levels_ & ((1u << 0) | (1u << kPitIoApicPin)));
    } else {
        ioapic_.set_irq(gsi, level);
    }
}

void IsaIrqRouter::save(StateWriter& out) const {
    out.begin("gsi-router", kStateVersion);
    out.put(levels_);
}

void IsaIrqRouter::load(StateReader& in) {
    in.begin("gsi-router", kStateVersion, kStateVersion);
    uint32_t levels = in.get<uint32_t>();
    if (levels >> kGsiCount) throw StateError("gsi-router: bad line levels");
    // The PIC and IOAPIC restore their own input levels; nothing is re-driven here.
    levels_ = levels;
}

} // namespace hvm
