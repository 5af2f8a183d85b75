#include "devmodel/misc/ps2_keyboard.hpp"

namespace hvm {

void Ps2Keyboard::reset() {
    clear_queue();
    pending_command_ = 0;
    scanning_ = true;
    translate_ = false;
    scancode_set_ = 2;
    leds_ = 0;
}

void Ps2Keyboard::reset_keyboard() {
    // What the keyboard's own reset commands restore (QEMU's ps2_reset_keyboard).
    clear_queue();
    scanning_ = true;
    scancode_set_ = 2;
    leds_ = 0;
}

void Ps2Keyboard::write(uint8_t byte) {
    if (pending_command_) {
        // The argument of ED/F3/F0/FC. Like QEMU, any byte is taken as the argument.
        uint8_t cmd = pending_command_;
        pending_command_ = 0;
        switch (cmd) {
        case kCmdSetLeds:
            leds_ = byte & 0x07;
            queue({kAck});
            break;
        case kCmdScancodeSet:
            if (byte == 0) {
                // Set 1/2/3 as the translated codes the guest sees through the 8042.
                static constexpr uint8_t kTranslated[4] = {0, 0x43, 0x41, 0x3F};
                queue({kAck, translate_ ? kTranslated[scancode_set_] : scancode_set_});
            } else if (byte <= 3) {
                scancode_set_ = byte;
                queue({kAck});
            } else {
                queue({kResend});
            }
            break;
        default: queue({kAck}); break; // typematic rate, make/break mode: accepted, no effect
        }
        return;
    }
    switch (byte) {
    case 0x00:
    case kCmdAllTypematic: queue({kAck}); break;
    case kCmdIdentify: queue({kAck, 0xAB, uint8_t(translate_ ? 0x41 : 0x83)}); break;
    case kCmdEcho: queue({kCmdEcho}); break;
    case kCmdEnable:
        scanning_ = true;
        queue({kAck});
        break;
    case kCmdSetLeds:
    case kCmdTypematic:
    case kCmdScancodeSet:
    case kCmdMakeBreak:
        pending_command_ = byte;
        queue({kAck});
        break;
    case kCmdResetDisable:
        reset_keyboard();
        scanning_ = false;
        queue({kAck});
        break;
    case kCmdResetEnable:
        reset_keyboard();
        queue({kAck});
        break;
    case kCmdReset:
        reset_keyboard();
        queue({kAck, kSelfTestPassed});
        break;
    default: queue({kResend}); break; // 05 and unknown commands
    }
}

void Ps2Keyboard::save(StateWriter& out) const {
    out.begin("ps2kbd", 1);
    save_queue(out);
    out.put(pending_command_);
    out.put(uint8_t(scanning_));
    out.put(uint8_t(translate_));
    out.put(scancode_set_);
    out.put(leds_);
}

void Ps2Keyboard::load(StateReader& in) {
    in.begin("ps2kbd", 1, 1);
    QueueImage queue = read_queue(in);
    auto pending = in.get<uint8_t>();
    auto scanning = in.get<uint8_t>();
    auto translate = in.get<uint8_t>();
    auto set = in.get<uint8_t>();
    auto leds = in.get<uint8_t>();
    if (pending != 0 && pending != kCmdSetLeds && pending != kCmdTypematic &&
        pending != kCmdScancodeSet && pending != kCmdMakeBreak)
        throw StateError("ps2kbd: bad pending command");
    if (scanning > 1 || translate > 1 || set < 1 || set > 3 || leds > 7)
        throw StateError("ps2kbd: bad state");
    restore_queue(queue);
    pending_command_ = pending;
    scanning_ = scanning;
    translate_ = translate;
    scancode_set_ = set;
    leds_ = leds;
}

} // namespace hvm
