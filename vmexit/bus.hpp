// A strict address bus for port I/O or MMIO (QEMU MemoryRegionOps semantics, Firecracker's
// BusRange strictness):
//  - registering a zero-length, overflowing or overlapping range throws;
//  - each region says which access sizes its handler implements; wider guest accesses are split,
//    narrower ones widened, so a handler never sees a size it did not ask for;
//  - reads nobody claims return all-ones, writes nobody claims are dropped, both logged at debug
//    level and rate-limited;
//  - a handler is never re-entered through the bus while it runs (CVE-2023-0330 class).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/log.hpp"
#include "devmodel/device.hpp"

namespace hvm {

struct AccessSizes {
    uint8_t min = 1; // power of two, 1..8
    uint8_t max = 4; // power of two, min..8
};

class Bus {
  public:
    explicit Bus(std::string name) : name_(std::move(name)) {}
    Bus(const Bus&) = delete;
    Bus& operator=(const Bus&) = delete;

    void add(uint64_t base, uint64_t length, IoHandler* handler, AccessSizes sizes,
             std::string name);
    // Removes the region registered at exactly `base` (a BAR moving); returns false if none.
    bool remove(uint64_t base);
    // Moves a region (PCI BAR reprogramming); throws like add() on overlap.
    void move(uint64_t old_base, uint64_t new_base);

    // One guest access of data.size() bytes (1, 2, 4 or 8) at `addr`.
    void read(uint64_t addr, std::span<uint8_t> data);
    void write(uint64_t addr, std::span<const uint8_t> data);

    struct Region {
        uint64_t base, length;
        IoHandler* handler;
        AccessSizes sizes;
        std::string name;
    };
    const Region* find(uint64_t addr);
    uint64_t unclaimed_count() const { return unclaimed_.count(); }

  private:
    void access(uint64_t addr, uint8_t* data, unsigned size, bool is_write);
    void region_access(IoHandler* h, AccessSizes sizes, uint64_t length, uint64_t off,
                       uint8_t* data, unsigned size, bool is_write);
    std::string name_;
    std::vector<Region> regions_; // sorted by base, non-overlapping
    RateLimiter unclaimed_;
    std::vector<IoHandler*> active_; // handlers currently running (re-entrancy guard)
};

} // namespace hvm
