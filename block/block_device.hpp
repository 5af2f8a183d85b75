// What a disk or CD-ROM device model sits on: a byte-addressed image of fixed virtual size that
// is read and written in whole 512-byte sectors. The public entry points are non-virtual and
// check every request before a format driver sees it, so no driver can be asked to touch host
// data outside [0, size()) whatever the guest programmed into the controller.
#pragma once
#include <cstdint>
#include <span>
#include <string>

namespace hvm::block {

// The outcome of one request. The IDE model maps these onto ATA/ATAPI error bits; none of them is
// fatal to hvm.
enum class IoStatus {
    Ok,
    OutOfRange,   // offset/length outside the virtual disk, or overflowing
    Misaligned,   // not whole 512-byte sectors
    ReadOnly,     // write or discard on a read-only image
    IoError,      // the host file failed (EIO, short read, broken backing file)
    NoSpace,      // ENOSPC/EDQUOT on the host
    Corrupt,      // image metadata points somewhere impossible; the access is refused
    NotSupported, // e.g. discard on a format that does not implement it
    Denied,       // write refused by policy (sector 0 of a probed raw image, as QEMU does)
};
const char* to_string(IoStatus status);

// Host cache behaviour, named as QEMU's -drive cache= values. `direct` opens with O_DIRECT,
// `writeback` is what the guest sees as its volatile write cache (ATA WCE), and `no_flush`
// turns flushes into no-ops.
struct CacheMode {
    bool direct = false;
    bool writeback = true;
    bool no_flush = false;

    static CacheMode writeback_mode() { return {false, true, false}; }
    static CacheMode writethrough() { return {false, false, false}; }
    static CacheMode none() { return {true, true, false}; }
    static CacheMode directsync() { return {true, false, false}; }
    static CacheMode unsafe() { return {false, true, true}; }
    bool operator==(const CacheMode&) const = default;
};

class BlockDevice {
  public:
    static constexpr uint64_t kSectorSize = 512;

    virtual ~BlockDevice() = default;
    BlockDevice(const BlockDevice&) = delete;
    BlockDevice& operator=(const BlockDevice&) = delete;

    // Virtual size in bytes, always a multiple of kSectorSize.
    uint64_t size() const { return size_; }
    uint64_t sectors() const { return size_ / kSectorSize; }
    bool read_only() const { return read_only_; }
    // True when completed writes may sit in a volatile cache until flush() (the guest's WCE bit).
    virtual bool write_cache_enabled() const { return false; }
    // "raw", "qcow2" (for messages and `info block`-style output).
    virtual const char* format_name() const = 0;
    const std::string& filename() const { return filename_; }

    // Whole sectors only; [offset, offset + data.size()) must lie inside [0, size()).
    IoStatus read(uint64_t offset, std::span<uint8_t> data);
    IoStatus write(uint64_t offset, std::span<const uint8_t> data);
    // Makes every completed write durable on the host.
    IoStatus flush();
    // Hint that a range is unused (ATA DATA SET MANAGEMENT / TRIM). Drivers may ignore it.
    IoStatus discard(uint64_t offset, uint64_t length);

    // Checks a request against the virtual size without performing it (for device models that
    // want to report the error before starting a transfer).
    IoStatus check_request(uint64_t offset, uint64_t length) const;

  protected:
    BlockDevice(std::string filename, uint64_t size, bool read_only)
        : filename_(std::move(filename)), size_(size), read_only_(read_only) {}

    // Called only with checked, sector-aligned, in-range requests (length may be 0 only for
    // flush).
    virtual IoStatus do_read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual IoStatus do_write(uint64_t offset, std::span<const uint8_t> data) = 0;
    virtual IoStatus do_flush() = 0;
    virtual IoStatus do_discard(uint64_t, uint64_t) { return IoStatus::NotSupported; }

  private:
    std::string filename_;
    uint64_t size_;
    bool read_only_;
};

} // namespace hvm::block
