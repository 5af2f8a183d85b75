// Parses and loads a real Debian kernel when one is at hand: HVM_TEST_BZIMAGE, /boot/vmlinuz-*,
// or images/out/ of this checkout. Without one the test says so loudly and checks nothing.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "bios/image_file.hpp"
#include "bios/linux_boot.hpp"
#include "test_support.hpp"

using namespace hvm;
namespace fs = std::filesystem;

namespace {
std::string find_kernel() {
    if (const char* env = getenv("HVM_TEST_BZIMAGE")) return env;
    fs::path root = fs::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
    for (fs::path dir : {fs::path("/boot"), root / "images" / "out"}) {
        std::error_code ec;
        for (auto& e : fs::directory_iterator(dir, ec)) {
            auto name = e.path().filename().string();
            if (e.is_regular_file() && (name.rfind("vmlinuz", 0) == 0 || name == "bzImage"))
                return e.path().string();
        }
    }
    return {};
}
} // namespace

TEST_CASE("a real bzImage parses and loads") {
    std::string path = find_kernel();
    if (path.empty()) {
        MESSAGE("SKIPPED: no real kernel (set HVM_TEST_BZIMAGE, or have /boot/vmlinuz-* or "
                "images/out/vmlinuz*): the real-bzImage check did not run");
        fprintf(stderr, "\n*** test_real_bzimage: NO REAL KERNEL FOUND, CHECK SKIPPED ***\n\n");
        return;
    }
    MESSAGE("real kernel: " << path);
    auto file = read_image_file(path, "kernel");
    auto h = parse_bzimage(file, path);
    char proto[16];
    snprintf(proto, sizeof proto, "%u.%02u", h.version >> 8, h.version & 0xff);
    MESSAGE("version " << h.kernel_version << ", boot protocol " << proto);
    CHECK(h.version >= 0x020c);
    CHECK(h.relocatable);
    CHECK((h.xloadflags & bzimage::kXlfKernel64) != 0);
    CHECK(h.cmdline_size >= 255);
    CHECK(h.init_size > h.kernel_size);
    CHECK(h.pref_address == 0x1000000);
    CHECK(!h.kernel_version.empty());
    CHECK(uint64_t(h.syssize) * 16 <= h.kernel_size);

    test::PcRam ram(512ull << 20);
    LinuxBootConfig cfg;
    cfg.kernel_name = path;
    cfg.kernel = file;
    cfg.cmdline = "console=ttyS0 earlyprintk=serial";
    auto info = load_linux(ram.mem, ram.e820, cfg);
    CHECK(info.kernel_size == file.size() - h.setup_size);
    CHECK(ram.read(0x100000, 4096) ==
          std::vector<uint8_t>(file.begin() + h.setup_size, file.begin() + h.setup_size + 4096));
    CHECK(ram.rd(kLinuxZeroPageAddr + 0x202, 4) == bzimage::kHdrSMagic);
}
