// National Semiconductor PC16550D UART, as QEMU's `pc` machine presents it (hw/char/serial.c,
// ISA `isa-serial`): eight byte-wide registers (register the window with AccessSizes{1,1}; COM1
// is 0x3F8 / IRQ 4, COM2 0x2F8 / IRQ 3), 16-byte receive FIFO with trigger levels 1/4/8/14,
// character timeout, loop-back, and QEMU's interrupt rules.
//
// Where QEMU and the datasheet differ, hvm does what QEMU does, because guests are tested against
// QEMU:
//  - MCR.OUT2 does not gate the IRQ (on a real PC board OUT2 enables the ISA IRQ driver; QEMU
//    raises the line purely from IIR, and Linux's 8250 autoconfig works with that). MCR resets
//    to OUT2 set, like QEMU.
//  - Enabling IER.ETBEI while THR is empty raises a THRE interrupt again even if it was already
//    acknowledged by reading IIR (Windows and Linux's THRE probe rely on it).
//  - A character-timeout interrupt is masked by IER.ERBFI.
//  - With no modem attached, CTS, DSR and DCD read as asserted and RI as not.
// Where hvm differs from QEMU, it is closer to the hardware and invisible to a working guest:
//  - In loop-back mode the MSR delta bits follow the MCR-driven inputs (real chips do; QEMU
//    reports the looped lines without deltas), and the receiver takes no host input (QEMU still
//    delivers host bytes during loop-back; hvm holds them back in the backend until loop-back
//    ends).
//  - LSR bit 7 (error in RX FIFO) is set while a break character sits in the FIFO (QEMU never
//    sets it).
//  - Reset clears FCR (QEMU's reset keeps the FIFO mode).
// Transmission is immediate: a byte written to THR goes to the backend at once, THRE and TEMT come
// back before the guest's next instruction, and there is no baud-rate throttling (QEMU does the
// same). So the transmit FIFO never holds a byte and "clear TX FIFO" has nothing to clear.
// Reception is flow-controlled: can_receive() tells the backend how many bytes fit (up to the
// trigger level, QEMU's rule, so the guest sees its trigger level honoured), and every RBR read
// tells the backend there is room again.
#pragma once
#include <array>
#include <cstdint>
#include <span>

#include "base/clock.hpp"
#include "chardev/char_backend.hpp"
#include "devmodel/device.hpp"
#include "devmodel/irq/irq_pin.hpp"

namespace hvm {

class Uart16550 : public IoHandler, public Device, public CharFrontend {
  public:
    static constexpr uint64_t kWindowSize = 8;
    static constexpr uint32_t kBaudBase = 115200; // 1.8432 MHz crystal / 16
    static constexpr unsigned kFifoSize = 16;

    // Register offsets (datasheet names; DLL/DLM replace RBR/THR and IER while LCR.DLAB is set).
    static constexpr unsigned kRbrThr = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5,
                              kMsr = 6, kScr = 7;

    static constexpr uint8_t kIerRda = 0x01, kIerThre = 0x02, kIerRls = 0x04, kIerMs = 0x08;
    static constexpr uint8_t kIirNoInt = 0x01, kIirMs = 0x00, kIirThre = 0x02, kIirRda = 0x04,
                             kIirRls = 0x06, kIirCti = 0x0C, kIirFifoEnabled = 0xC0;
    static constexpr uint8_t kFcrEnable = 0x01, kFcrClearRx = 0x02, kFcrClearTx = 0x04,
                             kFcrDmaMode = 0x08, kFcrTriggerMask = 0xC0;
    static constexpr uint8_t kLcrDlab = 0x80, kLcrBreak = 0x40, kLcrParity = 0x08,
                             kLcrTwoStop = 0x04, kLcrWordLength = 0x03;
    static constexpr uint8_t kMcrDtr = 0x01, kMcrRts = 0x02, kMcrOut1 = 0x04, kMcrOut2 = 0x08,
                             kMcrLoop = 0x10;
    static constexpr uint8_t kLsrDr = 0x01, kLsrOe = 0x02, kLsrPe = 0x04, kLsrFe = 0x08,
                             kLsrBi = 0x10, kLsrThre = 0x20, kLsrTemt = 0x40, kLsrFifoError = 0x80;
    static constexpr uint8_t kMsrDcts = 0x01, kMsrDdsr = 0x02, kMsrTeri = 0x04, kMsrDdcd = 0x08,
                             kMsrCts = 0x10, kMsrDsr = 0x20, kMsrRi = 0x40, kMsrDcd = 0x80;

    // `backend` may be null (output discarded, no input); otherwise the UART attaches itself to
    // it here (taking the device lock: construct outside it) and detaches in the destructor.
    Uart16550(Clock& clock, IrqPin irq, CharBackend* backend);
    ~Uart16550() override;
    Uart16550(const Uart16550&) = delete;
    Uart16550& operator=(const Uart16550&) = delete;

    // IoHandler: byte accesses at offsets 0..7.
    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    // Device
    const char* name() const override { return "uart16550"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

    // CharFrontend (backend side, device lock held)
    size_t can_receive() override;
    void receive(std::span<const uint8_t> bytes) override;
    void receive_break() override;

    // One register access, as the guest makes it.
    uint8_t read_register(unsigned reg);
    void write_register(unsigned reg, uint8_t value);

    bool irq_level() const { return irq_level_; }
    // One character's time on the wire at the programmed divisor and frame format.
    uint64_t char_time_ns() const { return char_time_for(lcr_, divisor_); }
    unsigned rx_trigger_level() const;

  private:
    uint8_t read_rbr();
    void write_thr(uint8_t value);
    void write_ier(uint8_t value);
    void write_fcr(uint8_t value);
    void write_mcr(uint8_t value);
    uint8_t read_lsr();
    uint8_t read_msr();

    void receive_byte(uint8_t value, bool is_break);
    void transmit(uint8_t value);
    void update_irq();
    void drive_irq(bool level, bool force);
    uint8_t modem_inputs() const { return modem_inputs_for(mcr_); }
    static uint8_t modem_inputs_for(uint8_t mcr);
    static uint64_t char_time_for(uint8_t lcr, uint16_t divisor);
    void update_modem_status();
    void arm_char_timeout();
    void on_char_timeout();
    void notify_room();
    bool fifo_enabled() const { return fcr_ & kFcrEnable; }

    void rx_clear();
    void rx_push(uint8_t value, bool is_break);
    uint8_t rx_pop();
    bool rx_has_break() const;

    Clock& clock_;
    IrqPin irq_;
    CharBackend* backend_;
    Timer timeout_timer_;

    uint16_t divisor_ = 0x0C;
    uint8_t rbr_ = 0; // non-FIFO receive buffer (kept after reading, like the chip)
    uint8_t ier_ = 0, iir_ = kIirNoInt, fcr_ = 0, lcr_ = 0, mcr_ = kMcrOut2;
    uint8_t lsr_ = kLsrThre | kLsrTemt, msr_ = kMsrDcd | kMsrDsr | kMsrCts, scr_ = 0;
    bool thr_pending_ = false;     // THRE interrupt armed (QEMU's thr_ipending)
    bool timeout_pending_ = false; // character timeout indication
    bool irq_level_ = false;

    std::array<uint8_t, kFifoSize> rx_data_{};
    std::array<bool, kFifoSize> rx_break_{};
    unsigned rx_head_ = 0, rx_count_ = 0;
};

} // namespace hvm
