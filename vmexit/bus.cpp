#include "vmexit/bus.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace hvm {

namespace {
bool valid_size(unsigned s) {
    return s == 1 || s == 2 || s == 4 || s == 8;
}
} // namespace

void Bus::add(uint64_t base, uint64_t length, IoHandler* handler, AccessSizes sizes,
              std::string name) {
    if (length == 0) throw std::invalid_argument(name_ + ": zero-length region " + name);
    if (base + length < base) throw std::invalid_argument(name_ + ": region " + name + " wraps");
    if (!handler) throw std::invalid_argument(name_ + ": region " + name + " has no handler");
    if (!valid_size(sizes.min) || !valid_size(sizes.max) || sizes.min > sizes.max)
        throw std::invalid_argument(name_ + ": bad access sizes for " + name);
    for (auto& r : regions_)
        if (base < r.base + r.length && r.base < base + length)
            throw std::invalid_argument(name_ + ": region " + name + " overlaps " + r.name);
    Region r{base, length, handler, sizes, std::move(name)};
    auto it = std::lower_bound(regions_.begin(), regions_.end(), base,
                               [](const Region& a, uint64_t b) { return a.base < b; });
    regions_.insert(it, std::move(r));
}

bool Bus::remove(uint64_t base) {
    for (auto it = regions_.begin(); it != regions_.end(); ++it) {
        if (it->base == base) {
            regions_.erase(it);
            return true;
        }
    }
    return false;
}

void Bus::move(uint64_t old_base, uint64_t new_base) {
    auto it = std::find_if(regions_.begin(), regions_.end(),
                           [&](const Region& r) { return r.base == old_base; });
    if (it == regions_.end()) throw std::invalid_argument(name_ + ": no region to move");
    Region r = *it;
    regions_.erase(it);
    try {
        add(new_base, r.length, r.handler, r.sizes, r.name);
    } catch (...) {
        add(r.base, r.length, r.handler, r.sizes, r.name);
        throw;
    }
}

const Bus::Region* Bus::find(uint64_t addr) {
    auto it = std::upper_bound(regions_.begin(), regions_.end(), addr,
                               [](uint64_t a, const Region& r) { return a < r.base; });
    if (it == regions_.begin()) return nullptr;
    --it;
    return addr - it->base < it->length ? &*it : nullptr;
}

void Bus::read(uint64_t addr, std::span<uint8_t> data) {
    access(addr, data.data(), static_cast<unsigned>(data.size()), false);
}

void Bus::write(uint64_t addr, std::span<const uint8_t> data) {
    // The handler only reads from `data` on writes.
    access(addr, const_cast<uint8_t*>(data.data()), static_cast<unsigned>(data.size()), true);
}

void Bus::access(uint64_t addr, uint8_t* data, unsigned size, bool is_write) {
    const Region* r = find(addr);
    bool reentrant = r && std::find(active_.begin(), active_.end(), r->handler) != active_.end();
    if (!r || reentrant) {
        if (!is_write) memset(data, 0xff, size);
        if (unclaimed_.allow())
            LOG_DEBUG("%s: unclaimed %s of %u bytes at 0x%llx%s", name_.c_str(),
                      is_write ? "write" : "read", size, (unsigned long long)addr,
                      r ? " (re-entrant access refused)" : "");
        return;
    }
    // Copy what we need: the handler may move or remove regions (a BAR write) while it runs.
    IoHandler* h = r->handler;
    active_.push_back(h);
    region_access(h, r->sizes, r->length, addr - r->base, data, size, is_write);
    active_.pop_back();
}

// Splits or widens one access into accesses of the sizes the handler implements, QEMU style:
// wider accesses become several naturally sized ones (little-endian order); narrower ones become
// one access of the minimum size at the aligned offset, of which only the wanted bytes are used
// (writes are zero-extended). Bytes beyond the region's end read as all-ones and are not written.
void Bus::region_access(IoHandler* h, AccessSizes sizes, uint64_t length, uint64_t off,
                        uint8_t* data, unsigned size, bool is_write) {
    unsigned unit = std::clamp<unsigned>(size, sizes.min, sizes.max);
    if (unit <= size) {
        for (unsigned done = 0; done < size; done += unit) {
            uint64_t o = off + done;
            if (o >= length || unit > length - o) {
                if (!is_write) memset(data + done, 0xff, size - done);
                break;
            }
            if (is_write)
                h->io_write(o, std::span<const uint8_t>(data + done, unit));
            else
                h->io_read(o, std::span<uint8_t>(data + done, unit));
        }
    } else {
        // Narrower than the handler's minimum: access the aligned unit around it.
        uint64_t aligned = off & ~uint64_t(unit - 1);
        unsigned shift = static_cast<unsigned>(off - aligned);
        uint8_t buf[8];
        if (aligned + unit > length || shift + size > unit) {
            if (!is_write) memset(data, 0xff, size);
        } else if (is_write) {
            memset(buf, 0, sizeof buf);
            memcpy(buf + shift, data, size);
            h->io_write(aligned, std::span<const uint8_t>(buf, unit));
        } else {
            h->io_read(aligned, std::span<uint8_t>(buf, unit));
            memcpy(data, buf + shift, size);
        }
    }
}

} // namespace hvm
