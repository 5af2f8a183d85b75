#include "block/block_device.hpp"

namespace hvm::block {

const char* to_string(IoStatus status) {
    switch (status) {
    case IoStatus::Ok: return "ok";
    case IoStatus::OutOfRange: return "request outside the disk";
    case IoStatus::Misaligned: return "request not sector-aligned";
    case IoStatus::ReadOnly: return "image is read-only";
    case IoStatus::IoError: return "host I/O error";
    case IoStatus::NoSpace: return "no space left on host device";
    case IoStatus::Corrupt: return "image metadata is corrupt";
    case IoStatus::NotSupported: return "operation not supported";
    case IoStatus::Denied: return "write denied";
    }
    return "unknown";
}

IoStatus BlockDevice::check_request(uint64_t offset, uint64_t length) const {
    if (offset % kSectorSize != 0 || length % kSectorSize != 0) return IoStatus::Misaligned;
    // offset + length may wrap: compare against what is left instead of adding.
    if (offset > size_ || length > size_ - offset) return IoStatus::OutOfRange;
    return IoStatus::Ok;
}

IoStatus BlockDevice::read(uint64_t offset, std::span<uint8_t> data) {
    if (IoStatus s = check_request(offset, data.size()); s != IoStatus::Ok) return s;
    if (data.empty()) return IoStatus::Ok;
    return do_read(offset, data);
}

IoStatus BlockDevice::write(uint64_t offset, std::span<const uint8_t> data) {
    if (IoStatus s = check_request(offset, data.size()); s != IoStatus::Ok) return s;
    if (read_only_) return IoStatus::ReadOnly;
    if (data.empty()) return IoStatus::Ok;
    return do_write(offset, data);
}

IoStatus BlockDevice::flush() {
    if (read_only_) return IoStatus::Ok;
    return do_flush();
}

IoStatus BlockDevice::discard(uint64_t offset, uint64_t length) {
    if (IoStatus s = check_request(offset, length); s != IoStatus::Ok) return s;
    if (read_only_) return IoStatus::ReadOnly;
    if (length == 0) return IoStatus::Ok;
    return do_discard(offset, length);
}

} // namespace hvm::block
