// System Control Port A at 0x92 (PS/2 "fast A20 and reset", QEMU hw/isa/port92.c): bit 1 drives
// the A20 gate, a 0->1 transition of bit 0 resets the machine. Reads return the last value
// written, as in QEMU (not the A20 state the keyboard controller may have set since). Register
// one byte with AccessSizes{1,1}.
#pragma once
#include "devmodel/device.hpp"
#include "devmodel/platform.hpp"

namespace hvm {

class Port92 : public IoHandler, public Device {
  public:
    static constexpr uint16_t kPort = 0x92;
    static constexpr uint8_t kFastReset = 0x01, kA20 = 0x02;

    explicit Port92(PlatformControl& platform) : platform_(platform) {}

    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    const char* name() const override { return "port92"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

    uint8_t value() const { return value_; }

  private:
    PlatformControl& platform_;
    uint8_t value_ = 0;
};

} // namespace hvm
