#include "firmware/mptable.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

#include "base/error.hpp"
#include "devmodel/device.hpp"

namespace hvm {

using namespace mptable;

namespace {

uint8_t checksum_fix(std::span<const uint8_t> bytes) {
    uint8_t sum = 0;
    for (uint8_t b : bytes) sum = static_cast<uint8_t>(sum + b);
    return static_cast<uint8_t>(-sum);
}

// Appends entries to the table in MPS order (entries sorted by type, as §4.3 asks).
class TableWriter {
  public:
    std::vector<uint8_t> bytes = std::vector<uint8_t>(kConfigHeaderSize, 0);
    uint16_t count = 0;

    std::span<uint8_t> entry(uint8_t type, size_t size) {
        size_t at = bytes.size();
        bytes.resize(at + size, 0);
        bytes[at] = type;
        count++;
        return std::span(bytes).subspan(at, size);
    }
    void processor(uint8_t apic_id, uint8_t version, uint8_t flags, uint32_t sig, uint32_t feat) {
        auto e = entry(kProcessor, kProcessorSize);
        e[1] = apic_id;
        e[2] = version;
        e[3] = flags;
        le_store(e.subspan(4, 4), sig);
        le_store(e.subspan(8, 4), feat);
    }
    void bus(uint8_t id, const char (&type)[7]) {
        auto e = entry(kBus, kOtherEntrySize);
        e[1] = id;
        memcpy(e.data() + 2, type, 6); // blank-padded, no NUL
    }
    void ioapic(uint8_t id, uint8_t version, uint32_t addr) {
        auto e = entry(kIoApic, kOtherEntrySize);
        e[1] = id;
        e[2] = version;
        e[3] = 1; // usable
        le_store(e.subspan(4, 4), addr);
    }
    // I/O (type 3) and local (type 4) interrupt entries share one layout.
    void interrupt(uint8_t type, uint8_t irq_type, uint16_t flags, uint8_t src_bus, uint8_t src_irq,
                   uint8_t dst_apic, uint8_t dst_pin) {
        auto e = entry(type, kOtherEntrySize);
        e[1] = irq_type;
        le_store(e.subspan(2, 2), flags);
        e[4] = src_bus;
        e[5] = src_irq;
        e[6] = dst_apic;
        e[7] = dst_pin;
    }
};

} // namespace

std::vector<uint8_t> build_mp_config_table(const MpTableConfig& cfg) {
    unsigned max_cpus = cfg.max_cpus ? cfg.max_cpus : cfg.cpus;
    if (cfg.cpus == 0 || max_cpus < cfg.cpus)
        throw std::invalid_argument("MP table: bad CPU count");
    // APIC IDs are 8 bits and 0xFF means "all local APICs": SeaBIOS skips the table past 255.
    if (max_cpus > 255) throw std::invalid_argument("MP table: more than 255 CPUs");

    TableWriter w;
    for (unsigned i = 0; i < max_cpus; i++) {
        uint8_t flags =
            static_cast<uint8_t>((i < cfg.cpus ? kCpuEnabled : 0) | (i == 0 ? kCpuBootstrap : 0));
        w.processor(static_cast<uint8_t>(i), cfg.lapic_version, flags, cfg.cpu_signature,
                    cfg.cpu_features);
    }
    uint8_t next_bus = 0;
    if (cfg.pci_bus) w.bus(next_bus++, "PCI   ");
    const uint8_t isa_bus = next_bus;
    w.bus(isa_bus, "ISA   ");
    w.ioapic(cfg.ioapic_id, cfg.ioapic_version, cfg.ioapic_addr);

    for (auto& p : cfg.pci_interrupts) {
        if (!cfg.pci_bus || p.device > 31 || p.pin < 1 || p.pin > 4)
            throw std::invalid_argument("MP table: bad PCI interrupt source");
        // MPS 1.4 §D.3: PCI source bus IRQ = device number in bits 6:2, INTx# (A=0) in bits 1:0.
        w.interrupt(kIoInterrupt, kIntInt, kPolarityActiveHigh, p.bus,
                    static_cast<uint8_t>((p.device << 2) | (p.pin - 1)), cfg.ioapic_id, p.irq);
    }
    for (uint8_t irq = 0; irq < 16; irq++) {
        if (cfg.pci_irq_mask & (1u << irq)) continue;
        uint8_t pin = irq;
        if (cfg.irq0_override) {
            // The PIT's IRQ0 arrives on INTIN2 (the 8259 cascade input on real boards); INTIN0
            // carries the 8259's INTR and is not an ISA IRQ, and nothing signals IRQ2.
            if (irq == 0) pin = 2;
            if (irq == 2) continue;
        }
        w.interrupt(kIoInterrupt, kIntInt, kFlagsConforming, isa_bus, irq, cfg.ioapic_id, pin);
    }
    // Virtual wire mode through the BSP's LINT0 (8259 INTR) and NMI to every CPU's LINT1.
    w.interrupt(kLocalInterrupt, kIntExtInt, kFlagsConforming, isa_bus, 0, 0, 0);
    w.interrupt(kLocalInterrupt, kIntNmi, kFlagsConforming, isa_bus, 0, kAllLocalApics, 1);

    auto& t = w.bytes;
    memcpy(t.data(), "PCMP", 4);
    le_store(std::span(t).subspan(4, 2), t.size()); // base table length
    t[6] = kSpecRev;
    memcpy(t.data() + 8, cfg.oem_id, 8);
    memcpy(t.data() + 16, cfg.product_id, 12);
    // 28: OEM table pointer, 32: OEM table size: none
    le_store(std::span(t).subspan(34, 2), w.count);
    le_store(std::span(t).subspan(36, 4), cfg.lapic_addr);
    // 40: extended table length and checksum: no extended entries
    t[7] = checksum_fix(t);
    return t;
}

std::array<uint8_t, kFloatingSize> build_mp_floating_pointer(uint32_t config_addr) {
    std::array<uint8_t, kFloatingSize> f{};
    memcpy(f.data(), "_MP_", 4);
    le_store(std::span(f).subspan(4, 4), config_addr);
    f[8] = 1; // length in 16-byte units
    f[9] = kSpecRev;
    // f[11]: feature byte 1 = 0: a configuration table is present (no default configuration).
    // f[12]: bit 7 (IMCRP) = 0: virtual wire mode, no IMCR, as SeaBIOS.
    f[10] = checksum_fix(f);
    return f;
}

MpTablePlacement place_mp_table(GuestMemory& mem, uint64_t floating_addr, uint64_t config_addr,
                                const std::vector<uint8_t>& config) {
    if (floating_addr % 16 != 0)
        throw std::invalid_argument("MP floating pointer must be 16-byte aligned");
    if (config_addr + config.size() > (1ull << 32) || floating_addr + kFloatingSize > (1ull << 32))
        throw std::invalid_argument("MP table must lie below 4 GiB");
    if (floating_addr < config_addr + config.size() && config_addr < floating_addr + kFloatingSize)
        throw std::invalid_argument("MP floating pointer overlaps the configuration table");
    auto fp = build_mp_floating_pointer(static_cast<uint32_t>(config_addr));
    if (!mem.write(config_addr, config) || !mem.write(floating_addr, fp))
        throw std::runtime_error("MP table: no writable RAM at the requested address");
    return {floating_addr, config_addr, config.size()};
}

MpTablePlacement place_mp_table_in(GuestMemory& mem, uint64_t addr, uint64_t limit,
                                   const std::vector<uint8_t>& config) {
    if (addr + kFloatingSize + config.size() > limit)
        fail("the MP table (" + std::to_string(config.size()) +
             " bytes) does not fit in the space reserved for it; use fewer CPUs (-smp)");
    return place_mp_table(mem, addr, addr + kFloatingSize, config);
}

} // namespace hvm
