#include "bios/linux_boot.hpp"

#include <algorithm>
#include <vector>

#include "base/error.hpp"
#include "base/log.hpp"
#include "bios/boot_cpu.hpp"
#include "bios/loader_util.hpp"

namespace hvm {

using loader::field;
using loader::hex;
using loader::put_field;
using loader::size_text;
using namespace bzimage;

namespace {

std::string protocol_text(uint16_t v) {
    char b[16];
    snprintf(b, sizeof b, "%u.%02u", v >> 8, v & 0xff);
    return b;
}

// The version string the header points at (boot.rst "kernel_version"), if it is a sane
// NUL-terminated printable string inside the setup code.
std::string read_kernel_version(std::span<const uint8_t> file, uint64_t setup_size) {
    uint64_t ptr = field(file, kKernelVersion, 2);
    if (ptr == 0) return {};
    uint64_t off = ptr + 0x200;
    std::string s;
    for (uint64_t i = off; i < setup_size && s.size() < 256; i++) {
        uint8_t c = file[i];
        if (c == 0) return s;
        if (c < 0x20 || c > 0x7e) return {};
        s.push_back(static_cast<char>(c));
    }
    return {};
}

// The RAM entry of the map that contains 1 MiB: where the kernel, its decompression area and the
// initrd live. Returns its end, or 0 if the map has no RAM at 1 MiB.
uint64_t ram_top_above_1m(std::span<const E820Entry> e820) {
    for (auto& e : e820)
        if (e.type == E820Type::Ram && e.addr <= kLinuxKernelAddr && kLinuxKernelAddr < e.end())
            return std::min<uint64_t>(e.end(), 1ull << 32);
    return 0;
}

} // namespace

BzImageHeader parse_bzimage(std::span<const uint8_t> file, const std::string& name) {
    // The header up to cmdline_size (2.06) must be readable before anything else is looked at.
    if (file.size() < kCmdlineSize + 4)
        fail(name + ": not a bzImage (only " + std::to_string(file.size()) + " bytes)");
    if (field(file, kHeader, 4) != kHdrSMagic) fail(name + ": not a bzImage (no HdrS signature)");
    BzImageHeader h;
    h.version = static_cast<uint16_t>(field(file, kVersion, 2));
    if (h.version < kMinVersion)
        fail(name + ": Linux boot protocol " + protocol_text(h.version) +
             " is too old; hvm needs 2.06 or later (Linux 2.6.22+)");
    uint64_t boot_flag = field(file, kBootFlag, 2);
    if (boot_flag != kBootFlagMagic)
        fail(name + ": not a bzImage (boot flag " + hex(boot_flag) + ", expected 0xaa55)");

    h.setup_sects = file[kSetupSects];
    if (h.setup_sects == 0)
        h.setup_sects = 4; // boot.rst: "if this field is 0, the real value is 4"
    h.setup_size = (uint64_t(h.setup_sects) + 1) * 512;
    if (file.size() < h.setup_size)
        fail(name + ": truncated bzImage (" + std::to_string(file.size()) +
             " bytes, but its setup code alone is " + std::to_string(h.setup_size) + ")");
    // From here on every header field below 0x290 is inside the file: setup_size >= 5 * 512.

    h.loadflags = file[kLoadflags];
    if (!(h.loadflags & kLoadedHigh))
        fail(name + ": a zImage (loaded below 1 MiB); hvm boots only bzImage kernels");
    h.syssize = static_cast<uint32_t>(field(file, kSyssize, 4));
    h.kernel_size = file.size() - h.setup_size;
    if (h.syssize == 0 || uint64_t(h.syssize) * 16 > h.kernel_size)
        fail(name + ": truncated bzImage (header says " + std::to_string(uint64_t(h.syssize) * 16) +
             " bytes of kernel after the setup code, the file has " +
             std::to_string(h.kernel_size) + ")");

    // boot.rst: "The end of setup header can be calculated as follows: 0x0202 + byte value at
    // offset 0x0201". boot_params has room up to 0x290; a longer header is cut there.
    h.header_end = std::min<size_t>(kHeader + file[kJump + 1], kSetupHeaderEnd);
    if (h.header_end < kCmdlineSize + 4)
        fail(name + ": corrupt bzImage (setup header ends at " + hex(h.header_end) +
             ", before cmdline_size)");

    h.code32_start = static_cast<uint32_t>(field(file, kCode32Start, 4));
    h.initrd_addr_max = static_cast<uint32_t>(field(file, kInitrdAddrMax, 4));
    h.kernel_alignment = static_cast<uint32_t>(field(file, kKernelAlignment, 4));
    h.relocatable = file[kRelocatableKernel] != 0;
    h.cmdline_size = static_cast<uint32_t>(field(file, kCmdlineSize, 4));
    if (h.version >= 0x020c) h.xloadflags = static_cast<uint16_t>(field(file, kXloadflags, 2));
    if (h.version >= 0x020a && h.header_end >= kInitSize + 4) {
        h.pref_address = field(file, kPrefAddress, 8);
        h.init_size = static_cast<uint32_t>(field(file, kInitSize, 4));
    } else {
        h.pref_address = kLinuxKernelAddr;
    }
    if (h.relocatable &&
        (h.kernel_alignment == 0 || (h.kernel_alignment & (h.kernel_alignment - 1)) != 0))
        fail(name + ": corrupt bzImage (kernel_alignment " + hex(h.kernel_alignment) +
             " is not a power of two)");
    if (h.pref_address >= (1ull << 32) || h.pref_address + h.init_size >= (1ull << 32))
        fail(name + ": kernel wants to run at " + hex(h.pref_address) +
             ", above 4 GiB: hvm's 32-bit entry cannot boot it");
    h.kernel_version = read_kernel_version(file, h.setup_size);
    return h;
}

uint64_t linux_runtime_start(const BzImageHeader& h, uint64_t load_addr) {
    if (!h.relocatable) return h.pref_address;
    uint64_t a = std::max(load_addr, h.pref_address);
    uint64_t align = h.kernel_alignment;
    return (a + align - 1) & ~(align - 1);
}

uint64_t place_initrd(uint64_t size, uint32_t initrd_addr_max, uint64_t ram_top, uint64_t floor,
                      const std::string& name) {
    // initrd_addr_max is the address of the last byte the initrd may occupy (boot.rst).
    uint64_t limit = std::min<uint64_t>(uint64_t(initrd_addr_max) + 1, ram_top);
    uint64_t addr = size <= limit ? (limit - size) & ~(loader::kPageSize - 1) : 0;
    if (size > limit || addr < floor)
        fail(name + ": initrd of " + size_text(size) + " does not fit in guest RAM between " +
             hex(floor) + " and " + hex(limit) + " (the kernel's initrd_addr_max is " +
             hex(initrd_addr_max) + "); give the guest more memory with -m");
    return addr;
}

namespace {

// Everything both entries check before writing a byte.
struct Plan {
    BzImageHeader h;
    uint64_t ram_top = 0;
    uint64_t kernel_reserved_end = 0;
    uint64_t initrd_addr = 0;
};

Plan plan_linux(std::span<const E820Entry> e820, const LinuxBootConfig& cfg) {
    Plan p;
    p.h = parse_bzimage(cfg.kernel, cfg.kernel_name);
    const BzImageHeader& h = p.h;
    p.ram_top = ram_top_above_1m(e820);
    uint64_t kernel_end = kLinuxKernelAddr + h.kernel_size;
    uint64_t runtime = linux_runtime_start(h, kLinuxKernelAddr);
    p.kernel_reserved_end = std::max(kernel_end, runtime + h.init_size);
    if (p.kernel_reserved_end > p.ram_top)
        fail(cfg.kernel_name + ": the kernel needs guest RAM up to " + hex(p.kernel_reserved_end) +
             " (" + size_text(h.kernel_size) + " image, " + size_text(h.init_size) +
             " to decompress at " + hex(runtime) + "), but RAM above 1 MiB ends at " +
             hex(p.ram_top) + "; give the guest more memory with -m");
    if (cfg.cmdline.size() > h.cmdline_size)
        fail(cfg.kernel_name + ": kernel command line is " + std::to_string(cfg.cmdline.size()) +
             " bytes; this kernel accepts at most " + std::to_string(h.cmdline_size));
    if (cfg.cmdline.find('\0') != std::string::npos)
        fail("-append: the kernel command line contains a NUL byte");
    if (kLinuxCmdlineAddr + cfg.cmdline.size() + 1 > kLinuxCmdlineLimit)
        fail(cfg.kernel_name + ": kernel command line of " + std::to_string(cfg.cmdline.size()) +
             " bytes does not fit below 640 KiB");
    if (cfg.has_initrd)
        p.initrd_addr = place_initrd(cfg.initrd.size(), h.initrd_addr_max, p.ram_top,
                                     p.kernel_reserved_end, cfg.initrd_name);
    return p;
}

// The fields every loader writes into the setup header (boot.rst "DETAILS OF HEADER FIELDS",
// fields of type "write"), in a copy of the header laid out at its file offsets.
void patch_header(std::span<uint8_t> hdr, const Plan& p, const LinuxBootConfig& cfg) {
    hdr[kTypeOfLoader] = kLoaderIdQemu;
    put_field(hdr, kCmdLinePtr, 4, kLinuxCmdlineAddr);
    put_field(hdr, kRamdiskImage, 4, cfg.has_initrd ? p.initrd_addr : 0);
    put_field(hdr, kRamdiskSize, 4, cfg.has_initrd ? cfg.initrd.size() : 0);
    put_field(hdr, kCode32Start, 4, kLinuxKernelAddr);
    put_field(hdr, kSetupData, 8, 0); // no setup_data chain
}

} // namespace

namespace {

void check_low_ram(std::span<const E820Entry> e820, uint64_t addr, uint64_t size,
                   const char* what) {
    if (!e820_is_ram(e820, addr, size))
        throw std::runtime_error(std::string("linux loader: no RAM for the ") + what + " at " +
                                 hex(addr) + " in the memory map");
}

void write_cmdline(GuestMemory& mem, const std::string& cmdline) {
    std::vector<uint8_t> bytes(cmdline.begin(), cmdline.end());
    bytes.push_back(0);
    loader::copy_to_guest(mem, kLinuxCmdlineAddr, bytes, "kernel command line");
}

void write_kernel_and_initrd(GuestMemory& mem, const Plan& p, const LinuxBootConfig& cfg) {
    loader::copy_to_guest(mem, kLinuxKernelAddr, cfg.kernel.subspan(p.h.setup_size), "kernel");
    if (cfg.has_initrd) loader::copy_to_guest(mem, p.initrd_addr, cfg.initrd, "initrd");
}

LinuxBootInfo info_for(const Plan& p, const LinuxBootConfig& cfg) {
    LinuxBootInfo info;
    info.header = p.h;
    info.cmdline_addr = kLinuxCmdlineAddr;
    info.kernel_addr = kLinuxKernelAddr;
    info.kernel_size = p.h.kernel_size;
    info.kernel_reserved_end = p.kernel_reserved_end;
    if (cfg.has_initrd) {
        info.initrd_addr = p.initrd_addr;
        info.initrd_size = cfg.initrd.size();
    }
    return info;
}

// boot.rst "32-bit BOOT PROTOCOL": zero page with the setup header copied in and the e820 map,
// then a jump to the protected-mode kernel with ESI = zero page and EBP/EDI/EBX = 0.
LinuxBootInfo load_protected32(GuestMemory& mem, std::span<const E820Entry> e820,
                               const LinuxBootConfig& cfg, const Plan& p) {
    const BzImageHeader& h = p.h;
    if (e820.size() > kE820MaxEntries)
        throw std::invalid_argument("linux loader: more than 128 e820 entries");
    check_low_ram(e820, kBootGdtAddr, kBootGdtLimit + 1, "boot GDT");
    check_low_ram(e820, kLinuxZeroPageAddr, kZeroPageSize, "zero page");
    check_low_ram(e820, kLinuxCmdlineAddr, cfg.cmdline.size() + 1, "command line");

    std::vector<uint8_t> zp(kZeroPageSize, 0);
    std::copy(cfg.kernel.begin() + kSetupSects, cfg.kernel.begin() + h.header_end,
              zp.begin() + kSetupSects);
    patch_header(zp, p, cfg);
    // The kernel must load its own segments: boot.rst allows KEEP_SEGMENTS only for loaders that
    // set up __BOOT_CS/__BOOT_DS-compatible segments themselves; say we did not.
    zp[kLoadflags] &= static_cast<uint8_t>(~kKeepSegments);
    if (cfg.acpi_rsdp_addr && h.version >= 0x020e)
        put_field(zp, kAcpiRsdpAddr, 8, cfg.acpi_rsdp_addr);
    zp[kE820Entries] = static_cast<uint8_t>(e820.size());
    for (size_t i = 0; i < e820.size(); i++)
        e820_entry_store(std::span<uint8_t, kE820EntrySize>(
                             zp.data() + kE820Table + i * kE820EntrySize, kE820EntrySize),
                         e820[i]);

    write_boot_gdt(mem);
    write_bios_data_area(mem);
    loader::copy_to_guest(mem, kLinuxZeroPageAddr, zp, "zero page");
    write_cmdline(mem, cfg.cmdline);
    write_kernel_and_initrd(mem, p, cfg);

    LinuxBootInfo info = info_for(p, cfg);
    info.zero_page_addr = kLinuxZeroPageAddr;
    info.cpu = flat_protected_mode_state();
    info.cpu.rip = kLinuxKernelAddr; // code32_start, which we set to where we put the kernel
    info.cpu.gpr[RSI] = kLinuxZeroPageAddr;
    return info;
}

// The 16-bit entry as QEMU's linuxboot option ROM performs it (hw/i386/x86.c x86_load_linux for
// a protocol >= 2.02 bzImage): setup code at 0x10000, command line at 0x20000, heap up to 0xFE00,
// then a far jump to setup+0x200 with all data segments = the setup segment.
constexpr uint64_t kRealModeHeapEnd = kLinuxCmdlineAddr - kLinuxRealModeAddr - 0x200;

LinuxBootInfo load_realmode16(GuestMemory& mem, std::span<const E820Entry> e820,
                              const LinuxBootConfig& cfg, const Plan& p) {
    const BzImageHeader& h = p.h;
    if (h.setup_size > kRealModeHeapEnd)
        fail(cfg.kernel_name + ": setup code of " + std::to_string(h.setup_size) +
             " bytes does not fit below the real-mode heap end (" + hex(kRealModeHeapEnd) + ")");
    check_low_ram(e820, kLinuxRealModeAddr, kLinuxCmdlineAddr - kLinuxRealModeAddr, "setup code");
    check_low_ram(e820, kLinuxCmdlineAddr, cfg.cmdline.size() + 1, "command line");

    std::vector<uint8_t> setup(cfg.kernel.begin(), cfg.kernel.begin() + h.setup_size);
    patch_header(setup, p, cfg);
    setup[kLoadflags] |= kCanUseHeap;
    put_field(setup, kHeapEndPtr, 2, kRealModeHeapEnd);

    loader::copy_to_guest(mem, kLinuxRealModeAddr, setup, "setup code");
    write_cmdline(mem, cfg.cmdline);
    write_kernel_and_initrd(mem, p, cfg);

    LinuxBootInfo info = info_for(p, cfg);
    info.setup_addr = kLinuxRealModeAddr;
    CpuState s = reset_cpu_state(0);
    for (auto& g : s.gpr) g = 0;
    const uint16_t seg = kLinuxRealModeAddr >> 4;
    for (unsigned r : {ES, SS, DS, FS, GS})
        s.seg[r] = Segment{kLinuxRealModeAddr, 0xffff, seg, 3, 1, 0, 1, 0, 0, 0, 0, 0};
    // boot.rst: "jump to seg+0x20, 0", i.e. the code right after the 512-byte boot sector.
    s.seg[CS] = Segment{kLinuxRealModeAddr + 0x200,
                        0xffff,
                        static_cast<uint16_t>(seg + 0x20),
                        0xb,
                        1,
                        0,
                        1,
                        0,
                        0,
                        0,
                        0,
                        0};
    s.rip = 0;
    s.gpr[RSP] = kLinuxCmdlineAddr - kLinuxRealModeAddr - 0x10; // top of the setup segment
    s.rflags = 0x2;                                             // interrupts off
    s.cr0 = 0x10; // ET only: the BIOS that ran before us left caches enabled
    info.cpu = s;
    return info;
}

} // namespace

LinuxBootInfo load_linux(GuestMemory& mem, std::span<const E820Entry> e820,
                         const LinuxBootConfig& cfg) {
    Plan p = plan_linux(e820, cfg);
    std::string what = cfg.kernel_name;
    if (!p.h.kernel_version.empty()) what += " (" + p.h.kernel_version + ")";
    std::string initrd = cfg.has_initrd
                             ? size_text(cfg.initrd.size()) + " initrd at " + hex(p.initrd_addr)
                             : "no initrd";
    LOG_INFO("linux: %s, boot protocol %u.%02u, %s at 0x%llx, %s, %s entry", what.c_str(),
             p.h.version >> 8, p.h.version & 0xff, size_text(p.h.kernel_size).c_str(),
             static_cast<unsigned long long>(kLinuxKernelAddr), initrd.c_str(),
             cfg.entry == LinuxEntry::RealMode16 ? "16-bit" : "32-bit");
    if (cfg.entry == LinuxEntry::RealMode16) return load_realmode16(mem, e820, cfg, p);
    return load_protected32(mem, e820, cfg, p);
}

} // namespace hvm
