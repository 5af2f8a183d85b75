// What a direct kernel boot leaves in low memory and in the boot CPU: the small flat GDT both the
// Linux 32-bit boot protocol and Multiboot need, the BIOS data area words a kernel reads to find
// the EBDA, and the register state for a 32-bit flat protected-mode entry.
#pragma once
#include <cstdint>

#include "vcpu/engine.hpp"
#include "vcpu/guest_memory.hpp"

namespace hvm {

// The boot GDT sits just above the BIOS data area (0x400-0x4FF), in memory no kernel reads at
// entry. Layout: 0x00 null, 0x08 null, 0x10 flat 32-bit code, 0x18 flat 32-bit data. 0x10/0x18 are
// Linux's __BOOT_CS/__BOOT_DS, which Documentation/x86/boot.rst "32-bit BOOT PROTOCOL" requires.
constexpr uint64_t kBootGdtAddr = 0x500;
constexpr uint16_t kBootCodeSelector = 0x10;
constexpr uint16_t kBootDataSelector = 0x18;
constexpr uint16_t kBootGdtLimit = 4 * 8 - 1;

// Descriptors with the accessed bit already set, so the CPU never writes back into the table.
constexpr uint64_t kFlatCode32Descriptor = 0x00cf9b000000ffffull; // base 0, 4 GiB, exec/read
constexpr uint64_t kFlatData32Descriptor = 0x00cf93000000ffffull; // base 0, 4 GiB, read/write

// Writes the boot GDT at kBootGdtAddr. Throws std::runtime_error if low RAM is missing (a machine
// bug, not a user error).
void write_boot_gdt(GuestMemory& mem);

// Fills the BIOS data area words a kernel uses to find the EBDA and base memory size, as SeaBIOS
// leaves them: 0x40E = EBDA segment (0x9FC0), 0x413 = base memory in KiB (639). Linux's
// reserve_bios_regions() and the MP/ACPI table scans read them.
void write_bios_data_area(GuestMemory& mem);

// IA32_MTRR_DEF_TYPE (MSR 0x2FF) for a direct boot: MTRRs enabled, default type write-back. No
// firmware runs to program the MTRRs, and with the reset value 0 (MTRRs off, everything UC) a
// guest runs uncached where the hypervisor honours guest MTRRs, and Linux turns PAT off.
// Firecracker and cloud-hypervisor set this same value for their boot CPU. CpuState has no MTRR
// field yet, so the machine must write it through the engine before the first run.
constexpr uint32_t kMsrMtrrDefType = 0x2ff;
constexpr uint64_t kDirectBootMtrrDefType = (1u << 11) | 6;

// The boot CPU in 32-bit flat protected mode with paging off and interrupts off, as Linux's 32-bit
// boot protocol and the Multiboot spec §3.2 "Machine state" describe: CS = kBootCodeSelector,
// DS/ES/FS/GS/SS = kBootDataSelector, GDTR = the boot GDT, CR0 = PE|ET, EFLAGS = 0x2.
// General registers are zero; the caller sets EIP and the protocol's registers.
CpuState flat_protected_mode_state();

} // namespace hvm
