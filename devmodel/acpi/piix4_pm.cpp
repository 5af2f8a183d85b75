#include "devmodel/acpi/piix4_pm.hpp"

#include "devmodel/pci/pci_bus.hpp"

namespace hvm {

namespace {
constexpr uint32_t kExtraVersion = 1;
constexpr uint64_t kNsPerSecond = 1000000000ull;
constexpr uint64_t kTmrBit23 = 0x800000; // TMR_STS is set when PM_TMR bit 23 toggles

uint64_t ns_to_pm_ticks(uint64_t ns) {
    return uint64_t((unsigned __int128)ns * Piix4Pm::kPmTimerHz / kNsPerSecond);
}
// First nanosecond at which ns_to_pm_ticks() reaches `ticks`.
uint64_t pm_ticks_to_ns(uint64_t ticks) {
    unsigned __int128 n = (unsigned __int128)ticks * kNsPerSecond;
    n = (n + Piix4Pm::kPmTimerHz - 1) / Piix4Pm::kPmTimerHz;
    return n > UINT64_MAX ? UINT64_MAX : uint64_t(n);
}

// The part of a register [reg, reg + len) that an access [offset, offset + data.size()) covers:
// the bytes written, shifted into place, and a mask of the bits they cover.
bool covered(uint64_t offset, std::span<const uint8_t> data, unsigned reg, unsigned len,
             uint32_t& value, uint32_t& mask) {
    value = mask = 0;
    for (size_t i = 0; i < data.size(); i++) {
        uint64_t a = offset + i;
        if (a < reg || a >= reg + len) continue;
        unsigned shift = unsigned(a - reg) * 8;
        value |= uint32_t(data[i]) << shift;
        mask |= 0xFFu << shift;
    }
    return mask != 0;
}
} // namespace

Piix4Pm::Piix4Pm(Clock& clock, IrqPin sci, PlatformControl& platform, Piix4PmOptions options)
    : PciDevice(PciIdentity{kVendor, kDevice, kRevision, 0x068000, 0, pci::kQemuSubsystemVendor,
                            pci::kQemuSubsystem, 1,
                            pci::kStatusDevselMedium | pci::kStatusFastBackToBack}),
      clock_(clock), sci_(sci), platform_(platform), options_(options),
      pm_map_(kPmBlockSize, &pm_io_, AccessSizes{1, 4}, "piix4-pm"),
      smb_map_(kSmbBlockSize, &smb_io_, AccessSizes{1, 1}, "piix4-smbus"),
      tmr_timer_(clock, [this] { update_sci(false); }) {
    // PMBA: base in bits 15:6, bit 0 hard-wired to 1 (I/O space).
    set_config_dword(kPmba, 0x1);
    set_wmask_byte(kPmba, 0xC0);
    set_wmask_byte(kPmba + 1, 0xFF);
    set_wmask_byte(kPmba + 2, 0);
    set_wmask_byte(kPmba + 3, 0);
    set_wmask_byte(kPmRegMisc, 0x01);
    // SMBBA: base in bits 15:4, bit 0 hard-wired to 1. QEMU's pc starts it at 0xB100, enabled.
    set_config_dword(kSmbba, kInitialSmbBase | 0x1);
    set_wmask_byte(kSmbba, 0xF0);
    set_wmask_byte(kSmbba + 1, 0xFF);
    set_wmask_byte(kSmbba + 2, 0);
    set_wmask_byte(kSmbba + 3, 0);
    set_config_byte(kSmbHstCfg, 0x09);
    set_wmask_byte(kSmbHstCfg, 0x0F);
    set_config_byte(kDevactb + 3, options_.smm ? 0 : kApmcEn);
    // Device resource enables as QEMU's piix4_pm_machine_ready reports the ISA devices.
    set_config_byte(0x5F, uint8_t(0x10 | (options_.lpt_at_378 ? 0x80 : 0)));
    set_config_byte(0x63, 0x60);
    set_config_byte(0x67,
                    uint8_t((options_.com1_at_3f8 ? 0x08 : 0) | (options_.com2_at_2f8 ? 0x90 : 0)));
    reset_pm_registers();
}

// ---- PM timer and SCI ----------------------------------------------------------------------

uint64_t Piix4Pm::ticks() const {
    return ns_to_pm_ticks(clock_.now_ns()) + uint64_t(tick_offset_);
}

uint32_t Piix4Pm::pm_timer() {
    return uint32_t(ticks() & kPmTimerMask);
}

void Piix4Pm::calc_overflow_time() {
    overflow_tick_ = (ticks() + kTmrBit23) & ~(kTmrBit23 - 1);
}

uint16_t Piix4Pm::pm1_status() {
    if (ticks() >= overflow_tick_) pm1_sts_ |= kTmrSts;
    return pm1_sts_;
}

void Piix4Pm::update_sci(bool force) {
    uint16_t sts = pm1_status();
    bool gpe = false;
    for (size_t i = 0; i < gpe_sts_.size(); i++) gpe |= (gpe_sts_[i] & gpe_en_[i]) != 0;
    bool level = (sts & pm1_en_ & kSciSources) != 0 || gpe;
    if (force || level != sci_level_) {
        sci_level_ = level;
        sci_.set(level);
    }
    // A timer only while someone waits for the next bit-23 toggle: TMR_EN set, TMR_STS clear.
    if ((pm1_en_ & kTmrEn) && !(sts & kTmrSts)) {
        uint64_t raw = overflow_tick_ - uint64_t(tick_offset_);
        tmr_timer_.arm(pm_ticks_to_ns(raw));
    } else {
        tmr_timer_.cancel();
    }
}

void Piix4Pm::write_pm1_sts(uint16_t value) {
    uint16_t sts = pm1_status();
    if (sts & value & kTmrSts) calc_overflow_time(); // the next toggle from now on
    pm1_sts_ &= uint16_t(~value);
    update_sci(false);
}

void Piix4Pm::write_pm1_en(uint16_t value) {
    pm1_en_ = value & kPm1EnBits;
    update_sci(false);
}

void Piix4Pm::write_pm1_cnt(uint16_t value) {
    pm1_cnt_ = value & uint16_t(~kSlpEn); // SLP_EN is write-only
    if (!(value & kSlpEn)) return;
    unsigned typ = (value & kSlpTypMask) >> kSlpTypShift;
    switch (typ) {
    case kSlpTypS5: platform_.request_poweroff(); break;
    case kSlpTypS4: // suspend to disk: the OS saved its image, the machine turns off
        platform_.request_poweroff();
        break;
    case kSlpTypS3:
        if (log_limit_.allow()) LOG_WARN("piix4-pm: S3 suspend requested; hvm cannot suspend");
        break;
    default:
        if (log_limit_.allow()) LOG_DEBUG("piix4-pm: SLP_EN with unused SLP_TYP %u", typ);
        break;
    }
}

void Piix4Pm::press_power_button() {
    if (!(pm1_en_ & kPwrbtnEn)) return;
    pm1_sts_ |= kPwrbtnSts;
    update_sci(false);
}

void Piix4Pm::raise_gpe(unsigned bit) {
    if (bit >= 8 * gpe_sts_.size()) return;
    gpe_sts_[bit / 8] |= uint8_t(1u << (bit % 8));
    update_sci(false);
}

// ---- register windows ----------------------------------------------------------------------

void Piix4Pm::PmIo::io_read(uint64_t offset, std::span<uint8_t> data) {
    uint16_t sts = d.pm1_status();
    uint32_t tmr = d.pm_timer(); // one sample for the whole access
    for (size_t i = 0; i < data.size(); i++) {
        uint64_t a = offset + i;
        uint8_t v = 0xFF;
        if (a < kPm1En)
            v = uint8_t(sts >> (8 * (a - kPm1Sts)));
        else if (a < kPm1Cnt)
            v = uint8_t(d.pm1_en_ >> (8 * (a - kPm1En)));
        else if (a < kPm1Cnt + 2)
            v = uint8_t(d.pm1_cnt_ >> (8 * (a - kPm1Cnt)));
        else if (a >= kPmTmr && a < kPmTmr + 4)
            v = uint8_t(tmr >> (8 * (a - kPmTmr)));
        data[i] = v;
    }
}

void Piix4Pm::PmIo::io_write(uint64_t offset, std::span<const uint8_t> data) {
    uint32_t v, m;
    if (covered(offset, data, kPm1Sts, 2, v, m)) d.write_pm1_sts(uint16_t(v));
    if (covered(offset, data, kPm1En, 2, v, m)) d.write_pm1_en(uint16_t((d.pm1_en_ & ~m) | v));
    if (covered(offset, data, kPm1Cnt, 2, v, m)) d.write_pm1_cnt(uint16_t((d.pm1_cnt_ & ~m) | v));
    // PM_TMR is read-only; nothing else decodes.
}

void Piix4Pm::GpeIo::io_read(uint64_t offset, std::span<uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++) {
        uint64_t a = offset + i;
        size_t half = kGpe0Length / 2;
        data[i] = a < half ? d.gpe_sts_[a] : a < kGpe0Length ? d.gpe_en_[a - half] : 0xFF;
    }
}

void Piix4Pm::GpeIo::io_write(uint64_t offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++) {
        uint64_t a = offset + i;
        size_t half = kGpe0Length / 2;
        if (a < half)
            d.gpe_sts_[a] &= uint8_t(~data[i]);
        else if (a < kGpe0Length)
            d.gpe_en_[a - half] = data[i];
    }
    d.update_sci(false);
}

void Piix4Pm::ApmIo::io_read(uint64_t offset, std::span<uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++)
        data[i] = offset + i == 0 ? d.apmc_ : offset + i == 1 ? d.apms_ : 0xFF;
}

void Piix4Pm::ApmIo::io_write(uint64_t offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++) {
        uint8_t v = data[i];
        if (offset + i == 1) {
            d.apms_ = v;
            continue;
        }
        if (offset + i != 0) continue;
        d.apmc_ = v;
        // ACPI 1.0b §4.7.2.5 handshake, only meaningful with an SMI_CMD port in the FADT.
        if (d.options_.smm && v == kApmAcpiEnable) d.pm1_cnt_ |= kSciEn;
        if (d.options_.smm && v == kApmAcpiDisable) d.pm1_cnt_ &= uint16_t(~kSciEn);
        if (v != kApmAcpiEnable && v != kApmAcpiDisable &&
            (d.config_byte(kDevactb + 3) & kApmcEn) && d.log_limit_.allow())
            LOG_DEBUG("piix4-pm: APMC 0x%02x would raise an SMI; hvm has no SMM", v);
    }
}

void Piix4Pm::SmbusIo::io_read(uint64_t offset, std::span<uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++)
        data[i] = offset + i < kSmbBlockSize ? d.smb_[offset + i] : 0xFF;
}

void Piix4Pm::SmbusIo::io_write(uint64_t offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++) {
        uint64_t a = offset + i;
        uint8_t v = data[i];
        if (a == kSmbHstSts) {
            d.smb_[a] &= uint8_t(~(v & kSmbStsW1c));
        } else if (a == kSmbHstCnt) {
            d.smb_[a] = v & uint8_t(~kSmbCntStart); // START is a command, not state
            // No device answers on this SMBus: the transaction fails at the address phase.
            if (v & kSmbCntStart) d.smb_[kSmbHstSts] |= kSmbStsDevErr;
        } else if (a < kSmbBlockSize) {
            d.smb_[a] = v;
        }
    }
}

// ---- config space, reset, state ------------------------------------------------------------

void Piix4Pm::update_io_spaces() {
    if (!bus()) return;
    uint64_t pm = BusMapping::kUnmapped, smb = BusMapping::kUnmapped;
    if (config_byte(kPmRegMisc) & 1) pm = config_dword(kPmba) & 0xFFC0;
    if (config_byte(kSmbHstCfg) & 1) smb = config_dword(kSmbba) & 0xFFF0;
    pm_map_.set_base(bus()->pio(), pm);
    smb_map_.set_base(bus()->pio(), smb);
}

void Piix4Pm::config_written(unsigned offset, unsigned size) {
    if (overlaps(offset, size, kPmba, 4) || overlaps(offset, size, kPmRegMisc, 1) ||
        overlaps(offset, size, kSmbba, 4) || overlaps(offset, size, kSmbHstCfg, 1))
        update_io_spaces();
}

void Piix4Pm::reset_pm_registers() {
    pm1_sts_ = 0;
    pm1_en_ = 0;
    pm1_cnt_ = options_.smm ? 0 : kSciEn; // acpi_only: no ACPI_ENABLE handshake exists
    overflow_tick_ = 0;                   // QEMU: TMR_STS reads set until first cleared
    gpe_sts_.fill(0);
    gpe_en_.fill(0);
    apmc_ = apms_ = 0;
    smb_.fill(0);
    tmr_timer_.cancel();
}

void Piix4Pm::device_reset(ResetKind) {
    // QEMU piix4_reset.
    for (unsigned i = 0; i < 4; i++) set_config_byte(kDevactb + i, 0);
    if (!options_.smm) set_config_byte(kDevactb + 3, kApmcEn);
    set_config_byte(kPmba, 0x01);
    set_config_byte(kPmRegMisc, 0);
    reset_pm_registers();
    update_sci(false);
}

void Piix4Pm::sync_derived_state() {
    update_io_spaces();
}

void Piix4Pm::save_extra(StateWriter& out) const {
    uint64_t now = ticks();
    uint16_t sts = pm1_sts_ | (now >= overflow_tick_ ? kTmrSts : 0);
    out.begin("piix4-pm/regs", kExtraVersion);
    out.put(sts);
    out.put(pm1_en_);
    out.put(pm1_cnt_);
    out.put_bytes(gpe_sts_);
    out.put_bytes(gpe_en_);
    out.put<uint64_t>(now);
    out.put<int64_t>(int64_t(overflow_tick_ - now)); // <= 0: toggle already seen
    out.put(apmc_);
    out.put(apms_);
    out.put_bytes(smb_);
    out.put<uint8_t>(sci_level_);
}

void Piix4Pm::load_extra(StateReader& in) {
    in.begin("piix4-pm/regs", kExtraVersion, kExtraVersion);
    uint16_t sts = in.get<uint16_t>(), en = in.get<uint16_t>(), cnt = in.get<uint16_t>();
    std::array<uint8_t, kGpe0Length / 2> gsts, gen;
    in.get_bytes(gsts);
    in.get_bytes(gen);
    uint64_t now_saved = in.get<uint64_t>();
    int64_t overflow_delta = in.get<int64_t>();
    uint8_t apmc = in.get<uint8_t>(), apms = in.get<uint8_t>();
    std::array<uint8_t, kSmbBlockSize> smb;
    in.get_bytes(smb);
    uint8_t level = in.get<uint8_t>();
    if ((sts & ~kPm1StsBits) || (en & ~kPm1EnBits) || (cnt & kSlpEn) || level > 1)
        throw StateError("piix4-pm: bad PM1 registers");
    if (overflow_delta > int64_t(kTmrBit23) || now_saved > (uint64_t(1) << 62))
        throw StateError("piix4-pm: bad PM timer state");
    if (smb[kSmbHstCnt] & kSmbCntStart) throw StateError("piix4-pm: bad SMBus state");

    pm1_sts_ = sts;
    pm1_en_ = en;
    pm1_cnt_ = cnt;
    gpe_sts_ = gsts;
    gpe_en_ = gen;
    // PM_TMR continues from the saved count on this host's clock.
    tick_offset_ = int64_t(now_saved - ns_to_pm_ticks(clock_.now_ns()));
    overflow_tick_ = overflow_delta < 0 && uint64_t(-overflow_delta) > now_saved
                         ? 0
                         : now_saved + uint64_t(overflow_delta);
    apmc_ = apmc;
    apms_ = apms;
    smb_ = smb;
    sci_level_ = level != 0;
    update_sci(true); // the wire carries the level the registers say
}

} // namespace hvm
