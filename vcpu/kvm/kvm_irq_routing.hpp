// QEMU's GSI routing table for the `pc` machine with KVM's in-kernel irqchip. A pure function, so
// the table itself is unit-tested; KvmEngine installs it with KVM_SET_GSI_ROUTING.
#pragma once
#include <vector>

namespace hvm {

struct GsiRoute {
    enum class Chip { PicMaster, PicSlave, Ioapic };
    unsigned gsi;
    Chip chip;
    unsigned pin;
};

// QEMU hw/i386/kvm/ioapic.c kvm_pc_setup_irq_routing: GSI 0-7 except 2 -> master 8259 pin n,
// GSI 8-15 -> slave 8259 pin n-8, GSI 0 -> IOAPIC pin 2, GSI 1 and 3-23 -> IOAPIC pin n, and no
// route at all for GSI 2. KVM's own default (Linux irq_comm.c default_routing) sends GSI n to
// IOAPIC pin n, GSI 0 included, which contradicts the MADT's "IRQ0 -> GSI 2" override: APIC-mode
// guests (Windows' APIC HAL) then never see the PIT tick.
std::vector<GsiRoute> pc_gsi_routes();

} // namespace hvm
