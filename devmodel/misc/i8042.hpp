// Intel 8042 keyboard controller (QEMU hw/input/pckbd.c, "pckbd" with its extended state):
// port 0x60 data, port 0x64 status (read) / command (write), IRQ 1 for the keyboard port and
// IRQ 12 for the aux (mouse) port, and two output-port lines the PC wires to the CPU: A20 gate
// and reset.
//
// One output buffer, one byte: the controller's own answers (command byte, self-test, D2/D3
// loop-backs) come first, then the keyboard's queue, then the mouse's, each only while its port
// is enabled in the command byte. A byte stays presented (STATUS.OBF, and AUX_OBF for the mouse)
// until the guest reads port 0x60; then the next one is presented, so every byte is a new IRQ
// edge. Reading port 0x60 with nothing new returns the last byte again (QEMU: EMM386 needs it).
//
// Controller commands: 20 read / 60 write command byte, A7/A8 aux off/on, A9/AB interface tests
// (00), AA self test (55, sets STATUS.SYS), AD/AE keyboard off/on, C0 input port (80),
// D0 read / D1 write output port (bit 1 A20, bit 0 low = reset), D2/D3 write keyboard/aux output
// buffer, D4 next byte to the mouse, DD/DF A20 off/on, F0-FF pulse output-port bits 3-0 (bit 0
// low = reset: FE is the classic reboot). Others are logged and ignored, as in QEMU.
// Register the two ports separately, each with AccessSizes{1,1}: data_port() at 0x60 and
// command_port() at 0x64 (0x61-0x63 belong to other chips).
#pragma once
#include <cstdint>

#include "base/log.hpp"
#include "devmodel/device.hpp"
#include "devmodel/irq/irq_pin.hpp"
#include "devmodel/misc/ps2_keyboard.hpp"
#include "devmodel/misc/ps2_mouse.hpp"
#include "devmodel/platform.hpp"

namespace hvm {

class I8042 : public Device {
  public:
    static constexpr uint16_t kDataPort = 0x60, kCommandPort = 0x64;

    // Status register
    static constexpr uint8_t kStatOutputFull = 0x01, kStatInputFull = 0x02, kStatSystem = 0x04,
                             kStatCommand = 0x08, kStatUnlocked = 0x10, kStatAuxOutputFull = 0x20;
    // Command byte ("mode")
    static constexpr uint8_t kModeKbdInt = 0x01, kModeAuxInt = 0x02, kModeSystem = 0x04,
                             kModeNoKeylock = 0x08, kModeDisableKbd = 0x10, kModeDisableAux = 0x20,
                             kModeTranslate = 0x40;
    // Output port
    static constexpr uint8_t kOutReset = 0x01, kOutA20 = 0x02, kOutKbdOutputFull = 0x10,
                             kOutAuxOutputFull = 0x20;
    // Controller commands
    static constexpr uint8_t kCmdReadMode = 0x20, kCmdWriteMode = 0x60, kCmdAuxDisable = 0xA7,
                             kCmdAuxEnable = 0xA8, kCmdAuxTest = 0xA9, kCmdSelfTest = 0xAA,
                             kCmdKbdTest = 0xAB, kCmdKbdDisable = 0xAD, kCmdKbdEnable = 0xAE,
                             kCmdReadInputPort = 0xC0, kCmdReadOutputPort = 0xD0,
                             kCmdWriteOutputPort = 0xD1, kCmdWriteKbdBuffer = 0xD2,
                             kCmdWriteAuxBuffer = 0xD3, kCmdWriteAux = 0xD4, kCmdDisableA20 = 0xDD,
                             kCmdEnableA20 = 0xDF, kCmdPulseBase = 0xF0;

    I8042(PlatformControl& platform, IrqPin kbd_irq, IrqPin aux_irq);
    I8042(const I8042&) = delete;
    I8042& operator=(const I8042&) = delete;

    IoHandler& data_port() { return data_; }
    IoHandler& command_port() { return command_; }

    uint8_t read_data();
    void write_data(uint8_t value);
    uint8_t read_status() const { return status_; }
    void write_command(uint8_t value);

    uint8_t command_byte() const { return mode_; }
    uint8_t output_port() const { return outport_; }
    Ps2Keyboard& keyboard() { return keyboard_; }
    Ps2Mouse& mouse() { return mouse_; }

    const char* name() const override { return "i8042"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

  private:
    enum class Source : uint8_t { None, Controller, Keyboard, Aux };

    struct Port : IoHandler {
        I8042& kbc;
        bool command;
        Port(I8042& k, bool is_command) : kbc(k), command(is_command) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;
    };

    void queue_controller(uint8_t value, bool aux);
    void present_next();
    void update_lines();
    void write_output_port(uint8_t value);

    PlatformControl& platform_;
    IrqPin kbd_irq_, aux_irq_;
    Port data_{*this, false}, command_{*this, true};
    Ps2Keyboard keyboard_;
    Ps2Mouse mouse_;

    uint8_t status_ = kStatCommand | kStatUnlocked;
    uint8_t mode_ = kModeKbdInt | kModeAuxInt;
    uint8_t outport_ = 0xCF;    // reset high, A20 on, QEMU's KBD_OUT_ONES
    uint8_t pending_write_ = 0; // a command whose data byte comes through port 0x60
    uint8_t out_data_ = 0;      // the output buffer (kept after it is read)
    Source out_source_ = Source::None;
    // The controller's own answer waiting for the output buffer (QEMU's cbdata).
    bool ctrl_pending_ = false, ctrl_aux_ = false;
    uint8_t ctrl_data_ = 0;
    RateLimiter unknown_log_;
};

} // namespace hvm
