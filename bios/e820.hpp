// The `pc` machine's physical memory map in the two forms a guest or its firmware reads it:
//  - the BIOS view (INT 15h AX=E820h, boot_params.e820_table, the multiboot mmap): what SeaBIOS
//    reports on QEMU 7.2 for the same RAM size (shared/reference/pc-platform.md §1.3), which is
//    what Linux sees when hvm boots it directly with no firmware;
//  - the fw_cfg `etc/e820` file QEMU hands to SeaBIOS: only RAM and the KVM-private pages, because
//    SeaBIOS adds its own EBDA, F-segment and flash reservations.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "vcpu/guest_memory.hpp"

namespace hvm {

// ACPI 6.x §15 "System Address Map Interfaces", address range types.
enum class E820Type : uint32_t {
    Ram = 1,
    Reserved = 2,
    Acpi = 3, // ACPI reclaimable
    Nvs = 4,
    Unusable = 5,
};

struct E820Entry {
    uint64_t addr = 0;
    uint64_t size = 0;
    E820Type type = E820Type::Ram;
    uint64_t end() const { return addr + size; }
    bool operator==(const E820Entry&) const = default;
};

// Fixed addresses of the `pc` map.
constexpr uint64_t kEbdaAddr = 0x9fc00;      // SeaBIOS's 1 KiB EBDA: base memory is 639 KiB
constexpr uint64_t kLowRamEnd = 0xa0000;     // VGA window starts here
constexpr uint64_t kBiosFsegAddr = 0xf0000;  // BIOS F-segment, reserved by SeaBIOS
constexpr uint64_t kHighRamStart = 0x100000; // 1 MiB
// QEMU target/i386/kvm/kvm.c kvm_arch_init: KVM_SET_IDENTITY_MAP_ADDR at 0xFEFFC000 (one page) and
// KVM_SET_TSS_ADDR at 0xFEFFD000 (three pages), reserved together as 16 KiB.
constexpr uint64_t kKvmIdentityMapAddr = 0xfeffc000;
constexpr uint64_t kKvmTssAddr = 0xfeffd000;
constexpr uint64_t kKvmReservedSize = 0x4000;
// SeaBIOS always reserves the top 256 KiB below 4 GiB (the BIOS flash mapping).
constexpr uint64_t kBiosFlashAddr = 0xfffc0000;
constexpr uint64_t kBiosFlashSize = 0x40000;
// QEMU >= 7.1 with an AMD-vendor CPU and phys-bits >= 40: the HyperTransport hole at 1 TiB - 12 GiB
// (hw/i386/pc.c pc_memory_init, AMD_HT_START/AMD_HT_SIZE).
constexpr uint64_t kAmdHtHoleAddr = 0xfd00000000ull;
constexpr uint64_t kAmdHtHoleSize = 0x300000000ull;
constexpr uint64_t kRamAbove4gStart = 0x100000000ull;

struct PcE820Options {
    // Report the AMD HyperTransport hole, as QEMU does for AMD-vendor CPUs with phys-bits >= 40
    // (the reference run, `-cpu qemu64`, has it). The machine knows the CPU model and decides.
    bool amd_ht_hole = false;
};

// The map SeaBIOS reports through INT 15h E820h, minus the SeaBIOS high-table zone (there is no
// SeaBIOS when hvm loads a kernel directly): sorted by address.
std::vector<E820Entry> pc_e820_map(const PcRamLayout& ram, const PcE820Options& opt = {});

// QEMU's fw_cfg `etc/e820` entries, in QEMU's insertion order: the KVM reservation (added by
// kvm_arch_init before the board exists), the AMD hole if any, RAM below 4 GiB, RAM above 4 GiB.
std::vector<E820Entry> pc_fw_cfg_e820_entries(const PcRamLayout& ram,
                                              const PcE820Options& opt = {});
// The same as the file's bytes: packed {le64 address; le64 length; le32 type} (20 bytes each).
std::vector<uint8_t> pc_fw_cfg_e820_blob(const PcRamLayout& ram, const PcE820Options& opt = {});

// Packed 20-byte form of one entry, as in boot_params.e820_table and the fw_cfg file.
constexpr size_t kE820EntrySize = 20;
void e820_entry_store(std::span<uint8_t, kE820EntrySize> out, const E820Entry& e);

// Bytes of usable RAM in the map (type Ram), for messages and sanity checks.
uint64_t e820_ram_total(std::span<const E820Entry> map);
// True when [addr, addr+size) lies inside one RAM entry.
bool e820_is_ram(std::span<const E820Entry> map, uint64_t addr, uint64_t size);

} // namespace hvm
