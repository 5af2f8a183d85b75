#include "devmodel/irq/apic_bus.hpp"

#include <algorithm>

#include "devmodel/irq/ioapic.hpp"
#include "devmodel/irq/local_apic.hpp"

namespace hvm {

void ApicBus::attach(LocalApic& apic) {
    if (std::find(apics_.begin(), apics_.end(), &apic) != apics_.end()) return;
    apics_.push_back(&apic);
    apic.set_lint(kLint0, lint_[kLint0]);
    apic.set_lint(kLint1, lint_[kLint1]);
}

void ApicBus::detach(LocalApic& apic) {
    apics_.erase(std::remove(apics_.begin(), apics_.end(), &apic), apics_.end());
}

unsigned ApicBus::deliver(const ApicMessage& msg) {
    return deliver_to(msg, nullptr, ApicShorthand::None);
}

unsigned ApicBus::deliver_ipi(const ApicMessage& msg, LocalApic& sender, ApicShorthand shorthand) {
    return deliver_to(msg, &sender, shorthand);
}

unsigned ApicBus::deliver_to(const ApicMessage& msg, LocalApic* sender, ApicShorthand shorthand) {
    auto targeted = [&](const LocalApic* a) {
        switch (shorthand) {
        case ApicShorthand::Self: return a == sender;
        case ApicShorthand::AllIncludingSelf: return true;
        case ApicShorthand::AllExcludingSelf: return a != sender;
        case ApicShorthand::None: break;
        }
        return a->matches_destination(msg.dest, msg.logical);
    };

    if (msg.mode == ApicDeliveryMode::LowestPriority) {
        // Lowest-priority arbitration: the enabled target with the lowest arbitration priority
        // wins; ties go to the first attached (QEMU picks the first target outright). Focus
        // processor checking (SDM §10.6.2.4) is a P6-era option that later xAPICs dropped.
        LocalApic* best = nullptr;
        for (LocalApic* a : apics_) {
            if (!targeted(a) || !a->accepts_fixed()) continue;
            if (!best || a->arbitration_priority() < best->arbitration_priority()) best = a;
        }
        if (!best) return 0;
        ApicMessage fixed = msg;
        fixed.mode = ApicDeliveryMode::Fixed;
        return best->accept(fixed) ? 1 : 0;
    }

    unsigned accepted = 0;
    for (LocalApic* a : apics_)
        if (targeted(a) && a->accept(msg)) accepted++;
    return accepted;
}

void ApicBus::broadcast_eoi(uint8_t vector) {
    if (ioapic_) ioapic_->eoi(vector);
}

void ApicBus::set_irq(unsigned line, bool level) {
    if (line > kLint1) return;
    lint_[line] = level;
    for (LocalApic* a : apics_) a->set_lint(line, level);
}

} // namespace hvm
