// PCI INTx routing of the PIIX3 (82371SB datasheet §2.2.9 PIRQRC[A:D]; QEMU hw/isa/piix3.c).
//
// Every function's INTx pin reaches one of the four PIRQ lines by the board's swizzle
// PIRQ[(slot - 1 + pin) & 3] (pin 0 = INTA#), the same formula as the DSDT's _PRT, SeaBIOS's
// piix_pci_slot_get_irq and QEMU's pci_slot_get_pirq. PIRQs are shared, level-triggered wires:
// a PIRQ is asserted while any function on it is. Each PIRQ is steered by its route control
// register to one ISA IRQ; bit 7 set or a value >= 16 disables it (QEMU's check). The level of
// ISA IRQ n is the OR of the PIRQs routed to n, driven as GSI n on the machine's GSI router, which
// feeds both PIC input n and IOAPIC pin n. Like QEMU's `pc`, PCI INTx never reaches IOAPIC
// pins 16-23 directly.
//
// Unlike QEMU 7.2 (piix3_update_irq_levels leaves the old IRQ high), a route change lowers the
// old IRQ and raises the new one when the PIRQ is asserted, as the PIIX3's steering logic does.
#pragma once
#include <array>
#include <bitset>
#include <cstdint>

#include "base/log.hpp"
#include "devmodel/irq/irq_pin.hpp"

namespace hvm {

class PciIrqRouter {
  public:
    static constexpr unsigned kPirqCount = 4;
    static constexpr unsigned kIsaIrqCount = 16;
    static constexpr uint8_t kRouteDisabled = 0x80; // PIRQRC bit 7 (IRQEN#)

    explicit PciIrqRouter(IrqSink& isa_irqs) : isa_(isa_irqs) {}
    PciIrqRouter(const PciIrqRouter&) = delete;
    PciIrqRouter& operator=(const PciIrqRouter&) = delete;

    // The board swizzle: which PIRQ (0 = A) INTx pin `pin` (0 = INTA#) of device `devfn` uses.
    static unsigned pirq_of(uint8_t devfn, unsigned pin) { return ((devfn >> 3) + 3 + pin) & 3; }

    // Level of INTx pin `pin` (0..3) of function `devfn`.
    void set_intx(uint8_t devfn, unsigned pin, bool level);
    // A PIRQ route control register value (PIIX3 config 0x60 + pirq).
    void set_route(unsigned pirq, uint8_t value);

    uint8_t route(unsigned pirq) const {
        return pirq < kPirqCount ? routes_[pirq] : kRouteDisabled;
    }
    bool pirq_level(unsigned pirq) const { return pirq < kPirqCount && asserted_[pirq] > 0; }
    // The ISA IRQ a route register value selects, or -1 when disabled.
    static int isa_irq_of(uint8_t route) { return route >= kIsaIrqCount ? -1 : route; }
    // The level this router drives on ISA IRQ `irq`.
    bool isa_level(unsigned irq) const { return irq < kIsaIrqCount && (driven_ >> irq) & 1; }

  private:
    void update_isa_lines();

    IrqSink& isa_;
    std::array<uint8_t, kPirqCount> routes_{kRouteDisabled, kRouteDisabled, kRouteDisabled,
                                            kRouteDisabled};
    std::bitset<256 * 4> intx_;                   // asserted (devfn, pin) pairs
    std::array<uint32_t, kPirqCount> asserted_{}; // number of asserted pins per PIRQ
    uint16_t driven_ = 0;                         // ISA IRQ levels as last driven
    RateLimiter bad_pin_{4, 1024};
};

} // namespace hvm
