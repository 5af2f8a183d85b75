// The -drive option value, in QEMU's syntax:
//   file=PATH,format=raw|qcow2,if=ide|none,index=N,bus=N,unit=N,media=disk|cdrom,
//   readonly=on|off,cache=writeback|writethrough|none|directsync|unsafe,snapshot=on|off
// ",," inside a value is a literal comma (file names with commas), as in QEMU.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "block/block_device.hpp"
#include "block/open_image.hpp"

namespace hvm::block {

enum class DriveInterface { Ide, None };
enum class DriveMedia { Disk, Cdrom };

struct DriveOptions {
    std::string file;   // empty only for an empty CD-ROM drive
    std::string format; // empty: probe
    DriveInterface interface = DriveInterface::Ide;
    std::optional<int> index, bus, unit;
    DriveMedia media = DriveMedia::Disk;
    bool read_only = false; // implied by media=cdrom
    CacheMode cache = CacheMode::writeback_mode();
    std::string cache_name = "writeback";
    bool snapshot = false;

    // What open_image() needs (`global_snapshot`: the -snapshot command-line flag).
    OpenOptions open_options(bool global_snapshot = false) const;
};

// The pc machine's IDE controller: two buses (primary, secondary), two units each.
constexpr int kIdeBuses = 2;
constexpr int kIdeUnitsPerBus = 2;

// Parses one -drive value. Throws hvm::UserError with one line on bad input.
DriveOptions parse_drive_option(std::string_view value);

// Gives every if=ide drive its bus/unit as QEMU does: index=N means bus N/2, unit N%2; drives
// without a position take the next free slot in order. Throws UserError on a duplicate or
// out-of-range position.
void assign_ide_slots(std::vector<DriveOptions>& drives);

} // namespace hvm::block
