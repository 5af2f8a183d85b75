// The APIC bus (the system bus messages of P4-and-later xAPICs): how the IOAPIC's redirection
// messages and the local APICs' IPIs reach local APICs, and how EOIs of level-triggered vectors
// get back to the IOAPIC. Delivery is instantaneous, so delivery-status bits always read idle.
//
// Also the board's two local-interrupt wires that go to every CPU's LINT pins: the 8259's INTR
// (LINT0) and the NMI line (LINT1), as the MP specification's virtual-wire wiring has them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "devmodel/irq/ext_int.hpp"
#include "devmodel/irq/irq_pin.hpp"

namespace hvm {

class LocalApic;
class IoApic;

// Delivery modes as the IOAPIC redirection entries, the ICR and the LVTs encode them
// (Intel SDM Vol. 3 §10.6.1, 82093AA datasheet §3.2.4). 3 is reserved.
enum class ApicDeliveryMode : uint8_t {
    Fixed = 0,
    LowestPriority = 1,
    Smi = 2,
    Nmi = 4,
    Init = 5,
    Startup = 6,
    ExtInt = 7,
};

// ICR destination shorthand (bits 19:18).
enum class ApicShorthand : uint8_t {
    None = 0,
    Self = 1,
    AllIncludingSelf = 2,
    AllExcludingSelf = 3
};

struct ApicMessage {
    uint8_t vector = 0;
    ApicDeliveryMode mode = ApicDeliveryMode::Fixed;
    bool logical = false; // destination mode: false = physical APIC ID, true = logical (LDR/DFR)
    uint8_t dest = 0;     // 0xFF = broadcast in either mode
    bool level_trigger = false;
    bool assert = true; // ICR level bit; false only for the INIT level de-assert IPI
};

// Where an IOAPIC sends its messages (ApicBus; tests may record them instead).
class ApicMessageSink {
  public:
    virtual ~ApicMessageSink() = default;
    // Returns how many local APICs accepted the message.
    virtual unsigned deliver(const ApicMessage& msg) = 0;
};

class ApicBus : public ApicMessageSink, public IrqSink {
  public:
    // Board wires, as IrqSink lines: every CPU's LINT0 (the PIC's INTR) and LINT1 (NMI).
    static constexpr unsigned kLint0 = 0;
    static constexpr unsigned kLint1 = 1;

    ApicBus() = default;
    ApicBus(const ApicBus&) = delete;
    ApicBus& operator=(const ApicBus&) = delete;

    // Wiring, done once by the machine. The bus must outlive what is attached to it.
    void attach(LocalApic& apic); // in vCPU order; the lowest-priority tie-break follows it
    void detach(LocalApic& apic);
    void connect_ioapic(IoApic& ioapic) { ioapic_ = &ioapic; }
    void connect_ext_int(ExtIntController& pic) { ext_int_ = &pic; }
    ExtIntController* ext_int() const { return ext_int_; }

    // An interrupt message without shorthand (IOAPIC redirection entry or MSI-shaped source).
    unsigned deliver(const ApicMessage& msg) override;
    // An IPI from `sender`'s ICR.
    unsigned deliver_ipi(const ApicMessage& msg, LocalApic& sender, ApicShorthand shorthand);
    // A local APIC's EOI of a level-triggered vector.
    void broadcast_eoi(uint8_t vector);

    // LINT wires (kLint0 / kLint1).
    void set_irq(unsigned line, bool level) override;

    size_t size() const { return apics_.size(); }

  private:
    unsigned deliver_to(const ApicMessage& msg, LocalApic* sender, ApicShorthand shorthand);
    std::vector<LocalApic*> apics_;
    IoApic* ioapic_ = nullptr;
    ExtIntController* ext_int_ = nullptr;
    bool lint_[2] = {false, false};
};

} // namespace hvm
