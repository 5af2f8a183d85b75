// Images hvm writes must pass `qemu-img check` clean and equal a raw reference written in
// parallel (`qemu-img compare`).
#include <doctest/doctest.h>

#include "base/error.hpp"
#include "block/open_image.hpp"
#include "block/qcow2_image.hpp"
#include "tests/unit/block/block_test_util.hpp"

using namespace hvm::block;
using blocktest::run;
using blocktest::TempDir;

namespace {

std::unique_ptr<BlockDevice> open_rw(const std::string& path, const std::string& fmt) {
    OpenOptions o;
    o.format = fmt;
    return open_image(path, o);
}

// Random sector-aligned writes of up to `max_len` bytes to both devices.
void random_writes(BlockDevice& a, BlockDevice& b, std::mt19937_64& rng, int count,
                   uint64_t max_len) {
    const uint64_t sectors = a.sectors();
    for (int i = 0; i < count; i++) {
        uint64_t len_sectors = 1 + rng() % (max_len / 512);
        uint64_t start = rng() % sectors;
        if (start + len_sectors > sectors) len_sectors = sectors - start;
        auto data = blocktest::random_bytes(rng, len_sectors * 512);
        REQUIRE(a.write(start * 512, data) == IoStatus::Ok);
        REQUIRE(b.write(start * 512, data) == IoStatus::Ok);
    }
}

void expect_clean_and_equal(const std::string& img, const std::string& ref) {
    auto check = blocktest::qemu_check(img);
    CHECK_MESSAGE(check.status == 0, check.output);
    auto cmp = run("qemu-img compare -f qcow2 -F raw " + img + " " + ref);
    CHECK_MESSAGE(cmp.status == 0, cmp.output);
}

void compare_devices(BlockDevice& a, BlockDevice& b) {
    REQUIRE(a.size() == b.size());
    std::vector<uint8_t> x(1 << 20), y(1 << 20);
    for (uint64_t off = 0; off < a.size(); off += x.size()) {
        size_t n = size_t(std::min<uint64_t>(x.size(), a.size() - off));
        REQUIRE(a.read(off, std::span(x).first(n)) == IoStatus::Ok);
        REQUIRE(b.read(off, std::span(y).first(n)) == IoStatus::Ok);
        REQUIRE_MESSAGE(std::equal(x.begin(), x.begin() + n, y.begin()), "at ", off);
    }
}

} // namespace

TEST_CASE("qcow2 write: random writes on v2 and v3 images are clean and equal the reference") {
    struct Case {
        const char* opts;
        const char* size;
        int writes;
        uint64_t max_len;
    };
    const Case cases[] = {
        {"compat=1.1", "64M", 300, 256 * 1024},
        {"compat=0.10", "64M", 300, 256 * 1024},
        // 4 KiB clusters: L2 tables cover 2 MiB, so writes cross many L2 boundaries.
        {"cluster_size=4096", "32M", 400, 64 * 1024},
        // Sub-byte, byte and 64-bit refcount entries.
        {"refcount_bits=1,cluster_size=4096", "16M", 200, 32 * 1024},
        {"refcount_bits=8,cluster_size=4096", "16M", 200, 32 * 1024},
        {"refcount_bits=64,cluster_size=4096", "16M", 200, 32 * 1024},
    };
    for (const Case& c : cases) {
        CAPTURE(c.opts);
        TempDir dir;
        std::string img = dir / "a.qcow2", ref = dir / "ref.raw";
        REQUIRE(
            run(std::string("qemu-img create -q -f qcow2 -o ") + c.opts + " " + img + " " + c.size)
                .status == 0);
        REQUIRE(run(std::string("qemu-img create -q -f raw ") + ref + " " + c.size).status == 0);
        std::mt19937_64 rng(42);
        {
            auto q = open_rw(img, "qcow2");
            auto r = open_rw(ref, "raw");
            random_writes(*q, *r, rng, c.writes, c.max_len);
            CHECK(q->flush() == IoStatus::Ok);
            compare_devices(*q, *r);
        }
        expect_clean_and_equal(img, ref);
        // Reopen and overwrite some already-allocated clusters in place.
        {
            auto q = open_rw(img, "qcow2");
            auto r = open_rw(ref, "raw");
            random_writes(*q, *r, rng, c.writes / 4, c.max_len);
        }
        expect_clean_and_equal(img, ref);
    }
}

TEST_CASE("qcow2 write: 512-byte clusters grow past the first refcount block and the table") {
    TempDir dir;
    std::string img = dir / "a.qcow2", ref = dir / "ref.raw";
    // One 512-byte refcount-table cluster maps 64 blocks x 256 clusters = 8 MiB of file.
    REQUIRE(run("qemu-img create -q -f qcow2 -o cluster_size=512 " + img + " 24M").status == 0);
    REQUIRE(run("qemu-img create -q -f raw " + ref + " 24M").status == 0);
    std::mt19937_64 rng(99);
    {
        auto q = open_rw(img, "qcow2");
        auto r = open_rw(ref, "raw");
        // Sequential fill of 12 MiB (file > 8 MiB), then random writes.
        std::vector<uint8_t> chunk(256 * 1024);
        for (uint64_t off = 0; off < (12u << 20); off += chunk.size()) {
            chunk = blocktest::random_bytes(rng, chunk.size());
            REQUIRE(q->write(off, chunk) == IoStatus::Ok);
            REQUIRE(r->write(off, chunk) == IoStatus::Ok);
        }
        random_writes(*q, *r, rng, 200, 16 * 1024);
    }
    // The refcount table was moved to a bigger one (refcount_table_clusters at offset 56).
    auto bytes = blocktest::read_file(img);
    uint32_t rt_clusters = uint32_t(bytes[56]) << 24 | bytes[57] << 16 | bytes[58] << 8 | bytes[59];
    CHECK(rt_clusters > 1);
    expect_clean_and_equal(img, ref);
    CHECK(blocktest::read_file(img).size() > (12u << 20));
}

TEST_CASE("qcow2 write: partial-cluster writes copy the rest from the backing chain") {
    TempDir dir;
    std::string base = dir / "base.qcow2", top = dir / "top.qcow2", ref = dir / "ref.raw";
    REQUIRE(run("qemu-img create -q -f qcow2 " + base + " 8M").status == 0);
    REQUIRE(run("qemu-io -f qcow2 -c 'write -P 0x61 0 8M' " + base).status == 0);
    REQUIRE(run("qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 " + top).status == 0);
    REQUIRE(run("qemu-img convert -f qcow2 -O raw " + top + " " + ref).status == 0);
    std::mt19937_64 rng(5);
    {
        auto q = open_rw(top, "qcow2");
        auto r = open_rw(ref, "raw");
        random_writes(*q, *r, rng, 150, 20 * 1024);
        compare_devices(*q, *r);
    }
    expect_clean_and_equal(top, ref);
    // The base is untouched.
    CHECK(run("qemu-io -r -f qcow2 -c 'read -P 0x61 0 8M' " + base).output.find("Pattern") ==
          std::string::npos);
}

TEST_CASE("qcow2 write: compressed and zero clusters are rewritten uncompressed") {
    TempDir dir;
    std::string src = dir / "src.raw", img = dir / "c.qcow2", ref = dir / "ref.raw";
    std::vector<uint8_t> content(4 << 20);
    for (size_t i = 0; i < content.size(); i++) content[i] = uint8_t(i / 1000);
    blocktest::write_file(src, content);
    REQUIRE(run("qemu-img convert -c -f raw -O qcow2 " + src + " " + img).status == 0);
    REQUIRE(run("qemu-io -f qcow2 -c 'write -z 3M 128k' " + img).status == 0);
    std::fill(content.begin() + (3 << 20), content.begin() + (3 << 20) + 131072, 0);
    blocktest::write_file(ref, content);
    std::mt19937_64 rng(11);
    {
        auto q = open_rw(img, "qcow2");
        auto r = open_rw(ref, "raw");
        // Partial writes into compressed and zero clusters, then whole-cluster overwrites.
        random_writes(*q, *r, rng, 100, 8 * 1024);
        auto whole = blocktest::random_bytes(rng, 65536);
        REQUIRE(q->write(2 << 20, whole) == IoStatus::Ok);
        REQUIRE(r->write(2 << 20, whole) == IoStatus::Ok);
        compare_devices(*q, *r);
    }
    // Freed compressed clusters leave no leak and no refcount error.
    expect_clean_and_equal(img, ref);
}

TEST_CASE("qcow2 write: read-only open refuses writes; dirty/corrupt images open read-only only") {
    TempDir dir;
    std::string img = dir / "a.qcow2";
    REQUIRE(run("qemu-img create -q -f qcow2 " + img + " 1M").status == 0);
    {
        OpenOptions o;
        o.read_only = true;
        auto q = open_image(img, o);
        std::vector<uint8_t> buf(512, 1);
        CHECK(q->write(0, buf) == IoStatus::ReadOnly);
    }
    for (uint8_t bit : {0x01, 0x02}) { // dirty, corrupt
        blocktest::patch_file(img, 72 + 7, {bit});
        CHECK_THROWS_AS(open_rw(img, "qcow2"), hvm::UserError);
        OpenOptions o;
        o.read_only = true;
        CHECK(open_image(img, o)->size() == 1 << 20);
        blocktest::patch_file(img, 72 + 7, {0});
    }
    CHECK(open_rw(img, "qcow2")->size() == 1 << 20);
}

TEST_CASE("qcow2 write: internal snapshots are refused read-write but readable") {
    TempDir dir;
    std::string img = dir / "a.qcow2";
    REQUIRE(run("qemu-img create -q -f qcow2 " + img + " 1M").status == 0);
    REQUIRE(run("qemu-io -f qcow2 -c 'write -P 0x44 0 64k' " + img).status == 0);
    REQUIRE(run("qemu-img snapshot -c snap1 " + img).status == 0);
    CHECK_THROWS_WITH_AS(open_rw(img, "qcow2"), doctest::Contains("snapshots"), hvm::UserError);
    OpenOptions o;
    o.read_only = true;
    auto q = open_image(img, o);
    std::vector<uint8_t> buf(512);
    REQUIRE(q->read(0, buf) == IoStatus::Ok);
    CHECK(buf[0] == 0x44);
}

TEST_CASE("qcow2 write: writethrough and O_DIRECT cache modes produce clean images") {
    for (const char* mode : {"writethrough", "none"}) {
        CAPTURE(mode);
        TempDir dir;
        std::string img = dir / "a.qcow2", ref = dir / "ref.raw";
        REQUIRE(run("qemu-img create -q -f qcow2 " + img + " 8M").status == 0);
        REQUIRE(run("qemu-img create -q -f raw " + ref + " 8M").status == 0);
        std::mt19937_64 rng(3);
        {
            OpenOptions o;
            o.format = "qcow2";
            o.cache = std::string(mode) == "none" ? CacheMode::none() : CacheMode::writethrough();
            auto q = open_image(img, o);
            auto r = open_rw(ref, "raw");
            random_writes(*q, *r, rng, 60, 16 * 1024);
        }
        expect_clean_and_equal(img, ref);
    }
}
