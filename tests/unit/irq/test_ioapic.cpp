#include <doctest/doctest.h>

#include <vector>

#include "devmodel/irq/ioapic.hpp"
#include "vmexit/bus.hpp"

using namespace hvm;

namespace {

// Stands in for the APIC bus: records messages; `accepting` local APICs take each one.
struct MessageLog : ApicMessageSink {
    std::vector<ApicMessage> sent;
    unsigned accepting = 1;
    unsigned deliver(const ApicMessage& msg) override {
        sent.push_back(msg);
        return accepting;
    }
};

constexpr uint64_t kBase = IoApic::kDefaultBase;

struct Board {
    FakeClock clock;
    MessageLog apics;
    IoApic ioapic;
    Bus mmio{"mmio"};

    explicit Board(uint8_t version = 0x11) : ioapic(apics, clock, version) {
        mmio.add(kBase, IoApic::kMmioSize, &ioapic, {4, 4}, "ioapic");
    }
    void write32(uint64_t addr, uint32_t v) {
        uint8_t b[4];
        le_store(b, v);
        mmio.write(addr, b);
    }
    uint32_t read32(uint64_t addr) {
        uint8_t b[4];
        mmio.read(addr, b);
        return uint32_t(le_load(b));
    }
    void write_reg(uint8_t index, uint32_t v) {
        write32(kBase + IoApic::kIoRegSel, index);
        write32(kBase + IoApic::kIoWin, v);
    }
    uint32_t read_reg(uint8_t index) {
        write32(kBase + IoApic::kIoRegSel, index);
        return read32(kBase + IoApic::kIoWin);
    }
    // Programs pin's redirection entry, high dword first (as Linux does).
    void program(unsigned pin, uint64_t entry) {
        write_reg(uint8_t(0x10 + 2 * pin + 1), uint32_t(entry >> 32));
        write_reg(uint8_t(0x10 + 2 * pin), uint32_t(entry));
    }
    uint64_t entry(unsigned pin) {
        uint64_t lo = read_reg(uint8_t(0x10 + 2 * pin));
        return lo | (uint64_t(read_reg(uint8_t(0x10 + 2 * pin + 1))) << 32);
    }
};

constexpr uint64_t kLevel = IoApic::kRteLevel;
constexpr uint64_t kMasked = IoApic::kRteMasked;
constexpr uint64_t kRemoteIrr = IoApic::kRteRemoteIrr;

} // namespace

TEST_CASE("after reset: ID 0, version 0x11 with 24 entries, every entry masked") {
    Board b;
    CHECK(b.read_reg(IoApic::kRegId) == 0);
    CHECK(b.read_reg(IoApic::kRegVersion) == 0x00170011);
    CHECK(b.read_reg(IoApic::kRegArbitration) == 0);
    for (unsigned pin = 0; pin < IoApic::kPins; pin++) CHECK(b.entry(pin) == kMasked);
    CHECK(b.read_reg(0x10 + 2 * 24) == 0); // past the table
}

TEST_CASE("ID is four bits, version and arbitration are read-only") {
    Board b;
    b.write_reg(IoApic::kRegId, 0xFF000000);
    CHECK(b.read_reg(IoApic::kRegId) == 0x0F000000);
    CHECK(b.read_reg(IoApic::kRegArbitration) == 0x0F000000);
    b.write_reg(IoApic::kRegVersion, 0);
    b.write_reg(IoApic::kRegArbitration, 0);
    CHECK(b.read_reg(IoApic::kRegVersion) == 0x00170011);
    CHECK(b.read32(kBase + IoApic::kIoRegSel) == IoApic::kRegVersion);
}

TEST_CASE("redirection entries keep the defined bits; status bits are read-only") {
    Board b;
    b.program(3, ~0ull);
    uint64_t writable = 0xFF00000000000000ull | 0x1FFFF;
    CHECK(b.entry(3) == (writable & ~(kRemoteIrr | IoApic::kRteDeliveryStatus)));
    b.program(3, 0x0300000000000A35ull | kMasked);
    CHECK(b.entry(3) == (0x0300000000000A35ull | kMasked));
}

TEST_CASE("edge entry: one message per rising edge, with the entry's fields") {
    Board b;
    // vector 0x34, lowest priority, logical destination 0x03
    b.program(4, 0x0300000000000934ull);
    b.ioapic.set_irq(4, true);
    REQUIRE(b.apics.sent.size() == 1);
    const ApicMessage& m = b.apics.sent[0];
    CHECK(m.vector == 0x34);
    CHECK(m.mode == ApicDeliveryMode::LowestPriority);
    CHECK(m.logical);
    CHECK(m.dest == 0x03);
    CHECK_FALSE(m.level_trigger);
    b.ioapic.set_irq(4, true); // still high: no new edge
    CHECK(b.apics.sent.size() == 1);
    CHECK((b.entry(4) & kRemoteIrr) == 0);
    b.ioapic.set_irq(4, false);
    b.ioapic.set_irq(4, true);
    CHECK(b.apics.sent.size() == 2);
}

TEST_CASE("an edge while the entry is masked is lost (82093AA)") {
    Board b;
    b.program(1, 0x31 | kMasked);
    b.ioapic.set_irq(1, true);
    b.ioapic.set_irq(1, false);
    b.program(1, 0x31);
    CHECK(b.apics.sent.empty());
    b.ioapic.set_irq(1, true);
    CHECK(b.apics.sent.size() == 1);
}

TEST_CASE("level entry: Remote IRR holds off repeats until the EOI, then re-delivers") {
    Board b;
    b.program(9, 0x39 | kLevel);
    b.ioapic.set_irq(9, true);
    REQUIRE(b.apics.sent.size() == 1);
    CHECK(b.apics.sent[0].level_trigger);
    CHECK(bool(b.entry(9) & kRemoteIrr));
    b.ioapic.set_irq(9, true);
    CHECK(b.apics.sent.size() == 1);
    b.ioapic.eoi(0x41); // another vector: nothing
    CHECK(bool(b.entry(9) & kRemoteIrr));
    b.ioapic.eoi(0x39); // the line is still asserted: delivered again
    CHECK(b.apics.sent.size() == 2);
    CHECK(bool(b.entry(9) & kRemoteIrr));
    b.ioapic.set_irq(9, false);
    b.ioapic.eoi(0x39);
    CHECK(b.apics.sent.size() == 2);
    CHECK((b.entry(9) & kRemoteIrr) == 0);
    b.ioapic.set_irq(9, true);
    CHECK(b.apics.sent.size() == 3);
}

TEST_CASE("unmasking an asserted level line delivers it") {
    Board b;
    b.program(10, 0x3A | kLevel | kMasked);
    b.ioapic.set_irq(10, true);
    CHECK(b.apics.sent.empty());
    b.program(10, 0x3A | kLevel);
    CHECK(b.apics.sent.size() == 1);
    // EOI while masked clears Remote IRR but does not deliver.
    b.program(10, 0x3A | kLevel | kMasked);
    b.ioapic.eoi(0x3A);
    CHECK((b.entry(10) & kRemoteIrr) == 0);
    CHECK(b.apics.sent.size() == 1);
}

TEST_CASE("Remote IRR is set only when a local APIC took the interrupt") {
    Board b;
    b.apics.accepting = 0;
    b.program(11, 0x3B | kLevel);
    b.ioapic.set_irq(11, true);
    CHECK(b.apics.sent.size() == 1);
    CHECK((b.entry(11) & kRemoteIrr) == 0);
    // Re-targeting the entry tries again.
    b.apics.accepting = 1;
    b.program(11, 0x3B | kLevel | (1ull << 56));
    CHECK(b.apics.sent.size() == 2);
    CHECK(b.apics.sent[1].dest == 1);
    CHECK(bool(b.entry(11) & kRemoteIrr));
}

TEST_CASE("switching an entry to edge clears Remote IRR (Linux's EOI emulation)") {
    Board b;
    b.program(5, 0x35 | kLevel);
    b.ioapic.set_irq(5, true);
    CHECK(bool(b.entry(5) & kRemoteIrr));
    b.program(5, 0x35 | kMasked);
    CHECK((b.entry(5) & kRemoteIrr) == 0);
    b.program(5, 0x35 | kLevel | kMasked);
    b.program(5, 0x35 | kLevel);
    CHECK(b.apics.sent.size() == 2); // the still-asserted line is delivered once unmasked
}

TEST_CASE("NMI, INIT and ExtINT level entries never wait for an EOI") {
    Board b;
    b.program(6, (4u << 8) | kLevel); // NMI
    b.ioapic.set_irq(6, true);
    REQUIRE(b.apics.sent.size() == 1);
    CHECK(b.apics.sent[0].mode == ApicDeliveryMode::Nmi);
    CHECK((b.entry(6) & kRemoteIrr) == 0);
    b.program(7, 7u << 8); // ExtINT, edge
    b.ioapic.set_irq(7, true);
    REQUIRE(b.apics.sent.size() == 2);
    CHECK(b.apics.sent[1].mode == ApicDeliveryMode::ExtInt);
    b.program(8, 3u << 8); // reserved mode: nothing is sent
    b.ioapic.set_irq(8, true);
    CHECK(b.apics.sent.size() == 2);
}

TEST_CASE("the EOI register exists in version 0x20 only") {
    for (uint8_t version : {uint8_t(0x11), uint8_t(0x20)}) {
        CAPTURE(int(version));
        Board b(version);
        CHECK(b.read_reg(IoApic::kRegVersion) == (0x00170000u | version));
        b.program(12, 0x3C | kLevel);
        b.ioapic.set_irq(12, true);
        b.ioapic.set_irq(12, false);
        b.write32(kBase + IoApic::kEoi, 0x3C);
        CHECK(bool(b.entry(12) & kRemoteIrr) == (version == 0x11));
    }
    FakeClock clock;
    MessageLog log;
    CHECK_THROWS_AS(IoApic(log, clock, 0x12), std::invalid_argument);
}

TEST_CASE("an EOI storm on an unhandled level line is damped to one delivery per 10 ms") {
    Board b;
    b.program(9, 0x39 | kLevel);
    b.ioapic.set_irq(9, true);
    for (int i = 1; i < 10000; i++) b.ioapic.eoi(0x39);
    CHECK(b.apics.sent.size() == 10000);
    b.ioapic.eoi(0x39); // the 10000th re-delivery in a row is deferred
    CHECK(b.apics.sent.size() == 10000);
    CHECK((b.entry(9) & kRemoteIrr) == 0);
    b.clock.advance(9'999'999);
    CHECK(b.apics.sent.size() == 10000);
    b.clock.advance(1);
    CHECK(b.apics.sent.size() == 10001);
    CHECK(bool(b.entry(9) & kRemoteIrr));
}

TEST_CASE("hostile accesses: bad selectors, pins and offsets are harmless") {
    Board b;
    b.write_reg(0xFF, 0xFFFFFFFF);
    CHECK(b.read_reg(0xFF) == 0);
    b.write_reg(0x40, 0xFFFFFFFF); // one past the last entry
    CHECK(b.read_reg(0x40) == 0);
    b.ioapic.set_irq(24, true);
    b.ioapic.set_irq(~0u, true);
    CHECK(b.apics.sent.empty());
    // Byte write to IOREGSEL (widened by the bus) and the 256-byte mirror.
    uint8_t sel = IoApic::kRegVersion;
    b.mmio.write(kBase, std::span<const uint8_t>(&sel, 1));
    CHECK(b.read32(kBase + 0x110) == 0x00170011);
    CHECK(b.read32(kBase + 0x20) == 0);
    b.write32(kBase + 0x14, 0x12345678); // misaligned window: ignored
    CHECK(b.read_reg(IoApic::kRegId) == 0);
}

TEST_CASE("save, change, load restores the IOAPIC exactly") {
    Board b;
    b.write_reg(IoApic::kRegId, 0x02000000);
    b.program(9, 0x0100000000000039ull | kLevel);
    b.program(4, 0x34);
    b.ioapic.set_irq(9, true);
    b.write32(kBase, 0x23); // pin 9, high dword
    StateWriter before;
    b.ioapic.save(before);

    b.ioapic.reset(ResetKind::Hard);
    b.ioapic.set_irq(9, false);
    StateReader r(before.data());
    b.ioapic.load(r);
    CHECK(r.at_end());
    StateWriter after;
    b.ioapic.save(after);
    CHECK(after.data() == before.data());
    CHECK(b.read32(kBase + IoApic::kIoWin) == 0x01000000); // IOREGSEL restored
    CHECK(b.entry(9) == (0x0100000000000039ull | kLevel | kRemoteIrr));
    size_t sent = b.apics.sent.size();
    b.ioapic.eoi(0x39); // still asserted after the restore
    CHECK(b.apics.sent.size() == sent + 1);
}

TEST_CASE("load rejects inconsistent state and leaves the IOAPIC alone") {
    Board b;
    StateWriter good;
    b.ioapic.save(good);
    std::vector<uint8_t> bytes = good.data();
    // "ioapic" header (4 + 6 + 4), then each put() is a 4-byte length and the value.
    size_t version = 14 + 4, id = version + 5, asserted = id + 10, rte = asserted + 8;
    SUBCASE("another version") {
        bytes[version] = 0x20;
    }
    SUBCASE("ID wider than 4 bits") {
        bytes[id] = 0x10;
    }
    SUBCASE("pin mask past pin 23") {
        bytes[asserted + 3] = 0x01;
    }
    SUBCASE("Remote IRR on an edge entry") {
        bytes[rte + 1] = 0x40;
    }
    SUBCASE("reserved bits in an entry") {
        bytes[rte + 3] = 0x01;
    }
    SUBCASE("truncated") {
        bytes.resize(bytes.size() - 1);
    }
    b.write_reg(IoApic::kRegId, 0x05000000);
    StateReader r(bytes);
    CHECK_THROWS_AS(b.ioapic.load(r), StateError);
    CHECK(b.read_reg(IoApic::kRegId) == 0x05000000);
}
