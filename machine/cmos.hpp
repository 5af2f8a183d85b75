// The CMOS bytes QEMU's pc_cmos_init writes for the `pc` machine (pc-platform.md §4.4):
// base/extended memory, RAM above 16 MiB and above 4 GiB, CPU count, equipment, boot order.
#pragma once
#include <cstdint>
#include <functional>

namespace hvm {

struct CmosConfig {
    uint64_t ram_below_4g = 0;
    uint64_t ram_above_4g = 0;
    unsigned cpus = 1;
    bool floppy = false;
    const char* boot_order = "cad"; // QEMU's default
};

// Calls `write(index, value)` for every byte the machine fills.
void fill_pc_cmos(const CmosConfig& cfg, const std::function<void(uint8_t, uint8_t)>& write);

} // namespace hvm
