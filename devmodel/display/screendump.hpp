// Screendumps of a rendered Framebuffer: binary PPM (P6) and PNG (8-bit RGB, no interlace).
// The PNG encoder is self-contained (stored deflate blocks, CRC-32 and Adler-32 computed here),
// so the display library needs neither libpng nor zlib; the files are larger than a compressing
// encoder's but every PNG reader accepts them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "devmodel/display/framebuffer.hpp"

namespace hvm {

// File images of `fb` (RGB, alpha dropped).
std::vector<uint8_t> encode_ppm(const Framebuffer& fb);
std::vector<uint8_t> encode_png(const Framebuffer& fb);

// Write the image to `path`; a file that cannot be written is a UserError (the path came
// from the user).
void write_ppm(const Framebuffer& fb, const std::string& path);
void write_png(const Framebuffer& fb, const std::string& path);

// The checksums PNG needs (ISO 3309 CRC-32 as in PNG §5.5; RFC 1950 Adler-32).
uint32_t png_crc32(const uint8_t* data, size_t len, uint32_t crc = 0);
uint32_t adler32(const uint8_t* data, size_t len, uint32_t adler = 1);

} // namespace hvm
