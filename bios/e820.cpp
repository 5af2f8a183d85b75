#include "bios/e820.hpp"

#include <algorithm>

#include "devmodel/device.hpp"

namespace hvm {

std::vector<E820Entry> pc_e820_map(const PcRamLayout& ram, const PcE820Options& opt) {
    std::vector<E820Entry> map;
    // Base memory stops at the EBDA that SeaBIOS puts right below 640 KiB (INT 12h says 639).
    uint64_t low_top = std::min(ram.below_4g, kEbdaAddr);
    if (low_top) map.push_back({0, low_top, E820Type::Ram});
    if (ram.below_4g > kEbdaAddr)
        map.push_back({kEbdaAddr, kLowRamEnd - kEbdaAddr, E820Type::Reserved});
    // 0xA0000-0xF0000 (VGA window, option ROMs) is simply absent, as on real machines and QEMU.
    map.push_back({kBiosFsegAddr, kHighRamStart - kBiosFsegAddr, E820Type::Reserved});
    if (ram.below_4g > kHighRamStart)
        map.push_back({kHighRamStart, ram.below_4g - kHighRamStart, E820Type::Ram});
    map.push_back({kKvmIdentityMapAddr, kKvmReservedSize, E820Type::Reserved});
    map.push_back({kBiosFlashAddr, kBiosFlashSize, E820Type::Reserved});
    if (ram.above_4g) map.push_back({kRamAbove4gStart, ram.above_4g, E820Type::Ram});
    if (opt.amd_ht_hole) map.push_back({kAmdHtHoleAddr, kAmdHtHoleSize, E820Type::Reserved});
    std::sort(map.begin(), map.end(),
              [](const E820Entry& a, const E820Entry& b) { return a.addr < b.addr; });
    return map;
}

std::vector<E820Entry> pc_fw_cfg_e820_entries(const PcRamLayout& ram, const PcE820Options& opt) {
    std::vector<E820Entry> v;
    v.push_back({kKvmIdentityMapAddr, kKvmReservedSize, E820Type::Reserved});
    if (opt.amd_ht_hole) v.push_back({kAmdHtHoleAddr, kAmdHtHoleSize, E820Type::Reserved});
    if (ram.below_4g) v.push_back({0, ram.below_4g, E820Type::Ram});
    if (ram.above_4g) v.push_back({kRamAbove4gStart, ram.above_4g, E820Type::Ram});
    return v;
}

void e820_entry_store(std::span<uint8_t, kE820EntrySize> out, const E820Entry& e) {
    le_store(out.subspan<0, 8>(), e.addr);
    le_store(out.subspan<8, 8>(), e.size);
    le_store(out.subspan<16, 4>(), static_cast<uint32_t>(e.type));
}

std::vector<uint8_t> pc_fw_cfg_e820_blob(const PcRamLayout& ram, const PcE820Options& opt) {
    auto entries = pc_fw_cfg_e820_entries(ram, opt);
    std::vector<uint8_t> blob(entries.size() * kE820EntrySize);
    for (size_t i = 0; i < entries.size(); i++)
        e820_entry_store(
            std::span<uint8_t, kE820EntrySize>(blob.data() + i * kE820EntrySize, kE820EntrySize),
            entries[i]);
    return blob;
}

uint64_t e820_ram_total(std::span<const E820Entry> map) {
    uint64_t total = 0;
    for (auto& e : map)
        if (e.type == E820Type::Ram) total += e.size;
    return total;
}

bool e820_is_ram(std::span<const E820Entry> map, uint64_t addr, uint64_t size) {
    if (addr + size < addr) return false;
    for (auto& e : map)
        if (e.type == E820Type::Ram && addr >= e.addr && addr + size <= e.end()) return true;
    return false;
}

} // namespace hvm
