#include <doctest/doctest.h>

#include <vector>

#include "devmodel/misc/i8042.hpp"
#include "fake_platform.hpp"

using namespace hvm;
using hvm::test::FakePlatform;
using hvm::test::RecordingIrqs;
using K = I8042;

namespace {

struct Rig {
    FakePlatform platform;
    RecordingIrqs irqs;
    I8042 kbc{platform, IrqPin(&irqs, 1), IrqPin(&irqs, 12)};
    Rig() { kbc.reset(ResetKind::PowerOn); }
    // Through the port handlers, as the bus calls them.
    uint8_t in60() {
        uint8_t b;
        kbc.data_port().io_read(0, std::span<uint8_t>(&b, 1));
        return b;
    }
    uint8_t in64() {
        uint8_t b;
        kbc.command_port().io_read(0, std::span<uint8_t>(&b, 1));
        return b;
    }
    void out60(uint8_t v) { kbc.data_port().io_write(0, std::span<const uint8_t>(&v, 1)); }
    void out64(uint8_t v) { kbc.command_port().io_write(0, std::span<const uint8_t>(&v, 1)); }
    // Everything currently readable, the way a driver drains the output buffer.
    std::vector<uint8_t> drain() {
        std::vector<uint8_t> got;
        for (int i = 0; i < 64 && (in64() & K::kStatOutputFull); i++) got.push_back(in60());
        return got;
    }
};

using Bytes = std::vector<uint8_t>;

} // namespace

TEST_CASE("i8042: power-on state is QEMU's") {
    Rig r;
    CHECK(r.in64() == 0x18); // command/data flag, keyboard unlocked
    CHECK(r.kbc.command_byte() == 0x03);
    CHECK(r.kbc.output_port() == 0xCF);
    CHECK_FALSE(r.irqs.level[1]);
    CHECK_FALSE(r.irqs.level[12]);
    r.out64(K::kCmdReadMode);
    CHECK(r.in64() == 0x19);
    CHECK(r.irqs.level[1]);
    CHECK(r.in60() == 0x03);
    CHECK(r.in64() == 0x18);
    CHECK_FALSE(r.irqs.level[1]);
    CHECK(r.in60() == 0x03); // nothing new: the last byte again
}

TEST_CASE("i8042: self test, interface tests, input port") {
    Rig r;
    r.out64(K::kCmdSelfTest);
    CHECK(r.drain() == Bytes{0x55});
    CHECK((r.in64() & K::kStatSystem));
    r.out64(K::kCmdKbdTest);
    CHECK(r.drain() == Bytes{0x00});
    r.out64(K::kCmdAuxTest);
    CHECK(r.drain() == Bytes{0x00});
    r.out64(K::kCmdReadInputPort);
    CHECK(r.drain() == Bytes{0x80});
}

TEST_CASE("i8042: command byte write and read back; its interrupt bits gate the lines") {
    Rig r;
    r.out64(K::kCmdWriteMode);
    r.out60(0x65); // translate, disable-nothing, system, kbd int
    CHECK(r.kbc.command_byte() == 0x65);
    r.out64(K::kCmdReadMode);
    CHECK(r.drain() == Bytes{0x65});
    // Translation changes the keyboard's identify answer.
    r.out60(Ps2Keyboard::kCmdIdentify);
    CHECK(r.drain() == Bytes{0xFA, 0xAB, 0x41});
    r.out64(K::kCmdWriteMode);
    r.out60(0x00); // no interrupts
    r.out64(K::kCmdReadMode);
    CHECK((r.in64() & K::kStatOutputFull));
    CHECK_FALSE(r.irqs.level[1]);
    r.out64(K::kCmdWriteMode); // enabling the interrupt while a byte waits raises the line
    r.out60(K::kModeKbdInt);
    CHECK(r.irqs.level[1]);
    CHECK(r.drain() == Bytes{0x00});
}

TEST_CASE("i8042: A20 and reset through the output port") {
    Rig r;
    r.out64(K::kCmdWriteOutputPort);
    r.out60(0xDD); // A20 off, reset high
    CHECK(r.platform.a20_writes == std::vector<bool>{false});
    CHECK(r.platform.resets == 0);
    r.out64(K::kCmdReadOutputPort);
    CHECK(r.drain() == Bytes{0xDD});
    r.out64(K::kCmdWriteOutputPort);
    r.out60(0xDF);
    CHECK(r.platform.a20_line);
    CHECK(r.platform.resets == 0);
    r.out64(K::kCmdDisableA20);
    CHECK_FALSE(r.platform.a20_line);
    CHECK((r.kbc.output_port() & K::kOutA20) == 0);
    r.out64(K::kCmdEnableA20);
    CHECK(r.platform.a20_line);
    CHECK((r.kbc.output_port() & K::kOutA20));
    r.out64(K::kCmdWriteOutputPort);
    r.out60(0xDE); // reset line low
    CHECK(r.platform.resets == 1);
}

TEST_CASE("i8042: F0-FF pulse commands reset only when they pulse bit 0") {
    Rig r;
    r.out64(0xFE);
    CHECK(r.platform.resets == 1);
    r.out64(0xFF);
    r.out64(0xF1);
    r.out64(0xFD);
    CHECK(r.platform.resets == 1);
    r.out64(0xF0);
    r.out64(0xFA);
    CHECK(r.platform.resets == 3);
    CHECK(r.platform.a20_writes.empty());
}

TEST_CASE("i8042: keyboard reset answers FA AA, one IRQ 1 edge per byte") {
    Rig r;
    r.out60(Ps2Keyboard::kCmdReset);
    CHECK(r.irqs.raises[1] == 1);
    CHECK(r.in64() == 0x19);
    CHECK(r.in60() == 0xFA);
    CHECK(r.irqs.raises[1] == 2); // the next byte is a new edge
    CHECK(r.in60() == 0xAA);
    CHECK_FALSE(r.irqs.level[1]);
    CHECK(r.in64() == 0x18);
    CHECK(r.irqs.raises[12] == 0);
}

TEST_CASE("i8042: keyboard command protocol") {
    Rig r;
    r.out60(Ps2Keyboard::kCmdIdentify);
    CHECK(r.drain() == Bytes{0xFA, 0xAB, 0x83});
    r.out60(Ps2Keyboard::kCmdEcho);
    CHECK(r.drain() == Bytes{0xEE});
    r.out60(Ps2Keyboard::kCmdSetLeds);
    CHECK(r.drain() == Bytes{0xFA});
    r.out60(0x07);
    CHECK(r.drain() == Bytes{0xFA});
    CHECK(r.kbc.keyboard().leds() == 7);
    r.out60(Ps2Keyboard::kCmdScancodeSet);
    r.out60(0x00);
    CHECK(r.drain() == Bytes{0xFA, 0xFA, 0x02});
    r.out60(Ps2Keyboard::kCmdScancodeSet);
    r.out60(0x05);
    CHECK(r.drain() == Bytes{0xFA, 0xFE});
    r.out60(Ps2Keyboard::kCmdResetDisable);
    CHECK(r.drain() == Bytes{0xFA});
    CHECK_FALSE(r.kbc.keyboard().scanning_enabled());
    r.out60(Ps2Keyboard::kCmdEnable);
    CHECK(r.drain() == Bytes{0xFA});
    CHECK(r.kbc.keyboard().scanning_enabled());
    r.out60(0x42);
    CHECK(r.drain() == Bytes{0xFE});
}

TEST_CASE(
    "i8042: a disabled keyboard port holds its bytes; writing to the keyboard re-enables it") {
    Rig r;
    r.out64(K::kCmdKbdDisable);
    CHECK((r.kbc.command_byte() & K::kModeDisableKbd));
    r.out64(K::kCmdWriteKbdBuffer); // the controller's own bytes still come through
    r.out60(0x12);
    CHECK(r.drain() == Bytes{0x12});
    r.out60(Ps2Keyboard::kCmdEcho);
    CHECK(r.drain() == Bytes{0xEE}); // QEMU: data to the keyboard clears the disable bit
    CHECK_FALSE((r.kbc.command_byte() & K::kModeDisableKbd));
    // Queue keyboard bytes while disabled via the command byte, then enable.
    r.out64(K::kCmdWriteMode);
    r.out60(0x13);                                     // disable keyboard, interrupts on
    r.kbc.keyboard().write(Ps2Keyboard::kCmdIdentify); // as if sent earlier
    CHECK_FALSE((r.in64() & K::kStatOutputFull));
    r.out64(K::kCmdKbdEnable);
    CHECK(r.drain() == Bytes{0xFA, 0xAB, 0x83});
}

TEST_CASE("i8042: the aux port and the mouse") {
    Rig r;
    r.out64(K::kCmdWriteAux);
    r.out60(Ps2Mouse::kCmdGetId);
    CHECK(r.in64() == (0x18 | K::kStatOutputFull | K::kStatAuxOutputFull));
    CHECK(r.irqs.level[12]);
    CHECK_FALSE(r.irqs.level[1]);
    CHECK(r.drain() == Bytes{0xFA, 0x00});
    CHECK_FALSE(r.irqs.level[12]);
    r.out64(K::kCmdWriteAux);
    r.out60(Ps2Mouse::kCmdReset);
    CHECK(r.drain() == Bytes{0xFA, 0xAA, 0x00});
    // IntelliMouse knock: sample rates 200, 100, 80.
    for (uint8_t rate : {200, 100, 80}) {
        r.out64(K::kCmdWriteAux);
        r.out60(Ps2Mouse::kCmdSetSampleRate);
        r.out64(K::kCmdWriteAux);
        r.out60(rate);
    }
    CHECK(r.drain() == Bytes{0xFA, 0xFA, 0xFA, 0xFA, 0xFA, 0xFA});
    r.out64(K::kCmdWriteAux);
    r.out60(Ps2Mouse::kCmdGetId);
    CHECK(r.drain() == Bytes{0xFA, 0x03});
    r.out64(K::kCmdWriteAux);
    r.out60(Ps2Mouse::kCmdStatus);
    CHECK(r.drain() == Bytes{0xFA, 0x00, 0x02, 80});
    r.out64(K::kCmdWriteAux);
    r.out60(Ps2Mouse::kCmdReadData);
    CHECK(r.drain() == Bytes{0xFA, 0x08, 0x00, 0x00, 0x00});
    // Wrap mode echoes until EC.
    r.out64(K::kCmdWriteAux);
    r.out60(Ps2Mouse::kCmdSetWrap);
    r.out64(K::kCmdWriteAux);
    r.out60(0x33);
    r.out64(K::kCmdWriteAux);
    r.out60(Ps2Mouse::kCmdResetWrap);
    CHECK(r.drain() == Bytes{0xFA, 0x33, 0xFA});
}

TEST_CASE("i8042: Linux i8042 probe: self test, AUX loop-back, AUX enable bits") {
    Rig r;
    r.drain();
    r.out64(K::kCmdSelfTest);
    CHECK(r.drain() == Bytes{0x55});
    r.out64(K::kCmdReadMode);
    uint8_t ctr = r.drain().at(0);
    // i8042_check_aux: D3 loop-back must come back as aux data.
    r.out64(K::kCmdWriteAuxBuffer);
    r.out60(0xA5);
    CHECK((r.in64() & K::kStatAuxOutputFull));
    CHECK(r.irqs.level[12]);
    CHECK(r.in60() == 0xA5);
    r.out64(K::kCmdAuxDisable);
    r.out64(K::kCmdReadMode);
    CHECK((r.drain().at(0) & K::kModeDisableAux));
    r.out64(K::kCmdAuxEnable);
    r.out64(K::kCmdReadMode);
    CHECK_FALSE((r.drain().at(0) & K::kModeDisableAux));
    r.out64(K::kCmdWriteMode);
    r.out60(ctr);
    CHECK(r.kbc.command_byte() == ctr);
}

TEST_CASE("i8042: a disabled aux port holds mouse bytes") {
    Rig r;
    r.out64(K::kCmdAuxDisable);
    r.kbc.mouse().write(Ps2Mouse::kCmdGetId);
    CHECK_FALSE((r.in64() & K::kStatOutputFull));
    r.out64(K::kCmdAuxEnable);
    CHECK(r.drain() == Bytes{0xFA, 0x00});
}

TEST_CASE("i8042: the controller's answer waits behind a presented byte, then goes first") {
    Rig r;
    r.out60(Ps2Keyboard::kCmdIdentify); // FA presented, AB 83 queued in the keyboard
    r.out64(K::kCmdReadMode);
    CHECK(r.drain() == Bytes{0xFA, 0x03, 0xAB, 0x83});
}

TEST_CASE("i8042: unknown commands are ignored; reset restores everything") {
    Rig r;
    r.out64(0x01);
    r.out64(0xC8);
    CHECK_FALSE((r.in64() & K::kStatOutputFull));
    r.out64(K::kCmdWriteMode);
    r.out60(0x30);
    r.out60(Ps2Keyboard::kCmdReset);
    r.kbc.reset(ResetKind::Hard);
    CHECK(r.in64() == 0x18);
    CHECK(r.kbc.command_byte() == 0x03);
    CHECK(r.drain().empty());
    CHECK_FALSE(r.irqs.level[1]);
}

TEST_CASE("i8042: save/load round trip in the middle of a reply") {
    Rig a;
    a.out64(K::kCmdWriteMode);
    a.out60(0x47);
    a.out60(Ps2Keyboard::kCmdIdentify);
    CHECK(a.in60() == 0xFA);
    a.out64(K::kCmdWriteAux);
    a.out60(Ps2Mouse::kCmdEnable);
    a.out64(K::kCmdWriteOutputPort);
    StateWriter w;
    a.kbc.save(w);

    Rig b;
    StateReader in(w.data());
    b.kbc.load(in);
    CHECK(in.at_end());
    CHECK(b.in64() == a.in64());
    CHECK(b.irqs.level[1] == a.irqs.level[1]);
    CHECK(b.kbc.command_byte() == 0x47);
    b.out60(0xDF); // the pending D1 survived
    a.out60(0xDF);
    CHECK(b.platform.a20_writes == std::vector<bool>{true});
    CHECK(b.drain() == a.drain());
    CHECK((b.kbc.mouse().status() & Ps2Mouse::kStatusEnabled));
    b.out60(Ps2Keyboard::kCmdIdentify); // translation came back with the command byte
    CHECK(b.drain() == Bytes{0xFA, 0xAB, 0x41});
}

TEST_CASE("i8042: load rejects inconsistent state and changes nothing") {
    Rig a;
    a.out64(K::kCmdReadMode);
    StateWriter w;
    a.kbc.save(w);
    std::vector<uint8_t> good = w.data();
    const size_t header = 4 + 5 + 4; // "i8042"
    auto corrupt = [&](size_t field, uint8_t value) {
        std::vector<uint8_t> bad = good;
        bad[header + field * 5 + 4] = value; // each field: 4-byte length + 1 byte
        Rig b;
        StateReader in(bad);
        CHECK_THROWS_AS(b.kbc.load(in), StateError);
        CHECK(b.in64() == 0x18);
        CHECK(b.kbc.command_byte() == 0x03);
    };
    corrupt(0, 0x1A);        // IBF is never set
    corrupt(0, 0x28 | 0x10); // AUX full without full
    corrupt(0, 0x18);        // OBF clear while a byte is presented
    corrupt(3, 0x99);        // pending write command that does not exist
    corrupt(5, 7);           // output source out of range
    corrupt(6, 2);           // flag not 0/1
}
