#include "vcpu/guest_memory.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <sys/mman.h>

namespace hvm {

GuestMemory::GuestMemory() {
    publish({});
}

void GuestMemory::publish(std::vector<MemRegion> next) {
    snapshots_.push_back(std::make_unique<const std::vector<MemRegion>>(std::move(next)));
    current_.store(snapshots_.back().get(), std::memory_order_release);
}

GuestMemory::~GuestMemory() {
    for (auto& a : allocs_) munmap(a.p, a.size);
}

uint8_t* GuestMemory::allocate(uint64_t size, const std::string& what) {
    if (size == 0) throw std::invalid_argument("zero-sized allocation for " + what);
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    madvise(p, size, MADV_MERGEABLE);
    allocs_.push_back({p, size});
    return static_cast<uint8_t*>(p);
}

void GuestMemory::add_region(MemRegion r) {
    if (r.size == 0) throw std::invalid_argument("memory region " + r.name + " has zero size");
    if (r.gpa + r.size < r.gpa) throw std::invalid_argument("memory region " + r.name + " wraps");
    std::vector<MemRegion> next = regions();
    for (auto& o : next)
        if (r.gpa < o.end() && o.gpa < r.end())
            throw std::invalid_argument("memory region " + r.name + " overlaps " + o.name);
    auto it = std::lower_bound(next.begin(), next.end(), r.gpa,
                               [](const MemRegion& a, uint64_t g) { return a.gpa < g; });
    next.insert(it, std::move(r));
    publish(std::move(next));
}

bool GuestMemory::remove_region(uint64_t gpa) {
    std::vector<MemRegion> next = regions();
    auto it =
        std::find_if(next.begin(), next.end(), [&](const MemRegion& r) { return r.gpa == gpa; });
    if (it == next.end()) return false;
    next.erase(it);
    publish(std::move(next));
    return true;
}

const MemRegion* GuestMemory::find(uint64_t gpa, uint64_t len) const {
    if (len == 0) len = 1;
    if (gpa + len < gpa) return nullptr;
    // Last region starting at or below gpa.
    const std::vector<MemRegion>& regs = regions();
    auto it = std::upper_bound(regs.begin(), regs.end(), gpa,
                               [](uint64_t g, const MemRegion& a) { return g < a.gpa; });
    if (it == regs.begin()) return nullptr;
    --it;
    if (gpa - it->gpa >= it->size || len > it->size - (gpa - it->gpa)) return nullptr;
    return &*it;
}

bool GuestMemory::read(uint64_t gpa, std::span<uint8_t> out) const {
    if (out.empty()) return true;
    const MemRegion* r = find(gpa, out.size());
    if (!r) return false;
    memcpy(out.data(), r->host + (gpa - r->gpa), out.size());
    return true;
}

bool GuestMemory::write(uint64_t gpa, std::span<const uint8_t> in) {
    if (in.empty()) return true;
    const MemRegion* r = find(gpa, in.size());
    if (!r || r->readonly) return false;
    memcpy(r->host + (gpa - r->gpa), in.data(), in.size());
    notify_written(gpa, in.size());
    return true;
}

bool GuestMemory::fill(uint64_t gpa, uint8_t value, uint64_t len) {
    if (len == 0) return true;
    const MemRegion* r = find(gpa, len);
    if (!r || r->readonly) return false;
    memset(r->host + (gpa - r->gpa), value, len);
    notify_written(gpa, len);
    return true;
}

std::optional<std::span<uint8_t>> GuestMemory::slice(uint64_t gpa, uint64_t len) const {
    const MemRegion* r = find(gpa, len);
    if (!r) return std::nullopt;
    return std::span<uint8_t>(r->host + (gpa - r->gpa), len);
}

PcRamLayout PcRamLayout::for_size(uint64_t ram_size) {
    // i440FX: everything below 3.5 GiB stays low; from 3.5 GiB up, 3 GiB low and the rest
    // above 4 GiB (QEMU pc_init1 with gigabyte_align).
    PcRamLayout l;
    if (ram_size >= 0xe0000000ull) {
        l.below_4g = 0xc0000000ull;
        l.above_4g = ram_size - l.below_4g;
    } else {
        l.below_4g = ram_size;
    }
    return l;
}

} // namespace hvm
