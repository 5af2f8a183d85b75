// QEMU's isa-debugcon (hw/char/debugcon.c): a one-byte port (0xE9 by default, 0x402 for
// SeaBIOS's log) whose writes go to a character backend; reads return the `readback` property
// (0xE9 by default), which is how software detects the port (Bochs's "port E9 hack"). Wider
// accesses are not valid on the device (QEMU valid.max_access_size = 1): register one byte with
// AccessSizes{1,1}, and the bus hands over only the byte at the port.
#pragma once
#include "chardev/char_backend.hpp"
#include "devmodel/device.hpp"

namespace hvm {

class DebugCon : public IoHandler, public Device {
  public:
    static constexpr uint16_t kDefaultPort = 0xE9;
    static constexpr uint8_t kDefaultReadback = 0xE9;

    // `backend` may be null (output discarded).
    explicit DebugCon(CharBackend* backend, uint8_t readback = kDefaultReadback)
        : backend_(backend), readback_(readback) {}

    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    const char* name() const override { return "isa-debugcon"; }
    void reset(ResetKind) override {}
    // No guest-visible state; the section keeps the snapshot layout checkable.
    void save(StateWriter& out) const override { out.begin("isa-debugcon", 1); }
    void load(StateReader& in) override { in.begin("isa-debugcon", 1, 1); }

  private:
    CharBackend* backend_;
    uint8_t readback_;
};

} // namespace hvm
