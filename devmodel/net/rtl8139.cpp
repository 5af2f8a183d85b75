#include "devmodel/net/rtl8139.hpp"

#include <algorithm>
#include <cstring>

#include "base/error.hpp"
#include "devmodel/net/ethernet.hpp"
#include "devmodel/net/rtl8139_tx_offload.hpp"

namespace hvm {

namespace {
constexpr uint32_t kExtraVersion = 1;

// Bits a register write leaves alone (QEMU's SET_MASKED masks).
constexpr uint8_t kCrKeep = 0xE3;
constexpr uint8_t kCr9346Keep = 0x31;
constexpr uint8_t kCr9346ModeMask = 0xC0, kCr9346Program = 0x80, kCr9346AutoLoad = 0x40,
                  kCr9346ConfigWrite = 0xC0;
constexpr uint8_t kEecs = 0x08, kEesk = 0x04, kEedi = 0x02, kEedo = 0x01;
constexpr uint32_t kTcrKeep = Rtl8139::kTcrHwVersion | 0x8070F80Fu;
constexpr uint32_t kRcrKeep = 0xF0FC0040u;
constexpr uint16_t kIntReserved = 0x1E00; // IMR/ISR bits 12:9 read-only
constexpr uint16_t kMulintKeep = 0xF000;
constexpr uint16_t kCpcrKeep = 0xFF84;
constexpr uint16_t kBmcrKeep = 0xCCFF | 0x3000 | 0x0100; // speed, duplex, ANE are fixed
constexpr uint16_t kBmcrReset = 0x8000;
constexpr uint16_t kBmsrKeep = 0xFF3F;
constexpr uint32_t kTsdClearOnWrite = 0xFF00C000u; // TOK, TUN, NCC, CRS/TABT/OWC
constexpr uint32_t kTsdKeep = 0x00C00000u;
constexpr uint8_t kConfig0Keep = 0xF8, kConfig1Keep = 0x0C, kConfig3Keep = 0x8F,
                  kConfig4Keep = 0x0A, kConfig5Keep = 0x80;
constexpr uint8_t kTppollNormal = 0x40;
constexpr uint32_t kDtccrDump = 0x08;
constexpr uint8_t kMsrBase = 0xD0; // RXPF/TXPF... as QEMU reports; bit 2 = link down
constexpr uint32_t kCplusRxSizeMask = 0x1FFF;
constexpr uint32_t kCplusTxSizeMask = 0xFFFF;
constexpr unsigned kLgsenMssShift = 16;
constexpr uint32_t kLgsenMssMask = 0x7FF;
constexpr uint64_t kTimerWrapNs = Rtl8139::kPciClockPeriodNs << 32; // TCTR wraps every 2^32

uint32_t align4(uint32_t v) {
    return (v + 3) & ~3u;
}

uint32_t rd32(const uint8_t* p) {
    return uint32_t(le_load(std::span(p, 4)));
}

bool is_pow2(uint64_t v) {
    return v && !(v & (v - 1));
}
} // namespace

Rtl8139::Rtl8139(Clock& clock, GuestMemory& memory, NetBackend* backend, Rtl8139Options options)
    : PciDevice(PciIdentity{kVendor, kDevice, kRevision, kClassEthernet, 0,
                            pci::kQemuSubsystemVendor, pci::kQemuSubsystem, 1, 0}),
      clock_(clock), memory_(memory), backend_(backend), options_(std::move(options)),
      timer_(clock, [this] { timer_fired(); }) {
    // QEMU sets the pointer but no capability list bit (and nothing lives at 0xDC).
    set_config_byte(pci::kCapabilitiesPointer, kCapPointer);
    define_bar(0, PciBar{PciBarKind::Io, kRegisterSize, false, &regs_io_, AccessSizes{1, 4},
                         "rtl8139-io"});
    define_bar(1, PciBar{PciBarKind::Memory32, kRegisterSize, false, &regs_io_, AccessSizes{1, 4},
                         "rtl8139-mmio"});
    if (!options_.rom.empty()) {
        uint64_t size = options_.rom_bar_size;
        if (size == 0) {
            size = 0x800;
            while (size < options_.rom.size()) size <<= 1;
        }
        if (!is_pow2(size) || size < 0x800 || size > 0x1000000 || size < options_.rom.size())
            fail("rtl8139: option ROM of " + std::to_string(options_.rom.size()) +
                 " bytes does not fit a ROM BAR of " + std::to_string(size) +
                 " bytes; give a power-of-two size of at least the image size");
        rom_bar_size_ = uint32_t(size);
        define_rom(rom_bar_size_, &rom_io_, "rtl8139-rom");
    }
    tx_buf_.resize(kCplusTxBuffer);
    power_on_state();
}

// ---- Reset -----------------------------------------------------------------------------------

void Rtl8139::power_on_state() {
    // Everything QEMU's zero-initialised device state holds before its first reset.
    mar_.fill(0);
    rcr_ = 0;
    mpc_ = 0;
    cr9346_ = 0;
    config4_ = 0;
    mulint_ = 0;
    etthr_ = 0;
    tx_len_ = 0;
    tx_discard_ = false;
    bmsr_ = kBmsrLink; // the cable is plugged in
    eeprom_ = Eeprom93c46();
    eeprom_.load_rtl8139_defaults(options_.mac);
    soft_reset();
}

void Rtl8139::device_reset(ResetKind kind) {
    // A power-on starts from scratch; a platform reset is QEMU's qdev reset, which is the
    // chip's own reset (registers it does not cover, such as MAR and RCR, survive).
    if (kind == ResetKind::PowerOn)
        power_on_state();
    else
        soft_reset();
}

void Rtl8139::soft_reset() {
    idr_ = options_.mac;
    isr_ = 0;
    imr_ = 0;
    update_irq();
    tsd_.fill(kTsdOwn); // every descriptor belongs to the host
    cur_tx_ = 0;
    cur_cplus_rx_ = 0;
    cur_cplus_tx_ = 0;
    rdsar_lo_ = rdsar_hi_ = 0;
    rbstart_ = 0;
    reset_rx_ring(8192);
    tcr_ = kTcrHwVersion;
    clock_enabled_ = true;
    cr_ = kCrRst;    // reads back until the driver's first CR write (QEMU)
    config0_ = 0x00; // no boot ROM declared
    config1_ = 0x0C; // I/O and memory mapped registers
    config3_ = 0x01; // fast back-to-back
    config5_ = 0x00;
    cpcr_ = 0;
    cplus_enabled_ = false;
    bmcr_ = 0x1000; // autonegotiation enabled
    reset_phy();
    // Unlike QEMU (TCTR_base = 0 of its VM clock) TCTR restarts at this reset.
    tctr_base_ = clock_.now_ns();
    timer_int_ = 0;
    set_next_timer();
    tally_ = Tally{};
    tx_len_ = 0;
    tx_discard_ = false;
}

void Rtl8139::reset_phy() {
    bool link = link_up();
    bmsr_ = 0x7809 | 0x0020 | (link ? kBmsrLink : 0); // 100/10 FD/HD, ANC, extended caps
    anar_ = 0x05E1;
    anlpar_ = 0x05E1;
    aner_ = 0x0001;
    cscr_ = 0x0340; // F_LINK_100 | HEART_BIT | LD (QEMU)
}

void Rtl8139::reset_rx_ring(uint32_t size) {
    rx_buf_size_ = size;
    rx_read_ = 0;
    rx_write_ = 0;
}

void Rtl8139::update_irq() {
    set_intx((isr_ & imr_) != 0);
}

void Rtl8139::notify_receive_ready() {
    if (backend_ && can_receive()) backend_->receive_ready();
}

void Rtl8139::set_link_up(bool up) {
    bmsr_ = up ? (bmsr_ | kBmsrLink) : (bmsr_ & ~kBmsrLink);
    isr_ |= kIntPunLinkChg;
    update_irq();
}

// ---- Register file ---------------------------------------------------------------------------

void Rtl8139::Registers::io_read(uint64_t offset, std::span<uint8_t> data) {
    unsigned addr = unsigned(offset) & 0xFF;
    uint32_t v = 0;
    switch (data.size()) {
    case 1: v = d.read8(addr); break;
    case 2: v = d.read16(addr); break;
    case 4: v = d.read32(addr); break;
    default: v = 0xFFFFFFFFu; break; // the bus never sends other sizes
    }
    le_store(data, v);
}

void Rtl8139::Registers::io_write(uint64_t offset, std::span<const uint8_t> data) {
    unsigned addr = unsigned(offset) & 0xFF;
    uint32_t v = uint32_t(le_load(data));
    switch (data.size()) {
    case 1: d.write8(addr, uint8_t(v)); break;
    case 2: d.write16(addr, uint16_t(v)); break;
    case 4: d.write32(addr, v); break;
    default: break;
    }
}

void Rtl8139::Rom::io_read(uint64_t offset, std::span<uint8_t> data) {
    const std::vector<uint8_t>& rom = d.options_.rom;
    for (size_t i = 0; i < data.size(); i++) {
        uint64_t a = offset + i;
        data[i] = a < rom.size() ? rom[a] : 0;
    }
}

uint32_t Rtl8139::read8(unsigned addr) {
    if (addr < kIdr0 + 6) return idr_[addr - kIdr0];
    if (addr < kMar0) return 0;
    if (addr < kMar0 + 8) return mar_[addr - kMar0];
    if (addr >= kTsd0 && addr < kTsd0 + 16)
        return (tsd_[(addr - kTsd0) / 4] >> (8 * (addr & 3))) & 0xFF;
    switch (addr) {
    case kCr: return read_cr();
    case kCr9346: return read_cr9346();
    case kConfig0: return config0_;
    case kConfig1: return config1_;
    case kConfig3: return config3_;
    case kConfig4: return config4_;
    case kConfig5: return config5_;
    case kMsr: return kMsrBase | (~bmsr_ & kBmsrLink); // LINKB is the inverse of the link
    case kHltClk: return clock_enabled_ ? 1 : 0;
    case kRerid: return kRevision;
    case kEtthr: return etthr_;
    case kTcr + 3: return tcr_ >> 24; // the Windows driver reads the version byte alone
    default: return 0;
    }
}

uint32_t Rtl8139::read16(unsigned addr) {
    if (addr >= kTsad0 && addr < kTsad0 + 16) {
        if (addr & 1) return 0; // QEMU: unaligned TSAD word reads are not implemented
        return (tsad_[(addr - kTsad0) / 4] >> (8 * (addr & 2))) & 0xFFFF;
    }
    switch (addr) {
    case kImr: return imr_;
    case kIsr: return isr_;
    case kMulint: return mulint_;
    case kCapr: return (rx_read_ - 0x10) & 0xFFFF; // CAPR is 16 below the read pointer
    case kCbr: return rx_write_ & 0xFFFF;
    case kBmcr: return bmcr_;
    case kBmsr: return bmsr_;
    case kAnar: return anar_;
    case kAnlpar: return anlpar_;
    case kAner: return aner_;
    case kCpcr: return cpcr_;
    case kIntrMitigate: return 0;
    case kTsad: return read_tsad();
    case kCscr: return cscr_;
    default: return read8(addr) | read8(addr + 1) << 8;
    }
}

uint32_t Rtl8139::read32(unsigned addr) {
    if (addr >= kTsd0 && addr < kTsd0 + 16) return (addr & 3) ? 0 : tsd_[(addr - kTsd0) / 4];
    if (addr >= kTsad0 && addr < kTsad0 + 16) return tsad_[(addr - kTsad0) / 4];
    switch (addr) {
    case kMpc: return mpc_;
    case kTcr: return tcr_;
    case kRcr: return rcr_;
    case kRbstart: return rbstart_;
    case kRdsarLo: return rdsar_lo_;
    case kRdsarHi: return rdsar_hi_;
    case kTctr: return tctr();
    case kTimerInt: return timer_int_;
    default:
        return read8(addr) | read8(addr + 1) << 8 | read8(addr + 2) << 16 |
               uint32_t(read8(addr + 3)) << 24;
    }
}

void Rtl8139::write8(unsigned addr, uint8_t v) {
    if (addr < kIdr0 + 6) {
        idr_[addr - kIdr0] = v;
        return;
    }
    if (addr < kMar0) return; // IDR6-7 reserved
    if (addr < kMar0 + 8) {
        mar_[addr - kMar0] = v;
        return;
    }
    switch (addr) {
    case kCr: write_cr(v); break;
    case kCr9346: write_cr9346(v); break;
    case kTcr: write_tcr((tcr_ & 0xFFFFFF00u) | v); break; // Windows writes TCR bytewise
    case kConfig0:
        if (config_writable()) config0_ = uint8_t((v & ~kConfig0Keep) | (config0_ & kConfig0Keep));
        break;
    case kConfig1:
        if (config_writable()) config1_ = uint8_t((v & ~kConfig1Keep) | (config1_ & kConfig1Keep));
        break;
    case kConfig3:
        if (config_writable()) config3_ = uint8_t((v & ~kConfig3Keep) | (config3_ & kConfig3Keep));
        break;
    case kConfig4:
        if (config_writable()) config4_ = uint8_t((v & ~kConfig4Keep) | (config4_ & kConfig4Keep));
        break;
    case kConfig5: config5_ = uint8_t((v & ~kConfig5Keep) | (config5_ & kConfig5Keep)); break;
    case kHltClk:
        if (v == 'R')
            clock_enabled_ = true;
        else if (v == 'H')
            clock_enabled_ = false;
        break;
    case kEtthr: etthr_ = v; break;
    case kTppoll:
        // Bit 7 (high priority queue) is not served, as in QEMU.
        if (v & kTppollNormal) cplus_transmit();
        break;
    default: break; // MSR and the rest: read-only or unimplemented byte registers
    }
}

void Rtl8139::write16(unsigned addr, uint16_t v) {
    switch (addr) {
    case kImr:
        imr_ = uint16_t((v & ~kIntReserved) | (imr_ & kIntReserved));
        update_irq();
        notify_receive_ready(); // RXOVW in IMR changes can_receive()
        break;
    case kIsr: write_isr(v); break;
    case kMulint: mulint_ = uint16_t((v & ~kMulintKeep) | (mulint_ & kMulintKeep)); break;
    case kCapr:
        rx_read_ = (uint32_t(v) + 0x10) & (rx_buf_size_ - 1);
        notify_receive_ready();
        break;
    case kBmcr:
        if (v & kBmcrReset) reset_phy();
        bmcr_ = uint16_t((v & ~kBmcrKeep) | (bmcr_ & kBmcrKeep));
        break;
    case kBmsr: bmsr_ = uint16_t((v & ~kBmsrKeep) | (bmsr_ & kBmsrKeep)); break;
    case kAnar: anar_ = v; break;
    case kAnlpar: break; // the link partner's word is not the guest's to write
    case kAner: aner_ = v; break;
    case kCpcr:
        // Any CPCR write switches TSD0-3 to their C+ meaning (DTCCR) until reset.
        cplus_enabled_ = true;
        cpcr_ = uint16_t((v & ~kCpcrKeep) | (cpcr_ & kCpcrKeep));
        notify_receive_ready();
        break;
    case kIntrMitigate: break;
    default:
        write8(addr, uint8_t(v));
        write8(addr + 1, uint8_t(v >> 8));
        break;
    }
}

void Rtl8139::write32(unsigned addr, uint32_t v) {
    if (addr >= kTsd0 && addr < kTsd0 + 16) {
        write_tsd((addr - kTsd0) / 4, v);
        return;
    }
    if (addr >= kTsad0 && addr < kTsad0 + 16) {
        tsad_[(addr - kTsad0) / 4] = v;
        return;
    }
    switch (addr) {
    case kMpc: mpc_ = 0; break;
    case kTcr: write_tcr(v); break;
    case kRcr: write_rcr(v); break;
    case kRbstart: rbstart_ = v; break;
    case kRdsarLo: rdsar_lo_ = v; break;
    case kRdsarHi: rdsar_hi_ = v; break;
    case kTctr:
        tctr_base_ = clock_.now_ns();
        set_next_timer();
        break;
    case kTimerInt:
        if (timer_int_ != v) {
            timer_int_ = v;
            set_next_timer();
        }
        break;
    default:
        for (unsigned i = 0; i < 4; i++) write8(addr + i, uint8_t(v >> (8 * i)));
        break;
    }
}

void Rtl8139::write_cr(uint8_t v) {
    if (v & kCrRst) soft_reset();
    if (v & kCrRe) cur_cplus_rx_ = 0;
    if (v & kCrTe) cur_cplus_tx_ = 0;
    uint8_t next = uint8_t((v & ~kCrKeep) | (cr_ & kCrKeep));
    cr_ = uint8_t(next & ~kCrRst); // the reset completes at once
    notify_receive_ready();
}

uint8_t Rtl8139::read_cr() const {
    uint32_t unread = (rx_buf_size_ + rx_write_ - rx_read_) & (rx_buf_size_ - 1);
    return uint8_t(cr_ | (unread == 0 ? kCrBufe : 0));
}

void Rtl8139::write_cr9346(uint8_t v) {
    v = uint8_t((v & ~kCr9346Keep) | (cr9346_ & kCr9346Keep));
    uint8_t mode = v & kCr9346ModeMask;
    if (mode == kCr9346Program) {
        eeprom_.set_wires(v & kEecs, v & kEesk, v & kEedi);
    } else if (mode == kCr9346AutoLoad) {
        v = 0;
        soft_reset();
    }
    cr9346_ = v;
}

uint8_t Rtl8139::read_cr9346() const {
    uint8_t v = cr9346_;
    if ((v & kCr9346ModeMask) == kCr9346Program)
        v = eeprom_.data_out() ? uint8_t(v | kEedo) : uint8_t(v & ~kEedo);
    return v;
}

bool Rtl8139::config_writable() const {
    return (cr9346_ & kCr9346ModeMask) == kCr9346ConfigWrite;
}

void Rtl8139::write_tcr(uint32_t v) {
    if (!(cr_ & kCrTe)) return; // QEMU ignores TCR while the transmitter is off
    tcr_ = (v & ~kTcrKeep) | (tcr_ & kTcrKeep);
}

void Rtl8139::write_rcr(uint32_t v) {
    rcr_ = (v & ~kRcrKeep) | (rcr_ & kRcrKeep);
    // RBLEN: 8 KiB << RCR[12:11]; a new RCR restarts the ring (QEMU, which Linux relies on).
    reset_rx_ring(8192u << ((rcr_ >> 11) & 3));
    notify_receive_ready();
}

void Rtl8139::write_isr(uint16_t v) {
    uint16_t next = uint16_t(isr_ & ~v);
    next = uint16_t((next & ~kIntReserved) | (isr_ & kIntReserved));
    // QEMU drops the line before raising it again for what is still pending, which gives an
    // edge-triggered 8259 input a fresh edge.
    isr_ = 0;
    update_irq();
    isr_ = next;
    set_next_timer();
    update_irq();
}

uint16_t Rtl8139::read_tsad() const {
    uint16_t v = 0;
    for (unsigned i = 0; i < kTxDescriptors; i++) {
        if (tsd_[i] & kTsdTok) v |= uint16_t(1u << (12 + i));
        if (tsd_[i] & kTsdTun) v |= uint16_t(1u << (8 + i));
        if (tsd_[i] & kTsdTabt) v |= uint16_t(1u << (4 + i));
        if (tsd_[i] & kTsdOwn) v |= uint16_t(1u << i);
    }
    return v;
}

// ---- Timer -----------------------------------------------------------------------------------

uint32_t Rtl8139::tctr() const {
    uint64_t now = clock_.now_ns();
    return uint32_t((now > tctr_base_ ? now - tctr_base_ : 0) / kPciClockPeriodNs);
}

void Rtl8139::set_next_timer() {
    uint64_t now = clock_.now_ns();
    // Keep the base within one TCTR wrap of now; TCTR itself does not change by this.
    if (now >= tctr_base_ + kTimerWrapNs)
        tctr_base_ += (now - tctr_base_) / kTimerWrapNs * kTimerWrapNs;
    if (timer_int_ == 0) {
        timer_.cancel();
        return;
    }
    uint64_t delta = uint64_t(timer_int_) * kPciClockPeriodNs;
    if (tctr_base_ + delta <= now) delta += kTimerWrapNs; // reached this round already
    timer_.arm(tctr_base_ + delta);
}

void Rtl8139::timer_fired() {
    if (!clock_enabled_) return; // a halted chip stays silent until the next timer write
    isr_ |= kIntTimeOut;
    update_irq();
    set_next_timer();
}

// ---- DMA -------------------------------------------------------------------------------------

bool Rtl8139::dma_read(uint64_t addr, std::span<uint8_t> out) {
    if (out.empty()) return true;
    if ((config_word(pci::kCommand) & pci::kCommandMaster) && memory_.read(addr, out)) return true;
    std::fill(out.begin(), out.end(), 0);
    master_abort(addr, out.size(), false);
    return false;
}

bool Rtl8139::dma_write(uint64_t addr, std::span<const uint8_t> in) {
    if (in.empty()) return true;
    if ((config_word(pci::kCommand) & pci::kCommandMaster) && memory_.write(addr, in)) return true;
    master_abort(addr, in.size(), true);
    return false;
}

void Rtl8139::master_abort(uint64_t addr, size_t len, bool write) {
    if (dma_log_.allow())
        LOG_WARN("rtl8139: DMA %s of %zu bytes at 0x%llx failed (%s)", write ? "write" : "read",
                 len, (unsigned long long)addr,
                 (config_word(pci::kCommand) & pci::kCommandMaster) ? "not guest RAM"
                                                                    : "bus mastering off");
    set_config_word(pci::kStatus, uint16_t(config_word(pci::kStatus) | pci::kStatusRecMasterAbort));
    isr_ |= kIntSerr;
    update_irq();
}

// ---- Transmit --------------------------------------------------------------------------------

void Rtl8139::write_tsd(unsigned descriptor, uint32_t v) {
    if (cplus_enabled_) {
        // DTCCR: {TSD1:TSD0} is the counter dump address, TSD0 bit 3 the dump command.
        tsd_[descriptor] = v;
        if (descriptor == 0 && (v & kDtccrDump)) {
            dump_tally(uint64_t(tsd_[1]) << 32 | (tsd_[0] & ~0x3Fu));
            tsd_[0] &= ~kDtccrDump;
        }
        return;
    }
    v &= ~kTsdClearOnWrite;
    v = (v & ~kTsdKeep) | (tsd_[descriptor] & kTsdKeep);
    tsd_[descriptor] = v;
    transmit_c_mode();
}

void Rtl8139::transmit_c_mode() {
    // One descriptor per TSD write: the current one, if the guest has handed it over.
    if (tx_active_ || !(cr_ & kCrTe)) return;
    unsigned d = cur_tx_;
    if (tsd_[d] & kTsdOwn) return;
    tx_active_ = true;
    std::vector<uint8_t> frame(tsd_[d] & kTsdSizeMask);
    if (!dma_read(tsad_[d], frame)) {
        tsd_[d] |= kTsdOwn | kTsdTabt;
        isr_ |= kIntTer;
        tally_.tx_err++;
        tally_.tx_abt++;
    } else {
        tsd_[d] |= kTsdOwn | kTsdTok;
        transfer_frame(frame, nullptr);
        isr_ |= kIntTok;
    }
    cur_tx_ = (d + 1) % kTxDescriptors;
    tx_active_ = false;
    update_irq();
}

void Rtl8139::cplus_transmit() {
    if (tx_active_) return;
    tx_active_ = true;
    unsigned count = 0;
    while (count < kCplusRingMax && cplus_transmit_one()) count++;
    tx_active_ = false;
    if (count) {
        isr_ |= kIntTok;
        update_irq();
    }
}

bool Rtl8139::cplus_transmit_one() {
    if (!(cr_ & kCrTe) || !(cpcr_ & kCpTxEnb)) return false;
    uint64_t desc = (uint64_t(tsad_[1]) << 32 | tsad_[0]) + 16ull * cur_cplus_tx_;
    uint8_t raw[16];
    if (!dma_read(desc, raw)) return false;
    uint32_t dw0 = rd32(raw), dw1 = rd32(raw + 4);
    uint64_t buf = uint64_t(rd32(raw + 12)) << 32 | rd32(raw + 8);
    if (!(dw0 & kDescOwn)) return false;

    if (dw0 & kDescFs) {
        tx_len_ = 0;
        tx_discard_ = false;
    }
    uint32_t size = dw0 & kCplusTxSizeMask;
    size = std::min(size, kCplusTxBuffer - tx_len_); // QEMU truncates at the 64 KiB buffer
    bool ok = dma_read(buf, std::span(tx_buf_.data() + tx_len_, size));
    tx_len_ += size;
    if (!ok) tx_discard_ = true;

    cur_cplus_tx_ = (dw0 & kDescEor) ? 0 : (cur_cplus_tx_ + 1) % kCplusRingMax;

    uint32_t status = dw0 & ~(kDescOwn | kTxStatusUnf | kTxStatusTes | kTxStatusOwc |
                              kTxStatusLnkf | kTxStatusExc);
    if (!ok) status |= kTxStatusTes;
    uint8_t st[4];
    le_store(st, status);
    dma_write(desc, st);

    if (dw0 & kDescLs) {
        if (tx_discard_) {
            isr_ |= kIntTer;
            tally_.tx_err++;
        } else {
            uint8_t tag[eth::kVlanTagLen] = {0x81, 0x00, uint8_t(dw1), uint8_t(dw1 >> 8)};
            CplusTxOffload req;
            req.ip_checksum = dw0 & kTxIpcs;
            req.udp_checksum = dw0 & kTxUdpcs;
            req.tcp_checksum = dw0 & kTxTcpcs;
            req.large_send = dw0 & kTxLgsen;
            req.mss = uint16_t((dw0 >> kLgsenMssShift) & kLgsenMssMask);
            tally_.tx_ok++;
            apply_cplus_tx_offload(std::span(tx_buf_.data(), tx_len_), req,
                                   [&](std::span<const uint8_t> f) {
                                       transfer_frame(f, (dw1 & kTxTagc) ? tag : nullptr);
                                   });
        }
        tx_len_ = 0;
        tx_discard_ = false;
    }
    return true;
}

void Rtl8139::transfer_frame(std::span<const uint8_t> frame, const uint8_t* vlan_tag) {
    if (frame.empty()) return;
    std::vector<uint8_t> tagged;
    if (vlan_tag && frame.size() >= 2 * eth::kAddrLen) {
        tagged.reserve(frame.size() + eth::kVlanTagLen);
        tagged.insert(tagged.end(), frame.begin(), frame.begin() + 2 * eth::kAddrLen);
        tagged.insert(tagged.end(), vlan_tag, vlan_tag + eth::kVlanTagLen);
        tagged.insert(tagged.end(), frame.begin() + 2 * eth::kAddrLen, frame.end());
        frame = tagged;
    }
    if ((tcr_ & kTcrLoopback) == kTcrLoopback) {
        // Loopback: the frame comes straight back to this chip's receiver. With no room it is
        // lost (QEMU would queue it).
        if (!rx_active_) {
            rx_active_ = true;
            deliver(frame);
            rx_active_ = false;
        }
        return;
    }
    if (backend_) backend_->send(frame);
}

void Rtl8139::dump_tally(uint64_t addr) {
    uint8_t b[64] = {};
    auto put = [&](unsigned off, uint64_t v, unsigned n) { le_store(std::span(b + off, n), v); };
    put(0, tally_.tx_ok, 8);
    put(8, tally_.rx_ok, 8);
    put(16, tally_.tx_err, 8);
    put(24, tally_.rx_err, 4);
    put(28, tally_.miss_pkt, 2);
    put(30, tally_.fae, 2);
    put(32, tally_.tx_1col, 4);
    put(36, tally_.tx_mcol, 4);
    put(40, tally_.rx_ok_phy, 8);
    put(48, tally_.rx_ok_brd, 8);
    put(56, tally_.rx_ok_mul, 4);
    put(60, tally_.tx_abt, 2);
    put(62, tally_.tx_undrn, 2);
    dma_write(addr, b);
}

// ---- Receive ---------------------------------------------------------------------------------

uint32_t Rtl8139::ring_free() const {
    return (rx_buf_size_ + rx_read_ - rx_write_) & (rx_buf_size_ - 1);
}

bool Rtl8139::can_receive() const {
    if (!clock_enabled_ || !(cr_ & kCrRe)) return true;      // frames are dropped, not queued
    if ((cpcr_ & kCpRxEnb) && cplus_rx_valid()) return true; // C+ drops when out of descriptors
    uint32_t avail = ring_free();
    return avail == 0 || avail >= eth::kMaxFrame || (imr_ & kIntRxovw);
}

bool Rtl8139::receive(std::span<const uint8_t> frame) {
    if (rx_active_) return false; // a backend calling back in mid-delivery: try again later
    if (frame.size() > kCplusTxBuffer) return true; // larger than anything the chip takes
    // Pad runts to the Ethernet minimum (QEMU's slirp/tap backends do this before delivery).
    std::array<uint8_t, eth::kMinFrame> padded{};
    if (frame.size() < eth::kMinFrame) {
        std::copy(frame.begin(), frame.end(), padded.begin());
        frame = padded;
    }
    rx_active_ = true;
    bool taken = deliver(frame);
    rx_active_ = false;
    return taken;
}

bool Rtl8139::deliver(std::span<const uint8_t> frame) {
    if (!clock_enabled_ || !(cr_ & kCrRe)) return true;
    if (frame.size() < eth::kMinFrame) {
        // Loopback of a runt: pad like anything else that reaches the receiver.
        std::array<uint8_t, eth::kMinFrame> padded{};
        std::copy(frame.begin(), frame.end(), padded.begin());
        return deliver(std::span<const uint8_t>(padded));
    }
    static constexpr uint8_t kBroadcast[eth::kAddrLen] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    uint16_t status = 0;
    if (!(rcr_ & kRcrAap)) {
        // QEMU's order: broadcast, multicast (hash), own address; promiscuous skips all (and
        // sets none of BAR/MAR/PAM).
        if (std::equal(kBroadcast, kBroadcast + eth::kAddrLen, frame.begin())) {
            if (!(rcr_ & kRcrAb)) {
                tally_.rx_err++;
                return true;
            }
            status |= kRxBar;
            tally_.rx_ok_brd++;
        } else if (frame[0] & 0x01) {
            unsigned idx = eth::multicast_hash_index(frame.first<eth::kAddrLen>());
            if (!(rcr_ & kRcrAm) || !(mar_[idx >> 3] & (1u << (idx & 7)))) {
                tally_.rx_err++;
                return true;
            }
            status |= kRxMar;
            tally_.rx_ok_mul++;
        } else if (std::equal(idr_.begin(), idr_.end(), frame.begin())) {
            if (!(rcr_ & kRcrApm)) {
                tally_.rx_err++;
                return true;
            }
            status |= kRxPam;
            tally_.rx_ok_phy++;
        } else {
            tally_.rx_err++;
            return true;
        }
    }
    if (cpcr_ & kCpRxEnb) return cplus_receive(frame, status);
    return ring_receive(frame, status);
}

bool Rtl8139::ring_receive(std::span<const uint8_t> frame, uint16_t status) {
    uint32_t size = uint32_t(frame.size());
    if (size > kMaxRingFrame) {
        tally_.rx_err++;
        return true;
    }
    uint32_t avail = ring_free();
    if (avail != 0 && align4(size + 8) >= avail) {
        // No room: refuse (the backend keeps the frame) and tell the driver.
        isr_ |= kIntRxovw;
        mpc_++;
        update_irq();
        return false;
    }
    uint8_t header[4];
    le_store(header, uint32_t(status | kRxRok) | (size + uint32_t(eth::kFcsLen)) << 16);
    uint8_t crc[4];
    le_store(crc, eth::crc32(frame));
    ring_write(header);
    ring_write(frame);
    ring_write(crc);
    rx_write_ = align4(rx_write_) & (rx_buf_size_ - 1);
    isr_ |= kIntRok;
    update_irq();
    return true;
}

void Rtl8139::ring_write(std::span<const uint8_t> data) {
    uint32_t n = uint32_t(data.size());
    if (rx_write_ + n > rx_buf_size_) {
        uint32_t wrapped = (rx_write_ + n) & (rx_buf_size_ - 1);
        bool linear = rx_buf_size_ < 65536 && (rcr_ & kRcrWrap);
        if (wrapped && !linear) {
            // WRAP clear: the part past the end goes to the ring's start.
            if (n > wrapped) dma_write(uint64_t(rbstart_) + rx_write_, data.first(n - wrapped));
            dma_write(rbstart_, data.subspan(n - wrapped));
            rx_write_ = wrapped;
            return;
        }
    }
    // WRAP set: straight on into the slack after the ring (the driver allocated it).
    dma_write(uint64_t(rbstart_) + rx_write_, data);
    rx_write_ += n;
}

bool Rtl8139::cplus_receive(std::span<const uint8_t> frame, uint16_t status) {
    if (!cplus_rx_valid()) return true; // Linux enables RX before it sets the ring (QEMU)
    uint64_t desc = (uint64_t(rdsar_hi_) << 32 | rdsar_lo_) + 16ull * cur_cplus_rx_;
    uint8_t raw[16];
    if (!dma_read(desc, raw)) {
        tally_.rx_err++;
        return true;
    }
    uint32_t dw0 = rd32(raw), dw1 = rd32(raw + 4);
    uint64_t buf = uint64_t(rd32(raw + 12)) << 32 | rd32(raw + 8);
    auto missed = [&] {
        isr_ |= kIntRxovw;
        mpc_++;
        tally_.rx_err++;
        tally_.miss_pkt++;
        update_irq();
        return true;
    };
    if (!(dw0 & kDescOwn)) return missed();

    // The data as it lands in memory: without its 802.1Q tag if the guest asked for VLAN
    // stripping, at least 60 bytes long.
    std::vector<uint8_t> data;
    if ((cpcr_ & kCpRxVlan) && eth::load_be16(&frame[12]) == eth::kTypeVlan) {
        data.assign(frame.begin(), frame.begin() + 2 * eth::kAddrLen);
        data.insert(data.end(), frame.begin() + 2 * eth::kAddrLen + eth::kVlanTagLen, frame.end());
        if (data.size() < eth::kMinFrame) data.resize(eth::kMinFrame, 0);
        // The TCI as it sits in the frame, read little-endian (QEMU; 8139cp swabs it back).
        dw1 = (dw1 & ~0xFFFFu) | kRxTava | frame[14] | uint32_t(frame[15]) << 8;
    } else {
        data.assign(frame.begin(), frame.end());
        dw1 &= ~kRxTava;
    }
    uint32_t size = uint32_t(data.size());
    if (size + eth::kFcsLen > (dw0 & kCplusRxSizeMask)) return missed();

    uint8_t crc[4];
    le_store(crc, eth::crc32(frame)); // QEMU: over the frame as received, tag included
    if (!dma_write(buf, data) || !dma_write(buf + size, crc)) {
        tally_.rx_err++;
        return true; // the descriptor stays with the chip; SERR tells the driver
    }
    dw0 &= ~kDescOwn;
    dw0 |= kDescFs | kDescLs;
    if (status & kRxBar) dw0 |= kRxStatusBar;
    if (status & kRxMar) dw0 |= kRxStatusMar;
    if (status & kRxPam) dw0 |= kRxStatusPam;
    dw0 = (dw0 & ~kCplusRxSizeMask) | (size + uint32_t(eth::kFcsLen));
    le_store(std::span(raw, 4), dw0);
    le_store(std::span(raw + 4, 4), dw1);
    dma_write(desc, std::span<const uint8_t>(raw, 8));
    tally_.rx_ok++;
    cur_cplus_rx_ = (dw0 & kDescEor) ? 0 : (cur_cplus_rx_ + 1) % kCplusRingMax;
    isr_ |= kIntRok;
    update_irq();
    return true;
}

// ---- State -----------------------------------------------------------------------------------

void Rtl8139::save_extra(StateWriter& out) const {
    out.begin("rtl8139/regs", kExtraVersion);
    out.put(idr_);
    out.put(mar_);
    out.put(tsd_);
    out.put(tsad_);
    out.put(rbstart_);
    out.put(rx_buf_size_);
    out.put(rx_read_);
    out.put(rx_write_);
    out.put(isr_);
    out.put(imr_);
    out.put(tcr_);
    out.put(rcr_);
    out.put(mpc_);
    out.put(cscr_);
    out.put(std::array<uint8_t, 6>{cr9346_, config0_, config1_, config3_, config4_, config5_});
    out.put<uint8_t>(clock_enabled_);
    out.put(cr_);
    out.put(mulint_);
    out.put(std::array<uint16_t, 6>{bmcr_, bmsr_, anar_, anlpar_, aner_, cpcr_});
    out.put(etthr_);
    out.put<uint32_t>(cur_tx_);
    out.put<uint8_t>(cplus_enabled_);
    out.put<uint32_t>(cur_cplus_rx_);
    out.put<uint32_t>(cur_cplus_tx_);
    out.put(rdsar_lo_);
    out.put(rdsar_hi_);
    out.put<uint32_t>(tctr()); // TCTR continues from here on the loading host's clock
    out.put(timer_int_);
    out.put(std::array<uint64_t, 13>{tally_.tx_ok, tally_.rx_ok, tally_.tx_err, tally_.rx_err,
                                     tally_.miss_pkt, tally_.fae, tally_.tx_1col, tally_.tx_mcol,
                                     tally_.rx_ok_phy, tally_.rx_ok_brd, tally_.rx_ok_mul,
                                     tally_.tx_abt, tally_.tx_undrn});
    out.put<uint32_t>(tx_len_);
    out.put<uint8_t>(tx_discard_);
    // Only when non-empty: StateReader::get_bytes of an empty span memcpy()s to a null pointer.
    if (tx_len_) out.put_bytes(std::span(tx_buf_.data(), tx_len_));
    eeprom_.save(out);
}

void Rtl8139::load_extra(StateReader& in) {
    in.begin("rtl8139/regs", kExtraVersion, kExtraVersion);
    auto idr = in.get<std::array<uint8_t, 6>>();
    auto mar = in.get<std::array<uint8_t, 8>>();
    auto tsd = in.get<std::array<uint32_t, 4>>();
    auto tsad = in.get<std::array<uint32_t, 4>>();
    uint32_t rbstart = in.get<uint32_t>(), rx_size = in.get<uint32_t>();
    uint32_t rx_read = in.get<uint32_t>(), rx_write = in.get<uint32_t>();
    uint16_t isr = in.get<uint16_t>(), imr = in.get<uint16_t>();
    uint32_t tcr = in.get<uint32_t>(), rcr = in.get<uint32_t>(), mpc = in.get<uint32_t>();
    uint16_t cscr = in.get<uint16_t>();
    auto cfg = in.get<std::array<uint8_t, 6>>();
    uint8_t clock_enabled = in.get<uint8_t>(), cr = in.get<uint8_t>();
    uint16_t mulint = in.get<uint16_t>();
    auto mii = in.get<std::array<uint16_t, 6>>();
    uint8_t etthr = in.get<uint8_t>();
    uint32_t cur_tx = in.get<uint32_t>();
    uint8_t cplus = in.get<uint8_t>();
    uint32_t cur_rx_c = in.get<uint32_t>(), cur_tx_c = in.get<uint32_t>();
    uint32_t rdsar_lo = in.get<uint32_t>(), rdsar_hi = in.get<uint32_t>();
    uint32_t tctr = in.get<uint32_t>(), timer_int = in.get<uint32_t>();
    auto t = in.get<std::array<uint64_t, 13>>();
    Tally tally{
        t[0],           t[1],           t[2], uint32_t(t[3]), uint16_t(t[4]),  uint16_t(t[5]),
        uint32_t(t[6]), uint32_t(t[7]), t[8], t[9],           uint32_t(t[10]), uint16_t(t[11]),
        uint16_t(t[12])};
    uint32_t tx_len = in.get<uint32_t>();
    uint8_t tx_discard = in.get<uint8_t>();
    if (tx_len > kCplusTxBuffer) throw StateError("rtl8139: bad C+ transmit buffer length");
    std::vector<uint8_t> tx(tx_len);
    if (tx_len) in.get_bytes(tx);
    Eeprom93c46 eeprom;
    eeprom.load(in);

    bool size_ok = rx_size == 8192 || rx_size == 16384 || rx_size == 32768 || rx_size == 65536;
    if (!size_ok || rx_read >= rx_size || rx_write >= rx_size)
        throw StateError("rtl8139: bad receive ring state");
    if (cur_tx >= kTxDescriptors || cur_rx_c >= kCplusRingMax || cur_tx_c >= kCplusRingMax)
        throw StateError("rtl8139: bad descriptor index");
    if (clock_enabled > 1 || cplus > 1 || tx_discard > 1 || (cr & kCrBufe))
        throw StateError("rtl8139: bad flags");

    idr_ = idr;
    mar_ = mar;
    tsd_ = tsd;
    tsad_ = tsad;
    rbstart_ = rbstart;
    rx_buf_size_ = rx_size;
    rx_read_ = rx_read;
    rx_write_ = rx_write;
    isr_ = isr;
    imr_ = imr;
    tcr_ = tcr;
    rcr_ = rcr;
    mpc_ = mpc;
    cscr_ = cscr;
    cr9346_ = cfg[0];
    config0_ = cfg[1];
    config1_ = cfg[2];
    config3_ = cfg[3];
    config4_ = cfg[4];
    config5_ = cfg[5];
    clock_enabled_ = clock_enabled;
    cr_ = cr;
    mulint_ = mulint;
    bmcr_ = mii[0];
    bmsr_ = mii[1];
    anar_ = mii[2];
    anlpar_ = mii[3];
    aner_ = mii[4];
    cpcr_ = mii[5];
    etthr_ = etthr;
    cur_tx_ = cur_tx;
    cplus_enabled_ = cplus;
    cur_cplus_rx_ = cur_rx_c;
    cur_cplus_tx_ = cur_tx_c;
    rdsar_lo_ = rdsar_lo;
    rdsar_hi_ = rdsar_hi;
    uint64_t now = clock_.now_ns();
    uint64_t elapsed = uint64_t(tctr) * kPciClockPeriodNs;
    tctr_base_ = now >= elapsed ? now - elapsed : 0;
    timer_int_ = timer_int;
    tally_ = tally;
    std::copy(tx.begin(), tx.end(), tx_buf_.begin());
    tx_len_ = tx_len;
    tx_discard_ = tx_discard;
    eeprom_ = eeprom;
    set_next_timer();
}

} // namespace hvm
