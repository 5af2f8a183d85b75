#include "block/host_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/error.hpp"
#include "base/log.hpp"

namespace hvm::block {
namespace {

// O_DIRECT needs buffer, offset and length aligned to the logical block size of the host device;
// 4096 satisfies every device and file system hvm runs on.
constexpr uint64_t kDirectAlign = 4096;

// QEMU (block/file-posix.c) locks one byte per block-layer permission so that every QEMU and hvm
// process on the host sees the others: byte 100+i is held while permission i is used, byte 200+i
// while permission i is denied to others. Bit numbers are QEMU's BLK_PERM_* order.
constexpr off_t kLockPermBase = 100;
constexpr off_t kLockSharedBase = 200;
enum Perm : int {
    kPermConsistentRead = 0,
    kPermWrite = 1,
    kPermWriteUnchanged = 2,
    kPermResize = 3,
    kPermGraphMod = 4,
    kPermCount = 5,
};
const char* perm_name(int perm) {
    static const char* const names[kPermCount] = {"consistent read", "write", "write unchanged",
                                                  "resize", "change children"};
    return names[perm];
}

bool byte_locked_by_other(int fd, off_t byte) {
    struct flock fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return false; // no lock support: nothing to honour
    return fl.l_type != F_UNLCK;
}

bool lock_byte(int fd, off_t byte) {
    struct flock fl = {};
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    return fcntl(fd, F_OFD_SETLK, &fl) == 0 || errno == EINVAL || errno == ENOLCK;
}

struct AlignedFree {
    void operator()(uint8_t* p) const { std::free(p); }
};

} // namespace

IoStatus status_from_errno(int err) {
    switch (err) {
    case ENOSPC:
    case EDQUOT: return IoStatus::NoSpace;
    case EROFS:
    case EPERM:
    case EACCES: return IoStatus::ReadOnly;
    default: return IoStatus::IoError;
    }
}

HostFile::HostFile(int fd, std::string path, bool read_only, CacheMode cache)
    : fd_(fd), path_(std::move(path)), read_only_(read_only), cache_(cache) {
    struct stat st = {};
    if (fstat(fd_, &st) == 0) {
        dev_ = st.st_dev;
        ino_ = st.st_ino;
    }
}

HostFile::~HostFile() {
    close(fd_); // closing the descriptor drops its OFD locks
}

std::unique_ptr<HostFile> HostFile::open(const std::string& path, bool read_only, CacheMode cache,
                                         bool lock) {
    int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    if (cache.direct) flags |= O_DIRECT;
    int fd = ::open(path.c_str(), flags);
    if (fd < 0) {
        int err = errno;
        if (err == EINVAL && cache.direct)
            fail("Could not open '" + path +
                 "': filesystem does not support O_DIRECT (use cache=writeback)");
        fail("Could not open '" + path + "': " + std::strerror(err));
    }
    struct stat st = {};
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        close(fd);
        fail("Could not open '" + path + "': Is a directory");
    }
    std::unique_ptr<HostFile> file(new HostFile(fd, path, read_only, cache));
    if (lock) file->acquire_lock();
    return file;
}

// Same permissions QEMU's IDE disk takes: a writer uses read+write and denies write to others; a
// read-only user (backing file, CD-ROM) uses read and denies write and resize.
void HostFile::acquire_lock() {
    unsigned perm = 1u << kPermConsistentRead;
    unsigned unshared = 1u << kPermWrite;
    if (read_only_) {
        unshared |= 1u << kPermResize;
    } else {
        perm |= 1u << kPermWrite;
    }
    for (int i = 0; i < kPermCount; i++) {
        if ((perm & (1u << i)) && byte_locked_by_other(fd_, kLockSharedBase + i))
            fail(std::string("Failed to get \"") + perm_name(i) +
                 "\" lock: is another process using the image [" + path_ + "]?");
        if ((unshared & (1u << i)) && byte_locked_by_other(fd_, kLockPermBase + i))
            fail(std::string("Failed to get shared \"") + perm_name(i) +
                 "\" lock: is another process using the image [" + path_ + "]?");
    }
    for (int i = 0; i < kPermCount; i++) {
        bool ok = true;
        if (perm & (1u << i)) ok &= lock_byte(fd_, kLockPermBase + i);
        if (unshared & (1u << i)) ok &= lock_byte(fd_, kLockSharedBase + i);
        if (!ok)
            fail(std::string("Failed to lock byte ") + std::to_string(kLockPermBase + i) + " of '" +
                 path_ + "': is another process using the image?");
    }
}

// lseek(SEEK_END) rather than fstat: it also gives the size of a host block device (/dev/sdX),
// for which st_size is 0. Only pread/pwrite are used, so the file position does not matter.
uint64_t HostFile::length() const {
    off_t end = lseek(fd_, 0, SEEK_END);
    return end < 0 ? 0 : uint64_t(end);
}

IoStatus HostFile::pread(uint64_t offset, std::span<uint8_t> data) {
    if (data.empty()) return IoStatus::Ok;
    if (offset > uint64_t(INT64_MAX) - data.size()) return IoStatus::OutOfRange;
    if (cache_.direct) return direct_io(offset, data.data(), nullptr, data.size());
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pread(fd_, data.data() + done, data.size() - done, off_t(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return status_from_errno(errno);
        }
        if (n == 0) { // end of file: the rest reads as zeros (sparse tail, partial last sector)
            std::memset(data.data() + done, 0, data.size() - done);
            break;
        }
        done += size_t(n);
    }
    return IoStatus::Ok;
}

IoStatus HostFile::pwrite(uint64_t offset, std::span<const uint8_t> data) {
    if (read_only_) return IoStatus::ReadOnly;
    if (data.empty()) return IoStatus::Ok;
    if (write_budget_.load(std::memory_order_relaxed) != UINT64_MAX) {
        if (write_budget_ == 0) return IoStatus::IoError;
        write_budget_--;
    }
    if (offset > uint64_t(INT64_MAX) - data.size()) return IoStatus::OutOfRange;
    if (cache_.direct) return direct_io(offset, nullptr, data.data(), data.size());
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, off_t(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return status_from_errno(errno);
        }
        if (n == 0) return IoStatus::IoError;
        done += size_t(n);
    }
    return IoStatus::Ok;
}

// O_DIRECT path: widen to aligned blocks in a bounce buffer. Writes that do not cover whole
// blocks read the edges first, under a mutex so two partial writes cannot lose each other.
IoStatus HostFile::direct_io(uint64_t offset, uint8_t* rbuf, const uint8_t* wbuf, size_t len) {
    uint64_t start = offset & ~(kDirectAlign - 1);
    uint64_t end = (offset + len + kDirectAlign - 1) & ~(kDirectAlign - 1);
    size_t span = size_t(end - start);
    void* raw = nullptr;
    if (posix_memalign(&raw, kDirectAlign, span) != 0) return IoStatus::IoError;
    std::unique_ptr<uint8_t, AlignedFree> bounce(static_cast<uint8_t*>(raw));
    uint8_t* buf = bounce.get();

    auto read_all = [&]() -> IoStatus {
        size_t done = 0;
        while (done < span) {
            ssize_t n = ::pread(fd_, buf + done, span - done, off_t(start + done));
            if (n < 0) {
                if (errno == EINTR) continue;
                return status_from_errno(errno);
            }
            if (n == 0) {
                std::memset(buf + done, 0, span - done);
                break;
            }
            done += size_t(n);
        }
        return IoStatus::Ok;
    };

    if (rbuf) {
        if (IoStatus s = read_all(); s != IoStatus::Ok) return s;
        std::memcpy(rbuf, buf + (offset - start), len);
        return IoStatus::Ok;
    }
    std::lock_guard<std::mutex> guard(direct_write_mutex_);
    if (start != offset || end != offset + len) {
        if (IoStatus s = read_all(); s != IoStatus::Ok) return s;
    }
    std::memcpy(buf + (offset - start), wbuf, len);
    size_t done = 0;
    while (done < span) {
        ssize_t n = ::pwrite(fd_, buf + done, span - done, off_t(start + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return status_from_errno(errno);
        }
        if (n == 0) return IoStatus::IoError;
        done += size_t(n);
    }
    return IoStatus::Ok;
}

IoStatus HostFile::sync() {
    if (read_only_ || cache_.no_flush) return IoStatus::Ok;
    if (fdatasync(fd_) != 0) {
        LOG_ERROR("block: fdatasync of %s failed: %s", path_.c_str(), std::strerror(errno));
        return status_from_errno(errno);
    }
    return IoStatus::Ok;
}

IoStatus HostFile::punch_hole(uint64_t offset, uint64_t length) {
    if (read_only_) return IoStatus::ReadOnly;
    if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(offset), off_t(length)) !=
        0) {
        if (errno == EOPNOTSUPP) return IoStatus::NotSupported;
        return status_from_errno(errno);
    }
    return IoStatus::Ok;
}

} // namespace hvm::block
