// VGA core register files and memory organisation through the port and window interfaces.
#include <doctest/doctest.h>

#include <random>

#include "devmodel/display/vga_core.hpp"
#include "tests/unit/display/display_test_support.hpp"
#include "vmexit/bus.hpp"

using namespace hvm;
using namespace hvm::test;

namespace {

struct Rig {
    FakeClock clock;
    VgaCore vga{clock, 256 * 1024};
    Rig() { outb(vga, 0x3C2, 0x01); } // colour ports
};

void fill_planes(VgaCore& v, uint32_t addr, uint8_t p0, uint8_t p1, uint8_t p2, uint8_t p3) {
    auto m = v.vram();
    m[addr * 4] = p0;
    m[addr * 4 + 1] = p1;
    m[addr * 4 + 2] = p2;
    m[addr * 4 + 3] = p3;
}

std::array<uint8_t, 4> planes(VgaCore& v, uint32_t addr) {
    auto m = v.vram();
    return {m[addr * 4], m[addr * 4 + 1], m[addr * 4 + 2], m[addr * 4 + 3]};
}

// Planar 64K window at A0000, all planes, write mode 0, no logic (mode 12h-like).
void planar(VgaCore& v) {
    set_sr(v, 2, 0x0F);
    set_sr(v, 4, 0x06);
    set_gr(v, 0, 0);
    set_gr(v, 1, 0);
    set_gr(v, 3, 0);
    set_gr(v, 4, 0);
    set_gr(v, 5, 0);
    set_gr(v, 6, 0x05);
    set_gr(v, 7, 0x0F);
    set_gr(v, 8, 0xFF);
}

} // namespace

TEST_CASE("sequencer and graphics controller: index masking and value masks") {
    Rig r;
    // The sequencer decodes 3 index bits, the graphics controller 4 (QEMU vga_ioport_write).
    outb(r.vga, 0x3C4, 0xFA);
    CHECK(inb(r.vga, 0x3C4) == 0x02);
    outb(r.vga, 0x3C5, 0xFF);
    CHECK(r.vga.sr(2) == 0x0F); // map mask: 4 bits
    CHECK(get_sr(r.vga, 1) == 0x00);
    set_sr(r.vga, 1, 0xFF);
    CHECK(get_sr(r.vga, 1) == 0x3D);
    set_sr(r.vga, 4, 0xFF);
    CHECK(get_sr(r.vga, 4) == 0x0E);
    outb(r.vga, 0x3CE, 0xF5);
    CHECK(inb(r.vga, 0x3CE) == 0x05);
    outb(r.vga, 0x3CF, 0xFF);
    CHECK(r.vga.gr(5) == 0x7B);
    set_gr(r.vga, 8, 0xA5);
    CHECK(get_gr(r.vga, 8) == 0xA5);
    set_gr(r.vga, 9, 0xFF); // no such register
    CHECK(get_gr(r.vga, 9) == 0x00);
}

TEST_CASE("CRTC: colour/mono decode follows misc output bit 0") {
    Rig r;
    set_cr(r.vga, 0x0E, 0x12);
    CHECK(get_cr(r.vga, 0x0E) == 0x12);
    // Mono ports are not decoded while colour is selected.
    outb(r.vga, 0x3B4, 0x0E);
    CHECK(inb(r.vga, 0x3B5) == 0xFF);
    outb(r.vga, 0x3B5, 0x99);
    CHECK(r.vga.cr(0x0E) == 0x12);
    outb(r.vga, 0x3C2, 0x00); // mono
    CHECK(r.vga.misc_output() == 0x00);
    CHECK(inb(r.vga, 0x3D5) == 0xFF);
    outb(r.vga, 0x3B4, 0x0E);
    CHECK(inb(r.vga, 0x3B5) == 0x12);
    outb(r.vga, 0x3B5, 0x34);
    CHECK(r.vga.cr(0x0E) == 0x34);
    // Misc output reads back at 0x3CC with bit 4 dropped.
    outb(r.vga, 0x3C2, 0xFF);
    CHECK(inb(r.vga, 0x3CC) == 0xEF);
}

TEST_CASE("CRTC: CR11 bit 7 write-protects CR0-CR7 except CR7 bit 4") {
    Rig r;
    for (uint8_t i = 0; i <= 7; i++) set_cr(r.vga, i, uint8_t(0x10 + i));
    set_cr(r.vga, 0x11, 0x80);
    for (uint8_t i = 0; i <= 6; i++) {
        set_cr(r.vga, i, 0xEE);
        CHECK(get_cr(r.vga, i) == 0x10 + i);
    }
    set_cr(r.vga, 7, 0x00); // bit 4 clears, the rest stays
    CHECK(get_cr(r.vga, 7) == 0x07);
    set_cr(r.vga, 7, 0xFF);
    CHECK(get_cr(r.vga, 7) == 0x17);
    set_cr(r.vga, 8, 0x55); // above CR7: writable
    CHECK(get_cr(r.vga, 8) == 0x55);
    set_cr(r.vga, 0x11, 0x00);
    set_cr(r.vga, 0, 0xEE);
    CHECK(get_cr(r.vga, 0) == 0xEE);
    // All 256 CRTC indices are kept and read back (QEMU): no index can reach outside.
    for (unsigned i = 0x19; i < 256; i++) {
        set_cr(r.vga, uint8_t(i), uint8_t(i));
        CHECK(get_cr(r.vga, uint8_t(i)) == uint8_t(i));
    }
}

TEST_CASE("attribute controller: flip-flop, reset by input status 1, index bit 5") {
    Rig r;
    inb(r.vga, 0x3DA);
    CHECK_FALSE(r.vga.attr_flip_flop());
    outb(r.vga, 0x3C0, 0x12); // index
    CHECK(r.vga.attr_flip_flop());
    CHECK(inb(r.vga, 0x3C0) == 0); // data phase reads 0
    outb(r.vga, 0x3C0, 0xFF);      // data: plane enable keeps bits 5:0
    CHECK_FALSE(r.vga.attr_flip_flop());
    CHECK(inb(r.vga, 0x3C0) == 0x12); // index phase reads the index
    CHECK(inb(r.vga, 0x3C1) == 0x3F);
    // Index, then a read of 0x3DA: the next write is an index again.
    outb(r.vga, 0x3C0, 0x05);
    inb(r.vga, 0x3DA);
    outb(r.vga, 0x3C0, 0x10 | 0x20);
    outb(r.vga, 0x3C0, 0xFF);
    CHECK(r.vga.ar(0x10) == 0xEF);    // mode control: bit 4 reserved
    CHECK(r.vga.ar(0x05) == 0x00);    // untouched
    CHECK(inb(r.vga, 0x3C0) == 0x30); // index keeps bit 5 (screen on)
    // Palette registers keep 6 bits; indices 0x15-0x1F hold nothing and read 0.
    set_ar(r.vga, 0x03, 0xFF);
    CHECK(r.vga.ar(3) == 0x3F);
    set_ar(r.vga, 0x1F, 0xFF);
    inb(r.vga, 0x3DA);
    outb(r.vga, 0x3C0, 0x1F);
    CHECK(inb(r.vga, 0x3C1) == 0);
    set_ar(r.vga, 0x14, 0xFF);
    CHECK(r.vga.ar(0x14) == 0x0F);
}

TEST_CASE("DAC: write and read indices, three-step RGB cycle, auto-increment") {
    Rig r;
    outb(r.vga, 0x3C8, 0xFE);
    CHECK(inb(r.vga, 0x3C7) == 0);                                       // DAC state: write mode
    for (uint8_t v : {1, 2, 3, 4, 5, 6, 7, 8, 9}) outb(r.vga, 0x3C9, v); // FE, FF, 00
    CHECK(inb(r.vga, 0x3C8) == 0x01);                                    // wrapped past 255
    CHECK(r.vga.palette()[0xFE * 3] == 1);
    CHECK(r.vga.palette()[0xFF * 3 + 2] == 6);
    CHECK(r.vga.palette()[0] == 7);
    // A partial triple is not committed until its third byte.
    outb(r.vga, 0x3C8, 0x10);
    outb(r.vga, 0x3C9, 0x3F);
    outb(r.vga, 0x3C9, 0x3F);
    CHECK(r.vga.palette()[0x10 * 3] == 0);
    outb(r.vga, 0x3C9, 0x3F);
    CHECK(r.vga.palette()[0x10 * 3] == 0x3F);
    outb(r.vga, 0x3C7, 0xFF);
    CHECK(inb(r.vga, 0x3C7) == 3);
    CHECK(inb(r.vga, 0x3C9) == 4);
    CHECK(inb(r.vga, 0x3C9) == 5);
    CHECK(inb(r.vga, 0x3C9) == 6);
    CHECK(inb(r.vga, 0x3C9) == 7); // index wrapped to 0
    // Setting an index restarts the RGB cycle.
    outb(r.vga, 0x3C7, 0xFE);
    CHECK(inb(r.vga, 0x3C9) == 1);
    outb(r.vga, 0x3C7, 0xFE);
    CHECK(inb(r.vga, 0x3C9) == 1);
    // PEL mask is stored.
    outb(r.vga, 0x3C6, 0x0F);
    CHECK(inb(r.vga, 0x3C6) == 0x0F);
}

TEST_CASE("input status 1: retrace and display-disabled follow the clock") {
    Rig r;
    set_mode(r.vga, kMode03);
    // Mode 3: 28.322 MHz, 9-dot characters, htotal 100, vtotal 449 -> one frame ~14.27 ms.
    const uint64_t frame_ns = 100ull * 449 * 9 * 1000000000ull / 28322000;
    int vretrace = 0, blank = 0, samples = 2000;
    for (int i = 0; i < samples; i++) {
        uint8_t st = inb(r.vga, 0x3DA);
        if (st & 0x08) {
            vretrace++;
            CHECK((st & 0x01)); // retrace implies display disabled
        }
        if (st & 0x01) blank++;
        r.clock.advance(frame_ns / samples + 1);
    }
    // Vertical retrace lasts lines 0x9C..0x9C+0xE+1 = 16 of 449 lines (~3.6%).
    CHECK(vretrace > samples * 2 / 100);
    CHECK(vretrace < samples * 6 / 100);
    CHECK(blank > vretrace);
    // Without time passing the status does not change.
    uint8_t a = inb(r.vga, 0x3DA), b = inb(r.vga, 0x3DA);
    CHECK(a == b);
    // Feature control: bit 4 stored, read at 0x3CA.
    outb(r.vga, 0x3DA, 0xFF);
    CHECK(inb(r.vga, 0x3CA) == 0x10);
}

TEST_CASE("planar read mode 0 loads latches; read mode 1 compares colours") {
    Rig r;
    planar(r.vga);
    fill_planes(r.vga, 0x10, 0x11, 0x22, 0x44, 0x88);
    set_gr(r.vga, 4, 2);
    CHECK(r.vga.read_window(0x10) == 0x44);
    CHECK(r.vga.latch() == 0x88442211u);
    set_gr(r.vga, 4, 3);
    CHECK(r.vga.read_window(0x10) == 0x88);

    fill_planes(r.vga, 0x20, 0xF0, 0x0F, 0xFF, 0x00);
    set_gr(r.vga, 5, 0x08); // read mode 1
    set_gr(r.vga, 2, 0x05); // compare colour 5
    set_gr(r.vga, 7, 0x0F);
    CHECK(r.vga.read_window(0x20) == 0xF0); // pixels 7-4 are colour 5, 3-0 colour 6
    set_gr(r.vga, 2, 0x06);
    CHECK(r.vga.read_window(0x20) == 0x0F);
    set_gr(r.vga, 7, 0x04); // only plane 2 matters: every pixel has it set
    CHECK(r.vga.read_window(0x20) == 0xFF);
    set_gr(r.vga, 7, 0x00); // nothing matters: all match
    CHECK(r.vga.read_window(0x20) == 0xFF);
}

TEST_CASE("planar write modes 0-3 with rotate, set/reset, logic, bit mask and map mask") {
    Rig r;
    planar(r.vga);
    auto latch_from = [&](uint8_t p0, uint8_t p1, uint8_t p2, uint8_t p3) {
        fill_planes(r.vga, 0x100, p0, p1, p2, p3);
        r.vga.read_window(0x100);
    };

    SUBCASE("mode 0: plain, rotate") {
        r.vga.write_window(0x10, 0xA5);
        CHECK(planes(r.vga, 0x10) == std::array<uint8_t, 4>{0xA5, 0xA5, 0xA5, 0xA5});
        set_gr(r.vga, 3, 0x04); // rotate right by 4
        r.vga.write_window(0x11, 0xA5);
        CHECK(planes(r.vga, 0x11) == std::array<uint8_t, 4>{0x5A, 0x5A, 0x5A, 0x5A});
    }
    SUBCASE("mode 0: set/reset replaces enabled planes") {
        set_gr(r.vga, 0, 0x05);
        set_gr(r.vga, 1, 0x0F);
        r.vga.write_window(0x10, 0x3C);
        CHECK(planes(r.vga, 0x10) == std::array<uint8_t, 4>{0xFF, 0x00, 0xFF, 0x00});
        set_gr(r.vga, 1, 0x03); // planes 2/3 take the CPU data
        r.vga.write_window(0x10, 0x3C);
        CHECK(planes(r.vga, 0x10) == std::array<uint8_t, 4>{0xFF, 0x00, 0x3C, 0x3C});
    }
    SUBCASE("mode 0: bit mask keeps latched bits") {
        latch_from(0x11, 0x22, 0x44, 0x88);
        set_gr(r.vga, 8, 0x0F);
        r.vga.write_window(0x10, 0xFF);
        CHECK(planes(r.vga, 0x10) == std::array<uint8_t, 4>{0x1F, 0x2F, 0x4F, 0x8F});
    }
    SUBCASE("mode 0: logical operations with the latches") {
        latch_from(0x11, 0x22, 0x44, 0x88);
        set_gr(r.vga, 3, 0x08); // AND
        r.vga.write_window(0x10, 0xF0);
        CHECK(planes(r.vga, 0x10) == std::array<uint8_t, 4>{0x10, 0x20, 0x40, 0x80});
        set_gr(r.vga, 3, 0x10); // OR
        r.vga.write_window(0x11, 0x0F);
        CHECK(planes(r.vga, 0x11) == std::array<uint8_t, 4>{0x1F, 0x2F, 0x4F, 0x8F});
        set_gr(r.vga, 3, 0x18); // XOR
        r.vga.write_window(0x12, 0xFF);
        CHECK(planes(r.vga, 0x12) == std::array<uint8_t, 4>{0xEE, 0xDD, 0xBB, 0x77});
    }
    SUBCASE("map mask selects the planes written") {
        set_sr(r.vga, 2, 0x05);
        r.vga.write_window(0x10, 0x77);
        CHECK(planes(r.vga, 0x10) == std::array<uint8_t, 4>{0x77, 0x00, 0x77, 0x00});
    }
    SUBCASE("mode 1: copies the latches") {
        latch_from(0x12, 0x34, 0x56, 0x78);
        set_gr(r.vga, 5, 0x01);
        set_gr(r.vga, 8, 0x00); // bit mask does not apply in mode 1
        r.vga.write_window(0x10, 0x00);
        CHECK(planes(r.vga, 0x10) == std::array<uint8_t, 4>{0x12, 0x34, 0x56, 0x78});
    }
    SUBCASE("mode 2: CPU data bits 3:0 are a colour") {
        latch_from(0x11, 0x22, 0x44, 0x88);
        set_gr(r.vga, 5, 0x02);
        set_gr(r.vga, 8, 0xF0);
        r.vga.write_window(0x10, 0x0B);
        CHECK(planes(r.vga, 0x10) == std::array<uint8_t, 4>{0xF1, 0xF2, 0x04, 0xF8});
    }
    SUBCASE("mode 3: rotated CPU data ANDs the bit mask, set/reset is the colour") {
        latch_from(0x11, 0x22, 0x44, 0x88);
        set_gr(r.vga, 5, 0x03);
        set_gr(r.vga, 0, 0x0C);
        set_gr(r.vga, 8, 0x3C);
        r.vga.write_window(0x10, 0xF0); // mask = 0x3C & 0xF0 = 0x30
        CHECK(planes(r.vga, 0x10) == std::array<uint8_t, 4>{0x01, 0x02, 0x74, 0xB8});
    }
}

TEST_CASE("chain-4 and odd/even addressing; GR6 memory map select") {
    Rig r;
    // Chain-4 (mode 13h): bytes go straight to VRAM, plane = address bits 1:0.
    set_mode(r.vga, kMode13);
    r.vga.write_window(0x1235, 0x42);
    CHECK(r.vga.vram()[0x1235] == 0x42);
    CHECK(r.vga.read_window(0x1235) == 0x42);
    set_sr(r.vga, 2, 0x0E); // plane 0 disabled: address 0x1234 is in plane 0
    r.vga.write_window(0x1234, 0x99);
    CHECK(r.vga.vram()[0x1234] == 0x00);
    // Mode 13h maps 64K at A0000: B0000 and beyond decode nothing.
    CHECK(r.vga.read_window(0x10000) == 0xFF);

    // Odd/even (text): even bytes to plane 0, odd to plane 1, 32K window at B8000.
    set_mode(r.vga, kMode03);
    r.vga.write_window(0x18000 + 10, 'H');
    r.vga.write_window(0x18000 + 11, 0x1F);
    CHECK(r.vga.vram()[5 * 4 + 0] == 'H');
    CHECK(r.vga.vram()[5 * 4 + 1] == 0x1F);
    CHECK(r.vga.read_window(0x18000 + 10) == 'H');
    CHECK(r.vga.read_window(0x18000 + 11) == 0x1F);
    CHECK(r.vga.read_window(0x00000) == 0xFF); // A0000 not decoded in map 3
    CHECK(r.vga.read_window(0x10000) == 0xFF); // nor B0000
    set_gr(r.vga, 6, 0x0A);                    // map 2: 32K at B0000
    CHECK(r.vga.read_window(0x10000 + 10) == 'H');
    CHECK(r.vga.read_window(0x18000 + 10) == 0xFF);
    set_gr(r.vga, 6, 0x02); // map 0: 128K at A0000
    CHECK(r.vga.read_window(10) == 'H');
    CHECK(r.vga.read_window(0x1FFFF) == 0x00);
}

TEST_CASE("window handler through the bus: wide accesses are split into bytes") {
    Rig r;
    set_mode(r.vga, kMode13);
    Bus mmio("mmio");
    mmio.add(vga::kWindowBase, vga::kWindowSize, &r.vga.window(), AccessSizes{1, 4}, "vga");
    Bus pio("pio");
    pio.add(vga::kPortBase, vga::kPortCount, &r.vga.io(), AccessSizes{1, 1}, "vga-io");
    uint8_t w[4] = {1, 2, 3, 4};
    mmio.write(0xA0000 + 64, w);
    CHECK(r.vga.vram()[64] == 1);
    CHECK(r.vga.vram()[67] == 4);
    // out dx, ax on 0x3C4: index then data.
    uint8_t sr[2] = {0x02, 0x03};
    pio.write(0x3C4, sr);
    CHECK(r.vga.sr(2) == 0x03);
}

TEST_CASE("hostile: random register and window traffic stays inside VRAM") {
    // The VGA core with the smallest VRAM, hammered with random port and window accesses
    // (every index value, every memory map, every mode): ASan proves nothing escapes.
    FakeClock clock;
    VgaCore v(clock, 256 * 1024);
    std::mt19937 rng(1234);
    Framebuffer fb;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 500; i++) {
            uint16_t port = uint16_t(0x3B0 + rng() % 0x30);
            if (rng() & 1)
                v.write_port(port, uint8_t(rng()));
            else
                v.read_port(port);
            uint32_t off = rng() % 0x20000;
            if (rng() & 1)
                v.write_window(off, uint8_t(rng()));
            else
                v.read_window(off);
        }
        v.render(fb);
        (void)v.text_screen();
        CHECK(fb.width <= VgaCore::kMaxFrameWidth);
        CHECK(fb.height <= VgaCore::kMaxFrameHeight);
        CHECK(fb.pixels.size() == size_t(fb.stride) * fb.height);
    }
}

TEST_CASE("state: save, change, restore, equal; hostile state refused") {
    Rig r;
    set_mode(r.vga, kMode03);
    load_ega_palette(r.vga);
    r.vga.write_window(0x18000, 'X');
    inb(r.vga, 0x3DA);
    outb(r.vga, 0x3C0, 0x31); // leave the flip-flop in data phase
    StateWriter w;
    r.vga.save(w);

    FakeClock c2;
    VgaCore other(c2, 256 * 1024);
    StateReader rd(w.data());
    other.load(rd);
    CHECK(rd.at_end());
    CHECK(other.attr_flip_flop());
    CHECK(other.vram()[0] == 'X');
    CHECK(other.cr(0x13) == 0x28);
    CHECK(other.palette() == r.vga.palette());
    CHECK(other.text_screen().lines[0][0] == 'X');

    // Wrong VRAM size.
    VgaCore bigger(c2, 512 * 1024);
    StateReader rd2(w.data());
    CHECK_THROWS_AS(bigger.load(rd2), StateError);

    // Corrupt the flip-flop byte. Layout: section header (len, "vga", version), then every
    // field as a 4-byte length and its bytes: vram size, SR, GR, CR, AR, then 14 single bytes
    // of which the flip-flop is the fifth.
    std::vector<uint8_t> bad = w.data();
    size_t ff = (4 + 3 + 4) + (4 + 4) + 3 * (4 + 256) + (4 + 32) + 4 * (4 + 1) + 4;
    REQUIRE(bad[ff] == 1);
    bad[ff] = 7;
    StateReader rd3(bad);
    CHECK_THROWS_AS(other.load(rd3), StateError);
}
