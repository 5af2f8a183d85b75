// An image file on the host: positioned reads and writes at any byte offset (O_DIRECT bounce
// buffers hidden inside), flushes that honour the cache mode, and QEMU-compatible image locking.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "block/block_device.hpp"

namespace hvm::block {

class HostFile {
  public:
    // Opens `path` (throws UserError with one line on failure, including a lock conflict).
    // `lock` takes QEMU's byte-range image locks so hvm and QEMU processes see each other.
    static std::unique_ptr<HostFile> open(const std::string& path, bool read_only, CacheMode cache,
                                          bool lock = true);
    ~HostFile();
    HostFile(const HostFile&) = delete;
    HostFile& operator=(const HostFile&) = delete;

    // Reads [offset, offset + data.size()); bytes past end of file read as zero.
    IoStatus pread(uint64_t offset, std::span<uint8_t> data);
    IoStatus pwrite(uint64_t offset, std::span<const uint8_t> data);
    // fdatasync() unless the cache mode is `unsafe`.
    IoStatus sync();
    IoStatus punch_hole(uint64_t offset, uint64_t length);
    // Current host file length in bytes (0 on fstat failure, which cannot happen on an open fd).
    uint64_t length() const;

    // Fault injection for crash-consistency tests: after `writes` more successful pwrite()
    // calls, every further write fails with IoError and leaves the file alone, so the file is
    // frozen exactly as a crash at that point would leave it.
    void fail_writes_after(uint64_t writes) { write_budget_ = writes; }

    const std::string& path() const { return path_; }
    bool read_only() const { return read_only_; }
    const CacheMode& cache() const { return cache_; }
    dev_t device_id() const { return dev_; }
    ino_t inode() const { return ino_; }

  private:
    HostFile(int fd, std::string path, bool read_only, CacheMode cache);
    void acquire_lock(); // throws UserError
    IoStatus direct_io(uint64_t offset, uint8_t* rbuf, const uint8_t* wbuf, size_t len);

    int fd_;
    std::string path_;
    bool read_only_;
    CacheMode cache_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    std::atomic<uint64_t> write_budget_{UINT64_MAX};
    // O_DIRECT read-modify-write of a partial block must not interleave with another write.
    std::mutex direct_write_mutex_;
};

// Maps an errno from the host to the status the guest will see.
IoStatus status_from_errno(int err);

} // namespace hvm::block
