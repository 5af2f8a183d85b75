// What every chip model implements. A chip sees offsets into its own register window, never
// absolute addresses, and never a KVM, SDL or socket type: IRQ outputs, clocks and backends are
// injected (see irq/irq_pin.hpp, base/clock.hpp).
#pragma once
#include <cstdint>
#include <span>

#include "base/state.hpp"

namespace hvm {

// A register window on the PIO or MMIO bus. `data.size()` is always one of the sizes the region
// was registered to implement (the bus splits or widens guest accesses); `offset` is relative to
// the region's base and `offset + data.size()` never exceeds the region's length.
class IoHandler {
  public:
    virtual ~IoHandler() = default;
    virtual void io_read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void io_write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

enum class ResetKind { PowerOn, Hard /* platform reset: KBC 0xFE, 0xCF9, triple fault */ };

// Lifecycle of a device. save()/load() use a versioned section per device; load() must validate
// everything it reads (state files are untrusted) and recompute derived state.
class Device {
  public:
    virtual ~Device() = default;
    virtual const char* name() const = 0;
    virtual void reset(ResetKind kind) = 0;
    virtual void save(StateWriter& out) const = 0;
    virtual void load(StateReader& in) = 0;
};

// Little-endian helpers for register files.
inline uint64_t le_load(std::span<const uint8_t> d) {
    uint64_t v = 0;
    for (size_t i = 0; i < d.size() && i < 8; i++) v |= uint64_t(d[i]) << (8 * i);
    return v;
}
inline void le_store(std::span<uint8_t> d, uint64_t v) {
    for (size_t i = 0; i < d.size(); i++) d[i] = i < 8 ? uint8_t(v >> (8 * i)) : 0;
}

} // namespace hvm
