// Small helpers shared by the kernel loaders: little-endian field access in a file image, number
// formatting for one-line errors, and guest writes that must not fail.
#pragma once
#include <cstdint>
#include <cstdio>
#include <span>
#include <stdexcept>
#include <string>

#include "devmodel/device.hpp"
#include "vcpu/guest_memory.hpp"

namespace hvm::loader {

// Reads a little-endian field; the caller has checked that [off, off+n) is inside `d`.
inline uint64_t field(std::span<const uint8_t> d, size_t off, size_t n) {
    return le_load(d.subspan(off, n));
}
inline void put_field(std::span<uint8_t> d, size_t off, size_t n, uint64_t v) {
    le_store(d.subspan(off, n), v);
}

inline std::string hex(uint64_t v) {
    char b[24];
    snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

// "N MiB" rounded up, or "N KiB"/"N bytes" for small values, for messages about sizes.
inline std::string size_text(uint64_t v) {
    char b[40];
    if (v >= (1ull << 20))
        snprintf(b, sizeof b, "%llu MiB",
                 static_cast<unsigned long long>((v + (1ull << 20) - 1) >> 20));
    else if (v >= 1024)
        snprintf(b, sizeof b, "%llu KiB", static_cast<unsigned long long>((v + 1023) >> 10));
    else
        snprintf(b, sizeof b, "%llu bytes", static_cast<unsigned long long>(v));
    return b;
}

// Copies into guest RAM that the loader has already checked against the e820 map; a failure here
// means the memory map and GuestMemory disagree (a machine bug), not a user error.
inline void copy_to_guest(GuestMemory& mem, uint64_t gpa, std::span<const uint8_t> data,
                          const char* what) {
    if (!mem.write(gpa, data))
        throw std::runtime_error(std::string("loader: cannot write ") + what + " at " + hex(gpa) +
                                 ": not in guest RAM");
}
inline void zero_guest(GuestMemory& mem, uint64_t gpa, uint64_t len, const char* what) {
    if (!mem.fill(gpa, 0, len))
        throw std::runtime_error(std::string("loader: cannot clear ") + what + " at " + hex(gpa) +
                                 ": not in guest RAM");
}

constexpr uint64_t kPageSize = 4096;
constexpr uint64_t page_align_up(uint64_t v) {
    return (v + kPageSize - 1) & ~(kPageSize - 1);
}

} // namespace hvm::loader
