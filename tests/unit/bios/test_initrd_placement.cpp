#include <doctest/doctest.h>

#include "base/error.hpp"
#include "bios/linux_boot.hpp"

using namespace hvm;

namespace {
constexpr uint64_t MiB = 1ull << 20;
}

TEST_CASE("the initrd goes as high as RAM allows, page aligned") {
    // 128 MiB of RAM, initrd_addr_max far above it: the initrd ends at the top of RAM.
    uint64_t a = place_initrd(3 * MiB + 123, 0x7fffffff, 128 * MiB, 0x3000000, "initrd");
    CHECK(a % 4096 == 0);
    CHECK(a + 3 * MiB + 123 <= 128 * MiB);
    CHECK(a + 3 * MiB + 123 > 128 * MiB - 4096);
    CHECK(a == ((128 * MiB - (3 * MiB + 123)) & ~0xfffull));
}

TEST_CASE("the initrd respects initrd_addr_max (last byte it may occupy)") {
    // 2 GiB of RAM but a kernel that takes initrds only below 0x38000000 (old default).
    uint64_t size = 10 * MiB;
    uint64_t a = place_initrd(size, 0x37ffffff, 2048 * MiB, 0x3000000, "initrd");
    CHECK(a + size <= 0x38000000);
    CHECK(a == 0x38000000 - size);
    // An exactly page-sized initrd ends exactly at the limit.
    CHECK(place_initrd(4096, 0x37ffffff, 2048 * MiB, 0, "initrd") == 0x37fff000);
}

TEST_CASE("an initrd that does not fit above the kernel is refused") {
    // 64 MiB RAM, kernel needs up to 48 MiB: 20 MiB does not fit.
    CHECK_THROWS_AS(place_initrd(20 * MiB, 0x7fffffff, 64 * MiB, 48 * MiB, "initrd.img"),
                    UserError);
    try {
        place_initrd(20 * MiB, 0x7fffffff, 64 * MiB, 48 * MiB, "initrd.img");
    } catch (const UserError& e) {
        CHECK(std::string(e.what()).find("initrd.img: initrd of 20 MiB does not fit") == 0);
    }
    // Larger than all RAM, or than the kernel's limit.
    CHECK_THROWS_AS(place_initrd(200 * MiB, 0x7fffffff, 128 * MiB, 0, "i"), UserError);
    CHECK_THROWS_AS(place_initrd(64 * MiB, 0x1ffffff, 2048 * MiB, 0x1000000, "i"), UserError);
    // 16 MiB fits exactly between 48 and 64 MiB.
    CHECK(place_initrd(16 * MiB, 0x7fffffff, 64 * MiB, 48 * MiB, "i") == 48 * MiB);
}
