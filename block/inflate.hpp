// Raw-deflate decompression of qcow2 compressed clusters, with zlib.
#pragma once
#include <cstdint>
#include <span>

namespace hvm::block {

// Inflates the raw deflate stream `in` (no zlib/gzip wrapper, 4 KiB window as QEMU writes it)
// into exactly out.size() bytes. Returns false if the stream is malformed or too short: a
// compressed cluster must decompress to a full cluster.
bool inflate_raw(std::span<const uint8_t> in, std::span<uint8_t> out);

} // namespace hvm::block
