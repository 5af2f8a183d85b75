#include "firmware/fw_cfg.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "base/error.hpp"
#include "base/log.hpp"
#include "vmexit/bus.hpp"

namespace hvm {

using namespace fw_cfg;

namespace {

constexpr uint32_t kSectionVersion = 1;

uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
uint64_t be64(const uint8_t* p) {
    return uint64_t(be32(p)) << 32 | be32(p + 4);
}
std::vector<uint8_t> le_bytes(uint64_t v, unsigned n) {
    std::vector<uint8_t> out(n);
    for (unsigned i = 0; i < n; i++) out[i] = uint8_t(v >> (8 * i));
    return out;
}

} // namespace

FwCfg::FwCfg(GuestMemory& mem, size_t file_slots) : mem_(mem), file_slots_(file_slots) {
    if (file_slots_ > kEntryMask + 1u - kFileFirst) throw std::invalid_argument("too many slots");
    io_.dev = this;
    dma_.dev = this;
    add_item(kSignature, {'Q', 'E', 'M', 'U'});
    add_u32(kId, kIdTraditional | kIdDma);
    rebuild_directory();
    select(kSignature);
}

void FwCfg::attach(Bus& pio) {
    pio.add(kIoBase, kIoLength, &io_, AccessSizes{1, 2}, "fw_cfg");
    pio.add(kDmaBase, kDmaLength, &dma_, AccessSizes{1, 8}, "fw_cfg dma");
}

void FwCfg::add_item(uint16_t key, std::vector<uint8_t> bytes) {
    uint16_t idx = key & kEntryMask;
    if ((key & kWriteChannel) || idx >= kFileFirst || (!(key & kArchLocal) && idx == kFileDir))
        throw std::invalid_argument("fw_cfg key is not a numbered item");
    items_[key].data = std::move(bytes);
}
void FwCfg::add_u16(uint16_t key, uint16_t v) {
    add_item(key, le_bytes(v, 2));
}
void FwCfg::add_u32(uint16_t key, uint32_t v) {
    add_item(key, le_bytes(v, 4));
}
void FwCfg::add_u64(uint16_t key, uint64_t v) {
    add_item(key, le_bytes(v, 8));
}
void FwCfg::add_string(uint16_t key, std::string_view s) {
    std::vector<uint8_t> b(s.begin(), s.end());
    b.push_back(0);
    add_item(key, std::move(b));
}

void FwCfg::add_file(std::string_view name, std::vector<uint8_t> bytes, bool writable) {
    if (name.empty() || name.size() > kMaxNameLength || name.find('\0') != name.npos)
        throw std::invalid_argument("fw_cfg file name must be 1-55 characters");
    if (file_by_name(name)) fail("fw_cfg file '" + std::string(name) + "' already exists");
    if (files_.size() >= file_slots_)
        fail("too many fw_cfg files (at most " + std::to_string(file_slots_) + ")");
    // QEMU keeps the directory sorted by name (fw_cfg_add_file_callback, pc >= 2.6), so selectors
    // are 0x20 + the file's rank.
    File f{std::string(name), Item{std::move(bytes), writable, {}, {}}};
    auto pos = std::lower_bound(files_.begin(), files_.end(), f.name,
                                [](const File& a, const std::string& n) { return a.name < n; });
    files_.insert(pos, std::move(f));
    rebuild_directory();
}

void FwCfg::modify_file(std::string_view name, std::vector<uint8_t> bytes) {
    File* f = file_by_name(name);
    if (!f) throw std::invalid_argument("no fw_cfg file '" + std::string(name) + "'");
    f->item.data = std::move(bytes);
    if (Item* cur = current(); cur == &f->item && cur_offset_ > cur->data.size())
        cur_offset_ = uint32_t(cur->data.size());
    rebuild_directory();
}

void FwCfg::set_select_callback(std::string_view file, std::function<void()> cb) {
    File* f = file_by_name(file);
    if (!f) throw std::invalid_argument("no fw_cfg file '" + std::string(file) + "'");
    f->item.on_select = std::move(cb);
}

void FwCfg::set_write_callback(std::string_view file, std::function<void(uint32_t, uint32_t)> cb) {
    File* f = file_by_name(file);
    if (!f) throw std::invalid_argument("no fw_cfg file '" + std::string(file) + "'");
    f->item.on_write = std::move(cb);
}

FwCfg::File* FwCfg::file_by_name(std::string_view name) {
    for (auto& f : files_)
        if (f.name == name) return &f;
    return nullptr;
}
const FwCfg::File* FwCfg::file_by_name(std::string_view name) const {
    for (auto& f : files_)
        if (f.name == name) return &f;
    return nullptr;
}

const std::vector<uint8_t>* FwCfg::find_file(std::string_view name) const {
    const File* f = file_by_name(name);
    return f ? &f->item.data : nullptr;
}
const std::vector<uint8_t>* FwCfg::find_item(uint16_t key) const {
    auto it = items_.find(key);
    return it == items_.end() ? nullptr : &it->second.data;
}
std::optional<uint16_t> FwCfg::file_selector(std::string_view name) const {
    for (size_t i = 0; i < files_.size(); i++)
        if (files_[i].name == name) return uint16_t(kFileFirst + i);
    return std::nullopt;
}

std::vector<uint8_t> FwCfg::directory() const {
    std::vector<uint8_t> d(4 + files_.size() * kDirEntrySize, 0);
    uint32_t n = uint32_t(files_.size());
    for (int i = 0; i < 4; i++) d[i] = uint8_t(n >> (24 - 8 * i));
    for (size_t i = 0; i < files_.size(); i++) {
        uint8_t* e = &d[4 + i * kDirEntrySize];
        uint32_t size = uint32_t(files_[i].item.data.size());
        uint16_t sel = uint16_t(kFileFirst + i);
        for (int b = 0; b < 4; b++) e[b] = uint8_t(size >> (24 - 8 * b));
        e[4] = uint8_t(sel >> 8);
        e[5] = uint8_t(sel);
        std::memcpy(e + 8, files_[i].name.data(), files_[i].name.size());
    }
    return d;
}

void FwCfg::rebuild_directory() {
    items_[kFileDir].data = directory();
}

FwCfg::Item* FwCfg::item_for_key(uint16_t key) {
    uint16_t idx = key & kEntryMask;
    if (!(key & kArchLocal) && idx >= kFileFirst) {
        size_t i = idx - kFileFirst;
        return i < files_.size() ? &files_[i].item : nullptr;
    }
    auto it = items_.find(uint16_t(key & (kArchLocal | kEntryMask)));
    return it == items_.end() ? nullptr : &it->second;
}

FwCfg::Item* FwCfg::current() {
    return cur_key_ == kInvalid ? nullptr : item_for_key(cur_key_);
}

void FwCfg::select(uint16_t key) {
    cur_offset_ = 0;
    uint16_t norm = uint16_t(key & (kArchLocal | kEntryMask));
    // QEMU fw_cfg_select: keys past the last file slot select nothing (reads return 0).
    if ((norm & kEntryMask) >= kFileFirst + file_slots_) {
        cur_key_ = kInvalid;
        return;
    }
    cur_key_ = norm;
    if (Item* it = current(); it && it->on_select) it->on_select();
}

uint8_t FwCfg::read_data_byte() {
    Item* it = current();
    if (!it || cur_offset_ >= it->data.size()) return 0;
    return it->data[cur_offset_++];
}

void FwCfg::IoPort::io_read(uint64_t, std::span<uint8_t> data) {
    // fw_cfg_comb_valid: only byte reads are valid; either byte of the window reads data.
    if (data.size() != 1) {
        std::fill(data.begin(), data.end(), 0);
        return;
    }
    data[0] = dev->read_data_byte();
}

void FwCfg::IoPort::io_write(uint64_t offset, std::span<const uint8_t> data) {
    // A 16-bit write selects; byte writes to the data port did nothing since QEMU 2.4.
    if (data.size() == 2 && offset == 0) dev->select(uint16_t(le_load(data)));
}

uint8_t FwCfg::read_dma_register(uint64_t offset) const {
    return offset < 8 ? uint8_t(kDmaSignature >> (56 - 8 * offset)) : 0;
}

void FwCfg::DmaPort::io_read(uint64_t offset, std::span<uint8_t> data) {
    // fw_cfg_dma_mem_valid: 4 bytes at 0 or 4, or 8 at 0. Other reads get 0, as QEMU's
    // unassigned read path returns.
    bool valid =
        (data.size() == 4 && (offset == 0 || offset == 4)) || (data.size() == 8 && offset == 0);
    for (size_t i = 0; i < data.size(); i++)
        data[i] = valid ? dev->read_dma_register(offset + i) : 0;
}

void FwCfg::DmaPort::io_write(uint64_t offset, std::span<const uint8_t> data) {
    bool valid =
        (data.size() == 4 && (offset == 0 || offset == 4)) || (data.size() == 8 && offset == 0);
    if (!valid) return;
    dev->write_dma_address(unsigned(offset), data);
}

void FwCfg::write_dma_address(unsigned offset, std::span<const uint8_t> data) {
    if (data.size() == 8 && offset == 0) {
        dma_addr_ = be64(data.data());
        run_dma();
    } else if (data.size() == 4 && offset == 0) {
        dma_addr_ = (dma_addr_ & 0xFFFFFFFFull) | uint64_t(be32(data.data())) << 32;
    } else if (data.size() == 4 && offset == 4) {
        dma_addr_ = (dma_addr_ & ~0xFFFFFFFFull) | be32(data.data());
        run_dma();
    }
}

void FwCfg::run_dma() {
    uint64_t desc_addr = dma_addr_;
    dma_addr_ = 0;
    uint8_t desc[kDmaDescriptorSize];
    uint32_t result;
    if (!mem_.read(desc_addr, desc)) {
        LOG_DEBUG("fw_cfg: DMA descriptor at 0x%llx is not in RAM",
                  static_cast<unsigned long long>(desc_addr));
        result = kDmaError;
        // QEMU writes the error word at the descriptor's address anyway; GuestMemory refuses it
        // if that is outside RAM.
    } else {
        result = dma_transfer(be32(desc), be32(desc + 4), be64(desc + 8));
    }
    uint8_t ctl[4] = {uint8_t(result >> 24), uint8_t(result >> 16), uint8_t(result >> 8),
                      uint8_t(result)};
    if (mem_.write(desc_addr, ctl)) mem_.notify_written(desc_addr, sizeof ctl);
}

uint32_t FwCfg::dma_transfer(uint32_t control, uint32_t length, uint64_t address) {
    if (control & kDmaSelect) select(uint16_t(control >> 16));
    bool read = false, write = false;
    if (control & kDmaRead)
        read = true;
    else if (control & kDmaWrite)
        write = true;
    else if (!(control & kDmaSkip))
        length = 0;
    // A buffer that wraps the 64-bit address space is refused before anything moves.
    if (length && address + length < address) return kDmaError;

    Item* it = current();
    while (length > 0) {
        uint32_t len;
        if (!it || cur_offset_ >= it->data.size()) {
            // Past the end: reads give zeros, skips succeed, writes fail (fw_cfg_dma_transfer).
            len = length;
            if (read && !mem_.fill(address, 0, len)) return kDmaError;
            if (read) mem_.notify_written(address, len);
            if (write) return kDmaError;
        } else {
            uint64_t avail = it->data.size() - cur_offset_;
            len = uint32_t(std::min<uint64_t>(length, avail));
            if (read) {
                std::span<const uint8_t> src(it->data.data() + cur_offset_, len);
                if (!mem_.write(address, src)) return kDmaError;
                mem_.notify_written(address, len);
            }
            if (write) {
                // Only writable items, and never past the item's end.
                if (!it->writable || len != length) return kDmaError;
                std::span<uint8_t> dst(it->data.data() + cur_offset_, len);
                if (!mem_.read(address, dst)) return kDmaError;
                if (it->on_write) it->on_write(cur_offset_, len);
            }
            cur_offset_ += len;
        }
        address += len;
        length -= len;
    }
    return 0;
}

void FwCfg::reset(ResetKind) {
    dma_addr_ = 0;
    select(kSignature); // QEMU fw_cfg_reset
}

void FwCfg::save(StateWriter& out) const {
    out.begin("fw_cfg", kSectionVersion);
    out.put(cur_key_);
    out.put(cur_offset_);
    out.put(dma_addr_);
    // Guest-written content of writable files (the rest is rebuilt from the configuration).
    uint32_t n = 0;
    for (const auto& f : files_) n += f.item.writable ? 1 : 0;
    out.put(n);
    for (const auto& f : files_) {
        if (!f.item.writable) continue;
        out.put(uint32_t(f.name.size()));
        out.put_bytes(std::span(reinterpret_cast<const uint8_t*>(f.name.data()), f.name.size()));
        out.put(uint32_t(f.item.data.size()));
        out.put_bytes(f.item.data);
    }
}

void FwCfg::load(StateReader& in) {
    in.begin("fw_cfg", kSectionVersion, kSectionVersion);
    uint16_t key = in.get<uint16_t>();
    uint32_t offset = in.get<uint32_t>();
    uint64_t dma = in.get<uint64_t>();
    uint32_t n = in.get<uint32_t>();
    if (n > files_.size()) throw StateError("fw_cfg: too many writable files in state");
    std::vector<std::pair<File*, std::vector<uint8_t>>> writes;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = in.get<uint32_t>();
        if (len == 0 || len > kMaxNameLength) throw StateError("fw_cfg: bad file name in state");
        std::string name(len, '\0');
        in.get_bytes(std::span(reinterpret_cast<uint8_t*>(name.data()), len));
        File* f = file_by_name(name);
        uint32_t size = in.get<uint32_t>();
        if (!f || !f->item.writable || size != f->item.data.size())
            throw StateError("fw_cfg: state names a file this machine does not have: " + name);
        std::vector<uint8_t> data(size);
        in.get_bytes(data);
        writes.emplace_back(f, std::move(data));
    }
    if (key != kInvalid) {
        if (key & kWriteChannel || (key & kEntryMask) >= kFileFirst + file_slots_)
            throw StateError("fw_cfg: bad selector in state");
        Item* it = item_for_key(key);
        if (offset > (it ? it->data.size() : 0)) throw StateError("fw_cfg: offset past item");
    } else if (offset != 0) {
        throw StateError("fw_cfg: offset without a selected item");
    }
    // Everything validated: commit.
    for (auto& [f, data] : writes) f->item.data = std::move(data);
    cur_key_ = key;
    cur_offset_ = offset;
    dma_addr_ = dma;
}

} // namespace hvm
