#include "devmodel/pci/pci_irq_router.hpp"

namespace hvm {

void PciIrqRouter::set_intx(uint8_t devfn, unsigned pin, bool level) {
    if (pin >= 4) {
        if (bad_pin_.allow())
            LOG_WARN("pci-irq: INTx pin %u of devfn %02x does not exist", pin, devfn);
        return;
    }
    size_t bit = size_t(devfn) * 4 + pin;
    if (intx_[bit] == level) return; // a wire driven to the level it already has
    intx_[bit] = level;
    unsigned pirq = pirq_of(devfn, pin);
    if (level)
        asserted_[pirq]++;
    else
        asserted_[pirq]--;
    update_isa_lines();
}

void PciIrqRouter::set_route(unsigned pirq, uint8_t value) {
    if (pirq >= kPirqCount || routes_[pirq] == value) return;
    routes_[pirq] = value;
    update_isa_lines();
}

// Recomputes the OR of the PIRQs on each ISA IRQ and drives only the lines whose level changed,
// so an IRQ no PIRQ is routed to is never touched (an ISA device may own it).
void PciIrqRouter::update_isa_lines() {
    uint16_t want = 0;
    for (unsigned p = 0; p < kPirqCount; p++) {
        int irq = isa_irq_of(routes_[p]);
        if (irq >= 0 && asserted_[p] > 0) want |= uint16_t(1u << irq);
    }
    uint16_t changed = want ^ driven_;
    driven_ = want;
    // Lower before raising, so a PIRQ moving between IRQs never shows on both at once.
    for (unsigned irq = 0; irq < kIsaIrqCount; irq++)
        if ((changed >> irq) & 1 && !((want >> irq) & 1)) isa_.set_irq(irq, false);
    for (unsigned irq = 0; irq < kIsaIrqCount; irq++)
        if ((changed >> irq) & 1 && (want >> irq) & 1) isa_.set_irq(irq, true);
}

} // namespace hvm
