// PS/2 (MF2 AT) keyboard, command side, answering as QEMU's ps2.c does:
//   FF reset            -> FA AA (scanning on, set 2, LEDs off)
//   F2 identify         -> FA AB 83 (AB 41 while the 8042 translates)
//   EE echo             -> EE
//   F4 enable           -> FA            F5 / F6 reset, scanning off / on -> FA
//   ED leds, F3 rate, F0 scancode set, FC make/break: FA, then FA for the argument;
//     F0 00 reads the set: FA and the set number (43/41/3F while translating)
//   FA, 00              -> FA            05 and anything else -> FE (resend)
// The host key path (scancodes queued from key events) is not here yet: nothing produces keys.
#pragma once
#include "devmodel/misc/ps2_device.hpp"

namespace hvm {

class Ps2Keyboard : public Ps2Device {
  public:
    static constexpr uint8_t kAck = 0xFA, kResend = 0xFE, kSelfTestPassed = 0xAA;
    static constexpr uint8_t kCmdSetLeds = 0xED, kCmdEcho = 0xEE, kCmdScancodeSet = 0xF0,
                             kCmdIdentify = 0xF2, kCmdTypematic = 0xF3, kCmdEnable = 0xF4,
                             kCmdResetDisable = 0xF5, kCmdResetEnable = 0xF6,
                             kCmdAllTypematic = 0xFA, kCmdMakeBreak = 0xFC, kCmdReset = 0xFF;

    Ps2Keyboard() { reset(); }
    void write(uint8_t byte) override;
    void reset() override;

    // The 8042's command byte bit 6: it translates set 2 to set 1, which changes some answers.
    void set_translation(bool on) { translate_ = on; }
    bool scanning_enabled() const { return scanning_; }
    uint8_t scancode_set() const { return scancode_set_; }
    uint8_t leds() const { return leds_; }

    void save(StateWriter& out) const;
    void load(StateReader& in);

  private:
    void reset_keyboard();
    uint8_t pending_command_ = 0; // a command waiting for its argument byte, or 0
    bool scanning_ = true;
    bool translate_ = false;
    uint8_t scancode_set_ = 2;
    uint8_t leds_ = 0;
};

} // namespace hvm
