// The external (8259-compatible) interrupt controller as a local APIC sees it. An ExtINT
// interrupt carries no vector: the CPU runs an INTA cycle against the external controller, which
// supplies it (Intel SDM Vol. 3 §10.5.1, "ExtINT" delivery mode). That happens for the PIC's INT
// wire on LINT0 (virtual-wire mode, or the APIC globally disabled) and for IOAPIC pins programmed
// as ExtINT.
#pragma once

namespace hvm {

class ExtIntController {
  public:
    virtual ~ExtIntController() = default;
    // The INTA cycle: returns the vector of the highest-priority request and puts it in service,
    // or the controller's spurious vector when the request has gone away.
    virtual int acknowledge() = 0;
};

} // namespace hvm
