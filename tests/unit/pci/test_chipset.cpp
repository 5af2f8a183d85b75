// i440FX host bridge and PIIX3 ISA bridge: Appendix A values, PAM, SMRAM, PIRQ routing, 0xCF9.
#include <doctest/doctest.h>

#include "devmodel/pci/i440fx.hpp"
#include "devmodel/pci/piix3.hpp"
#include "tests/unit/pci/pci_test_support.hpp"

using namespace hvm;
using namespace hvm::test;

namespace {

struct RecordingPam : PamListener {
    std::vector<std::pair<unsigned, PamState>> calls;
    std::vector<bool> smram;
    void pam_changed(unsigned segment, PamState state) override {
        calls.push_back({segment, state});
    }
    void smram_changed(bool open) override { smram.push_back(open); }
    PamState last(unsigned segment) const {
        PamState s = PamState::Pci;
        for (auto& c : calls)
            if (c.first == segment) s = c.second;
        return s;
    }
};

constexpr uint8_t kHost = pci::devfn(0, 0);
constexpr uint8_t kIsa = pci::devfn(1, 0);
constexpr uint64_t kGiB = 1ull << 30;

struct Chipset {
    PciRig rig;
    RecordingPam pam;
    FakePlatform platform;
    I440fxHostBridge host{pam, kGiB};
    Piix3IsaBridge isa{rig.router, platform};
    Chipset() {
        rig.pci.attach(host, kHost);
        rig.pci.attach(isa, kIsa);
        rig.pci.set_reset_control(&isa.reset_control());
        pam.calls.clear();
        pam.smram.clear();
    }
};

} // namespace

TEST_CASE("i440FX identity and reset values match QEMU 7.2 (Appendix A)") {
    Chipset c;
    CHECK(c.rig.cfg_read(kHost, 0x00, 4) == 0x12378086u);
    CHECK(c.rig.cfg_read(kHost, 0x08, 4) == 0x06000002u);
    CHECK(c.rig.cfg_read(kHost, 0x0C, 4) == 0x00000000u); // header type 0
    CHECK(c.rig.cfg_read(kHost, 0x2C, 4) == 0x11001AF4u); // SeaBIOS needs 1AF4:1100
    CHECK(c.rig.cfg_read(kHost, 0x04, 4) == 0u);
    CHECK(c.rig.cfg_read(kHost, 0x57, 1) == 0x80u); // 1 GiB / 8 MiB
    CHECK(c.rig.cfg_read(kHost, 0x58, 4) == 0u);
    CHECK(c.rig.cfg_read(kHost, 0x5C, 4) == 0u);
    CHECK(c.rig.cfg_read(kHost, 0x70, 4) == 0x00020000u); // SMRAM 0x72 = 0x02
    // SeaBIOS sets IO|MEM|SERR: the measured 0x0103.
    c.rig.cfg_write(kHost, 0x04, 2, 0x0107 | 0x0040);
    CHECK(c.rig.cfg_read(kHost, 0x04, 2) == 0x0107u);
    I440fxHostBridge big(c.pam, 64 * kGiB);
    CHECK(big.config_byte(0x57) == 0xFF);
}

TEST_CASE("PAM: SeaBIOS's dword writes split into segments and reach the listener") {
    Chipset c;
    c.rig.cfg_write(kHost, 0x58, 4, 0x33333000);
    c.rig.cfg_write(kHost, 0x5C, 4, 0x33333333);
    for (unsigned s = 0; s < I440fxHostBridge::kPamSegments; s++) {
        CAPTURE(s);
        CHECK(c.host.pam_state(s) == PamState::ReadWrite);
        CHECK(c.pam.last(s) == PamState::ReadWrite);
    }
    CHECK(c.pam.calls.size() == 13); // every segment changed once
    c.pam.calls.clear();
    c.rig.cfg_write(kHost, 0x58, 4, 0x11111000);
    c.rig.cfg_write(kHost, 0x5C, 4, 0x31111111);
    CHECK(c.rig.cfg_read(kHost, 0x58, 4) == 0x11111000u);
    CHECK(c.rig.cfg_read(kHost, 0x5C, 4) == 0x31111111u);
    for (unsigned s = 0; s < 12; s++) CHECK(c.pam.last(s) == PamState::ReadOnly);
    CHECK(c.host.pam_state(12) == PamState::ReadWrite); // 0xEC000 stays RW
    CHECK(c.pam.calls.size() == 12);                    // segment 12 did not change
    auto seg = I440fxHostBridge::pam_segment(12);
    CHECK(seg.base == 0xEC000u);
    CHECK(seg.size == 0x4000u);
    CHECK(I440fxHostBridge::pam_segment(0).base == 0xF0000u);
    CHECK(I440fxHostBridge::pam_segment(0).size == 0x10000u);
    CHECK(I440fxHostBridge::pam_segment(1).base == 0xC0000u);
}

TEST_CASE("PAM: byte writes, the four states, reserved bits") {
    Chipset c;
    c.rig.cfg_write(kHost, 0x5A, 1, 0x21); // 0xC0000 read-only, 0xC4000 write-only
    CHECK(c.pam.calls == std::vector<std::pair<unsigned, PamState>>{{1, PamState::ReadOnly},
                                                                    {2, PamState::WriteOnly}});
    c.rig.cfg_write(kHost, 0x5A, 1, 0x03);
    CHECK(c.host.pam_state(1) == PamState::ReadWrite);
    CHECK(c.host.pam_state(2) == PamState::Pci);
    c.rig.cfg_write(kHost, 0x59, 1, 0xFF);
    CHECK(c.rig.cfg_read(kHost, 0x59, 1) == 0x30u);
    c.rig.cfg_write(kHost, 0x5E, 1, 0xFF);
    CHECK(c.rig.cfg_read(kHost, 0x5E, 1) == 0x33u);
    size_t n = c.pam.calls.size();
    c.rig.cfg_write(kHost, 0x5E, 1, 0x33); // no change, no call
    CHECK(c.pam.calls.size() == n);
}

TEST_CASE("PAM and SMRAM return to reset values on a reset, and the listener hears it") {
    Chipset c;
    c.rig.cfg_write(kHost, 0x58, 4, 0x11111000);
    c.rig.cfg_write(kHost, 0x72, 1, 0x40);
    c.pam.calls.clear();
    c.pam.smram.clear();
    c.host.reset(ResetKind::Hard);
    CHECK(c.rig.cfg_read(kHost, 0x58, 4) == 0u);
    CHECK(c.rig.cfg_read(kHost, 0x72, 1) == 0x02u);
    CHECK(c.pam.calls.size() == 13); // the whole picture after a reset
    for (unsigned s = 0; s < 13; s++) CHECK(c.pam.last(s) == PamState::Pci);
    CHECK(c.pam.smram == std::vector<bool>{false});
}

TEST_CASE("SMRAM: D_OPEN shows DRAM under the VGA window until D_LCK") {
    Chipset c;
    c.rig.cfg_write(kHost, 0x72, 1, 0xFF);
    CHECK(c.rig.cfg_read(kHost, 0x72, 1) == 0x3Au); // D_LCK set clears D_OPEN; base fixed
    CHECK(c.pam.smram.empty());                     // D_OPEN never became visible
    c.host.reset(ResetKind::Hard);
    c.pam.smram.clear();
    c.rig.cfg_write(kHost, 0x72, 1, 0x42);
    CHECK(c.host.smram_dram_visible());
    CHECK(c.pam.smram == std::vector<bool>{true});
    c.rig.cfg_write(kHost, 0x72, 1, 0x52); // lock: closes
    CHECK(c.pam.smram == std::vector<bool>{true, false});
    c.rig.cfg_write(kHost, 0x72, 1, 0x42); // locked: ignored
    CHECK(c.rig.cfg_read(kHost, 0x72, 1) == 0x12u);
    CHECK(c.pam.smram.size() == 2);
}

TEST_CASE("i440FX save/load restores PAM and tells the listener") {
    Chipset a;
    a.rig.cfg_write(kHost, 0x5C, 4, 0x31111111);
    StateWriter w;
    a.host.save(w);
    Chipset b;
    StateReader r(w.data());
    b.host.load(r);
    CHECK(b.rig.cfg_read(kHost, 0x5C, 4) == 0x31111111u);
    CHECK(b.pam.last(5) == PamState::ReadOnly);
    CHECK(b.pam.last(12) == PamState::ReadWrite);
    CHECK(b.host.pam_state(12) == PamState::ReadWrite);
}

TEST_CASE("PIIX3 identity and QEMU's reset values") {
    Chipset c;
    CHECK(c.rig.cfg_read(kIsa, 0x00, 4) == 0x70008086u);
    CHECK(c.rig.cfg_read(kIsa, 0x04, 4) == 0x02000000u); // cmd 0, status DEVSEL medium
    CHECK(c.rig.cfg_read(kIsa, 0x08, 4) == 0x06010000u);
    CHECK(c.rig.cfg_read(kIsa, 0x0E, 1) == 0x80u); // multi-function
    CHECK(c.rig.cfg_read(kIsa, 0x2C, 4) == 0x11001AF4u);
    CHECK(c.rig.cfg_read(kIsa, 0x4C, 1) == 0x4Du);
    CHECK(c.rig.cfg_read(kIsa, 0x4E, 1) == 0x03u);
    CHECK(c.rig.cfg_read(kIsa, 0x60, 4) == 0x80808080u);
    CHECK(c.rig.cfg_read(kIsa, 0x68, 4) == 0x00000200u); // 0x69 = 0x02
    CHECK(c.rig.cfg_read(kIsa, 0x70, 1) == 0x80u);
    CHECK(c.rig.cfg_read(kIsa, 0x74, 4) == 0x0C0C0000u);
    CHECK(c.rig.cfg_read(kIsa, 0x78, 1) == 0x02u);
    CHECK(c.rig.cfg_read(kIsa, 0xA0, 1) == 0x08u);
    CHECK(c.rig.cfg_read(kIsa, 0xA8, 1) == 0x0Fu);
    // Function 0 answers, functions it does not implement do not.
    CHECK(c.rig.cfg_read(pci::devfn(1, 5), 0, 4) == 0xFFFFFFFFu);
}

TEST_CASE("PIRQ routing: SeaBIOS's 10/10/11/11 and the swizzle of Appendix A") {
    Chipset c;
    CHECK(PciIrqRouter::pirq_of(pci::devfn(1, 2), 3) == 3); // UHCI INTD# -> PIRQD
    CHECK(PciIrqRouter::pirq_of(pci::devfn(3, 0), 0) == 2); // RTL8139 INTA# -> PIRQC
    CHECK(PciIrqRouter::pirq_of(pci::devfn(1, 3), 0) == 0); // PIIX4 PM INTA# -> PIRQA
    CHECK(PciIrqRouter::pirq_of(pci::devfn(0, 0), 0) == 3);
    CHECK(PciIrqRouter::pirq_of(pci::devfn(2, 0), 3) == 0);
    c.rig.cfg_write(kIsa, 0x60, 4, 0x0B0B0A0A);
    TestFunction nic;
    c.rig.pci.attach(nic, pci::devfn(3, 0));
    nic.set_intx(true);
    CHECK(c.rig.isa.level(11));
    CHECK_FALSE(c.rig.isa.level(10));
    nic.set_intx(false);
    CHECK_FALSE(c.rig.isa.level(11));
}

TEST_CASE("PIRQ re-routing moves an asserted line: old IRQ lowered, new one raised") {
    Chipset c;
    c.rig.cfg_write(kIsa, 0x60, 4, 0x0B0B0A0A);
    TestFunction nic;
    c.rig.pci.attach(nic, pci::devfn(3, 0)); // PIRQC
    nic.set_intx(true);
    c.rig.isa.calls.clear();
    c.rig.cfg_write(kIsa, 0x62, 1, 0x05); // the OS's LNKC._SRS picks IRQ 5
    CHECK(c.rig.isa.calls == std::vector<std::pair<unsigned, bool>>{{11, false}, {5, true}});
    c.rig.isa.calls.clear();
    c.rig.cfg_write(kIsa, 0x62, 1, 0x05); // same value: nothing moves
    CHECK(c.rig.isa.calls.empty());
    nic.set_intx(false);
    CHECK(c.rig.isa.calls == std::vector<std::pair<unsigned, bool>>{{5, false}});
    // Re-routing a quiet PIRQ touches no line.
    c.rig.isa.calls.clear();
    c.rig.cfg_write(kIsa, 0x62, 1, 0x0A);
    CHECK(c.rig.isa.calls.empty());
}

TEST_CASE("shared INTx: two functions on one PIRQ, and two PIRQs on one IRQ, are OR-ed") {
    Chipset c;
    c.rig.cfg_write(kIsa, 0x60, 4, 0x0B0B0A0A);
    TestFunction a, b(1, 0x0002), x(1, 0x0003), y(1, 0x0004);
    c.rig.pci.attach(a, pci::devfn(3, 0)); // PIRQC
    c.rig.pci.attach(b, pci::devfn(7, 0)); // (7 - 1 + 0) & 3 = 2: PIRQC too
    a.set_intx(true);
    b.set_intx(true);
    a.set_intx(false);
    CHECK(c.rig.isa.level(11));
    b.set_intx(false);
    CHECK_FALSE(c.rig.isa.level(11));
    c.rig.pci.attach(x, pci::devfn(5, 0)); // PIRQA -> 10
    c.rig.pci.attach(y, pci::devfn(6, 0)); // PIRQB -> 10
    x.set_intx(true);
    y.set_intx(true);
    x.set_intx(false);
    CHECK(c.rig.isa.level(10));
    CHECK(c.rig.isa.rises[10] == 1);
    y.set_intx(false);
    CHECK_FALSE(c.rig.isa.level(10));
    // Re-driving a level a pin already has is not a new edge.
    x.set_intx(true);
    x.set_intx(true);
    CHECK(c.rig.isa.rises[10] == 2);
}

TEST_CASE("disabled routes: bit 7 or a value >= 16 cut the PIRQ off; enabling delivers") {
    Chipset c;
    TestFunction nic;
    c.rig.pci.attach(nic, pci::devfn(3, 0)); // PIRQC, still 0x80 from reset
    nic.set_intx(true);
    CHECK(c.rig.isa.calls.empty());
    c.rig.cfg_write(kIsa, 0x62, 1, 0x10);
    CHECK(c.rig.isa.calls.empty());
    c.rig.cfg_write(kIsa, 0x62, 1, 0x8B); // IRQ 11 but IRQEN# set
    CHECK(c.rig.isa.calls.empty());
    c.rig.cfg_write(kIsa, 0x62, 1, 0x0B);
    CHECK(c.rig.isa.level(11));
    c.rig.cfg_write(kIsa, 0x62, 1, 0x80); // the OS's _DIS
    CHECK_FALSE(c.rig.isa.level(11));
    CHECK(c.rig.router.route(2) == 0x80);
}

TEST_CASE("PIIX3 reset restores the routes (lowering a routed line) and the RC register") {
    Chipset c;
    c.rig.cfg_write(kIsa, 0x60, 4, 0x0B0B0A0A);
    TestFunction nic;
    c.rig.pci.attach(nic, pci::devfn(3, 0));
    nic.set_intx(true);
    c.rig.out(0xCF9, 1, 0x02);
    c.isa.reset(ResetKind::Hard);
    CHECK(c.rig.cfg_read(kIsa, 0x60, 4) == 0x80808080u);
    CHECK_FALSE(c.rig.isa.level(11));
    CHECK(c.rig.in(0xCF9, 1) == 0u);
}

TEST_CASE("0xCF9: bit 2 resets the platform whatever bit 1 says; bit 1 alone is stored") {
    Chipset c;
    c.rig.out(0xCF9, 1, 0x02);
    CHECK(c.platform.resets == 0);
    CHECK(c.rig.in(0xCF9, 1) == 0x02u);
    c.rig.out(0xCF9, 1, 0x06); // SeaBIOS qemu_reboot: 0x02 then 0x06
    CHECK(c.platform.resets == 1);
    c.rig.out(0xCF9, 1, 0x04); // soft reset is the same single reset path
    CHECK(c.platform.resets == 2);
    c.rig.out(0xCF9, 1, 0xF9); // other bits are not stored
    CHECK(c.rig.in(0xCF9, 1) == 0x00u);
    c.rig.outl(0xCF8, 0x80000400); // a dword at 0xCF8 is CONFIG_ADDRESS, never RC
    CHECK(c.platform.resets == 2);
}

TEST_CASE("PIIX3 save/load restores routes and re-routes asserted lines") {
    Chipset a;
    a.rig.cfg_write(kIsa, 0x60, 4, 0x0B0B0A0A);
    a.rig.out(0xCF9, 1, 0x02);
    StateWriter w;
    a.isa.save(w);

    Chipset b;
    TestFunction nic;
    b.rig.pci.attach(nic, pci::devfn(3, 0));
    nic.set_intx(true);
    CHECK_FALSE(b.rig.isa.level(11));
    StateReader r(w.data());
    b.isa.load(r);
    CHECK(r.at_end());
    CHECK(b.rig.cfg_read(kIsa, 0x60, 4) == 0x0B0B0A0Au);
    CHECK(b.rig.isa.level(11));
    CHECK(b.isa.reset_control_value() == 0x02);

    std::vector<uint8_t> bad = w.data();
    bad.back() = 0x04; // an RC value no guest can store
    StateReader rb(bad);
    CHECK_THROWS_AS(b.isa.load(rb), StateError);
}
