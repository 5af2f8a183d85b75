#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include "vmexit/bus.hpp"

using namespace hvm;

namespace {
// Records every access the bus hands to it; reads return offset-derived bytes.
struct Recorder : IoHandler {
    struct Access {
        bool write;
        uint64_t offset;
        size_t size;
        uint64_t value;
    };
    std::vector<Access> log;
    void io_read(uint64_t offset, std::span<uint8_t> data) override {
        for (size_t i = 0; i < data.size(); i++) data[i] = uint8_t(0x10 + offset + i);
        log.push_back({false, offset, data.size(), le_load(data)});
    }
    void io_write(uint64_t offset, std::span<const uint8_t> data) override {
        log.push_back({true, offset, data.size(), le_load(data)});
    }
};

struct Reentrant : IoHandler {
    Bus* bus = nullptr;
    uint8_t inner = 0;
    int depth = 0;
    void io_read(uint64_t, std::span<uint8_t> data) override {
        depth++;
        uint8_t b;
        bus->read(0x100, std::span(&b, 1)); // back into ourselves
        inner = b;
        data[0] = 0x42;
    }
    void io_write(uint64_t, std::span<const uint8_t>) override {}
};
} // namespace

TEST_CASE("bus rejects bad ranges") {
    Bus bus("pio");
    Recorder r;
    CHECK_THROWS_AS(bus.add(0x10, 0, &r, {1, 1}, "zero"), std::invalid_argument);
    CHECK_THROWS_AS(bus.add(~0ull - 1, 4, &r, {1, 1}, "wrap"), std::invalid_argument);
    bus.add(0x10, 8, &r, {1, 1}, "a");
    CHECK_THROWS_AS(bus.add(0x17, 1, &r, {1, 1}, "overlap-end"), std::invalid_argument);
    CHECK_THROWS_AS(bus.add(0x08, 9, &r, {1, 1}, "overlap-start"), std::invalid_argument);
    CHECK_THROWS_AS(bus.add(0x0, 0x100, &r, {1, 1}, "cover"), std::invalid_argument);
    CHECK_NOTHROW(bus.add(0x18, 1, &r, {1, 1}, "adjacent"));
    CHECK_NOTHROW(bus.add(0x0f, 1, &r, {1, 1}, "adjacent-below"));
    CHECK_THROWS_AS(bus.add(0x40, 4, &r, {4, 2}, "bad sizes"), std::invalid_argument);
    CHECK_THROWS_AS(bus.add(0x40, 4, &r, {3, 4}, "bad sizes"), std::invalid_argument);
}

TEST_CASE("unclaimed reads are all-ones and writes are dropped") {
    Bus bus("pio");
    Recorder r;
    bus.add(0x3f8, 8, &r, {1, 1}, "uart");
    uint8_t d4[4] = {0, 0, 0, 0};
    bus.read(0x500, d4);
    for (auto b : d4) CHECK(b == 0xff);
    uint8_t w[2] = {1, 2};
    bus.write(0x500, w);
    CHECK(r.log.empty());
    CHECK(bus.unclaimed_count() == 2);
}

TEST_CASE("wide accesses are split for byte-only registers") {
    Bus bus("pio");
    Recorder r;
    bus.add(0x3f8, 8, &r, {1, 1}, "uart");
    uint8_t d[4];
    bus.read(0x3f9, d);
    REQUIRE(r.log.size() == 4);
    for (int i = 0; i < 4; i++) {
        CHECK(r.log[i].offset == uint64_t(1 + i));
        CHECK(r.log[i].size == 1);
        CHECK(d[i] == 0x11 + i);
    }
    r.log.clear();
    uint8_t w[2] = {0xaa, 0xbb};
    bus.write(0x3f8, w);
    REQUIRE(r.log.size() == 2);
    CHECK(r.log[0].value == 0xaa);
    CHECK(r.log[1].value == 0xbb);
    CHECK(r.log[1].offset == 1);
}

TEST_CASE("an access running past the region end reads all-ones there") {
    Bus bus("pio");
    Recorder r;
    bus.add(0x60, 2, &r, {1, 1}, "two");
    uint8_t d[4];
    bus.read(0x61, d);
    CHECK(r.log.size() == 1);
    CHECK(d[0] == 0x11);
    CHECK(d[1] == 0xff);
    CHECK(d[3] == 0xff);
}

TEST_CASE("narrow accesses are widened for dword-only registers") {
    Bus bus("mmio");
    Recorder r;
    bus.add(0xfec00000, 0x20, &r, {4, 4}, "ioapic");
    uint8_t b;
    bus.read(0xfec00002, std::span(&b, 1));
    REQUIRE(r.log.size() == 1);
    CHECK(r.log[0].offset == 0);
    CHECK(r.log[0].size == 4);
    CHECK(b == 0x12);
    r.log.clear();
    uint8_t w = 0x5a;
    bus.write(0xfec00001, std::span(&w, 1));
    REQUIRE(r.log.size() == 1);
    CHECK(r.log[0].size == 4);
    CHECK(r.log[0].value == 0x5a00);
    r.log.clear();
    uint8_t q[8];
    bus.read(0xfec00010, q);
    REQUIRE(r.log.size() == 2);
    CHECK(r.log[0].offset == 0x10);
    CHECK(r.log[1].offset == 0x14);
}

TEST_CASE("a handler is not re-entered through the bus") {
    Bus bus("mmio");
    Reentrant h;
    h.bus = &bus;
    bus.add(0x100, 4, &h, {1, 1}, "self");
    uint8_t b = 0;
    bus.read(0x100, std::span(&b, 1));
    CHECK(b == 0x42);
    CHECK(h.depth == 1);
    CHECK(h.inner == 0xff);
}

TEST_CASE("regions can move and be removed") {
    Bus bus("mmio");
    Recorder a, b;
    bus.add(0x1000, 0x100, &a, {1, 4}, "a");
    bus.add(0x2000, 0x100, &b, {1, 4}, "b");
    CHECK_THROWS(bus.move(0x1000, 0x2080));
    CHECK(bus.find(0x1000) != nullptr); // still where it was
    bus.move(0x1000, 0x3000);
    CHECK(bus.find(0x1000) == nullptr);
    CHECK(bus.find(0x30ff) != nullptr);
    CHECK(bus.find(0x3100) == nullptr);
    CHECK(bus.remove(0x2000));
    CHECK_FALSE(bus.remove(0x2000));
}
