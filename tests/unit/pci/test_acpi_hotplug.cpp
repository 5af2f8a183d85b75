// The ACPI CPU hotplug block (0xAF00) and the PCI hotplug block (0xAE00) as the DSDT uses them.
#include <doctest/doctest.h>

#include "devmodel/acpi/cpu_hotplug.hpp"
#include "devmodel/acpi/pci_hotplug.hpp"
#include "vmexit/bus.hpp"

using namespace hvm;

namespace {

struct HotplugRig {
    Bus pio{"pio"};
    AcpiCpuHotplug cpus;
    AcpiPciHotplug pcihp;
    explicit HotplugRig(std::vector<uint32_t> ids) : cpus(std::move(ids)) {
        pio.add(AcpiCpuHotplug::kPort, AcpiCpuHotplug::kLegacyLength, &cpus, AccessSizes{1, 4},
                "cpu-hotplug");
        pio.add(AcpiPciHotplug::kPort, AcpiPciHotplug::kLength, &pcihp, AccessSizes{4, 4},
                "pci-hotplug");
    }
    void out(uint16_t port, unsigned size, uint32_t v) {
        uint8_t b[4];
        le_store(std::span(b, size), v);
        pio.write(port, std::span<const uint8_t>(b, size));
    }
    uint32_t in(uint16_t port, unsigned size) {
        uint8_t b[4] = {};
        pio.read(port, std::span(b, size));
        return uint32_t(le_load(std::span<const uint8_t>(b, size)));
    }
    // docs/specs/acpi_cpu_hotplug.rst, "Enumerate CPUs present/non present CPUs".
    unsigned enumerate_present() {
        unsigned present = 0, iterator = 0;
        out(0xAF00, 4, 0);
        out(0xAF05, 1, 0);
        for (int guard = 0; guard < 1000; guard++) {
            if (in(0xAF04, 1) & AcpiCpuHotplug::kCpen) present++;
            iterator++;
            out(0xAF00, 4, iterator);
            if (in(0xAF08, 4) == 0) break;
        }
        out(0xAF00, 4, 0);
        return present;
    }
    // What QEMU's CSTA(n) does for each Processor's _STA.
    uint32_t sta(uint32_t n) {
        out(0xAF00, 4, n);
        return (in(0xAF04, 1) & AcpiCpuHotplug::kCpen) ? 0xF : 0x0;
    }
};

std::vector<uint32_t> ids(unsigned n) {
    std::vector<uint32_t> v;
    for (unsigned i = 0; i < n; i++) v.push_back(i);
    return v;
}

} // namespace

TEST_CASE("CPU hotplug starts in legacy mode: a bitmap of present APIC IDs") {
    HotplugRig r(ids(4));
    CHECK_FALSE(r.cpus.modern());
    CHECK(r.in(0xAF00, 1) == 0x0Fu);
    CHECK(r.in(0xAF01, 1) == 0u);
    CHECK(r.in(0xAF00, 4) == 0x0000000Fu);
    HotplugRig sparse({0, 2, 9});
    CHECK(sparse.in(0xAF00, 2) == 0x0205u);
    r.out(0xAF00, 1, 5); // writes other than 0 at offset 0 change nothing
    CHECK_FALSE(r.cpus.modern());
    r.out(0xAF00, 4, 0); // \_SB.CPUS._INI
    CHECK(r.cpus.modern());
}

TEST_CASE("CPU hotplug enumeration sequence finds every CPU (1 and 4 CPUs)") {
    for (unsigned n : {1u, 4u}) {
        CAPTURE(n);
        HotplugRig r(ids(n));
        r.out(0xAF00, 4, 0);
        REQUIRE(r.cpus.modern());
        CHECK(r.enumerate_present() == n);
        for (uint32_t cpu = 0; cpu < n; cpu++) CHECK(r.sta(cpu) == 0xFu);
        CHECK(r.sta(n) == 0u); // beyond the possible CPUs: not present
        CHECK(r.sta(0xFFFFFFFF) == 0u);
    }
}

TEST_CASE("CPU hotplug commands: pending event, CPU ID, _OST, eject refused") {
    HotplugRig r({0, 1, 2, 6});
    r.out(0xAF00, 4, 0);
    // Get a CPU with a pending event: none, CINS/CRMV clear, selector unchanged.
    r.out(0xAF00, 4, 2);
    r.out(0xAF05, 1, AcpiCpuHotplug::kGetNextWithEvent);
    CHECK((r.in(0xAF04, 1) & (AcpiCpuHotplug::kCins | AcpiCpuHotplug::kCrmv)) == 0u);
    CHECK(r.in(0xAF08, 4) == 2u);
    CHECK(r.cpus.selector() == 2u);
    // Arch ID of CPU 3.
    r.out(0xAF00, 4, 3);
    r.out(0xAF05, 1, AcpiCpuHotplug::kGetCpuId);
    CHECK(r.in(0xAF08, 4) == 6u);
    CHECK(r.in(0xAF00, 4) == 0u); // command data 2: upper half of the ID
    // _OST.
    r.out(0xAF05, 1, AcpiCpuHotplug::kOstEvent);
    r.out(0xAF08, 4, 0x103);
    r.out(0xAF05, 1, AcpiCpuHotplug::kOstStatus);
    r.out(0xAF08, 4, 0x80);
    CHECK(r.cpus.ost_event() == 0x103u);
    CHECK(r.cpus.ost_status() == 0x80u);
    // Eject: nothing was offered for removal; the CPU stays.
    r.out(0xAF04, 1, AcpiCpuHotplug::kCej0);
    CHECK(r.in(0xAF04, 1) == AcpiCpuHotplug::kCpen);
    // Outside the 12-byte modern block nothing decodes.
    CHECK(r.in(0xAF0C, 4) == 0xFFFFFFFFu);
    // With an out-of-range selector, writes other than the selector are dropped.
    r.out(0xAF00, 4, 99);
    r.out(0xAF05, 1, AcpiCpuHotplug::kGetCpuId);
    r.out(0xAF00, 4, 3);
    CHECK(r.in(0xAF08, 4) == 0u); // command is still _OST status: data reads 0
}

TEST_CASE("CPU hotplug reset and save/load") {
    HotplugRig r(ids(2));
    r.out(0xAF00, 4, 0);
    r.out(0xAF00, 4, 1);
    r.out(0xAF05, 1, AcpiCpuHotplug::kGetCpuId);
    StateWriter w;
    r.cpus.save(w);
    HotplugRig s(ids(2));
    StateReader in(w.data());
    s.cpus.load(in);
    CHECK(s.cpus.modern());
    CHECK(s.in(0xAF08, 4) == 1u);
    s.cpus.reset(ResetKind::Hard); // QEMU keeps the modern interface across a reboot
    CHECK(s.cpus.modern());
    CHECK(s.cpus.selector() == 0u);
    s.cpus.reset(ResetKind::PowerOn);
    CHECK_FALSE(s.cpus.modern());
    std::vector<uint8_t> bad = w.data();
    bad[4 + 16 + 4 + 4] = 2; // the mode byte (header: len, "acpi-cpu-hotplug", version)
    StateReader rb(bad);
    CHECK_THROWS_AS(s.cpus.load(rb), StateError);
}

TEST_CASE("PCI hotplug block: no events, nothing removable, bus select, acpi-index 0") {
    HotplugRig r(ids(1));
    CHECK(r.in(0xAE00, 4) == 0u); // PCIU
    CHECK(r.in(0xAE04, 4) == 0u); // PCID
    CHECK(r.in(0xAE08, 4) == 0u); // no hotplug features
    CHECK(r.in(0xAE0C, 4) == 0u); // _RMV: built-in devices only
    r.out(0xAE10, 4, 0);
    CHECK(r.in(0xAE10, 4) == 0u);
    r.out(0xAE14, 4, 3 << 3); // PIDX: slot 3
    CHECK(r.in(0xAE14, 4) == 0u);
    r.out(0xAE08, 4, 1u << 3); // _EJ0 on slot 3: refused, logged
    CHECK(r.in(0xAE0C, 4) == 0u);
    r.out(0xAE10, 4, 7);
    CHECK(r.pcihp.bus_select() == 7u);
    CHECK(r.in(0xAE10, 1) == 7u);          // a byte read returns its part of the dword
    CHECK(r.in(0xAE00, 4) == 0u);          // unknown bus: 0
    CHECK(r.in(0xAE18, 4) == 0xFFFFFFFFu); // past the block
    StateWriter w;
    r.pcihp.save(w);
    r.pcihp.reset(ResetKind::Hard);
    CHECK(r.pcihp.bus_select() == 0u);
    StateReader in(w.data());
    r.pcihp.load(in);
    CHECK(r.pcihp.bus_select() == 7u);
}
