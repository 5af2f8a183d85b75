// Test doubles and a small machine for the PCI and ACPI chip tests: real PIO/MMIO Buses, the
// PciBus with its 0xCF8 window registered, an IRQ sink that records levels.
#pragma once
#include <cstdint>
#include <map>
#include <vector>

#include "devmodel/pci/pci_bus.hpp"
#include "devmodel/pci/pci_device.hpp"
#include "devmodel/pci/pci_irq_router.hpp"
#include "devmodel/platform.hpp"
#include "vmexit/bus.hpp"

namespace hvm::test {

struct FakePlatform : PlatformControl {
    int resets = 0, poweroffs = 0;
    void request_reset() override { resets++; }
    void request_poweroff() override { poweroffs++; }
    void request_exit(int) override {}
    void set_a20(bool) override {}
    bool a20() const override { return true; }
};

// Records every set_irq call and the current level of each line.
struct Lines : IrqSink {
    std::vector<std::pair<unsigned, bool>> calls;
    std::map<unsigned, bool> levels;
    std::map<unsigned, int> rises;
    void set_irq(unsigned line, bool level) override {
        calls.push_back({line, level});
        if (level && !levels[line]) rises[line]++;
        levels[line] = level;
    }
    bool level(unsigned line) { return levels[line]; }
};

// A register window that remembers the last write and answers reads with a fixed pattern.
struct Window : IoHandler {
    uint8_t pattern;
    uint64_t last_write_offset = ~0ull, last_write_value = 0;
    explicit Window(uint8_t p) : pattern(p) {}
    void io_read(uint64_t offset, std::span<uint8_t> data) override {
        for (size_t i = 0; i < data.size(); i++) data[i] = uint8_t(pattern + offset + i);
    }
    void io_write(uint64_t offset, std::span<const uint8_t> data) override {
        last_write_offset = offset;
        last_write_value = le_load(data);
    }
};

// A function with the BAR kinds the core supports: I/O 32 B, memory 4 KiB, prefetchable
// memory 1 MiB, a 64 KiB ROM, INTA#.
class TestFunction : public PciDevice {
  public:
    Window io{0x10}, mem{0x40}, fb{0x80}, rom{0xC0};
    explicit TestFunction(uint8_t pin = 1, uint16_t device_id = 0xBEEF)
        : PciDevice(PciIdentity{0x1234, device_id, 0x01, 0x020000, 0, 0x1AF4, 0x1100, pin, 0}) {
        define_bar(0, PciBar{PciBarKind::Io, 32, false, &io, AccessSizes{1, 4}, "test-io"});
        define_bar(
            1, PciBar{PciBarKind::Memory32, 0x1000, false, &mem, AccessSizes{1, 4}, "test-mem"});
        define_bar(2,
                   PciBar{PciBarKind::Memory32, 0x100000, true, &fb, AccessSizes{1, 4}, "test-fb"});
        define_rom(0x10000, &rom, "test-rom");
    }
    const char* name() const override { return "test-fn"; }
};

// PIO + MMIO buses, an IRQ recorder behind a PciIrqRouter, and the PciBus on 0xCF8.
struct PciRig {
    Bus pio{"pio"};
    Bus mmio{"mmio"};
    Lines isa;
    PciIrqRouter router{isa};
    PciBus pci{pio, mmio, router};

    PciRig() { pio.add(0xCF8, 8, &pci.config_io(), AccessSizes{1, 4}, "pci-conf"); }

    static uint32_t address(uint8_t devfn, unsigned offset, uint8_t bus = 0) {
        return 0x80000000u | uint32_t(bus) << 16 | uint32_t(devfn) << 8 | (offset & 0xFC);
    }
    void outl(uint16_t port, uint32_t v) {
        uint8_t b[4];
        le_store(b, v);
        pio.write(port, b);
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
    uint32_t cfg_read(uint8_t devfn, unsigned offset, unsigned size) {
        outl(0xCF8, address(devfn, offset));
        return in(uint16_t(0xCFC + (offset & 3)), size);
    }
    void cfg_write(uint8_t devfn, unsigned offset, unsigned size, uint32_t v) {
        outl(0xCF8, address(devfn, offset));
        out(uint16_t(0xCFC + (offset & 3)), size, v);
    }
    uint32_t mmio_read(uint64_t addr, unsigned size) {
        uint8_t b[8] = {};
        mmio.read(addr, std::span(b, size));
        return uint32_t(le_load(std::span<const uint8_t>(b, size)));
    }
};

} // namespace hvm::test
