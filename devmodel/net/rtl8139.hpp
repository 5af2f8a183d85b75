// Realtek RTL8139C+ Fast Ethernet controller, 10EC:8139 rev 0x20, class 020000, INTA#, as QEMU's
// `-device rtl8139` presents it (QEMU hw/net/rtl8139.c; Realtek RTL8139C(L)+ datasheet 1.6;
// Linux 8139too/8139cp and iPXE rtl8139 as the drivers it must satisfy).
//
// PCI: BAR0 I/O 256 bytes and BAR1 memory 256 bytes decode the same register file (QEMU aliases
// them); an optional ROM BAR carries iPXE's pxe-rtl8139.rom. Capability pointer 0x34 reads 0xDC
// with the status Capabilities List bit clear (QEMU: "offset 0xdc seems unused"). Register
// accesses of 1, 2 and 4 bytes are dispatched like QEMU's readb/readw/readl: a register reacts
// to the access widths QEMU implements for it, and other widths fall back to byte accesses
// (so, as in QEMU, a byte write to IMR/ISR or a word write to TSD does nothing).
//
// Registers (offsets from the BAR):
//  - IDR0-5 MAC (reloaded from the configured MAC on reset), MAR0-7 multicast hash filter.
//  - TSD0-3/TSAD0-3: four transmit descriptors used round robin. Writing TSDn (dword) hands the
//    buffer to the chip (OWN=0): the chip sends TSDn[12:0] bytes from TSADn if n is the current
//    descriptor, then sets OWN and TOK and ISR.TOK. A buffer outside guest RAM sets TABT and
//    ISR.TER instead. TSAD (0x60) summarises TOK/TUN/TABT/OWN of all four.
//  - RBSTART, CR (RST, RE, TE; BUFE computed), CAPR/CBR and the receive ring: RCR[12:11]
//    selects 8/16/32/64 KiB (+16 bytes); each frame is written as a 4-byte header {status,
//    length incl. CRC}, the frame, its CRC-32, then CBR is rounded up to a dword. WRAP (RCR
//    bit 7) clear splits a frame at the ring end and continues at RBSTART; set (rings < 64 KiB)
//    writes past the end into the slack the driver allocated. CAPR reads and writes 16 below
//    the internal read pointer (QEMU, Linux 8139too). A frame needing align4(len + 8) bytes or
//    more than are free is refused (receive() returns false: backpressure) and raises RXOVW
//    and MPC.
//  - IMR/ISR: ISR bits are cleared by writing 1 (word writes); INTx = (ISR & IMR) != 0, level.
//  - TCR (dword or low byte; written only while TE is set, as QEMU) with the hardware version
//    bits of an 8139C+, loopback when both LBK bits are set. RCR: AAP/APM/AM/AB filter, buffer
//    length, WRAP; FIFO and DMA thresholds are stored.
//  - TCTR counts the 33 MHz PCI clock (30 ns per tick, QEMU); writing it restarts from 0.
//    TimerInt (0x54): when non-zero, ISR.TimeOut is raised whenever TCTR reaches it.
//  - MPC (0x4C, dword): missed packets, cleared by a write.
//  - 9346CR: mode 10 bit-bangs the 93C46 EEPROM (eeprom93c46.hpp); mode 01 ("auto-load")
//    resets the chip and reads back 0. CONFIG0-5 as QEMU: CONFIG0/1/3/4 writable only in
//    config-write mode (9346CR = 11xxxxxx).
//  - MII: BMCR 0x1000 (autonegotiation), BMSR 0x782D (autonegotiation complete, link up),
//    ANAR = ANLPAR = 0x05E1 (100BASE-TX full duplex and all lower modes), ANER 1, CSCR 0x0340.
//    MSR (0x58) reads 0xD0 with LINKB (bit 2) set while the link is down. set_link_up() flips
//    BMSR.link and raises ISR.PUN/LinkChg.
//  - MULINT, HLTCLK ('H' halts the chip's clock: frames are dropped and the timer is silent;
//    'R' restarts), RERID (0x5E) 0x20.
//  - C+ mode, once the guest writes CPCR: TSD0/TSD1 become DTCCR (tally counter dump: writing
//    bit 3 of DTCCR low dumps the 64-byte counter block to the 64-byte aligned address),
//    TSAD0/1 TNPDS (normal priority TX ring), RDSAR (0xE4) the RX ring, TPPoll (0xD9) bit 6
//    starts transmission. Descriptors are 16 bytes {status, VLAN, buffer low, buffer high}; a
//    ring ends at the EOR descriptor or after 64 descriptors. TX gathers FS..LS segments (up to
//    64 KiB, excess truncated as QEMU), inserts the VLAN tag (TAGC), applies checksum and
//    large-send offloads (rtl8139_tx_offload.hpp). RX writes one frame per descriptor (plus
//    CRC), strips the VLAN tag into the descriptor when CPCR.RxVLAN is set, and sets FS/LS and
//    BAR/PAM/MAR; no free descriptor or a too small buffer drops the frame with RXOVW and MPC.
//    As in QEMU, no receive checksum is verified and the high priority ring is not served.
//
// Receive side: frames shorter than 60 bytes are padded with zeros (QEMU pads in its slirp and
// tap backends); frames over 1518 bytes (1514 + an 802.1Q tag) are dropped in ring mode, and in
// C+ mode a frame must fit its descriptor's buffer (at most 8191 bytes with CRC).
//
// DMA goes through GuestMemory only, and only while the PCI command register's Bus Master bit is
// set. An address outside guest RAM is a master abort: it sets the PCI status bit Received
// Master Abort and ISR.SERR (bit 15) besides the error the operation reports (TABT, TES), and
// never touches host memory.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "base/clock.hpp"
#include "base/log.hpp"
#include "devmodel/net/eeprom93c46.hpp"
#include "devmodel/net/net_backend.hpp"
#include "devmodel/pci/pci_device.hpp"
#include "vcpu/guest_memory.hpp"

namespace hvm {

struct Rtl8139Options {
    std::array<uint8_t, 6> mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}; // QEMU's default MAC
    // Option ROM image for the ROM BAR (Debian ipxe-qemu's pxe-rtl8139.rom); empty: no ROM BAR.
    std::vector<uint8_t> rom;
    // ROM BAR size; 0 = the image size rounded up to a power of two (QEMU pci_add_option_rom).
    // QEMU 7.2 with efi-rtl8139.rom shows 256 KiB (pc-platform.md §8).
    uint32_t rom_bar_size = 0;
};

class Rtl8139 : public PciDevice, public NetFrontend {
  public:
    static constexpr uint16_t kVendor = 0x10EC, kDevice = 0x8139;
    static constexpr uint8_t kRevision = 0x20; // RTL8139C+ (QEMU RTL8139_PCI_REVID_8139CPLUS)
    static constexpr uint32_t kClassEthernet = 0x020000;
    static constexpr uint8_t kCapPointer = 0xDC;
    static constexpr unsigned kRegisterSize = 256;

    // Register offsets (datasheet names; QEMU names in comments where they differ).
    static constexpr unsigned kIdr0 = 0x00;  // MAC0
    static constexpr unsigned kMar0 = 0x08;  // multicast filter
    static constexpr unsigned kTsd0 = 0x10;  // TxStatus0..3; DTCCR in C+ mode
    static constexpr unsigned kTsad0 = 0x20; // TxAddr0..3; TNPDS (0x20) / THPDS (0x28) in C+
    static constexpr unsigned kRbstart = 0x30;
    static constexpr unsigned kCr = 0x37;   // ChipCmd
    static constexpr unsigned kCapr = 0x38; // RxBufPtr
    static constexpr unsigned kCbr = 0x3A;  // RxBufAddr
    static constexpr unsigned kImr = 0x3C;
    static constexpr unsigned kIsr = 0x3E;
    static constexpr unsigned kTcr = 0x40;
    static constexpr unsigned kRcr = 0x44;
    static constexpr unsigned kTctr = 0x48;
    static constexpr unsigned kMpc = 0x4C;
    static constexpr unsigned kCr9346 = 0x50;
    static constexpr unsigned kConfig0 = 0x51, kConfig1 = 0x52;
    static constexpr unsigned kTimerInt = 0x54; // FlashReg in QEMU
    static constexpr unsigned kMsr = 0x58;
    static constexpr unsigned kConfig3 = 0x59, kConfig4 = 0x5A;
    static constexpr unsigned kHltClk = 0x5B;
    static constexpr unsigned kMulint = 0x5C;
    static constexpr unsigned kRerid = 0x5E;
    static constexpr unsigned kTsad = 0x60; // TxSummary
    static constexpr unsigned kBmcr = 0x62, kBmsr = 0x64, kAnar = 0x66, kAnlpar = 0x68,
                              kAner = 0x6A;
    static constexpr unsigned kCscr = 0x74;
    static constexpr unsigned kConfig5 = 0xD8;
    static constexpr unsigned kTppoll = 0xD9;
    static constexpr unsigned kCpcr = 0xE0;
    static constexpr unsigned kIntrMitigate = 0xE2;
    static constexpr unsigned kRdsarLo = 0xE4, kRdsarHi = 0xE8;
    static constexpr unsigned kEtthr = 0xEC; // TxThresh

    // CR bits.
    static constexpr uint8_t kCrRst = 0x10, kCrRe = 0x08, kCrTe = 0x04, kCrBufe = 0x01;
    // ISR/IMR bits.
    static constexpr uint16_t kIntSerr = 0x8000, kIntTimeOut = 0x4000, kIntFovw = 0x0040,
                              kIntPunLinkChg = 0x0020, kIntRxovw = 0x0010, kIntTer = 0x0008,
                              kIntTok = 0x0004, kIntRer = 0x0002, kIntRok = 0x0001;
    // TSD bits.
    static constexpr uint32_t kTsdOwn = 0x2000, kTsdTun = 0x4000, kTsdTok = 0x8000,
                              kTsdTabt = 0x40000000, kTsdSizeMask = 0x1FFF;
    // RX packet header status bits.
    static constexpr uint16_t kRxMar = 0x8000, kRxPam = 0x4000, kRxBar = 0x2000, kRxRok = 0x0001;
    // RCR bits.
    static constexpr uint32_t kRcrAap = 0x01, kRcrApm = 0x02, kRcrAm = 0x04, kRcrAb = 0x08,
                              kRcrWrap = 0x80;
    // TCR bits.
    static constexpr uint32_t kTcrLoopback = 0x00060000;
    static constexpr uint32_t kTcrHwVersion = 0x74800000; // RTL8139C+ version bits (QEMU)
    // CPCR bits.
    static constexpr uint16_t kCpRxVlan = 0x0040, kCpRxChkSum = 0x0020, kCpRxEnb = 0x0002,
                              kCpTxEnb = 0x0001;
    // C+ descriptor bits (dword 0 / dword 1).
    static constexpr uint32_t kDescOwn = 1u << 31, kDescEor = 1u << 30, kDescFs = 1u << 29,
                              kDescLs = 1u << 28;
    static constexpr uint32_t kTxLgsen = 1u << 27, kTxIpcs = 1u << 18, kTxUdpcs = 1u << 17,
                              kTxTcpcs = 1u << 16, kTxTagc = 1u << 17 /* dword 1 */;
    static constexpr uint32_t kTxStatusUnf = 1u << 25, kTxStatusTes = 1u << 23,
                              kTxStatusOwc = 1u << 22, kTxStatusLnkf = 1u << 21,
                              kTxStatusExc = 1u << 20;
    static constexpr uint32_t kRxStatusMar = 1u << 26, kRxStatusPam = 1u << 25,
                              kRxStatusBar = 1u << 24, kRxTava = 1u << 16 /* dword 1 */;

    static constexpr unsigned kTxDescriptors = 4;
    static constexpr unsigned kCplusRingMax = 64;       // descriptors per C+ ring
    static constexpr uint32_t kCplusTxBuffer = 0x10000; // C+ TX assembly limit (QEMU)
    static constexpr size_t kMaxRingFrame = 1518;       // 1514 + 802.1Q tag, without CRC
    static constexpr uint64_t kPciClockPeriodNs = 30;   // QEMU PCI_PERIOD (33 MHz)

    // `memory` is where the chip's DMA goes; `backend` may be null (frames are dropped) and
    // can be set later with set_backend().
    Rtl8139(Clock& clock, GuestMemory& memory, NetBackend* backend, Rtl8139Options options = {});
    ~Rtl8139() override = default;

    void set_backend(NetBackend* backend) { backend_ = backend; }

    // NetFrontend.
    bool can_receive() const override;
    bool receive(std::span<const uint8_t> frame) override;

    // The cable (QEMU set_link): BMSR link bit and a link-change interrupt.
    void set_link_up(bool up);
    bool link_up() const { return (bmsr_ & kBmsrLink) != 0; }

    const std::array<uint8_t, 6>& configured_mac() const { return options_.mac; }
    uint16_t isr() const { return isr_; }
    uint16_t imr() const { return imr_; }
    const Eeprom93c46& eeprom() const { return eeprom_; }

    // The register file as the BARs see it (for tests and fuzzers that skip PCI).
    IoHandler& registers() { return regs_io_; }

    const char* name() const override { return "rtl8139"; }

  protected:
    void device_reset(ResetKind kind) override;
    void save_extra(StateWriter& out) const override;
    void load_extra(StateReader& in) override;

  private:
    static constexpr uint16_t kBmsrLink = 0x0004;

    struct Registers : IoHandler {
        explicit Registers(Rtl8139& d) : d(d) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;
        Rtl8139& d;
    };
    struct Rom : IoHandler {
        explicit Rom(Rtl8139& d) : d(d) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t, std::span<const uint8_t>) override {}
        Rtl8139& d;
    };

    struct Tally {
        uint64_t tx_ok = 0, rx_ok = 0, tx_err = 0;
        uint32_t rx_err = 0;
        uint16_t miss_pkt = 0, fae = 0;
        uint32_t tx_1col = 0, tx_mcol = 0;
        uint64_t rx_ok_phy = 0, rx_ok_brd = 0;
        uint32_t rx_ok_mul = 0;
        uint16_t tx_abt = 0, tx_undrn = 0;
    };

    // Register access, QEMU's readb/readw/readl and writeb/writew/writel.
    uint32_t read8(unsigned addr);
    uint32_t read16(unsigned addr);
    uint32_t read32(unsigned addr);
    void write8(unsigned addr, uint8_t v);
    void write16(unsigned addr, uint16_t v);
    void write32(unsigned addr, uint32_t v);

    void power_on_state();
    void soft_reset(); // CR.RST, 9346CR auto-load and device reset (QEMU rtl8139_reset)
    void reset_phy();
    void reset_rx_ring(uint32_t size);
    void update_irq();
    void notify_receive_ready();

    void write_cr(uint8_t v);
    uint8_t read_cr() const;
    void write_cr9346(uint8_t v);
    uint8_t read_cr9346() const;
    void write_tcr(uint32_t v);
    void write_rcr(uint32_t v);
    void write_isr(uint16_t v);
    void write_tsd(unsigned descriptor, uint32_t v);
    uint16_t read_tsad() const;
    bool config_writable() const;

    // Timer.
    uint32_t tctr() const;
    void set_next_timer();
    void timer_fired();

    // DMA: false (and a master abort recorded) when the range is not guest RAM or bus mastering
    // is off.
    bool dma_read(uint64_t addr, std::span<uint8_t> out);
    bool dma_write(uint64_t addr, std::span<const uint8_t> in);
    void master_abort(uint64_t addr, size_t len, bool write);

    // Transmit.
    void transmit_c_mode();
    void cplus_transmit();
    bool cplus_transmit_one();
    void transfer_frame(std::span<const uint8_t> frame, const uint8_t* vlan_tag);
    void dump_tally(uint64_t addr);

    // Receive.
    bool deliver(std::span<const uint8_t> frame);
    bool ring_receive(std::span<const uint8_t> frame, uint16_t status);
    bool cplus_receive(std::span<const uint8_t> frame, uint16_t status);
    void ring_write(std::span<const uint8_t> data);
    bool cplus_rx_valid() const { return rdsar_lo_ != 0 || rdsar_hi_ != 0; }
    uint32_t ring_free() const;

    Clock& clock_;
    GuestMemory& memory_;
    NetBackend* backend_;
    Rtl8139Options options_;
    uint32_t rom_bar_size_ = 0;

    // Register state (QEMU RTL8139State).
    std::array<uint8_t, 6> idr_{};
    std::array<uint8_t, 8> mar_{};
    std::array<uint32_t, kTxDescriptors> tsd_{};
    std::array<uint32_t, kTxDescriptors> tsad_{};
    uint32_t rbstart_ = 0;
    uint32_t rx_buf_size_ = 8192;
    uint32_t rx_read_ = 0;  // CAPR + 16
    uint32_t rx_write_ = 0; // CBR
    uint16_t isr_ = 0, imr_ = 0;
    uint32_t tcr_ = 0, rcr_ = 0, mpc_ = 0;
    uint16_t cscr_ = 0;
    uint8_t cr9346_ = 0, config0_ = 0, config1_ = 0, config3_ = 0, config4_ = 0, config5_ = 0;
    bool clock_enabled_ = true;
    uint8_t cr_ = 0;
    uint16_t mulint_ = 0;
    uint16_t bmcr_ = 0, bmsr_ = 0, anar_ = 0, anlpar_ = 0, aner_ = 0;
    uint16_t cpcr_ = 0;
    uint8_t etthr_ = 0;
    unsigned cur_tx_ = 0;
    bool cplus_enabled_ = false;
    unsigned cur_cplus_rx_ = 0, cur_cplus_tx_ = 0;
    uint32_t rdsar_lo_ = 0, rdsar_hi_ = 0;
    Eeprom93c46 eeprom_;
    uint64_t tctr_base_ = 0; // clock time at which TCTR was 0
    uint32_t timer_int_ = 0;
    Tally tally_;

    // C+ transmit assembly (FS..LS).
    std::vector<uint8_t> tx_buf_;
    uint32_t tx_len_ = 0;
    bool tx_discard_ = false; // a segment of the frame being assembled could not be read

    bool tx_active_ = false; // no nested transmit (a backend calling back into the chip)
    bool rx_active_ = false; // no nested receive

    Registers regs_io_{*this};
    Rom rom_io_{*this};
    Timer timer_;
    RateLimiter dma_log_{8, 4096};
};

} // namespace hvm
