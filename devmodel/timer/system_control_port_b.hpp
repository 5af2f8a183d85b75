// Port 0x61, "System Control Port B" of the AT (PIIX3 calls it the NMI Status and Control
// register), as QEMU's pcspk + i8254 present it:
//   bit 0  counter 2 GATE (R/W)          bit 4  refresh toggle (R)
//   bit 1  speaker data enable (R/W)     bit 5  counter 2 OUT (R)
// Other bits read 0 and are ignored on write (hvm raises no parity/IOCHK NMIs).
// Firmware and OSes calibrate with it: SeaBIOS and Linux gate counter 2 and poll bit 5, old
// BIOS delay loops count bit-4 flips, so neither may be constant. The counter is reached
// through PitChannel2 so that KVM's in-kernel PIT can stand behind it instead of Pit8254.
#pragma once
#include <cstdint>

#include "base/clock.hpp"
#include "devmodel/device.hpp"
#include "devmodel/timer/pit_channel2.hpp"

namespace hvm {

class SystemControlPortB final : public IoHandler, public Device {
  public:
    static constexpr uint64_t kPort = 0x61;
    static constexpr uint64_t kPortCount = 1; // register with AccessSizes{1, 1}
    static constexpr uint8_t kTimer2Gate = 0x01;
    static constexpr uint8_t kSpeakerDataEnable = 0x02;
    static constexpr uint8_t kRefreshToggle = 0x10;
    static constexpr uint8_t kTimer2Out = 0x20;
    // The BIOS programs counter 1 (refresh request) with count 18: one refresh cycle, and one
    // flip of bit 4, every 18 PIT clocks = 15.09 us.
    static constexpr uint64_t kRefreshTicks = 18;

    SystemControlPortB(Clock& clock, PitChannel2& pit) : clock_(clock), pit_(pit) {}

    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    const char* name() const override { return "port61"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

    // For a speaker backend: the speaker sounds counter 2's OUT while this is set.
    bool speaker_data_enabled() const { return speaker_data_enable_; }

  private:
    Clock& clock_;
    PitChannel2& pit_;
    bool speaker_data_enable_ = false;
};

} // namespace hvm
