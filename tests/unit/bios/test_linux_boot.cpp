#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "base/error.hpp"
#include "bios/boot_cpu.hpp"
#include "bios/linux_boot.hpp"
#include "test_support.hpp"

using namespace hvm;
using test::BzImageSpec;
using test::make_bzimage;
using test::PcRam;

namespace {
constexpr uint64_t MiB = 1ull << 20;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; i++) v[i] = uint8_t(seed + i * 13);
    return v;
}

LinuxBootConfig config(const std::vector<uint8_t>& kernel, const std::string& cmdline) {
    LinuxBootConfig c;
    c.kernel_name = "vmlinuz";
    c.kernel = kernel;
    c.cmdline = cmdline;
    return c;
}
} // namespace

TEST_CASE("32-bit entry: zero page, command line, kernel, initrd and boot CPU") {
    PcRam ram(128 * MiB);
    auto kernel = make_bzimage();
    auto initrd = pattern(3 * MiB + 5, 0x40);
    auto cfg = config(kernel, "console=ttyS0 root=/dev/ram0");
    cfg.has_initrd = true;
    cfg.initrd = initrd;
    auto info = load_linux(ram.mem, ram.e820, cfg);

    const uint64_t zp = kLinuxZeroPageAddr;
    CHECK(info.zero_page_addr == zp);
    auto page = ram.read(zp, 4096);
    // The setup header is copied from the image, 0x1F1 up to its end (0x26C)...
    for (size_t off : {0x1f1, 0x1f4, 0x1fe, 0x202, 0x206, 0x20e, 0x22c, 0x230, 0x238, 0x258, 0x260})
        CHECK(page[off] == kernel[off]);
    CHECK(std::equal(page.begin() + 0x1f1, page.begin() + 0x210, kernel.begin() + 0x1f1));
    CHECK(std::equal(page.begin() + 0x22c, page.begin() + 0x26c, kernel.begin() + 0x22c));
    // ...and nothing else of the image: everything outside the header is zero except e820.
    CHECK(std::all_of(page.begin(), page.begin() + 0x1e8, [](uint8_t b) { return b == 0; }));
    CHECK(
        std::all_of(page.begin() + 0x26c, page.begin() + 0x2d0, [](uint8_t b) { return b == 0; }));
    // The fields a loader writes.
    CHECK(page[0x210] == 0xb0); // type_of_loader: QEMU's ID
    CHECK(test::get(page, 0x214, 4) == 0x100000);
    CHECK(test::get(page, 0x228, 4) == kLinuxCmdlineAddr);
    CHECK(test::get(page, 0x218, 4) == info.initrd_addr);
    CHECK(test::get(page, 0x21c, 4) == initrd.size());
    CHECK((page[0x211] & 0x40) == 0); // KEEP_SEGMENTS clear
    // e820 table
    REQUIRE(page[0x1e8] == ram.e820.size());
    for (size_t i = 0; i < ram.e820.size(); i++) {
        size_t o = 0x2d0 + 20 * i;
        CHECK(test::get(page, o, 8) == ram.e820[i].addr);
        CHECK(test::get(page, o + 8, 8) == ram.e820[i].size);
        CHECK(test::get(page, o + 16, 4) == uint32_t(ram.e820[i].type));
    }
    CHECK(std::all_of(page.begin() + 0x2d0 + 20 * ram.e820.size(), page.end(),
                      [](uint8_t b) { return b == 0; }));

    CHECK(ram.cstr(kLinuxCmdlineAddr) == "console=ttyS0 root=/dev/ram0");
    // Protected-mode kernel at 1 MiB, byte for byte.
    auto k = ram.read(0x100000, info.kernel_size);
    CHECK(std::equal(k.begin(), k.end(), kernel.begin() + 31 * 512));
    // initrd: page aligned, at the top of RAM, intact.
    CHECK(info.initrd_addr % 4096 == 0);
    CHECK(info.initrd_addr + initrd.size() <= 128 * MiB);
    CHECK(info.initrd_addr + initrd.size() > 128 * MiB - 4096);
    CHECK(info.initrd_addr >= info.kernel_reserved_end);
    CHECK(ram.read(info.initrd_addr, initrd.size()) == initrd);
    CHECK(info.kernel_reserved_end == 0x1000000 + 0x2000000);

    // GDT with __BOOT_CS / __BOOT_DS, and the BIOS data area words.
    CHECK(ram.rd(kBootGdtAddr, 8) == 0);
    CHECK(ram.rd(kBootGdtAddr + 0x10, 8) == kFlatCode32Descriptor);
    CHECK(ram.rd(kBootGdtAddr + 0x18, 8) == kFlatData32Descriptor);
    CHECK(ram.rd(0x40e, 2) == 0x9fc0);
    CHECK(ram.rd(0x413, 2) == 639);

    // boot.rst: CS = __BOOT_CS, DS/ES/SS = __BOOT_DS, flat 4 GiB, ESI = boot_params,
    // EBP/EDI/EBX = 0, interrupts off, paging off, protected mode.
    const CpuState& s = info.cpu;
    CHECK(s.rip == 0x100000);
    CHECK(s.gpr[RSI] == zp);
    CHECK(s.gpr[RBX] == 0);
    CHECK(s.gpr[RBP] == 0);
    CHECK(s.gpr[RDI] == 0);
    CHECK((s.rflags & 0x200) == 0);
    CHECK((s.cr0 & 1) == 1);
    CHECK((s.cr0 & 0x80000000) == 0);
    CHECK(s.efer == 0);
    CHECK(s.gdt.base == kBootGdtAddr);
    CHECK(s.gdt.limit == 31);
    CHECK(s.seg[CS].selector == 0x10);
    CHECK(s.seg[CS].base == 0);
    CHECK(s.seg[CS].limit == 0xffffffff);
    CHECK(s.seg[CS].db == 1);
    CHECK(s.seg[CS].type == 0xb);
    for (unsigned r : {DS, ES, SS}) {
        CHECK(s.seg[r].selector == 0x18);
        CHECK(s.seg[r].limit == 0xffffffff);
        CHECK(s.seg[r].type == 0x3);
        CHECK(s.seg[r].present == 1);
    }
}

TEST_CASE("no initrd: ramdisk fields zero") {
    PcRam ram(128 * MiB);
    auto kernel = make_bzimage();
    auto info = load_linux(ram.mem, ram.e820, config(kernel, ""));
    CHECK(ram.rd(kLinuxZeroPageAddr + 0x218, 8) == 0);
    CHECK(info.initrd_size == 0);
    CHECK(ram.cstr(kLinuxCmdlineAddr).empty());
}

TEST_CASE("command line longer than the kernel's cmdline_size is refused") {
    PcRam ram(128 * MiB);
    BzImageSpec s;
    s.cmdline_size = 16;
    auto kernel = make_bzimage(s);
    CHECK_NOTHROW(load_linux(ram.mem, ram.e820, config(kernel, std::string(16, 'a'))));
    try {
        load_linux(ram.mem, ram.e820, config(kernel, std::string(17, 'a')));
        FAIL("accepted");
    } catch (const UserError& e) {
        CHECK(std::string(e.what()) ==
              "vmlinuz: kernel command line is 17 bytes; this kernel accepts at most 16");
    }
}

TEST_CASE("a kernel whose decompression area does not fit in RAM is refused before writing") {
    PcRam ram(32 * MiB);
    auto kernel = make_bzimage(); // needs RAM up to 48 MiB
    CHECK(ram.mem.fill(0x100000, 0xee, 16));
    CHECK_THROWS_AS(load_linux(ram.mem, ram.e820, config(kernel, "")), UserError);
    CHECK(ram.rd(0x100000, 8) == 0xeeeeeeeeeeeeeeee); // nothing was written
}

TEST_CASE("an initrd too big for the RAM above the kernel is refused") {
    PcRam ram(64 * MiB);
    auto kernel = make_bzimage(); // reserved up to 48 MiB
    auto initrd = pattern(17 * MiB, 1);
    auto cfg = config(kernel, "");
    cfg.has_initrd = true;
    cfg.initrd_name = "big.img";
    cfg.initrd = initrd;
    CHECK_THROWS_AS(load_linux(ram.mem, ram.e820, cfg), UserError);
    auto ok = pattern(15 * MiB, 2);
    cfg.initrd = ok;
    auto info = load_linux(ram.mem, ram.e820, cfg);
    CHECK(info.initrd_addr >= 48 * MiB);
    CHECK(info.initrd_addr + ok.size() <= 64 * MiB);
}

TEST_CASE("initrd below initrd_addr_max with plenty of RAM") {
    PcRam ram(1024 * MiB);
    BzImageSpec s;
    s.initrd_addr_max = 0x37ffffff;
    auto kernel = make_bzimage(s);
    auto initrd = pattern(MiB, 3);
    auto cfg = config(kernel, "");
    cfg.has_initrd = true;
    cfg.initrd = initrd;
    auto info = load_linux(ram.mem, ram.e820, cfg);
    CHECK(info.initrd_addr == 0x38000000 - MiB);
}

TEST_CASE("ACPI RSDP address is passed to protocol 2.14+ kernels only") {
    PcRam ram(128 * MiB);
    auto k15 = make_bzimage();
    auto cfg = config(k15, "");
    cfg.acpi_rsdp_addr = 0xf5a40;
    load_linux(ram.mem, ram.e820, cfg);
    CHECK(ram.rd(kLinuxZeroPageAddr + 0x70, 8) == 0xf5a40);
    BzImageSpec s;
    s.version = 0x020d;
    auto k13 = make_bzimage(s);
    cfg.kernel = k13;
    load_linux(ram.mem, ram.e820, cfg);
    CHECK(ram.rd(kLinuxZeroPageAddr + 0x70, 8) == 0);
}

TEST_CASE("16-bit entry: setup code at 0x10000 with the heap, real-mode CPU at setup+0x200") {
    PcRam ram(128 * MiB);
    auto kernel = make_bzimage();
    auto cfg = config(kernel, "quiet");
    cfg.entry = LinuxEntry::RealMode16;
    auto info = load_linux(ram.mem, ram.e820, cfg);
    CHECK(info.setup_addr == 0x10000);
    auto setup = ram.read(0x10000, 31 * 512);
    CHECK(setup[0x210] == 0xb0);
    CHECK((setup[0x211] & 0x81) == 0x81); // LOADED_HIGH | CAN_USE_HEAP
    CHECK(test::get(setup, 0x224, 2) == 0xfe00);
    CHECK(test::get(setup, 0x228, 4) == 0x20000);
    CHECK(std::equal(setup.begin() + 0x400, setup.end(), kernel.begin() + 0x400));
    CHECK(ram.cstr(0x20000) == "quiet");
    const CpuState& s = info.cpu;
    CHECK(s.seg[CS].selector == 0x1020);
    CHECK(s.seg[CS].base == 0x10200);
    CHECK(s.rip == 0);
    for (unsigned r : {DS, ES, SS, FS, GS}) CHECK(s.seg[r].selector == 0x1000);
    CHECK(s.gpr[RSP] == 0xfff0);
    CHECK((s.cr0 & 1) == 0);
}

TEST_CASE("16-bit entry refuses setup code that runs into the heap") {
    PcRam ram(128 * MiB);
    BzImageSpec s;
    s.setup_sects = 200;
    auto kernel = make_bzimage(s);
    auto cfg = config(kernel, "");
    CHECK_NOTHROW(load_linux(ram.mem, ram.e820, cfg)); // fine for the 32-bit entry
    cfg.entry = LinuxEntry::RealMode16;
    CHECK_THROWS_AS(load_linux(ram.mem, ram.e820, cfg), UserError);
}
