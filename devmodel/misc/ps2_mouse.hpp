// PS/2 mouse on the 8042's aux port, command side, answering as QEMU's ps2.c does (Linux's
// psmouse and Windows' i8042prt probe it at boot whether or not a pointer is ever used):
//   FF reset -> FA AA 00; F6 defaults, F4/F5 enable/disable, E6/E7 scaling, EA/F0 stream/remote,
//   EE/EC wrap mode on/off -> FA; in wrap mode every other byte is echoed
//   F2 get ID -> FA id (0, 3 after the IntelliMouse rate knock 200,100,80, 4 after 200,200,80)
//   E9 status -> FA status resolution rate;  EB read data -> FA and a packet without motion
//   E8 resolution, F3 sample rate: FA, then FA for the argument
//   anything else: no answer (QEMU too)
// The host pointer path is not here yet: nothing produces motion.
#pragma once
#include "devmodel/misc/ps2_device.hpp"

namespace hvm {

class Ps2Mouse : public Ps2Device {
  public:
    static constexpr uint8_t kAck = 0xFA;
    static constexpr uint8_t kCmdScale11 = 0xE6, kCmdScale21 = 0xE7, kCmdSetResolution = 0xE8,
                             kCmdStatus = 0xE9, kCmdStream = 0xEA, kCmdReadData = 0xEB,
                             kCmdResetWrap = 0xEC, kCmdSetWrap = 0xEE, kCmdRemote = 0xF0,
                             kCmdGetId = 0xF2, kCmdSetSampleRate = 0xF3, kCmdEnable = 0xF4,
                             kCmdDisable = 0xF5, kCmdDefaults = 0xF6, kCmdReset = 0xFF;
    static constexpr uint8_t kStatusRemote = 0x40, kStatusEnabled = 0x20, kStatusScale21 = 0x10;

    Ps2Mouse() { reset(); }
    void write(uint8_t byte) override;
    void reset() override;

    uint8_t device_id() const { return type_; }
    uint8_t status() const { return status_; }

    void save(StateWriter& out) const;
    void load(StateReader& in);

  private:
    void knock(uint8_t rate);
    uint8_t pending_command_ = 0;
    uint8_t status_ = 0, resolution_ = 0, sample_rate_ = 0;
    bool wrap_ = false;
    uint8_t type_ = 0;         // 0 PS/2, 3 IntelliMouse, 4 IntelliMouse Explorer
    uint8_t detect_state_ = 0; // progress through the sample-rate knock
};

} // namespace hvm
