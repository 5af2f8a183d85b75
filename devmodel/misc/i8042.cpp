#include "devmodel/misc/i8042.hpp"

namespace hvm {

namespace {
constexpr uint8_t kResetMode = I8042::kModeKbdInt | I8042::kModeAuxInt;
constexpr uint8_t kResetStatus = I8042::kStatCommand | I8042::kStatUnlocked;
// QEMU: reset line high, A20 on, and bits 2-3 and 6-7 set (KBD_OUT_ONES).
constexpr uint8_t kResetOutport = 0xCF;
} // namespace

I8042::I8042(PlatformControl& platform, IrqPin kbd_irq, IrqPin aux_irq)
    : platform_(platform), kbd_irq_(kbd_irq), aux_irq_(aux_irq) {
    keyboard_.set_data_ready([this] { present_next(); });
    mouse_.set_data_ready([this] { present_next(); });
}

void I8042::Port::io_read(uint64_t, std::span<uint8_t> data) {
    if (data.empty()) return;
    data[0] = command ? kbc.read_status() : kbc.read_data();
    for (size_t i = 1; i < data.size(); i++) data[i] = 0xFF;
}

void I8042::Port::io_write(uint64_t, std::span<const uint8_t> data) {
    if (data.empty()) return;
    if (command)
        kbc.write_command(data[0]);
    else
        kbc.write_data(data[0]);
}

void I8042::update_lines() {
    // QEMU: the keyboard line stays low while the keyboard port is disabled.
    bool kbd = false, aux = false;
    if (status_ & kStatOutputFull) {
        if (status_ & kStatAuxOutputFull)
            aux = mode_ & kModeAuxInt;
        else
            kbd = (mode_ & kModeKbdInt) && !(mode_ & kModeDisableKbd);
    }
    kbd_irq_.set(kbd);
    aux_irq_.set(aux);
}

void I8042::present_next() {
    if (status_ & kStatOutputFull) return; // the presented byte waits for its read
    bool aux;
    if (ctrl_pending_) {
        out_data_ = ctrl_data_;
        aux = ctrl_aux_;
        ctrl_pending_ = false;
        out_source_ = Source::Controller;
    } else if (!(mode_ & kModeDisableKbd) && keyboard_.has_data()) {
        out_data_ = keyboard_.read();
        aux = false;
        out_source_ = Source::Keyboard;
    } else if (!(mode_ & kModeDisableAux) && mouse_.has_data()) {
        out_data_ = mouse_.read();
        aux = true;
        out_source_ = Source::Aux;
    } else {
        return;
    }
    status_ |= kStatOutputFull;
    outport_ |= kOutKbdOutputFull;
    if (aux) {
        status_ |= kStatAuxOutputFull;
        outport_ |= kOutAuxOutputFull;
    }
    update_lines();
}

uint8_t I8042::read_data() {
    uint8_t value = out_data_;
    if (status_ & kStatOutputFull) {
        status_ &= uint8_t(~(kStatOutputFull | kStatAuxOutputFull));
        outport_ &= uint8_t(~(kOutKbdOutputFull | kOutAuxOutputFull));
        out_source_ = Source::None;
        update_lines(); // drop the line, so the next byte is a new edge
        present_next();
    }
    return value;
}

void I8042::queue_controller(uint8_t value, bool aux) {
    // One byte, like the chip's output buffer: a newer answer replaces an unread one.
    ctrl_data_ = value;
    ctrl_aux_ = aux;
    ctrl_pending_ = true;
    present_next();
}

void I8042::write_output_port(uint8_t value) {
    outport_ = value;
    platform_.set_a20(value & kOutA20);
    if (!(value & kOutReset)) platform_.request_reset(); // the CPU's reset line is active low
}

void I8042::write_command(uint8_t value) {
    if ((value & kCmdPulseBase) == kCmdPulseBase) {
        // F0-FF pulse the output-port bits 3-0 whose command bits are 0; only bit 0, the reset
        // line, does anything on a PC (FE is the one every OS uses to reboot).
        if (!(value & kOutReset)) platform_.request_reset();
        return;
    }
    switch (value) {
    case kCmdReadMode: queue_controller(mode_, false); break;
    case kCmdWriteMode:
    case kCmdWriteOutputPort:
    case kCmdWriteKbdBuffer:
    case kCmdWriteAuxBuffer:
    case kCmdWriteAux: pending_write_ = value; break;
    case kCmdAuxDisable: mode_ |= kModeDisableAux; break;
    case kCmdAuxEnable:
        mode_ &= uint8_t(~kModeDisableAux);
        present_next();
        break;
    case kCmdAuxTest:
    case kCmdKbdTest: queue_controller(0x00, false); break; // no clock or data line stuck
    case kCmdSelfTest:
        status_ |= kStatSystem;
        queue_controller(0x55, false);
        break;
    case kCmdKbdDisable: mode_ |= kModeDisableKbd; break;
    case kCmdKbdEnable:
        mode_ &= uint8_t(~kModeDisableKbd);
        present_next();
        break;
    case kCmdReadInputPort: queue_controller(0x80, false); break; // keyboard not inhibited
    case kCmdReadOutputPort: queue_controller(outport_, false); break;
    case kCmdEnableA20:
        platform_.set_a20(true);
        outport_ |= kOutA20;
        break;
    case kCmdDisableA20:
        platform_.set_a20(false);
        outport_ &= uint8_t(~kOutA20);
        break;
    default:
        if (unknown_log_.allow()) LOG_DEBUG("i8042: unsupported command 0x%02x", value);
        break;
    }
}

void I8042::write_data(uint8_t value) {
    uint8_t command = pending_write_;
    pending_write_ = 0;
    switch (command) {
    case 0:
        keyboard_.write(value);
        mode_ &= uint8_t(~kModeDisableKbd); // talking to the keyboard re-enables its port (QEMU)
        present_next();
        break;
    case kCmdWriteMode:
        mode_ = value;
        keyboard_.set_translation(value & kModeTranslate);
        update_lines(); // the interrupt-enable bits act on a byte already presented
        present_next();
        break;
    case kCmdWriteKbdBuffer: queue_controller(value, false); break;
    case kCmdWriteAuxBuffer: queue_controller(value, true); break;
    case kCmdWriteOutputPort: write_output_port(value); break;
    case kCmdWriteAux:
        mouse_.write(value);
        mode_ &= uint8_t(~kModeDisableAux);
        present_next();
        break;
    default: break;
    }
}

void I8042::reset(ResetKind) {
    // A20 itself is the platform's: the machine's reset path restores it with the CPU.
    status_ = kResetStatus;
    mode_ = kResetMode;
    outport_ = kResetOutport;
    pending_write_ = 0;
    out_data_ = 0;
    out_source_ = Source::None;
    ctrl_pending_ = ctrl_aux_ = false;
    ctrl_data_ = 0;
    keyboard_.reset();
    mouse_.reset();
    update_lines();
}

void I8042::save(StateWriter& out) const {
    out.begin("i8042", 1);
    out.put(status_);
    out.put(mode_);
    out.put(outport_);
    out.put(pending_write_);
    out.put(out_data_);
    out.put(uint8_t(out_source_));
    out.put(uint8_t(ctrl_pending_));
    out.put(uint8_t(ctrl_aux_));
    out.put(ctrl_data_);
    keyboard_.save(out);
    mouse_.save(out);
}

void I8042::load(StateReader& in) {
    in.begin("i8042", 1, 1);
    auto status = in.get<uint8_t>();
    auto mode = in.get<uint8_t>();
    auto outport = in.get<uint8_t>();
    auto pending_write = in.get<uint8_t>();
    auto out_data = in.get<uint8_t>();
    auto source = in.get<uint8_t>();
    auto ctrl_pending = in.get<uint8_t>();
    auto ctrl_aux = in.get<uint8_t>();
    auto ctrl_data = in.get<uint8_t>();
    Ps2Keyboard keyboard;
    keyboard.load(in);
    Ps2Mouse mouse;
    mouse.load(in);

    const uint8_t known =
        kStatOutputFull | kStatSystem | kStatCommand | kStatUnlocked | kStatAuxOutputFull;
    bool full = status & kStatOutputFull, aux_full = status & kStatAuxOutputFull;
    if ((status & ~known) || (aux_full && !full)) throw StateError("i8042: bad status");
    if (source > uint8_t(Source::Aux) || full != (source != uint8_t(Source::None)) ||
        (source == uint8_t(Source::Keyboard) && aux_full) ||
        (source == uint8_t(Source::Aux) && !aux_full))
        throw StateError("i8042: output buffer disagrees with the status");
    if (pending_write != 0 && pending_write != kCmdWriteMode &&
        pending_write != kCmdWriteOutputPort && pending_write != kCmdWriteKbdBuffer &&
        pending_write != kCmdWriteAuxBuffer && pending_write != kCmdWriteAux)
        throw StateError("i8042: bad pending command");
    if (ctrl_pending > 1 || ctrl_aux > 1) throw StateError("i8042: bad flag");

    status_ = status;
    mode_ = mode;
    outport_ = outport;
    pending_write_ = pending_write;
    out_data_ = out_data;
    out_source_ = Source(source);
    ctrl_pending_ = ctrl_pending;
    ctrl_aux_ = ctrl_aux;
    ctrl_data_ = ctrl_data;
    keyboard_ = keyboard;
    mouse_ = mouse;
    keyboard_.set_translation(mode_ & kModeTranslate);
    update_lines();
}

} // namespace hvm
