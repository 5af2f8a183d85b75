#include <doctest/doctest.h>

#include <cstdio>
#include <string>
#include <unistd.h>

#include "base/error.hpp"
#include "bios/image_file.hpp"
#include "bios/kernel_loader.hpp"
#include "test_support.hpp"

using namespace hvm;
using test::PcRam;
using test::put;

namespace {
constexpr uint64_t MiB = 1ull << 20;

// A file under /tmp that removes itself.
struct TempFile {
    std::string path;
    explicit TempFile(const std::vector<uint8_t>& data) {
        char tmpl[] = "/tmp/hvm-loader-test-XXXXXX";
        int fd = mkstemp(tmpl);
        REQUIRE(fd >= 0);
        path = tmpl;
        REQUIRE(write(fd, data.data(), data.size()) == ssize_t(data.size()));
        close(fd);
    }
    ~TempFile() { unlink(path.c_str()); }
};

std::vector<uint8_t> aout_kernel() {
    std::vector<uint8_t> f(0x400, 0x90);
    const uint32_t magic = 0x1badb002, flags = 0x10000;
    put(f, 0, 4, magic);
    put(f, 4, 4, flags);
    put(f, 8, 4, uint32_t(0) - magic - flags);
    put(f, 12, 4, 0x100000); // header_addr
    put(f, 16, 4, 0x100000); // load_addr
    put(f, 20, 4, 0);
    put(f, 24, 4, 0);
    put(f, 28, 4, 0x100020); // entry
    return f;
}

template <typename F> std::string user_error(F&& f) {
    try {
        f();
    } catch (const UserError& e) {
        return e.what();
    }
    return "";
}
} // namespace

TEST_CASE("-kernel with a HdrS header boots as Linux, with -initrd as its initrd") {
    PcRam ram(128 * MiB);
    auto kernel = test::make_bzimage();
    TempFile initrd(std::vector<uint8_t>(12345, 0x77));
    KernelBootConfig cfg{"vmlinuz", initrd.path, "console=ttyS0"};
    auto r = load_kernel_image(ram.mem, ram.e820, kernel, cfg);
    CHECK(r.kind == KernelKind::Linux);
    CHECK(r.cpu.rip == 0x100000);
    CHECK(r.cpu.gpr[RSI] == kLinuxZeroPageAddr);
    uint64_t at = ram.rd(kLinuxZeroPageAddr + 0x218, 4);
    CHECK(ram.rd(kLinuxZeroPageAddr + 0x21c, 4) == 12345);
    CHECK(ram.read(at, 12345) == std::vector<uint8_t>(12345, 0x77));
}

TEST_CASE("-kernel with a multiboot header boots as multiboot, -initrd as a module list") {
    PcRam ram(128 * MiB);
    TempFile m1(std::vector<uint8_t>(100, 1));
    TempFile m2(std::vector<uint8_t>(200, 2));
    TempFile k(aout_kernel());
    KernelBootConfig cfg{k.path, m1.path + " first arg," + m2.path, "x=1"};
    auto r = load_kernel_file(ram.mem, ram.e820, cfg);
    CHECK(r.kind == KernelKind::Multiboot);
    CHECK(r.cpu.rip == 0x100020);
    CHECK(r.cpu.gpr[RAX] == 0x2badb002);
    REQUIRE(ram.rd(0x9500 + 20, 4) == 2);
    uint64_t mods = ram.rd(0x9500 + 24, 4);
    CHECK(ram.cstr(ram.rd(mods + 8, 4)) == m1.path + " first arg");
    CHECK(ram.read(ram.rd(mods + 16, 4), 200) == std::vector<uint8_t>(200, 2));
    CHECK(ram.cstr(ram.rd(0x9500 + 16, 4)) == k.path + " x=1");
}

TEST_CASE("-kernel that is neither, or missing files, gives one line") {
    PcRam ram(128 * MiB);
    std::vector<uint8_t> junk(10000, 0x33);
    CHECK(user_error([&] {
              load_kernel_image(ram.mem, ram.e820, junk, {"vmlinuz", "", ""});
          }) == "vmlinuz: not a bzImage (no HdrS signature) nor a multiboot kernel");
    auto bad = aout_kernel();
    put(bad, 8, 4, 0);
    CHECK(user_error([&] {
              load_kernel_image(ram.mem, ram.e820, bad, {"k", "", ""});
          }) == "k: not a bzImage (no HdrS signature), and its multiboot header at 0x0 has a bad "
                "checksum");
    CHECK(user_error([&] {
              load_kernel_file(ram.mem, ram.e820, {"/nonexistent/vmlinuz", "", ""});
          }) == "/nonexistent/vmlinuz: cannot read kernel: No such file or directory");
    auto kernel = test::make_bzimage();
    CHECK(user_error([&] {
              load_kernel_image(ram.mem, ram.e820, kernel, {"vmlinuz", "/nonexistent/initrd", ""});
          }) == "/nonexistent/initrd: cannot read initrd: No such file or directory");
    CHECK(user_error([&] { read_image_file("/tmp", "kernel"); }) ==
          "/tmp: cannot read kernel: not a regular file");
}
