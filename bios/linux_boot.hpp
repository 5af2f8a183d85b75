// Direct Linux boot of a bzImage (-kernel/-initrd/-append), per the kernel's
// Documentation/x86/boot.rst ("The Linux/x86 Boot Protocol") and zero-page.rst.
//
// Default entry: the 32-bit boot protocol. hvm has no BIOS in memory when it boots a kernel
// directly, and the kernel's 16-bit setup code calls the BIOS (INT 10h, 15h E820, 16h...), so the
// only entry that works on its own is the 32-bit one: the loader builds `struct boot_params` (the
// "zero page") itself, with the e820 map, and enters the protected-mode kernel at code32_start
// with ESI pointing at it. This is what QEMU's PVH path, Firecracker and cloud-hypervisor do.
// The 16-bit entry (what QEMU's linuxboot option ROM does after SeaBIOS has run) is offered as
// LinuxEntry::RealMode16 for a machine that has a BIOS already initialised in guest memory.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "bios/e820.hpp"
#include "vcpu/engine.hpp"
#include "vcpu/guest_memory.hpp"

namespace hvm {

// Offsets of the real-mode kernel header in the image and in boot_params (boot.rst "THE REAL-MODE
// KERNEL HEADER"); the header is at the same offset in both.
namespace bzimage {
constexpr size_t kSetupSects = 0x1f1;        // u8, 0 means 4
constexpr size_t kSyssize = 0x1f4;           // u32, 16-byte paragraphs of protected-mode code
constexpr size_t kVidMode = 0x1fa;           // u16
constexpr size_t kBootFlag = 0x1fe;          // u16, 0xAA55
constexpr size_t kJump = 0x200;              // u16; its second byte gives the header length
constexpr size_t kHeader = 0x202;            // u32 "HdrS"
constexpr size_t kVersion = 0x206;           // u16 boot protocol version
constexpr size_t kKernelVersion = 0x20e;     // u16, pointer - 0x200 to the version string
constexpr size_t kTypeOfLoader = 0x210;      // u8
constexpr size_t kLoadflags = 0x211;         // u8
constexpr size_t kCode32Start = 0x214;       // u32
constexpr size_t kRamdiskImage = 0x218;      // u32
constexpr size_t kRamdiskSize = 0x21c;       // u32
constexpr size_t kHeapEndPtr = 0x224;        // u16 (2.01+)
constexpr size_t kCmdLinePtr = 0x228;        // u32 (2.02+)
constexpr size_t kInitrdAddrMax = 0x22c;     // u32 (2.03+)
constexpr size_t kKernelAlignment = 0x230;   // u32 (2.05+)
constexpr size_t kRelocatableKernel = 0x234; // u8 (2.05+)
constexpr size_t kMinAlignment = 0x235;      // u8 (2.10+)
constexpr size_t kXloadflags = 0x236;        // u16 (2.12+)
constexpr size_t kCmdlineSize = 0x238;       // u32 (2.06+)
constexpr size_t kSetupData = 0x250;         // u64 (2.09+)
constexpr size_t kPrefAddress = 0x258;       // u64 (2.10+)
constexpr size_t kInitSize = 0x260;          // u32 (2.10+)

constexpr uint32_t kHdrSMagic = 0x53726448; // "HdrS"
constexpr uint16_t kBootFlagMagic = 0xaa55;
constexpr uint16_t kMinVersion = 0x0206; // cmdline_size exists from 2.06 (Linux 2.6.22)

// loadflags
constexpr uint8_t kLoadedHigh = 1u << 0;
constexpr uint8_t kKeepSegments = 1u << 6;
constexpr uint8_t kCanUseHeap = 1u << 7;
// xloadflags
constexpr uint16_t kXlfKernel64 = 1u << 0;
constexpr uint16_t kXlfCanBeLoadedAbove4g = 1u << 1;

// Documentation/x86/boot.rst "Assigned boot loader IDs": 0xB is QEMU; hvm reports itself as the
// same kind of loader, revision 0, as QEMU's x86_load_linux does.
constexpr uint8_t kLoaderIdQemu = 0xb0;

// struct boot_params (zero-page.rst)
constexpr size_t kZeroPageSize = 0x1000;
constexpr size_t kAcpiRsdpAddr = 0x070;   // u64 (2.14+)
constexpr size_t kE820Entries = 0x1e8;    // u8
constexpr size_t kSetupHeaderEnd = 0x290; // boot_params.edd_mbr_sig_buffer starts here
constexpr size_t kE820Table = 0x2d0;      // 128 x 20 bytes
constexpr size_t kE820MaxEntries = 128;
} // namespace bzimage

// The fields of a bzImage's setup header a loader uses, validated.
struct BzImageHeader {
    uint16_t version = 0;     // boot protocol, e.g. 0x020f
    unsigned setup_sects = 0; // with "0 means 4" applied
    uint64_t setup_size = 0;  // (setup_sects + 1) * 512: boot sector + real-mode setup
    uint32_t syssize = 0;     // protected-mode code, 16-byte paragraphs
    uint64_t kernel_size = 0; // protected-mode bytes in the file (all of it after setup)
    uint8_t loadflags = 0;
    uint16_t xloadflags = 0; // 0 before protocol 2.12
    uint32_t code32_start = 0;
    uint32_t initrd_addr_max = 0;  // last byte the initrd may occupy
    uint32_t kernel_alignment = 0; // meaningful when relocatable
    bool relocatable = false;
    uint32_t cmdline_size = 0;  // longest command line, without its NUL
    uint64_t pref_address = 0;  // 0x100000 before protocol 2.10
    uint32_t init_size = 0;     // 0 (unknown) before protocol 2.10
    size_t header_end = 0;      // end offset of the setup header (0x202 + byte at 0x201)
    std::string kernel_version; // the kernel's version string, if the header points at one
};

// Parses and validates the setup header. `name` (the file name) starts every error message.
// Throws UserError for a file that is too short, has no "HdrS", no 0xAA55 boot flag, a boot
// protocol older than 2.06, no LOADED_HIGH (a zImage), or is shorter than the header says.
BzImageHeader parse_bzimage(std::span<const uint8_t> file, const std::string& name);

// The address of the first byte the kernel runs from once it has moved itself (boot.rst, "the
// kernel runtime start address"): a relocatable kernel aligns its load address up to
// kernel_alignment but never below pref_address; any other kernel runs at pref_address.
uint64_t linux_runtime_start(const BzImageHeader& h, uint64_t load_addr);

// Where the initrd goes: the highest page-aligned address at which all of it lies at or below
// `initrd_addr_max` (inclusive) and below `ram_top`, and not below `floor` (the end of what the
// kernel needs). Throws UserError naming `name` when it does not fit.
uint64_t place_initrd(uint64_t size, uint32_t initrd_addr_max, uint64_t ram_top, uint64_t floor,
                      const std::string& name);

enum class LinuxEntry {
    Protected32, // default: 32-bit boot protocol, no BIOS needed
    RealMode16,  // 16-bit setup entry: needs a BIOS already running in guest memory
};

struct LinuxBootConfig {
    std::string kernel_name = "kernel";
    std::span<const uint8_t> kernel;
    bool has_initrd = false;
    std::string initrd_name = "initrd";
    std::span<const uint8_t> initrd;
    std::string cmdline;
    LinuxEntry entry = LinuxEntry::Protected32;
    // Physical address of the ACPI RSDP, given to protocol 2.14+ kernels in boot_params (0: none,
    // the kernel scans the EBDA and 0xE0000-0xFFFFF as usual).
    uint64_t acpi_rsdp_addr = 0;
};

// Guest-physical layout of a direct Linux boot.
constexpr uint64_t kLinuxZeroPageAddr = 0x7000;    // boot_params (32-bit entry)
constexpr uint64_t kLinuxRealModeAddr = 0x10000;   // setup code (16-bit entry), as QEMU
constexpr uint64_t kLinuxCmdlineAddr = 0x20000;    // as QEMU: real_addr + 64 KiB
constexpr uint64_t kLinuxCmdlineLimit = kEbdaAddr; // the command line must end below the EBDA
constexpr uint64_t kLinuxKernelAddr = 0x100000;    // protected-mode kernel, as QEMU and GRUB

struct LinuxBootInfo {
    CpuState cpu; // the boot CPU's initial state
    BzImageHeader header;
    uint64_t zero_page_addr = 0; // 32-bit entry only
    uint64_t setup_addr = 0;     // 16-bit entry only
    uint64_t cmdline_addr = 0;
    uint64_t kernel_addr = 0;
    uint64_t kernel_size = 0;
    uint64_t kernel_reserved_end = 0; // end of the kernel's image and decompression area
    uint64_t initrd_addr = 0;
    uint64_t initrd_size = 0;
};

// Loads the kernel, initrd and command line into guest memory and returns the boot CPU state.
// `e820` is the machine's memory map (pc_e820_map); for the 32-bit entry it is also what the
// kernel gets in boot_params. Everything is checked against the map's RAM before anything is
// written; user-caused problems (bad file, too little RAM, command line too long, initrd too big)
// throw UserError.
LinuxBootInfo load_linux(GuestMemory& mem, std::span<const E820Entry> e820,
                         const LinuxBootConfig& cfg);

} // namespace hvm
