#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "base/error.hpp"
#include "bios/boot_cpu.hpp"
#include "bios/multiboot.hpp"
#include "test_support.hpp"

using namespace hvm;
using test::get;
using test::PcRam;
using test::put;

namespace {
constexpr uint64_t MiB = 1ull << 20;
constexpr uint32_t kMagic = 0x1badb002;

void put_mb_header(std::vector<uint8_t>& f, size_t off, uint32_t flags) {
    put(f, off, 4, kMagic);
    put(f, off + 4, 4, flags);
    put(f, off + 8, 4, uint32_t(0) - kMagic - flags);
}

struct Seg {
    uint32_t type, offset, paddr, filesz, memsz;
};

// An ELF32 i386 executable with the given program headers; the file is sized to hold every
// segment's file bytes, which are a pattern derived from the file offset.
std::vector<uint8_t> make_elf32(uint32_t entry, const std::vector<Seg>& segs, uint16_t machine = 3,
                                uint8_t cls = 1) {
    std::vector<uint8_t> f(52 + 32 * segs.size(), 0);
    size_t end = f.size();
    for (auto& s : segs) end = std::max<size_t>(end, size_t(s.offset) + s.filesz);
    f.resize(end, 0);
    for (size_t i = 52 + 32 * segs.size(); i < f.size(); i++) f[i] = uint8_t(i * 5 + 1);
    f[0] = 0x7f, f[1] = 'E', f[2] = 'L', f[3] = 'F';
    f[4] = cls, f[5] = 1, f[6] = 1;
    put(f, 16, 2, 2);
    put(f, 18, 2, machine);
    put(f, 20, 4, 1);
    put(f, 24, 4, entry);
    put(f, 28, 4, 52);
    put(f, 40, 2, 52);
    put(f, 42, 2, 32);
    put(f, 44, 2, segs.size());
    for (size_t i = 0; i < segs.size(); i++) {
        size_t p = 52 + 32 * i;
        put(f, p, 4, segs[i].type);
        put(f, p + 4, 4, segs[i].offset);
        put(f, p + 8, 4, segs[i].paddr);
        put(f, p + 12, 4, segs[i].paddr);
        put(f, p + 16, 4, segs[i].filesz);
        put(f, p + 20, 4, segs[i].memsz);
    }
    return f;
}

// Text at 1 MiB with the multiboot header at its start, data + bss at 1 MiB + 8 KiB, a PT_NOTE.
std::vector<uint8_t> good_elf() {
    auto f = make_elf32(0x100010, {{1, 0x1000, 0x100000, 0x800, 0x800},
                                   {4, 0x1800, 0, 0x20, 0x20},
                                   {1, 0x1800, 0x102000, 0x100, 0x3000}});
    put_mb_header(f, 0x1000, 0x3);
    return f;
}

template <typename F> std::string user_error(F&& f) {
    try {
        f();
    } catch (const UserError& e) {
        return e.what();
    }
    return "";
}

MultibootConfig mb_config(const std::vector<uint8_t>& kernel, const std::string& cmdline = "") {
    MultibootConfig c;
    c.kernel_name = "kernel.elf";
    c.kernel = kernel;
    c.cmdline = cmdline;
    return c;
}
} // namespace

TEST_CASE("multiboot header search: 4-byte aligned, first 8 KiB, checksum must be right") {
    std::vector<uint8_t> f(16384, 0);
    CHECK_FALSE(find_multiboot_header(f).has_value());
    put_mb_header(f, 0x1fcc, 0x10003); // the last offset QEMU looks at (i < 8192 - 48)
    auto h = find_multiboot_header(f);
    REQUIRE(h.has_value());
    CHECK(h->offset == 0x1fcc);
    CHECK(h->flags == 0x10003);

    std::vector<uint8_t> late(16384, 0);
    put_mb_header(late, 8192 - 48, 0); // its 48 bytes would reach the end of the first 8 KiB
    CHECK_FALSE(find_multiboot_header(late).has_value());
    std::vector<uint8_t> unaligned(16384, 0);
    put_mb_header(unaligned, 0x102, 0);
    CHECK_FALSE(find_multiboot_header(unaligned).has_value());

    std::vector<uint8_t> bad(8192, 0);
    put_mb_header(bad, 0x100, 0x3);
    put(bad, 0x108, 4, 0x12345678); // wrong checksum
    size_t at = SIZE_MAX;
    CHECK_FALSE(find_multiboot_header(bad, &at).has_value());
    CHECK(at == 0x100);
    put_mb_header(bad, 0x200, 0x3); // a good one after the bad one is found
    auto g = find_multiboot_header(bad);
    REQUIRE(g.has_value());
    CHECK(g->offset == 0x200);
}

TEST_CASE("checksum failure is reported by the loader") {
    PcRam ram(128 * MiB);
    auto f = good_elf();
    put(f, 0x1008, 4, 0);
    CHECK(user_error([&] { load_multiboot(ram.mem, ram.e820, mb_config(f)); }) ==
          "kernel.elf: multiboot header at offset 0x1000 has a bad checksum");
}

TEST_CASE("ELF32 multiboot kernel: segments, bss, information structure, CPU state") {
    PcRam ram(128 * MiB);
    CHECK(ram.mem.fill(0x100000, 0xcc, 0x10000)); // stale bytes the loader must clear
    auto f = good_elf();
    MultibootConfig cfg = mb_config(f, "console=ttyS0");
    cfg.modules.push_back({"mod1.bin arg=1", std::vector<uint8_t>(5000, 0x11)});
    cfg.modules.push_back({"mod2.bin", std::vector<uint8_t>(10, 0x22)});
    auto info = load_multiboot(ram.mem, ram.e820, cfg);

    CHECK(info.elf);
    CHECK(info.kernel_start == 0x100000);
    CHECK(info.kernel_end == 0x105000);
    // Text and data bytes from the file, bss and the gap cleared only where segments are.
    CHECK(ram.read(0x100000, 0x800) ==
          std::vector<uint8_t>(f.begin() + 0x1000, f.begin() + 0x1800));
    CHECK(ram.read(0x102000, 0x100) ==
          std::vector<uint8_t>(f.begin() + 0x1800, f.begin() + 0x1900));
    auto bss = ram.read(0x102100, 0x2f00);
    CHECK(std::all_of(bss.begin(), bss.end(), [](uint8_t b) { return b == 0; }));
    CHECK(ram.rd(0x101000, 1) == 0xcc); // between segments: untouched

    const CpuState& s = info.cpu;
    CHECK(s.gpr[RAX] == 0x2badb002);
    CHECK(s.gpr[RBX] == 0x9500);
    CHECK(s.rip == 0x100010);
    CHECK((s.cr0 & 0x80000001) == 1);
    CHECK((s.rflags & 0x200) == 0);
    CHECK(s.seg[CS].limit == 0xffffffff);
    CHECK(s.seg[CS].db == 1);
    CHECK(s.seg[DS].base == 0);
    CHECK(ram.rd(kBootGdtAddr + s.seg[CS].selector, 8) == kFlatCode32Descriptor);

    const uint64_t mbi = 0x9500;
    CHECK(ram.rd(mbi + 0, 4) == 0x24f); // mem, boot device, cmdline, mods, mmap, loader name
    CHECK(ram.rd(mbi + 4, 4) == 639);
    CHECK(ram.rd(mbi + 8, 4) == (128 * MiB - MiB) / 1024);
    CHECK(ram.rd(mbi + 12, 4) == 0x8000ffff);
    CHECK(ram.cstr(ram.rd(mbi + 16, 4)) == "kernel.elf console=ttyS0");
    CHECK(ram.cstr(ram.rd(mbi + 64, 4)) == "hvm");
    // Modules: list right after the kernel (page aligned), each module page aligned after it.
    REQUIRE(ram.rd(mbi + 20, 4) == 2);
    uint64_t mods = ram.rd(mbi + 24, 4);
    CHECK(mods == 0x105000);
    CHECK(mods == info.info_area);
    uint64_t m0 = ram.rd(mods, 4), m0e = ram.rd(mods + 4, 4);
    uint64_t m1 = ram.rd(mods + 16, 4), m1e = ram.rd(mods + 20, 4);
    CHECK(m0 == 0x106000);
    CHECK(m0e == m0 + 5000);
    CHECK(m1 == 0x108000);
    CHECK(m1e == m1 + 10);
    CHECK(ram.cstr(ram.rd(mods + 8, 4)) == "mod1.bin arg=1");
    CHECK(ram.cstr(ram.rd(mods + 24, 4)) == "mod2.bin");
    CHECK(ram.read(m0, 5000) == std::vector<uint8_t>(5000, 0x11));
    CHECK(ram.read(m1, 10) == std::vector<uint8_t>(10, 0x22));
    CHECK(info.end == m1e);
    // The memory map is the e820 map in multiboot's {size, base, length, type} form.
    CHECK(ram.rd(mbi + 48, 4) == 0x9000);
    REQUIRE(ram.rd(mbi + 44, 4) == 24 * ram.e820.size());
    for (size_t i = 0; i < ram.e820.size(); i++) {
        uint64_t e = 0x9000 + 24 * i;
        CHECK(ram.rd(e, 4) == 20);
        CHECK(ram.rd(e + 4, 8) == ram.e820[i].addr);
        CHECK(ram.rd(e + 12, 8) == ram.e820[i].size);
        CHECK(ram.rd(e + 20, 4) == uint32_t(ram.e820[i].type));
    }
}

TEST_CASE("mem_upper stops at the first hole (3 GiB low with RAM above 4 GiB)") {
    PcRam ram(64 * MiB);
    ram.e820 = pc_e820_map(PcRamLayout::for_size(6ull << 30)); // map only; nothing loads high
    auto f = good_elf();
    auto info = load_multiboot(ram.mem, ram.e820, mb_config(f));
    CHECK(info.mem_lower == 639);
    CHECK(info.mem_upper == (0xc0000000 - MiB) / 1024);
}

TEST_CASE("ELF64 multiboot kernels are refused, as QEMU does") {
    PcRam ram(128 * MiB);
    auto f = make_elf32(0x100000, {{1, 0x1000, 0x100000, 0x100, 0x100}}, 62, 2);
    put_mb_header(f, 0x1000, 0x3);
    CHECK(user_error([&] {
              load_multiboot(ram.mem, ram.e820, mb_config(f));
          }).find("64-bit ELF multiboot kernels cannot be loaded") != std::string::npos);
    // Same with an ELF32 header claiming x86-64 (QEMU checks e_machine).
    auto g = make_elf32(0x100000, {{1, 0x1000, 0x100000, 0x100, 0x100}}, 62, 1);
    put_mb_header(g, 0x1000, 0x3);
    CHECK(user_error([&] { load_multiboot(ram.mem, ram.e820, mb_config(g)); }).find("64-bit ELF") !=
          std::string::npos);
}

TEST_CASE("ELF segments outside RAM, over the information area or beyond the file are refused") {
    PcRam ram(128 * MiB);
    CHECK(ram.mem.fill(0x100000, 0xcc, 16));
    auto out = make_elf32(
        0x100000, {{1, 0x1000, 0x100000, 0x100, 0x100}, {1, 0x1100, 0x10000000, 0x100, 0x100}});
    put_mb_header(out, 0x1000, 0x3);
    auto m = user_error([&] { load_multiboot(ram.mem, ram.e820, mb_config(out)); });
    CHECK(m == "kernel.elf: kernel segment (0x10000000-0x10000100) is not inside guest RAM; give "
               "the guest more memory with -m");
    CHECK(ram.rd(0x100000, 1) == 0xcc); // refused before anything was written

    auto hole = make_elf32(0xa0000, {{1, 0x1000, 0x9f000, 0x2000, 0x2000}});
    put_mb_header(hole, 0x1000, 0x3);
    CHECK(user_error([&] {
              load_multiboot(ram.mem, ram.e820, mb_config(hole));
          }).find("not inside guest RAM") != std::string::npos);

    auto info = make_elf32(0x8000, {{1, 0x1000, 0x8000, 0x1000, 0x1100}});
    put_mb_header(info, 0x1000, 0x3);
    CHECK(user_error([&] {
              load_multiboot(ram.mem, ram.e820, mb_config(info));
          }).find("overlaps the multiboot information at 0x9000-0x9558") != std::string::npos);

    auto gdt = make_elf32(0x400, {{1, 0x1000, 0x400, 0x100, 0x200}});
    put_mb_header(gdt, 0x1000, 0x3);
    CHECK(user_error([&] {
              load_multiboot(ram.mem, ram.e820, mb_config(gdt));
          }).find("overlaps the boot GDT") != std::string::npos);

    auto big = make_elf32(0x100000, {{1, 0x1000, 0x100000, 0x100, 0x100}});
    put_mb_header(big, 0x1000, 0x3);
    put(big, 52 + 16, 4, 0x10000); // p_filesz far past the end of the file
    put(big, 52 + 20, 4, 0x10000);
    CHECK(user_error([&] {
              load_multiboot(ram.mem, ram.e820, mb_config(big));
          }).find("is larger than the file") != std::string::npos);

    auto fs = make_elf32(0x100000, {{1, 0x1000, 0x100000, 0x200, 0x100}});
    put_mb_header(fs, 0x1000, 0x3);
    CHECK(user_error([&] {
              load_multiboot(ram.mem, ram.e820, mb_config(fs));
          }).find("more file bytes") != std::string::npos);

    auto wrap = make_elf32(0x100000, {{1, 0x1000, 0xfffff000, 0x100, 0x2000}});
    put_mb_header(wrap, 0x1000, 0x3);
    CHECK(user_error([&] {
              load_multiboot(ram.mem, ram.e820, mb_config(wrap));
          }).find("wraps past 4 GiB") != std::string::npos);

    auto phdrs = make_elf32(0x100000, {{1, 0x1000, 0x100000, 0x100, 0x100}});
    put_mb_header(phdrs, 0x1000, 0x3);
    put(phdrs, 44, 2, 0xffff); // e_phnum: headers would run past the file
    CHECK(user_error([&] {
              load_multiboot(ram.mem, ram.e820, mb_config(phdrs));
          }).find("program headers lie outside the file") != std::string::npos);
}

TEST_CASE("a module that does not fit in RAM is refused") {
    PcRam ram(4 * MiB);
    auto f = good_elf();
    MultibootConfig cfg = mb_config(f);
    cfg.modules.push_back({"huge", std::vector<uint8_t>(4 * MiB, 1)});
    CHECK(user_error([&] {
              load_multiboot(ram.mem, ram.e820, cfg);
          }).find("kernel.elf: module 'huge'") == 0);
}

TEST_CASE("a.out kludge: header addresses say what to load, bss is cleared") {
    PcRam ram(128 * MiB);
    std::vector<uint8_t> f(0x1234);
    for (size_t i = 0; i < f.size(); i++) f[i] = uint8_t(i * 3 + 7);
    put_mb_header(f, 0x40, 0x10003);
    put(f, 0x4c, 4, 0x200040);          // header_addr
    put(f, 0x50, 4, 0x200000);          // load_addr
    put(f, 0x54, 4, 0);                 // load_end_addr: the whole file
    put(f, 0x58, 4, 0x200000 + 0x3000); // bss_end_addr
    put(f, 0x5c, 4, 0x200080);          // entry_addr
    CHECK(ram.mem.fill(0x200000, 0xcc, 0x4000));
    auto info = load_multiboot(ram.mem, ram.e820, mb_config(f));
    CHECK_FALSE(info.elf);
    CHECK(info.kernel_start == 0x200000);
    CHECK(info.kernel_end == 0x203000);
    CHECK(info.cpu.rip == 0x200080);
    CHECK(ram.read(0x200000, f.size()) == f);
    auto bss = ram.read(0x200000 + f.size(), 0x3000 - f.size());
    CHECK(std::all_of(bss.begin(), bss.end(), [](uint8_t b) { return b == 0; }));
    CHECK(ram.rd(0x9500 + 24, 4) == 0x203000); // module list right after the bss

    // Header not at the start of the image: load_addr is 0x20 bytes before the header's file
    // offset, and load_end_addr cuts the image short.
    std::vector<uint8_t> g(0x800, 0x5a);
    put_mb_header(g, 0x100, 0x10000);
    put(g, 0x10c, 4, 0x300020);
    put(g, 0x110, 4, 0x300000);
    put(g, 0x114, 4, 0x300100);
    put(g, 0x118, 4, 0);
    put(g, 0x11c, 4, 0x300000);
    auto gi = load_multiboot(ram.mem, ram.e820, mb_config(g));
    CHECK(gi.kernel_end == 0x300100);
    CHECK(ram.read(0x300000, 0x100) == std::vector<uint8_t>(g.begin() + 0xe0, g.begin() + 0x1e0));
}

TEST_CASE("a.out kludge: inconsistent addresses are refused") {
    PcRam ram(128 * MiB);
    auto base = [] {
        std::vector<uint8_t> f(0x1000, 0x90);
        put_mb_header(f, 0x40, 0x10000);
        put(f, 0x4c, 4, 0x200040);
        put(f, 0x50, 4, 0x200000);
        put(f, 0x54, 4, 0);
        put(f, 0x58, 4, 0);
        put(f, 0x5c, 4, 0x200000);
        return f;
    };
    auto load = [&](const std::vector<uint8_t>& f) {
        return user_error([&] { load_multiboot(ram.mem, ram.e820, mb_config(f)); });
    };
    CHECK(load(base()).empty());
    auto a = base();
    put(a, 0x50, 4, 0x200080); // load_addr above header_addr
    CHECK(load(a).find("is below load_addr") != std::string::npos);
    auto b = base();
    put(b, 0x50, 4, 0x100000); // image would start 1 MiB before the file
    CHECK(load(b).find("before the beginning of the file") != std::string::npos);
    auto c = base();
    put(c, 0x54, 4, 0x200000 + 0x2000); // load_end_addr past the end of the file
    CHECK(load(c).find("is larger than the file") != std::string::npos);
    auto d = base();
    put(d, 0x54, 4, 0x100000); // load_end below load_addr
    CHECK(load(d).find("load_end_addr") != std::string::npos);
    auto e = base();
    put(e, 0x58, 4, 0x200800); // bss_end inside the loaded image
    CHECK(load(e).find("bss_end_addr") != std::string::npos);
    auto f = base();
    put(f, 0x4c, 4, 0x9040); // loads over the information area
    put(f, 0x50, 4, 0x9000);
    CHECK(load(f).find("overlaps the multiboot information") != std::string::npos);
    auto g = base();
    put(g, 0x4c, 4, 0xffffff40); // runs past 4 GiB
    put(g, 0x50, 4, 0xffffff00);
    CHECK(load(g).find("4 GiB") != std::string::npos);
    std::vector<uint8_t> cut(0x50, 0);
    put_mb_header(cut, 0x40, 0x10000); // kludge fields cut off by the end of the file
    CHECK(load(cut).find("cut off") != std::string::npos);
}

TEST_CASE("QEMU's -initrd module list syntax") {
    CHECK(split_multiboot_modules("a.bin args x,b.bin,,c,d") ==
          std::vector<std::string>{"a.bin args x", "b.bin,c", "d"});
    CHECK(split_multiboot_modules("").empty());
    CHECK(split_multiboot_modules("one") == std::vector<std::string>{"one"});
}
