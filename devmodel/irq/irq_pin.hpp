// Interrupt wiring. Lines are level objects: a device drives its output pin high or low, and the
// receiving controller decides what an edge or a level means. An edge-triggered ISA device pulses.
#pragma once
#include <cstdint>

namespace hvm {

// Something with numbered interrupt inputs: a PIC, an IOAPIC, the GSI router, KVM's irqchip.
class IrqSink {
public:
    virtual ~IrqSink() = default;
    virtual void set_irq(unsigned line, bool level) = 0;
};

// A device's interrupt output: one input line of one sink. A default-constructed pin is
// unconnected and ignores writes (a device whose IRQ is not wired).
class IrqPin {
public:
    IrqPin() = default;
    IrqPin(IrqSink* sink, unsigned line) : sink_(sink), line_(line) {}
    void set(bool level) {
        if (sink_) sink_->set_irq(line_, level);
    }
    void raise() { set(true); }
    void lower() { set(false); }
    void pulse() {
        set(true);
        set(false);
    }
    bool connected() const { return sink_ != nullptr; }
    unsigned line() const { return line_; }

private:
    IrqSink* sink_ = nullptr;
    unsigned line_ = 0;
};

} // namespace hvm
