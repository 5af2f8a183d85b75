#include "devmodel/display/screendump.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/error.hpp"

namespace hvm {

namespace {

const std::array<uint32_t, 256>& crc_table() {
    static const std::array<uint32_t, 256> table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t n = 0; n < 256; n++) {
            uint32_t c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }();
    return table;
}

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
    out.push_back(uint8_t(v >> 24));
    out.push_back(uint8_t(v >> 16));
    out.push_back(uint8_t(v >> 8));
    out.push_back(uint8_t(v));
}

void put_chunk(std::vector<uint8_t>& out, const char type[4], const std::vector<uint8_t>& body) {
    put_be32(out, uint32_t(body.size()));
    size_t start = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), body.begin(), body.end());
    put_be32(out, png_crc32(out.data() + start, out.size() - start));
}

void write_file(const std::vector<uint8_t>& bytes, const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) fail("screendump: cannot create '" + path + "': " + std::strerror(errno));
    size_t n = std::fwrite(bytes.data(), 1, bytes.size(), f);
    bool ok = n == bytes.size();
    ok = std::fclose(f) == 0 && ok;
    if (!ok) fail("screendump: cannot write '" + path + "': " + std::strerror(errno));
}

} // namespace

uint32_t png_crc32(const uint8_t* data, size_t len, uint32_t crc) {
    const auto& t = crc_table();
    uint32_t c = crc ^ 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) c = t[(c ^ data[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t adler32(const uint8_t* data, size_t len, uint32_t adler) {
    uint32_t a = adler & 0xFFFF, b = adler >> 16;
    for (size_t i = 0; i < len; i++) {
        a = (a + data[i]) % 65521;
        b = (b + a) % 65521;
    }
    return b << 16 | a;
}

std::vector<uint8_t> encode_ppm(const Framebuffer& fb) {
    std::string header =
        "P6\n" + std::to_string(fb.width) + " " + std::to_string(fb.height) + "\n255\n";
    std::vector<uint8_t> out(header.begin(), header.end());
    out.reserve(out.size() + size_t(fb.width) * fb.height * 3);
    for (uint32_t y = 0; y < fb.height; y++)
        for (uint32_t x = 0; x < fb.width; x++) {
            uint32_t p = fb.pixel(x, y);
            out.push_back(uint8_t(p >> 16));
            out.push_back(uint8_t(p >> 8));
            out.push_back(uint8_t(p));
        }
    return out;
}

std::vector<uint8_t> encode_png(const Framebuffer& fb) {
    // Raw scanlines: filter type 0 (None) then RGB (PNG §9).
    std::vector<uint8_t> raw;
    raw.reserve(size_t(fb.height) * (1 + size_t(fb.width) * 3));
    for (uint32_t y = 0; y < fb.height; y++) {
        raw.push_back(0);
        for (uint32_t x = 0; x < fb.width; x++) {
            uint32_t p = fb.pixel(x, y);
            raw.push_back(uint8_t(p >> 16));
            raw.push_back(uint8_t(p >> 8));
            raw.push_back(uint8_t(p));
        }
    }
    // zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4), 65535 bytes at most each.
    std::vector<uint8_t> z{0x78, 0x01};
    size_t pos = 0;
    do {
        size_t n = std::min<size_t>(65535, raw.size() - pos);
        bool last = pos + n == raw.size();
        z.push_back(last ? 1 : 0);
        z.push_back(uint8_t(n));
        z.push_back(uint8_t(n >> 8));
        z.push_back(uint8_t(~n));
        z.push_back(uint8_t(~n >> 8));
        z.insert(z.end(), raw.begin() + long(pos), raw.begin() + long(pos + n));
        pos += n;
    } while (pos < raw.size());
    put_be32(z, adler32(raw.data(), raw.size()));

    std::vector<uint8_t> out{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    std::vector<uint8_t> ihdr;
    put_be32(ihdr, fb.width);
    put_be32(ihdr, fb.height);
    ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0}); // depth 8, colour type 2 (RGB), deflate, no interlace
    put_chunk(out, "IHDR", ihdr);
    put_chunk(out, "IDAT", z);
    put_chunk(out, "IEND", {});
    return out;
}

void write_ppm(const Framebuffer& fb, const std::string& path) {
    write_file(encode_ppm(fb), path);
}

void write_png(const Framebuffer& fb, const std::string& path) {
    write_file(encode_png(fb), path);
}

} // namespace hvm
