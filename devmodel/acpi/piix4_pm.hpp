// Intel 82371AB PIIX4 function 3, power management, at 00:01.3 as QEMU's `pc` has it on a PIIX3
// board (82371AB datasheet §3.4 and §7; ACPI 1.0b §4.7; QEMU hw/acpi/piix4.c, hw/acpi/core.c).
// 8086:7113 rev 03, class 068000, status 0x0280, INTA# (the SCI is wired to ISA IRQ 9, not
// through PIRQ routing).
//
// Config registers:
//  - PMBA 0x40 (bits 15:6, bit 0 reads 1 = I/O) places the 64-byte PM block; PMREGMISC 0x80
//    bit 0 enables it. Either write moves the block on the PIO bus (QEMU pm_io_space_update).
//  - SMBBA 0x90 (bits 15:4, bit 0 reads 1) and SMBHSTCFG 0xD2 bit 0 place the 16-byte SMBus host
//    block. Its bus has no devices: a started transaction ends at once with DEV_ERR, the host is
//    never busy, no interrupt is raised. (QEMU has SPD EEPROMs there; no guest needs them.)
//  - DEVACTB 0x58-0x5B: 0x5B bit 1 (APMC_EN) reads 1 from reset because the VM has no SMM, which
//    makes SeaBIOS skip its SMM setup (QEMU piix4_reset). 0x5F, 0x63, 0x67 carry the device
//    resource bits QEMU sets for LPT at 0x378 and COM1/COM2 (piix4_pm_machine_ready).
//
// PM block (offsets from PMBA; FADT: PM1a_EVT +0 len 4, PM1a_CNT +4 len 2, PM_TMR +8 len 4):
//  - PM1_STS (+0, write-1-to-clear): TMR_STS, BM_STS, GBL_STS, PWRBTN_STS, RTC_STS, WAK_STS.
//  - PM1_EN (+2): TMR_EN, GBL_EN, PWRBTN_EN, RTC_EN.
//  - PM1_CNT (+4): SCI_EN (reads 1 from reset: no SMM, so no ACPI_ENABLE handshake; QEMU's
//    acpi_only), SLP_TYP, SLP_EN (write-only). SLP_EN with SLP_TYP 0 (S5) or 2 (S4, per
//    etc/system-states) powers off; SLP_TYP 1 (S3) needs a platform suspend hvm does not have and
//    is logged and ignored.
//  - PM_TMR (+8): 24-bit counter at 3.579545 MHz from the Clock (the FADT says TMR_VAL_EXT=0).
//    TMR_STS is set whenever bit 23 toggles; a Timer fires at that moment only while TMR_EN is
//    set and TMR_STS clear, otherwise the status is computed when read (QEMU acpi_pm_tmr_*).
//    As in QEMU, TMR_STS reads 1 right after reset until the guest clears it.
//  - Other offsets read all-ones (nothing decodes them).
// GPE0 block at 0xAFE0 (fixed, 4 bytes: STS 0-1 write-1-to-clear, EN 2-3); bit 1 = PCI hotplug,
// bit 2 = CPU hotplug in QEMU's DSDT.
// SCI = level on ISA IRQ 9, recomputed after every PM1/GPE change: asserted iff
// (PM1_STS & PM1_EN & {TMR, GBL, PWRBTN, RTC}) or (GPE0_STS & GPE0_EN); not gated by SCI_EN
// (QEMU acpi_update_sci).
// APM ports 0xB2 (APMC) / 0xB3 (APMS): plain storage; 0xF1/0xF0 to APMC would set/clear SCI_EN
// only on a machine with an SMI_CMD (not acpi_only), and the SMI other values raise when
// APMC_EN is set has no target without SMM, so it is logged.
#pragma once
#include <array>
#include <cstdint>

#include "base/clock.hpp"
#include "base/log.hpp"
#include "devmodel/irq/irq_pin.hpp"
#include "devmodel/pci/pci_device.hpp"
#include "devmodel/platform.hpp"

namespace hvm {

struct Piix4PmOptions {
    bool lpt_at_378 = false; // device resource bits in 0x5F / 0x63 / 0x67 (as QEMU reports them)
    bool com1_at_3f8 = true;
    bool com2_at_2f8 = false;
    bool smm = false; // hvm has no SMM; true would make SCI_EN start clear and APMC_EN start 0
};

class Piix4Pm : public PciDevice {
  public:
    static constexpr uint16_t kVendor = 0x8086, kDevice = 0x7113;
    static constexpr uint8_t kRevision = 0x03;

    // Config registers.
    static constexpr unsigned kPmba = 0x40;
    static constexpr unsigned kDevactb = 0x58;
    static constexpr unsigned kPmRegMisc = 0x80;
    static constexpr unsigned kSmbba = 0x90;
    static constexpr unsigned kSmbHstCfg = 0xD2;
    static constexpr uint8_t kApmcEn = 0x02;            // DEVACTB byte 3 (0x5B) bit 1
    static constexpr uint16_t kInitialSmbBase = 0xB100; // QEMU's pc: SeaBIOS moves it to 0x700

    // PM block.
    static constexpr unsigned kPmBlockSize = 64;
    static constexpr unsigned kPm1Sts = 0x00, kPm1En = 0x02, kPm1Cnt = 0x04, kPmTmr = 0x08;
    static constexpr uint16_t kTmrSts = 0x0001, kBmSts = 0x0010, kGblSts = 0x0020,
                              kPwrbtnSts = 0x0100, kRtcSts = 0x0400, kWakSts = 0x8000;
    static constexpr uint16_t kTmrEn = 0x0001, kGblEn = 0x0020, kPwrbtnEn = 0x0100, kRtcEn = 0x0400;
    static constexpr uint16_t kSciEn = 0x0001, kSlpTypShift = 10, kSlpTypMask = 0x1C00,
                              kSlpEn = 0x2000;
    static constexpr uint16_t kPm1StsBits =
        kTmrSts | kBmSts | kGblSts | kPwrbtnSts | kRtcSts | kWakSts;
    static constexpr uint16_t kPm1EnBits = kTmrEn | kGblEn | kPwrbtnEn | kRtcEn;
    static constexpr uint16_t kSciSources = kTmrEn | kGblEn | kPwrbtnEn | kRtcEn;
    static constexpr uint64_t kPmTimerHz = 3579545;
    static constexpr uint32_t kPmTimerMask = 0xFFFFFF;
    static constexpr uint8_t kSlpTypS5 = 0, kSlpTypS3 = 1, kSlpTypS4 = 2; // etc/system-states

    // GPE0 and APM.
    static constexpr uint16_t kGpe0Port = 0xAFE0;
    static constexpr unsigned kGpe0Length = 4;
    static constexpr uint16_t kApmPort = 0xB2; // 0xB2 APMC, 0xB3 APMS
    static constexpr uint8_t kApmAcpiEnable = 0xF1, kApmAcpiDisable = 0xF0;

    // SMBus host block.
    static constexpr unsigned kSmbBlockSize = 16;
    static constexpr unsigned kSmbHstSts = 0x00, kSmbHstCnt = 0x02;
    static constexpr uint8_t kSmbStsDevErr = 0x04, kSmbStsW1c = 0x1E, kSmbCntStart = 0x40;

    // `sci` is ISA IRQ 9 on the GSI router.
    Piix4Pm(Clock& clock, IrqPin sci, PlatformControl& platform, Piix4PmOptions options = {});

    // Register on the PIO bus: gpe0_io() at 0xAFE0 length 4 with AccessSizes{1,1}; apm_io() at
    // 0xB2 length 2 with AccessSizes{1,1}. The PM and SMBus blocks map themselves.
    IoHandler& gpe0_io() { return gpe_io_; }
    IoHandler& apm_io() { return apm_io_; }

    // The power button (QMP system_powerdown): PWRBTN_STS and an SCI, if the OS enabled
    // PWRBTN_EN (QEMU acpi_pm1_evt_power_down ignores a press the OS has not enabled).
    void press_power_button();
    // A general-purpose event (hotplug): sets GPE0_STS bit `bit` and updates the SCI.
    void raise_gpe(unsigned bit);

    uint16_t pm1_status(); // with TMR_STS brought up to date
    uint16_t pm1_enable() const { return pm1_en_; }
    uint16_t pm1_control() const { return pm1_cnt_; }
    uint32_t pm_timer(); // the 24-bit PM_TMR value
    bool sci_level() const { return sci_level_; }
    uint64_t pm_base() const { return pm_map_.base(); } // BusMapping::kUnmapped if off
    uint64_t smbus_base() const { return smb_map_.base(); }

    const char* name() const override { return "piix4-pm"; }

  protected:
    void config_written(unsigned offset, unsigned size) override;
    void device_reset(ResetKind kind) override;
    void save_extra(StateWriter& out) const override;
    void load_extra(StateReader& in) override;
    void sync_derived_state() override;

  private:
    struct PmIo : IoHandler {
        explicit PmIo(Piix4Pm& d) : d(d) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;
        Piix4Pm& d;
    };
    struct GpeIo : IoHandler {
        explicit GpeIo(Piix4Pm& d) : d(d) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;
        Piix4Pm& d;
    };
    struct ApmIo : IoHandler {
        explicit ApmIo(Piix4Pm& d) : d(d) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;
        Piix4Pm& d;
    };
    struct SmbusIo : IoHandler {
        explicit SmbusIo(Piix4Pm& d) : d(d) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;
        Piix4Pm& d;
    };

    uint64_t ticks() const; // PM timer ticks since an arbitrary origin
    void calc_overflow_time();
    void update_sci(bool force);
    void write_pm1_sts(uint16_t value);
    void write_pm1_en(uint16_t value);
    void write_pm1_cnt(uint16_t value);
    void reset_pm_registers();
    void update_io_spaces();

    Clock& clock_;
    IrqPin sci_;
    PlatformControl& platform_;
    Piix4PmOptions options_;

    uint16_t pm1_sts_ = 0;
    uint16_t pm1_en_ = 0;
    uint16_t pm1_cnt_ = 0;
    std::array<uint8_t, kGpe0Length / 2> gpe_sts_{};
    std::array<uint8_t, kGpe0Length / 2> gpe_en_{};
    uint64_t overflow_tick_ = 0; // next bit-23 toggle, in ticks()
    int64_t tick_offset_ = 0;    // ticks() = clock ticks + offset (keeps PM_TMR across a load)
    uint8_t apmc_ = 0, apms_ = 0;
    std::array<uint8_t, kSmbBlockSize> smb_{};
    bool sci_level_ = false;

    PmIo pm_io_{*this};
    GpeIo gpe_io_{*this};
    ApmIo apm_io_{*this};
    SmbusIo smb_io_{*this};
    BusMapping pm_map_;
    BusMapping smb_map_;
    Timer tmr_timer_;
    RateLimiter log_limit_{8, 4096};
};

} // namespace hvm
