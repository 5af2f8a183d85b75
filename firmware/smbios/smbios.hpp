// SMBIOS 2.8 tables of the `pc` machine as QEMU 7.2 serves them through fw_cfg
// (hw/smbios/smbios.c; shared/reference/pc-platform.md §1.6): `etc/smbios/smbios-tables` holds
// types 1, 3, 4 (one per socket), 16, 17 (one per 16 GiB DIMM), 19 (one per RAM range), 32 and
// 127; `etc/smbios/smbios-anchor` is the 31-byte "_SM_" entry point with table address and
// checksums left 0 for the BIOS to fill. There is no type 0: SeaBIOS adds its own.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hvm {

namespace smbios {
constexpr size_t kEntryPointSize = 31;
constexpr uint8_t kMajor = 2, kMinor = 8;
constexpr uint64_t kMaxDimmSize = 16ull << 30; // QEMU MAX_DIMM_SZ
inline constexpr const char* kAnchorFile = "etc/smbios/smbios-anchor";
inline constexpr const char* kTablesFile = "etc/smbios/smbios-tables";
} // namespace smbios

using Uuid = std::array<uint8_t, 16>; // RFC 4122 byte order (as fw_cfg key 0x02 carries it)

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex, either case). Throws UserError on bad input.
Uuid parse_uuid(std::string_view text);

// SMBIOS type 1 (System Information) strings; empty = not present.
struct SmbiosSystemInfo {
    std::string manufacturer = "QEMU";
    std::string product = "Standard PC (i440FX + PIIX, 1996)";
    std::string version = "pc-i440fx-7.2";
    std::string serial, sku, family;
    std::optional<Uuid> uuid; // -uuid or -smbios type=1,uuid=
};

// Applies one `-smbios` option value, e.g. "type=1,manufacturer=ACME,serial=42" (",," is a
// literal comma). Only type 1 is supported; anything else throws UserError with one line.
void apply_smbios_option(std::string_view spec, SmbiosSystemInfo& info);

struct SmbiosMemoryRange {
    uint64_t start = 0, size = 0;
};

struct SmbiosConfig {
    SmbiosSystemInfo system;
    std::string machine_version = "pc-i440fx-7.2"; // type 3 and type 4 "Version"
    unsigned sockets = 1, cores_per_socket = 1, threads_per_core = 1;
    uint32_t cpuid_signature = 0x663;          // CPUID.1 EAX, for type 4 "ID"
    uint32_t cpuid_features = 0x0781abfd;      // CPUID.1 EDX
    uint16_t cpu_speed_mhz = 2000;             // QEMU's type 4 max/current speed default
    uint64_t ram_size = 0;                     // whole RAM: type 16 capacity and type 17 DIMMs
    std::vector<SmbiosMemoryRange> ram_ranges; // type 19: RAM below 4 GiB, RAM above 4 GiB
};

struct SmbiosTables {
    std::vector<uint8_t> tables;
    uint16_t count = 0;           // number of structures
    uint16_t max_struct_size = 0; // largest structure including its strings
    std::array<uint8_t, smbios::kEntryPointSize> anchor{}; // as fw_cfg serves it (address 0)
};

// Throws UserError for an unusable configuration (no RAM, no CPU, a string with a NUL...).
SmbiosTables build_smbios(const SmbiosConfig& cfg);

// The entry point for tables placed at `table_addr`, both checksums filled in (for a direct boot
// with no BIOS to finish the fw_cfg anchor).
std::array<uint8_t, smbios::kEntryPointSize> smbios_entry_point(const SmbiosTables& t,
                                                                uint32_t table_addr);

} // namespace hvm
