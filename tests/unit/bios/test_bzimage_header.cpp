#include <doctest/doctest.h>

#include <string>

#include "base/error.hpp"
#include "bios/linux_boot.hpp"
#include "test_support.hpp"

using namespace hvm;
using test::BzImageSpec;
using test::make_bzimage;

namespace {
// The one-line message a UserError carries, or "" if none was thrown.
template <typename F> std::string user_error(F&& f) {
    try {
        f();
    } catch (const UserError& e) {
        return e.what();
    }
    return "";
}
} // namespace

TEST_CASE("a well-formed bzImage header parses into its fields") {
    auto f = make_bzimage();
    auto h = parse_bzimage(f, "vmlinuz");
    CHECK(h.version == 0x020f);
    CHECK(h.setup_sects == 30);
    CHECK(h.setup_size == 31 * 512);
    CHECK(h.syssize == 0x1000);
    CHECK(h.kernel_size == 0x10000);
    CHECK(h.loadflags == 0x01);
    CHECK(h.xloadflags == 0x7f);
    CHECK(h.code32_start == 0x100000);
    CHECK(h.initrd_addr_max == 0x7fffffff);
    CHECK(h.kernel_alignment == 0x200000);
    CHECK(h.relocatable);
    CHECK(h.cmdline_size == 2047);
    CHECK(h.pref_address == 0x1000000);
    CHECK(h.init_size == 0x2000000);
    CHECK(h.header_end == 0x26c);
    CHECK(h.kernel_version == "6.1.0-test (hvm@test) #1 SMP");
}

TEST_CASE("setup_sects 0 means 4") {
    BzImageSpec s;
    s.setup_sects = 0;
    auto f = make_bzimage(s);
    auto h = parse_bzimage(f, "vmlinuz");
    CHECK(h.setup_sects == 4);
    CHECK(h.setup_size == 5 * 512);
    CHECK(h.kernel_size == f.size() - 5 * 512);
}

TEST_CASE("wrong magic is refused with one clear line") {
    auto f = make_bzimage();
    f[0x202] = 'X';
    CHECK(user_error([&] { parse_bzimage(f, "vmlinuz"); }) ==
          "vmlinuz: not a bzImage (no HdrS signature)");
    std::vector<uint8_t> elf(4096, 0);
    CHECK(user_error([&] { parse_bzimage(elf, "vmlinuz"); }) ==
          "vmlinuz: not a bzImage (no HdrS signature)");
    auto g = make_bzimage();
    test::put(g, 0x1fe, 2, 0x1234);
    CHECK(user_error([&] { parse_bzimage(g, "vmlinuz"); }).find("boot flag 0x1234") !=
          std::string::npos);
}

TEST_CASE("a file too short for the header, or shorter than the header says, is refused") {
    auto f = make_bzimage();
    std::vector<uint8_t> tiny(f.begin(), f.begin() + 0x100);
    CHECK(user_error([&] { parse_bzimage(tiny, "vmlinuz"); }) ==
          "vmlinuz: not a bzImage (only 256 bytes)");
    // Cut inside the setup code.
    std::vector<uint8_t> in_setup(f.begin(), f.begin() + 0x1000);
    auto m = user_error([&] { parse_bzimage(in_setup, "vmlinuz"); });
    CHECK(m.find("vmlinuz: truncated bzImage") == 0);
    CHECK(m.find("15872") != std::string::npos); // 31 * 512
    // Cut inside the protected-mode kernel: syssize says more than is there.
    std::vector<uint8_t> in_kernel(f.begin(), f.end() - 16);
    m = user_error([&] { parse_bzimage(in_kernel, "vmlinuz"); });
    CHECK(m.find("vmlinuz: truncated bzImage") == 0);
    // Extra bytes after the kernel (an appended signature) are fine.
    auto signed_image = f;
    signed_image.resize(f.size() + 700, 0x5a);
    CHECK(parse_bzimage(signed_image, "vmlinuz").kernel_size == 0x10000 + 700);
}

TEST_CASE("boot protocol older than 2.06 is refused") {
    BzImageSpec s;
    s.version = 0x0204;
    auto f = make_bzimage(s);
    auto m = user_error([&] { parse_bzimage(f, "old-vmlinuz"); });
    CHECK(m == "old-vmlinuz: Linux boot protocol 2.04 is too old; hvm needs 2.06 or later "
               "(Linux 2.6.22+)");
    s.version = 0x0206;
    CHECK_NOTHROW(parse_bzimage(make_bzimage(s), "vmlinuz"));
}

TEST_CASE("protocol 2.06-2.09 kernels have no pref_address/init_size; 2.10+ fields are ignored") {
    BzImageSpec s;
    s.version = 0x0209;
    auto h = parse_bzimage(make_bzimage(s), "vmlinuz");
    CHECK(h.pref_address == 0x100000);
    CHECK(h.init_size == 0);
    CHECK(h.xloadflags == 0);
}

TEST_CASE("a zImage and corrupt alignment are refused") {
    BzImageSpec s;
    s.loadflags = 0;
    CHECK(user_error([&] { parse_bzimage(make_bzimage(s), "zImage"); }).find("a zImage") !=
          std::string::npos);
    BzImageSpec a;
    a.kernel_alignment = 0x300000;
    CHECK(user_error([&] { parse_bzimage(make_bzimage(a), "k"); }).find("kernel_alignment") !=
          std::string::npos);
    BzImageSpec z;
    z.header_len = 0x10; // header claims to end before cmdline_size
    CHECK(user_error([&] { parse_bzimage(make_bzimage(z), "k"); }).find("corrupt") !=
          std::string::npos);
}

TEST_CASE("a header longer than boot_params has room for is cut at 0x290") {
    BzImageSpec s;
    s.header_len = 0xff;
    CHECK(parse_bzimage(make_bzimage(s), "k").header_end == 0x290);
}

TEST_CASE("runtime start address follows boot.rst") {
    auto h = parse_bzimage(make_bzimage(), "k");
    // Relocatable: max(load address, pref_address) aligned up to kernel_alignment.
    CHECK(linux_runtime_start(h, 0x100000) == 0x1000000);
    CHECK(linux_runtime_start(h, 0x1100000) == 0x1200000);
    BzImageSpec s;
    s.relocatable = 0;
    s.pref_address = 0x1000000;
    auto n = parse_bzimage(make_bzimage(s), "k");
    CHECK(linux_runtime_start(n, 0x100000) == 0x1000000);
}
