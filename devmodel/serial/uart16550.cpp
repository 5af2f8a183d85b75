#include "devmodel/serial/uart16550.hpp"

#include <algorithm>

namespace hvm {

namespace {

constexpr uint8_t kLsrIntAny = Uart16550::kLsrOe | Uart16550::kLsrPe | Uart16550::kLsrFe |
                               Uart16550::kLsrBi; // sources of the line-status interrupt
constexpr uint8_t kMsrAnyDelta = 0x0F;
constexpr uint64_t kNsPerSecond = 1000000000ull;
// QEMU: "Zero divisor should give about 3500 baud".
constexpr uint64_t kZeroDivisorBaud = 3500;
constexpr uint32_t kStateVersion = 1;

} // namespace

Uart16550::Uart16550(Clock& clock, IrqPin irq, CharBackend* backend)
    : clock_(clock), irq_(irq), backend_(backend),
      timeout_timer_(clock, [this] { on_char_timeout(); }) {
    if (backend_) backend_->attach(this);
}

Uart16550::~Uart16550() {
    if (backend_) backend_->attach(nullptr);
}

// ---- register interface ---------------------------------------------------------------------

void Uart16550::io_read(uint64_t offset, std::span<uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++)
        data[i] = offset + i < kWindowSize ? read_register(unsigned(offset + i)) : 0xFF;
}

void Uart16550::io_write(uint64_t offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++)
        if (offset + i < kWindowSize) write_register(unsigned(offset + i), data[i]);
}

uint8_t Uart16550::read_register(unsigned reg) {
    switch (reg & 7) {
    case kRbrThr: return (lcr_ & kLcrDlab) ? uint8_t(divisor_) : read_rbr();
    case kIer: return (lcr_ & kLcrDlab) ? uint8_t(divisor_ >> 8) : ier_;
    case kIirFcr: {
        uint8_t value = iir_;
        // Reading IIR while it reports THRE acknowledges that interrupt (datasheet table 5).
        if ((value & 0x0F) == kIirThre) {
            thr_pending_ = false;
            update_irq();
        }
        return value;
    }
    case kLcr: return lcr_;
    case kMcr: return mcr_;
    case kLsr: return read_lsr();
    case kMsr: return read_msr();
    default: return scr_;
    }
}

void Uart16550::write_register(unsigned reg, uint8_t value) {
    switch (reg & 7) {
    case kRbrThr:
        if (lcr_ & kLcrDlab)
            divisor_ = uint16_t((divisor_ & 0xFF00) | value);
        else
            write_thr(value);
        break;
    case kIer:
        if (lcr_ & kLcrDlab)
            divisor_ = uint16_t((divisor_ & 0x00FF) | (value << 8));
        else
            write_ier(value);
        break;
    case kIirFcr: write_fcr(value); break;
    case kLcr: lcr_ = value; break; // word length, stop bits, parity: only the timing uses them
    case kMcr: write_mcr(value); break;
    case kLsr: break; // factory test register on the chip; QEMU ignores writes too
    case kMsr: break;
    default: scr_ = value; break;
    }
}

uint8_t Uart16550::read_rbr() {
    uint8_t value;
    if (fifo_enabled()) {
        value = rx_count_ ? rx_pop() : 0;
        if (rx_count_ == 0) {
            lsr_ &= uint8_t(~(kLsrDr | kLsrBi));
            timeout_timer_.cancel();
        } else {
            // Datasheet 8.6.3: the timeout counter restarts whenever the CPU reads the FIFO.
            arm_char_timeout();
        }
        timeout_pending_ = false;
    } else {
        value = rbr_;
        lsr_ &= uint8_t(~(kLsrDr | kLsrBi));
    }
    update_irq();
    notify_room();
    return value;
}

void Uart16550::write_thr(uint8_t value) {
    thr_pending_ = false;
    lsr_ &= uint8_t(~(kLsrThre | kLsrTemt));
    update_irq();
    transmit(value);
    // The byte left at once: THR is empty again, which re-arms the THRE interrupt. Dropping and
    // raising the line around the write gives an edge-triggered PIC one interrupt per byte.
    lsr_ |= kLsrThre;
    thr_pending_ = true;
    update_irq();
    lsr_ |= kLsrTemt;
}

void Uart16550::write_ier(uint8_t value) {
    uint8_t changed = (ier_ ^ value) & 0x0F;
    ier_ = value & 0x0F;
    // QEMU: turning ETBEI on samples LSR.THRE again, so the THRE interrupt fires even if it was
    // acknowledged before. Linux's serial8250 THRE test toggles IER exactly like this.
    if (changed & kIerThre) thr_pending_ = (ier_ & kIerThre) && (lsr_ & kLsrThre);
    if (changed) update_irq();
}

void Uart16550::write_fcr(uint8_t value) {
    // Switching the FIFOs on or off clears them (datasheet 8.5, FCR0).
    if ((value ^ fcr_) & kFcrEnable) value |= kFcrClearRx | kFcrClearTx;
    if (value & kFcrClearRx) {
        lsr_ &= uint8_t(~(kLsrDr | kLsrBi | kLsrFifoError));
        timeout_timer_.cancel();
        timeout_pending_ = false;
        rx_clear();
    }
    if (value & kFcrClearTx) {
        // Nothing is ever waiting to be sent (see the header); THR is empty.
        lsr_ |= kLsrThre;
        thr_pending_ = true;
    }
    fcr_ = value & (kFcrTriggerMask | kFcrDmaMode | kFcrEnable); // the bits that stick
    update_irq();
    if (value & kFcrClearRx) notify_room();
}

void Uart16550::write_mcr(uint8_t value) {
    bool was_loop = mcr_ & kMcrLoop;
    mcr_ = value & 0x1F;
    update_modem_status();
    if (was_loop && !(mcr_ & kMcrLoop)) notify_room(); // host input may flow again
}

uint8_t Uart16550::read_lsr() {
    uint8_t value = lsr_;
    // Reading LSR clears the error bits (datasheet 8.4); the FIFO error bit only once no errored
    // character is left in the FIFO.
    bool changed = lsr_ & (kLsrBi | kLsrOe);
    lsr_ &= uint8_t(~(kLsrBi | kLsrOe));
    if ((lsr_ & kLsrFifoError) && !rx_has_break()) lsr_ &= uint8_t(~kLsrFifoError);
    if (changed) update_irq();
    return value;
}

uint8_t Uart16550::read_msr() {
    uint8_t value = msr_;
    if (msr_ & kMsrAnyDelta) {
        msr_ &= 0xF0;
        update_irq();
    }
    return value;
}

// ---- modem lines ----------------------------------------------------------------------------

uint8_t Uart16550::modem_inputs_for(uint8_t mcr) {
    if (mcr & kMcrLoop) {
        // Loop-back (datasheet 8.7): DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
        return uint8_t(((mcr & kMcrDtr) ? kMsrDsr : 0) | ((mcr & kMcrRts) ? kMsrCts : 0) |
                       ((mcr & kMcrOut1) ? kMsrRi : 0) | ((mcr & kMcrOut2) ? kMsrDcd : 0));
    }
    // No modem behind any backend: a connected, ready line, as QEMU reports it.
    return kMsrDcd | kMsrDsr | kMsrCts;
}

void Uart16550::update_modem_status() {
    uint8_t before = msr_ & 0xF0, now = modem_inputs();
    uint8_t delta = 0;
    if ((before ^ now) & kMsrCts) delta |= kMsrDcts;
    if ((before ^ now) & kMsrDsr) delta |= kMsrDdsr;
    if ((before ^ now) & kMsrDcd) delta |= kMsrDdcd;
    if ((before & kMsrRi) && !(now & kMsrRi)) delta |= kMsrTeri; // trailing edge only
    msr_ = uint8_t(now | (msr_ & kMsrAnyDelta) | delta);
    if (delta) update_irq();
}

// ---- receive / transmit ---------------------------------------------------------------------

size_t Uart16550::can_receive() {
    if (mcr_ & kMcrLoop) return 0; // the serial input is disconnected in loop-back
    if (fifo_enabled()) {
        // QEMU's rule: offer only up to the trigger level, or a burst would always fill the FIFO
        // before the guest could react and override the level it chose.
        unsigned level = rx_trigger_level();
        return rx_count_ < level ? level - rx_count_ : 0;
    }
    return (lsr_ & kLsrDr) ? 0 : 1;
}

void Uart16550::receive(std::span<const uint8_t> bytes) {
    if (bytes.empty()) return;
    for (uint8_t b : bytes) receive_byte(b, false);
    update_irq();
}

void Uart16550::receive_break() {
    // A break arrives as a NUL character with LSR.BI (datasheet 8.4, LSR4).
    receive_byte(0, true);
    update_irq();
}

void Uart16550::receive_byte(uint8_t value, bool is_break) {
    if (fifo_enabled()) {
        // An overrun keeps the FIFO's contents; the new character is lost (datasheet LSR1).
        if (rx_count_ < kFifoSize)
            rx_push(value, is_break);
        else
            lsr_ |= kLsrOe;
        lsr_ |= kLsrDr;
        if (is_break) lsr_ |= kLsrBi | kLsrFifoError;
        arm_char_timeout();
    } else {
        // Without FIFO the new character overwrites the unread one.
        if (lsr_ & kLsrDr) lsr_ |= kLsrOe;
        rbr_ = value;
        lsr_ |= kLsrDr;
        if (is_break) lsr_ |= kLsrBi;
    }
}

void Uart16550::transmit(uint8_t value) {
    if (mcr_ & kMcrLoop) {
        // Loop-back: the transmitter feeds the receiver and nothing reaches the line.
        receive_byte(value, false);
        return;
    }
    if (backend_) backend_->write(std::span<const uint8_t>(&value, 1));
}

void Uart16550::notify_room() {
    if (backend_ && !(mcr_ & kMcrLoop) && can_receive() > 0) backend_->accept_input();
}

// ---- interrupts and timing ------------------------------------------------------------------

void Uart16550::update_irq() {
    // Priority order of datasheet table 4 (QEMU's serial_update_irq).
    uint8_t id = kIirNoInt;
    if ((ier_ & kIerRls) && (lsr_ & kLsrIntAny)) {
        id = kIirRls;
    } else if ((ier_ & kIerRda) && timeout_pending_) {
        id = kIirCti;
    } else if ((ier_ & kIerRda) && (lsr_ & kLsrDr) &&
               (!fifo_enabled() || rx_count_ >= rx_trigger_level())) {
        id = kIirRda;
    } else if ((ier_ & kIerThre) && thr_pending_) {
        id = kIirThre;
    } else if ((ier_ & kIerMs) && (msr_ & kMsrAnyDelta)) {
        id = kIirMs;
    }
    iir_ = uint8_t(id | (fifo_enabled() ? kIirFifoEnabled : 0));
    drive_irq(id != kIirNoInt, false);
}

void Uart16550::drive_irq(bool level, bool force) {
    if (level == irq_level_ && !force) return;
    irq_level_ = level;
    irq_.set(level);
}

unsigned Uart16550::rx_trigger_level() const {
    static constexpr unsigned kLevels[4] = {1, 4, 8, 14};
    return kLevels[(fcr_ & kFcrTriggerMask) >> 6];
}

uint64_t Uart16550::char_time_for(uint8_t lcr, uint16_t divisor) {
    // Start bit, 5-8 data bits, optional parity, 1 or 2 stop bits.
    unsigned bits = 1 + 5 + (lcr & kLcrWordLength) + ((lcr & kLcrTwoStop) ? 2 : 1) +
                    ((lcr & kLcrParity) ? 1 : 0);
    if (divisor == 0) return bits * kNsPerSecond / kZeroDivisorBaud;
    return uint64_t(bits) * kNsPerSecond * divisor / kBaudBase;
}

void Uart16550::arm_char_timeout() {
    // Datasheet 8.6.3: characters in the FIFO and none read or received for four character
    // times raise the timeout indication.
    timeout_timer_.arm(clock_.now_ns() + 4 * char_time_ns());
}

void Uart16550::on_char_timeout() {
    if (fifo_enabled() && rx_count_ > 0) {
        timeout_pending_ = true;
        update_irq();
    }
}

// ---- receive FIFO ---------------------------------------------------------------------------

void Uart16550::rx_clear() {
    rx_head_ = rx_count_ = 0;
    rx_break_.fill(false);
}

void Uart16550::rx_push(uint8_t value, bool is_break) {
    unsigned slot = (rx_head_ + rx_count_) % kFifoSize;
    rx_data_[slot] = value;
    rx_break_[slot] = is_break;
    rx_count_++;
}

uint8_t Uart16550::rx_pop() {
    uint8_t value = rx_data_[rx_head_];
    rx_break_[rx_head_] = false;
    rx_head_ = (rx_head_ + 1) % kFifoSize;
    rx_count_--;
    return value;
}

bool Uart16550::rx_has_break() const {
    for (unsigned i = 0; i < rx_count_; i++)
        if (rx_break_[(rx_head_ + i) % kFifoSize]) return true;
    return false;
}

// ---- lifecycle ------------------------------------------------------------------------------

void Uart16550::reset(ResetKind) {
    // QEMU's serial_reset: 9600 baud 8N1, OUT2 set, transmitter empty, a ready modem.
    divisor_ = 0x0C;
    rbr_ = 0;
    ier_ = 0;
    fcr_ = 0;
    lcr_ = 0;
    mcr_ = kMcrOut2;
    lsr_ = kLsrThre | kLsrTemt;
    msr_ = modem_inputs();
    scr_ = 0;
    thr_pending_ = timeout_pending_ = false;
    timeout_timer_.cancel();
    rx_clear();
    iir_ = kIirNoInt;
    drive_irq(false, true);
    notify_room();
}

void Uart16550::save(StateWriter& out) const {
    out.begin("uart16550", kStateVersion);
    out.put(divisor_);
    out.put(rbr_);
    out.put(ier_);
    out.put(fcr_);
    out.put(lcr_);
    out.put(mcr_);
    out.put(lsr_);
    out.put(msr_);
    out.put(scr_);
    out.put(uint8_t(thr_pending_));
    out.put(uint8_t(timeout_pending_));
    // The FIFO in order, oldest first.
    std::array<uint8_t, kFifoSize> data{};
    uint16_t breaks = 0;
    for (unsigned i = 0; i < rx_count_; i++) {
        unsigned slot = (rx_head_ + i) % kFifoSize;
        data[i] = rx_data_[slot];
        if (rx_break_[slot]) breaks |= uint16_t(1u << i);
    }
    out.put(uint8_t(rx_count_));
    out.put(data);
    out.put(breaks);
    uint64_t now = clock_.now_ns();
    uint64_t remaining = 0;
    if (timeout_timer_.armed())
        remaining = timeout_timer_.deadline() > now ? timeout_timer_.deadline() - now : 0;
    out.put(uint8_t(timeout_timer_.armed()));
    out.put(remaining);
}

void Uart16550::load(StateReader& in) {
    in.begin("uart16550", 1, kStateVersion);
    auto divisor = in.get<uint16_t>();
    auto rbr = in.get<uint8_t>();
    auto ier = in.get<uint8_t>();
    auto fcr = in.get<uint8_t>();
    auto lcr = in.get<uint8_t>();
    auto mcr = in.get<uint8_t>();
    auto lsr = in.get<uint8_t>();
    auto msr = in.get<uint8_t>();
    auto scr = in.get<uint8_t>();
    auto thr_pending = in.get<uint8_t>();
    auto timeout_pending = in.get<uint8_t>();
    auto count = in.get<uint8_t>();
    auto data = in.get<std::array<uint8_t, kFifoSize>>();
    auto breaks = in.get<uint16_t>();
    auto timer_armed = in.get<uint8_t>();
    auto remaining = in.get<uint64_t>();

    // Everything below is untrusted: check every invariant the register model relies on.
    bool fifo = fcr & kFcrEnable;
    if (ier & 0xF0) throw StateError("uart16550: bad IER");
    if (fcr & ~(kFcrTriggerMask | kFcrDmaMode | kFcrEnable)) throw StateError("uart16550: bad FCR");
    if (mcr & 0xE0) throw StateError("uart16550: bad MCR");
    if (thr_pending > 1 || timeout_pending > 1 || timer_armed > 1)
        throw StateError("uart16550: bad flag");
    if (count > kFifoSize || (!fifo && count != 0)) throw StateError("uart16550: bad FIFO count");
    if (count < kFifoSize && (breaks >> count) != 0)
        throw StateError("uart16550: break flag outside the FIFO");
    if ((lsr & (kLsrThre | kLsrTemt)) != (kLsrThre | kLsrTemt))
        throw StateError("uart16550: transmitter not empty"); // never true in this model
    if (lsr & (kLsrPe | kLsrFe)) throw StateError("uart16550: impossible LSR error bits");
    if (fifo && bool(lsr & kLsrDr) != (count > 0))
        throw StateError("uart16550: LSR.DR disagrees with the FIFO");
    if (!fifo && (timeout_pending || timer_armed))
        throw StateError("uart16550: character timeout without FIFO");
    if (timer_armed && count == 0) throw StateError("uart16550: timeout armed on an empty FIFO");
    if ((msr & 0xF0) != modem_inputs_for(mcr))
        throw StateError("uart16550: MSR disagrees with MCR");
    if (remaining > 4 * char_time_for(lcr, divisor))
        throw StateError("uart16550: timeout beyond 4 characters");

    divisor_ = divisor;
    rbr_ = rbr;
    ier_ = ier;
    fcr_ = fcr;
    lcr_ = lcr;
    mcr_ = mcr;
    scr_ = scr;
    lsr_ = lsr;
    msr_ = msr;
    thr_pending_ = thr_pending;
    timeout_pending_ = timeout_pending;
    rx_clear();
    for (unsigned i = 0; i < count; i++) rx_push(data[i], (breaks >> i) & 1);
    if (timer_armed)
        timeout_timer_.arm(clock_.now_ns() + remaining);
    else
        timeout_timer_.cancel();
    update_irq(); // IIR is derived state
    drive_irq(irq_level_, true);
    notify_room();
}

} // namespace hvm
