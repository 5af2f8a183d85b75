#include "devmodel/net/ethernet.hpp"

#include <array>

namespace hvm::eth {

namespace {
constexpr uint32_t kPolyReflected = 0xEDB88320u; // IEEE 802.3, bit-reversed
constexpr uint32_t kPolyNormal = 0x04C11DB7u;

constexpr std::array<uint32_t, 256> make_crc_table() {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPolyReflected : c >> 1;
        t[i] = c;
    }
    return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();
} // namespace

uint32_t crc32(std::span<const uint8_t> data) {
    uint32_t c = 0xFFFFFFFFu;
    for (uint8_t b : data) c = kCrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

uint32_t crc32_be(std::span<const uint8_t> data) {
    // Bits enter least significant first (the order they go on the wire); no final inversion.
    uint32_t crc = 0xFFFFFFFFu;
    for (uint8_t byte : data) {
        for (int bit = 0; bit < 8; bit++, byte >>= 1) {
            bool carry = ((crc >> 31) ^ (byte & 1)) != 0;
            crc <<= 1;
            if (carry) crc ^= kPolyNormal;
        }
    }
    return crc;
}

uint32_t ones_complement_add(std::span<const uint8_t> data, uint32_t initial) {
    uint64_t sum = initial;
    size_t i = 0;
    for (; i + 1 < data.size(); i += 2) sum += uint32_t(data[i]) << 8 | data[i + 1];
    if (i < data.size()) sum += uint32_t(data[i]) << 8;
    while (sum >> 32) sum = (sum & 0xFFFFFFFFu) + (sum >> 32);
    return uint32_t(sum);
}

uint16_t ones_complement_fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return uint16_t(sum);
}

uint32_t pseudo_header_sum(const uint8_t* ip_header, uint8_t protocol, uint16_t l4_length) {
    uint32_t sum = ones_complement_add(std::span(ip_header + kIpSource, 8));
    sum = ones_complement_fold(sum);
    return sum + protocol + l4_length;
}

} // namespace hvm::eth
