// -kernel/-initrd/-append: recognises the kernel the way QEMU's x86_load_linux does (a "HdrS"
// setup header means a Linux bzImage, otherwise a Multiboot header in the first 8 KiB) and hands
// it to the matching loader. The machine calls this once at start and again on every reset.
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "bios/e820.hpp"
#include "bios/linux_boot.hpp"
#include "vcpu/engine.hpp"
#include "vcpu/guest_memory.hpp"

namespace hvm {

struct KernelBootConfig {
    std::string kernel_path; // -kernel
    std::string initrd;      // -initrd: one file for Linux, "file args,file2" modules for multiboot
    std::string cmdline;     // -append
    LinuxEntry linux_entry = LinuxEntry::Protected32;
    uint64_t acpi_rsdp_addr = 0; // see LinuxBootConfig
};

enum class KernelKind { Linux, Multiboot };

struct KernelBootResult {
    KernelKind kind = KernelKind::Linux;
    CpuState cpu; // the boot CPU's state at the kernel's entry
};

// With the kernel file already in memory (`kernel`); module and initrd files are read from disk.
KernelBootResult load_kernel_image(GuestMemory& mem, std::span<const E820Entry> e820,
                                   std::span<const uint8_t> kernel, const KernelBootConfig& cfg);
// Reads cfg.kernel_path, then as above.
KernelBootResult load_kernel_file(GuestMemory& mem, std::span<const E820Entry> e820,
                                  const KernelBootConfig& cfg);

} // namespace hvm
