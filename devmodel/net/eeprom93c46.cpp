#include "devmodel/net/eeprom93c46.hpp"

namespace hvm {

namespace {
constexpr uint32_t kStateVersion = 1;
constexpr uint8_t kCommandBits = 8; // opcode (2) + address (6) after the start bit
constexpr uint8_t kDataBits = 16;
constexpr uint16_t kSignature8129 = 0x8129;
constexpr uint16_t kRealtekVendor = 0x10EC, kRtl8139Device = 0x8139;
} // namespace

void Eeprom93c46::load_rtl8139_defaults(const std::array<uint8_t, 6>& mac) {
    contents_.fill(0);
    contents_[0] = kSignature8129;
    contents_[1] = kRealtekVendor;
    contents_[2] = kRtl8139Device;
    for (unsigned i = 0; i < 3; i++) contents_[7 + i] = uint16_t(mac[2 * i] | mac[2 * i + 1] << 8);
}

void Eeprom93c46::set_wires(bool cs, bool sk, bool di) {
    bool old_cs = cs_, old_sk = sk_;
    cs_ = cs;
    sk_ = sk;
    di_ = di;
    if (!old_cs && cs) {
        // Rising CS starts a new access: wait for the start bit.
        tick_ = 0;
        input_ = 0;
        output_ = 0;
        mode_ = Mode::AwaitStart;
    }
    if (!cs) return;
    if (!old_sk && sk) clock_edge();
}

void Eeprom93c46::clock_edge() {
    // Only the command and data phases count edges (QEMU counts always; the count is unused
    // elsewhere, and keeping it bounded keeps the saved state checkable).
    if (mode_ == Mode::Command || mode_ == Mode::DataRead) tick_++;
    switch (mode_) {
    case Mode::AwaitStart:
        if (di_) {
            mode_ = Mode::Command;
            tick_ = 0;
            input_ = 0;
        }
        break;
    case Mode::Command:
        input_ = uint16_t(input_ << 1 | (di_ ? 1 : 0));
        if (tick_ == kCommandBits) decode(uint8_t(input_));
        break;
    case Mode::DataRead:
        do_ = (output_ & 0x8000) != 0;
        output_ = uint16_t(output_ << 1);
        if (tick_ == kDataBits) {
            mode_ = Mode::AwaitStart;
            input_ = 0;
            tick_ = 0;
        }
        break;
    case Mode::Idle: break;
    }
}

void Eeprom93c46::decode(uint8_t command) {
    if ((command & kOpMask) == kOpRead) {
        address_ = command & (kWords - 1);
        output_ = contents_[address_];
        do_ = false; // the dummy 0 before the data
        tick_ = 0;
        mode_ = Mode::DataRead;
        return;
    }
    // WRITE, ERASE and the extended opcodes: ignored (read-only, as QEMU).
    mode_ = Mode::Idle;
}

void Eeprom93c46::save(StateWriter& out) const {
    out.begin("eeprom93c46", kStateVersion);
    for (uint16_t w : contents_) out.put(w);
    out.put(uint8_t(mode_));
    out.put(tick_);
    out.put(address_);
    out.put(input_);
    out.put(output_);
    out.put(uint8_t(cs_ | sk_ << 1 | di_ << 2 | do_ << 3));
}

void Eeprom93c46::load(StateReader& in) {
    in.begin("eeprom93c46", kStateVersion, kStateVersion);
    std::array<uint16_t, kWords> contents;
    for (uint16_t& w : contents) w = in.get<uint16_t>();
    uint8_t mode = in.get<uint8_t>(), tick = in.get<uint8_t>(), address = in.get<uint8_t>();
    uint16_t input = in.get<uint16_t>(), output = in.get<uint16_t>();
    uint8_t wires = in.get<uint8_t>();
    if (mode > uint8_t(Mode::DataRead) || tick > kDataBits || address >= kWords || wires > 0xF)
        throw StateError("eeprom93c46: bad state");
    contents_ = contents;
    mode_ = Mode(mode);
    tick_ = tick;
    address_ = address;
    input_ = input;
    output_ = output;
    cs_ = wires & 1;
    sk_ = wires & 2;
    di_ = wires & 4;
    do_ = wires & 8;
}

} // namespace hvm
