#include "bios/multiboot.hpp"

#include <algorithm>
#include <cstdint>

#include "base/error.hpp"
#include "base/log.hpp"
#include "bios/boot_cpu.hpp"
#include "bios/elf32.hpp"
#include "bios/image_file.hpp"
#include "bios/loader_util.hpp"

namespace hvm {

using loader::field;
using loader::hex;
using loader::page_align_up;
using loader::put_field;
using namespace multiboot;

std::optional<MultibootHeader> find_multiboot_header(std::span<const uint8_t> file,
                                                     size_t* bad_checksum_at) {
    bool bad_seen = false;
    size_t end = std::min(file.size(), kSearchEnd);
    // QEMU looks at offsets i < 8192 - 48 only.
    for (size_t i = 0; i + kHeaderSize < kSearchEnd && i + 12 <= end; i += 4) {
        if (field(file, i, 4) != kHeaderMagic) continue;
        uint32_t flags = static_cast<uint32_t>(field(file, i + 4, 4));
        uint32_t checksum = static_cast<uint32_t>(field(file, i + 8, 4));
        if (static_cast<uint32_t>(kHeaderMagic + flags + checksum) != 0) {
            if (bad_checksum_at && !bad_seen) *bad_checksum_at = i;
            bad_seen = true;
            continue;
        }
        MultibootHeader h;
        h.offset = i;
        h.flags = flags;
        // The a.out kludge fields; a file too short to hold them is caught by the loader.
        auto opt = [&](size_t off) -> uint32_t {
            return i + off + 4 <= file.size() ? static_cast<uint32_t>(field(file, i + off, 4)) : 0;
        };
        h.header_addr = opt(12);
        h.load_addr = opt(16);
        h.load_end_addr = opt(20);
        h.bss_end_addr = opt(24);
        h.entry_addr = opt(28);
        return h;
    }
    return std::nullopt;
}

std::vector<std::string> split_multiboot_modules(const std::string& spec) {
    // QEMU's get_opt_value(): ',' ends a value, ",," stands for one comma.
    std::vector<std::string> out;
    std::string cur;
    for (size_t i = 0; i < spec.size(); i++) {
        if (spec[i] == ',') {
            if (i + 1 < spec.size() && spec[i + 1] == ',') {
                cur.push_back(',');
                i++;
                continue;
            }
            out.push_back(cur);
            cur.clear();
            continue;
        }
        cur.push_back(spec[i]);
    }
    if (!spec.empty()) out.push_back(cur);
    return out;
}

std::vector<MultibootModule> read_multiboot_modules(const std::string& spec) {
    std::vector<MultibootModule> mods;
    for (auto& item : split_multiboot_modules(spec)) {
        std::string file = item.substr(0, item.find(' '));
        if (file.empty()) fail("-initrd: empty multiboot module name in '" + spec + "'");
        mods.push_back({item, read_image_file(file, "multiboot module")});
    }
    return mods;
}

namespace {

struct Range {
    uint64_t start, end;
    bool overlaps(uint64_t s, uint64_t e) const { return s < end && start < e; }
};

// The loader's own structures in low memory, which no part of the kernel may cover.
constexpr Range kGdtRange{kBootGdtAddr, kBootGdtAddr + kBootGdtLimit + 1};
constexpr Range kInfoRange{kMmapAddr, kInfoAddr + kInfoSize};

void check_placement(std::span<const E820Entry> e820, uint64_t start, uint64_t end,
                     const std::string& what) {
    if (end > (1ull << 32))
        fail(what + " (" + hex(start) + "-" + hex(end) + ") does not fit below 4 GiB");
    if (end > start && !e820_is_ram(e820, start, end - start))
        fail(what + " (" + hex(start) + "-" + hex(end) +
             ") is not inside guest RAM; give the guest more memory with -m");
    if (kInfoRange.overlaps(start, end))
        fail(what + " (" + hex(start) + "-" + hex(end) +
             ") overlaps the multiboot information at " + hex(kInfoRange.start) + "-" +
             hex(kInfoRange.end));
    if (kGdtRange.overlaps(start, end))
        fail(what + " (" + hex(start) + "-" + hex(end) + ") overlaps the boot GDT at " +
             hex(kGdtRange.start));
}

// One piece of the image to copy: `filesz` bytes of the file at `offset` go to `addr`, and the
// rest up to `memsz` is cleared.
struct Piece {
    uint64_t addr;
    uint64_t offset;
    uint64_t filesz;
    uint64_t memsz;
};

struct KernelPlan {
    std::vector<Piece> pieces;
    uint64_t start = 0, end = 0, entry = 0;
    bool elf = false;
};

KernelPlan plan_elf(std::span<const uint8_t> file, const std::string& name) {
    // QEMU checks e_machine, which sits at the same offset in ELF32 and ELF64.
    if (is_elf64(file) ||
        (is_elf(file) && file.size() >= 20 && field(file, elf::kEMachine, 2) == elf::kEmX86_64))
        fail(name + ": 64-bit ELF multiboot kernels cannot be loaded (QEMU refuses them too); "
                    "link it as ELF32 or use the a.out kludge");
    if (!is_elf(file))
        fail(name + ": multiboot header without the a.out kludge (flag 16), but not an ELF file");
    Elf32Image img = parse_elf32(file, name);
    KernelPlan k;
    k.elf = true;
    k.entry = img.entry;
    k.start = ~0ull;
    for (auto& s : img.segments) {
        k.pieces.push_back({s.paddr, s.offset, s.filesz, s.memsz});
        k.start = std::min<uint64_t>(k.start, s.paddr);
        k.end = std::max<uint64_t>(k.end, uint64_t(s.paddr) + s.memsz);
    }
    return k;
}

// Spec §3.1.3 "The address fields of Multiboot header", with QEMU's validity checks.
KernelPlan plan_aout(std::span<const uint8_t> file, const MultibootHeader& h,
                     const std::string& name) {
    if (h.offset + 32 > file.size())
        fail(name + ": multiboot header at " + hex(h.offset) +
             " is cut off before its address fields");
    if (h.header_addr < h.load_addr)
        fail(name + ": multiboot header_addr " + hex(h.header_addr) + " is below load_addr " +
             hex(h.load_addr));
    if (h.header_addr - h.load_addr > h.offset)
        fail(name + ": multiboot load_addr " + hex(h.load_addr) +
             " would start before the beginning of the file");
    uint64_t text_offset = h.offset - (h.header_addr - h.load_addr);
    uint64_t load_size;
    if (h.load_end_addr) {
        if (h.load_end_addr < h.load_addr)
            fail(name + ": multiboot load_end_addr " + hex(h.load_end_addr) +
                 " is below load_addr " + hex(h.load_addr));
        load_size = h.load_end_addr - h.load_addr;
    } else {
        load_size = file.size() - text_offset; // "the whole file from load_addr's offset"
    }
    if (text_offset + load_size > file.size())
        fail(name + ": multiboot image (" + hex(load_size) + " bytes from file offset " +
             hex(text_offset) + ") is larger than the file");
    uint64_t mem_size = load_size;
    if (h.bss_end_addr) {
        if (h.bss_end_addr < uint64_t(h.load_addr) + load_size)
            fail(name + ": multiboot bss_end_addr " + hex(h.bss_end_addr) +
                 " is below the end of the loaded image");
        mem_size = h.bss_end_addr - h.load_addr;
    }
    if (mem_size == 0) fail(name + ": multiboot header says there is nothing to load");
    KernelPlan k;
    k.entry = h.entry_addr;
    k.start = h.load_addr;
    k.end = uint64_t(h.load_addr) + mem_size;
    k.pieces.push_back({h.load_addr, text_offset, load_size, mem_size});
    return k;
}

// What the multiboot.bin option ROM computes from INT 12h and the E820 map: base memory in KiB,
// and the KiB of RAM contiguous from 1 MiB (below 4 GiB).
uint32_t mem_lower_kb(std::span<const E820Entry> e820) {
    for (auto& e : e820)
        if (e.type == E820Type::Ram && e.addr == 0)
            return static_cast<uint32_t>(std::min<uint64_t>(e.size, kLowRamEnd) >> 10);
    return 0;
}

uint32_t mem_upper_kb(std::span<const E820Entry> e820) {
    uint64_t top = kHighRamStart;
    for (bool grew = true; grew;) {
        grew = false;
        for (auto& e : e820) {
            if (e.type != E820Type::Ram || e.addr >= (1ull << 32)) continue;
            if (e.addr <= top && top < e.end()) {
                top = std::min<uint64_t>(e.end(), 1ull << 32);
                grew = true;
            }
        }
    }
    return static_cast<uint32_t>((top - kHighRamStart) >> 10);
}

} // namespace

MultibootBootInfo load_multiboot(GuestMemory& mem, std::span<const E820Entry> e820,
                                 const MultibootConfig& cfg) {
    const std::string& name = cfg.kernel_name;
    size_t bad = SIZE_MAX;
    auto found = find_multiboot_header(cfg.kernel, &bad);
    if (!found) {
        if (bad != SIZE_MAX)
            fail(name + ": multiboot header at offset " + hex(bad) + " has a bad checksum");
        fail(name + ": no multiboot header in the first 8 KiB");
    }
    const MultibootHeader& h = *found;
    if (h.flags & kVideoMode)
        LOG_WARN("%s: the multiboot kernel asks for a video mode; hvm does not set one",
                 name.c_str());

    KernelPlan k =
        (h.flags & kAoutKludge) ? plan_aout(cfg.kernel, h, name) : plan_elf(cfg.kernel, name);
    for (auto& p : k.pieces)
        check_placement(e820, p.addr, p.addr + p.memsz, name + ": kernel segment");

    // The information area right after the kernel: module list, command lines, loader name.
    std::string kernel_cmdline = cfg.kernel_name + " " + cfg.cmdline; // QEMU: "%s %s"
    uint64_t info_start = page_align_up(k.end);
    uint64_t mods_off = 0;
    uint64_t cmdlines_off = mods_off + cfg.modules.size() * kModSize;
    uint64_t strings_size = kernel_cmdline.size() + 1 + cfg.loader_name.size() + 1;
    for (auto& m : cfg.modules) strings_size += m.cmdline.size() + 1;
    uint64_t info_size = page_align_up(cmdlines_off + strings_size);
    std::vector<uint8_t> info_area(info_size, 0);

    uint64_t cursor = cmdlines_off;
    auto add_string = [&](const std::string& s) -> uint32_t {
        std::copy(s.begin(), s.end(), info_area.begin() + cursor);
        uint64_t at = info_start + cursor;
        cursor += s.size() + 1;
        return static_cast<uint32_t>(at);
    };

    MultibootBootInfo out;
    out.header = h;
    out.elf = k.elf;
    out.kernel_start = static_cast<uint32_t>(k.start);
    out.kernel_end = static_cast<uint32_t>(k.end);
    out.entry = static_cast<uint32_t>(k.entry);
    out.info_area = static_cast<uint32_t>(info_start);

    uint64_t mod_addr = info_start + info_size;
    uint64_t last_end = info_start + info_size;
    for (size_t i = 0; i < cfg.modules.size(); i++) {
        const auto& m = cfg.modules[i];
        uint64_t start = mod_addr, end = mod_addr + m.data.size();
        check_placement(e820, start, end, name + ": module '" + m.cmdline + "'");
        uint32_t str = add_string(m.cmdline);
        auto entry = std::span(info_area).subspan(mods_off + i * kModSize, kModSize);
        put_field(entry, 0, 4, start);
        put_field(entry, 4, 4, end);
        put_field(entry, 8, 4, str);
        out.modules.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(end)});
        mod_addr = page_align_up(end);
        last_end = end;
    }
    uint32_t cmdline_ptr = add_string(kernel_cmdline);
    uint32_t loader_name_ptr = add_string(cfg.loader_name);
    check_placement(e820, info_start, info_start + info_size, name + ": multiboot module list");
    out.end = static_cast<uint32_t>(last_end);

    // The memory map, in the multiboot mmap format; QEMU leaves 0x500 bytes for it.
    std::vector<uint8_t> mmap(e820.size() * kMmapEntrySize, 0);
    if (mmap.size() > kInfoAddr - kMmapAddr)
        throw std::invalid_argument("multiboot: too many e820 entries for the mmap area");
    for (size_t i = 0; i < e820.size(); i++) {
        auto e = std::span(mmap).subspan(i * kMmapEntrySize, kMmapEntrySize);
        put_field(e, 0, 4, kMmapEntrySize - 4); // size excludes the size field itself
        put_field(e, 4, 8, e820[i].addr);
        put_field(e, 12, 8, e820[i].size);
        put_field(e, 20, 4, static_cast<uint32_t>(e820[i].type));
    }
    out.mem_lower = mem_lower_kb(e820);
    out.mem_upper = mem_upper_kb(e820);

    std::vector<uint8_t> info(kInfoSize, 0);
    put_field(info, kInfoFlags, 4,
              kInfoMemory | kInfoBootDevice | kInfoCmdline | kInfoMods | kInfoMmap |
                  kInfoLoaderName);
    put_field(info, kInfoMemLower, 4, out.mem_lower);
    put_field(info, kInfoMemUpper, 4, out.mem_upper);
    put_field(info, kInfoBootDeviceOff, 4, kBootDevice);
    put_field(info, kInfoCmdlineOff, 4, cmdline_ptr);
    put_field(info, kInfoModsCount, 4, cfg.modules.size());
    put_field(info, kInfoModsAddr, 4, info_start + mods_off);
    put_field(info, kInfoMmapLength, 4, mmap.size());
    put_field(info, kInfoMmapAddr, 4, kMmapAddr);
    put_field(info, kInfoLoaderNameOff, 4, loader_name_ptr);

    if (!e820_is_ram(e820, kInfoRange.start, kInfoRange.end - kInfoRange.start) ||
        !e820_is_ram(e820, kGdtRange.start, kGdtRange.end - kGdtRange.start))
        throw std::runtime_error("multiboot: no low RAM for the information structure");

    // All checks passed: write.
    write_boot_gdt(mem);
    write_bios_data_area(mem);
    loader::copy_to_guest(mem, kMmapAddr, mmap, "multiboot mmap");
    loader::copy_to_guest(mem, kInfoAddr, info, "multiboot information");
    for (auto& p : k.pieces) {
        loader::zero_guest(mem, p.addr, p.memsz, "kernel segment");
        loader::copy_to_guest(mem, p.addr, cfg.kernel.subspan(p.offset, p.filesz),
                              "kernel segment");
    }
    loader::copy_to_guest(mem, info_start, info_area, "multiboot module list");
    for (size_t i = 0; i < cfg.modules.size(); i++)
        loader::copy_to_guest(mem, out.modules[i].first, cfg.modules[i].data, "multiboot module");

    LOG_INFO("multiboot: %s (%s) at 0x%x-0x%x, entry 0x%x, %zu module(s)", name.c_str(),
             k.elf ? "ELF" : "a.out kludge", out.kernel_start, out.kernel_end, out.entry,
             cfg.modules.size());

    out.cpu = flat_protected_mode_state();
    out.cpu.rip = k.entry;
    out.cpu.gpr[RAX] = kBootloaderMagic;
    out.cpu.gpr[RBX] = kInfoAddr;
    return out;
}

} // namespace hvm
