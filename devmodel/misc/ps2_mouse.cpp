#include "devmodel/misc/ps2_mouse.hpp"

namespace hvm {

void Ps2Mouse::reset() {
    clear_queue();
    pending_command_ = 0;
    status_ = resolution_ = sample_rate_ = 0;
    wrap_ = false;
    type_ = detect_state_ = 0;
}

void Ps2Mouse::knock(uint8_t rate) {
    // Microsoft's extension detection: sample rates 200,100,80 select the wheel (ID 3),
    // 200,200,80 the five-button wheel (ID 4).
    switch (detect_state_) {
    case 0: detect_state_ = rate == 200 ? 1 : 0; break;
    case 1: detect_state_ = rate == 100 ? 2 : rate == 200 ? 3 : 0; break;
    case 2:
        if (rate == 80) type_ = 3;
        detect_state_ = 0;
        break;
    default:
        if (rate == 80) type_ = 4;
        detect_state_ = 0;
        break;
    }
}

void Ps2Mouse::write(uint8_t byte) {
    if (pending_command_) {
        uint8_t cmd = pending_command_;
        pending_command_ = 0;
        if (cmd == kCmdSetSampleRate) {
            sample_rate_ = byte;
            knock(byte);
        } else {
            resolution_ = byte;
        }
        queue({kAck});
        return;
    }
    if (wrap_ && byte != kCmdReset) {
        if (byte == kCmdResetWrap) {
            wrap_ = false;
            queue({kAck});
        } else {
            queue({byte}); // echo
        }
        return;
    }
    switch (byte) {
    case kCmdScale11:
        status_ &= uint8_t(~kStatusScale21);
        queue({kAck});
        break;
    case kCmdScale21:
        status_ |= kStatusScale21;
        queue({kAck});
        break;
    case kCmdStream:
        status_ &= uint8_t(~kStatusRemote);
        queue({kAck});
        break;
    case kCmdSetWrap:
        wrap_ = true;
        queue({kAck});
        break;
    case kCmdRemote:
        status_ |= kStatusRemote;
        queue({kAck});
        break;
    case kCmdGetId: queue({kAck, type_}); break;
    case kCmdSetResolution:
    case kCmdSetSampleRate:
        pending_command_ = byte;
        queue({kAck});
        break;
    case kCmdStatus: queue({kAck, status_, resolution_, sample_rate_}); break;
    case kCmdReadData:
        // No motion and no buttons: bit 3 of the first byte is always one.
        if (type_ == 3 || type_ == 4)
            queue({kAck, 0x08, 0, 0, 0});
        else
            queue({kAck, 0x08, 0, 0});
        break;
    case kCmdEnable:
        status_ |= kStatusEnabled;
        queue({kAck});
        break;
    case kCmdDisable:
        status_ &= uint8_t(~kStatusEnabled);
        queue({kAck});
        break;
    case kCmdDefaults:
        sample_rate_ = 100;
        resolution_ = 2;
        status_ = 0;
        queue({kAck});
        break;
    case kCmdReset:
        sample_rate_ = 100;
        resolution_ = 2;
        status_ = 0;
        type_ = 0;
        wrap_ = false;
        clear_queue();
        queue({kAck, 0xAA, type_});
        break;
    default: break; // QEMU answers nothing either
    }
}

void Ps2Mouse::save(StateWriter& out) const {
    out.begin("ps2mouse", 1);
    save_queue(out);
    out.put(pending_command_);
    out.put(status_);
    out.put(resolution_);
    out.put(sample_rate_);
    out.put(uint8_t(wrap_));
    out.put(type_);
    out.put(detect_state_);
}

void Ps2Mouse::load(StateReader& in) {
    in.begin("ps2mouse", 1, 1);
    QueueImage queue = read_queue(in);
    auto pending = in.get<uint8_t>();
    auto status = in.get<uint8_t>();
    auto resolution = in.get<uint8_t>();
    auto rate = in.get<uint8_t>();
    auto wrap = in.get<uint8_t>();
    auto type = in.get<uint8_t>();
    auto detect = in.get<uint8_t>();
    if (pending != 0 && pending != kCmdSetResolution && pending != kCmdSetSampleRate)
        throw StateError("ps2mouse: bad pending command");
    if (status & ~(kStatusRemote | kStatusEnabled | kStatusScale21) || wrap > 1 ||
        (type != 0 && type != 3 && type != 4) || detect > 3)
        throw StateError("ps2mouse: bad state");
    restore_queue(queue);
    pending_command_ = pending;
    status_ = status;
    resolution_ = resolution;
    sample_rate_ = rate;
    wrap_ = wrap;
    type_ = type;
    detect_state_ = detect;
}

} // namespace hvm
