#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "base/error.hpp"
#include "bios/bios_rom.hpp"

using namespace hvm;

namespace {
std::string write_temp(size_t size) {
    char name[] = "/tmp/hvm-bios-XXXXXX";
    int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    std::vector<char> data(size, 0x5a);
    if (size) REQUIRE(write(fd, data.data(), size) == ssize_t(size));
    close(fd);
    return name;
}
} // namespace

TEST_CASE("BIOS images must be whole 64 KiB blocks") {
    auto good = write_temp(256 * 1024);
    BiosImage img = load_bios_image(good);
    CHECK(img.bytes.size() == 256 * 1024);
    CHECK(img.isa_size() == 128 * 1024);
    auto small = write_temp(64 * 1024);
    CHECK(load_bios_image(small).isa_size() == 64 * 1024);
    auto odd = write_temp(100000);
    CHECK_THROWS_AS(load_bios_image(odd), UserError);
    auto empty = write_temp(0);
    CHECK_THROWS_AS(load_bios_image(empty), UserError);
    CHECK_THROWS_AS(load_bios_image("/nonexistent/bios.bin"), UserError);
    for (auto& p : {good, small, odd, empty}) std::remove(p.c_str());
}
