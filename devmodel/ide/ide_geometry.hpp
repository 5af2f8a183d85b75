// The CHS geometry QEMU gives an IDE disk when the user names none (QEMU hw/block/hd-geometry.c
// hd_geometry_guess): the logical geometry of an MS-DOS partition table if sector 0 has one
// with at most 16 heads, otherwise 16 heads x 63 sectors with cylinders = size / 1008 clamped to
// [2, 16383]. The BIOS translation it picks is what SeaBIOS and the CMOS disk entries use, so an
// image installed under QEMU keeps booting here (pc-platform.md §9 "Geometry").
#pragma once
#include <cstdint>

#include "block/block_device.hpp"

namespace hvm {

enum class BiosTranslation : uint8_t { None = 0, Lba = 1, Large = 2 };

struct IdeGeometry {
    uint32_t cylinders = 0;
    uint32_t heads = 0;
    uint32_t sectors = 0;
    BiosTranslation translation = BiosTranslation::None;
    bool operator==(const IdeGeometry&) const = default;
};

// Guesses from the size and sector 0 of `disk` (one 512-byte read; an unreadable sector 0 counts
// as "no partition table").
IdeGeometry guess_ide_geometry(block::BlockDevice& disk);
// The same rule with sector 0 supplied (size in 512-byte sectors).
IdeGeometry guess_ide_geometry(uint64_t sectors, const uint8_t* sector0 /* 512 bytes or null */);

} // namespace hvm
