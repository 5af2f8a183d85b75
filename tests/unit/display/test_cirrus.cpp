// Cirrus CL-GD5446: PCI identity and BARs, extended registers, hidden DAC, banking, linear and
// MMIO windows, packed-pixel rendering, hardware cursor, state.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "base/error.hpp"
#include "devmodel/display/cirrus_vga.hpp"
#include "tests/unit/display/display_test_support.hpp"
#include "tests/unit/pci/pci_test_support.hpp"

using namespace hvm;
using namespace hvm::test;

namespace {

std::vector<uint8_t> read_file(const char* path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct Rig {
    FakeClock clock;
    CirrusVga dev{clock, {}, {}};
    CirrusVgaCore& c = dev.core();
    Rig() { outb(c, 0x3C2, 0x01); }
};

// A small packed-pixel mode: 64x8 pixels, SR7 = `sr7`, `bytes_pp` bytes a pixel.
void small_mode(CirrusVgaCore& c, uint8_t sr7, unsigned bytes_pp) {
    set_sr(c, 6, 0x12);
    set_sr(c, 7, sr7);
    set_cr(c, 0x11, 0x00);
    set_cr(c, 0x01, 7); // 64 pixels
    set_cr(c, 0x12, 7); // 8 lines
    set_cr(c, 0x07, 0x00);
    set_cr(c, 0x09, 0x00);
    set_cr(c, 0x13, uint8_t(64 * bytes_pp / 8));
    set_cr(c, 0x17, 0xC3);
    set_cr(c, 0x18, 0xFF);
    set_cr(c, 0x07, 0x10); // line compare bit 8: beyond the screen
    set_gr(c, 5, 0x40);
    set_gr(c, 6, 0x01);
    set_ar(c, 0x10, 0x41);
    inb(c, 0x3DA);
    outb(c, 0x3C0, 0x20);
}

} // namespace

TEST_CASE("cirrus: PCI identity, BAR sizes and the ROM BAR") {
    PciRig rig; // declared first: the buses must outlive the device's BAR mappings
    FakeClock clock;
    auto rom = read_file("/usr/share/seabios/vgabios-cirrus.bin");
    REQUIRE(rom.size() == 39424);
    CirrusVga dev(clock, rom, {});
    CHECK(dev.config_read(0x00, 4) == 0x00B81013u);
    CHECK(dev.config_read(0x08, 4) == 0x03000000u); // class 030000, revision 0
    CHECK(dev.config_read(0x2C, 4) == 0x11001AF4u);
    CHECK(dev.config_read(0x3D, 1) == 0); // no INTx
    dev.config_write(0x10, 4, 0xFFFFFFFF);
    CHECK(dev.config_read(0x10, 4) == 0xFE000008u); // 32 MiB prefetchable
    dev.config_write(0x14, 4, 0xFFFFFFFF);
    CHECK(dev.config_read(0x14, 4) == 0xFFFFF000u); // 4 KiB
    dev.config_write(0x30, 4, 0xFFFFFFFE);
    CHECK(dev.config_read(0x30, 4) == 0xFFFF0000u); // 64 KiB ROM

    // On a bus: BARs map where the guest puts them, the ROM reads the BIOS image.
    rig.pci.attach(dev, pci::devfn(2, 0));
    rig.pci.config_write(0, pci::devfn(2, 0), 0x10, 4, 0xFC000000);
    rig.pci.config_write(0, pci::devfn(2, 0), 0x14, 4, 0xFEBD0000);
    rig.pci.config_write(0, pci::devfn(2, 0), 0x30, 4, 0xFEBC0001);
    rig.pci.config_write(0, pci::devfn(2, 0), 0x04, 2, 0x0002);
    uint8_t b[4];
    rig.mmio.read(0xFEBC0000, std::span(b, 2));
    CHECK(b[0] == 0x55);
    CHECK(b[1] == 0xAA);
    rig.mmio.read(0xFEBC0000 + 39424, std::span(b, 4)); // padding past the image
    CHECK(le_load(std::span<const uint8_t>(b, 4)) == 0);
    uint8_t w[4] = {0x11, 0x22, 0x33, 0x44};
    rig.mmio.write(0xFC000100, w);
    CHECK(dev.core().vram()[0x100] == 0x11);
    CHECK(dev.core().vram()[0x103] == 0x44);
    rig.mmio.read(0xFC000102, std::span(b, 1));
    CHECK(b[0] == 0x33);
    // BAR1: VGA ports at 0x3C0 + offset.
    uint8_t idx[1] = {0x27};
    rig.mmio.write(0xFEBD0000 + (0x3D4 - 0x3C0), idx); // colour decode is off: misc = 0
    dev.core().write_port(0x3C2, 0x01);
    rig.mmio.write(0xFEBD0000 + (0x3D4 - 0x3C0), idx);
    rig.mmio.read(0xFEBD0000 + (0x3D5 - 0x3C0), std::span(b, 1));
    CHECK(b[0] == 0xB8);

    CHECK_THROWS_AS(CirrusVga(clock, {}, CirrusVga::Options{3, true}), UserError);
    CHECK_THROWS_AS(CirrusVga(clock, {}, CirrusVga::Options{32, true}), UserError);
    CirrusVga big(clock, {}, CirrusVga::Options{16, true});
    CHECK(big.core().vram_size() == 16u * 1024 * 1024);
}

TEST_CASE("cirrus: unlock, IDs and memory configuration as QEMU reports them") {
    Rig r;
    CHECK(get_sr(r.c, 6) == 0x0F);
    set_sr(r.c, 6, 0x12);
    CHECK(get_sr(r.c, 6) == 0x12);
    set_sr(r.c, 6, 0x32); // bits outside 0x17 ignored
    CHECK(get_sr(r.c, 6) == 0x12);
    set_sr(r.c, 6, 0x00);
    CHECK(get_sr(r.c, 6) == 0x0F);
    CHECK(get_cr(r.c, 0x27) == 0xB8);
    set_cr(r.c, 0x27, 0x00); // read-only
    CHECK(get_cr(r.c, 0x27) == 0xB8);
    CHECK(get_sr(r.c, 0x0F) == 0x98);
    CHECK(get_sr(r.c, 0x15) == 0x04);
    CHECK(get_sr(r.c, 0x1F) == 0x2D);
    CHECK(get_sr(r.c, 0x17) == 0x20);
    set_sr(r.c, 0x17, 0xFF); // bits 5:3 read-only
    CHECK(get_sr(r.c, 0x17) == 0xE7);
    // Extended indices: 8 bits each, unknown ones read 0xFF.
    CHECK(get_sr(r.c, 0x20) == 0xFF);
    CHECK(get_gr(r.c, 0x3A) == 0xFF);
    CHECK(get_cr(r.c, 0x30) == 0xFF);
    // GR0/GR1 keep all 8 bits for the blitter; the VGA sees 4.
    set_gr(r.c, 0, 0xA5);
    CHECK(get_gr(r.c, 0) == 0xA5);
    CHECK(r.c.gr(0) == 0x05);
    // Blitter size registers keep 13 bits, addresses 22.
    set_gr(r.c, 0x21, 0xFF);
    CHECK(get_gr(r.c, 0x21) == 0x1F);
    set_gr(r.c, 0x2E, 0xFF);
    CHECK(get_gr(r.c, 0x2E) == 0x3F);
    // Cursor position: SR10 aliases at 0x30, 0x50 ...; CR24/CR26 attribute readback.
    set_sr(r.c, 0x70, 0x10);
    CHECK(get_sr(r.c, 0x10) == 0x10);
    CHECK(get_sr(r.c, 0xF0) == 0x10);
    inb(r.c, 0x3DA);
    outb(r.c, 0x3C0, 0x25);
    CHECK(get_cr(r.c, 0x24) == 0x80);
    CHECK(get_cr(r.c, 0x26) == 0x25);
}

TEST_CASE("cirrus: hidden DAC register behind four 0x3C6 reads") {
    Rig r;
    inb(r.c, 0x3C8);
    for (int i = 0; i < 4; i++) CHECK(inb(r.c, 0x3C6) == 0xFF);
    outb(r.c, 0x3C6, 0xE1);
    CHECK(r.c.hidden_dac() == 0xE1);
    inb(r.c, 0x3C8);
    for (int i = 0; i < 4; i++) CHECK(inb(r.c, 0x3C6) == 0xFF);
    CHECK(inb(r.c, 0x3C6) == 0xE1);
    // Fewer than four reads: the write goes nowhere.
    inb(r.c, 0x3C8);
    inb(r.c, 0x3C6);
    outb(r.c, 0x3C6, 0x00);
    CHECK(r.c.hidden_dac() == 0xE1);
}

TEST_CASE("cirrus: banking at 0xA0000 (single, dual, 16K) stays inside VRAM") {
    Rig r;
    set_sr(r.c, 6, 0x12);
    set_sr(r.c, 7, 0x01);
    set_gr(r.c, 0x0B, 0x00); // single bank, 4K units
    set_gr(r.c, 0x09, 0x02);
    r.c.write_window(0x0010, 0xAB);
    r.c.write_window(0x8010, 0xCD); // second half continues the bank
    CHECK(r.c.vram()[0x2010] == 0xAB);
    CHECK(r.c.vram()[0xA010] == 0xCD);
    CHECK(r.c.read_window(0x0010) == 0xAB);
    set_gr(r.c, 0x0B, 0x21); // dual banks, 16K units
    set_gr(r.c, 0x09, 0x01);
    set_gr(r.c, 0x0A, 0x03);
    r.c.write_window(0x0001, 0x11);
    r.c.write_window(0x8001, 0x22);
    CHECK(r.c.vram()[0x4001] == 0x11);
    CHECK(r.c.vram()[0xC001] == 0x22);
    // A bank at the very end: only its first 16K exist (CVE-2016-3710 class).
    set_gr(r.c, 0x09, 0xFF);
    CHECK(r.c.bank_base(0) == 0x3FC000);
    CHECK(r.c.bank_limit(0) == 0x4000);
    r.c.write_window(0x3FFF, 0x77);
    CHECK(r.c.vram()[0x3FFFFF] == 0x77);
    CHECK(r.c.read_window(0x4000) == 0xFF);
    auto before = std::vector<uint8_t>(r.c.vram().begin(), r.c.vram().end());
    r.c.write_window(0x4000, 0x99); // beyond the limit: dropped
    CHECK(std::equal(before.begin(), before.end(), r.c.vram().begin()));
    // Extended write mode 4 (GRB bit 2): each bit writes GR1, 8 pixels.
    set_gr(r.c, 0x0B, 0x04);
    set_gr(r.c, 0x09, 0x00);
    set_gr(r.c, 0x05, 0x04);
    set_gr(r.c, 0x01, 0x5A);
    r.c.write_window(0x100, 0xA0);
    CHECK(r.c.vram()[0x100] == 0x5A);
    CHECK(r.c.vram()[0x101] == 0x00);
    CHECK(r.c.vram()[0x102] == 0x5A);
}

TEST_CASE("cirrus: linear window, MMIO blitter registers in both views") {
    Rig r;
    r.c.write_lfb(0x1234, 0x56);
    CHECK(r.c.vram()[0x1234] == 0x56);
    CHECK(r.c.read_lfb(0x1234) == 0x56);
    CHECK(r.c.read_lfb(r.c.vram_size()) == 0xFF); // hole up to the blit aperture
    // BAR1 0x100+: blitter registers.
    r.c.write_mmio(0x100 + cirrus::kMmioWidth, 0x34);
    r.c.write_mmio(0x100 + cirrus::kMmioWidth + 1, 0xFF);
    CHECK(get_gr(r.c, 0x20) == 0x34);
    CHECK(get_gr(r.c, 0x21) == 0x1F);
    CHECK(r.c.read_mmio(0x100 + cirrus::kMmioWidth + 1) == 0x1F);
    CHECK(r.c.read_mmio(0x100 + 0x41) == 0xFF);
    CHECK(r.c.read_mmio(0xFFF) == 0xFF);
    // SR17 bits 6+2: the last 256 bytes of the linear window are the registers.
    set_sr(r.c, 0x17, 0x44);
    r.c.write_lfb(r.c.vram_size() - 256 + cirrus::kMmioRop, cirrus::kRopSrc);
    CHECK(get_gr(r.c, 0x32) == cirrus::kRopSrc);
    CHECK(r.c.vram()[r.c.vram_size() - 256 + cirrus::kMmioRop] == 0);
    // SR17 bit 2 only: the registers are at 0xB8000 in extended mode.
    set_sr(r.c, 0x17, 0x04);
    set_sr(r.c, 7, 0x01);
    r.c.write_window(0x18000 + cirrus::kMmioRop, cirrus::kRopNotSrc);
    CHECK(r.c.read_window(0x18000 + cirrus::kMmioRop) == cirrus::kRopNotSrc);
}

TEST_CASE("cirrus: packed-pixel rendering at 8, 15, 16, 24 and 32 bpp") {
    Rig r;
    Framebuffer fb;
    SUBCASE("8 bpp") {
        small_mode(r.c, 0x01, 1);
        set_dac(r.c, 7, 0x3F, 0x3F, 0x00);
        r.c.vram()[64 * 2 + 5] = 7;
        r.c.render(fb);
        CHECK(fb.width == 64);
        CHECK(fb.height == 8);
        CHECK(fb.pixel(5, 2) == 0xFFFF00);
        CHECK(fb.pixel(4, 2) == 0);
    }
    SUBCASE("15 and 16 bpp by the hidden DAC") {
        small_mode(r.c, 0x07, 2);
        r.c.vram()[2 * (64 + 3)] = 0x00;
        r.c.vram()[2 * (64 + 3) + 1] = 0xF8; // 16 bpp red, 15 bpp 0x7C00|0x8000 = red too
        r.c.vram()[2 * 5] = 0xE0;
        r.c.vram()[2 * 5 + 1] = 0x07; // 16 bpp: green 0x07E0; 15 bpp: 0x03E0 green + 0x0400 red
        inb(r.c, 0x3C8);
        for (int i = 0; i < 4; i++) inb(r.c, 0x3C6);
        outb(r.c, 0x3C6, 0xE1);
        r.c.render(fb);
        CHECK(fb.pixel(3, 1) == 0xF80000);
        CHECK(fb.pixel(5, 0) == 0x00FC00);
        inb(r.c, 0x3C8);
        for (int i = 0; i < 4; i++) inb(r.c, 0x3C6);
        outb(r.c, 0x3C6, 0xF0);
        r.c.render(fb);
        CHECK(fb.pixel(5, 0) == 0x08F800);
    }
    SUBCASE("24 bpp") {
        small_mode(r.c, 0x05, 3);
        uint8_t* p = &r.c.vram()[3 * (64 * 4 + 10)];
        p[0] = 0x11; // blue
        p[1] = 0x22;
        p[2] = 0x33;
        r.c.render(fb);
        CHECK(fb.pixel(10, 4) == 0x332211);
    }
    SUBCASE("32 bpp and the hardware cursor") {
        small_mode(r.c, 0x09, 4);
        uint8_t* p = &r.c.vram()[4 * (64 * 7 + 63)];
        p[0] = 0x44;
        p[1] = 0x55;
        p[2] = 0x66;
        r.c.render(fb);
        CHECK(fb.pixel(63, 7) == 0x665544);
        // Cursor 32x32 at (8, 2): pattern 0 at VRAM end - 16K; colours from the hidden palette.
        set_sr(r.c, 0x12, 0x02); // hidden palette access
        set_dac(r.c, 0x00, 0x3F, 0x00, 0x00);
        set_dac(r.c, 0x0F, 0x00, 0x00, 0x3F);
        set_sr(r.c, 0x12, 0x01); // show
        set_sr(r.c, 0x13, 0x00);
        set_sr(r.c, 0x10, 0x01); // x = 8
        set_sr(r.c, 0x11, 0x00); // y = 0 ...
        set_sr(r.c, 0x51, 0x00); // ... + 2 from the index bits
        uint32_t base = r.c.vram_size() - 16 * 1024;
        r.c.vram()[base + 2 * 4] = 0xC0;       // row 2 of the cursor, plane 0: pixels 0,1
        r.c.vram()[base + 128 + 2 * 4] = 0xA0; // plane 1: pixels 0,2
        r.c.render(fb);
        CHECK(fb.pixel(8, 4) == 0x0000FF);              // b0=1 b1=1: colour 15
        CHECK(fb.pixel(9, 4) == (0x000000 ^ 0xFFFFFF)); // b0=1 b1=0: inverted
        CHECK(fb.pixel(10, 4) == 0xFF0000);             // b0=0 b1=1: colour 0
        CHECK(fb.pixel(11, 4) == 0);                    // transparent
        CHECK(fb.dirty_rows[4]);
        r.c.render(fb);
        CHECK_FALSE(fb.changed);
        set_sr(r.c, 0x10, 0x02); // moving the cursor dirties its rows
        r.c.render(fb);
        CHECK(fb.dirty_rows[4]);
        CHECK(fb.pixel(16, 4) == 0x0000FF);
    }
}

TEST_CASE("cirrus: state round trip, hostile state refused") {
    Rig r;
    set_sr(r.c, 6, 0x12);
    set_gr(r.c, 0x09, 0x10);
    r.c.vram()[77] = 9;
    StateWriter w;
    r.dev.save(w);
    FakeClock c2;
    CirrusVga other(c2, {}, {});
    StateReader rd(w.data());
    other.load(rd);
    CHECK(get_sr(other.core(), 6) == 0x12);
    CHECK(other.core().bank_base(0) == 0x10000);
    CHECK(other.core().vram()[77] == 9);

    std::vector<uint8_t> bad = w.data();
    const std::string name = "cirrus-vga-core";
    auto it = std::search(bad.begin(), bad.end(), name.begin(), name.end());
    REQUIRE(it != bad.end());
    size_t op = size_t(it - bad.begin()) + name.size() + 4 + 6 * 5 + 4; // seventh byte field
    bad[op] = 99;
    StateReader rd2(bad);
    CirrusVga third(c2, {}, {});
    CHECK_THROWS_AS(third.load(rd2), StateError);
}
