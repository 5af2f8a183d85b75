// The Cirrus BitBLT engine against references computed here, and every hostile blit shape of
// the Cirrus CVE history refused without touching VRAM (ASan watches the VRAM vector's edges).
#include <doctest/doctest.h>

#include <functional>
#include <random>

#include "devmodel/display/cirrus_vga.hpp"
#include "tests/unit/display/display_test_support.hpp"

using namespace hvm;
using namespace hvm::test;
using namespace hvm::cirrus;

namespace {

struct Rig {
    FakeClock clock;
    CirrusVga dev{clock, {}, {}};
    CirrusVgaCore& c = dev.core();
    std::mt19937 rng{42};
    Rig() {
        outb(c, 0x3C2, 0x01);
        set_sr(c, 6, 0x12);
        set_sr(c, 7, 0x01); // extended, 8 bpp
    }
    void randomize() {
        // A cheap LCG: whole-VRAM noise for every test without dominating the run time.
        uint64_t x = rng();
        auto v = c.vram();
        for (size_t i = 0; i < v.size(); i += 8) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            for (size_t k = 0; k < 8; k++) v[i + k] = uint8_t(x >> (8 * k + 3));
        }
    }
    std::vector<uint8_t> snapshot() { return {c.vram().begin(), c.vram().end()}; }
    bool vram_equals(const std::vector<uint8_t>& v) {
        return std::equal(v.begin(), v.end(), c.vram().begin());
    }
    uint8_t status() { return get_gr(c, 0x31); }
};

struct Blit {
    int width = 1, height = 1; // in bytes / lines
    int dst_pitch = 0, src_pitch = 0;
    uint32_t dst = 0, src = 0;
    uint8_t mode = 0, rop = kRopSrc, modeext = 0;
};

void program(CirrusVgaCore& c, const Blit& b) {
    set_gr(c, 0x20, uint8_t(b.width - 1));
    set_gr(c, 0x21, uint8_t((b.width - 1) >> 8));
    set_gr(c, 0x22, uint8_t(b.height - 1));
    set_gr(c, 0x23, uint8_t((b.height - 1) >> 8));
    set_gr(c, 0x24, uint8_t(b.dst_pitch));
    set_gr(c, 0x25, uint8_t(b.dst_pitch >> 8));
    set_gr(c, 0x26, uint8_t(b.src_pitch));
    set_gr(c, 0x27, uint8_t(b.src_pitch >> 8));
    set_gr(c, 0x28, uint8_t(b.dst));
    set_gr(c, 0x29, uint8_t(b.dst >> 8));
    set_gr(c, 0x2A, uint8_t(b.dst >> 16));
    set_gr(c, 0x2C, uint8_t(b.src));
    set_gr(c, 0x2D, uint8_t(b.src >> 8));
    set_gr(c, 0x2E, uint8_t(b.src >> 16));
    set_gr(c, 0x30, b.mode);
    set_gr(c, 0x32, b.rop);
    set_gr(c, 0x33, b.modeext);
}

void start(CirrusVgaCore& c, const Blit& b) {
    program(c, b);
    set_gr(c, 0x31, 0x02);
}

struct RopCase {
    uint8_t code;
    std::function<uint8_t(uint8_t d, uint8_t s)> f;
};

const std::vector<RopCase>& rops() {
    static const std::vector<RopCase> v = {
        {kRop0, [](uint8_t, uint8_t) { return uint8_t(0); }},
        {kRopSrcAndDst, [](uint8_t d, uint8_t s) { return uint8_t(s & d); }},
        {kRopNop, [](uint8_t d, uint8_t) { return d; }},
        {kRopSrcAndNotDst, [](uint8_t d, uint8_t s) { return uint8_t(s & ~d); }},
        {kRopNotDst, [](uint8_t d, uint8_t) { return uint8_t(~d); }},
        {kRopSrc, [](uint8_t, uint8_t s) { return s; }},
        {kRop1, [](uint8_t, uint8_t) { return uint8_t(0xFF); }},
        {kRopNotSrcAndDst, [](uint8_t d, uint8_t s) { return uint8_t(~s & d); }},
        {kRopSrcXorDst, [](uint8_t d, uint8_t s) { return uint8_t(s ^ d); }},
        {kRopSrcOrDst, [](uint8_t d, uint8_t s) { return uint8_t(s | d); }},
        {kRopNotSrcOrNotDst, [](uint8_t d, uint8_t s) { return uint8_t(~s | ~d); }},
        {kRopSrcNotXorDst, [](uint8_t d, uint8_t s) { return uint8_t(~(s ^ d)); }},
        {kRopSrcOrNotDst, [](uint8_t d, uint8_t s) { return uint8_t(s | ~d); }},
        {kRopNotSrc, [](uint8_t, uint8_t s) { return uint8_t(~s); }},
        {kRopNotSrcOrDst, [](uint8_t d, uint8_t s) { return uint8_t(~s | d); }},
        {kRopNotSrcAndNotDst, [](uint8_t d, uint8_t s) { return uint8_t(~s & ~d); }},
    };
    return v;
}

} // namespace

TEST_CASE("blit: every ROP, forward, screen to screen") {
    for (const auto& rc : rops()) {
        CAPTURE(int(rc.code));
        Rig r;
        r.randomize();
        Blit b;
        b.width = 37;
        b.height = 9;
        b.dst_pitch = 80;
        b.src_pitch = 64;
        b.dst = 0x8003;
        b.src = 0x1001;
        b.rop = rc.code;
        auto ref = r.snapshot();
        for (int y = 0; y < b.height; y++)
            for (int x = 0; x < b.width; x++) {
                uint8_t& d = ref[b.dst + y * b.dst_pitch + x];
                d = rc.f(d, ref[b.src + y * b.src_pitch + x]);
            }
        start(r.c, b);
        CHECK(r.vram_equals(ref));
        CHECK((r.status() & 0x03) == 0); // done: start and busy clear
        CHECK(r.c.blits_refused() == 0);
    }
}

TEST_CASE("blit: every ROP, backward, overlapping (scroll down)") {
    for (const auto& rc : rops()) {
        CAPTURE(int(rc.code));
        Rig r;
        r.randomize();
        // Move a 50x20 rectangle at 0x2000 (pitch 100) down by 3 lines and right by 5: the
        // regions overlap, so the engine must walk backwards from the last byte.
        const int w = 50, h = 20, pitch = 100;
        const uint32_t src0 = 0x2000, dst0 = 0x2000 + 3 * pitch + 5;
        Blit b;
        b.width = w;
        b.height = h;
        b.dst_pitch = pitch;
        b.src_pitch = pitch;
        b.dst = dst0 + (h - 1) * pitch + (w - 1);
        b.src = src0 + (h - 1) * pitch + (w - 1);
        b.mode = kBltBackwards;
        b.rop = rc.code;
        auto ref = r.snapshot();
        for (int y = h - 1; y >= 0; y--)
            for (int x = w - 1; x >= 0; x--) {
                uint8_t& d = ref[dst0 + y * pitch + x];
                d = rc.f(d, ref[src0 + y * pitch + x]);
            }
        start(r.c, b);
        CHECK(r.vram_equals(ref));
        CHECK((r.status() & 0x03) == 0);
    }
}

TEST_CASE("blit: forward with pitch smaller than the width is a no-op (QEMU)") {
    Rig r;
    r.randomize();
    auto ref = r.snapshot();
    Blit b{32, 4, 16, 64, 0x100, 0x4000, 0, kRopSrc, 0};
    start(r.c, b);
    CHECK(r.vram_equals(ref));
}

TEST_CASE("blit: transparent compare at 8 and 16 bpp") {
    Rig r;
    r.randomize();
    for (int i = 0; i < 64; i++) r.c.vram()[0x1000 + i] = uint8_t(i % 3 == 0 ? 0x55 : i);
    auto ref = r.snapshot();
    for (int i = 0; i < 64; i++)
        if (ref[0x1000 + i] != 0x55) ref[0x9000 + i] = ref[0x1000 + i];
    set_gr(r.c, 0x34, 0x55);
    start(r.c, Blit{64, 1, 64, 64, 0x9000, 0x1000, kBltTransparentComp, kRopSrc, 0});
    CHECK(r.vram_equals(ref));

    // 16 bpp: whole 16-bit pixels compare against GR34/GR35.
    Rig r2;
    r2.randomize();
    for (int i = 0; i < 32; i++) {
        uint16_t px = i % 4 == 1 ? 0xBEEF : uint16_t(0x1000 + i);
        r2.c.vram()[0x2000 + 2 * i] = uint8_t(px);
        r2.c.vram()[0x2000 + 2 * i + 1] = uint8_t(px >> 8);
    }
    auto ref2 = r2.snapshot();
    for (int i = 0; i < 32; i++)
        if (!(ref2[0x2000 + 2 * i] == 0xEF && ref2[0x2001 + 2 * i] == 0xBE)) {
            ref2[0xA000 + 2 * i] = ref2[0x2000 + 2 * i];
            ref2[0xA001 + 2 * i] = ref2[0x2001 + 2 * i];
        }
    set_gr(r2.c, 0x34, 0xEF);
    set_gr(r2.c, 0x35, 0xBE);
    start(r2.c,
          Blit{64, 1, 64, 64, 0xA000, 0x2000, uint8_t(kBltTransparentComp | 0x10), kRopSrc, 0});
    CHECK(r2.vram_equals(ref2));
    // 24 bpp transparency does not exist: refused.
    start(r2.c,
          Blit{63, 1, 63, 63, 0xA000, 0x2000, uint8_t(kBltTransparentComp | 0x20), kRopSrc, 0});
    CHECK(r2.c.blits_refused() == 1);
    CHECK(r2.vram_equals(ref2));
}

TEST_CASE("blit: 8x8 pattern fill at 8, 16, 24 and 32 bpp") {
    for (int p = 1; p <= 4; p++) {
        CAPTURE(p);
        Rig r;
        r.randomize();
        // The display depth sets the pattern alignment; at 8 bpp it is 64 bytes.
        const uint32_t pat = 0x3000; // aligned for every size
        const int pattern_pitch = p == 1 ? 8 : (p == 2 ? 16 : 32);
        const int w = 24 * p, h = 11, pitch = 200;
        auto ref = r.snapshot();
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w / p; x++)
                for (int k = 0; k < p; k++) {
                    int px = x & 7;
                    uint32_t s = pat + (y & 7) * pattern_pitch + px * p + k;
                    ref[0x10000 + y * pitch + x * p + k] = ref[s];
                }
        start(r.c, Blit{w, h, pitch, 0, 0x10000, pat, uint8_t(kBltPatternCopy | ((p - 1) << 4)),
                        kRopSrc, 0});
        CHECK(r.vram_equals(ref));
        CHECK(r.c.blits_refused() == 0);
    }
}

TEST_CASE("blit: colour expansion, opaque, transparent and inverted, and solid fill") {
    for (int p = 1; p <= 4; p++) {
        CAPTURE(p);
        const uint32_t fg = 0xA1B2C3D4u, bg = 0x11223344u;
        auto colours = [&](CirrusVgaCore& c) {
            set_gr(c, 0x01, uint8_t(fg));
            set_gr(c, 0x11, uint8_t(fg >> 8));
            set_gr(c, 0x13, uint8_t(fg >> 16));
            set_gr(c, 0x15, uint8_t(fg >> 24));
            set_gr(c, 0x00, uint8_t(bg));
            set_gr(c, 0x10, uint8_t(bg >> 8));
            set_gr(c, 0x12, uint8_t(bg >> 16));
            set_gr(c, 0x14, uint8_t(bg >> 24));
        };
        const int npix = 20, h = 3, pitch = 128;
        const uint32_t src = 0x5000, dst = 0x20000;
        const uint8_t pw = uint8_t((p - 1) << 4);
        for (int variant = 0; variant < 4; variant++) {
            CAPTURE(variant);
            Rig r;
            r.randomize();
            colours(r.c);
            auto ref = r.snapshot();
            // Source bits: ceil(npix / 8) bytes a line, lines back to back (no pitch).
            int bytes_per_line = (npix + 7) / 8;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < npix; x++) {
                    bool bit = (ref[src + y * bytes_per_line + x / 8] >> (7 - x % 8)) & 1;
                    bool write;
                    uint32_t col;
                    switch (variant) {
                    case 0: // opaque
                        write = true;
                        col = bit ? fg : bg;
                        break;
                    case 1: // transparent
                        write = bit;
                        col = fg;
                        break;
                    case 2: // transparent, inverted: clear bits in the background colour
                        write = !bit;
                        col = bg;
                        break;
                    default: // solid fill
                        write = true;
                        col = fg;
                        break;
                    }
                    if (write)
                        for (int k = 0; k < p; k++)
                            ref[dst + y * pitch + x * p + k] = uint8_t(col >> (8 * k));
                }
            uint8_t mode = uint8_t(kBltColorExpand | pw);
            uint8_t ext = 0;
            if (variant == 1) mode |= kBltTransparentComp;
            if (variant == 2) {
                mode |= kBltTransparentComp;
                ext = kBltExtColorExpInv;
            }
            if (variant == 3) {
                mode = uint8_t(kBltColorExpand | kBltPatternCopy | pw);
                ext = kBltExtSolidFill;
            }
            start(r.c, Blit{npix * p, h, pitch, 16, dst, src, mode, kRopSrc, ext});
            CHECK(r.vram_equals(ref));
            CHECK(r.c.blits_refused() == 0);
        }
    }
}

TEST_CASE("blit: system to screen through the 0xA0000 window, the linear window and the aperture") {
    for (int path = 0; path < 3; path++) {
        CAPTURE(path);
        Rig r;
        r.randomize();
        const int w = 10, h = 3, pitch = 40; // CPU lines are padded to 12 bytes
        const uint32_t dst = 0x7000;
        auto ref = r.snapshot();
        std::vector<uint8_t> data(12 * h);
        for (size_t i = 0; i < data.size(); i++) data[i] = uint8_t(0x80 + i);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) ref[dst + y * pitch + x] = data[y * 12 + x];
        start(r.c, Blit{w, h, pitch, 0, dst, 0, kBltMemSysSrc, kRopSrc, 0});
        CHECK(r.c.blit_in_progress());
        CHECK((r.status() & 0x01) == 0x01); // busy until the data has arrived
        for (size_t i = 0; i < data.size(); i++) {
            if (path == 0) r.c.write_window(uint32_t(i % 0x10000), data[i]);
            if (path == 1) r.c.write_lfb(uint32_t(0x100 + i), data[i]);
            if (path == 2) r.c.write_lfb(kBlitApertureBase + uint32_t(i), data[i]);
        }
        CHECK_FALSE(r.c.blit_in_progress());
        CHECK((r.status() & 0x03) == 0);
        CHECK(r.vram_equals(ref));
        // Afterwards the windows write VRAM again.
        r.c.write_lfb(0x10, 0xEE);
        CHECK(r.c.vram()[0x10] == 0xEE);
    }
    // Colour expansion from the CPU: 16 pixels a line = 2 bytes.
    Rig r;
    r.randomize();
    set_gr(r.c, 0x01, 0xF0);
    set_gr(r.c, 0x00, 0x0F);
    auto ref = r.snapshot();
    const uint8_t bits[4] = {0x81, 0x00, 0xFF, 0x3C};
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 16; x++)
            ref[0x9000 + y * 64 + x] = ((bits[y * 2 + x / 8] >> (7 - x % 8)) & 1) ? 0xF0 : 0x0F;
    start(r.c, Blit{16, 2, 64, 0, 0x9000, 0, uint8_t(kBltMemSysSrc | kBltColorExpand), kRopSrc, 0});
    for (uint8_t b : bits) r.c.write_window(0, b);
    CHECK(r.vram_equals(ref));
}

TEST_CASE("blit: registers through BAR1 MMIO and autostart") {
    Rig r;
    r.randomize();
    auto ref = r.snapshot();
    for (int x = 0; x < 16; x++) ref[0x300 + x] = uint8_t(~ref[0x300 + x]);
    auto w16 = [&](unsigned off, uint16_t v) {
        r.c.write_mmio(0x100 + off, uint8_t(v));
        r.c.write_mmio(0x100 + off + 1, uint8_t(v >> 8));
    };
    w16(kMmioWidth, 15);
    w16(kMmioHeight, 0);
    w16(kMmioDstPitch, 16);
    w16(kMmioSrcPitch, 16);
    r.c.write_mmio(0x100 + kMmioSrcAddr, 0);
    r.c.write_mmio(0x100 + kMmioSrcAddr + 1, 0);
    r.c.write_mmio(0x100 + kMmioSrcAddr + 2, 0);
    r.c.write_mmio(0x100 + kMmioMode, 0);
    r.c.write_mmio(0x100 + kMmioRop, kRopNotDst);
    r.c.write_mmio(0x100 + kMmioStatus, kBltStatusAutoStart);
    // With autostart, writing the destination's top byte starts the blit.
    r.c.write_mmio(0x100 + kMmioDstAddr, 0x00);
    r.c.write_mmio(0x100 + kMmioDstAddr + 1, 0x03);
    CHECK_FALSE(r.vram_equals(ref));
    r.c.write_mmio(0x100 + kMmioDstAddr + 2, 0x00);
    CHECK(r.vram_equals(ref));
    CHECK((r.c.read_mmio(0x100 + kMmioStatus) & 0x03) == 0);
    // blitter=off: start requests are ignored.
    r.c.set_blitter_enabled(false);
    start(r.c, Blit{16, 1, 16, 16, 0x300, 0, 0, kRopNotDst, 0});
    CHECK(r.vram_equals(ref));
}

TEST_CASE("blit: hostile shapes are refused without touching VRAM") {
    Rig r;
    r.randomize();
    const uint32_t vram = r.c.vram_size();
    struct Case {
        const char* what;
        Blit b;
    };
    const std::vector<Case> cases = {
        {"destination crosses the VRAM end", {200, 1, 256, 256, vram - 100, 0, 0, kRopSrc, 0}},
        {"source crosses the VRAM end (CVE-2017-2615 class)",
         {200, 4, 256, 256, 0, vram - 300, 0, kRopSrc, 0}},
        {"negative pitch runs below VRAM start (CVE-2014-8106)",
         {100, 10, 100, 100, 50, 0x10000, kBltBackwards, kRopSrc, 0}},
        {"backward source below VRAM start",
         {100, 10, 100, 100, 0x10000, 50, kBltBackwards, kRopSrc, 0}},
        {"huge width and height", {8192, 8192, 8192, 8192, 0, 0, 0, kRopSrc, 0}},
        {"huge height, small pitch", {1, 8192, 0x1FFF, 1, 0x100, 0x100, 0, kRopSrc, 0}},
        {"zero destination pitch", {16, 2, 0, 16, 0x100, 0x200, 0, kRopSrc, 0}},
        {"zero source pitch", {16, 2, 16, 0, 0x100, 0x200, 0, kRopSrc, 0}},
        {"fill crosses the end",
         {64, 2, 8192, 0, vram - 8192 - 10, 0, uint8_t(kBltColorExpand | kBltPatternCopy), kRopSrc,
          kBltExtSolidFill}},
        {"pattern crosses the end",
         {64, 3, 4096, 0, vram - 4096 * 2 - 8, 0, kBltPatternCopy, kRopSrc, 0}},
        {"24-bit pixels end past VRAM although the width fits (extent check)",
         {4, 1, 16, 0, vram - 4, 0, uint8_t(kBltColorExpand | kBltPatternCopy | 0x20), kRopSrc,
          kBltExtSolidFill}},
        {"24-bit colour expansion ends past VRAM",
         {5, 1, 16, 16, vram - 5, 0, uint8_t(kBltColorExpand | 0x20), kRopSrc, 0}},
        {"system to screen into the VRAM end (CVE-2017-2620 class)",
         {64, 4, 64, 0, vram - 100, 0, kBltMemSysSrc, kRopSrc, 0}},
        {"memory to memory",
         {16, 1, 16, 16, 0, 0, uint8_t(kBltMemSysSrc | kBltMemSysDest), kRopSrc, 0}},
        {"video to system (not implemented, as QEMU)",
         {16, 1, 16, 16, 0, 0, kBltMemSysDest, kRopSrc, 0}},
    };
    uint64_t refused = 0;
    for (const auto& tc : cases) {
        std::string what = tc.what;
        CAPTURE(what);
        auto before = r.snapshot();
        start(r.c, tc.b);
        CHECK(r.c.blits_refused() == ++refused);
        CHECK((r.status() & 0x03) == 0); // idle
        CHECK_FALSE(r.c.blit_in_progress());
        CHECK(r.vram_equals(before));
        // CPU data after a refused system-to-screen blit is ordinary VRAM traffic.
        r.c.write_lfb(0x40, 0x12);
        CHECK(r.c.vram()[0x40] == 0x12);
        r.c.vram()[0x40] = before[0x40];
    }
    // The same shapes just inside VRAM are accepted.
    start(r.c, Blit{100, 1, 256, 256, vram - 100, 0, 0, kRopSrc, 0});
    CHECK(r.c.blits_refused() == refused);
    start(r.c, Blit{100, 10, 100, 100, 100 * 9 + 99, 0x10000, kBltBackwards, kRopSrc, 0});
    CHECK(r.c.blits_refused() == refused);
    start(r.c, Blit{3, 1, 16, 0, vram - 3, 0, uint8_t(kBltColorExpand | kBltPatternCopy | 0x20),
                    kRopSrc, kBltExtSolidFill});
    CHECK(r.c.blits_refused() == refused);
}

TEST_CASE("blit: random register programs never reach outside VRAM") {
    // Fuzz the blitter registers with random values (and random CPU data), ASan watching.
    FakeClock clock;
    CirrusVga dev(clock, {}, {});
    CirrusVgaCore& c = dev.core();
    outb(c, 0x3C2, 0x01);
    set_sr(c, 7, 0x01);
    std::mt19937 rng(7);
    for (int i = 0; i < 800; i++) {
        for (uint8_t g = 0x20; g <= 0x39; g++)
            if (g != 0x31 && g != 0x2A) set_gr(c, g, uint8_t(rng()));
        // Small blits most of the time so the run stays quick, huge ones sometimes.
        if (rng() % 8) {
            set_gr(c, 0x21, 0);
            set_gr(c, 0x23, 0);
            set_gr(c, 0x22, uint8_t(rng() % 16));
        }
        set_gr(c, 0x2A, uint8_t(rng()));
        set_sr(c, 7, uint8_t((rng() & 0x0E) | 1));
        set_gr(c, 0x31, 0x02);
        for (int k = 0; k < 40; k++) c.write_window(rng() % 0x10000, uint8_t(rng()));
        set_gr(c, 0x31, 0x04); // reset
        set_gr(c, 0x31, 0x00);
    }
    CHECK_FALSE(c.blit_in_progress());
}

TEST_CASE("blit: a system-to-screen blit survives save and restore") {
    Rig r;
    r.randomize();
    start(r.c, Blit{8, 2, 32, 0, 0x4000, 0, kBltMemSysSrc, kRopSrc, 0});
    for (int i = 0; i < 8; i++) r.c.write_window(0, uint8_t(i + 1)); // first line
    StateWriter w;
    r.dev.save(w);
    FakeClock c2;
    CirrusVga other(c2, {}, {});
    StateReader rd(w.data());
    other.load(rd);
    CHECK(other.core().blit_in_progress());
    for (int i = 0; i < 8; i++) other.core().write_window(0, uint8_t(0x10 + i));
    CHECK_FALSE(other.core().blit_in_progress());
    for (int i = 0; i < 8; i++) {
        CHECK(other.core().vram()[0x4000 + i] == i + 1);
        CHECK(other.core().vram()[0x4000 + 32 + i] == 0x10 + i);
    }
}
