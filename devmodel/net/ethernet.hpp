// Ethernet, IPv4, TCP and UDP facts NIC models share: frame sizes, header offsets, the CRC-32 of
// IEEE 802.3 and the Internet checksum (RFC 1071). Pure functions over byte spans; no NIC state.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

namespace hvm::eth {

constexpr size_t kAddrLen = 6;
constexpr size_t kHeaderLen = 14;  // destination, source, EtherType
constexpr size_t kMinFrame = 60;   // without FCS (IEEE 802.3 minimum 64 with FCS)
constexpr size_t kMaxFrame = 1514; // without FCS, untagged
constexpr size_t kVlanTagLen = 4;  // 802.1Q TPID + TCI
constexpr size_t kFcsLen = 4;
constexpr uint16_t kTypeIpv4 = 0x0800;
constexpr uint16_t kTypeVlan = 0x8100; // 802.1Q TPID

constexpr size_t kIpv4MinHeader = 20;
constexpr size_t kTcpMinHeader = 20;
constexpr size_t kUdpHeader = 8;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;

// Offsets inside an IPv4 header.
constexpr size_t kIpVersionIhl = 0, kIpTotalLength = 2, kIpId = 4, kIpProto = 9, kIpChecksum = 10,
                 kIpSource = 12, kIpDestination = 16;
// Offsets inside a TCP header.
constexpr size_t kTcpSeq = 4, kTcpDataOffset = 12, kTcpFlags = 13, kTcpChecksum = 16;
constexpr uint8_t kTcpFin = 0x01, kTcpPsh = 0x08;
// Offset of the checksum inside a UDP header.
constexpr size_t kUdpChecksum = 6;

inline uint16_t load_be16(const uint8_t* p) {
    return uint16_t(p[0] << 8 | p[1]);
}
inline uint32_t load_be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline void store_be16(uint8_t* p, uint16_t v) {
    p[0] = uint8_t(v >> 8);
    p[1] = uint8_t(v);
}
inline void store_be32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (24 - 8 * i));
}

// CRC-32 as zlib's crc32(0, data, len) computes it: the reflected IEEE 802.3 polynomial, the
// value an Ethernet FCS carries (stored little-endian after the frame).
uint32_t crc32(std::span<const uint8_t> data);

// The MSB-first CRC-32 of a MAC address (Linux ether_crc, QEMU net_crc32): its top six bits
// index the 64-bit multicast hash filter of the RTL8139 and many other NICs.
uint32_t crc32_be(std::span<const uint8_t> data);
inline unsigned multicast_hash_index(std::span<const uint8_t, kAddrLen> mac) {
    return crc32_be(mac) >> 26;
}

// The 16-bit ones' complement sum of `data` taken as big-endian words (an odd last byte is the
// high byte of a word), folded, added to `initial` (RFC 1071).
uint32_t ones_complement_add(std::span<const uint8_t> data, uint32_t initial = 0);
uint16_t ones_complement_fold(uint32_t sum);
// The Internet checksum of `data`: ~fold(sum). Store big-endian.
inline uint16_t internet_checksum(std::span<const uint8_t> data) {
    return uint16_t(~ones_complement_fold(ones_complement_add(data)));
}
// Sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768) for a TCP or UDP checksum:
// source, destination, protocol and the L4 length.
uint32_t pseudo_header_sum(const uint8_t* ip_header, uint8_t protocol, uint16_t l4_length);

} // namespace hvm::eth
