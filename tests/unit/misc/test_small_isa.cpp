#include <doctest/doctest.h>

#include <string>

#include "base/clock.hpp"
#include "base/error.hpp"
#include "devmodel/misc/debug_exit.hpp"
#include "devmodel/misc/debugcon.hpp"
#include "devmodel/misc/isa_device_options.hpp"
#include "devmodel/misc/port92.hpp"
#include "devmodel/misc/post_code_port.hpp"
#include "fake_platform.hpp"
#include "vmexit/bus.hpp"

using namespace hvm;
using hvm::test::FakePlatform;
using hvm::test::RecordingBackend;

namespace {

uint8_t in8(Bus& bus, uint16_t port) {
    uint8_t b = 0;
    bus.read(port, std::span<uint8_t>(&b, 1));
    return b;
}
void out8(Bus& bus, uint16_t port, uint8_t v) {
    bus.write(port, std::span<const uint8_t>(&v, 1));
}
void out16(Bus& bus, uint16_t port, uint16_t v) {
    uint8_t b[2] = {uint8_t(v), uint8_t(v >> 8)};
    bus.write(port, std::span<const uint8_t>(b, 2));
}
void out32(Bus& bus, uint16_t port, uint32_t v) {
    uint8_t b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
    bus.write(port, std::span<const uint8_t>(b, 4));
}

} // namespace

TEST_CASE("port 0x92: A20 follows bit 1, reset on a 0->1 edge of bit 0") {
    FakePlatform platform;
    Port92 p(platform);
    Bus bus("pio");
    bus.add(Port92::kPort, 1, &p, AccessSizes{1, 1}, "port92");
    p.reset(ResetKind::PowerOn);
    CHECK(in8(bus, 0x92) == 0x00);
    out8(bus, 0x92, 0x02);
    CHECK(platform.a20_line);
    CHECK(platform.resets == 0);
    out8(bus, 0x92, 0x00);
    CHECK_FALSE(platform.a20_line);
    out8(bus, 0x92, 0x03);
    CHECK(platform.resets == 1);
    out8(bus, 0x92, 0x03); // still 1: no new edge
    CHECK(platform.resets == 1);
    CHECK(in8(bus, 0x92) == 0x03);
    p.reset(ResetKind::Hard); // clears only the reset bit, as QEMU
    CHECK(in8(bus, 0x92) == 0x02);
    out8(bus, 0x92, 0x03);
    CHECK(platform.resets == 2);

    StateWriter w;
    p.save(w);
    Port92 q(platform);
    StateReader r(w.data());
    q.load(r);
    CHECK(q.value() == 0x03);
    CHECK(platform.resets == 2); // loading does not act on the platform
}

TEST_CASE("port 0x80: codes with timestamps, all-ones on read, bounded history") {
    FakeClock clock(1000);
    PostCodePort post(clock);
    Bus bus("pio");
    bus.add(PostCodePort::kPort, 1, &post, AccessSizes{1, 1}, "post");
    CHECK(in8(bus, 0x80) == 0xFF);
    out8(bus, 0x80, 0x11);
    clock.advance(500);
    out8(bus, 0x80, 0x22);
    CHECK(post.last_code() == 0x22);
    CHECK(post.write_count() == 2);
    auto r = post.recent();
    REQUIRE(r.size() == 2);
    CHECK(r[0].code == 0x11);
    CHECK(r[0].time_ns == 1000);
    CHECK(r[1].code == 0x22);
    CHECK(r[1].time_ns == 1500);
    for (int i = 0; i < 100; i++) out8(bus, 0x80, uint8_t(i));
    r = post.recent();
    REQUIRE(r.size() == PostCodePort::kHistory);
    CHECK(r.front().code == 100 - PostCodePort::kHistory);
    CHECK(r.back().code == 99);
    CHECK(post.write_count() == 102);
    post.reset(ResetKind::Hard);
    CHECK(post.last_code() == 99); // a reboot keeps the last code visible

    StateWriter w;
    post.save(w);
    PostCodePort other(clock);
    StateReader in(w.data());
    other.load(in);
    CHECK(other.last_code() == 99);
}

TEST_CASE("debugcon: bytes to the backend, reads return the readback value") {
    RecordingBackend backend;
    DebugCon con(&backend);
    DebugCon custom(&backend, 0x42);
    Bus bus("pio");
    bus.add(0xE9, 1, &con, AccessSizes{1, 1}, "debugcon");
    bus.add(0x402, 1, &custom, AccessSizes{1, 1}, "debugcon-bios");
    for (char c : std::string("SeaBIOS\n")) out8(bus, 0xE9, uint8_t(c));
    CHECK(backend.out == "SeaBIOS\n");
    CHECK(in8(bus, 0xE9) == 0xE9);
    CHECK(in8(bus, 0x402) == 0x42);
    out16(bus, 0x402, 0x4241); // a word write: only the byte at the port reaches the device
    CHECK(backend.out == "SeaBIOS\nA");
    DebugCon silent(nullptr);
    uint8_t b = 'x';
    silent.io_write(0, std::span<const uint8_t>(&b, 1)); // no backend: harmless
}

TEST_CASE("debug-exit: status is (value << 1) | 1 of the whole access") {
    FakePlatform platform;
    DebugExit exit_dev(platform);
    Bus bus("pio");
    bus.add(DebugExit::kDefaultPort, DebugExit::kDefaultSize, &exit_dev, AccessSizes{1, 4},
            "isa-debug-exit");
    out8(bus, 0x501, 0x00);
    out8(bus, 0x501, 0x10);
    out8(bus, 0x502, 0x01); // the second byte of the window counts too (QEMU ignores addr)
    out16(bus, 0x501, 0x0102);
    REQUIRE(platform.exits.size() == 4);
    CHECK(platform.exits[0] == 1);
    CHECK(platform.exits[1] == 33);
    CHECK(platform.exits[2] == 3);
    CHECK(platform.exits[3] == 0x205);
    CHECK(in8(bus, 0x501) == 0);

    DebugExit wide(platform); // iobase=0xf4,iosize=4, the common test-harness setup
    bus.add(0xF4, 4, &wide, AccessSizes{1, 4}, "isa-debug-exit-f4");
    out32(bus, 0xF4, 0x31);
    CHECK(platform.exits.back() == 0x63);
    CHECK(DebugExit::exit_status(0x7FFFFFFF) == int(0xFFFFFFFFu));
}

TEST_CASE("-device isa-debugcon / isa-debug-exit options") {
    auto con = parse_isa_debugcon({{"driver", "isa-debugcon"}, {"chardev", "dbg"}});
    CHECK(con.iobase == 0xE9);
    CHECK(con.readback == 0xE9);
    CHECK(con.chardev == "dbg");
    con = parse_isa_debugcon(
        {{"driver", "isa-debugcon"}, {"iobase", "0x402"}, {"chardev", "c"}, {"readback", "66"}});
    CHECK(con.iobase == 0x402);
    CHECK(con.readback == 66);
    auto ex = parse_isa_debug_exit({{"driver", "isa-debug-exit"}});
    CHECK(ex.iobase == 0x501);
    CHECK(ex.iosize == 2);
    ex = parse_isa_debug_exit({{"driver", "isa-debug-exit"}, {"iobase", "0xf4"}, {"iosize", "04"}});
    CHECK(ex.iobase == 0xF4);
    CHECK(ex.iosize == 4);
    CHECK(parse_isa_debug_exit({{"iobase", "010"}}).iobase == 8); // QEMU reads 0-prefixed as octal

    auto refused = [](auto fn) {
        try {
            fn();
            FAIL("accepted");
        } catch (const UserError& e) {
            std::string m = e.what();
            CHECK(m.rfind("-device isa-debug", 0) == 0);
            CHECK(m.find('\n') == std::string::npos);
        }
    };
    refused([] { parse_isa_debugcon({{"driver", "isa-debugcon"}}); }); // no chardev
    refused([] { parse_isa_debugcon({{"chardev", "c"}, {"iobase", "0x10000"}}); });
    refused([] { parse_isa_debugcon({{"chardev", "c"}, {"iobase", "-1"}}); });
    refused([] { parse_isa_debugcon({{"chardev", "c"}, {"iobase", "0x1g"}}); });
    refused([] { parse_isa_debugcon({{"chardev", "c"}, {"iobase", ""}}); });
    refused([] { parse_isa_debugcon({{"chardev", "c"}, {"bogus", "1"}}); });
    refused([] { parse_isa_debug_exit({{"iosize", "0"}}); });
    refused([] { parse_isa_debug_exit({{"iobase", "0xffff"}, {"iosize", "2"}}); });
    refused([] { parse_isa_debug_exit({{"iosize", "99999999999"}}); });
    refused([] { parse_isa_debug_exit({{"chardev", "x"}}); });
}
