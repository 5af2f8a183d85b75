// Rendering of the VGA core's current mode into XRGB (QEMU hw/display/vga.c vga_draw_text,
// vga_draw_graphic and vga-helpers.h for how QEMU 7.2 shows each mode; IBM VGA TR for the
// attribute controller's blink and 9th-column rules). Every VRAM read goes through vram_byte(),
// which wraps at the VRAM size, so no register value can make the renderer read outside VRAM.
#include <algorithm>

#include "devmodel/display/vga_core.hpp"

namespace hvm {

using namespace vga;

namespace {

// 6-bit DAC value to 8 bits, as QEMU's c6_to_8.
uint32_t c6_to_8(uint8_t v) {
    v &= 0x3F;
    uint32_t b = v & 1;
    return uint32_t(v) << 2 | b << 1 | b;
}

uint32_t rgb(uint32_t r, uint32_t g, uint32_t b) {
    return (r & 0xFF) << 16 | (g & 0xFF) << 8 | (b & 0xFF);
}

struct Fnv {
    uint64_t h = 1469598103934665603ull;
    void add(uint64_t v) {
        for (int i = 0; i < 8; i++) {
            h ^= (v >> (8 * i)) & 0xFF;
            h *= 1099511628211ull;
        }
    }
    template <typename C> void add_all(const C& c) {
        for (auto v : c) add(v);
    }
};

bool resize(Framebuffer& fb, uint32_t w, uint32_t h) {
    bool changed =
        fb.width != w || fb.height != h || fb.stride != w || fb.pixels.size() != size_t(w) * h;
    fb.width = w;
    fb.height = h;
    fb.stride = w;
    fb.pixels.resize(size_t(w) * h);
    fb.dirty_rows.assign(h, 0);
    return changed;
}

} // namespace

VgaCore::DisplayOffsets VgaCore::display_offsets() const {
    DisplayOffsets o;
    o.line_offset = uint32_t(cr_[kCrOffset]) << 3;
    o.start_addr = uint32_t(cr_[kCrStartHigh]) << 8 | cr_[kCrStartLow];
    o.line_compare = cr_[kCrLineCompare] | (uint32_t(cr_[kCrOverflow] & 0x10) << 4) |
                     (uint32_t(cr_[kCrMaxScanLine] & 0x40) << 3);
    return o;
}

void VgaCore::display_resolution(uint32_t& width, uint32_t& height) const {
    width = (uint32_t(cr_[kCrHDisplayEnd]) + 1) * 8;
    height = (cr_[kCrVDisplayEnd] | (uint32_t(cr_[kCrOverflow] & 0x02) << 7) |
              (uint32_t(cr_[kCrOverflow] & 0x40) << 3)) +
             1;
}

VgaCore::GfxMode VgaCore::current_mode() const {
    if (!(ar_index_ & kArIndexPaletteSource)) return GfxMode::Blank;
    return (gr_[kGrMisc] & kGr06Graphics) ? GfxMode::Graphic : GfxMode::Text;
}

bool VgaCore::in_text_mode() const {
    return current_mode() == GfxMode::Text;
}

uint64_t VgaCore::mode_signature(GfxMode mode) const {
    Fnv f;
    f.add(uint64_t(mode));
    for (unsigned i = 0; i <= kSrMemoryMode; i++) f.add(sr_[i]);
    f.add(gr_[kGrMode]);
    f.add(gr_[kGrMisc]);
    for (unsigned i = 0; i <= kCrLineCompare; i++) f.add(cr_[i]);
    for (unsigned i = 0; i < kArCount; i++) f.add(ar_[i]);
    f.add_all(palette_);
    f.add(dac_8bit_);
    f.add(display_bpp());
    DisplayOffsets o = display_offsets();
    f.add(o.line_offset);
    f.add(o.start_addr);
    f.add(o.line_compare);
    f.add(display_signature());
    return f.h;
}

bool VgaCore::range_dirty(uint64_t addr, uint64_t len) const {
    if (len == 0) return false;
    uint64_t blocks = vram_size_ / kDirtyBlock;
    uint64_t first = (addr & vram_mask_) / kDirtyBlock;
    uint64_t count =
        std::min<uint64_t>(blocks, ((addr & (kDirtyBlock - 1)) + len - 1) / kDirtyBlock + 1);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t b = (first + i) % blocks;
        if (dirty_[b / 64] & (1ull << (b % 64))) return true;
    }
    return false;
}

void VgaCore::palette16(std::array<uint32_t, 16>& pal) const {
    for (unsigned i = 0; i < 16; i++) {
        unsigned v = ar_[i];
        // AR10 bit 7 takes palette bits 5:4 from the colour select register (IBM VGA TR).
        if (ar_[kArMode] & kAr10P54Select)
            v = ((ar_[kArColorSelect] & 0x0F) << 4) | (v & 0x0F);
        else
            v = ((ar_[kArColorSelect] & 0x0C) << 4) | (v & 0x3F);
        v *= 3;
        pal[i] = rgb(c6_to_8(palette_[v]), c6_to_8(palette_[v + 1]), c6_to_8(palette_[v + 2]));
    }
}

void VgaCore::palette256(std::array<uint32_t, 256>& pal) const {
    for (unsigned i = 0; i < 256; i++) {
        const uint8_t* p = &palette_[i * 3];
        pal[i] =
            dac_8bit_ ? rgb(p[0], p[1], p[2]) : rgb(c6_to_8(p[0]), c6_to_8(p[1]), c6_to_8(p[2]));
    }
}

void VgaCore::render(Framebuffer& fb) {
    GfxMode mode = current_mode();
    uint64_t sig = mode_signature(mode);
    bool full = !rendered_once_ || sig != last_signature_;
    last_signature_ = sig;
    rendered_once_ = true;
    switch (mode) {
    case GfxMode::Blank:
        render_blank(fb);
        if (full) std::fill(fb.dirty_rows.begin(), fb.dirty_rows.end(), 1);
        break;
    case GfxMode::Text: render_text(fb, full); break;
    case GfxMode::Graphic: render_graphic(fb, full); break;
    }
    fb.changed =
        std::any_of(fb.dirty_rows.begin(), fb.dirty_rows.end(), [](uint8_t d) { return d; });
    std::fill(dirty_.begin(), dirty_.end(), 0);
    font_dirty_ = false;
}

void VgaCore::render_blank(Framebuffer& fb) {
    resize(fb, last_width_, last_height_);
    std::fill(fb.pixels.begin(), fb.pixels.end(), 0);
}

void VgaCore::text_geometry(unsigned& cols, unsigned& rows, unsigned& cw, unsigned& ch) const {
    ch = (cr_[kCrMaxScanLine] & 0x1F) + 1u;
    cw = (sr_[kSrClocking] & kSr01Dots8) ? 8 : 9;
    if (sr_[kSrClocking] & kSr01DotClockDiv2) cw = 16; // QEMU: no 18-pixel cells
    cols = cr_[kCrHDisplayEnd] + 1u;
    if (cr_[kCrVTotal] == 100) {
        rows = 100; // QEMU's special case for the CGA 160x100x16 tweak mode
    } else {
        unsigned h = cr_[kCrVDisplayEnd] | ((cr_[kCrOverflow] & 0x02u) << 7) |
                     ((cr_[kCrOverflow] & 0x40u) << 3);
        rows = (h + 1) / ch;
    }
}

void VgaCore::render_text(Framebuffer& fb, bool full) {
    unsigned cols, rows, cw, ch;
    text_geometry(cols, rows, cw, ch);
    if (cols * rows <= 1 || cols * rows > 160 * 100) { // QEMU: transient sizes are not drawn
        render_blank(fb);
        if (full) std::fill(fb.dirty_rows.begin(), fb.dirty_rows.end(), 1);
        return;
    }
    uint32_t W = std::min<uint32_t>(cols * cw, kMaxFrameWidth);
    uint32_t H = std::min<uint32_t>(rows * ch, kMaxFrameHeight);
    last_width_ = W;
    last_height_ = H;
    full |= resize(fb, W, H);

    std::array<uint32_t, 16> pal;
    palette16(pal);
    // Character map select (SR3): map A for attribute bit 3 = 1, map B for 0; each map is
    // 8 KiB of plane 2 at one of eight 16 KiB-aligned bases (IBM VGA TR, SR3).
    uint8_t v = sr_[kSrCharMap];
    uint64_t font_base[2] = {
        uint64_t(((v >> 4) & 1) | ((v << 1) & 6)) * 8192 * 4 + 2,
        uint64_t(((v >> 5) & 1) | ((v >> 1) & 6)) * 8192 * 4 + 2,
    };
    DisplayOffsets o = display_offsets();
    uint64_t cursor_addr = (uint64_t(cr_[kCrCursorHigh]) << 8 | cr_[kCrCursorLow]) * 4;
    uint64_t phase = clock_.now_ns() / kCursorBlinkHalfPeriodNs;
    bool cursor_on = !(cr_[kCrCursorStart] & kCr0aCursorOff) && !(phase & 1);
    bool blink_enabled = ar_[kArMode] & kAr10Blink;
    bool chars_on = !((phase >> 1) & 1);
    bool line_gfx = ar_[kArMode] & kAr10LineGraphics;

    // Cursor moves and blink phases redraw the whole (small) text frame.
    uint32_t cursor_state = uint32_t(cursor_addr) ^ uint32_t(cr_[kCrCursorStart]) << 24 ^
                            uint32_t(cr_[kCrCursorEnd]) << 16;
    uint64_t blink_state = (cursor_on ? 1 : 0) | (blink_enabled && !chars_on ? 2 : 0);
    if (cursor_state != last_text_cursor_ || blink_state != last_blink_phase_) full = true;
    last_text_cursor_ = cursor_state;
    last_blink_phase_ = blink_state;
    full |= font_dirty_;

    uint64_t offset = uint64_t(o.start_addr) * 4;
    uint32_t line = 0;
    for (unsigned cy = 0; cy < rows; cy++) {
        bool row_dirty = full || range_dirty(offset, uint64_t(cols) * 4);
        for (unsigned cx = 0; cx < cols; cx++) {
            uint64_t cell = offset + uint64_t(cx) * 4;
            uint8_t chr = vram_byte(cell), attr = vram_byte(cell + 1);
            uint64_t glyph = font_base[(attr >> 3) & 1] + 32 * 4 * uint64_t(chr);
            unsigned bgi = attr >> 4, fgi = attr & 0x0F;
            if (blink_enabled) {
                // AR10 bit 3: attribute bit 7 blinks the character instead of brightening the
                // background.
                bgi &= 7;
                if ((attr & 0x80) && !chars_on) fgi = bgi;
            }
            uint32_t fg = pal[fgi], bg = pal[bgi];
            bool dup9 = cw == 9 && line_gfx && chr >= 0xB0 && chr <= 0xDF;
            int cur_first = -1, cur_last = -2;
            if (cell == cursor_addr && cursor_on) {
                int ls = cr_[kCrCursorStart] & 0x1F, le = cr_[kCrCursorEnd] & 0x1F;
                le = std::min<int>(le, int(ch) - 1);
                if (le >= ls && ls < int(ch)) {
                    cur_first = ls;
                    cur_last = le;
                }
            }
            for (unsigned r = 0; r < ch; r++) {
                uint32_t y = cy * ch + r;
                if (y >= H) break;
                uint8_t bits = vram_byte(glyph + r * 4);
                if (int(r) >= cur_first && int(r) <= cur_last) bits = 0xFF;
                bool cursor_row = int(r) >= cur_first && int(r) <= cur_last;
                uint32_t* row = &fb.pixels[size_t(y) * fb.stride];
                for (unsigned px = 0; px < cw; px++) {
                    uint32_t x = cx * cw + px;
                    if (x >= W) break;
                    bool on;
                    if (cw == 16)
                        on = (bits >> (7 - px / 2)) & 1;
                    else if (px < 8)
                        on = (bits >> (7 - px)) & 1;
                    else
                        on = cursor_row || (dup9 && (bits & 1));
                    row[x] = on ? fg : bg;
                }
            }
        }
        for (unsigned r = 0; r < ch; r++) {
            uint32_t y = cy * ch + r;
            if (y < H) fb.dirty_rows[y] = row_dirty;
        }
        uint32_t line1 = line + ch;
        offset += o.line_offset;
        if (line < o.line_compare && line1 >= o.line_compare) offset = 0;
        line = line1;
    }
}

void VgaCore::render_graphic(Framebuffer& fb, bool full) {
    DisplayOffsets o = display_offsets();
    uint32_t width, height;
    display_resolution(width, height);
    unsigned shift_control = (gr_[kGrMode] >> 5) & 3;
    unsigned double_scan = cr_[kCrMaxScanLine] >> 7;
    unsigned multi_scan = shift_control != 1
                              ? (((cr_[kCrMaxScanLine] & 0x1Fu) + 1) << double_scan) - 1
                              : double_scan; // QEMU: CGA modes ignore the scan line count
    bool half_clock = sr_[kSrClocking] & kSr01DotClockDiv2;
    uint32_t disp_width = width;
    if (shift_control <= 1 && half_clock) disp_width <<= 1;

    enum class Line { Planar, Cga, Vga256, Packed8, Rgb15, Rgb16, Rgb24, Rgb32 } kind;
    unsigned bits;
    if (shift_control == 0) {
        kind = Line::Planar;
        bits = 4;
    } else if (shift_control == 1) {
        kind = Line::Cga;
        bits = 4;
    } else {
        switch (display_bpp()) {
        case 8:
            kind = Line::Packed8;
            bits = 8;
            break;
        case 15:
            kind = Line::Rgb15;
            bits = 16;
            break;
        case 16:
            kind = Line::Rgb16;
            bits = 16;
            break;
        case 24:
            kind = Line::Rgb24;
            bits = 24;
            break;
        case 32:
            kind = Line::Rgb32;
            bits = 32;
            break;
        default:
            kind = Line::Vga256; // 256 colours, each byte shown two pixels wide (mode 13h)
            bits = 4;
            break;
        }
    }

    uint32_t W = std::min(disp_width, kMaxFrameWidth);
    uint32_t H = std::min(height, kMaxFrameHeight);
    if (W == 0 || H == 0) {
        render_blank(fb);
        return;
    }
    last_width_ = W;
    last_height_ = H;
    full |= resize(fb, W, H);

    std::array<uint32_t, 16> pal16;
    std::array<uint32_t, 256> pal256;
    palette16(pal16);
    palette256(pal256);
    uint8_t plane_enable = ar_[kArPlaneEnable] & 0x0F;

    uint64_t csig = cursor_signature();
    uint32_t cfirst, cend;
    cursor_rows(cfirst, cend);
    bool cursor_changed = csig != last_cursor_signature_;
    uint32_t old_first = last_cursor_first_, old_end = last_cursor_end_;
    last_cursor_signature_ = csig;
    last_cursor_first_ = cfirst;
    last_cursor_end_ = cend;

    uint64_t addr1 = uint64_t(o.start_addr) * 4;
    uint64_t bwidth = (uint64_t(width) * bits + 7) / 8;
    uint8_t crmode = cr_[kCrMode];
    unsigned y1 = 0, multi_run = multi_scan;
    for (uint32_t y = 0; y < H; y++) {
        uint64_t addr = addr1;
        if (!(crmode & 1)) {
            // CR17 bit 0 clear: scan line bit 0 replaces address bit 13 (CGA interleave).
            unsigned shift = 14 + ((crmode >> 6) & 1);
            addr = (addr & ~(1ull << shift)) | (uint64_t(y1 & 1) << shift);
        }
        if (!(crmode & 2)) addr = (addr & ~0x8000ull) | (uint64_t(y1 & 2) << 14);

        bool dirty =
            full || range_dirty(addr, bwidth) ||
            (cursor_changed && ((y >= old_first && y < old_end) || (y >= cfirst && y < cend)));
        fb.dirty_rows[y] = dirty;
        uint32_t* row = &fb.pixels[size_t(y) * fb.stride];
        auto put = [&](uint32_t x, uint32_t c) {
            if (x < W) row[x] = c;
        };
        switch (kind) {
        case Line::Planar:
        case Line::Cga:
            for (uint32_t g = 0; g < width / 8; g++) {
                uint8_t p[4];
                for (unsigned i = 0; i < 4; i++)
                    p[i] = (plane_enable & (1u << i)) ? vram_byte(addr + 4ull * g + i) : 0;
                for (unsigned px = 0; px < 8; px++) {
                    unsigned idx;
                    if (kind == Line::Planar) {
                        unsigned b = 7 - px;
                        idx = ((p[0] >> b) & 1) | ((p[1] >> b) & 1) << 1 | ((p[2] >> b) & 1) << 2 |
                              ((p[3] >> b) & 1) << 3;
                    } else {
                        // CGA 4-colour: two bits per pixel, planes 0/2 for the first four
                        // pixels and 1/3 for the next four (QEMU vga_draw_line2).
                        unsigned lo = px < 4 ? p[0] : p[1], hi = px < 4 ? p[2] : p[3];
                        unsigned sh = 6 - 2 * (px & 3);
                        idx = ((lo >> sh) & 3) | ((hi >> sh) & 3) << 2;
                    }
                    uint32_t c = pal16[idx];
                    if (half_clock) {
                        put(g * 16 + px * 2, c);
                        put(g * 16 + px * 2 + 1, c);
                    } else {
                        put(g * 8 + px, c);
                    }
                }
            }
            break;
        case Line::Vga256:
            for (uint32_t g = 0; g < width / 8; g++)
                for (unsigned k = 0; k < 4; k++) {
                    uint32_t c = pal256[vram_byte(addr + 4ull * g + k)];
                    put(g * 8 + k * 2, c);
                    put(g * 8 + k * 2 + 1, c);
                }
            break;
        case Line::Packed8:
            for (uint32_t x = 0; x < W; x++) row[x] = pal256[vram_byte(addr + x)];
            break;
        case Line::Rgb15:
        case Line::Rgb16:
            for (uint32_t x = 0; x < W; x++) {
                uint32_t v = vram_byte(addr + 2ull * x) | uint32_t(vram_byte(addr + 2ull * x + 1))
                                                              << 8;
                row[x] = kind == Line::Rgb15
                             ? rgb((v >> 7) & 0xF8, (v >> 2) & 0xF8, (v << 3) & 0xF8)
                             : rgb((v >> 8) & 0xF8, (v >> 3) & 0xFC, (v << 3) & 0xF8);
            }
            break;
        case Line::Rgb24:
        case Line::Rgb32: {
            unsigned bpp = kind == Line::Rgb24 ? 3 : 4;
            for (uint32_t x = 0; x < W; x++) {
                uint64_t a = addr + uint64_t(x) * bpp;
                row[x] = rgb(vram_byte(a + 2), vram_byte(a + 1), vram_byte(a));
            }
            break;
        }
        }
        draw_cursor_line(row, W, y);

        if (!multi_run) {
            unsigned mask = (crmode & 3) ^ 3;
            if ((y1 & mask) == mask) addr1 += o.line_offset;
            y1++;
            multi_run = multi_scan;
        } else {
            multi_run--;
        }
        if (y == o.line_compare) addr1 = 0; // line compare restarts the scan at address 0
    }
}

TextScreen VgaCore::text_screen() const {
    TextScreen t;
    if (current_mode() != GfxMode::Text) return t;
    unsigned cols, rows, cw, ch;
    text_geometry(cols, rows, cw, ch);
    if (cols * rows <= 1 || cols * rows > 160 * 100) return t;
    t.columns = cols;
    t.rows = rows;
    t.cells.resize(size_t(cols) * rows);
    DisplayOffsets o = display_offsets();
    uint64_t cursor_addr = (uint64_t(cr_[kCrCursorHigh]) << 8 | cr_[kCrCursorLow]) * 4;
    bool cursor_enabled = !(cr_[kCrCursorStart] & kCr0aCursorOff);
    uint64_t offset = uint64_t(o.start_addr) * 4;
    uint32_t line = 0;
    for (unsigned cy = 0; cy < rows; cy++) {
        std::string s(cols, ' ');
        for (unsigned cx = 0; cx < cols; cx++) {
            uint64_t cell = offset + uint64_t(cx) * 4;
            uint8_t chr = vram_byte(cell), attr = vram_byte(cell + 1);
            t.cells[size_t(cy) * cols + cx] = uint16_t(chr | attr << 8);
            s[cx] = chr == 0 ? ' ' : (chr >= 0x20 && chr <= 0x7E ? char(chr) : '.');
            if (cell == cursor_addr && cursor_enabled) {
                t.cursor_column = int(cx);
                t.cursor_row = int(cy);
            }
        }
        t.lines.push_back(std::move(s));
        uint32_t line1 = line + ch;
        offset += o.line_offset;
        if (line < o.line_compare && line1 >= o.line_compare) offset = 0;
        line = line1;
    }
    return t;
}

} // namespace hvm
