// What an IDE device asks of its channel's bus-master engine, and what it is told back. Kept
// apart from both so the drive and the channel can name each other's vocabulary.
#pragma once
#include <cstdint>

#include "block/block_device.hpp"

namespace hvm {

enum class IdeDmaKind : uint8_t {
    DiskRead = 1,   // medium -> guest memory (READ DMA, ATAPI READ with DMA)
    DiskWrite = 2,  // guest memory -> medium (WRITE DMA)
    BufferRead = 3, // the device's reply buffer -> guest memory (ATAPI replies with DMA)
    Flush = 4,      // no data: FLUSH CACHE run on the worker pool
};

struct IdeDmaRequest {
    IdeDmaKind kind = IdeDmaKind::DiskRead;
    uint64_t offset = 0;      // byte offset on the medium (Disk*)
    uint64_t bytes = 0;       // bytes to move (Disk*, BufferRead)
    bool ata = true;          // ATA command: ACTIVE stays set when the PRDs were longer
    bool flush_after = false; // write-through: flush the medium once the data is written
};

enum class IdeDmaOutcome : uint8_t {
    Ok,
    ShortPrd,    // the PRD table ended before the transfer did (QEMU: no IRQ, ACTIVE cleared)
    MemoryFault, // a PRD or buffer outside guest RAM, or bus mastering disabled
    IoError,     // the medium failed; `status` says how
};

} // namespace hvm
