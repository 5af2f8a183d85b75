// Helpers for the display chip tests: port I/O on a VgaCore, the standard VGA BIOS mode register
// sets (IBM VGA TR mode tables, as SeaBIOS vgabios programs them) and frame checksums.
#pragma once
#include <array>
#include <cstdint>
#include <cstdio>
#include <string>

#include "devmodel/display/screendump.hpp"
#include "devmodel/display/vga_core.hpp"

namespace hvm::test {

inline void outb(VgaCore& v, uint16_t port, uint8_t value) {
    v.write_port(port, value);
}
inline uint8_t inb(VgaCore& v, uint16_t port) {
    return v.read_port(port);
}
inline void set_sr(VgaCore& v, uint8_t i, uint8_t val) {
    outb(v, 0x3C4, i);
    outb(v, 0x3C5, val);
}
inline void set_gr(VgaCore& v, uint8_t i, uint8_t val) {
    outb(v, 0x3CE, i);
    outb(v, 0x3CF, val);
}
inline void set_cr(VgaCore& v, uint8_t i, uint8_t val) {
    outb(v, 0x3D4, i);
    outb(v, 0x3D5, val);
}
inline uint8_t get_sr(VgaCore& v, uint8_t i) {
    outb(v, 0x3C4, i);
    return inb(v, 0x3C5);
}
inline uint8_t get_gr(VgaCore& v, uint8_t i) {
    outb(v, 0x3CE, i);
    return inb(v, 0x3CF);
}
inline uint8_t get_cr(VgaCore& v, uint8_t i) {
    outb(v, 0x3D4, i);
    return inb(v, 0x3D5);
}
inline void set_ar(VgaCore& v, uint8_t i, uint8_t val) {
    inb(v, 0x3DA); // flip-flop to index
    outb(v, 0x3C0, i);
    outb(v, 0x3C0, val);
}
inline void set_dac(VgaCore& v, uint8_t index, uint8_t r, uint8_t g, uint8_t b) {
    outb(v, 0x3C8, index);
    outb(v, 0x3C9, r);
    outb(v, 0x3C9, g);
    outb(v, 0x3C9, b);
}

struct ModeRegs {
    uint8_t misc;
    std::array<uint8_t, 5> sr;
    std::array<uint8_t, 25> cr;
    std::array<uint8_t, 9> gr;
    std::array<uint8_t, 21> ar;
};

// Mode 03h: 80x25 text, 9x16 cells (720x400).
inline constexpr ModeRegs kMode03 = {
    0x67,
    {0x03, 0x00, 0x03, 0x00, 0x02},
    {0x5F, 0x4F, 0x50, 0x82, 0x55, 0x81, 0xBF, 0x1F, 0x00, 0x4F, 0x0D, 0x0E, 0x00,
     0x00, 0x00, 0x00, 0x9C, 0x8E, 0x8F, 0x28, 0x1F, 0x96, 0xB9, 0xA3, 0xFF},
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E, 0x00, 0xFF},
    {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3A,
     0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x0C, 0x00, 0x0F, 0x08, 0x00},
};
// Mode 13h: 320x200, 256 colours, chain-4.
inline constexpr ModeRegs kMode13 = {
    0x63,
    {0x03, 0x01, 0x0F, 0x00, 0x0E},
    {0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0xBF, 0x1F, 0x00, 0x41, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0x9C, 0x8E, 0x8F, 0x28, 0x40, 0x96, 0xB9, 0xA3, 0xFF},
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x05, 0x0F, 0xFF},
    {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A,
     0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x41, 0x00, 0x0F, 0x00, 0x00},
};
// Mode 12h: 640x480, 16 colours, planar.
inline constexpr ModeRegs kMode12 = {
    0xE3,
    {0x03, 0x01, 0x0F, 0x00, 0x06},
    {0x5F, 0x4F, 0x50, 0x82, 0x54, 0x80, 0x0B, 0x3E, 0x00, 0x40, 0x00, 0x00, 0x00,
     0x00, 0x00, 0x00, 0xEA, 0x8C, 0xDF, 0x28, 0x00, 0xE7, 0x04, 0xE3, 0xFF},
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x0F, 0xFF},
    {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3A,
     0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x01, 0x00, 0x0F, 0x00, 0x00},
};

inline void set_mode(VgaCore& v, const ModeRegs& m) {
    outb(v, 0x3C2, m.misc);
    for (unsigned i = 0; i < m.sr.size(); i++) set_sr(v, uint8_t(i), m.sr[i]);
    set_cr(v, 0x11, 0x00); // unprotect CR0-CR7
    for (unsigned i = 0; i < m.cr.size(); i++) set_cr(v, uint8_t(i), m.cr[i]);
    for (unsigned i = 0; i < m.gr.size(); i++) set_gr(v, uint8_t(i), m.gr[i]);
    for (unsigned i = 0; i < m.ar.size(); i++) set_ar(v, uint8_t(i), m.ar[i]);
    inb(v, 0x3DA);
    outb(v, 0x3C0, 0x20); // palette address source: screen on
}

// The EGA/VGA 16-colour default DAC entries 0-63 (6-bit components), as the BIOS loads them.
inline void load_ega_palette(VgaCore& v) {
    for (unsigned i = 0; i < 64; i++) {
        auto comp = [&](unsigned hi, unsigned lo) {
            return uint8_t(((i >> hi) & 1) * 0x2A + ((i >> lo) & 1) * 0x15);
        };
        set_dac(v, uint8_t(i), comp(2, 5), comp(1, 4), comp(0, 3));
    }
}

inline uint64_t frame_hash(const Framebuffer& fb) {
    uint64_t h = 1469598103934665603ull;
    auto add = [&](uint32_t v) {
        for (int i = 0; i < 4; i++) {
            h ^= (v >> (8 * i)) & 0xFF;
            h *= 1099511628211ull;
        }
    };
    add(fb.width);
    add(fb.height);
    for (uint32_t y = 0; y < fb.height; y++)
        for (uint32_t x = 0; x < fb.width; x++) add(fb.pixel(x, y));
    return h;
}

// Compares a frame with its golden checksum; on mismatch saves the frame as PNG for a look.
inline bool matches_golden(const Framebuffer& fb, uint64_t golden, const std::string& name) {
    uint64_t h = frame_hash(fb);
    if (h == golden) return true;
    std::string path = "/tmp/hvm-golden-" + name + ".png";
    write_png(fb, path);
    std::fprintf(stderr, "frame %s: hash 0x%016llx (golden 0x%016llx), saved to %s\n", name.c_str(),
                 (unsigned long long)h, (unsigned long long)golden, path.c_str());
    return false;
}

} // namespace hvm::test
