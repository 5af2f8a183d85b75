#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "block/block_worker_pool.hpp"
#include "block/open_image.hpp"
#include "tests/unit/block/block_test_util.hpp"

using namespace hvm::block;
using blocktest::run;
using blocktest::TempDir;

TEST_CASE("worker pool: completions run off the caller's thread with the right status") {
    TempDir dir;
    std::string img = dir / "a.qcow2";
    REQUIRE(run("qemu-img create -q -f qcow2 " + img + " 8M").status == 0);
    OpenOptions o;
    o.format = "qcow2";
    auto dev = open_image(img, o);
    BlockWorkerPool pool(2);
    const auto caller = std::this_thread::get_id();

    std::vector<std::vector<uint8_t>> bufs;
    for (int i = 0; i < 32; i++) bufs.emplace_back(65536, uint8_t(i + 1));
    std::atomic<int> ok{0}, off_thread{0};
    for (int i = 0; i < 32; i++) {
        pool.submit_write(*dev, uint64_t(i) * 65536 * 2, bufs[i], [&](IoStatus s) {
            if (s == IoStatus::Ok) ok++;
            if (std::this_thread::get_id() != caller) off_thread++;
        });
    }
    pool.drain();
    CHECK(pool.in_flight() == 0);
    CHECK(ok == 32);
    CHECK(off_thread == 32);

    std::atomic<int> flushed{0};
    pool.submit_flush(*dev, [&](IoStatus s) { flushed += s == IoStatus::Ok; });
    pool.drain();
    CHECK(flushed == 1);

    std::vector<std::vector<uint8_t>> reads(32, std::vector<uint8_t>(65536));
    std::atomic<int> matched{0};
    for (int i = 0; i < 32; i++) {
        pool.submit_read(*dev, uint64_t(i) * 65536 * 2, reads[i], [&, i](IoStatus s) {
            if (s == IoStatus::Ok && reads[i] == bufs[i]) matched++;
        });
    }
    pool.drain();
    CHECK(matched == 32);

    // Errors are reported through the completion, never thrown.
    std::vector<uint8_t> small(512);
    IoStatus got = IoStatus::Ok;
    pool.submit_read(*dev, dev->size(), small, [&](IoStatus s) { got = s; });
    pool.drain();
    CHECK(got == IoStatus::OutOfRange);
    IoStatus disc = IoStatus::Ok;
    pool.submit_discard(*dev, 0, 512, [&](IoStatus s) { disc = s; });
    pool.drain();
    CHECK(disc == IoStatus::NotSupported);
}

TEST_CASE("worker pool: destruction completes queued requests") {
    TempDir dir;
    std::string img = dir / "a.raw";
    REQUIRE(run("qemu-img create -q -f raw " + img + " 1M").status == 0);
    OpenOptions o;
    o.format = "raw";
    auto dev = open_image(img, o);
    std::vector<uint8_t> buf(4096, 9);
    std::atomic<int> done{0};
    {
        BlockWorkerPool pool(1);
        for (int i = 0; i < 100; i++)
            pool.submit_write(*dev, uint64_t(i % 200) * 4096, buf, [&](IoStatus) { done++; });
    }
    CHECK(done == 100);
}
