// What a display adapter hands to the display side: a rendered frame in 32-bit XRGB with a
// per-row "changed since the previous render" hint, and for text modes the screen as text.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hvm {

// One rendered frame. Pixels are 0x00RRGGBB, row y starts at pixels[y * stride].
struct Framebuffer {
    uint32_t width = 0;
    uint32_t height = 0;
    uint32_t stride = 0; // in pixels
    std::vector<uint32_t> pixels;
    // dirty_rows[y] != 0: row y may differ from the previous render of the same adapter
    // (guest writes to the VRAM it shows, blits, mode/palette/cursor changes). `changed` is
    // the OR of all rows: a display can skip the whole frame when it is false.
    std::vector<uint8_t> dirty_rows;
    bool changed = false;

    uint32_t pixel(uint32_t x, uint32_t y) const {
        return x < width && y < height ? pixels[size_t(y) * stride + x] : 0;
    }
};

// A text-mode screen read back as characters (regression boots wait on prompts).
struct TextScreen {
    unsigned columns = 0; // 0: the adapter is not in a text mode
    unsigned rows = 0;
    // cells[row * columns + col] = character code | attribute << 8, as in VRAM planes 0/1.
    std::vector<uint16_t> cells;
    // Each row as ASCII: printable codes 0x20-0x7E as themselves, NUL as a space and every
    // other code (CP437 graphics) as '.'; trailing spaces are kept so columns line up.
    std::vector<std::string> lines;
    int cursor_column = -1; // -1: cursor off or outside the screen
    int cursor_row = -1;

    // All lines joined with '\n'.
    std::string text() const {
        std::string s;
        for (size_t i = 0; i < lines.size(); i++) {
            if (i) s += '\n';
            s += lines[i];
        }
        return s;
    }
    // True if `needle` appears on any line (prompt matching).
    bool contains(const std::string& needle) const {
        for (const auto& l : lines)
            if (l.find(needle) != std::string::npos) return true;
        return false;
    }
};

} // namespace hvm
