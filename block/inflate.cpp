// zlib is loaded with dlopen() because the hvm_block CMake target does not link libz yet (the
// block folder may not edit the top-level CMakeLists). libz.so.1 is part of every Debian system
// (package zlib1g); the prototypes come from <zlib.h> (zlib1g-dev), so the calls are type-checked.
// Once hvm_block links ZLIB::ZLIB this file can call inflate() directly.
#include "block/inflate.hpp"

#include <dlfcn.h>
#include <zlib.h>

#include <mutex>

#include "base/log.hpp"

namespace hvm::block {
namespace {

struct Zlib {
    decltype(&::inflateInit2_) init2 = nullptr;
    decltype(&::inflate) inflate = nullptr;
    decltype(&::inflateEnd) end = nullptr;
    decltype(&::zlibVersion) version = nullptr;
    bool ok = false;
};

const Zlib& zlib() {
    static Zlib lib; // immutable after first use; the handle lives as long as the process
    static std::once_flag once;
    std::call_once(once, [] {
        void* h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            LOG_ERROR("block: cannot load libz.so.1 (%s): compressed qcow2 clusters unreadable",
                      dlerror());
            return;
        }
        lib.init2 = reinterpret_cast<decltype(lib.init2)>(dlsym(h, "inflateInit2_"));
        lib.inflate = reinterpret_cast<decltype(lib.inflate)>(dlsym(h, "inflate"));
        lib.end = reinterpret_cast<decltype(lib.end)>(dlsym(h, "inflateEnd"));
        lib.version = reinterpret_cast<decltype(lib.version)>(dlsym(h, "zlibVersion"));
        lib.ok = lib.init2 && lib.inflate && lib.end && lib.version;
    });
    return lib;
}

} // namespace

bool inflate_raw(std::span<const uint8_t> in, std::span<uint8_t> out) {
    const Zlib& z = zlib();
    if (!z.ok) return false;
    z_stream strm = {};
    strm.next_in = const_cast<Bytef*>(in.data());
    strm.avail_in = uInt(in.size());
    strm.next_out = out.data();
    strm.avail_out = uInt(out.size());
    // Negative window bits: raw deflate. QEMU compresses with a 4 KiB window (12 bits); a decoder
    // must accept the largest window, 15 bits, to read any raw stream.
    if (z.init2(&strm, -15, z.version(), int(sizeof(z_stream))) != Z_OK) return false;
    int ret = z.inflate(&strm, Z_FINISH);
    bool full = strm.avail_out == 0;
    z.end(&strm);
    // The compressed-size field rounds up to sectors, so input may extend past the stream end;
    // Z_BUF_ERROR with a full output buffer is also a complete cluster.
    return (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && full;
}

} // namespace hvm::block
