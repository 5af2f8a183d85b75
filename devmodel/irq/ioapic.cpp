#include "devmodel/irq/ioapic.hpp"

#include <stdexcept>

namespace hvm {

namespace {

constexpr uint64_t kRteWritable = IoApic::kRteVector | (7ull << IoApic::kRteDeliveryModeShift) |
                                  IoApic::kRteDestLogical | IoApic::kRtePolarityLow |
                                  IoApic::kRteLevel | IoApic::kRteMasked |
                                  (0xFFull << IoApic::kRteDestShift);
constexpr uint64_t kRteReadOnly = IoApic::kRteRemoteIrr | IoApic::kRteDeliveryStatus;
constexpr unsigned kVersionEntriesShift = 16;
constexpr uint32_t kIdShift = 24;
constexpr uint8_t kIdMask = 0x0F; // 82093AA: 4-bit APIC ID
constexpr uint32_t kStateVersion = 1;

} // namespace

IoApic::IoApic(ApicMessageSink& bus, Clock& clock, uint8_t version)
    : bus_(bus), clock_(clock), version_(version),
      storm_timer_(clock, [this] { storm_timer_fired(); }) {
    if (version != 0x11 && version != 0x20)
        throw std::invalid_argument("ioapic: version must be 0x11 or 0x20");
    reset(ResetKind::PowerOn);
}

void IoApic::reset(ResetKind) {
    id_ = 0;
    ioregsel_ = 0;
    for (unsigned i = 0; i < kPins; i++) {
        rte_[i] = kRteMasked;
        eoi_redeliveries_[i] = 0;
    }
    storm_delayed_ = 0;
    storm_timer_.cancel();
    // asserted_ is the state of wires driven by other devices: it survives a reset.
}

// Sends pin's message if its entry allows one now.
void IoApic::service(unsigned pin) {
    uint64_t e = rte_[pin];
    if (e & kRteMasked) return;
    bool level = e & kRteLevel;
    if (level && ((e & kRteRemoteIrr) || !(asserted_ & (1u << pin)))) return;
    unsigned mode = (e >> kRteDeliveryModeShift) & 7;
    if (mode == 3) {
        if (log_limit_.allow()) LOG_DEBUG("ioapic: pin %u uses reserved delivery mode 3", pin);
        return;
    }
    ApicMessage msg;
    msg.vector = uint8_t(e & kRteVector);
    msg.mode = ApicDeliveryMode(mode);
    msg.logical = e & kRteDestLogical;
    msg.dest = uint8_t(e >> kRteDestShift);
    msg.level_trigger = level;
    unsigned accepted = bus_.deliver(msg);
    // Remote IRR tracks a level interrupt a local APIC has taken and not yet EOI'd. NMI, SMI,
    // INIT and ExtINT never reach an ISR/TMR, so no EOI would ever clear it for them.
    bool eoi_tracked =
        msg.mode == ApicDeliveryMode::Fixed || msg.mode == ApicDeliveryMode::LowestPriority;
    if (level && eoi_tracked && accepted) rte_[pin] |= kRteRemoteIrr;
}

void IoApic::set_irq(unsigned pin, bool level) {
    if (pin >= kPins) {
        if (log_limit_.allow()) LOG_DEBUG("ioapic: drive of nonexistent pin %u ignored", pin);
        return;
    }
    uint32_t bit = 1u << pin;
    bool was = asserted_ & bit;
    asserted_ = level ? (asserted_ | bit) : (asserted_ & ~bit);
    if (!level) return;
    // Level entries re-check on every assertion (service() honours Remote IRR); edge entries
    // want a rising edge.
    if ((rte_[pin] & kRteLevel) || !was) service(pin);
}

void IoApic::eoi(uint8_t vector) {
    for (unsigned pin = 0; pin < kPins; pin++) {
        uint64_t e = rte_[pin];
        if ((e & kRteVector) != vector || !(e & kRteLevel) || !(e & kRteRemoteIrr)) continue;
        rte_[pin] = e & ~kRteRemoteIrr;
        if ((e & kRteMasked) || !(asserted_ & (1u << pin))) {
            eoi_redeliveries_[pin] = 0;
            continue;
        }
        if (++eoi_redeliveries_[pin] >= kStormThreshold) {
            eoi_redeliveries_[pin] = 0;
            storm_delayed_ |= 1u << pin;
            uint64_t when = clock_.now_ns() + kStormDelayNs;
            if (!storm_timer_.armed() || storm_timer_.deadline() > when) storm_timer_.arm(when);
            if (log_limit_.allow())
                LOG_DEBUG("ioapic: interrupt storm on pin %u, delaying re-delivery", pin);
        } else {
            service(pin);
        }
    }
}

void IoApic::storm_timer_fired() {
    uint32_t pins = storm_delayed_;
    storm_delayed_ = 0;
    for (unsigned pin = 0; pin < kPins; pin++)
        if (pins & (1u << pin)) service(pin);
}

uint32_t IoApic::read_window() const {
    switch (ioregsel_) {
    case kRegId:
    case kRegArbitration: return uint32_t(id_) << kIdShift;
    case kRegVersion: return version_ | ((kPins - 1) << kVersionEntriesShift);
    default: break;
    }
    unsigned index = ioregsel_ - kRegRedirectionTable;
    if (ioregsel_ < kRegRedirectionTable || index >= 2 * kPins) return 0;
    uint64_t e = rte_[index / 2];
    return (index & 1) ? uint32_t(e >> 32) : uint32_t(e);
}

void IoApic::write_window(uint32_t value) {
    switch (ioregsel_) {
    case kRegId: id_ = (value >> kIdShift) & kIdMask; return;
    case kRegVersion:
    case kRegArbitration: return; // read-only
    default: break;
    }
    unsigned index = ioregsel_ - kRegRedirectionTable;
    if (ioregsel_ < kRegRedirectionTable || index >= 2 * kPins) return;
    uint64_t e = rte_[index / 2];
    if (index & 1)
        e = (e & 0xFFFFFFFFull) | (uint64_t(value) << 32);
    else
        e = (e & ~0xFFFFFFFFull) | value;
    write_entry(index / 2, e);
}

void IoApic::write_entry(unsigned pin, uint64_t entry) {
    uint64_t e = (entry & kRteWritable) | (rte_[pin] & kRteReadOnly);
    if (!(e & kRteLevel)) e &= ~kRteRemoteIrr;
    rte_[pin] = e;
    eoi_redeliveries_[pin] = 0;
    // Unmasking (or re-targeting) an asserted level line delivers it now.
    if (e & kRteLevel) service(pin);
}

void IoApic::io_read(uint64_t offset, std::span<uint8_t> data) {
    uint32_t v = 0;
    switch (offset & 0xFF) {
    case kIoRegSel: v = ioregsel_; break;
    case kIoWin:
        if (data.size() == 4) v = read_window();
        break;
    default: break;
    }
    le_store(data, v);
}

void IoApic::io_write(uint64_t offset, std::span<const uint8_t> data) {
    uint32_t v = uint32_t(le_load(data));
    switch (offset & 0xFF) {
    case kIoRegSel: ioregsel_ = uint8_t(v); break;
    case kIoWin:
        if (data.size() == 4) write_window(v);
        break;
    case kEoi:
        if (data.size() == 4 && version_ == 0x20) eoi(uint8_t(v));
        break;
    default: break;
    }
}

void IoApic::save(StateWriter& out) const {
    out.begin("ioapic", kStateVersion);
    out.put(version_);
    out.put(id_);
    out.put(ioregsel_);
    out.put(asserted_);
    out.put_bytes(std::span(reinterpret_cast<const uint8_t*>(rte_), sizeof rte_));
    out.put_bytes(
        std::span(reinterpret_cast<const uint8_t*>(eoi_redeliveries_), sizeof eoi_redeliveries_));
    out.put(storm_delayed_);
}

void IoApic::load(StateReader& in) {
    in.begin("ioapic", kStateVersion, kStateVersion);
    uint8_t version = in.get<uint8_t>();
    uint8_t id = in.get<uint8_t>();
    uint8_t ioregsel = in.get<uint8_t>();
    uint32_t asserted = in.get<uint32_t>();
    uint64_t rte[kPins];
    uint32_t redeliveries[kPins];
    in.get_bytes(std::span(reinterpret_cast<uint8_t*>(rte), sizeof rte));
    in.get_bytes(std::span(reinterpret_cast<uint8_t*>(redeliveries), sizeof redeliveries));
    uint32_t delayed = in.get<uint32_t>();

    constexpr uint32_t kAllPins = (1u << kPins) - 1;
    if (version != version_) throw StateError("ioapic: state is for another IOAPIC version");
    if (id & ~kIdMask) throw StateError("ioapic: bad ID in state");
    if ((asserted & ~kAllPins) || (delayed & ~kAllPins)) throw StateError("ioapic: bad pin mask");
    for (unsigned i = 0; i < kPins; i++) {
        if (rte[i] & ~(kRteWritable | kRteRemoteIrr))
            throw StateError("ioapic: bad redirection entry in state");
        if ((rte[i] & kRteRemoteIrr) && !(rte[i] & kRteLevel))
            throw StateError("ioapic: Remote IRR on an edge entry");
        if (redeliveries[i] >= kStormThreshold) throw StateError("ioapic: bad storm counter");
    }

    id_ = id;
    ioregsel_ = ioregsel;
    asserted_ = asserted;
    for (unsigned i = 0; i < kPins; i++) {
        rte_[i] = rte[i];
        eoi_redeliveries_[i] = redeliveries[i];
    }
    storm_delayed_ = delayed;
    if (delayed)
        storm_timer_.arm(clock_.now_ns() + kStormDelayNs);
    else
        storm_timer_.cancel();
}

} // namespace hvm
