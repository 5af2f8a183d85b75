// PIIX4 power management: config registers, PM block relocation, PM timer, SCI, S5, GPE0, APM.
#include <doctest/doctest.h>

#include "base/clock.hpp"
#include "devmodel/acpi/piix4_pm.hpp"
#include "tests/unit/pci/pci_test_support.hpp"

using namespace hvm;
using namespace hvm::test;

namespace {

constexpr uint8_t kPm = pci::devfn(1, 3);
constexpr uint64_t kNs = 1000000000ull;

uint64_t ticks_at(uint64_t ns) {
    return uint64_t((unsigned __int128)ns * 3579545 / kNs);
}
// First ns at which the PM timer reads `t` ticks.
uint64_t ns_for_ticks(uint64_t t) {
    return uint64_t(((unsigned __int128)t * kNs + 3579545 - 1) / 3579545);
}

struct PmRig {
    FakeClock clock;
    PciRig rig;
    Lines sci;
    FakePlatform platform;
    Piix4Pm pm;
    explicit PmRig(uint64_t start_ns = 0, Piix4PmOptions opt = {})
        : clock(start_ns), pm(clock, IrqPin(&sci, 9), platform, opt) {
        rig.pci.attach(pm, kPm);
        rig.pio.add(Piix4Pm::kGpe0Port, 4, &pm.gpe0_io(), AccessSizes{1, 1}, "gpe0");
        rig.pio.add(Piix4Pm::kApmPort, 2, &pm.apm_io(), AccessSizes{1, 1}, "apm");
    }
    // What SeaBIOS does: PMBA 0x601, PMREGMISC 1.
    void enable_at(uint16_t base) {
        rig.cfg_write(kPm, 0x40, 4, base | 1u);
        rig.cfg_write(kPm, 0x80, 1, 1);
    }
};

} // namespace

TEST_CASE("PIIX4 PM identity and reset values (Appendix A)") {
    PmRig p;
    auto& r = p.rig;
    CHECK(r.cfg_read(kPm, 0x00, 4) == 0x71138086u);
    CHECK(r.cfg_read(kPm, 0x04, 4) == 0x02800000u);
    CHECK(r.cfg_read(kPm, 0x08, 4) == 0x06800003u);
    CHECK(r.cfg_read(kPm, 0x0C, 4) == 0u);
    CHECK(r.cfg_read(kPm, 0x2C, 4) == 0x11001AF4u);
    CHECK(r.cfg_read(kPm, 0x3D, 1) == 1u);
    CHECK(r.cfg_read(kPm, 0x40, 4) == 0x00000001u);
    CHECK(r.cfg_read(kPm, 0x58, 4) == 0x02000000u); // 0x5B bit 1: no SMM
    CHECK(r.cfg_read(kPm, 0x5C, 4) == 0x10000000u); // 0x5F = 0x10
    CHECK(r.cfg_read(kPm, 0x60, 4) == 0x60000000u); // 0x63 = 0x60
    CHECK(r.cfg_read(kPm, 0x64, 4) == 0x08000000u); // 0x67 = 0x08: COM1
    CHECK(r.cfg_read(kPm, 0x80, 1) == 0u);
    CHECK(r.cfg_read(kPm, 0x90, 4) == 0x0000B101u);
    CHECK(r.cfg_read(kPm, 0xD2, 1) == 0x09u);
    CHECK(p.pm.pm_base() == BusMapping::kUnmapped);
    CHECK(p.pm.smbus_base() == 0xB100u);
    // SeaBIOS's programming gives the measured dump.
    p.enable_at(0x600);
    r.cfg_write(kPm, 0x90, 4, 0x701);
    r.cfg_write(kPm, 0x3C, 1, 9);
    CHECK(r.cfg_read(kPm, 0x40, 4) == 0x601u);
    CHECK(r.cfg_read(kPm, 0x80, 1) == 1u);
    CHECK(r.cfg_read(kPm, 0x90, 4) == 0x701u);
    CHECK(r.cfg_read(kPm, 0x3C, 1) == 9u);
    // Read-only bits of the base registers.
    r.cfg_write(kPm, 0x40, 4, 0xFFFFFFFF);
    CHECK(r.cfg_read(kPm, 0x40, 4) == 0x0000FFC1u);
    PmRig lpt(0, Piix4PmOptions{true, true, true, false});
    CHECK(lpt.rig.cfg_read(kPm, 0x5F, 1) == 0x90u);
    CHECK(lpt.rig.cfg_read(kPm, 0x67, 1) == 0x98u);
}

TEST_CASE("PM base relocation follows PMBA and PMREGMISC on the PIO bus") {
    PmRig p;
    p.rig.cfg_write(kPm, 0x40, 4, 0x601);
    CHECK(p.rig.pio.find(0x600) == nullptr); // not enabled yet
    p.rig.cfg_write(kPm, 0x80, 1, 1);
    REQUIRE(p.rig.pio.find(0x600) != nullptr);
    CHECK(p.pm.pm_base() == 0x600u);
    CHECK(p.rig.in(0x604, 2) == 0x0001u); // SCI_EN reads 1: no SMM (measured 0x604 = 1)
    CHECK(p.rig.pio.find(0x63F) != nullptr);
    CHECK(p.rig.in(0x60C, 4) == 0xFFFFFFFFu); // nothing decodes +0x0C
    p.rig.cfg_write(kPm, 0x40, 4, 0xB001);
    CHECK(p.rig.pio.find(0x600) == nullptr);
    CHECK(p.rig.in(0x604, 2) == 0xFFFFu);
    CHECK(p.rig.in(0xB004, 2) == 0x0001u);
    p.rig.cfg_write(kPm, 0x80, 1, 0);
    CHECK(p.rig.pio.find(0xB000) == nullptr);
    CHECK(p.pm.pm_base() == BusMapping::kUnmapped);
    // Reset disables the block again (QEMU piix4_reset).
    p.enable_at(0x600);
    p.pm.reset(ResetKind::Hard);
    CHECK(p.rig.pio.find(0x600) == nullptr);
    CHECK(p.rig.cfg_read(kPm, 0x40, 4) == 0x601u); // 0x40 low bits back to 1, 0x41 kept
}

TEST_CASE("PM timer: 3.579545 MHz from the clock, 24 bits, wraps") {
    PmRig p(5 * kNs);
    p.enable_at(0x600);
    uint32_t t0 = p.rig.in(0x608, 4);
    CHECK(t0 == (ticks_at(5 * kNs) & 0xFFFFFF));
    p.clock.advance(kNs);
    uint32_t t1 = p.rig.in(0x608, 4);
    CHECK(((t1 - t0) & 0xFFFFFF) == 3579545u);
    // Just before and after a 2^24 boundary.
    uint64_t wrap_ns = ns_for_ticks(uint64_t(1) << 26);
    p.clock.advance_to(wrap_ns - 1000);
    uint32_t before = p.rig.in(0x608, 4);
    CHECK(before > 0xFFF000u);
    CHECK(before <= 0xFFFFFFu);
    p.clock.advance_to(wrap_ns + 1000);
    uint32_t after = p.rig.in(0x608, 4);
    CHECK(after < 0x1000u);
    CHECK((after >> 24) == 0u); // only 24 bits
}

TEST_CASE("TMR_STS on bit-23 toggles and the SCI with TMR_EN, from a timer") {
    PmRig p;
    p.enable_at(0x600);
    CHECK((p.rig.in(0x600, 2) & Piix4Pm::kTmrSts) != 0); // QEMU: set right after reset
    p.rig.out(0x600, 2, Piix4Pm::kTmrSts);
    CHECK((p.rig.in(0x600, 2) & Piix4Pm::kTmrSts) == 0);
    p.rig.out(0x602, 2, Piix4Pm::kTmrEn);
    CHECK_FALSE(p.sci.level(9));
    uint64_t toggle = ns_for_ticks(0x800000);
    p.clock.advance_to(toggle - 1);
    CHECK_FALSE(p.sci.level(9));
    p.clock.advance_to(toggle); // the timer fires at the toggle, no register read needed
    CHECK(p.sci.level(9));
    CHECK(p.sci.calls.size() == 1);
    CHECK((p.rig.in(0x600, 2) & Piix4Pm::kTmrSts) != 0);
    // Acknowledge: SCI drops, the next toggle 2^23 ticks later raises it again.
    p.rig.out(0x600, 2, Piix4Pm::kTmrSts);
    CHECK_FALSE(p.sci.level(9));
    uint64_t next = ns_for_ticks(0x1000000);
    p.clock.advance_to(next - 1);
    CHECK_FALSE(p.sci.level(9));
    p.clock.advance_to(next);
    CHECK(p.sci.level(9));
    // Without TMR_EN the status still sets (on read) but nothing interrupts.
    p.rig.out(0x602, 2, 0);
    CHECK_FALSE(p.sci.level(9));
    p.rig.out(0x600, 2, Piix4Pm::kTmrSts);
    p.clock.advance_to(ns_for_ticks(0x1800000));
    CHECK_FALSE(p.sci.level(9));
    CHECK((p.rig.in(0x600, 2) & Piix4Pm::kTmrSts) != 0);
}

TEST_CASE("PM1_STS is write-1-to-clear per byte; SCI follows STS & EN") {
    PmRig p;
    p.enable_at(0x600);
    p.rig.out(0x600, 2, 0xFFFF); // clear everything, TMR_STS included
    p.rig.out(0x602, 2, Piix4Pm::kPwrbtnEn | Piix4Pm::kTmrEn);
    CHECK(p.rig.in(0x602, 2) == (Piix4Pm::kPwrbtnEn | Piix4Pm::kTmrEn));
    p.pm.press_power_button();
    CHECK(p.rig.in(0x600, 2) == Piix4Pm::kPwrbtnSts);
    CHECK(p.sci.level(9));
    p.rig.out(0x600, 1, 0xFF); // low byte: PWRBTN_STS is in the high byte, untouched
    CHECK(p.rig.in(0x600, 2) == Piix4Pm::kPwrbtnSts);
    CHECK(p.sci.level(9));
    p.rig.out(0x601, 1, 0x01); // high byte bit 0 = PWRBTN_STS
    CHECK(p.rig.in(0x600, 2) == 0);
    CHECK_FALSE(p.sci.level(9));
    // Status set while its enable is clear raises no SCI until the OS enables it.
    p.rig.out(0x602, 2, 0);
    p.pm.press_power_button(); // QEMU ignores a press the OS has not enabled
    CHECK(p.rig.in(0x600, 2) == 0);
    p.rig.out(0x602, 2, Piix4Pm::kPwrbtnEn);
    p.pm.press_power_button();
    CHECK(p.sci.level(9));
    p.rig.out(0x603, 1, 0x00); // PM1_EN high byte cleared by a byte write
    CHECK_FALSE(p.sci.level(9));
    CHECK(p.rig.in(0x600, 2) == Piix4Pm::kPwrbtnSts);
    p.rig.out(0x603, 1, 0x01);
    CHECK(p.sci.level(9));
}

TEST_CASE("GPE0 at 0xAFE0: STS write-1-to-clear, EN, SCI level recomputed") {
    PmRig p;
    p.rig.out(0xAFE2, 1, 0x06); // PCI and CPU hotplug bits enabled
    CHECK(p.rig.in(0xAFE0, 4) == 0x00060000u);
    p.pm.raise_gpe(2);
    CHECK(p.rig.in(0xAFE0, 1) == 0x04u);
    CHECK(p.sci.level(9));
    p.pm.raise_gpe(3); // not enabled
    p.rig.out(0xAFE0, 1, 0x04);
    CHECK(p.rig.in(0xAFE0, 1) == 0x08u);
    CHECK_FALSE(p.sci.level(9));
    p.rig.out(0xAFE2, 1, 0x08);
    CHECK(p.sci.level(9));
    p.rig.out(0xAFE2, 1, 0x00);
    CHECK_FALSE(p.sci.level(9));
    p.pm.raise_gpe(99); // out of range: ignored
    CHECK(p.rig.in(0xAFE0, 4) == 0x00000008u);
}

TEST_CASE("PM1_CNT: S5 and S4 power off, S3 does not, SLP_EN reads 0") {
    PmRig p;
    p.enable_at(0x600);
    p.rig.out(0x604, 2, 0x2001); // Windows: SLP_EN | SCI_EN, SLP_TYP 0
    CHECK(p.platform.poweroffs == 1);
    CHECK(p.rig.in(0x604, 2) == 0x0001u);
    p.rig.out(0x605, 1, 0x20); // a byte write of the high half merges with SCI_EN
    CHECK(p.platform.poweroffs == 2);
    CHECK(p.rig.in(0x604, 2) == 0x0001u);
    p.rig.out(0x604, 2, 0x2000); // SeaBIOS APM / the probe: SCI_EN written 0
    CHECK(p.platform.poweroffs == 3);
    CHECK(p.rig.in(0x604, 2) == 0x0000u);
    p.rig.out(0x604, 2, 0x2401); // S3
    CHECK(p.platform.poweroffs == 3);
    CHECK(p.rig.in(0x604, 2) == 0x0401u);
    p.rig.out(0x604, 2, 0x2801); // S4 (SLP_TYP 2 per etc/system-states)
    CHECK(p.platform.poweroffs == 4);
    p.rig.out(0x604, 2, 0x0001); // SLP_TYP without SLP_EN does nothing
    CHECK(p.platform.poweroffs == 4);
    p.rig.out(0x608, 4, 0); // PM_TMR is read-only
    CHECK(p.platform.poweroffs == 4);
}

TEST_CASE("APM ports store APMC/APMS; without SMM 0xF1/0xF0 leave SCI_EN alone") {
    PmRig p;
    p.enable_at(0x600);
    p.rig.out(0xB2, 1, 0xF0);
    CHECK(p.rig.in(0xB2, 1) == 0xF0u);
    CHECK(p.rig.in(0x604, 2) == 0x0001u);
    p.rig.out(0xB3, 1, 0x5A);
    CHECK(p.rig.in(0xB3, 1) == 0x5Au);
    PmRig smm(0, Piix4PmOptions{false, true, false, true});
    smm.enable_at(0x600);
    CHECK(smm.rig.in(0x604, 2) == 0u);
    CHECK(smm.rig.cfg_read(kPm, 0x5B, 1) == 0u);
    smm.rig.out(0xB2, 1, 0xF1);
    CHECK(smm.rig.in(0x604, 2) == 0x0001u);
    smm.rig.out(0xB2, 1, 0xF0);
    CHECK(smm.rig.in(0x604, 2) == 0u);
}

TEST_CASE("SMBus host: relocatable, no device answers, status write-1-to-clear") {
    PmRig p;
    REQUIRE(p.rig.pio.find(0xB100) != nullptr);
    p.rig.cfg_write(kPm, 0x90, 4, 0x701);
    CHECK(p.rig.pio.find(0xB100) == nullptr);
    REQUIRE(p.rig.pio.find(0x700) != nullptr);
    CHECK(p.rig.in(0x700, 1) == 0u); // idle
    p.rig.out(0x704, 1, 0xA1);       // read from SPD address 0x50
    p.rig.out(0x702, 1, 0x48);       // START, byte-data protocol
    CHECK(p.rig.in(0x700, 1) == Piix4Pm::kSmbStsDevErr);
    CHECK(p.rig.in(0x702, 1) == 0x08u);
    p.rig.out(0x700, 1, 0xFF);
    CHECK(p.rig.in(0x700, 1) == 0u);
    p.rig.cfg_write(kPm, 0xD2, 1, 0x08); // host disabled
    CHECK(p.rig.pio.find(0x700) == nullptr);
}

TEST_CASE("PIIX4 PM save/load: registers, PM block placement, PM timer continuity") {
    PmRig a(3 * kNs);
    a.enable_at(0x600);
    a.rig.out(0x600, 2, 0xFFFF);
    a.rig.out(0x602, 2, Piix4Pm::kPwrbtnEn | Piix4Pm::kTmrEn);
    a.pm.press_power_button();
    a.rig.out(0xAFE2, 1, 0x02);
    uint32_t tmr = a.rig.in(0x608, 4);
    StateWriter w;
    a.pm.save(w);

    PmRig b(100 * kNs); // a different host clock
    StateReader r(w.data());
    b.pm.load(r);
    CHECK(r.at_end());
    CHECK(b.pm.pm_base() == 0x600u);
    CHECK(b.rig.in(0x602, 2) == (Piix4Pm::kPwrbtnEn | Piix4Pm::kTmrEn));
    CHECK(b.rig.in(0x600, 2) == Piix4Pm::kPwrbtnSts);
    CHECK(b.sci.level(9));
    CHECK(b.rig.in(0xAFE2, 1) == 0x02u);
    CHECK(b.rig.in(0x608, 4) == tmr); // PM_TMR continues from the saved value
    b.clock.advance(kNs);
    CHECK(((b.rig.in(0x608, 4) - tmr) & 0xFFFFFF) == 3579545u);
    // The TMR_STS timer is armed again: clear PWRBTN, the SCI falls, the toggle raises it.
    b.rig.out(0x600, 2, Piix4Pm::kPwrbtnSts);
    CHECK_FALSE(b.sci.level(9));
    b.clock.advance(3 * kNs); // > 2^23 ticks
    CHECK(b.sci.level(9));

    std::vector<uint8_t> bad = w.data();
    // Corrupt PM1_CNT with SLP_EN: refused. Every field carries a 4-byte length. From the end:
    // SCI level 4+1, SMBus 4+16, APMS 4+1, APMC 4+1, overflow 4+8, ticks 4+8, GPE EN 4+2,
    // GPE STS 4+2, then PM1_CNT's 2 bytes.
    size_t off = bad.size() - (5 + 20 + 5 + 5 + 12 + 12 + 6 + 6 + 2);
    bad[off] = 0x00;
    bad[off + 1] = 0x20;
    StateReader rb(bad);
    CHECK_THROWS_AS(b.pm.load(rb), StateError);
}
