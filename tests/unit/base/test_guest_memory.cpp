#include <doctest/doctest.h>

#include <cstring>
#include <stdexcept>

#include "vcpu/guest_memory.hpp"

using namespace hvm;

TEST_CASE("guest memory checks whole ranges") {
    GuestMemory mem;
    uint8_t* low = mem.allocate(0x10000, "low");
    mem.add_region({0, 0x10000, low, false, "low"});
    uint8_t* hi = mem.allocate(0x1000, "hi");
    mem.add_region({0x100000, 0x1000, hi, false, "hi"});

    uint8_t buf[16];
    memset(buf, 0xab, sizeof buf);
    CHECK(mem.write(0xfff0, buf));
    CHECK_FALSE(mem.write(0xfff1, buf)); // one byte past the end
    CHECK_FALSE(mem.read(0x10000, buf));
    CHECK_FALSE(mem.read(~0ull - 4, buf)); // wraps
    CHECK_FALSE(mem.slice(0x100ff0, 0x20).has_value());
    CHECK(mem.slice(0x100ff0, 0x10).has_value());
    CHECK(mem.read_obj<uint32_t>(0xfff0) == 0xabababab);
    CHECK_FALSE(mem.read_obj<uint32_t>(0xfffe).has_value());
    CHECK(mem.write_obj<uint16_t>(0x100000, 0x1234));
    CHECK(hi[0] == 0x34);
    CHECK(mem.fill(0x100, 0x5a, 0x10));
    CHECK(low[0x10f] == 0x5a);
    CHECK_FALSE(mem.fill(0xffff, 0, 2));
}

TEST_CASE("regions may not overlap and read-only regions refuse writes") {
    GuestMemory mem;
    uint8_t* p = mem.allocate(0x2000, "x");
    mem.add_region({0x1000, 0x1000, p, true, "rom"});
    CHECK_THROWS_AS(mem.add_region({0x1800, 0x1000, p, false, "over"}), std::invalid_argument);
    CHECK_THROWS_AS(mem.add_region({0x5000, 0, p, false, "zero"}), std::invalid_argument);
    CHECK_THROWS_AS(mem.add_region({~0ull - 0xff, 0x1000, p, false, "wrap"}),
                    std::invalid_argument);
    uint8_t b = 1;
    CHECK_FALSE(mem.write(0x1000, std::span(&b, 1)));
    CHECK(mem.read(0x1000, std::span(&b, 1)));
}

TEST_CASE("pc RAM split follows QEMU's i440FX rule") {
    auto a = PcRamLayout::for_size(512ull << 20);
    CHECK(a.below_4g == 512ull << 20);
    CHECK(a.above_4g == 0);
    auto b = PcRamLayout::for_size(0xe0000000ull);
    CHECK(b.below_4g == 0xc0000000ull);
    CHECK(b.above_4g == 0x20000000ull);
    auto c = PcRamLayout::for_size(0xdfffffffull);
    CHECK(c.below_4g == 0xdfffffffull);
}

TEST_CASE("regions can be removed and re-added (PAM remapping)") {
    GuestMemory mem;
    uint8_t* p = mem.allocate(0x20000, "x");
    mem.add_region({0xe0000, 0x10000, p, true, "rom"});
    const auto* before = &mem.regions();
    CHECK(mem.find(0xe0000) != nullptr);
    CHECK(mem.remove_region(0xe0000));
    CHECK_FALSE(mem.remove_region(0xe0000));
    CHECK(mem.find(0xe0000) == nullptr);
    CHECK(before->size() == 1); // an old snapshot stays valid for a racing reader
    mem.add_region({0xe0000, 0x10000, p + 0x10000, false, "ram"});
    uint8_t b = 7;
    CHECK(mem.write(0xe0000, std::span(&b, 1)));
    CHECK(p[0x10000] == 7);
}
