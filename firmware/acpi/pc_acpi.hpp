// The ACPI tables of the `pc` machine as QEMU 7.2 builds them for SeaBIOS
// (shared/reference/pc-platform.md §1.5, §2): FACS, DSDT (revision 1), FACP (revision 1), APIC,
// HPET, WAET and RSDT concatenated in `etc/acpi/tables`, a 20-byte ACPI 1.0 RSDP in
// `etc/acpi/rsdp`, and the `etc/table-loader` script that tells the firmware where to put them and
// which pointers and checksums to patch. The tables are described by PcAcpiConfig, the machine's
// actual configuration; nothing in them depends on guest activity, so hvm builds them once at
// startup (QEMU rebuilds lazily on the first read, which only matters when firmware moves PCI
// windows; hvm's windows are fixed by the RAM size, as SeaBIOS leaves them on QEMU).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/acpi/aml.hpp"
#include "firmware/acpi/table_loader.hpp"

namespace hvm {

namespace acpi {
// Fixed addresses of the `pc` platform that the tables describe.
constexpr uint16_t kPmBase = 0x600;    // PIIX4 PM block, as SeaBIOS relocates it with a loader
constexpr uint16_t kGpe0Base = 0xAFE0; // PIIX4 GPE0 (QEMU's piix4 ACPI_GPE0 block)
constexpr uint16_t kGpe0Length = 4;    // STS 2 bytes, EN 2 bytes
constexpr uint16_t kPciHotplugBase = 0xAE00;
constexpr uint16_t kPciHotplugLength = 0x18;
constexpr uint16_t kCpuHotplugBase = 0xAF00; // QEMU docs/specs/acpi_cpu_hotplug.rst
constexpr uint16_t kCpuHotplugLength = 0x0C;
constexpr uint16_t kFwCfgIoBase = 0x510;
constexpr uint16_t kFwCfgIoLength = 0x0C; // selector, data and DMA address registers
constexpr uint16_t kDebugconPort = 0x402; // the DSDT's DBUG method writes here
constexpr uint8_t kSciIrq = 9;            // PIIX4 PM SCI, hard-wired
constexpr uint32_t kLapicAddr = 0xFEE00000;
constexpr uint32_t kIoapicAddr = 0xFEC00000;
constexpr uint8_t kIoapicId = 0; // QEMU ACPI_BUILD_IOAPIC_ID
constexpr uint32_t kHpetAddr = 0xFED00000;
constexpr uint32_t kHpetLength = 0x400;
constexpr uint32_t kHpetBlockId = 0x8086A201;          // the HPET's GCAP_ID low dword (§4.3)
constexpr uint32_t kPciHoleEnd = 0xFEBFFFFF;           // 32-bit PCI window ends below the IOAPIC
constexpr uint64_t kPciHole64DefaultSize = 1ull << 31; // QEMU DEFAULT_PCI_HOLE64_SIZE
constexpr uint64_t kRamAbove4gBase = 1ull << 32;
constexpr size_t kTablesBlobAlign = 0x20000; // QEMU ACPI_BUILD_TABLE_SIZE: etc/acpi/tables size
constexpr size_t kLoaderBlobAlign = 0x1000;  // QEMU ACPI_BUILD_ALIGN_SIZE: etc/table-loader size
constexpr size_t kHeaderSize = 36;
constexpr size_t kChecksumOffset = 9;
// fw_cfg file names
inline constexpr const char* kTablesFile = "etc/acpi/tables";
inline constexpr const char* kRsdpFile = "etc/acpi/rsdp";
inline constexpr const char* kLoaderFile = "etc/table-loader";
} // namespace acpi

struct PcAcpiConfig {
    // APIC IDs of every possible CPU (ACPI processor UID = index). The first `present_cpus` are
    // present; the rest are hot-pluggable slots (MADT entries with the enabled bit clear).
    std::vector<uint32_t> apic_ids{0};
    unsigned present_cpus = 1;
    uint64_t ram_below_4g = 0; // top of RAM below 4 GiB: the 32-bit PCI window starts here
    uint64_t ram_above_4g = 0; // the 64-bit window starts above this RAM
    uint64_t pci_hole64_size = acpi::kPciHole64DefaultSize;
    // PCI slots on bus 0 holding a device that cannot be hot-unplugged (QEMU leaves _SUN/_EJ0 out
    // for them): 00 host bridge, 01 PIIX3, 02 VGA. Every other slot is an ejectable/empty slot.
    uint32_t fixed_pci_slots = 0x7;
    bool hpet = true;          // HPET table and \_SB.HPET (QEMU -no-hpet drops both)
    bool com1 = true;          // COM1 at 0x3F8 / IRQ 4
    bool fdc = false;          // FDC0 with one 2.88 MB drive, as QEMU's default floppy controller
    bool smm = false;          // with SMM, FADT SMI_CMD 0xB2 / ACPI_ENABLE 0xF1 / ACPI_DISABLE 0xF0
    bool irq0_override = true; // MADT ISO IRQ0 -> GSI 2 (fw_cfg etc/irq0-override)
    bool s3 = true, s4 = true; // \_S3 / \_S4 (QEMU disable_s3/disable_s4 = 0)
};

// Validates the configuration (CPU count 1..255 and APIC IDs below 255, present <= possible, a
// RAM top below the PCI hole end); throws UserError with one line otherwise.
void validate_pc_acpi_config(const PcAcpiConfig& cfg);

// Individual tables, headers filled in and the checksum byte left 0 (the loader computes it).
std::vector<uint8_t> build_dsdt(const PcAcpiConfig& cfg);
std::vector<uint8_t> build_facs();
std::vector<uint8_t> build_fadt(const PcAcpiConfig& cfg, uint32_t facs_addr, uint32_t dsdt_addr);
std::vector<uint8_t> build_madt(const PcAcpiConfig& cfg);
std::vector<uint8_t> build_hpet_table();
std::vector<uint8_t> build_waet();
std::vector<uint8_t> build_rsdt(const std::vector<uint32_t>& entries);
std::vector<uint8_t> build_rsdp(uint32_t rsdt_addr);

// Everything the firmware gets through fw_cfg.
struct PcAcpiBlobs {
    std::vector<uint8_t> tables; // etc/acpi/tables (padded to 128 KiB)
    std::vector<uint8_t> rsdp;   // etc/acpi/rsdp (20 bytes)
    std::vector<uint8_t> loader; // etc/table-loader (padded to 4 KiB)
    struct Placement {
        std::string signature;
        uint32_t offset, length;
    };
    std::vector<Placement> layout; // where each table sits inside `tables`
};
PcAcpiBlobs build_pc_acpi(const PcAcpiConfig& cfg);

// A table: the 36-byte header (QEMU's OEM "BOCHS ", table ID "BXPC    ", creator "BXPC" 1) with
// the checksum left 0, then `body`.
std::vector<uint8_t> acpi_table(std::string_view signature, uint8_t revision,
                                std::span<const uint8_t> body);

// Sets the checksum byte of an ACPI table (header at offset 0) so its bytes sum to 0.
void acpi_fix_checksum(std::vector<uint8_t>& table);

} // namespace hvm
