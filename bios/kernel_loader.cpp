#include "bios/kernel_loader.hpp"

#include <vector>

#include "base/error.hpp"
#include "bios/image_file.hpp"
#include "bios/loader_util.hpp"
#include "bios/multiboot.hpp"

namespace hvm {

KernelBootResult load_kernel_image(GuestMemory& mem, std::span<const E820Entry> e820,
                                   std::span<const uint8_t> kernel, const KernelBootConfig& cfg) {
    const std::string& name = cfg.kernel_path;
    KernelBootResult r;
    bool hdrs = kernel.size() >= bzimage::kHeader + 4 &&
                loader::field(kernel, bzimage::kHeader, 4) == bzimage::kHdrSMagic;
    if (!hdrs) {
        size_t bad = SIZE_MAX;
        if (find_multiboot_header(kernel, &bad)) {
            MultibootConfig mb;
            mb.kernel_name = name;
            mb.kernel = kernel;
            mb.cmdline = cfg.cmdline;
            mb.modules = read_multiboot_modules(cfg.initrd);
            r.kind = KernelKind::Multiboot;
            r.cpu = load_multiboot(mem, e820, mb).cpu;
            return r;
        }
        if (bad != SIZE_MAX)
            fail(name + ": not a bzImage (no HdrS signature), and its multiboot header at " +
                 loader::hex(bad) + " has a bad checksum");
        fail(name + ": not a bzImage (no HdrS signature) nor a multiboot kernel");
    }
    std::vector<uint8_t> initrd;
    LinuxBootConfig lc;
    lc.kernel_name = name;
    lc.kernel = kernel;
    lc.cmdline = cfg.cmdline;
    lc.entry = cfg.linux_entry;
    lc.acpi_rsdp_addr = cfg.acpi_rsdp_addr;
    if (!cfg.initrd.empty()) {
        initrd = read_image_file(cfg.initrd, "initrd");
        lc.has_initrd = true;
        lc.initrd_name = cfg.initrd;
        lc.initrd = initrd;
    }
    r.kind = KernelKind::Linux;
    r.cpu = load_linux(mem, e820, lc).cpu;
    return r;
}

KernelBootResult load_kernel_file(GuestMemory& mem, std::span<const E820Entry> e820,
                                  const KernelBootConfig& cfg) {
    std::vector<uint8_t> kernel = read_image_file(cfg.kernel_path, "kernel");
    return load_kernel_image(mem, e820, kernel, cfg);
}

} // namespace hvm
