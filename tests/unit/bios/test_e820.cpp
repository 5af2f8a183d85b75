#include <doctest/doctest.h>

#include <vector>

#include "bios/e820.hpp"

using namespace hvm;
using T = E820Type;

namespace {
constexpr uint64_t MiB = 1ull << 20, GiB = 1ull << 30;

std::vector<E820Entry> map_for(uint64_t ram, bool amd = false) {
    return pc_e820_map(PcRamLayout::for_size(ram), PcE820Options{amd});
}

// The part every `pc` map shares, below 1 MiB and at the top of the 32-bit space.
void check_fixed(const std::vector<E820Entry>& m) {
    REQUIRE(m.size() >= 6);
    CHECK(m[0] == E820Entry{0, 0x9fc00, T::Ram});
    CHECK(m[1] == E820Entry{0x9fc00, 0x400, T::Reserved});
    CHECK(m[2] == E820Entry{0xf0000, 0x10000, T::Reserved});
    CHECK(m[4] == E820Entry{0xfeffc000, 0x4000, T::Reserved});
    CHECK(m[5] == E820Entry{0xfffc0000, 0x40000, T::Reserved});
}
} // namespace

TEST_CASE("e820 for 128 MiB") {
    auto m = map_for(128 * MiB);
    check_fixed(m);
    CHECK(m.size() == 6);
    CHECK(m[3] == E820Entry{0x100000, 128 * MiB - 0x100000, T::Ram});
    CHECK(e820_ram_total(m) == 0x9fc00 + 127 * MiB);
}

TEST_CASE("e820 for 1 GiB, with and without the AMD HyperTransport hole") {
    auto m = map_for(1 * GiB);
    check_fixed(m);
    CHECK(m.size() == 6);
    CHECK(m[3] == E820Entry{0x100000, 0x3ff00000, T::Ram});
    auto a = map_for(1 * GiB, true);
    REQUIRE(a.size() == 7);
    CHECK(a[6] == E820Entry{0xfd00000000ull, 0x300000000ull, T::Reserved});
}

TEST_CASE("e820 for 3.5 GiB: 3 GiB low, the rest above 4 GiB") {
    auto m = map_for(3 * GiB + 512 * MiB);
    check_fixed(m);
    REQUIRE(m.size() == 7);
    CHECK(m[3] == E820Entry{0x100000, 0xc0000000 - 0x100000, T::Ram});
    CHECK(m[6] == E820Entry{0x100000000ull, 512 * MiB, T::Ram});
    CHECK(e820_ram_total(m) == 0x9fc00 + 3 * GiB + 512 * MiB - MiB);
}

TEST_CASE("e820 just below the 3.5 GiB split keeps all RAM low") {
    auto m = map_for(0xe0000000ull - 64 * MiB);
    REQUIRE(m.size() == 6);
    CHECK(m[3].end() == 0xe0000000ull - 64 * MiB);
}

TEST_CASE("e820 for 6 GiB") {
    auto m = map_for(6 * GiB);
    check_fixed(m);
    REQUIRE(m.size() == 7);
    CHECK(m[3] == E820Entry{0x100000, 0xc0000000 - 0x100000, T::Ram});
    CHECK(m[6] == E820Entry{0x100000000ull, 3 * GiB, T::Ram});
    for (size_t i = 1; i < m.size(); i++) CHECK(m[i - 1].end() <= m[i].addr); // sorted, disjoint
}

TEST_CASE("fw_cfg etc/e820 for 1 GiB is byte for byte what QEMU 7.2 served (qemu64, AMD host)") {
    auto blob = pc_fw_cfg_e820_blob(PcRamLayout::for_size(1 * GiB), PcE820Options{true});
    // pc-platform.md §1.3, measured: (0xFEFFC000, 0x4000, 2), (0xFD00000000, 0x300000000, 2),
    // (0, 0x40000000, 1).
    const std::vector<uint8_t> expect = {
        0x00, 0xc0, 0xff, 0xfe, 0,    0, 0, 0, 0x00, 0x40, 0,    0,    0, 0, 0, 0, 2, 0, 0, 0,
        0x00, 0x00, 0x00, 0x00, 0xfd, 0, 0, 0, 0x00, 0x00, 0x00, 0x00, 3, 0, 0, 0, 2, 0, 0, 0,
        0,    0,    0,    0,    0,    0, 0, 0, 0x00, 0x00, 0x00, 0x40, 0, 0, 0, 0, 1, 0, 0, 0};
    CHECK(blob == expect);
}

TEST_CASE("fw_cfg etc/e820 for 6 GiB without the AMD hole") {
    auto e = pc_fw_cfg_e820_entries(PcRamLayout::for_size(6 * GiB));
    REQUIRE(e.size() == 3);
    CHECK(e[0] == E820Entry{0xfeffc000, 0x4000, T::Reserved});
    CHECK(e[1] == E820Entry{0, 3 * GiB, T::Ram});
    CHECK(e[2] == E820Entry{0x100000000ull, 3 * GiB, T::Ram});
    CHECK(pc_fw_cfg_e820_blob(PcRamLayout::for_size(6 * GiB)).size() == 60);
}

TEST_CASE("e820_is_ram needs the whole range inside one RAM entry") {
    auto m = map_for(128 * MiB);
    CHECK(e820_is_ram(m, 0, 0x9fc00));
    CHECK_FALSE(e820_is_ram(m, 0x9f000, 0x1000)); // runs into the EBDA
    CHECK_FALSE(e820_is_ram(m, 0xa0000, 0x10));
    CHECK(e820_is_ram(m, 0x100000, 127 * MiB));
    CHECK_FALSE(e820_is_ram(m, 0x100000, 127 * MiB + 1));
    CHECK_FALSE(e820_is_ram(m, ~0ull - 4, 16)); // wraps
}
