// Guest-physical memory. Device code reaches guest RAM only through this bounds-checked API:
// every access validates the whole [gpa, gpa+len) against one region, with overflow checks, and
// reports failure instead of touching host memory outside the guest's RAM.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace hvm {

struct MemRegion {
    uint64_t gpa = 0;
    uint64_t size = 0;
    uint8_t* host = nullptr;
    bool readonly = false; // ROM: guest writes are dropped (engines map it read-only)
    std::string name;
    uint64_t end() const { return gpa + size; } // exclusive; regions never wrap (checked on add)
};

// Told about every write that does not come from a vCPU's own stores (device DMA, loaders), so an
// emulator's decoded-code cache can drop stale pages.
class MemoryWriteObserver {
  public:
    virtual ~MemoryWriteObserver() = default;
    virtual void memory_written(uint64_t gpa, uint64_t len) = 0;
};

class GuestMemory {
  public:
    GuestMemory();
    ~GuestMemory();
    GuestMemory(const GuestMemory&) = delete;
    GuestMemory& operator=(const GuestMemory&) = delete;

    // Allocates `size` bytes of anonymous host memory (page aligned) that regions can point into.
    // Returned pointer stays valid for the GuestMemory's lifetime.
    uint8_t* allocate(uint64_t size, const std::string& what);

    // Adds a region; throws std::invalid_argument on zero size, wrap-around or overlap.
    void add_region(MemRegion region);
    // Removes the region starting at `gpa`; false if there is none. After add/remove, call the
    // engine's map_memory() again so the vCPUs see the new layout (PAM, ROM shadowing).
    bool remove_region(uint64_t gpa);
    // The current layout. Readers on other threads (vCPUs, DMA) may race with a remap done under
    // the device lock, so the layout is an immutable snapshot published atomically; snapshots
    // are kept alive for the GuestMemory's lifetime (remaps are rare: firmware PAM changes).
    const std::vector<MemRegion>& regions() const {
        return *current_.load(std::memory_order_acquire);
    }

    // The region containing all of [gpa, gpa+len), or nullptr.
    const MemRegion* find(uint64_t gpa, uint64_t len = 1) const;

    // Bounds-checked copies. Return false (and copy nothing) unless the whole range is inside one
    // region. Writes to a read-only region fail.
    bool read(uint64_t gpa, std::span<uint8_t> out) const;
    bool write(uint64_t gpa, std::span<const uint8_t> in);
    bool fill(uint64_t gpa, uint8_t value, uint64_t len);

    template <typename T>
    requires std::is_trivially_copyable_v<T> std::optional<T> read_obj(uint64_t gpa)
    const {
        T v;
        if (!read(gpa, std::span(reinterpret_cast<uint8_t*>(&v), sizeof v))) return std::nullopt;
        return v;
    }
    template <typename T>
    requires std::is_trivially_copyable_v<T>
    bool write_obj(uint64_t gpa, const T& v) {
        return write(gpa, std::span(reinterpret_cast<const uint8_t*>(&v), sizeof v));
    }

    // A view of [gpa, gpa+len) if it lies inside one writable-or-not region, else empty optional.
    // For loaders and CPU engines; device models prefer read()/write() copies.
    std::optional<std::span<uint8_t>> slice(uint64_t gpa, uint64_t len) const;

    void set_write_observer(MemoryWriteObserver* o) { observer_ = o; }
    void notify_written(uint64_t gpa, uint64_t len) const {
        if (observer_) observer_->memory_written(gpa, len);
    }

  private:
    void publish(std::vector<MemRegion> next);
    std::atomic<const std::vector<MemRegion>*> current_;
    std::vector<std::unique_ptr<const std::vector<MemRegion>>> snapshots_; // sorted by gpa
    struct Alloc {
        void* p;
        uint64_t size;
    };
    std::vector<Alloc> allocs_;
    MemoryWriteObserver* observer_ = nullptr;
};

// The `pc` machine's RAM split (QEMU pc_piix.c): RAM below the PCI hole up to `below_4g`, the rest
// from 4 GiB up.
struct PcRamLayout {
    uint64_t below_4g = 0;
    uint64_t above_4g = 0;
    static PcRamLayout for_size(uint64_t ram_size);
};

} // namespace hvm
