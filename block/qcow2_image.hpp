// qcow2 (versions 2 and 3) driver: read and write through L1/L2 tables, backing files, zero and
// compressed clusters, allocation at end of file with refcounts kept consistent. Metadata is
// written through (no dirty metadata cache) in the order refcount -> data -> L2 -> L1, so a
// process killed at any point leaves at worst leaked clusters, never a corrupt image.
#pragma once
#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "base/log.hpp"
#include "block/block_device.hpp"
#include "block/host_file.hpp"
#include "block/qcow2_format.hpp"

namespace hvm::block {

class Qcow2Image final : public BlockDevice {
  public:
    // Reads and validates the header and extensions of an opened file (throws UserError with a
    // one-line reason for anything hvm cannot open safely: bad magic, unsupported version or
    // features, tables outside the file or overlapping, sizes past QEMU's limits).
    static qcow2::ImageInfo read_image_info(HostFile& file);

    // `backing` is the already opened backing image (or nullptr); the opener resolves names.
    // Throws UserError if a read-write open is impossible (dirty or corrupt image, internal
    // snapshots).
    Qcow2Image(std::unique_ptr<HostFile> file, const qcow2::ImageInfo& info,
               std::unique_ptr<BlockDevice> backing);

    // Writes a new, empty version-3 image (64 KiB clusters) of `size` bytes into `file`, which
    // must be empty and writable. Used for -snapshot overlays.
    static void create(HostFile& file, uint64_t size, uint32_t cluster_bits = 16);

    bool write_cache_enabled() const override { return file_->cache().writeback; }
    const char* format_name() const override { return "qcow2"; }
    const BlockDevice* backing() const { return backing_.get(); }
    uint32_t cluster_size() const { return uint32_t(cluster_size_); }

  private:
    // Small LRU of cluster-sized metadata tables (L2 tables, refcount blocks) kept as on-disk
    // bytes. Write-through: every change is written to the file by the caller immediately.
    class TableCache {
      public:
        TableCache(size_t capacity, size_t table_bytes)
            : capacity_(capacity), table_bytes_(table_bytes) {}
        uint8_t* get(HostFile& file, uint64_t offset, IoStatus& status);
        // Installs a table that was just written (avoids reading it back).
        uint8_t* install(uint64_t offset, std::span<const uint8_t> bytes);

      private:
        struct Entry {
            uint64_t offset = 0;
            uint64_t last_use = 0;
            std::vector<uint8_t> bytes;
        };
        Entry& victim();
        size_t capacity_, table_bytes_;
        uint64_t tick_ = 0;
        std::vector<Entry> entries_;
    };

    // What one guest cluster maps to.
    struct Mapping {
        enum Kind { Unallocated, Zero, Normal, Compressed } kind = Unallocated;
        uint64_t l2_entry = 0;
        uint64_t l2_offset = 0; // 0: no L2 table
        uint64_t host_offset = 0;
    };

    IoStatus do_read(uint64_t offset, std::span<uint8_t> data) override;
    IoStatus do_write(uint64_t offset, std::span<const uint8_t> data) override;
    IoStatus do_flush() override;

    IoStatus lookup(uint64_t guest_cluster, Mapping& map);
    IoStatus read_cluster_part(uint64_t guest_cluster, const Mapping& map, uint64_t in_cluster,
                               std::span<uint8_t> out);
    IoStatus read_backing(uint64_t offset, std::span<uint8_t> out);
    IoStatus read_compressed(uint64_t l2_entry, std::span<uint8_t> cluster);
    IoStatus write_cluster_part(uint64_t guest_cluster, uint64_t in_cluster,
                                std::span<const uint8_t> data);
    IoStatus ensure_l2(uint64_t l1_index, uint64_t& l2_offset);
    IoStatus set_l2_entry(uint64_t l2_offset, uint64_t index, uint64_t value);
    IoStatus release_old_mapping(const Mapping& old);

    // Refcounts.
    IoStatus get_refcount(uint64_t host_offset, uint64_t& value);
    IoStatus update_refcount(uint64_t host_offset, int64_t delta);
    IoStatus alloc_refblock(uint64_t table_index);
    IoStatus grow_refcount_table(uint64_t needed_index);
    IoStatus alloc_clusters(uint64_t count, uint64_t& host_offset);
    uint64_t refcount_entry(const uint8_t* block, uint64_t index) const;
    void set_refcount_entry(uint8_t* block, uint64_t index, uint64_t value) const;
    IoStatus write_refcount_entry(uint64_t block_offset, uint8_t* block, uint64_t index);

    bool is_metadata(uint64_t host_cluster) const;
    bool host_cluster_ok(uint64_t host_offset) const;

    std::unique_ptr<HostFile> file_;
    std::unique_ptr<BlockDevice> backing_;
    qcow2::Header header_;
    uint32_t cluster_bits_;
    uint64_t cluster_size_;
    uint64_t l2_entries_;
    uint32_t refcount_bits_;
    uint64_t refcount_max_;
    uint64_t refblock_entries_;
    std::vector<uint64_t> l1_;
    std::vector<uint64_t> refcount_table_;
    TableCache l2_cache_;
    TableCache refblock_cache_;
    // Clusters holding metadata (header, L1, refcount table, refcount blocks, L2 tables). Data
    // is never written over these, whatever an L2 entry claims.
    std::unordered_set<uint64_t> metadata_;
    uint64_t next_free_ = 0; // allocation cursor: end of file, cluster-aligned
    // Last decompressed cluster (sequential reads of a compressed image hit it 1/cluster).
    uint64_t decompressed_entry_ = 0;
    std::vector<uint8_t> decompressed_;
    RateLimiter corrupt_log_; // corruption warnings are guest-triggerable
    // Serializes requests: the worker pool may run two requests on one image at once.
    std::mutex mutex_;
};

} // namespace hvm::block
