#include "firmware/acpi/table_loader.hpp"

#include <cstring>

namespace hvm {

namespace {

using namespace loader;

// Offsets inside a command's 124-byte body (SeaBIOS struct romfile_loader_entry_s).
constexpr size_t kBody = 4;
constexpr size_t kAllocAlign = kBody + kFileNameSize;   // u32
constexpr size_t kAllocZone = kAllocAlign + 4;          // u8
constexpr size_t kPtrSrc = kBody + kFileNameSize;       // char[56]
constexpr size_t kPtrOffset = kPtrSrc + kFileNameSize;  // u32
constexpr size_t kPtrSize = kPtrOffset + 4;             // u8
constexpr size_t kCksumResult = kBody + kFileNameSize;  // u32
constexpr size_t kCksumStart = kCksumResult + 4;        // u32
constexpr size_t kCksumLength = kCksumStart + 4;        // u32
constexpr size_t kWpSrc = kBody + kFileNameSize;        // char[56]
constexpr size_t kWpDstOffset = kWpSrc + kFileNameSize; // u32
constexpr size_t kWpSrcOffset = kWpDstOffset + 4;       // u32
constexpr size_t kWpSize = kWpSrcOffset + 4;            // u8
constexpr uint64_t kMinAlign = 16;                      // SeaBIOS MALLOC_MIN_ALIGN

void put32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (8 * i));
}
uint32_t get32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
void put_name(uint8_t* p, std::string_view name) {
    if (name.empty() || name.size() >= kFileNameSize)
        throw std::invalid_argument("table-loader file name must be 1-55 characters");
    std::memcpy(p, name.data(), name.size());
}
bool valid_pointer_size(uint8_t s) {
    return s == 1 || s == 2 || s == 4 || s == 8;
}

} // namespace

uint8_t* TableLoader::new_entry(uint32_t command) {
    size_t at = blob_.size();
    blob_.resize(at + kEntrySize, 0);
    put32(&blob_[at], command);
    return &blob_[at];
}

void TableLoader::allocate(std::string_view file, uint32_t align, LoaderZone zone) {
    if (align == 0 || (align & (align - 1)))
        throw std::invalid_argument("table-loader alignment must be a power of two");
    uint8_t* e = new_entry(kCmdAllocate);
    put_name(e + kBody, file);
    put32(e + kAllocAlign, align);
    e[kAllocZone] = uint8_t(zone);
}

void TableLoader::add_pointer(std::string_view dest, uint32_t offset, uint8_t size,
                              std::string_view src) {
    if (!valid_pointer_size(size)) throw std::invalid_argument("bad table-loader pointer size");
    uint8_t* e = new_entry(kCmdAddPointer);
    put_name(e + kBody, dest);
    put_name(e + kPtrSrc, src);
    put32(e + kPtrOffset, offset);
    e[kPtrSize] = size;
}

void TableLoader::add_checksum(std::string_view file, uint32_t result_offset, uint32_t start,
                               uint32_t length) {
    uint8_t* e = new_entry(kCmdAddChecksum);
    put_name(e + kBody, file);
    put32(e + kCksumResult, result_offset);
    put32(e + kCksumStart, start);
    put32(e + kCksumLength, length);
}

void TableLoader::write_pointer(std::string_view dest, uint32_t dst_offset, uint8_t size,
                                std::string_view src, uint32_t src_offset) {
    if (!valid_pointer_size(size)) throw std::invalid_argument("bad table-loader pointer size");
    uint8_t* e = new_entry(kCmdWritePointer);
    put_name(e + kBody, dest);
    put_name(e + kWpSrc, src);
    put32(e + kWpDstOffset, dst_offset);
    put32(e + kWpSrcOffset, src_offset);
    e[kWpSize] = size;
}

std::vector<uint8_t> TableLoader::blob(size_t align) const {
    std::vector<uint8_t> out = blob_;
    if (align > 1 && out.size() % align) out.resize(out.size() + align - out.size() % align, 0);
    return out;
}

uint64_t BumpLoaderAllocator::allocate(LoaderZone zone, uint64_t size, uint64_t align) {
    if (align == 0 || (align & (align - 1))) throw LoaderError("bad allocation alignment");
    if (zone == LoaderZone::High) {
        if (size > high_top_ - high_bottom_) throw LoaderError("high zone full");
        uint64_t addr = (high_top_ - size) & ~(align - 1);
        if (addr < high_bottom_) throw LoaderError("high zone full");
        high_top_ = addr;
        return addr;
    }
    if (zone == LoaderZone::FSeg) {
        uint64_t addr = (fseg_next_ + align - 1) & ~(align - 1);
        if (addr < fseg_next_ || addr > fseg_end_ || size > fseg_end_ - addr)
            throw LoaderError("F-segment full");
        fseg_next_ = addr + size;
        return addr;
    }
    throw LoaderError("unknown allocation zone");
}

LoaderReplayResult replay_table_loader(std::span<const uint8_t> script,
                                       const LoaderFileLookup& files, LoaderAllocator& alloc,
                                       GuestMemory& mem, const LoaderPointerWriter& writer) {
    LoaderReplayResult res;
    // SeaBIOS rejects a name that is not NUL-terminated within its 56 bytes.
    auto name_at = [](const uint8_t* p) -> std::string {
        const void* nul = std::memchr(p, 0, kFileNameSize);
        if (!nul) throw LoaderError("table-loader file name without NUL");
        return std::string(reinterpret_cast<const char*>(p), static_cast<const uint8_t*>(nul) - p);
    };
    auto allocated = [&](const std::string& name) -> std::vector<uint8_t>& {
        auto it = res.contents.find(name);
        if (it == res.contents.end())
            throw LoaderError("table-loader refers to unallocated file '" + name + "'");
        return it->second;
    };

    for (size_t at = 0; at + kEntrySize <= script.size(); at += kEntrySize) {
        const uint8_t* e = script.data() + at;
        switch (get32(e)) {
        case kCmdAllocate: {
            std::string name = name_at(e + kBody);
            uint64_t align = get32(e + kAllocAlign);
            uint8_t zone = e[kAllocZone];
            if (align == 0 || (align & (align - 1))) throw LoaderError("bad alignment for " + name);
            if (zone != uint8_t(LoaderZone::High) && zone != uint8_t(LoaderZone::FSeg))
                throw LoaderError("bad zone for " + name);
            if (res.contents.count(name)) throw LoaderError("'" + name + "' allocated twice");
            const std::vector<uint8_t>* data = files(name);
            if (!data || data->empty()) throw LoaderError("no fw_cfg file '" + name + "'");
            if (align < kMinAlign) align = kMinAlign;
            res.addresses[name] = alloc.allocate(LoaderZone(zone), data->size(), align);
            res.contents[name] = *data;
            break;
        }
        case kCmdAddPointer: {
            std::string dest = name_at(e + kBody), src = name_at(e + kPtrSrc);
            auto& d = allocated(dest);
            allocated(src);
            uint32_t off = get32(e + kPtrOffset);
            uint8_t size = e[kPtrSize];
            if (!valid_pointer_size(size) || off > d.size() || size > d.size() - off)
                throw LoaderError("bad pointer into '" + dest + "'");
            uint64_t v = 0;
            for (unsigned i = 0; i < size; i++) v |= uint64_t(d[off + i]) << (8 * i);
            v += res.addresses[src];
            for (unsigned i = 0; i < size; i++) d[off + i] = uint8_t(v >> (8 * i));
            break;
        }
        case kCmdAddChecksum: {
            std::string name = name_at(e + kBody);
            auto& d = allocated(name);
            uint32_t result = get32(e + kCksumResult), start = get32(e + kCksumStart),
                     length = get32(e + kCksumLength);
            if (result >= d.size() || start > d.size() || length > d.size() - start)
                throw LoaderError("bad checksum range in '" + name + "'");
            uint8_t sum = 0;
            for (uint32_t i = 0; i < length; i++) sum = uint8_t(sum + d[start + i]);
            d[result] = uint8_t(d[result] - sum);
            break;
        }
        case kCmdWritePointer: {
            std::string dest = name_at(e + kBody), src = name_at(e + kWpSrc);
            allocated(src);
            uint32_t dst_off = get32(e + kWpDstOffset), src_off = get32(e + kWpSrcOffset);
            uint8_t size = e[kWpSize];
            const std::vector<uint8_t>* target = files(dest);
            if (!valid_pointer_size(size) || !target || dst_off > target->size() ||
                size > target->size() - dst_off)
                throw LoaderError("bad write pointer into '" + dest + "'");
            uint64_t v = res.addresses[src] + src_off;
            uint8_t bytes[8];
            for (unsigned i = 0; i < size; i++) bytes[i] = uint8_t(v >> (8 * i));
            if (!writer) throw LoaderError("WRITE_POINTER without a fw_cfg writer");
            writer(dest, dst_off, std::span<const uint8_t>(bytes, size));
            break;
        }
        default: break; // unknown commands are skipped, as SeaBIOS does
        }
    }
    for (const auto& [name, data] : res.contents) {
        if (!mem.write(res.addresses[name], data))
            throw LoaderError("'" + name + "' does not fit in guest RAM");
        mem.notify_written(res.addresses[name], data.size());
    }
    return res;
}

} // namespace hvm
