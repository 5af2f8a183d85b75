// Hostile qcow2 headers and metadata: refused at open with one line, or the access fails cleanly.
#include <doctest/doctest.h>

#include "base/error.hpp"
#include "block/open_image.hpp"
#include "tests/unit/block/block_test_util.hpp"

using namespace hvm::block;
using blocktest::be32v;
using blocktest::be64v;
using blocktest::run;
using blocktest::TempDir;

namespace {

std::unique_ptr<BlockDevice> open_q(const std::string& path, bool ro = false) {
    OpenOptions o;
    o.format = "qcow2";
    o.read_only = ro;
    return open_image(path, o);
}

uint64_t be64_at(const std::vector<uint8_t>& b, size_t off) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | b[off + i];
    return v;
}

struct Fresh {
    TempDir dir;
    std::string img = dir / "h.qcow2";
    explicit Fresh(const std::string& opts = "") {
        REQUIRE(run("qemu-img create -q -f qcow2 " + opts + " " + img + " 4M").status == 0);
        REQUIRE(run("qemu-io -f qcow2 -c 'write -P 0x3c 0 128k' " + img).status == 0);
    }
};

} // namespace

TEST_CASE("hostile header fields are refused with one line") {
    struct Patch {
        const char* what;
        uint64_t offset;
        std::vector<uint8_t> bytes;
        const char* message;
    };
    const Patch patches[] = {
        {"magic", 0, be32v(0x514649fa), "magic"},
        {"version 4", 4, be32v(4), "version 4"},
        {"version 1", 4, be32v(1), "version 1"},
        {"cluster_bits 8", 20, be32v(8), "cluster size"},
        {"cluster_bits 22", 20, be32v(22), "cluster size"},
        {"cluster_bits huge", 20, be32v(0xffffffff), "cluster size"},
        {"encryption", 32, be32v(1), "encrypted"},
        {"l1_size too small", 36, be32v(0), "L1 table is too small"},
        {"l1_size huge", 36, be32v(0x10000000), "L1 table too large"},
        {"l1 outside file", 40, be64v(1ull << 40), "outside"},
        {"l1 unaligned", 40, be64v(0x30200), "aligned"},
        {"l1 in header", 40, be64v(0), "header"},
        {"l1 over refcount table", 40, be64v(0x10000), "overlaps"},
        {"size huge", 24, be64v(1ull << 61), "too small"},
        {"size 2^64-1", 24, be64v(~0ull), "too large"},
        {"refcount table unaligned", 48, be64v(0x10008), "aligned"},
        {"refcount table outside", 48, be64v(1ull << 50), "outside"},
        {"refcount table clusters 0", 56, be32v(0), "no refcount table"},
        {"refcount table clusters huge", 56, be32v(0x1000000), "too large"},
        {"refcount table in header", 48, be64v(0), "header"},
        {"snapshots count", 60, be32v(0x7fffffff), "snapshots"},
        {"unknown incompatible bit", 72, be64v(1ull << 40), "unknown feature bit 40"},
        {"external data file bit", 72, be64v(1ull << 2), "unsupported qcow2 feature"},
        {"refcount_order 7", 96, be32v(7), "64 bits"},
        {"header_length 96", 100, be32v(96), "header length"},
        {"header_length huge", 100, be32v(0x100000), "header length"},
        {"backing offset past cluster", 8, be64v(0x20000), "backing file offset"},
    };
    for (const Patch& p : patches) {
        CAPTURE(p.what);
        Fresh f;
        blocktest::patch_file(f.img, p.offset, p.bytes);
        CHECK_THROWS_WITH_AS(open_q(f.img, true), doctest::Contains(p.message), hvm::UserError);
        // qemu-img agrees that these images cannot be used.
        CHECK(run("qemu-img check -q " + f.img).status != 0);
    }
}

TEST_CASE("hostile: backing name longer than 1023 bytes or running past the cluster") {
    Fresh f;
    blocktest::patch_file(f.img, 8, be64v(0x8000));
    blocktest::patch_file(f.img, 16, be32v(0x10000));
    CHECK_THROWS_WITH_AS(open_q(f.img, true), doctest::Contains("backing file name"),
                         hvm::UserError);
}

TEST_CASE("hostile: the feature name table names an unsupported feature (extended L2)") {
    Fresh f("-o extended_l2=on");
    CHECK_THROWS_WITH_AS(open_q(f.img, true), doctest::Contains("extended L2"), hvm::UserError);
}

TEST_CASE("hostile: refcount block pointers outside the file are refused at open") {
    Fresh f;
    auto bytes = blocktest::read_file(f.img);
    uint64_t rt = be64_at(bytes, 48);
    blocktest::patch_file(f.img, rt, be64v(1ull << 45));
    CHECK_THROWS_WITH_AS(open_q(f.img, true), doctest::Contains("refcount block 0"),
                         hvm::UserError);
    blocktest::patch_file(f.img, rt, be64v(0x20100)); // not cluster-aligned
    CHECK_THROWS_AS(open_q(f.img, true), hvm::UserError);
}

TEST_CASE("hostile: bad L1/L2 entries fail the access, never touch other host data") {
    Fresh f;
    auto bytes = blocktest::read_file(f.img);
    const uint64_t l1 = be64_at(bytes, 40);
    const uint64_t l2 = be64_at(bytes, l1) & 0x00fffffffffffe00ull;
    REQUIRE(l2 != 0);
    std::vector<uint8_t> buf(512);
    SUBCASE("L2 entry with unaligned data offset") {
        blocktest::patch_file(f.img, l2, be64v((1ull << 63) | 0x50200));
        auto q = open_q(f.img);
        CHECK(q->read(0, buf) == IoStatus::Corrupt);
        CHECK(q->write(0, buf) == IoStatus::Corrupt);
        CHECK(q->read(65536, buf) == IoStatus::Ok); // the other cluster is fine
    }
    SUBCASE("L2 entry pointing at the L1 table: reads allowed, writes refused") {
        blocktest::patch_file(f.img, l2, be64v((1ull << 63) | l1));
        auto q = open_q(f.img);
        CHECK(q->read(0, buf) == IoStatus::Ok);
        std::fill(buf.begin(), buf.end(), 0xff);
        CHECK(q->write(0, buf) == IoStatus::Corrupt);
        q.reset();
        CHECK(be64_at(blocktest::read_file(f.img), l1) == be64_at(bytes, l1));
    }
    SUBCASE("L2 entry pointing far past the end of the file: no huge sparse write") {
        blocktest::patch_file(f.img, l2, be64v((1ull << 63) | (1ull << 44)));
        auto q = open_q(f.img);
        CHECK(q->read(0, buf) == IoStatus::Ok); // past EOF reads as zeros
        CHECK(q->write(0, buf) == IoStatus::Corrupt);
        q.reset();
        CHECK(blocktest::read_file(f.img).size() == bytes.size());
    }
    SUBCASE("L1 entry with an unaligned L2 offset") {
        blocktest::patch_file(f.img, l1, be64v((1ull << 63) | (l2 + 512)));
        auto q = open_q(f.img);
        CHECK(q->read(0, buf) == IoStatus::Corrupt);
        CHECK(q->write(0, buf) == IoStatus::Corrupt);
    }
    SUBCASE("compressed entry with a garbage stream") {
        // Compressed flag, offset = the data cluster itself (0x3c bytes are not deflate).
        uint64_t data = be64_at(bytes, l2) & 0x00fffffffffffe00ull;
        blocktest::patch_file(f.img, l2, be64v((1ull << 62) | data));
        auto q = open_q(f.img, true);
        CHECK(q->read(0, buf) == IoStatus::Corrupt);
    }
    SUBCASE("compressed entry beyond the end of the file") {
        blocktest::patch_file(f.img, l2, be64v((1ull << 62) | (1ull << 50) | (1ull << 40)));
        auto q = open_q(f.img, true);
        CHECK(q->read(0, buf) == IoStatus::Corrupt);
    }
}

TEST_CASE("hostile: random corruption of the metadata never crashes hvm") {
    Fresh f("-o cluster_size=4096");
    const auto pristine = blocktest::read_file(f.img);
    std::mt19937_64 rng(1234);
    int opened = 0;
    for (int iter = 0; iter < 150; iter++) {
        auto bytes = pristine;
        int flips = 1 + int(rng() % 8);
        for (int i = 0; i < flips; i++) {
            // Mostly the header cluster and the tables right after it.
            size_t pos = size_t(rng() % std::min<size_t>(bytes.size(), 6 * 4096));
            bytes[pos] ^= uint8_t(1u << (rng() % 8));
        }
        blocktest::write_file(f.img, bytes);
        try {
            auto q = open_q(f.img);
            opened++;
            std::vector<uint8_t> buf(64 * 1024, 0x5a);
            for (uint64_t off = 0; off + buf.size() <= q->size() && off < (1u << 20);
                 off += buf.size()) {
                (void)q->read(off, buf);
                (void)q->write(off, std::span(buf).first(4096));
            }
        } catch (const hvm::UserError&) {
        }
    }
    CHECK(opened > 0);
}
