// Raw-deflate decompression for compressed qcow2 clusters (zlib).
#include "block/inflate.hpp"

#include <zlib.h>

namespace hvm::block {

bool inflate_raw(std::span<const uint8_t> in, std::span<uint8_t> out) {
    z_stream strm = {};
    strm.next_in = const_cast<Bytef*>(in.data());
    strm.avail_in = uInt(in.size());
    strm.next_out = out.data();
    strm.avail_out = uInt(out.size());
    // Negative window bits: raw deflate. QEMU compresses with a 4 KiB window (12 bits); a decoder
    // must accept the largest window, 15 bits, to read any raw stream.
    if (inflateInit2(&strm, -15) != Z_OK) return false;
    int ret = inflate(&strm, Z_FINISH);
    bool full = strm.avail_out == 0;
    inflateEnd(&strm);
    // The compressed-size field rounds up to sectors, so input may extend past the stream end;
    // Z_BUF_ERROR with a full output buffer is also a complete cluster.
    return (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && full;
}

} // namespace hvm::block
