#include "block/raw_image.hpp"

#include "block/qcow2_format.hpp"

namespace hvm::block {
namespace {
// A raw file whose length is not a whole number of sectors still shows its last partial sector
// (padded with zeros on read), as QEMU rounds the length up.
uint64_t sector_round_up(uint64_t n) {
    return (n + BlockDevice::kSectorSize - 1) & ~(BlockDevice::kSectorSize - 1);
}
} // namespace

bool looks_like_image_header(std::span<const uint8_t> sector0) {
    return qcow2::has_magic(sector0);
}

RawImage::RawImage(std::unique_ptr<HostFile> file, bool probed)
    : BlockDevice(file->path(), sector_round_up(file->length()), file->read_only()),
      file_(std::move(file)), probed_(probed) {}

IoStatus RawImage::do_read(uint64_t offset, std::span<uint8_t> data) {
    return file_->pread(offset, data);
}

IoStatus RawImage::do_write(uint64_t offset, std::span<const uint8_t> data) {
    if (probed_ && offset == 0 && looks_like_image_header(data)) return IoStatus::Denied;
    IoStatus s = file_->pwrite(offset, data);
    if (s == IoStatus::Ok && !file_->cache().writeback) s = file_->sync();
    return s;
}

IoStatus RawImage::do_flush() {
    return file_->sync();
}

IoStatus RawImage::do_discard(uint64_t offset, uint64_t length) {
    return file_->punch_hole(offset, length);
}

} // namespace hvm::block
