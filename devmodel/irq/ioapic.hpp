// The I/O APIC (82093AA register model) at 0xFEC00000: 24 redirection entries behind an
// IOREGSEL/IOWIN window. Reports version 0x11 by default, as KVM's in-kernel IOAPIC does under
// QEMU's `pc` (what Linux and Windows see there: "IOAPIC[0]: apic_id 0, version 17"); version
// 0x20 adds the EOI register at 0x40, as QEMU's userspace IOAPIC has.
//
// Semantics (82093AA datasheet §3.2.4, with QEMU hw/intc/ioapic.c and KVM's ioapic.c):
//  - inputs are logical "asserted" levels. The polarity bit is stored but not applied: the board
//    and KVM present every line active-high to the IOAPIC, so honouring it would invert them;
//  - edge entries deliver on a rising edge of an unmasked input; an edge while masked is lost;
//  - level entries deliver while the input is asserted, set Remote IRR when a local APIC accepts
//    the message, and deliver again after the EOI broadcast if the line is still asserted;
//  - Remote IRR clears when an entry is switched to edge (Linux's "__eoi_ioapic_pin" trick for
//    IOAPICs without an EOI register);
//  - a guest that EOIs without handling a level interrupt 10000 times in a row gets its next
//    re-delivery 10 ms later (QEMU's storm damping), so it makes slow progress instead of none.
#pragma once
#include <cstdint>

#include "base/clock.hpp"
#include "base/log.hpp"
#include "devmodel/device.hpp"
#include "devmodel/irq/apic_bus.hpp"
#include "devmodel/irq/irq_pin.hpp"

namespace hvm {

class IoApic : public IrqSink, public IoHandler, public Device {
  public:
    static constexpr uint64_t kDefaultBase = 0xFEC00000;
    static constexpr uint64_t kMmioSize = 0x1000; // decodes offset & 0xFF, mirrored in the page
    static constexpr unsigned kPins = 24;

    // MMIO offsets.
    static constexpr uint64_t kIoRegSel = 0x00;
    static constexpr uint64_t kIoWin = 0x10;
    static constexpr uint64_t kEoi = 0x40; // version 0x20 only
    // Indirect registers (IOREGSEL values).
    static constexpr uint8_t kRegId = 0x00;
    static constexpr uint8_t kRegVersion = 0x01;
    static constexpr uint8_t kRegArbitration = 0x02;
    static constexpr uint8_t kRegRedirectionTable = 0x10; // 2 per pin: low dword, high dword

    // Redirection entry fields.
    static constexpr uint64_t kRteVector = 0xFF;
    static constexpr unsigned kRteDeliveryModeShift = 8;
    static constexpr uint64_t kRteDestLogical = 1ull << 11;
    static constexpr uint64_t kRteDeliveryStatus = 1ull << 12;
    static constexpr uint64_t kRtePolarityLow = 1ull << 13;
    static constexpr uint64_t kRteRemoteIrr = 1ull << 14;
    static constexpr uint64_t kRteLevel = 1ull << 15;
    static constexpr uint64_t kRteMasked = 1ull << 16;
    static constexpr unsigned kRteDestShift = 56;

    IoApic(ApicMessageSink& bus, Clock& clock, uint8_t version = 0x11);
    IoApic(const IoApic&) = delete;
    IoApic& operator=(const IoApic&) = delete;

    // Input pins 0..23.
    void set_irq(unsigned pin, bool level) override;
    // EOI broadcast from a local APIC for `vector` (and the EOI register of version 0x20).
    void eoi(uint8_t vector);

    // MMIO window: 4-byte registers (register with AccessSizes{4,4}).
    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    const char* name() const override { return "ioapic"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

  private:
    static constexpr unsigned kStormThreshold = 10000;
    static constexpr uint64_t kStormDelayNs = 10'000'000;

    uint32_t read_window() const;
    void write_window(uint32_t value);
    void write_entry(unsigned pin, uint64_t entry);
    void service(unsigned pin);
    void storm_timer_fired();

    ApicMessageSink& bus_;
    Clock& clock_;
    uint8_t version_;
    uint8_t id_ = 0;
    uint8_t ioregsel_ = 0;
    uint32_t asserted_ = 0; // input levels
    uint64_t rte_[kPins] = {};
    uint32_t eoi_redeliveries_[kPins] = {};
    uint32_t storm_delayed_ = 0; // pins waiting for the storm timer
    Timer storm_timer_;
    RateLimiter log_limit_;
};

} // namespace hvm
