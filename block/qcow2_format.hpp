// On-disk layout of qcow2 versions 2 and 3 (QEMU docs/interop/qcow2.txt). Every field is
// big-endian. Only constants and the header decoder live here; the driver is qcow2_image.*.
#pragma once
#include <cstdint>
#include <span>
#include <string>

namespace hvm::block::qcow2 {

constexpr uint32_t kMagic = 0x514649fb; // "QFI\xfb"

// Header field offsets (version 2 header is 72 bytes, version 3 at least 104).
constexpr size_t kOffMagic = 0;
constexpr size_t kOffVersion = 4;
constexpr size_t kOffBackingFileOffset = 8;
constexpr size_t kOffBackingFileSize = 16;
constexpr size_t kOffClusterBits = 20;
constexpr size_t kOffSize = 24;
constexpr size_t kOffCryptMethod = 32;
constexpr size_t kOffL1Size = 36;
constexpr size_t kOffL1TableOffset = 40;
constexpr size_t kOffRefcountTableOffset = 48;
constexpr size_t kOffRefcountTableClusters = 56;
constexpr size_t kOffNbSnapshots = 60;
constexpr size_t kOffSnapshotsOffset = 64;
constexpr size_t kOffIncompatibleFeatures = 72;
constexpr size_t kOffCompatibleFeatures = 80;
constexpr size_t kOffAutoclearFeatures = 88;
constexpr size_t kOffRefcountOrder = 96;
constexpr size_t kOffHeaderLength = 100;
constexpr size_t kOffCompressionType = 104;
constexpr size_t kHeaderV2Length = 72;
constexpr size_t kHeaderV3MinLength = 104;

// Incompatible feature bits.
constexpr uint64_t kIncompatDirty = 1ull << 0;
constexpr uint64_t kIncompatCorrupt = 1ull << 1;
constexpr uint64_t kIncompatExternalData = 1ull << 2;
constexpr uint64_t kIncompatCompressionType = 1ull << 3;
constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
// Compatible feature bits.
constexpr uint64_t kCompatLazyRefcounts = 1ull << 0;

// Header extension types.
constexpr uint32_t kExtEnd = 0;
constexpr uint32_t kExtBackingFormat = 0xe2792aca;
constexpr uint32_t kExtFeatureNameTable = 0x6803f857;

// L1 entry: bits 9-55 L2 table offset, bit 63 "copied" (refcount is exactly one).
constexpr uint64_t kL1OffsetMask = 0x00fffffffffffe00ull;
// Standard L2 entry: bit 0 "all zeros" (v3), bits 9-55 host cluster offset, bit 62 compressed,
// bit 63 copied.
constexpr uint64_t kL2OffsetMask = 0x00fffffffffffe00ull;
constexpr uint64_t kL2ZeroFlag = 1ull << 0;
constexpr uint64_t kOflagCompressed = 1ull << 62;
constexpr uint64_t kOflagCopied = 1ull << 63;
// Refcount table entry: bits 9-63 refcount block offset.
constexpr uint64_t kRefTableOffsetMask = 0xfffffffffffffe00ull;

// QEMU's own limits (block/qcow2.h): tables larger than these are refused as hostile.
constexpr uint64_t kMaxL1Bytes = 32ull << 20;
constexpr uint64_t kMaxRefTableBytes = 8ull << 20;
constexpr uint32_t kMaxSnapshots = 65536;
constexpr uint32_t kMaxBackingNameLength = 1023;
constexpr uint32_t kMinClusterBits = 9;
constexpr uint32_t kMaxClusterBits = 21;
// Host offsets must fit the 56-bit fields of L1/L2 entries.
constexpr uint64_t kMaxHostOffset = 1ull << 56;

inline uint16_t be16(const uint8_t* p) {
    return uint16_t(p[0] << 8 | p[1]);
}
inline uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline uint64_t be64(const uint8_t* p) {
    return uint64_t(be32(p)) << 32 | be32(p + 4);
}
inline void put_be32(uint8_t* p, uint32_t v) {
    p[0] = uint8_t(v >> 24), p[1] = uint8_t(v >> 16), p[2] = uint8_t(v >> 8), p[3] = uint8_t(v);
}
inline void put_be64(uint8_t* p, uint64_t v) {
    put_be32(p, uint32_t(v >> 32));
    put_be32(p + 4, uint32_t(v));
}

inline bool has_magic(std::span<const uint8_t> data) {
    return data.size() >= 4 && be32(data.data()) == kMagic;
}

struct Header {
    uint32_t version = 0;
    uint64_t backing_file_offset = 0;
    uint32_t backing_file_size = 0;
    uint32_t cluster_bits = 0;
    uint64_t size = 0;
    uint32_t crypt_method = 0;
    uint32_t l1_size = 0;
    uint64_t l1_table_offset = 0;
    uint64_t refcount_table_offset = 0;
    uint32_t refcount_table_clusters = 0;
    uint32_t nb_snapshots = 0;
    uint64_t snapshots_offset = 0;
    uint64_t incompatible_features = 0;
    uint64_t compatible_features = 0;
    uint64_t autoclear_features = 0;
    uint32_t refcount_order = 4;
    uint32_t header_length = kHeaderV2Length;
    uint8_t compression_type = 0;
};

// Everything the opener needs from an image before it can open the driver: the validated header
// and where the backing file is. Produced by read_image_info(), which refuses hostile headers.
struct ImageInfo {
    Header header;
    std::string backing_file;   // empty: no backing file
    std::string backing_format; // from the backing-format extension; empty: probe
};

} // namespace hvm::block::qcow2
