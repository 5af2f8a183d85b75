// VGA rendering: text (fonts from plane 2, 9-dot columns, cursor and blink), the text-screen
// reader, mode 13h, 16-colour planar, the dirty-row hint and the screendump encoders.
#include <doctest/doctest.h>

#include <cstring>

#include "devmodel/display/screendump.hpp"
#include "devmodel/display/vga_core.hpp"
#include "tests/unit/display/display_test_support.hpp"

using namespace hvm;
using namespace hvm::test;

namespace {

constexpr uint8_t kGlyphA[16] = {0x00, 0x00, 0x10, 0x38, 0x6C, 0xC6, 0xC6, 0xFE,
                                 0xC6, 0xC6, 0xC6, 0xC6, 0x00, 0x00, 0x00, 0x00};
constexpr uint8_t kGlyphB[16] = {0x00, 0x00, 0xFC, 0x66, 0x66, 0x66, 0x7C, 0x66,
                                 0x66, 0x66, 0x66, 0xFC, 0x00, 0x00, 0x00, 0x00};
constexpr uint8_t kGlyphHLine[16] = {0, 0, 0, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0}; // 0xC4

// Loads a glyph the way the VGA BIOS does: plane 2 only, sequential addressing, 64K at A0000.
void load_glyph(VgaCore& v, uint8_t ch, const uint8_t* rows) {
    set_sr(v, 2, 0x04);
    set_sr(v, 4, 0x06);
    set_gr(v, 4, 0x02);
    set_gr(v, 5, 0x00);
    set_gr(v, 6, 0x04);
    for (unsigned r = 0; r < 16; r++) v.write_window(uint32_t(ch) * 32 + r, rows[r]);
    set_sr(v, 2, 0x03);
    set_sr(v, 4, 0x02);
    set_gr(v, 4, 0x00);
    set_gr(v, 5, 0x10);
    set_gr(v, 6, 0x0E);
}

void put_text(VgaCore& v, unsigned row, unsigned col, const char* s, uint8_t attr) {
    for (unsigned i = 0; s[i]; i++) {
        uint32_t off = 0x18000 + (row * 80 + col + i) * 2;
        v.write_window(off, uint8_t(s[i]));
        v.write_window(off + 1, attr);
    }
}

// Reference colour of an EGA palette index through the default attribute mapping.
uint32_t ega(unsigned ar_value) {
    auto c6 = [](unsigned v) {
        v &= 0x3F;
        return (v << 2) | ((v & 1) << 1) | (v & 1);
    };
    auto comp = [&](unsigned hi, unsigned lo) {
        return c6(((ar_value >> hi) & 1) * 0x2A + ((ar_value >> lo) & 1) * 0x15);
    };
    return comp(2, 5) << 16 | comp(1, 4) << 8 | comp(0, 3);
}

struct TextRig {
    FakeClock clock;
    VgaCore vga{clock, 256 * 1024};
    TextRig() {
        set_mode(vga, kMode03);
        load_ega_palette(vga);
        load_glyph(vga, 'A', kGlyphA);
        load_glyph(vga, 'B', kGlyphB);
        load_glyph(vga, 0xC4, kGlyphHLine);
        // Blank screen: spaces in light grey.
        for (unsigned i = 0; i < 80 * 25; i++) {
            vga.write_window(0x18000 + i * 2, ' ');
            vga.write_window(0x18000 + i * 2 + 1, 0x07);
        }
        put_text(vga, 0, 0, "AB", 0x1E);
        const char line[] = {char(0xC4), 0};
        put_text(vga, 0, 2, line, 0x07);
        put_text(vga, 1, 0, "Hello, world", 0x07);
        put_text(vga, 24, 70, "C:\\>", 0x0F);
        set_cr(vga, 0x0E, 0x00);
        set_cr(vga, 0x0F, 80); // cursor at row 1, column 0
    }
};

} // namespace

TEST_CASE("text mode: glyphs from plane 2, attributes, 9th column and cursor") {
    TextRig r;
    Framebuffer fb;
    r.vga.render(fb);
    REQUIRE(fb.width == 720);
    REQUIRE(fb.height == 400);
    CHECK(fb.changed);

    uint32_t yellow = ega(0x3E), blue = ega(0x01), grey = ega(0x07), black = ega(0x00);
    // 'A' row 3 = 0x38: columns 2-4 foreground.
    for (unsigned x = 0; x < 9; x++) CHECK(fb.pixel(x, 3) == ((x >= 2 && x <= 4) ? yellow : blue));
    // 'A' is not a line-graphics code: its 9th column is background even where bit 0 is set.
    CHECK(fb.pixel(8, 7) == blue);
    CHECK(fb.pixel(7, 7) == blue);
    CHECK(fb.pixel(6, 7) == yellow);
    // 0xC4 with AR10 bit 2: the 9th column repeats the 8th.
    for (unsigned x = 18; x < 27; x++) CHECK(fb.pixel(x, 7) == grey);
    CHECK(fb.pixel(18, 6) == black);
    // Cursor (CR0A=0x0D, CR0B=0x0E) on row 1 column 0: scan lines 13-14 in the foreground.
    for (unsigned x = 0; x < 9; x++) {
        CHECK(fb.pixel(x, 16 + 13) == grey);
        CHECK(fb.pixel(x, 16 + 14) == grey);
        CHECK(fb.pixel(x, 16 + 15) == black);
    }
    // Blink: the cursor is off in the next half period, back on after it.
    r.clock.advance(VgaCore::kCursorBlinkHalfPeriodNs);
    r.vga.render(fb);
    CHECK(fb.pixel(0, 16 + 13) == black);
    r.clock.advance(VgaCore::kCursorBlinkHalfPeriodNs);
    r.vga.render(fb);
    CHECK(fb.pixel(0, 16 + 13) == grey);
    // CR0A bit 5 turns it off.
    set_cr(r.vga, 0x0A, 0x2D);
    r.vga.render(fb);
    CHECK(fb.pixel(0, 16 + 13) == black);
    set_cr(r.vga, 0x0A, 0x0D);

    // The whole frame against its golden checksum (saved as PNG on mismatch).
    r.vga.render(fb);
    CHECK(matches_golden(fb, 0x810a20ddb393ff66ull, "text-mode3"));
}

TEST_CASE("text mode: blinking characters and 8-dot cells") {
    TextRig r;
    put_text(r.vga, 2, 0, "A", 0x9E); // blink bit set, background 1 (bright bit dropped)
    Framebuffer fb;
    r.vga.render(fb);
    CHECK(fb.pixel(3, 32 + 3) == ega(0x3E));
    CHECK(fb.pixel(0, 32 + 3) == ega(0x01));
    r.clock.advance(2 * VgaCore::kCursorBlinkHalfPeriodNs); // character blink phase off
    r.vga.render(fb);
    CHECK(fb.pixel(3, 32 + 3) == ega(0x01));
    // AR10 bit 3 clear: bit 7 is background intensity (colour 9), no blinking.
    set_ar(r.vga, 0x10, 0x04);
    inb(r.vga, 0x3DA);
    outb(r.vga, 0x3C0, 0x20);
    r.vga.render(fb);
    CHECK(fb.pixel(3, 32 + 3) == ega(0x3E));
    CHECK(fb.pixel(0, 32 + 3) == ega(0x39));
    // SR1 bit 0: 8-dot characters make a 640-pixel-wide frame.
    set_sr(r.vga, 1, 0x01);
    r.vga.render(fb);
    CHECK(fb.width == 640);
    CHECK(fb.pixel(8 + 6, 3) == ega(0x3E)); // 'B' row 3 = 0x66 starts at x = 8
}

TEST_CASE("text screen reader") {
    TextRig r;
    TextScreen t = r.vga.text_screen();
    REQUIRE(t.columns == 80);
    REQUIRE(t.rows == 25);
    CHECK(t.lines[0].substr(0, 4) == "AB. ");
    CHECK(t.lines[1].rfind("Hello, world", 0) == 0);
    CHECK(t.contains("C:\\>"));
    CHECK(t.lines[24].substr(70, 4) == "C:\\>");
    CHECK(t.cells[0] == uint16_t('A' | 0x1E << 8));
    CHECK(t.cursor_row == 1);
    CHECK(t.cursor_column == 0);
    CHECK(t.text().find("Hello") != std::string::npos);
    // Start address moves the screen (scrolling).
    set_cr(r.vga, 0x0C, 0);
    set_cr(r.vga, 0x0D, 80);
    t = r.vga.text_screen();
    CHECK(t.lines[0].rfind("Hello", 0) == 0);
    CHECK(t.cursor_row == 0);
    // Screen off (attribute index bit 5 clear) or graphics: no text.
    inb(r.vga, 0x3DA);
    outb(r.vga, 0x3C0, 0x00);
    CHECK(r.vga.text_screen().columns == 0);
    Framebuffer fb;
    r.vga.render(fb);
    CHECK(fb.pixel(3, 3) == 0);
}

TEST_CASE("mode 13h: chain-4 pixels, doubled to 640x400") {
    FakeClock clock;
    VgaCore v(clock, 256 * 1024);
    set_mode(v, kMode13);
    set_dac(v, 4, 0x3F, 0x00, 0x20);
    set_dac(v, 0, 0x00, 0x00, 0x00);
    v.write_window(5 * 320 + 10, 4);
    Framebuffer fb;
    v.render(fb);
    REQUIRE(fb.width == 640);
    REQUIRE(fb.height == 400);
    const uint32_t magenta = 0xFF0080; // 6-bit 0x3F -> 0xFF, 0x20 -> 0x80
    for (unsigned dy = 0; dy < 2; dy++)
        for (unsigned dx = 0; dx < 2; dx++) CHECK(fb.pixel(20 + dx, 10 + dy) == magenta);
    CHECK(fb.pixel(19, 10) == 0);
    CHECK(fb.pixel(22, 10) == 0);
    CHECK(fb.pixel(20, 12) == 0);

    // Dirty rows: nothing changed -> nothing dirty; one pixel -> its two screen rows.
    v.render(fb);
    CHECK_FALSE(fb.changed);
    v.write_window(100 * 320 + 1, 4);
    v.render(fb);
    CHECK(fb.changed);
    CHECK(fb.dirty_rows[200]);
    CHECK(fb.dirty_rows[201]);
    CHECK_FALSE(fb.dirty_rows[0]);
    CHECK_FALSE(fb.dirty_rows[399]);
    // A palette change redraws everything.
    set_dac(v, 4, 0, 0x3F, 0);
    v.render(fb);
    CHECK(fb.dirty_rows[0]);
    CHECK(fb.pixel(2, 200) == 0x00FF00);
}

TEST_CASE("mode 12h: 16-colour planar pixels through write mode 2") {
    FakeClock clock;
    VgaCore v(clock, 256 * 1024);
    set_mode(v, kMode12);
    load_ega_palette(v);
    set_gr(v, 5, 0x02);
    set_gr(v, 8, 0x80 >> 3);
    v.read_window(2 * 80); // latch
    v.write_window(2 * 80, 9);
    Framebuffer fb;
    v.render(fb);
    REQUIRE(fb.width == 640);
    REQUIRE(fb.height == 480);
    CHECK(fb.pixel(3, 2) == ega(0x39));
    CHECK(fb.pixel(2, 2) == 0);
    CHECK(fb.pixel(4, 2) == 0);
    // Colour plane enable (AR12) masks planes: without plane 3 the pixel is colour 1.
    set_ar(v, 0x12, 0x07);
    inb(v, 0x3DA);
    outb(v, 0x3C0, 0x20);
    v.render(fb);
    CHECK(fb.pixel(3, 2) == ega(0x01));
}

TEST_CASE("screendump: PPM and PNG encodings") {
    Framebuffer fb;
    fb.width = 3;
    fb.height = 2;
    fb.stride = 3;
    fb.pixels = {0xFF0000, 0x00FF00, 0x0000FF, 0x123456, 0xFFFFFF, 0x000000};
    auto ppm = encode_ppm(fb);
    const char hdr[] = "P6\n3 2\n255\n";
    REQUIRE(ppm.size() == strlen(hdr) + 18);
    CHECK(std::memcmp(ppm.data(), hdr, strlen(hdr)) == 0);
    CHECK(ppm[strlen(hdr) + 9] == 0x12);

    auto png = encode_png(fb);
    const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    REQUIRE(png.size() > 8);
    CHECK(std::memcmp(png.data(), sig, 8) == 0);
    // Walk the chunks, check every CRC, and inflate the stored blocks back to the scanlines.
    auto be32 = [&](size_t at) {
        return uint32_t(png[at]) << 24 | uint32_t(png[at + 1]) << 16 | uint32_t(png[at + 2]) << 8 |
               png[at + 3];
    };
    size_t pos = 8;
    std::vector<uint8_t> idat;
    std::vector<std::string> types;
    while (pos + 12 <= png.size()) {
        uint32_t len = be32(pos);
        std::string type(png.begin() + long(pos + 4), png.begin() + long(pos + 8));
        types.push_back(type);
        CHECK(be32(pos + 8 + len) == png_crc32(&png[pos + 4], len + 4));
        if (type == "IHDR") {
            CHECK(be32(pos + 8) == 3);
            CHECK(be32(pos + 12) == 2);
            CHECK(png[pos + 16] == 8);
            CHECK(png[pos + 17] == 2);
        }
        if (type == "IDAT")
            idat.insert(idat.end(), png.begin() + long(pos + 8), png.begin() + long(pos + 8 + len));
        pos += 12 + len;
    }
    CHECK(pos == png.size());
    CHECK(types == std::vector<std::string>{"IHDR", "IDAT", "IEND"});
    REQUIRE(idat.size() > 2 + 5 + 4);
    CHECK((idat[0] * 256 + idat[1]) % 31 == 0); // zlib header check
    CHECK(idat[2] == 1);                        // final stored block
    uint16_t n = uint16_t(idat[3] | idat[4] << 8);
    CHECK(uint16_t(~n) == uint16_t(idat[5] | idat[6] << 8));
    std::vector<uint8_t> raw(idat.begin() + 7, idat.begin() + 7 + n);
    std::vector<uint8_t> expect = {0, 0xFF, 0,    0,    0,    0xFF, 0,    0, 0, 0xFF,
                                   0, 0x12, 0x34, 0x56, 0xFF, 0xFF, 0xFF, 0, 0, 0};
    CHECK(raw == expect);
    size_t a = 7 + n;
    uint32_t adler = uint32_t(idat[a]) << 24 | uint32_t(idat[a + 1]) << 16 |
                     uint32_t(idat[a + 2]) << 8 | idat[a + 3];
    CHECK(adler == adler32(raw.data(), raw.size()));
    // Known check values.
    const char* nine = "123456789";
    CHECK(png_crc32(reinterpret_cast<const uint8_t*>(nine), 9) == 0xCBF43926u);
    CHECK(adler32(reinterpret_cast<const uint8_t*>("Wikipedia"), 9) == 0x11E60398u);

    // Files; an unwritable path is a user error.
    write_png(fb, "/tmp/hvm-vga-test.png");
    write_ppm(fb, "/tmp/hvm-vga-test.ppm");
    CHECK_THROWS(write_png(fb, "/nonexistent-dir/x.png"));
}
