// -snapshot: writes go to a temporary qcow2 overlay; the image itself is never modified.
#include <doctest/doctest.h>

#include <dirent.h>

#include "base/error.hpp"
#include "block/open_image.hpp"
#include "block/qcow2_image.hpp"
#include "tests/unit/block/block_test_util.hpp"

using namespace hvm::block;
using blocktest::run;
using blocktest::TempDir;

namespace {
int count_entries(const std::string& path) {
    int n = 0;
    DIR* d = opendir(path.c_str());
    if (!d) return -1;
    while (dirent* e = readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") n++;
    closedir(d);
    return n;
}
} // namespace

TEST_CASE("snapshot: raw and qcow2 bases are untouched, the overlay vanishes") {
    for (const char* fmt : {"raw", "qcow2"}) {
        CAPTURE(fmt);
        TempDir dir, tmp;
        std::string img = dir / "base.img";
        REQUIRE(run(std::string("qemu-img create -q -f ") + fmt + " " + img + " 4M").status == 0);
        REQUIRE(run(std::string("qemu-io -f ") + fmt + " -c 'write -P 0x17 0 4M' " + img).status ==
                0);
        const auto before = blocktest::read_file(img);
        OpenOptions o;
        o.format = fmt;
        o.snapshot = true;
        o.temp_dir = tmp.path();
        {
            auto dev = open_image(img, o);
            CHECK_FALSE(dev->read_only());
            CHECK(dev->size() == 4 << 20);
            // The overlay file is already unlinked: nothing is left even after kill -9.
            CHECK(count_entries(tmp.path()) == 0);
            std::mt19937_64 rng(1);
            auto data = blocktest::random_bytes(rng, 3 * 4096);
            REQUIRE(dev->write(65536 - 4096, data) == IoStatus::Ok);
            std::vector<uint8_t> back(data.size());
            REQUIRE(dev->read(65536 - 4096, back) == IoStatus::Ok);
            CHECK(back == data);
            std::vector<uint8_t> rest(4096);
            REQUIRE(dev->read(65536 + 8192, rest) == IoStatus::Ok);
            CHECK(rest == std::vector<uint8_t>(4096, 0x17)); // unwritten: from the base
            CHECK(dev->flush() == IoStatus::Ok);
            // A second -snapshot user of the same base is fine (both only read it) ...
            auto dev2 = open_image(img, o);
            REQUIRE(dev2->read(65536, back) == IoStatus::Ok);
            CHECK(back == std::vector<uint8_t>(back.size(), 0x17));
            // ... but a writer is not.
            OpenOptions w;
            w.format = fmt;
            CHECK_THROWS_AS(open_image(img, w), hvm::UserError);
        }
        CHECK(blocktest::read_file(img) == before);
        CHECK(count_entries(tmp.path()) == 0);
    }
}

TEST_CASE("snapshot: overlay images created by hvm pass qemu-img check") {
    TempDir dir;
    std::string img = dir / "new.qcow2";
    REQUIRE(run("touch " + img).status == 0);
    {
        auto file = HostFile::open(img, false, CacheMode::writeback_mode());
        Qcow2Image::create(*file, 5 << 20);
    }
    auto check = blocktest::qemu_check(img);
    CHECK_MESSAGE(check.status == 0, check.output);
    CHECK(run("qemu-img info " + img + " | grep -q 'virtual size: 5 MiB'").status == 0);
    OpenOptions o;
    o.format = "qcow2";
    {
        auto dev = open_image(img, o);
        std::vector<uint8_t> d(8192, 0x66);
        REQUIRE(dev->write(4 << 20, d) == IoStatus::Ok);
    }
    check = blocktest::qemu_check(img);
    CHECK_MESSAGE(check.status == 0, check.output);
    CHECK(run("qemu-io -r -f qcow2 -c 'read -P 0x66 4M 8k' " + img).output.find("Pattern") ==
          std::string::npos);
}
