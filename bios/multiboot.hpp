// Multiboot (version 0.6.96, "Multiboot Specification") kernels given to -kernel, loaded the way
// QEMU's hw/i386/multiboot.c and its multiboot.bin option ROM do, but written straight into guest
// memory instead of going through fw_cfg and an option ROM:
//  - the header is searched in the first 8 KiB, 4-byte aligned, and must have a valid checksum;
//  - without the a.out kludge (flag bit 16) the file must be an ELF32 i386 executable whose PT_LOAD
//    segments go to their physical addresses; ELF64 is refused, as QEMU refuses it;
//  - with the kludge, header_addr/load_addr/load_end_addr/bss_end_addr/entry_addr say what to load;
//  - after the kernel (page aligned) come the module list, the command lines and the boot loader
//    name, then each module (-initrd "file1 args,file2"), page aligned;
//  - the mmap (from the e820 map) is at 0x9000 and the multiboot information at 0x9500.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bios/e820.hpp"
#include "vcpu/engine.hpp"
#include "vcpu/guest_memory.hpp"

namespace hvm {

namespace multiboot {
constexpr uint32_t kHeaderMagic = 0x1badb002;
constexpr uint32_t kBootloaderMagic = 0x2badb002; // in EAX at entry
constexpr size_t kSearchEnd = 8192;               // the header lies within the first 8 KiB...
constexpr size_t kHeaderSize = 48;                // ...all 12 of its dwords (QEMU: 8192 - 48)
// Header flags (spec §3.1.2)
constexpr uint32_t kPageAlign = 1u << 0;
constexpr uint32_t kMemoryInfo = 1u << 1;
constexpr uint32_t kVideoMode = 1u << 2;
constexpr uint32_t kAoutKludge = 1u << 16;
// Information structure (spec §3.3): flags and field offsets
constexpr uint32_t kInfoMemory = 1u << 0;
constexpr uint32_t kInfoBootDevice = 1u << 1;
constexpr uint32_t kInfoCmdline = 1u << 2;
constexpr uint32_t kInfoMods = 1u << 3;
constexpr uint32_t kInfoMmap = 1u << 6;
constexpr uint32_t kInfoLoaderName = 1u << 9;
constexpr size_t kInfoFlags = 0;
constexpr size_t kInfoMemLower = 4;
constexpr size_t kInfoMemUpper = 8;
constexpr size_t kInfoBootDeviceOff = 12;
constexpr size_t kInfoCmdlineOff = 16;
constexpr size_t kInfoModsCount = 20;
constexpr size_t kInfoModsAddr = 24;
constexpr size_t kInfoMmapLength = 44;
constexpr size_t kInfoMmapAddr = 48;
constexpr size_t kInfoLoaderNameOff = 64;
constexpr size_t kInfoSize = 88;
constexpr size_t kModSize = 16;       // {mod_start, mod_end, string, reserved}
constexpr size_t kMmapEntrySize = 24; // {size = 20, base_addr, length, type}
// QEMU's addresses (MULTIBOOT_STRUCT_ADDR): mmap at 0x9000, information 0x500 bytes later.
constexpr uint64_t kMmapAddr = 0x9000;
constexpr uint64_t kInfoAddr = 0x9500;
// "first BIOS hard disk, no partition", what QEMU reports.
constexpr uint32_t kBootDevice = 0x8000ffff;
} // namespace multiboot

struct MultibootHeader {
    size_t offset = 0; // file offset of the magic
    uint32_t flags = 0;
    // a.out kludge addresses, meaningful when flags has kAoutKludge
    uint32_t header_addr = 0, load_addr = 0, load_end_addr = 0, bss_end_addr = 0, entry_addr = 0;
};

// The first header in the first 8 KiB whose checksum is right, as QEMU searches. A magic with a
// bad checksum is skipped; if `bad_checksum_at` is given it receives the offset of the first one.
std::optional<MultibootHeader> find_multiboot_header(std::span<const uint8_t> file,
                                                     size_t* bad_checksum_at = nullptr);

struct MultibootModule {
    std::string cmdline; // the whole "file args" text, as QEMU passes it
    std::vector<uint8_t> data;
};

// QEMU's -initrd syntax for multiboot: modules separated by ',' (",," is a literal comma); each is
// a file name, optionally followed by a space and arguments.
std::vector<std::string> split_multiboot_modules(const std::string& spec);
// Reads every module file named in `spec` (UserError if one cannot be read).
std::vector<MultibootModule> read_multiboot_modules(const std::string& spec);

struct MultibootConfig {
    std::string kernel_name = "kernel"; // also the first word of the kernel's command line
    std::span<const uint8_t> kernel;
    std::string cmdline;
    std::vector<MultibootModule> modules;
    std::string loader_name = "hvm";
};

struct MultibootBootInfo {
    CpuState cpu;
    MultibootHeader header;
    bool elf = false;
    uint32_t kernel_start = 0; // lowest address loaded
    uint32_t kernel_end = 0;   // end of the kernel image including bss
    uint32_t entry = 0;
    uint32_t info_area = 0; // module list, command lines, loader name (page after the kernel)
    uint32_t end = 0;       // end of the last module
    uint32_t mem_lower = 0, mem_upper = 0;              // KiB, as in the information structure
    std::vector<std::pair<uint32_t, uint32_t>> modules; // [start, end) of each module
};

// Loads a Multiboot kernel and its modules and returns the boot CPU state (EAX = 0x2BADB002,
// EBX = information structure, 32-bit flat protected mode, paging and interrupts off). Every
// address taken from the file is checked against the RAM of `e820` and against the loader's own
// structures before anything is written; violations are one-line UserErrors.
MultibootBootInfo load_multiboot(GuestMemory& mem, std::span<const E820Entry> e820,
                                 const MultibootConfig& cfg);

} // namespace hvm
