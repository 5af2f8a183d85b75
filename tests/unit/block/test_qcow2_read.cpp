// qcow2 images made by qemu-img/qemu-io, read back by hvm.
#include <doctest/doctest.h>

#include "base/error.hpp"
#include "block/open_image.hpp"
#include "block/qcow2_image.hpp"
#include "tests/unit/block/block_test_util.hpp"

using namespace hvm::block;
using blocktest::run;
using blocktest::TempDir;

namespace {

std::unique_ptr<BlockDevice> open_ro(const std::string& path, const std::string& fmt = "") {
    OpenOptions o;
    o.format = fmt;
    o.read_only = true;
    return open_image(path, o);
}

bool all_equal(const std::vector<uint8_t>& v, uint8_t b) {
    for (uint8_t x : v)
        if (x != b) return false;
    return true;
}

void check_range(BlockDevice& dev, uint64_t offset, uint64_t length, uint8_t expect) {
    std::vector<uint8_t> buf(length, uint8_t(~expect));
    REQUIRE(dev.read(offset, buf) == IoStatus::Ok);
    CHECK_MESSAGE(all_equal(buf, expect), "offset ", offset, " expected ", int(expect));
}

} // namespace

TEST_CASE("qcow2: v2 (compat=0.10) and v3 images written by qemu-io read back right") {
    for (const char* compat : {"0.10", "1.1"}) {
        CAPTURE(compat);
        TempDir dir;
        std::string img = dir / "a.qcow2";
        REQUIRE(
            run(std::string("qemu-img create -q -f qcow2 -o compat=") + compat + " " + img + " 16M")
                .status == 0);
        REQUIRE(run("qemu-io -f qcow2 -c 'write -P 0xab 0 64k' -c 'write -P 0xcd 1M 4k' "
                    "-c 'write -P 0x11 15M 1M' -c 'write -P 0x22 100k 3k' " +
                    img)
                    .status == 0);
        auto dev = open_ro(img);
        CHECK(std::string(dev->format_name()) == "qcow2");
        CHECK(dev->size() == 16 << 20);
        check_range(*dev, 0, 65536, 0xab);
        check_range(*dev, 65536, 100 * 1024 - 65536, 0);
        check_range(*dev, 100 * 1024, 3 * 1024, 0x22);
        check_range(*dev, 103 * 1024, 1024, 0);
        check_range(*dev, 1 << 20, 4096, 0xcd);
        check_range(*dev, (1 << 20) + 4096, 512, 0);
        check_range(*dev, 15 << 20, 1 << 20, 0x11);
        // A read crossing allocated and unallocated clusters.
        std::vector<uint8_t> buf(128 * 1024);
        REQUIRE(dev->read(0, buf) == IoStatus::Ok);
        CHECK(buf[65535] == 0xab);
        CHECK(buf[65536] == 0);
        CHECK(buf[100 * 1024] == 0x22);
        CHECK(dev->read(16 << 20, std::span(buf).first(512)) == IoStatus::OutOfRange);
    }
}

TEST_CASE("qcow2: small and large cluster sizes") {
    for (const char* cs : {"512", "4096", "2M"}) {
        CAPTURE(cs);
        TempDir dir;
        std::string img = dir / "a.qcow2";
        REQUIRE(run(std::string("qemu-img create -q -f qcow2 -o cluster_size=") + cs + " " + img +
                    " 8M")
                    .status == 0);
        REQUIRE(run("qemu-io -f qcow2 -c 'write -P 0x5c 1536 70k' " + img).status == 0);
        auto dev = open_ro(img);
        check_range(*dev, 0, 1536, 0);
        check_range(*dev, 1536, 70 * 1024, 0x5c);
        check_range(*dev, 1536 + 70 * 1024, 4096, 0);
    }
}

TEST_CASE("qcow2: zero clusters (v3 flag) and zero reads (v2)") {
    TempDir dir;
    std::string base = dir / "base.qcow2", img = dir / "top.qcow2";
    REQUIRE(run("qemu-img create -q -f qcow2 " + base + " 4M").status == 0);
    REQUIRE(run("qemu-io -f qcow2 -c 'write -P 0x99 0 1M' " + base).status == 0);
    REQUIRE(run("qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 " + img).status == 0);
    // write -z in an overlay must produce v3 zero clusters that hide the backing data.
    REQUIRE(run("qemu-io -f qcow2 -c 'write -z 64k 128k' " + img).status == 0);
    REQUIRE(run("qemu-img map --output=json " + img + " | grep -q '\"zero\": true'").status == 0);
    auto dev = open_ro(img);
    check_range(*dev, 0, 65536, 0x99);
    check_range(*dev, 65536, 128 * 1024, 0);
    check_range(*dev, 192 * 1024, 65536, 0x99);
    check_range(*dev, 1 << 20, 1 << 20, 0);
}

TEST_CASE("qcow2: two-level backing chain with relative names, opened from another directory") {
    TempDir dir;
    REQUIRE(run("mkdir " + dir.path() + "/sub").status == 0);
    std::string base = dir / "sub/base.qcow2", mid = dir / "sub/mid.qcow2",
                top = dir / "sub/top.qcow2";
    REQUIRE(run("qemu-img create -q -f qcow2 " + base + " 4M").status == 0);
    REQUIRE(run("qemu-io -f qcow2 -c 'write -P 0x01 0 1M' " + base).status == 0);
    REQUIRE(run("cd " + dir.path() +
                "/sub && qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "
                "mid.qcow2")
                .status == 0);
    REQUIRE(run("qemu-io -f qcow2 -c 'write -P 0x02 512k 1M' " + mid).status == 0);
    REQUIRE(run("cd " + dir.path() +
                "/sub && qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 "
                "top.qcow2")
                .status == 0);
    REQUIRE(run("qemu-io -f qcow2 -c 'write -P 0x03 1M 4k' " + top).status == 0);
    auto dev = open_ro(top, "qcow2");
    auto* q = dynamic_cast<Qcow2Image*>(dev.get());
    REQUIRE(q != nullptr);
    REQUIRE(q->backing() != nullptr);
    check_range(*dev, 0, 512 * 1024, 0x01);
    check_range(*dev, 512 * 1024, 512 * 1024, 0x02);
    check_range(*dev, 1 << 20, 4096, 0x03);
    check_range(*dev, (1 << 20) + 4096, 512 * 1024 - 4096, 0x02);
    check_range(*dev, 1536 * 1024, 512 * 1024, 0);
    // Backing files are locked shared: another reader is fine, a writer is not.
    CHECK(run("qemu-io -f qcow2 -c 'read 0 512' " + base).output.find("lock") != std::string::npos);
}

TEST_CASE("qcow2: raw backing file smaller than the overlay reads zeros past its end") {
    TempDir dir;
    std::string base = dir / "base.raw", img = dir / "top.qcow2";
    blocktest::write_file(base, std::vector<uint8_t>(100 * 1024, 0x42));
    REQUIRE(run("qemu-img create -q -f qcow2 -b " + base + " -F raw " + img + " 1M").status == 0);
    auto dev = open_ro(img);
    check_range(*dev, 0, 100 * 1024, 0x42);
    check_range(*dev, 100 * 1024, 1024 * 1024 - 100 * 1024, 0);
}

TEST_CASE("qcow2: compressed clusters from qemu-img convert -c read right") {
    TempDir dir;
    std::string raw = dir / "src.raw", img = dir / "c.qcow2";
    std::mt19937_64 rng(7);
    std::vector<uint8_t> src(3 << 20);
    // Mixed content: text-like runs compress, random bytes do not (stored uncompressed).
    for (size_t i = 0; i < src.size(); i++) src[i] = uint8_t((i / 4096) * 7 + (i % 13));
    auto noise = blocktest::random_bytes(rng, 256 * 1024);
    std::copy(noise.begin(), noise.end(), src.begin() + (1 << 20));
    std::fill(src.begin() + (2 << 20), src.begin() + (2 << 20) + 65536, 0);
    blocktest::write_file(raw, src);
    for (const char* opts : {"", "-o cluster_size=4096", "-o compat=0.10"}) {
        CAPTURE(opts);
        run("rm -f " + img);
        REQUIRE(
            run(std::string("qemu-img convert -c -f raw -O qcow2 ") + opts + " " + raw + " " + img)
                .status == 0);
        REQUIRE(run("qemu-img map --output=human " + img + " 2>&1 | grep -q compressed").status ==
                0);
        auto dev = open_ro(img);
        std::vector<uint8_t> got(src.size());
        REQUIRE(dev->read(0, got) == IoStatus::Ok);
        CHECK(got == src);
        // Unaligned sub-cluster reads of a compressed cluster.
        std::vector<uint8_t> part(1024);
        REQUIRE(dev->read(4096 * 3 + 512, part) == IoStatus::Ok);
        CHECK(std::equal(part.begin(), part.end(), src.begin() + 4096 * 3 + 512));
    }
}

TEST_CASE("qcow2: backing loops and over-long chains are refused") {
    TempDir dir;
    std::string a = dir / "a.qcow2", b = dir / "b.qcow2";
    REQUIRE(run("qemu-img create -q -f qcow2 " + a + " 1M").status == 0);
    REQUIRE(run("qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 " + b).status == 0);
    // Point a back at b (qemu-img rebase -u does not open the new backing).
    REQUIRE(run("qemu-img rebase -u -f qcow2 -b b.qcow2 -F qcow2 " + a).status == 0);
    CHECK_THROWS_WITH_AS(open_ro(b), doctest::Contains("loop"), hvm::UserError);

    std::string prev = "c0.qcow2";
    REQUIRE(run("qemu-img create -q -f qcow2 " + (dir / prev) + " 1M").status == 0);
    for (int i = 1; i <= 66; i++) {
        std::string name = "c" + std::to_string(i) + ".qcow2";
        REQUIRE(
            run("qemu-img create -q -f qcow2 -u -b " + prev + " -F qcow2 " + (dir / name) + " 1M")
                .status == 0);
        prev = name;
    }
    CHECK_THROWS_WITH_AS(open_ro(dir / prev), doctest::Contains("too deep"), hvm::UserError);
    CHECK(open_ro(dir / "c60.qcow2")->size() == 1 << 20);

    std::string orphan = dir / "orphan.qcow2";
    REQUIRE(
        run("qemu-img create -q -f qcow2 -u -b missing.qcow2 -F qcow2 " + orphan + " 1M").status ==
        0);
    CHECK_THROWS_WITH_AS(open_ro(orphan), doctest::Contains("missing.qcow2"), hvm::UserError);
}
