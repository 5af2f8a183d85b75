// A hostile guest: random accesses of every size at every register of the PCI/ACPI chips,
// random config writes (BARs over anything, PM base anywhere, PIRQ routes, PAM), random HPET
// programming, with time moving. Nothing may crash, hang or trip the sanitizers, and the
// platform must stay consistent (PIRQ lines are 0/1, every mapping sits where its BAR says).
#include <doctest/doctest.h>

#include <random>

#include "base/clock.hpp"
#include "devmodel/acpi/cpu_hotplug.hpp"
#include "devmodel/acpi/hpet.hpp"
#include "devmodel/acpi/pci_hotplug.hpp"
#include "devmodel/acpi/piix4_pm.hpp"
#include "devmodel/pci/i440fx.hpp"
#include "devmodel/pci/piix3.hpp"
#include "tests/unit/pci/pci_test_support.hpp"

using namespace hvm;
using namespace hvm::test;

namespace {
struct NullPam : PamListener {
    unsigned calls = 0;
    void pam_changed(unsigned segment, PamState) override {
        REQUIRE(segment < I440fxHostBridge::kPamSegments);
        calls++;
    }
    void smram_changed(bool) override {}
};
} // namespace

TEST_CASE("random guest accesses to every PCI/ACPI register window") {
    FakeClock clock;
    PciRig rig;
    NullPam pam;
    FakePlatform platform;
    Lines sci, hpet_lines;
    I440fxHostBridge host(pam, 1ull << 30);
    Piix3IsaBridge isa(rig.router, platform);
    Piix4Pm pm(clock, IrqPin(&sci, 9), platform);
    TestFunction nic, other(2, 0x0002);
    AcpiCpuHotplug cpus({0, 1, 2, 3});
    AcpiPciHotplug pcihp;
    Hpet hpet(clock, hpet_lines);
    rig.pci.attach(host, pci::devfn(0, 0));
    rig.pci.attach(isa, pci::devfn(1, 0));
    rig.pci.attach(pm, pci::devfn(1, 3));
    rig.pci.attach(nic, pci::devfn(3, 0));
    rig.pci.attach(other, pci::devfn(4, 0));
    rig.pci.set_reset_control(&isa.reset_control());
    rig.pio.add(0xAFE0, 4, &pm.gpe0_io(), AccessSizes{1, 1}, "gpe0");
    rig.pio.add(0xB2, 2, &pm.apm_io(), AccessSizes{1, 1}, "apm");
    rig.pio.add(0xAF00, 32, &cpus, AccessSizes{1, 4}, "cpuhp");
    rig.pio.add(0xAE00, 0x18, &pcihp, AccessSizes{4, 4}, "pcihp");
    rig.mmio.add(Hpet::kBase, Hpet::kLength, &hpet, AccessSizes{4, 8}, "hpet");

    std::mt19937_64 rng(12345);
    auto pick = [&](uint64_t n) { return rng() % n; };
    const uint8_t devfns[] = {0x00, 0x08, 0x0B, 0x18, 0x20, 0x09, 0xFF};
    const uint16_t ports[] = {0xCF8,  0xCF9,  0xCFC,  0xCFD,  0xCFE,  0xCFF,  0x600,  0x604,
                              0x608,  0xAFE0, 0xB2,   0xB3,   0xAF00, 0xAF04, 0xAF05, 0xAF08,
                              0xAE00, 0xAE08, 0xAE10, 0xAE14, 0xB100, 0xB102, 0x700,  0xC000};
    for (int i = 0; i < 20000; i++) {
        unsigned size = 1u << pick(3);
        switch (pick(6)) {
        case 0: { // config write through the ports, often to the registers that matter
            uint8_t devfn = devfns[pick(std::size(devfns))];
            unsigned off = pick(4) == 0 ? unsigned(pick(256))
                                        : unsigned(0x04 + 4 * pick(16)) ^ unsigned(pick(2) * 0x40);
            off &= 0xFF;
            unsigned sz = 1u << pick(3);
            if ((off & 3) + sz > 4) sz = 1;
            uint32_t v = pick(3) == 0 ? 0xFFFFFFFF : uint32_t(rng());
            rig.cfg_write(devfn, off, sz, v);
            break;
        }
        case 1: {
            uint16_t port = uint16_t(ports[pick(std::size(ports))] + pick(4));
            rig.out(port, size, uint32_t(rng()));
            break;
        }
        case 2: {
            uint16_t port = uint16_t(ports[pick(std::size(ports))] + pick(4));
            uint32_t v = rig.in(port, size);
            if (size < 4) CHECK(v < (1u << (8 * size)));
            break;
        }
        case 3: { // HPET register writes, biased to the live ones
            uint64_t off = pick(2) ? (pick(0x400) & ~3ull) : (0x100 + 0x20 * pick(4) + 8 * pick(2));
            uint8_t b[8];
            le_store(b, rng() & (pick(2) ? 0xFFFFull : ~0ull));
            unsigned sz = (off & 4) ? 4 : (pick(2) ? 8 : 4);
            rig.mmio.write(Hpet::kBase + off, std::span<const uint8_t>(b, sz));
            break;
        }
        case 4: {
            uint8_t b[8];
            rig.mmio.read(Hpet::kBase + (pick(0x400) & ~3ull), std::span(b, 4));
            rig.mmio.read(0xFE000000 + pick(0x1000000), std::span(b, size)); // BARs anywhere
            break;
        }
        case 5:
            clock.advance(pick(2000000));
            if (pick(50) == 0) nic.set_intx(pick(2));
            if (pick(50) == 0) other.set_intx(pick(2));
            if (pick(200) == 0) pm.press_power_button();
            if (pick(500) == 0) {
                ResetKind k = pick(2) ? ResetKind::Hard : ResetKind::PowerOn;
                for (Device* d : {(Device*)&host, (Device*)&isa, (Device*)&pm, (Device*)&nic,
                                  (Device*)&other, (Device*)&cpus, (Device*)&pcihp, (Device*)&hpet})
                    d->reset(k);
            }
            break;
        }
        // Invariants: each BAR that says it is mapped is on the bus at its address.
        for (PciDevice* d : {(PciDevice*)&nic, (PciDevice*)&other}) {
            for (unsigned s = 0; s <= PciDevice::kRomSlot; s++) {
                uint64_t base = d->mapped_base(s);
                if (base == BusMapping::kUnmapped) continue;
                Bus& bus = (s == 0) ? rig.pio : rig.mmio;
                const Bus::Region* reg = bus.find(base);
                REQUIRE(reg != nullptr);
                CHECK(reg->base == base);
            }
        }
    }
    // Whatever happened, the chips still save and load.
    StateWriter w;
    for (Device* d : {(Device*)&host, (Device*)&isa, (Device*)&pm, (Device*)&nic, (Device*)&other,
                      (Device*)&cpus, (Device*)&pcihp, (Device*)&hpet})
        d->save(w);
    StateReader r(w.data());
    for (Device* d : {(Device*)&host, (Device*)&isa, (Device*)&pm, (Device*)&nic, (Device*)&other,
                      (Device*)&cpus, (Device*)&pcihp, (Device*)&hpet})
        d->load(r);
    CHECK(r.at_end());
    CHECK(pam.calls > 0);
}
