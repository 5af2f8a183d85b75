// Helpers for the loader tests: a guest memory laid out like the `pc` machine's RAM, little-endian
// accessors, and a synthetic bzImage built byte by byte from boot.rst's header layout.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bios/e820.hpp"
#include "vcpu/guest_memory.hpp"

namespace test {

// RAM as the machine maps it: [0, 640K) and [1M, below_4g) (plus above 4G when present), backed by
// MAP_NORESERVE memory so big sizes cost nothing. The 640K-1M hole has no RAM.
struct PcRam {
    hvm::GuestMemory mem;
    hvm::PcRamLayout layout;
    std::vector<hvm::E820Entry> e820;
    explicit PcRam(uint64_t size) {
        layout = hvm::PcRamLayout::for_size(size);
        uint8_t* low = mem.allocate(hvm::kLowRamEnd, "low");
        mem.add_region({0, hvm::kLowRamEnd, low, false, "low"});
        if (layout.below_4g > hvm::kHighRamStart) {
            uint64_t n = layout.below_4g - hvm::kHighRamStart;
            mem.add_region({hvm::kHighRamStart, n, mem.allocate(n, "high"), false, "high"});
        }
        e820 = hvm::pc_e820_map(layout);
    }
    std::vector<uint8_t> read(uint64_t gpa, size_t n) const {
        std::vector<uint8_t> v(n);
        if (!mem.read(gpa, v)) throw std::runtime_error("test read outside RAM");
        return v;
    }
    uint64_t rd(uint64_t gpa, size_t n) const {
        auto v = read(gpa, n);
        uint64_t x = 0;
        for (size_t i = 0; i < n; i++) x |= uint64_t(v[i]) << (8 * i);
        return x;
    }
    std::string cstr(uint64_t gpa) const {
        std::string s;
        for (;;) {
            auto c = read(gpa++, 1)[0];
            if (!c) return s;
            s.push_back(char(c));
        }
    }
};

inline void put(std::vector<uint8_t>& v, size_t off, size_t n, uint64_t x) {
    if (v.size() < off + n) v.resize(off + n, 0);
    for (size_t i = 0; i < n; i++) v[off + i] = uint8_t(x >> (8 * i));
}
inline uint64_t get(const std::vector<uint8_t>& v, size_t off, size_t n) {
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) x |= uint64_t(v[off + i]) << (8 * i);
    return x;
}

struct BzImageSpec {
    uint16_t version = 0x020f;
    uint8_t setup_sects = 30; // as on a current x86_64 kernel
    uint32_t kernel_bytes = 0x10000;
    uint8_t loadflags = 0x01; // LOADED_HIGH
    uint32_t initrd_addr_max = 0x7fffffff;
    uint32_t kernel_alignment = 0x200000;
    uint8_t relocatable = 1;
    uint16_t xloadflags = 0x7f;
    uint32_t cmdline_size = 2047;
    uint64_t pref_address = 0x1000000;
    uint32_t init_size = 0x2000000;
    uint8_t header_len = 0x6a; // byte at 0x201: header ends at 0x202 + this (0x26c)
    const char* version_string = "6.1.0-test (hvm@test) #1 SMP";
};

// A file with the layout of a real bzImage: boot sector + setup sectors, then the protected-mode
// part, whose bytes are a recognisable pattern.
inline std::vector<uint8_t> make_bzimage(const BzImageSpec& s = {}) {
    unsigned sects = s.setup_sects ? s.setup_sects : 4;
    size_t setup = (sects + 1) * 512;
    std::vector<uint8_t> f(setup + s.kernel_bytes, 0);
    f[0x1f1] = s.setup_sects;
    put(f, 0x1f4, 4, s.kernel_bytes / 16);
    put(f, 0x1fa, 2, 0xffff);
    put(f, 0x1fe, 2, 0xaa55);
    f[0x200] = 0xeb;
    f[0x201] = s.header_len;
    memcpy(&f[0x202], "HdrS", 4);
    put(f, 0x206, 2, s.version);
    put(f, 0x20e, 2, 0x400 - 0x200);
    memcpy(&f[0x400], s.version_string, strlen(s.version_string) + 1);
    f[0x211] = s.loadflags;
    put(f, 0x214, 4, 0x100000);
    put(f, 0x22c, 4, s.initrd_addr_max);
    put(f, 0x230, 4, s.kernel_alignment);
    f[0x234] = s.relocatable;
    f[0x235] = 21;
    put(f, 0x236, 2, s.xloadflags);
    put(f, 0x238, 4, s.cmdline_size);
    put(f, 0x258, 8, s.pref_address);
    put(f, 0x260, 4, s.init_size);
    for (size_t i = setup; i < f.size(); i++) f[i] = uint8_t(i * 7 + 3);
    return f;
}

} // namespace test
