#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>

#include "base/error.hpp"
#include "block/host_file.hpp"
#include "block/open_image.hpp"
#include "block/raw_image.hpp"
#include "tests/unit/block/block_test_util.hpp"

using namespace hvm::block;
using blocktest::TempDir;

namespace {
std::unique_ptr<BlockDevice> open_raw(const std::string& path, bool ro = false,
                                      CacheMode cache = CacheMode::writeback_mode()) {
    OpenOptions o;
    o.format = "raw";
    o.read_only = ro;
    o.cache = cache;
    return open_image(path, o);
}
} // namespace

TEST_CASE("raw: read and write whole sectors, data lands at the same host offset") {
    TempDir dir;
    std::string img = dir / "disk.img";
    REQUIRE(blocktest::run("qemu-img create -f raw " + img + " 1M").status == 0);
    {
        auto dev = open_raw(img);
        CHECK(dev->size() == 1 << 20);
        CHECK(dev->sectors() == 2048);
        CHECK(std::string(dev->format_name()) == "raw");
        std::vector<uint8_t> w(4096, 0x5a);
        CHECK(dev->write(8192, w) == IoStatus::Ok);
        std::vector<uint8_t> r(4096);
        CHECK(dev->read(8192, r) == IoStatus::Ok);
        CHECK(r == w);
        CHECK(dev->flush() == IoStatus::Ok);
    }
    auto bytes = blocktest::read_file(img);
    CHECK(bytes[8192] == 0x5a);
    CHECK(bytes[8192 + 4095] == 0x5a);
    CHECK(bytes[8191] == 0);
    CHECK(bytes[8192 + 4096] == 0);
}

TEST_CASE("raw: requests outside the disk, overflowing or misaligned are refused") {
    TempDir dir;
    std::string img = dir / "disk.img";
    REQUIRE(blocktest::run("qemu-img create -f raw " + img + " 64K").status == 0);
    auto dev = open_raw(img);
    std::vector<uint8_t> buf(1024, 0xee);
    CHECK(dev->read(65536 - 512, std::span(buf).first(512)) == IoStatus::Ok);
    CHECK(dev->read(65536 - 512, buf) == IoStatus::OutOfRange);
    CHECK(dev->read(65536, std::span(buf).first(512)) == IoStatus::OutOfRange);
    CHECK(dev->write(65536, std::span(buf).first(512)) == IoStatus::OutOfRange);
    // offset + length wraps around 2^64: must not pass as "in range".
    CHECK(dev->read(UINT64_MAX - 510, std::span(buf).first(512)) == IoStatus::Misaligned);
    CHECK(dev->read(0xfffffffffffffe00ull, buf) == IoStatus::OutOfRange);
    CHECK(dev->write(0xfffffffffffffe00ull, buf) == IoStatus::OutOfRange);
    CHECK(dev->discard(0xfffffffffffffe00ull, 1024) == IoStatus::OutOfRange);
    CHECK(dev->read(1, std::span(buf).first(512)) == IoStatus::Misaligned);
    CHECK(dev->read(0, std::span(buf).first(100)) == IoStatus::Misaligned);
    CHECK(dev->check_request(0, 65536) == IoStatus::Ok);
    CHECK(dev->check_request(512, 65536) == IoStatus::OutOfRange);
    // The file did not grow.
    CHECK(blocktest::read_file(img).size() == 65536);
}

TEST_CASE("raw: read-only images refuse writes; file length not a sector multiple") {
    TempDir dir;
    std::string img = dir / "odd.img";
    std::vector<uint8_t> content(1000, 0x11);
    blocktest::write_file(img, content);
    auto dev = open_raw(img, true);
    CHECK(dev->read_only());
    CHECK(dev->size() == 1024); // rounded up like QEMU; the tail reads as zeros
    std::vector<uint8_t> r(1024);
    CHECK(dev->read(0, r) == IoStatus::Ok);
    CHECK(r[999] == 0x11);
    CHECK(r[1000] == 0);
    CHECK(dev->write(0, std::span(r).first(512)) == IoStatus::ReadOnly);
    CHECK(dev->discard(0, 512) == IoStatus::ReadOnly);
    CHECK(dev->flush() == IoStatus::Ok);
}

TEST_CASE("raw: every cache mode reads back what it wrote (O_DIRECT for none/directsync)") {
    TempDir dir;
    std::string img = dir / "disk.img";
    REQUIRE(blocktest::run("qemu-img create -f raw " + img + " 1M").status == 0);
    const CacheMode modes[] = {CacheMode::writeback_mode(), CacheMode::writethrough(),
                               CacheMode::none(), CacheMode::directsync(), CacheMode::unsafe()};
    uint8_t fill = 1;
    for (const CacheMode& m : modes) {
        {
            auto dev = open_raw(img, false, m);
            CHECK(dev->write_cache_enabled() == m.writeback);
            // 512-byte writes at odd sector offsets exercise the O_DIRECT read-modify-write.
            std::vector<uint8_t> w(1536, fill);
            CHECK(dev->write(512 * 7, w) == IoStatus::Ok);
            std::vector<uint8_t> r(1536);
            CHECK(dev->read(512 * 7, r) == IoStatus::Ok);
            CHECK(r == w);
            CHECK(dev->flush() == IoStatus::Ok);
        }
        auto bytes = blocktest::read_file(img);
        CHECK(bytes.size() == 1 << 20);
        CHECK(bytes[512 * 7] == fill);
        CHECK(bytes[512 * 10 - 1] == fill);
        CHECK(bytes[512 * 10] == 0);
        CHECK(bytes[512 * 7 - 1] == 0);
        fill++;
    }
}

TEST_CASE("raw: probed raw image refuses a qcow2 header in sector 0, explicit raw allows it") {
    TempDir dir;
    std::string img = dir / "disk.img";
    REQUIRE(blocktest::run("qemu-img create -f raw " + img + " 64K").status == 0);
    std::vector<uint8_t> hdr(512, 0);
    hdr[0] = 'Q', hdr[1] = 'F', hdr[2] = 'I', hdr[3] = 0xfb;
    {
        OpenOptions o; // no format: probe
        auto dev = open_image(img, o);
        CHECK(std::string(dev->format_name()) == "raw");
        CHECK(dev->write(0, hdr) == IoStatus::Denied);
        CHECK(dev->write(512, hdr) == IoStatus::Ok); // only sector 0 is guarded
        std::vector<uint8_t> plain(512, 0x33);
        CHECK(dev->write(0, plain) == IoStatus::Ok);
    }
    {
        auto dev = open_raw(img);
        CHECK(dev->write(0, hdr) == IoStatus::Ok);
    }
    CHECK(probe_format(img) == "qcow2");
}

TEST_CASE("raw: discard punches a hole that reads back as zeros") {
    TempDir dir;
    std::string img = dir / "disk.img";
    REQUIRE(blocktest::run("qemu-img create -f raw " + img + " 1M").status == 0);
    auto dev = open_raw(img);
    std::vector<uint8_t> w(65536, 0x77);
    REQUIRE(dev->write(65536, w) == IoStatus::Ok);
    IoStatus s = dev->discard(65536, 65536);
    REQUIRE((s == IoStatus::Ok || s == IoStatus::NotSupported));
    if (s == IoStatus::Ok) {
        std::vector<uint8_t> r(65536, 1);
        CHECK(dev->read(65536, r) == IoStatus::Ok);
        CHECK(r == std::vector<uint8_t>(65536, 0));
    }
}

TEST_CASE("raw: missing file and directories give one-line user errors") {
    TempDir dir;
    OpenOptions o;
    o.format = "raw";
    CHECK_THROWS_WITH_AS(open_image(dir / "nope.img", o), doctest::Contains("Could not open"),
                         hvm::UserError);
    CHECK_THROWS_AS(open_image(dir.path(), o), hvm::UserError);
    o.format = "vmdk";
    blocktest::write_file(dir / "x.img", std::vector<uint8_t>(512));
    CHECK_THROWS_WITH_AS(open_image(dir / "x.img", o), doctest::Contains("Unknown driver"),
                         hvm::UserError);
}

TEST_CASE("locking: a second writer fails with QEMU's message; readers share") {
    TempDir dir;
    std::string img = dir / "disk.img";
    REQUIRE(blocktest::run("qemu-img create -f raw " + img + " 1M").status == 0);
    {
        auto writer = open_raw(img);
        CHECK_THROWS_WITH_AS(open_raw(img), doctest::Contains("Failed to get \"write\" lock"),
                             hvm::UserError);
        // A VM's read-only user denies writers, so it cannot join a running writer either
        // (QEMU: 'Failed to get shared "write" lock').
        CHECK_THROWS_WITH_AS(open_raw(img, true),
                             doctest::Contains("Failed to get shared \"write\" lock"),
                             hvm::UserError);
        // QEMU sees hvm's lock too: qemu-io opening for write is refused.
        auto q = blocktest::run("qemu-io -f raw -c 'read 0 512' " + img);
        CHECK(q.status != 0);
        CHECK(q.output.find("Failed to get \"write\" lock") != std::string::npos);
        CHECK(blocktest::run("qemu-io -r -f raw -c 'read 0 512' " + img).status == 0);
    }
    {
        auto reader1 = open_raw(img, true);
        auto reader2 = open_raw(img, true);
        // A read-only user denies writers (as QEMU's CD-ROM and backing files do).
        CHECK_THROWS_WITH_AS(open_raw(img), doctest::Contains("lock"), hvm::UserError);
        CHECK(blocktest::run("qemu-io -f raw -c 'read 0 512' " + img).status != 0);
    }
    // All closed: the locks went with the descriptors.
    auto again = open_raw(img);
    CHECK(again->size() == 1 << 20);
}
