#include "bios/boot_cpu.hpp"

#include <array>
#include <stdexcept>

#include "bios/e820.hpp"
#include "devmodel/device.hpp"

namespace hvm {

namespace {
constexpr uint64_t kBdaEbdaSegment = 0x40e; // word: EBDA segment
constexpr uint64_t kBdaBaseMemKb = 0x413;   // word: INT 12h base memory size in KiB
constexpr uint64_t kCr0Pe = 1u << 0;
constexpr uint64_t kCr0Et = 1u << 4;

Segment flat_segment(uint16_t selector, uint8_t type) {
    Segment s;
    s.base = 0;
    s.limit = 0xffffffff;
    s.selector = selector;
    s.type = type;
    s.s = 1;
    s.dpl = 0;
    s.present = 1;
    s.db = 1;
    s.g = 1;
    return s;
}
} // namespace

void write_boot_gdt(GuestMemory& mem) {
    std::array<uint8_t, kBootGdtLimit + 1> gdt{};
    le_store(std::span(gdt).subspan(kBootCodeSelector, 8), kFlatCode32Descriptor);
    le_store(std::span(gdt).subspan(kBootDataSelector, 8), kFlatData32Descriptor);
    if (!mem.write(kBootGdtAddr, gdt)) throw std::runtime_error("boot GDT: no RAM at 0x500");
}

void write_bios_data_area(GuestMemory& mem) {
    std::array<uint8_t, 2> w{};
    le_store(w, kEbdaAddr >> 4);
    if (!mem.write(kBdaEbdaSegment, w)) throw std::runtime_error("BIOS data area: no RAM");
    le_store(w, kEbdaAddr >> 10);
    if (!mem.write(kBdaBaseMemKb, w)) throw std::runtime_error("BIOS data area: no RAM");
}

CpuState flat_protected_mode_state() {
    CpuState s = reset_cpu_state(0);
    for (auto& g : s.gpr) g = 0;
    s.rflags = 0x2;
    s.seg[CS] = flat_segment(kBootCodeSelector, 0xb); // execute/read, accessed
    for (unsigned r : {ES, SS, DS, FS, GS}) s.seg[r] = flat_segment(kBootDataSelector, 0x3);
    // LDTR and TR keep their reset values (LDT type 2, busy 32-bit TSS): a usable TR is what
    // VMX requires to enter protected mode, and nothing at kernel entry loads either.
    s.gdt = {kBootGdtAddr, kBootGdtLimit};
    // No IDT: interrupts are off at entry, and an exception before the kernel sets up its own IDT
    // must end in a visible triple fault rather than a jump into garbage.
    s.idt = {0, 0};
    s.cr0 = kCr0Pe | kCr0Et; // caches enabled (CD/NW clear), as firmware leaves them
    s.cr3 = 0;
    s.cr4 = 0;
    s.efer = 0;
    return s;
}

} // namespace hvm
