// Opening a disk image by name: format probing, qcow2 backing chains, -snapshot overlays and
// image locking. This is what the machine calls for each -drive.
#pragma once
#include <memory>
#include <string>

#include "block/block_device.hpp"

namespace hvm::block {

struct OpenOptions {
    std::string format; // "raw", "qcow2", or empty to probe (QEMU's warning for probed raw)
    bool read_only = false;
    CacheMode cache = CacheMode::writeback_mode();
    // -snapshot: the image is opened read-only and writes go to a temporary qcow2 overlay that
    // is deleted when the device is destroyed (or the process dies).
    bool snapshot = false;
    // Directory for snapshot overlays; empty: $TMPDIR, else /var/tmp (as QEMU).
    std::string temp_dir;
};

// Backing chains longer than this are refused (a loop is refused at once).
constexpr int kMaxBackingChainDepth = 64;

// Throws hvm::UserError with one line ("Could not open 'x': ...", "Failed to get \"write\"
// lock: ...", "qcow2 image 'x': unsupported qcow2 version 4", "Backing file chain too deep").
std::unique_ptr<BlockDevice> open_image(const std::string& path, const OpenOptions& options);

// "qcow2" if the file starts with the qcow2 magic, else "raw".
std::string probe_format(const std::string& path);

} // namespace hvm::block
