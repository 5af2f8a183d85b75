// GSI fan-out of QEMU's `pc` (hw/i386/kvm/ioapic.c kvm_pc_setup_irq_routing, x86 gsi_handler):
// GSI n < 16 drives PIC input n and IOAPIC pin n, except that ISA IRQ 0 (the PIT, or the HPET in
// legacy mode) drives IOAPIC pin 2, as the MADT interrupt source override "IRQ0 -> GSI2" tells
// the OS. GSI 2 itself reaches IOAPIC pin 2 only (PIC input 2 is the cascade); pin 2 is the OR of
// GSI 0 and GSI 2. GSI 16..23 go to the IOAPIC only. Every ISA device's IrqPin points here.
#pragma once
#include <cstdint>

#include "base/log.hpp"
#include "devmodel/device.hpp"
#include "devmodel/irq/irq_pin.hpp"

namespace hvm {

class IsaIrqRouter : public IrqSink, public Device {
  public:
    static constexpr unsigned kGsiCount = 24;
    static constexpr unsigned kIsaIrqCount = 16;
    static constexpr unsigned kPitIoApicPin = 2; // MADT ISO: IRQ0 -> GSI2

    IsaIrqRouter(IrqSink& pic, IrqSink& ioapic) : pic_(pic), ioapic_(ioapic) {}
    IsaIrqRouter(const IsaIrqRouter&) = delete;
    IsaIrqRouter& operator=(const IsaIrqRouter&) = delete;

    void set_irq(unsigned gsi, bool level) override;
    bool level(unsigned gsi) const { return gsi < kGsiCount && (levels_ & (1u << gsi)); }

    const char* name() const override { return "gsi-router"; }
    // Line levels are wires driven by the devices: a reset leaves them alone.
    void reset(ResetKind) override {}
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

  private:
    IrqSink& pic_;
    IrqSink& ioapic_;
    uint32_t levels_ = 0;
    RateLimiter log_limit_;
};

} // namespace hvm
