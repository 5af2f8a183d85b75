// A raw disk image: guest sector N is host byte N*512 of the file.
#pragma once
#include <memory>

#include "block/block_device.hpp"
#include "block/host_file.hpp"

namespace hvm::block {

class RawImage final : public BlockDevice {
  public:
    // `probed`: the format was guessed, not given. Like QEMU, writes that would make sector 0
    // look like another image format are then refused, so a guest cannot turn its raw disk into
    // a qcow2 header pointing at host files on the next (probing) start.
    RawImage(std::unique_ptr<HostFile> file, bool probed = false);

    bool write_cache_enabled() const override { return file_->cache().writeback; }
    const char* format_name() const override { return "raw"; }

  private:
    IoStatus do_read(uint64_t offset, std::span<uint8_t> data) override;
    IoStatus do_write(uint64_t offset, std::span<const uint8_t> data) override;
    IoStatus do_flush() override;
    IoStatus do_discard(uint64_t offset, uint64_t length) override;

    std::unique_ptr<HostFile> file_;
    bool probed_;
};

// True when `sector0` starts with the magic of an image format hvm can probe (qcow2).
bool looks_like_image_header(std::span<const uint8_t> sector0);

} // namespace hvm::block
