// The `etc/table-loader` fw_cfg file: a script of 128-byte commands through which QEMU tells the
// firmware where to place the ACPI blobs and which pointers and checksums to patch once their
// addresses are known (QEMU hw/acpi/bios-linker-loader.c; SeaBIOS src/fw/romfile_loader.c).
//
// TableLoader writes the script. replay_table_loader() executes one exactly as SeaBIOS's
// romfile_loader_execute() does: it is what unit tests use to check the tables end to end, and what
// a direct Linux boot (no firmware) uses to place the tables in guest RAM.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "vcpu/guest_memory.hpp"

namespace hvm {

namespace loader {
constexpr size_t kEntrySize = 128;
constexpr size_t kFileNameSize = 56; // NUL-terminated, so at most 55 characters
constexpr uint32_t kCmdAllocate = 1;
constexpr uint32_t kCmdAddPointer = 2;
constexpr uint32_t kCmdAddChecksum = 3;
constexpr uint32_t kCmdWritePointer = 4;
} // namespace loader

enum class LoaderZone : uint8_t {
    High = 1, // top of RAM below 4 GiB, e820-reserved by the firmware
    FSeg = 2, // 0xE0000-0xFFFFF, where an ACPI 1.0 OS scans for the RSDP
};

class TableLoader {
  public:
    // Each adds one command; names longer than 55 characters, bad alignments or sizes throw
    // std::invalid_argument (hvm's own tables only; the guest never feeds this).
    void allocate(std::string_view file, uint32_t align, LoaderZone zone);
    // dest[offset .. offset+size) += address of `src` (little-endian).
    void add_pointer(std::string_view dest, uint32_t offset, uint8_t size, std::string_view src);
    // file[result_offset] -= sum of file[start .. start+length).
    void add_checksum(std::string_view file, uint32_t result_offset, uint32_t start,
                      uint32_t length);
    // fw_cfg file dest[dst_offset .. +size) = address of src + src_offset (a DMA write).
    void write_pointer(std::string_view dest, uint32_t dst_offset, uint8_t size,
                       std::string_view src, uint32_t src_offset);

    size_t command_count() const { return blob_.size() / loader::kEntrySize; }
    // The script, zero-padded to a multiple of `align` bytes (QEMU pads to 4 KiB).
    std::vector<uint8_t> blob(size_t align = 1) const;

  private:
    uint8_t* new_entry(uint32_t command);
    std::vector<uint8_t> blob_;
};

class LoaderError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Where replay puts the blobs. Returns the guest-physical address of a fresh block of `size`
// bytes aligned to `align` (a power of two) in `zone`, or throws LoaderError when it is full.
class LoaderAllocator {
  public:
    virtual ~LoaderAllocator() = default;
    virtual uint64_t allocate(LoaderZone zone, uint64_t size, uint64_t align) = 0;
};

// HIGH grows down from `high_top` to `high_bottom`; FSEG grows up inside [fseg_start, fseg_end).
class BumpLoaderAllocator : public LoaderAllocator {
  public:
    BumpLoaderAllocator(uint64_t high_bottom, uint64_t high_top, uint64_t fseg_start = 0xE0000,
                        uint64_t fseg_end = 0x100000)
        : high_bottom_(high_bottom), high_top_(high_top), fseg_next_(fseg_start),
          fseg_end_(fseg_end) {}
    uint64_t allocate(LoaderZone zone, uint64_t size, uint64_t align) override;

  private:
    uint64_t high_bottom_, high_top_, fseg_next_, fseg_end_;
};

struct LoaderReplayResult {
    std::map<std::string, uint64_t> addresses; // allocated file -> guest-physical address
    std::map<std::string, std::vector<uint8_t>> contents; // as written to guest memory
};

// Looks a fw_cfg file up by name; nullptr if there is none.
using LoaderFileLookup = std::function<const std::vector<uint8_t>*(std::string_view)>;
// Receives WRITE_POINTER updates (a DMA write into a writable fw_cfg file).
using LoaderPointerWriter =
    std::function<void(std::string_view file, uint32_t offset, std::span<const uint8_t> bytes)>;

// Runs the script: ALLOCATE copies a file into memory from `alloc`, ADD_POINTER and ADD_CHECKSUM
// patch the copies, WRITE_POINTER goes to `writer`, unknown commands are skipped (as SeaBIOS does).
// Finally every allocated file is written to `mem`. Malformed commands (name without NUL, unknown
// file, pointer or checksum range outside the file, bad size or alignment) throw LoaderError.
LoaderReplayResult replay_table_loader(std::span<const uint8_t> script,
                                       const LoaderFileLookup& files, LoaderAllocator& alloc,
                                       GuestMemory& mem, const LoaderPointerWriter& writer = {});

} // namespace hvm
