// The Intel MultiProcessor Specification 1.4 tables (chapter 4, "MP Configuration Table") for the
// `pc` machine, with the entries SeaBIOS's src/fw/mptable.c builds on QEMU: processors, PCI and
// ISA buses, one IOAPIC, an I/O interrupt entry per ISA IRQ (IRQ0 routed to INTIN2, no entry for
// IRQ2), the PCI INTx sources, and ExtINT on LINT0 / NMI on LINT1. Non-ACPI operating systems
// (Linux with acpi=off, Windows' MPS HALs) find CPUs and the IOAPIC here.
//
// Building and placing are separate: build_mp_config_table() returns a position-independent blob
// (the configuration table holds no absolute address of itself), and place_mp_table() writes it
// together with the floating pointer structure that points at it.
//
// Difference from SeaBIOS, on purpose: SeaBIOS lists only the first logical CPU of each package
// when CPUID reports HTT, so a guest with several cores per socket sees one CPU through the MP
// table. hvm lists every CPU, so that an acpi=off guest finds all of them.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "vcpu/guest_memory.hpp"

namespace hvm {

namespace mptable {
constexpr uint8_t kSpecRev = 4; // MPS 1.4
constexpr size_t kFloatingSize = 16;
constexpr size_t kConfigHeaderSize = 44;
// Entry types (MPS 1.4 table 4-3) and sizes
constexpr uint8_t kProcessor = 0;
constexpr uint8_t kBus = 1;
constexpr uint8_t kIoApic = 2;
constexpr uint8_t kIoInterrupt = 3;
constexpr uint8_t kLocalInterrupt = 4;
constexpr size_t kProcessorSize = 20;
constexpr size_t kOtherEntrySize = 8;
// Processor entry CPU flags
constexpr uint8_t kCpuEnabled = 1u << 0;
constexpr uint8_t kCpuBootstrap = 1u << 1;
// Interrupt types (table 4-10)
constexpr uint8_t kIntInt = 0;
constexpr uint8_t kIntNmi = 1;
constexpr uint8_t kIntSmi = 2;
constexpr uint8_t kIntExtInt = 3;
// I/O interrupt flags: polarity bits 1:0, trigger mode bits 3:2 (0 = conforms to the bus)
constexpr uint16_t kPolarityActiveHigh = 1;
constexpr uint16_t kFlagsConforming = 0;
constexpr uint8_t kAllLocalApics = 0xff;
// SeaBIOS BUILD_PCI_IRQS: the ISA IRQs it keeps for PCI and leaves out of the ISA entries.
constexpr uint16_t kSeaBiosPciIrqs = (1u << 5) | (1u << 9) | (1u << 10) | (1u << 11);
// Where a direct boot puts it: the 1 KiB EBDA at 0x9FC00, which Linux scans ("the last KiB of base
// memory") and which the e820 map reserves.
constexpr uint64_t kEbdaAddr = 0x9fc00;
constexpr uint64_t kEbdaEnd = 0xa0000;
} // namespace mptable

// One PCI INTx line wired to an IOAPIC input (SeaBIOS: one entry per device and pin on bus 0).
struct MpPciInterrupt {
    uint8_t bus = 0;
    uint8_t device = 0; // 0-31
    uint8_t pin = 1;    // 1 = INTA# ... 4 = INTD# (PCI_INTERRUPT_PIN)
    uint8_t irq = 0;    // IOAPIC input (PCI_INTERRUPT_LINE as firmware programmed it)
};

struct MpTableConfig {
    unsigned cpus = 1;     // present CPUs: APIC IDs 0..cpus-1, CPU 0 is the BSP
    unsigned max_cpus = 0; // 0 = cpus; IDs cpus..max_cpus-1 are listed as disabled, as SeaBIOS
    uint8_t lapic_version = 0x14;   // KVM's and QEMU's local APIC version register
    uint32_t cpu_signature = 0x600; // CPUID.1 EAX (SeaBIOS's fallback if CPUID gives 0)
    uint32_t cpu_features = 0x201;  // CPUID.1 EDX
    uint32_t lapic_addr = 0xfee00000;
    uint8_t ioapic_id = 0; // SeaBIOS BUILD_IOAPIC_ID, and what QEMU's IOAPIC ID register holds
    uint8_t ioapic_version = 0x11;
    uint32_t ioapic_addr = 0xfec00000;
    bool irq0_override = true; // QEMU pc: fw_cfg etc/irq0-override = 1, IRQ0 -> INTIN2
    bool pci_bus = true;       // a PCI bus 0 exists (ISA is then bus 1)
    std::vector<MpPciInterrupt> pci_interrupts;
    uint16_t pci_irq_mask = mptable::kSeaBiosPciIrqs;          // ISA IRQs without an ISA entry
    char oem_id[8] = {'B', 'O', 'C', 'H', 'S', 'C', 'P', 'U'}; // SeaBIOS BUILD_CPUNAME8
    char product_id[12] = {'0', '.', '1', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
};

// The MP configuration table (header + entries, checksummed). Throws std::invalid_argument for
// 0 CPUs, more than 255, max_cpus < cpus, or a PCI entry with a bad device/pin.
std::vector<uint8_t> build_mp_config_table(const MpTableConfig& cfg);

// The 16-byte MP floating pointer structure pointing at a configuration table at `config_addr`.
std::array<uint8_t, mptable::kFloatingSize> build_mp_floating_pointer(uint32_t config_addr);

struct MpTablePlacement {
    uint64_t floating_addr = 0;
    uint64_t config_addr = 0;
    uint64_t config_size = 0;
};

// Writes the floating pointer at `floating_addr` (16-byte aligned, as the spec requires for the
// scan) and the configuration table at `config_addr`. Throws std::invalid_argument on a misaligned
// or overlapping placement and std::runtime_error if guest memory refuses the write.
MpTablePlacement place_mp_table(GuestMemory& mem, uint64_t floating_addr, uint64_t config_addr,
                                const std::vector<uint8_t>& config);

// Both structures back to back in [addr, limit): floating pointer first, table right after. Throws
// UserError when the table is too big for the area (too many CPUs for the 1 KiB EBDA).
MpTablePlacement place_mp_table_in(GuestMemory& mem, uint64_t addr, uint64_t limit,
                                   const std::vector<uint8_t>& config);

} // namespace hvm
