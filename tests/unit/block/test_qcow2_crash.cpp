// A process writing to a qcow2 image is killed with SIGKILL at a random moment; qemu-img check
// must then find no corruption (leaked clusters are allowed, as in QEMU).
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "block/open_image.hpp"
#include "block/qcow2_image.hpp"
#include "tests/unit/block/block_test_util.hpp"

using namespace hvm::block;
using blocktest::run;
using blocktest::TempDir;

namespace {

[[noreturn]] void writer_child(const std::string& img, int ready_fd, uint64_t seed) {
    try {
        OpenOptions o;
        o.format = "qcow2";
        auto q = open_image(img, o);
        std::mt19937_64 rng(seed);
        bool signalled = false;
        for (;;) {
            // Mostly fresh clusters (allocation, L2 and refcount growth), some rewrites.
            uint64_t len = 512 * (1 + rng() % 64);
            uint64_t off = (rng() % (q->sectors() - 64)) * 512;
            auto data = blocktest::random_bytes(rng, len);
            if (q->write(off, data) != IoStatus::Ok) _exit(3);
            if (!signalled) {
                char c = 1;
                if (write(ready_fd, &c, 1) != 1) _exit(4);
                signalled = true;
            }
        }
    } catch (...) {
        _exit(2);
    }
}

} // namespace

TEST_CASE("crash: SIGKILL during writes leaves at worst leaked clusters") {
    struct Case {
        const char* opts;
        const char* size;
    };
    const Case cases[] = {
        {"cluster_size=4096", "256M"},
        {"cluster_size=512", "64M"}, // refcount blocks and table grow while being killed
        {"compat=0.10,cluster_size=4096", "256M"},
        {"refcount_bits=1,cluster_size=1024", "64M"},
    };
    std::mt19937_64 rng(2024);
    for (const Case& c : cases) {
        for (int round = 0; round < 2; round++) {
            CAPTURE(c.opts);
            CAPTURE(round);
            TempDir dir;
            std::string img = dir / "crash.qcow2";
            REQUIRE(run(std::string("qemu-img create -q -f qcow2 -o ") + c.opts + " " + img + " " +
                        c.size)
                        .status == 0);
            int fds[2];
            REQUIRE(pipe(fds) == 0);
            const uint64_t seed = rng();
            pid_t pid = fork();
            REQUIRE(pid >= 0);
            if (pid == 0) {
                close(fds[0]);
                writer_child(img, fds[1], seed);
            }
            close(fds[1]);
            char c1 = 0;
            REQUIRE(read(fds[0], &c1, 1) == 1); // the child has completed a write
            close(fds[0]);
            std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 600));
            kill(pid, SIGKILL);
            int status = 0;
            REQUIRE(waitpid(pid, &status, 0) == pid);
            REQUIRE(WIFSIGNALED(status)); // still writing when killed
            auto check = blocktest::qemu_check(img);
            CHECK_MESSAGE((check.status == 0 || check.status == 3), check.output);
            CHECK(check.output.find("ERROR") == std::string::npos);
        }
    }
}

namespace {

// Runs `workload` against `img` with the file frozen after `budget` writes; returns true if the
// workload hit the freeze (false: it finished within the budget).
template <typename Workload>
bool run_frozen(const std::string& img, uint64_t budget, Workload&& workload) {
    auto file = HostFile::open(img, false, CacheMode::writeback_mode());
    file->fail_writes_after(budget);
    auto info = Qcow2Image::read_image_info(*file);
    Qcow2Image q(std::move(file), info, nullptr);
    return !workload(q);
}

} // namespace

TEST_CASE("crash: freezing the file after every single metadata/data write leaves no corruption") {
    struct Case {
        const char* opts;
        const char* size;
        const char* prefill; // qemu-io command run first, or ""
        uint64_t base;       // where the sequential writes start
        uint64_t write_len;
        int writes;
        bool table_growth; // dense crash points around the refcount table move
    };
    const Case cases[] = {
        // Fresh image: first L2 tables, first data clusters, new refcount blocks.
        {"cluster_size=4096,refcount_bits=2", "64M", "", 0, 12288, 16, false},
        {"compat=0.10,cluster_size=4096", "64M", "write -P 1 0 1M", 1 << 20, 8192, 16, false},
        // 512-byte clusters filled close to 8 MiB of host file: the refcount table is moved to a
        // bigger one during the workload.
        {"cluster_size=512", "16M", "write -P 2 0 7900k", (7900u << 10) - 2048, 4096, 48, true},
    };
    for (const Case& c : cases) {
        CAPTURE(c.opts);
        TempDir dir;
        std::string pristine = dir / "pristine.qcow2", img = dir / "img.qcow2";
        REQUIRE(run(std::string("qemu-img create -q -f qcow2 -o ") + c.opts + " " + pristine + " " +
                    c.size)
                    .status == 0);
        if (*c.prefill)
            REQUIRE(
                run(std::string("qemu-io -f qcow2 -c '") + c.prefill + "' " + pristine).status ==
                0);
        auto workload = [&](Qcow2Image& q) {
            std::mt19937_64 rng(77);
            for (int i = 0; i < c.writes; i++) {
                // Sequential writes, with every 4th one somewhere random.
                uint64_t off = i % 4 == 3 ? (rng() % (q.sectors() - 64)) * 512
                                          : c.base + uint64_t(i) * c.write_len;
                auto data = blocktest::random_bytes(rng, c.write_len);
                if (q.write(off, data) != IoStatus::Ok) return false;
            }
            return true;
        };
        // Runs the workload frozen after `budget` writes and checks the image. Returns
        // {frozen, refcount table moved}.
        auto crash_at = [&](uint64_t budget) {
            REQUIRE(run("cp " + pristine + " " + img).status == 0);
            bool frozen = run_frozen(img, budget, workload);
            auto bytes = blocktest::read_file(img);
            bool moved = (bytes[56] | bytes[57] | bytes[58]) != 0 || bytes[59] > 1;
            auto check = blocktest::qemu_check(img);
            CAPTURE(budget);
            REQUIRE_MESSAGE((check.status == 0 || check.status == 3), check.output);
            return std::pair<bool, bool>(frozen, moved);
        };
        int points = 0;
        if (!c.table_growth) {
            for (uint64_t budget = 0;; budget++, points++)
                if (!crash_at(budget).first) break;
        } else {
            // Find the write that switches the header to the new table, then crash at every
            // write around it; elsewhere every 50th.
            uint64_t lo = 0, hi = 1;
            while (!crash_at(hi).second) {
                lo = hi;
                hi *= 2;
                REQUIRE(hi < (1u << 16));
            }
            while (hi - lo > 1) {
                uint64_t mid = (lo + hi) / 2;
                (crash_at(mid).second ? hi : lo) = mid;
            }
            points += 20;
            for (uint64_t b = hi > 40 ? hi - 40 : 0; b < hi + 20; b++, points++) crash_at(b);
            for (uint64_t b = 0;; b += 50, points++)
                if (!crash_at(b).first) break;
        }
        MESSAGE(std::string(c.opts), ": ", points, " crash points checked");
        CHECK(points > 20);
    }
}
