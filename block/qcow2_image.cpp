#include "block/qcow2_image.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "base/error.hpp"
#include "base/log.hpp"
#include "block/inflate.hpp"

namespace hvm::block {

using namespace qcow2;

namespace {

constexpr uint64_t kNoTable = ~0ull;
constexpr size_t kL2CacheTables = 32;
constexpr size_t kRefblockCacheTables = 8;

uint64_t round_up(uint64_t v, uint64_t align) {
    return (v + align - 1) / align * align;
}

[[noreturn]] void refuse(const HostFile& file, const std::string& why) {
    fail("qcow2 image '" + file.path() + "': " + why);
}

bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
    return alen && blen && a < b + blen && b < a + alen;
}

} // namespace

#define CORRUPT(...)                                                                               \
    do {                                                                                           \
        if (corrupt_log_.allow()) LOG_WARN(__VA_ARGS__);                                           \
        return IoStatus::Corrupt;                                                                  \
    } while (0)

// ---------------------------------------------------------------------------------------------
// Header

qcow2::ImageInfo Qcow2Image::read_image_info(HostFile& file) {
    ImageInfo info;
    Header& h = info.header;
    const uint64_t file_len = file.length();
    if (file_len < kHeaderV2Length) refuse(file, "file too short for a qcow2 header");
    uint8_t fixed[kHeaderV3MinLength + 8] = {};
    if (file.pread(0, fixed) != IoStatus::Ok) refuse(file, "cannot read the header");
    if (be32(fixed + kOffMagic) != kMagic) refuse(file, "bad magic (not a qcow2 image)");
    h.version = be32(fixed + kOffVersion);
    if (h.version != 2 && h.version != 3)
        refuse(file, "unsupported qcow2 version " + std::to_string(h.version));
    h.backing_file_offset = be64(fixed + kOffBackingFileOffset);
    h.backing_file_size = be32(fixed + kOffBackingFileSize);
    h.cluster_bits = be32(fixed + kOffClusterBits);
    h.size = be64(fixed + kOffSize);
    h.crypt_method = be32(fixed + kOffCryptMethod);
    h.l1_size = be32(fixed + kOffL1Size);
    h.l1_table_offset = be64(fixed + kOffL1TableOffset);
    h.refcount_table_offset = be64(fixed + kOffRefcountTableOffset);
    h.refcount_table_clusters = be32(fixed + kOffRefcountTableClusters);
    h.nb_snapshots = be32(fixed + kOffNbSnapshots);
    h.snapshots_offset = be64(fixed + kOffSnapshotsOffset);

    if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits)
        refuse(file, "unsupported cluster size: 2^" + std::to_string(h.cluster_bits));
    const uint64_t cs = 1ull << h.cluster_bits;

    if (h.version == 3) {
        if (file_len < kHeaderV3MinLength) refuse(file, "file too short for a v3 header");
        h.incompatible_features = be64(fixed + kOffIncompatibleFeatures);
        h.compatible_features = be64(fixed + kOffCompatibleFeatures);
        h.autoclear_features = be64(fixed + kOffAutoclearFeatures);
        h.refcount_order = be32(fixed + kOffRefcountOrder);
        h.header_length = be32(fixed + kOffHeaderLength);
        if (h.header_length < kHeaderV3MinLength || h.header_length > cs ||
            h.header_length % 8 != 0)
            refuse(file, "invalid header length " + std::to_string(h.header_length));
        if (h.header_length > kOffCompressionType) h.compression_type = fixed[kOffCompressionType];
        if (h.refcount_order > 6)
            refuse(file, "reference count entry width too large; may not exceed 64 bits");
    }

    // The first cluster holds the header, its extensions and the backing file name.
    std::vector<uint8_t> first(size_t(std::min<uint64_t>(cs, file_len)), 0);
    if (file.pread(0, first) != IoStatus::Ok) refuse(file, "cannot read the header cluster");
    first.resize(size_t(cs), 0);

    // Header extensions: unknown ones are skipped, as the specification requires.
    std::map<unsigned, std::string> incompat_names;
    uint64_t ext_end = cs;
    if (h.backing_file_offset != 0) {
        if (h.backing_file_offset > cs) refuse(file, "invalid backing file offset");
        ext_end = h.backing_file_offset;
    }
    for (uint64_t off = h.version == 2 ? kHeaderV2Length : h.header_length; off + 8 <= ext_end;) {
        uint32_t type = be32(&first[off]);
        uint32_t len = be32(&first[off + 4]);
        off += 8;
        if (type == kExtEnd) break;
        if (len > ext_end - off) refuse(file, "header extension too large");
        if (type == kExtBackingFormat) {
            if (len > 15) refuse(file, "backing format name too long");
            info.backing_format.assign(reinterpret_cast<const char*>(&first[off]), len);
        } else if (type == kExtFeatureNameTable) {
            for (uint64_t e = 0; e + 48 <= len; e += 48) {
                const uint8_t* ent = &first[off + e];
                if (ent[0] != 0) continue; // only incompatible names are reported
                size_t n = strnlen(reinterpret_cast<const char*>(ent + 2), 46);
                incompat_names[ent[1]] = std::string(reinterpret_cast<const char*>(ent + 2), n);
            }
        }
        off += round_up(len, 8);
    }

    constexpr uint64_t kSupportedIncompat =
        kIncompatDirty | kIncompatCorrupt | kIncompatCompressionType;
    if (uint64_t unsupported = h.incompatible_features & ~kSupportedIncompat) {
        std::string names;
        for (unsigned bit = 0; bit < 64; bit++) {
            if (!(unsupported & (1ull << bit))) continue;
            if (!names.empty()) names += ", ";
            auto it = incompat_names.find(bit);
            names += it != incompat_names.end() ? it->second
                                                : "unknown feature bit " + std::to_string(bit);
        }
        refuse(file, "unsupported qcow2 feature(s): " + names);
    }
    if (h.compression_type != 0)
        refuse(file,
               "compression type " + std::to_string(h.compression_type) +
                   " (zstd) is not supported; convert the image with -o compression_type=zlib");
    if (h.crypt_method != 0) refuse(file, "encrypted qcow2 images are not supported");

    // Virtual size and the L1 table that must map all of it.
    const uint64_t l2_entries = cs / 8;
    const uint64_t bytes_per_l1 = cs * l2_entries;
    if (h.size > (1ull << 62)) refuse(file, "image size too large");
    const uint64_t size = round_up(h.size, BlockDevice::kSectorSize);
    const uint64_t l1_needed = size / bytes_per_l1 + (size % bytes_per_l1 != 0);
    if (uint64_t(h.l1_size) * 8 > kMaxL1Bytes) refuse(file, "active L1 table too large");
    if (l1_needed > h.l1_size) refuse(file, "L1 table is too small for the image size");
    const uint64_t l1_bytes = uint64_t(h.l1_size) * 8;
    if (h.l1_size > 0) {
        if (h.l1_table_offset % cs != 0) refuse(file, "L1 table offset not cluster-aligned");
        if (h.l1_table_offset > file_len || l1_bytes > file_len - h.l1_table_offset)
            refuse(file, "L1 table is outside the image file");
    }

    if (h.refcount_table_offset % cs != 0)
        refuse(file, "refcount table offset not cluster-aligned");
    if (h.refcount_table_clusters == 0) refuse(file, "image has no refcount table");
    const uint64_t rt_bytes = uint64_t(h.refcount_table_clusters) * cs;
    if (rt_bytes > kMaxRefTableBytes) refuse(file, "refcount table too large");
    if (h.refcount_table_offset > file_len || rt_bytes > file_len - h.refcount_table_offset)
        refuse(file, "refcount table is outside the image file");
    if (h.refcount_table_offset == 0) refuse(file, "refcount table overlaps the header");

    if (h.l1_size > 0) {
        if (h.l1_table_offset < cs) refuse(file, "L1 table overlaps the header");
        if (ranges_overlap(h.l1_table_offset, round_up(l1_bytes, cs), h.refcount_table_offset,
                           rt_bytes))
            refuse(file, "L1 table overlaps the refcount table");
    }

    if (h.nb_snapshots > kMaxSnapshots) refuse(file, "too many snapshots");
    if (h.nb_snapshots > 0 &&
        (h.snapshots_offset % cs != 0 || h.snapshots_offset == 0 || h.snapshots_offset >= file_len))
        refuse(file, "snapshot table offset invalid");

    if (h.backing_file_offset != 0) {
        if (h.backing_file_size > kMaxBackingNameLength ||
            h.backing_file_size > cs - h.backing_file_offset)
            refuse(file, "backing file name too long");
        info.backing_file.assign(reinterpret_cast<const char*>(&first[h.backing_file_offset]),
                                 h.backing_file_size);
        if (info.backing_file.find('\0') != std::string::npos)
            refuse(file, "backing file name contains a NUL byte");
    }
    return info;
}

// ---------------------------------------------------------------------------------------------
// Open / create

Qcow2Image::Qcow2Image(std::unique_ptr<HostFile> file, const qcow2::ImageInfo& info,
                       std::unique_ptr<BlockDevice> backing)
    : BlockDevice(file->path(), round_up(info.header.size, kSectorSize), file->read_only()),
      file_(std::move(file)), backing_(std::move(backing)), header_(info.header),
      cluster_bits_(header_.cluster_bits), cluster_size_(1ull << cluster_bits_),
      l2_entries_(cluster_size_ / 8), refcount_bits_(1u << header_.refcount_order),
      refcount_max_(refcount_bits_ == 64 ? ~0ull : (1ull << refcount_bits_) - 1),
      refblock_entries_(cluster_size_ * 8 / refcount_bits_),
      l2_cache_(kL2CacheTables, size_t(cluster_size_)),
      refblock_cache_(kRefblockCacheTables, size_t(cluster_size_)) {
    HostFile& f = *file_;
    const uint64_t file_len = f.length();
    if (!read_only()) {
        if (header_.incompatible_features & kIncompatCorrupt)
            refuse(f, "image is marked corrupt; cannot be opened read/write "
                      "(run 'qemu-img check -r all')");
        if (header_.incompatible_features & kIncompatDirty)
            refuse(f, "image is dirty (lazy refcounts); repair it with 'qemu-img check -r all'");
        if (header_.nb_snapshots > 0)
            refuse(f, "images with internal snapshots can only be opened read-only");
    }

    std::vector<uint8_t> raw(size_t(header_.l1_size) * 8);
    if (f.pread(header_.l1_table_offset, raw) != IoStatus::Ok) refuse(f, "cannot read L1 table");
    l1_.resize(header_.l1_size);
    for (size_t i = 0; i < l1_.size(); i++) l1_[i] = be64(&raw[i * 8]);

    const uint64_t rt_bytes = uint64_t(header_.refcount_table_clusters) * cluster_size_;
    raw.assign(size_t(rt_bytes), 0);
    if (f.pread(header_.refcount_table_offset, raw) != IoStatus::Ok)
        refuse(f, "cannot read refcount table");
    refcount_table_.resize(size_t(rt_bytes / 8));
    for (size_t i = 0; i < refcount_table_.size(); i++) refcount_table_[i] = be64(&raw[i * 8]);

    // Known metadata clusters, so a hostile L2 entry can never make a data write land on them.
    metadata_.insert(0);
    for (uint64_t o = 0; o < round_up(uint64_t(header_.l1_size) * 8, cluster_size_);
         o += cluster_size_)
        metadata_.insert(header_.l1_table_offset + o);
    for (uint64_t o = 0; o < rt_bytes; o += cluster_size_)
        metadata_.insert(header_.refcount_table_offset + o);
    for (size_t i = 0; i < refcount_table_.size(); i++) {
        uint64_t e = refcount_table_[i];
        if (e == 0) continue;
        uint64_t off = e & kRefTableOffsetMask;
        if (off != e || off % cluster_size_ != 0 || off >= file_len)
            refuse(f, "refcount block " + std::to_string(i) + " has an invalid offset");
        if (metadata_.count(off))
            refuse(f, "refcount block " + std::to_string(i) + " overlaps other metadata");
        metadata_.insert(off);
        refcount_table_[i] = off;
    }
    for (uint64_t e : l1_) {
        uint64_t off = e & kL1OffsetMask;
        if (off != 0 && off % cluster_size_ == 0) metadata_.insert(off);
    }

    next_free_ = round_up(file_len, cluster_size_);
    if (!read_only() && header_.version == 3 && header_.autoclear_features != 0) {
        // Autoclear bits describe extensions (bitmaps, raw external data) that hvm does not keep
        // up to date; the specification says a writer that does not understand them clears them.
        uint8_t zero[8] = {};
        if (f.pwrite(kOffAutoclearFeatures, zero) != IoStatus::Ok)
            refuse(f, "cannot clear autoclear feature bits");
        header_.autoclear_features = 0;
    }
}

void Qcow2Image::create(HostFile& file, uint64_t size, uint32_t cluster_bits) {
    if (cluster_bits < kMinClusterBits || cluster_bits > kMaxClusterBits)
        refuse(file, "invalid cluster size");
    const uint64_t cs = 1ull << cluster_bits;
    const uint64_t per_l1 = cs * (cs / 8);
    size = round_up(size, BlockDevice::kSectorSize);
    const uint64_t l1_size = size / per_l1 + (size % per_l1 != 0);
    if (l1_size * 8 > kMaxL1Bytes) refuse(file, "image size too large");
    const uint64_t l1_clusters = std::max<uint64_t>(1, round_up(l1_size * 8, cs) / cs);
    // Layout: header, refcount table, one refcount block, L1 table.
    const uint64_t rt_off = cs, rb_off = 2 * cs, l1_off = 3 * cs;
    const uint64_t used = 3 + l1_clusters;
    if (used > cs * 8 / 16) refuse(file, "image size too large for the overlay layout");

    std::vector<uint8_t> buf(size_t(cs * (3 + l1_clusters)), 0);
    uint8_t* h = buf.data();
    put_be32(h + kOffMagic, kMagic);
    put_be32(h + kOffVersion, 3);
    put_be32(h + kOffClusterBits, cluster_bits);
    put_be64(h + kOffSize, size);
    put_be32(h + kOffL1Size, uint32_t(l1_size));
    put_be64(h + kOffL1TableOffset, l1_off);
    put_be64(h + kOffRefcountTableOffset, rt_off);
    put_be32(h + kOffRefcountTableClusters, 1);
    put_be32(h + kOffRefcountOrder, 4);
    put_be32(h + kOffHeaderLength, 112); // includes compression_type and padding, as QEMU writes
    // An all-zero extension header at 112 ends the extension list.
    put_be64(buf.data() + rt_off, rb_off);
    for (uint64_t i = 0; i < used; i++) {
        buf[size_t(rb_off + i * 2)] = 0;
        buf[size_t(rb_off + i * 2 + 1)] = 1;
    }
    if (file.pwrite(0, buf) != IoStatus::Ok) refuse(file, "cannot write the new image");
}

// ---------------------------------------------------------------------------------------------
// Table cache

Qcow2Image::TableCache::Entry& Qcow2Image::TableCache::victim() {
    if (entries_.size() < capacity_) {
        entries_.push_back(Entry{kNoTable, 0, std::vector<uint8_t>(table_bytes_)});
        return entries_.back();
    }
    auto it =
        std::min_element(entries_.begin(), entries_.end(),
                         [](const Entry& a, const Entry& b) { return a.last_use < b.last_use; });
    return *it;
}

uint8_t* Qcow2Image::TableCache::get(HostFile& file, uint64_t offset, IoStatus& status) {
    for (Entry& e : entries_) {
        if (e.offset == offset) {
            e.last_use = ++tick_;
            status = IoStatus::Ok;
            return e.bytes.data();
        }
    }
    Entry& e = victim();
    e.offset = kNoTable;
    status = file.pread(offset, e.bytes);
    if (status != IoStatus::Ok) return nullptr;
    e.offset = offset;
    e.last_use = ++tick_;
    return e.bytes.data();
}

uint8_t* Qcow2Image::TableCache::install(uint64_t offset, std::span<const uint8_t> bytes) {
    Entry* slot = nullptr;
    for (Entry& e : entries_)
        if (e.offset == offset) slot = &e;
    if (!slot) slot = &victim();
    slot->offset = offset;
    slot->last_use = ++tick_;
    std::copy(bytes.begin(), bytes.end(), slot->bytes.begin());
    return slot->bytes.data();
}

// ---------------------------------------------------------------------------------------------
// Mapping and reads

bool Qcow2Image::is_metadata(uint64_t host_cluster) const {
    return metadata_.count(host_cluster) != 0;
}

bool Qcow2Image::host_cluster_ok(uint64_t host_offset) const {
    return host_offset != 0 && host_offset % cluster_size_ == 0 && host_offset < kMaxHostOffset;
}

IoStatus Qcow2Image::lookup(uint64_t guest_cluster, Mapping& map) {
    map = Mapping{};
    const uint64_t l1_index = guest_cluster / l2_entries_;
    if (l1_index >= l1_.size()) CORRUPT("qcow2 %s: guest cluster beyond L1", filename().c_str());
    const uint64_t l2_offset = l1_[l1_index] & kL1OffsetMask;
    if (l2_offset == 0) return IoStatus::Ok;
    if (!host_cluster_ok(l2_offset))
        CORRUPT("qcow2 %s: L2 table offset %#llx invalid", filename().c_str(),
                (unsigned long long)l2_offset);
    IoStatus st;
    const uint8_t* table = l2_cache_.get(*file_, l2_offset, st);
    if (!table) return st;
    const uint64_t e = be64(table + (guest_cluster % l2_entries_) * 8);
    map.l2_offset = l2_offset;
    map.l2_entry = e;
    if (e & kOflagCompressed) {
        map.kind = Mapping::Compressed;
        return IoStatus::Ok;
    }
    const uint64_t host = e & kL2OffsetMask;
    if (header_.version >= 3 && (e & kL2ZeroFlag)) {
        map.kind = Mapping::Zero;
        map.host_offset = host_cluster_ok(host) ? host : 0;
        return IoStatus::Ok;
    }
    if (host == 0) return IoStatus::Ok; // unallocated: backing file or zeros
    if (!host_cluster_ok(host))
        CORRUPT("qcow2 %s: data cluster offset %#llx invalid", filename().c_str(),
                (unsigned long long)host);
    map.kind = Mapping::Normal;
    map.host_offset = host;
    return IoStatus::Ok;
}

IoStatus Qcow2Image::read_backing(uint64_t offset, std::span<uint8_t> out) {
    uint64_t n = 0;
    if (backing_ && offset < backing_->size()) {
        // A backing file smaller than the overlay reads as zeros past its end.
        n = std::min<uint64_t>(out.size(), backing_->size() - offset);
        if (IoStatus s = backing_->read(offset, out.first(size_t(n))); s != IoStatus::Ok) return s;
    }
    std::memset(out.data() + n, 0, out.size() - size_t(n));
    return IoStatus::Ok;
}

IoStatus Qcow2Image::read_compressed(uint64_t l2_entry, std::span<uint8_t> cluster) {
    // Compressed entry: the low x bits are the host byte offset, bits x..61 the number of
    // additional 512-byte sectors the compressed data spans (x = 62 - (cluster_bits - 8)).
    const unsigned x = 62 - (cluster_bits_ - 8);
    const uint64_t coffset = l2_entry & ((1ull << x) - 1);
    const uint64_t nb_sectors = ((l2_entry & ~(kOflagCompressed | kOflagCopied)) >> x) + 1;
    const uint64_t csize = nb_sectors * 512 - (coffset & 511);
    if (coffset == 0 || coffset >= kMaxHostOffset || coffset >= file_->length())
        CORRUPT("qcow2 %s: compressed cluster offset %#llx invalid", filename().c_str(),
                (unsigned long long)coffset);
    if (decompressed_entry_ == l2_entry && decompressed_.size() == cluster.size()) {
        std::copy(decompressed_.begin(), decompressed_.end(), cluster.begin());
        return IoStatus::Ok;
    }
    std::vector<uint8_t> in(static_cast<size_t>(csize));
    if (IoStatus s = file_->pread(coffset, in); s != IoStatus::Ok) return s;
    if (!inflate_raw(in, cluster))
        CORRUPT("qcow2 %s: compressed cluster at %#llx does not decompress", filename().c_str(),
                (unsigned long long)coffset);
    decompressed_.assign(cluster.begin(), cluster.end());
    decompressed_entry_ = l2_entry;
    return IoStatus::Ok;
}

IoStatus Qcow2Image::read_cluster_part(uint64_t guest_cluster, const Mapping& map,
                                       uint64_t in_cluster, std::span<uint8_t> out) {
    switch (map.kind) {
    case Mapping::Unallocated:
        return read_backing((guest_cluster << cluster_bits_) + in_cluster, out);
    case Mapping::Zero: std::memset(out.data(), 0, out.size()); return IoStatus::Ok;
    case Mapping::Normal: return file_->pread(map.host_offset + in_cluster, out);
    case Mapping::Compressed: {
        std::vector<uint8_t> cluster(static_cast<size_t>(cluster_size_));
        if (IoStatus s = read_compressed(map.l2_entry, cluster); s != IoStatus::Ok) return s;
        std::memcpy(out.data(), cluster.data() + in_cluster, out.size());
        return IoStatus::Ok;
    }
    }
    return IoStatus::IoError;
}

IoStatus Qcow2Image::do_read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard<std::mutex> guard(mutex_);
    size_t done = 0;
    while (done < data.size()) {
        const uint64_t pos = offset + done;
        const uint64_t gc = pos >> cluster_bits_;
        const uint64_t in = pos & (cluster_size_ - 1);
        const size_t n = size_t(std::min<uint64_t>(cluster_size_ - in, data.size() - done));
        Mapping map;
        if (IoStatus s = lookup(gc, map); s != IoStatus::Ok) return s;
        if (IoStatus s = read_cluster_part(gc, map, in, data.subspan(done, n)); s != IoStatus::Ok)
            return s;
        done += n;
    }
    return IoStatus::Ok;
}

// ---------------------------------------------------------------------------------------------
// Writes

IoStatus Qcow2Image::do_write(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard<std::mutex> guard(mutex_);
    size_t done = 0;
    while (done < data.size()) {
        const uint64_t pos = offset + done;
        const uint64_t in = pos & (cluster_size_ - 1);
        const size_t n = size_t(std::min<uint64_t>(cluster_size_ - in, data.size() - done));
        if (IoStatus s = write_cluster_part(pos >> cluster_bits_, in, data.subspan(done, n));
            s != IoStatus::Ok)
            return s;
        done += n;
    }
    // cache=writethrough/directsync: the write is complete only once it is on stable storage.
    if (!file_->cache().writeback) return file_->sync();
    return IoStatus::Ok;
}

IoStatus Qcow2Image::do_flush() {
    std::lock_guard<std::mutex> guard(mutex_);
    return file_->sync();
}

IoStatus Qcow2Image::write_cluster_part(uint64_t guest_cluster, uint64_t in_cluster,
                                        std::span<const uint8_t> data) {
    Mapping map;
    if (IoStatus s = lookup(guest_cluster, map); s != IoStatus::Ok) return s;

    if (map.kind == Mapping::Normal) {
        if (!(map.l2_entry & kOflagCopied)) {
            // Without the copied flag the cluster may be shared (internal snapshot); only a
            // refcount of exactly one allows an in-place write.
            uint64_t rc = 0;
            if (IoStatus s = get_refcount(map.host_offset, rc); s != IoStatus::Ok) return s;
            if (rc != 1) return IoStatus::NotSupported;
        }
        if (is_metadata(map.host_offset))
            CORRUPT("qcow2 %s: data cluster %#llx overlaps metadata", filename().c_str(),
                    (unsigned long long)map.host_offset);
        // Data clusters are written before any L2 entry points at them, so a referenced cluster
        // past the end of the file is a hostile entry: refuse rather than grow a huge sparse file.
        if (map.host_offset >= file_->length())
            CORRUPT("qcow2 %s: data cluster %#llx beyond end of file", filename().c_str(),
                    (unsigned long long)map.host_offset);
        return file_->pwrite(map.host_offset + in_cluster, data);
    }

    // Copy-on-write into a new cluster: build the full cluster (old contents from the backing
    // file, zeros, or the decompressed data) with the new bytes on top.
    std::vector<uint8_t> cluster(static_cast<size_t>(cluster_size_));
    if (data.size() != cluster_size_) {
        if (IoStatus s = read_cluster_part(guest_cluster, map, 0, cluster); s != IoStatus::Ok)
            return s;
    }
    std::memcpy(cluster.data() + in_cluster, data.data(), data.size());

    uint64_t l2_offset = 0;
    if (IoStatus s = ensure_l2(guest_cluster / l2_entries_, l2_offset); s != IoStatus::Ok) return s;

    // A v3 zero cluster with a preallocated host cluster is reused in place.
    uint64_t host = 0;
    bool reused = false;
    if (map.kind == Mapping::Zero && map.host_offset != 0 && !is_metadata(map.host_offset)) {
        uint64_t rc = 0;
        if (get_refcount(map.host_offset, rc) == IoStatus::Ok && rc == 1) {
            host = map.host_offset;
            reused = true;
        }
    }
    if (!reused) {
        if (IoStatus s = alloc_clusters(1, host); s != IoStatus::Ok) return s;
    }
    // Order: refcount (done by alloc) -> data -> L2 entry; a crash in between only leaks.
    if (IoStatus s = file_->pwrite(host, cluster); s != IoStatus::Ok) return s;
    if (IoStatus s = set_l2_entry(l2_offset, guest_cluster % l2_entries_, host | kOflagCopied);
        s != IoStatus::Ok)
        return s;
    if (map.kind == Mapping::Compressed) decompressed_entry_ = 0, decompressed_.clear();
    if (!reused) release_old_mapping(map);
    return IoStatus::Ok;
}

IoStatus Qcow2Image::ensure_l2(uint64_t l1_index, uint64_t& l2_offset) {
    const uint64_t e = l1_[l1_index];
    if (uint64_t off = e & kL1OffsetMask; off != 0) {
        if (!(e & kOflagCopied)) {
            uint64_t rc = 0;
            if (IoStatus s = get_refcount(off, rc); s != IoStatus::Ok) return s;
            if (rc != 1) return IoStatus::NotSupported; // L2 shared with an internal snapshot
        }
        l2_offset = off;
        return IoStatus::Ok;
    }
    uint64_t table = 0;
    if (IoStatus s = alloc_clusters(1, table); s != IoStatus::Ok) return s;
    std::vector<uint8_t> zeros(size_t(cluster_size_), 0);
    if (IoStatus s = file_->pwrite(table, zeros); s != IoStatus::Ok) return s;
    metadata_.insert(table);
    l2_cache_.install(table, zeros);
    uint8_t entry[8];
    put_be64(entry, table | kOflagCopied);
    if (IoStatus s = file_->pwrite(header_.l1_table_offset + l1_index * 8, entry);
        s != IoStatus::Ok)
        return s;
    l1_[l1_index] = table | kOflagCopied;
    l2_offset = table;
    return IoStatus::Ok;
}

IoStatus Qcow2Image::set_l2_entry(uint64_t l2_offset, uint64_t index, uint64_t value) {
    IoStatus st;
    uint8_t* table = l2_cache_.get(*file_, l2_offset, st);
    if (!table) return st;
    uint8_t* slot = table + index * 8;
    const uint64_t old = be64(slot);
    put_be64(slot, value);
    st = file_->pwrite(l2_offset + index * 8, std::span<const uint8_t>(slot, 8));
    if (st != IoStatus::Ok) put_be64(slot, old); // keep the cache equal to the file
    return st;
}

// The old mapping is dropped only after the L2 entry points elsewhere: a crash before this
// leaves a leak, never a cluster in use with refcount zero.
IoStatus Qcow2Image::release_old_mapping(const Mapping& old) {
    uint64_t start = 0, length = 0;
    if (old.kind == Mapping::Compressed) {
        const unsigned x = 62 - (cluster_bits_ - 8);
        const uint64_t coffset = old.l2_entry & ((1ull << x) - 1);
        const uint64_t nb_sectors = ((old.l2_entry & ~(kOflagCompressed | kOflagCopied)) >> x) + 1;
        start = coffset & ~511ull;
        length = nb_sectors * 512;
    } else if (old.kind == Mapping::Zero && old.host_offset != 0) {
        start = old.host_offset;
        length = cluster_size_;
    } else {
        return IoStatus::Ok;
    }
    const uint64_t first = start & ~(cluster_size_ - 1);
    const uint64_t last = (start + length - 1) & ~(cluster_size_ - 1);
    for (uint64_t c = first; c <= last; c += cluster_size_) {
        if (is_metadata(c)) continue;
        if (IoStatus s = update_refcount(c, -1); s != IoStatus::Ok) {
            LOG_WARN("qcow2 %s: could not free cluster %#llx (leaked)", filename().c_str(),
                     (unsigned long long)c);
            return s;
        }
    }
    return IoStatus::Ok;
}

// ---------------------------------------------------------------------------------------------
// Refcounts

uint64_t Qcow2Image::refcount_entry(const uint8_t* block, uint64_t index) const {
    if (refcount_bits_ >= 8) {
        const uint64_t width = refcount_bits_ / 8;
        uint64_t v = 0;
        for (uint64_t i = 0; i < width; i++) v = v << 8 | block[index * width + i];
        return v;
    }
    // Sub-byte entries are packed starting at the least significant bit of each byte.
    const uint64_t per_byte = 8 / refcount_bits_;
    const unsigned shift = unsigned(index % per_byte) * refcount_bits_;
    return (block[index / per_byte] >> shift) & refcount_max_;
}

void Qcow2Image::set_refcount_entry(uint8_t* block, uint64_t index, uint64_t value) const {
    if (refcount_bits_ >= 8) {
        const uint64_t width = refcount_bits_ / 8;
        for (uint64_t i = 0; i < width; i++)
            block[index * width + i] = uint8_t(value >> (8 * (width - 1 - i)));
        return;
    }
    const uint64_t per_byte = 8 / refcount_bits_;
    const unsigned shift = unsigned(index % per_byte) * refcount_bits_;
    uint8_t& b = block[index / per_byte];
    b = uint8_t((b & ~(refcount_max_ << shift)) | (value << shift));
}

IoStatus Qcow2Image::write_refcount_entry(uint64_t block_offset, uint8_t* block, uint64_t index) {
    uint64_t off, len;
    if (refcount_bits_ >= 8) {
        len = refcount_bits_ / 8;
        off = index * len;
    } else {
        len = 1;
        off = index / (8 / refcount_bits_);
    }
    return file_->pwrite(block_offset + off, std::span<const uint8_t>(block + off, size_t(len)));
}

IoStatus Qcow2Image::get_refcount(uint64_t host_offset, uint64_t& value) {
    const uint64_t ci = host_offset >> cluster_bits_;
    const uint64_t ti = ci / refblock_entries_;
    value = 0;
    if (ti >= refcount_table_.size() || refcount_table_[ti] == 0) return IoStatus::Ok;
    IoStatus st;
    const uint8_t* block = refblock_cache_.get(*file_, refcount_table_[ti], st);
    if (!block) return st;
    value = refcount_entry(block, ci % refblock_entries_);
    return IoStatus::Ok;
}

IoStatus Qcow2Image::update_refcount(uint64_t host_offset, int64_t delta) {
    const uint64_t ci = host_offset >> cluster_bits_;
    const uint64_t ti = ci / refblock_entries_;
    if (ti >= refcount_table_.size()) {
        if (delta < 0) CORRUPT("qcow2 %s: freeing unreferenced cluster", filename().c_str());
        if (IoStatus s = grow_refcount_table(ti); s != IoStatus::Ok) return s;
    }
    if (refcount_table_[ti] == 0) {
        if (delta < 0) CORRUPT("qcow2 %s: freeing unreferenced cluster", filename().c_str());
        if (IoStatus s = alloc_refblock(ti); s != IoStatus::Ok) return s;
    }
    const uint64_t block_offset = refcount_table_[ti];
    IoStatus st;
    uint8_t* block = refblock_cache_.get(*file_, block_offset, st);
    if (!block) return st;
    const uint64_t index = ci % refblock_entries_;
    const uint64_t old = refcount_entry(block, index);
    if (delta < 0 && old < uint64_t(-delta))
        CORRUPT("qcow2 %s: refcount underflow at %#llx", filename().c_str(),
                (unsigned long long)host_offset);
    if (delta > 0 && refcount_max_ - old < uint64_t(delta))
        CORRUPT("qcow2 %s: refcount overflow at %#llx", filename().c_str(),
                (unsigned long long)host_offset);
    set_refcount_entry(block, index, old + uint64_t(delta));
    st = write_refcount_entry(block_offset, block, index);
    if (st != IoStatus::Ok) set_refcount_entry(block, index, old);
    return st;
}

IoStatus Qcow2Image::alloc_refblock(uint64_t table_index) {
    const uint64_t off = next_free_;
    if (off + cluster_size_ > kMaxHostOffset) return IoStatus::NoSpace;
    next_free_ += cluster_size_;
    std::vector<uint8_t> block(size_t(cluster_size_), 0);
    const uint64_t ci = off >> cluster_bits_;
    if (ci / refblock_entries_ == table_index) {
        // The new block lies in the range it describes: it carries its own refcount.
        set_refcount_entry(block.data(), ci % refblock_entries_, 1);
    } else if (IoStatus s = update_refcount(off, +1); s != IoStatus::Ok) {
        return s;
    }
    if (IoStatus s = file_->pwrite(off, block); s != IoStatus::Ok) return s;
    // Only now may the table point at it (the block is complete on disk).
    uint8_t entry[8];
    put_be64(entry, off);
    if (IoStatus s = file_->pwrite(header_.refcount_table_offset + table_index * 8, entry);
        s != IoStatus::Ok)
        return s;
    refcount_table_[table_index] = off;
    metadata_.insert(off);
    refblock_cache_.install(off, block);
    return IoStatus::Ok;
}

// Writes a larger refcount table (and the refcount blocks needed to describe it) into fresh
// clusters at the end of the file, then switches the header to it with a single 12-byte write,
// then frees the old table. Before the switch, nothing new is referenced; after it, everything is.
IoStatus Qcow2Image::grow_refcount_table(uint64_t needed_index) {
    const uint64_t per_cluster = cluster_size_ / 8;
    const uint64_t old_n = refcount_table_.size();
    uint64_t new_n = round_up(std::max(needed_index + 1, old_n + old_n / 2), per_cluster);
    auto has_block = [&](uint64_t ti) { return ti < old_n && refcount_table_[ti] != 0; };

    uint64_t table_off = 0, end = 0;
    std::vector<uint64_t> new_blocks; // table indexes that get a new block
    for (int attempt = 0;; attempt++) {
        if (new_n * 8 > kMaxRefTableBytes || attempt > 8) {
            LOG_ERROR("qcow2 %s: refcount table would exceed %llu bytes", filename().c_str(),
                      (unsigned long long)kMaxRefTableBytes);
            return IoStatus::NoSpace;
        }
        table_off = next_free_;
        const uint64_t table_clusters = new_n / per_cluster;
        size_t k = 0;
        for (;;) {
            end = table_off + (table_clusters + k) * cluster_size_;
            new_blocks.clear();
            for (uint64_t c = table_off; c < end; c += cluster_size_) {
                uint64_t ti = (c >> cluster_bits_) / refblock_entries_;
                if (!has_block(ti) && (new_blocks.empty() || new_blocks.back() != ti))
                    new_blocks.push_back(ti);
            }
            if (new_blocks.size() == k) break;
            k = new_blocks.size();
        }
        if (end > kMaxHostOffset) return IoStatus::NoSpace;
        if (new_blocks.empty() || new_blocks.back() < new_n) break;
        new_n = round_up(new_blocks.back() + 1, per_cluster);
    }
    const uint64_t table_clusters = new_n / per_cluster;
    const uint64_t blocks_off = table_off + table_clusters * cluster_size_;
    next_free_ = end;

    // Refcounts for the new clusters: in existing blocks directly, in new blocks in memory.
    std::map<uint64_t, std::vector<uint8_t>> blocks;
    for (size_t j = 0; j < new_blocks.size(); j++)
        blocks[new_blocks[j]] = std::vector<uint8_t>(size_t(cluster_size_), 0);
    for (uint64_t c = table_off; c < end; c += cluster_size_) {
        const uint64_t ci = c >> cluster_bits_;
        const uint64_t ti = ci / refblock_entries_;
        if (has_block(ti)) {
            if (IoStatus s = update_refcount(c, +1); s != IoStatus::Ok) return s;
        } else {
            set_refcount_entry(blocks[ti].data(), ci % refblock_entries_, 1);
        }
    }
    std::vector<uint64_t> table(new_n, 0);
    std::copy(refcount_table_.begin(), refcount_table_.end(), table.begin());
    for (size_t j = 0; j < new_blocks.size(); j++) {
        const uint64_t off = blocks_off + j * cluster_size_;
        if (IoStatus s = file_->pwrite(off, blocks[new_blocks[j]]); s != IoStatus::Ok) return s;
        table[new_blocks[j]] = off;
    }
    std::vector<uint8_t> raw(size_t(new_n * 8));
    for (uint64_t i = 0; i < new_n; i++) put_be64(&raw[i * 8], table[i]);
    if (IoStatus s = file_->pwrite(table_off, raw); s != IoStatus::Ok) return s;

    // Switch: refcount_table_offset (8 bytes) and refcount_table_clusters (4) are adjacent.
    uint8_t hdr[12];
    put_be64(hdr, table_off);
    put_be32(hdr + 8, uint32_t(table_clusters));
    if (IoStatus s = file_->pwrite(kOffRefcountTableOffset, hdr); s != IoStatus::Ok) return s;

    const uint64_t old_off = header_.refcount_table_offset;
    const uint64_t old_clusters = header_.refcount_table_clusters;
    header_.refcount_table_offset = table_off;
    header_.refcount_table_clusters = uint32_t(table_clusters);
    refcount_table_ = std::move(table);
    for (uint64_t i = 0; i < old_clusters; i++) metadata_.erase(old_off + i * cluster_size_);
    for (uint64_t c = table_off; c < end; c += cluster_size_) metadata_.insert(c);
    for (size_t j = 0; j < new_blocks.size(); j++)
        refblock_cache_.install(blocks_off + j * cluster_size_, blocks[new_blocks[j]]);
    for (uint64_t i = 0; i < old_clusters; i++) {
        if (update_refcount(old_off + i * cluster_size_, -1) != IoStatus::Ok)
            LOG_WARN("qcow2 %s: old refcount table cluster leaked", filename().c_str());
    }
    return IoStatus::Ok;
}

IoStatus Qcow2Image::alloc_clusters(uint64_t count, uint64_t& host_offset) {
    // Clusters are taken from the end of the file. A cluster there that already has a refcount
    // (a leak from an earlier crash past EOF, or a hostile refcount block) is skipped.
    for (;;) {
        const uint64_t off = next_free_;
        if (off > kMaxHostOffset - count * cluster_size_) return IoStatus::NoSpace;
        uint64_t busy = 0;
        for (uint64_t i = 0; i < count && !busy; i++) {
            uint64_t rc = 0;
            if (IoStatus s = get_refcount(off + i * cluster_size_, rc); s != IoStatus::Ok) return s;
            if (rc != 0) busy = off + (i + 1) * cluster_size_;
        }
        if (busy) {
            next_free_ = busy;
            continue;
        }
        next_free_ = off + count * cluster_size_;
        for (uint64_t i = 0; i < count; i++)
            if (IoStatus s = update_refcount(off + i * cluster_size_, +1); s != IoStatus::Ok)
                return s;
        host_offset = off;
        return IoStatus::Ok;
    }
}

} // namespace hvm::block
