#include "devmodel/ide/ide_geometry.hpp"

#include <array>

namespace hvm {

namespace {

constexpr unsigned kPartitionTable = 0x1BE;
constexpr unsigned kPartitionEntrySize = 16;
constexpr uint32_t kMaxCylinders = 16383; // ATA word 1 limit for the default geometry

struct Chs {
    uint32_t cylinders, heads, sectors;
};

// The MBR's partitions are assumed to end on a cylinder boundary, so their end head/sector give
// the logical heads and sectors per track the installing BIOS used.
bool guess_lchs(uint64_t total, const uint8_t* mbr, Chs& out) {
    if (!mbr || mbr[510] != 0x55 || mbr[511] != 0xAA) return false;
    for (unsigned i = 0; i < 4; i++) {
        const uint8_t* p = mbr + kPartitionTable + i * kPartitionEntrySize;
        uint32_t nr_sects =
            uint32_t(p[12]) | uint32_t(p[13]) << 8 | uint32_t(p[14]) << 16 | uint32_t(p[15]) << 24;
        uint8_t end_head = p[5];
        if (!nr_sects || !end_head) continue;
        uint32_t heads = end_head + 1u;
        uint32_t sectors = p[6] & 63u;
        if (sectors == 0) continue;
        uint64_t cylinders = total / (uint64_t(heads) * sectors);
        if (cylinders < 1 || cylinders > kMaxCylinders) continue;
        out = {uint32_t(cylinders), heads, sectors};
        return true;
    }
    return false;
}

Chs chs_for_size(uint64_t total) {
    uint64_t cylinders = total / (16 * 63);
    if (cylinders > kMaxCylinders) cylinders = kMaxCylinders;
    if (cylinders < 2) cylinders = 2;
    return {uint32_t(cylinders), 16, 63};
}

} // namespace

IdeGeometry guess_ide_geometry(uint64_t sectors, const uint8_t* sector0) {
    IdeGeometry g;
    Chs lchs{};
    if (!guess_lchs(sectors, sector0, lchs)) {
        Chs c = chs_for_size(sectors);
        g = {c.cylinders, c.heads, c.sectors, BiosTranslation::None};
        // QEMU hd_bios_chs_auto_trans.
        if (!(c.cylinders <= 1024 && c.heads <= 16 && c.sectors <= 63))
            g.translation = BiosTranslation::Lba;
    } else if (lchs.heads > 16) {
        // A partition table written through a BIOS LBA translation: the physical geometry is
        // the standard one.
        Chs c = chs_for_size(sectors);
        g = {c.cylinders, c.heads, c.sectors,
             uint64_t(c.cylinders) * c.heads <= 131072 ? BiosTranslation::Large
                                                       : BiosTranslation::Lba};
    } else {
        g = {lchs.cylinders, lchs.heads, lchs.sectors, BiosTranslation::None};
    }
    return g;
}

IdeGeometry guess_ide_geometry(block::BlockDevice& disk) {
    std::array<uint8_t, 512> mbr{};
    bool ok = disk.sectors() > 0 && disk.read(0, mbr) == block::IoStatus::Ok;
    return guess_ide_geometry(disk.sectors(), ok ? mbr.data() : nullptr);
}

} // namespace hvm
