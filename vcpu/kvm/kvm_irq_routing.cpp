#include "vcpu/kvm/kvm_irq_routing.hpp"

namespace hvm {

std::vector<GsiRoute> pc_gsi_routes() {
    constexpr unsigned kIsaIrqs = 16, kIoapicPins = 24, kCascade = 2, kIoapicPit = 2;
    std::vector<GsiRoute> r;
    for (unsigned gsi = 0; gsi < 8; gsi++)
        if (gsi != kCascade) r.push_back({gsi, GsiRoute::Chip::PicMaster, gsi});
    for (unsigned gsi = 8; gsi < kIsaIrqs; gsi++)
        r.push_back({gsi, GsiRoute::Chip::PicSlave, gsi - 8});
    for (unsigned gsi = 0; gsi < kIoapicPins; gsi++) {
        if (gsi == 0)
            r.push_back({0, GsiRoute::Chip::Ioapic, kIoapicPit});
        else if (gsi != kCascade)
            r.push_back({gsi, GsiRoute::Chip::Ioapic, gsi});
    }
    return r;
}

} // namespace hvm
