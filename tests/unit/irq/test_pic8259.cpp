#include <doctest/doctest.h>

#include <vector>

#include "devmodel/irq/pic8259.hpp"
#include "vmexit/bus.hpp"

using namespace hvm;

namespace {

// The CPU's INTR pin: records the level the PIC drives.
struct IntrPin : IrqSink {
    bool level = false;
    int rises = 0;
    void set_irq(unsigned, bool l) override {
        if (l && !level) rises++;
        level = l;
    }
};

struct Pc {
    IntrPin cpu;
    Pic8259Pair pic{IrqPin(&cpu, 0)};
    Bus pio{"pio"};

    Pc() {
        pio.add(Pic8259Pair::kMasterPort, 2, &pic.master_io(), {1, 1}, "pic1");
        pio.add(Pic8259Pair::kSlavePort, 2, &pic.slave_io(), {1, 1}, "pic2");
        pio.add(Pic8259Pair::kElcrPort, 2, &pic.elcr_io(), {1, 1}, "elcr");
    }
    void out(uint16_t port, uint8_t v) { pio.write(port, std::span<const uint8_t>(&v, 1)); }
    uint8_t in(uint16_t port) {
        uint8_t v = 0;
        pio.read(port, std::span<uint8_t>(&v, 1));
        return v;
    }
    // What SeaBIOS does (pic_setup): ICW1-ICW4, master vectors 0x08, slave 0x70, all unmasked.
    void init(uint8_t master_icw4 = 0x01, uint8_t slave_icw4 = 0x01) {
        out(0x20, 0x11);
        out(0x21, 0x08);
        out(0x21, 0x04);
        out(0x21, master_icw4);
        out(0xA0, 0x11);
        out(0xA1, 0x70);
        out(0xA1, 0x02);
        out(0xA1, slave_icw4);
        out(0x21, 0x00);
        out(0xA1, 0x00);
    }
    uint8_t irr(uint16_t cmd) {
        out(cmd, 0x0A);
        return in(cmd);
    }
    uint8_t isr(uint16_t cmd) {
        out(cmd, 0x0B);
        return in(cmd);
    }
    void pulse(unsigned irq) {
        pic.set_irq(irq, true);
        pic.set_irq(irq, false);
    }
    void eoi_master() { out(0x20, 0x20); }
    void eoi_slave() { out(0xA0, 0x20); }
};

} // namespace

TEST_CASE("ICW1-ICW4 set the vector bases and an IRQ runs an INTA cycle") {
    Pc pc;
    pc.init();
    CHECK_FALSE(pc.cpu.level);
    pc.pulse(0);
    CHECK(pc.cpu.level);
    CHECK(pc.irr(0x20) == 0x01);
    CHECK(pc.pic.acknowledge() == 0x08);
    CHECK_FALSE(pc.cpu.level);
    CHECK(pc.isr(0x20) == 0x01);
    CHECK(pc.irr(0x20) == 0x00);
    pc.eoi_master();
    CHECK(pc.isr(0x20) == 0x00);

    pc.pulse(1);
    CHECK(pc.pic.acknowledge() == 0x09);
}

TEST_CASE("ICW2 keeps only T7-T3 and ICW1 clears the IMR and the in-service state") {
    Pc pc;
    pc.init();
    pc.out(0x21, 0xFF);
    pc.pulse(3);
    CHECK_FALSE(pc.cpu.level);
    // Re-initialise with vector base 0x27: the low three bits are the IR number.
    pc.out(0x20, 0x11);
    pc.out(0x21, 0x27);
    pc.out(0x21, 0x04);
    pc.out(0x21, 0x01);
    CHECK(pc.in(0x21) == 0x00); // IMR cleared by ICW1
    pc.pulse(3);
    CHECK(pc.pic.acknowledge() == 0x23);
}

TEST_CASE("ICW4 is skipped when ICW1.IC4 is clear and ICW3 when SNGL is set") {
    Pc pc;
    pc.out(0x20, 0x10); // IC4 = 0: ICW2, ICW3, then ready
    pc.out(0x21, 0x20);
    pc.out(0x21, 0x04);
    pc.out(0x21, 0xFE); // this is now OCW1
    CHECK(pc.in(0x21) == 0xFE);
    pc.out(0x20, 0x13); // SNGL + IC4: ICW2, ICW4
    pc.out(0x21, 0x40);
    pc.out(0x21, 0x03); // ICW4 with AEOI
    pc.out(0x21, 0x55); // OCW1
    CHECK(pc.in(0x21) == 0x55);
}

TEST_CASE("fixed priority: the lowest IRQ number wins and nests above lower ones") {
    Pc pc;
    pc.init();
    pc.pulse(3);
    pc.pulse(1);
    CHECK(pc.pic.acknowledge() == 0x09); // IRQ 1 first
    // IRQ 3 waits behind IRQ 1 in service.
    CHECK_FALSE(pc.cpu.level);
    // IRQ 0 has higher priority and nests.
    pc.pulse(0);
    CHECK(pc.cpu.level);
    CHECK(pc.pic.acknowledge() == 0x08);
    CHECK(pc.isr(0x20) == 0x03);
    pc.eoi_master(); // non-specific: clears IRQ 0, the highest in service
    CHECK(pc.isr(0x20) == 0x02);
    CHECK_FALSE(pc.cpu.level);
    pc.eoi_master();
    CHECK(pc.cpu.level);
    CHECK(pc.pic.acknowledge() == 0x0B);
}

TEST_CASE("specific EOI clears the named level only") {
    Pc pc;
    pc.init();
    pc.pulse(4);
    CHECK(pc.pic.acknowledge() == 0x0C);
    pc.pulse(3);
    CHECK(pc.pic.acknowledge() == 0x0B); // IRQ 3 nests above 4
    CHECK(pc.isr(0x20) == 0x18);
    pc.out(0x20, 0x64); // specific EOI for IR4
    CHECK(pc.isr(0x20) == 0x08);
    pc.out(0x20, 0x63);
    CHECK(pc.isr(0x20) == 0x00);
}

TEST_CASE("rotate on non-specific EOI makes the serviced level the lowest priority") {
    Pc pc;
    pc.init();
    pc.pulse(0);
    CHECK(pc.pic.acknowledge() == 0x08);
    pc.out(0x20, 0xA0); // rotate on non-specific EOI: IR0 becomes lowest
    pc.pulse(0);
    pc.pulse(1);
    CHECK(pc.pic.acknowledge() == 0x09); // IR1 now ranks above IR0
    pc.out(0x20, 0xA0);                  // IR1 lowest: order is 2..7,0,1
    CHECK(pc.pic.acknowledge() == 0x08);
}

TEST_CASE("set priority and rotate on specific EOI") {
    Pc pc;
    pc.init();
    pc.out(0x20, 0xC4); // IR4 lowest, so IR5 highest
    pc.pulse(3);
    pc.pulse(6);
    CHECK(pc.pic.acknowledge() == 0x0E); // IR6 ranks above IR3 now
    pc.out(0x20, 0xE6);                  // specific EOI of IR6 and rotate: IR7 highest
    pc.pulse(7);
    CHECK(pc.pic.acknowledge() == 0x0F);
    pc.out(0x20, 0x67);
    CHECK(pc.pic.acknowledge() == 0x0B);
}

TEST_CASE("auto-EOI leaves nothing in service and can rotate") {
    Pc pc;
    pc.init(0x03); // master ICW4: x86 + AEOI
    pc.pulse(5);
    CHECK(pc.pic.acknowledge() == 0x0D);
    CHECK(pc.isr(0x20) == 0x00);
    pc.out(0x20, 0x80); // rotate in auto-EOI mode
    pc.pulse(5);
    CHECK(pc.pic.acknowledge() == 0x0D); // IR5 serviced: now the lowest priority
    pc.pulse(5);
    pc.pulse(6);
    CHECK(pc.pic.acknowledge() == 0x0E);
    pc.out(0x20, 0x00); // rotate in auto-EOI mode off
    pc.pulse(6);
    // IR6 was serviced last, so IR7 ranks highest and IR5, still pending, ranks above IR6.
    CHECK(pc.pic.acknowledge() == 0x0D);
    CHECK(pc.pic.acknowledge() == 0x0E);
    pc.pulse(6);
    pc.pulse(5);
    CHECK(pc.pic.acknowledge() == 0x0D); // no rotation any more: same order
}

TEST_CASE("OCW1 masks requests without losing them") {
    Pc pc;
    pc.init();
    pc.out(0x21, 0x10);
    pc.pulse(4);
    CHECK_FALSE(pc.cpu.level);
    CHECK(pc.irr(0x20) == 0x10);
    pc.out(0x21, 0x00);
    CHECK(pc.cpu.level);
    CHECK(pc.pic.acknowledge() == 0x0C);
}

TEST_CASE("an edge input needs a new rising edge; repeated high drives do not re-trigger") {
    Pc pc;
    pc.init();
    pc.pic.set_irq(4, true);
    CHECK(pc.pic.acknowledge() == 0x0C);
    pc.eoi_master();
    pc.pic.set_irq(4, true); // still high: no edge
    CHECK_FALSE(pc.cpu.level);
    pc.pic.set_irq(4, false);
    pc.pic.set_irq(4, true);
    CHECK(pc.cpu.level);
}

TEST_CASE("slave interrupts arrive through the cascade on master IR2") {
    Pc pc;
    pc.init();
    pc.pulse(10);
    CHECK(pc.cpu.level);
    CHECK(pc.irr(0x20) == 0x04);
    CHECK(pc.pic.acknowledge() == 0x72);
    CHECK(pc.isr(0x20) == 0x04);
    CHECK(pc.isr(0xA0) == 0x04);
    // While IR2 is in service on the master, a second slave IRQ waits.
    pc.pulse(12);
    CHECK_FALSE(pc.cpu.level);
    pc.eoi_slave();
    pc.eoi_master();
    CHECK(pc.cpu.level);
    CHECK(pc.pic.acknowledge() == 0x74);
    pc.eoi_slave();
    pc.eoi_master();
    CHECK_FALSE(pc.cpu.level);
    CHECK(pc.isr(0x20) == 0x00);
    CHECK(pc.isr(0xA0) == 0x00);
}

TEST_CASE("two pending slave IRQs are both delivered (the cascade re-triggers)") {
    Pc pc;
    pc.init(0x01, 0x03); // slave in auto-EOI: its INT stays up while a second request waits
    pc.pulse(8);
    pc.pulse(9);
    CHECK(pc.pic.acknowledge() == 0x70);
    pc.eoi_master();
    CHECK(pc.cpu.level);
    CHECK(pc.pic.acknowledge() == 0x71);
}

TEST_CASE("master IRQs of higher priority than the cascade nest above slave interrupts") {
    Pc pc;
    pc.init();
    pc.pulse(11);
    CHECK(pc.pic.acknowledge() == 0x73);
    pc.pulse(1);
    CHECK(pc.cpu.level);
    CHECK(pc.pic.acknowledge() == 0x09);
    pc.pulse(4);
    CHECK_FALSE(pc.cpu.level); // IR4 ranks below IR2 in service
}

TEST_CASE("special fully nested mode lets a higher slave IRQ interrupt a slave handler") {
    for (bool sfnm : {false, true}) {
        CAPTURE(sfnm);
        Pc pc;
        pc.init(sfnm ? 0x11 : 0x01);
        pc.pulse(12);
        CHECK(pc.pic.acknowledge() == 0x74);
        pc.pulse(9); // ranks above IRQ 12 on the slave
        CHECK(pc.cpu.level == sfnm);
        if (sfnm) {
            CHECK(pc.pic.acknowledge() == 0x71);
            CHECK(pc.isr(0xA0) == 0x12);
        }
    }
}

TEST_CASE("ELCR: edge-only inputs are read-only zeros") {
    Pc pc;
    pc.out(0x4D0, 0xFF);
    pc.out(0x4D1, 0xFF);
    CHECK(pc.in(0x4D0) == Pic8259Pair::kElcrMaskMaster); // IRQ 0, 1, 2 edge
    CHECK(pc.in(0x4D1) == Pic8259Pair::kElcrMaskSlave);  // IRQ 8, 13 edge
    pc.out(0x4D1, 0x0C);                                 // SeaBIOS: IRQ 10 and 11 level
    CHECK(pc.in(0x4D1) == 0x0C);
}

TEST_CASE("ELCR level mode: a line held high requests again after EOI; an edge line does not") {
    Pc pc;
    pc.init();
    pc.out(0x4D0, 0x20); // IRQ 5 level, IRQ 4 edge
    pc.pic.set_irq(5, true);
    pc.pic.set_irq(4, true);
    CHECK(pc.pic.acknowledge() == 0x0C);
    pc.eoi_master();
    CHECK(pc.pic.acknowledge() == 0x0D);
    CHECK(pc.irr(0x20) == 0x20); // the level request stays in the IRR
    pc.eoi_master();
    CHECK(pc.cpu.level);
    CHECK(pc.pic.acknowledge() == 0x0D); // still high: again
    pc.pic.set_irq(5, false);
    pc.eoi_master();
    CHECK_FALSE(pc.cpu.level); // IRQ 4 is still high but was edge-triggered
    CHECK(pc.irr(0x20) == 0x00);
}

TEST_CASE("a level line dropped before INTA withdraws the request; INTA then gives spurious 7") {
    Pc pc;
    pc.init();
    pc.out(0x4D0, 0x20);
    pc.pic.set_irq(5, true);
    CHECK(pc.cpu.level);
    pc.pic.set_irq(5, false);
    CHECK_FALSE(pc.cpu.level);
    CHECK(pc.pic.acknowledge() == 0x0F); // spurious IRQ 7
    CHECK(pc.isr(0x20) == 0x00);         // no ISR bit for a spurious interrupt
}

TEST_CASE("switching an input to level mode while its line is high requests at once") {
    Pc pc;
    pc.init();
    pc.pic.set_irq(10, true);
    CHECK(pc.pic.acknowledge() == 0x72);
    pc.eoi_slave();
    pc.eoi_master();
    CHECK_FALSE(pc.cpu.level);
    pc.out(0x4D1, 0x04);
    CHECK(pc.cpu.level);
}

TEST_CASE("spurious IRQ 15: the slave request vanishes after reaching the master") {
    Pc pc;
    pc.init();
    pc.pulse(10);
    CHECK(pc.cpu.level);
    pc.out(0xA1, 0x04); // mask IRQ 10 on the slave before the CPU takes it
    CHECK(pc.pic.acknowledge() == 0x77);
    // The master put IR2 in service (it cannot know): the OS EOIs the master only.
    CHECK(pc.isr(0x20) == 0x04);
    CHECK(pc.isr(0xA0) == 0x00);
    pc.eoi_master();
    CHECK_FALSE(pc.cpu.level);
}

TEST_CASE("INTA with nothing pending returns the master's IRQ 7") {
    Pc pc;
    pc.init();
    CHECK(pc.pic.acknowledge() == 0x0F);
    CHECK(pc.isr(0x20) == 0x00);
}

TEST_CASE("poll mode: the read is the acknowledge") {
    Pc pc;
    pc.init();
    pc.out(0x20, 0x0C); // OCW3 poll
    CHECK(pc.in(0x20) == 0x00);
    pc.pulse(6);
    pc.out(0x20, 0x0C);
    CHECK(pc.in(0x20) == 0x86);
    CHECK(pc.isr(0x20) == 0x40);
    CHECK_FALSE(pc.cpu.level);
    // Poll is one-shot: the next read is a normal register read.
    CHECK(pc.in(0x20) == 0x40); // the register OCW3 last selected: ISR
    // A poll read may come from either port; lower levels than the one in service are held.
    pc.pulse(7);
    pc.out(0x20, 0x0C);
    CHECK(pc.in(0x21) == 0x00);
    pc.out(0x20, 0x20);
    pc.out(0x20, 0x0C);
    CHECK(pc.in(0x21) == 0x87);
    // Masked requests are not polled.
    pc.out(0x21, 0x08);
    pc.pulse(3);
    pc.out(0x20, 0x0C);
    CHECK(pc.in(0x20) == 0x00);
}

TEST_CASE("special mask mode lets lower levels in while a masked level is in service") {
    Pc pc;
    pc.init();
    pc.pulse(3);
    CHECK(pc.pic.acknowledge() == 0x0B);
    pc.pulse(5);
    CHECK_FALSE(pc.cpu.level);
    pc.out(0x21, 0x08); // mask IR3 ...
    CHECK_FALSE(pc.cpu.level);
    pc.out(0x20, 0x68); // ... and set special mask mode
    CHECK(pc.cpu.level);
    CHECK(pc.pic.acknowledge() == 0x0D);
    pc.out(0x20, 0x48); // reset special mask mode
    pc.out(0x20, 0x65);
    pc.out(0x20, 0x63);
    CHECK(pc.isr(0x20) == 0x00);
}

TEST_CASE("the cascade input and out-of-range lines are not device inputs") {
    Pc pc;
    pc.init();
    pc.pic.set_irq(2, true);
    pc.pic.set_irq(16, true);
    pc.pic.set_irq(0xFFFFFFFF, true);
    CHECK_FALSE(pc.cpu.level);
    CHECK(pc.irr(0x20) == 0x00);
}

TEST_CASE("reset clears the ELCR and the programming but keeps line levels") {
    Pc pc;
    pc.init();
    pc.out(0x4D1, 0x0C);
    pc.pic.set_irq(11, true);
    pc.pic.reset(ResetKind::Hard);
    CHECK(pc.in(0x4D1) == 0x00);
    CHECK(pc.in(0x21) == 0x00);
    CHECK(pc.isr(0x20) == 0x00);
    CHECK_FALSE(pc.cpu.level);
    // Level mode again with the line still high: the request comes back.
    pc.init();
    pc.out(0x4D1, 0x08);
    CHECK(pc.cpu.level);
    CHECK(pc.pic.acknowledge() == 0x73);
}

TEST_CASE("save, change, load restores the pair exactly") {
    Pc pc;
    pc.init(0x11, 0x01);
    pc.out(0x4D1, 0x0C);
    pc.out(0x21, 0x20);
    pc.pulse(4);
    CHECK(pc.pic.acknowledge() == 0x0C);
    pc.pic.set_irq(11, true);
    pc.out(0xA0, 0x0B);
    StateWriter before;
    pc.pic.save(before);

    pc.init();
    pc.out(0x4D1, 0x00);
    pc.pic.set_irq(11, false);
    pc.pulse(1);
    StateReader r(before.data());
    pc.pic.load(r);
    CHECK(r.at_end());
    StateWriter after;
    pc.pic.save(after);
    CHECK(after.data() == before.data());
    CHECK(pc.in(0x21) == 0x20);
    CHECK(pc.in(0x4D1) == 0x0C);
    CHECK(pc.in(0xA0) == 0x00); // OCW3 "read ISR" survived: slave ISR is empty
    CHECK(pc.cpu.level);        // IRQ 11 (level, high) is requesting
    CHECK(pc.pic.acknowledge() == 0x73);
}

TEST_CASE("load rejects inconsistent or truncated state and leaves the chip alone") {
    Pc pc;
    pc.init();
    StateWriter good;
    pc.pic.save(good);
    std::vector<uint8_t> bytes = good.data();
    // Section header: 4-byte name length, "i8259", 4-byte version, then 4-byte field length.
    size_t master = 4 + 5 + 4 + 4;
    SUBCASE("ELCR bit of an edge-only input") {
        bytes[master + 5] = 0x01;
    }
    SUBCASE("priority out of range") {
        bytes[master + 6] = 8;
    }
    SUBCASE("init state out of range") {
        bytes[master + 8] = 4;
    }
    SUBCASE("flag that is not 0/1") {
        bytes[master + 12] = 2;
    }
    SUBCASE("truncated") {
        bytes.resize(bytes.size() - 3);
    }
    pc.out(0x21, 0x5A);
    StateReader r(bytes);
    CHECK_THROWS_AS(pc.pic.load(r), StateError);
    CHECK(pc.in(0x21) == 0x5A);
}
