// Hostile-guest stress: random register traffic on every controller, random line changes and
// interrupt acknowledges, with invariants checked along the way and save/load round trips.
// Runs under ASan/UBSan in the sanitizer build; a crash or an out-of-range value fails it.
#include <doctest/doctest.h>

#include <random>

#include "devmodel/irq/ioapic.hpp"
#include "devmodel/irq/isa_irq_router.hpp"
#include "devmodel/irq/local_apic.hpp"
#include "devmodel/irq/pic8259.hpp"
#include "vmexit/bus.hpp"

using namespace hvm;

namespace {

struct Pc {
    FakeClock clock{1'000'000};
    ApicBus apic_bus;
    Pic8259Pair pic{IrqPin(&apic_bus, ApicBus::kLint0)};
    IoApic ioapic{apic_bus, clock};
    IsaIrqRouter gsi{pic, ioapic};
    LocalApic cpu0{apic_bus, clock, {.apic_id = 0, .bsp = true, .tsc_hz = 3'000'000'000}};
    LocalApic cpu1{apic_bus, clock, {.apic_id = 1, .bsp = false, .tsc_hz = 3'000'000'000}};
    Bus pio{"pio"};
    Bus mmio{"mmio"};

    Pc() {
        apic_bus.connect_ioapic(ioapic);
        apic_bus.connect_ext_int(pic);
        apic_bus.attach(cpu0);
        apic_bus.attach(cpu1);
        pio.add(0x20, 2, &pic.master_io(), {1, 1}, "pic1");
        pio.add(0xA0, 2, &pic.slave_io(), {1, 1}, "pic2");
        pio.add(0x4D0, 2, &pic.elcr_io(), {1, 1}, "elcr");
        mmio.add(IoApic::kDefaultBase, IoApic::kMmioSize, &ioapic, {4, 4}, "ioapic");
    }
    std::vector<uint8_t> save_all() {
        StateWriter w;
        pic.save(w);
        ioapic.save(w);
        gsi.save(w);
        cpu0.save(w);
        cpu1.save(w);
        return w.data();
    }
    void load_all(const std::vector<uint8_t>& d) {
        StateReader r(d);
        pic.load(r);
        ioapic.load(r);
        gsi.load(r);
        cpu0.load(r);
        cpu1.load(r);
        REQUIRE(r.at_end());
    }
};

void check_invariants(LocalApic& a) {
    for (uint32_t bank : {LocalApic::kRegIsr, LocalApic::kRegIrr, LocalApic::kRegTmr}) {
        uint8_t b[4];
        a.io_read(bank, b);
        CHECK((le_load(b) & 0xFFFF) == 0); // vectors 0-15 never enter the banks
    }
    uint8_t init[4], cur[4];
    a.io_read(LocalApic::kRegTimerInitial, init);
    a.io_read(LocalApic::kRegTimerCurrent, cur);
    CHECK(le_load(cur) <= le_load(init));
}

} // namespace

TEST_CASE("random guest traffic never breaks the controllers or their state files") {
    Pc pc;
    std::mt19937_64 rng(12345);
    auto pick = [&](uint64_t n) { return rng() % n; };
    const uint16_t ports[] = {0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1};
    for (int step = 0; step < 200'000; step++) {
        LocalApic& cpu = pick(2) ? pc.cpu1 : pc.cpu0;
        uint32_t value = uint32_t(rng());
        switch (pick(12)) {
        case 0: {
            uint8_t v = uint8_t(value);
            pc.pio.write(ports[pick(6)], std::span<const uint8_t>(&v, 1));
            break;
        }
        case 1: {
            uint8_t v;
            pc.pio.read(ports[pick(6)], std::span<uint8_t>(&v, 1));
            break;
        }
        case 2: {
            uint8_t b[4];
            le_store(b, pick(2) ? value & 0x3F : value);
            pc.mmio.write(IoApic::kDefaultBase + pick(0x50), b);
            break;
        }
        case 3: {
            uint8_t b[4];
            pc.mmio.read(IoApic::kDefaultBase + pick(0x50), b);
            break;
        }
        case 4:
        case 5: {
            uint8_t b[4];
            le_store(b, value);
            // Mostly valid register offsets, sometimes anything in the page.
            uint64_t off = pick(4) ? pick(0x40) * 0x10 : pick(0x1004);
            if (off == LocalApic::kRegSvr && pick(4)) le_store(b, value | 0x100);
            cpu.io_write(off, b);
            break;
        }
        case 6: {
            uint8_t b[4];
            cpu.io_read(pick(0x40) * 0x10, b);
            break;
        }
        case 7: pc.gsi.set_irq(unsigned(pick(26)), pick(2)); break;
        case 8: {
            int v = cpu.acknowledge_interrupt();
            CHECK(v >= -1);
            CHECK(v <= 255);
            if (pick(2)) {
                uint8_t b[4] = {};
                cpu.io_write(LocalApic::kRegEoi, b);
            }
            cpu.acknowledge_nmi();
            cpu.acknowledge_init();
            cpu.acknowledge_sipi();
            break;
        }
        case 9: {
            const uint32_t msrs[] = {LocalApic::kMsrApicBase, LocalApic::kMsrTscDeadline, 0x802};
            uint32_t msr = msrs[pick(3)];
            uint64_t v = rng();
            if (msr == LocalApic::kMsrApicBase && pick(4)) v = 0xFEE00800 | (v & 0x100);
            cpu.write_msr(msr, v);
            cpu.read_msr(msr, v);
            break;
        }
        case 10: pc.clock.advance(pick(300'000)); break;
        case 11: {
            int v = pc.pic.acknowledge();
            CHECK(v >= 0);
            CHECK(v <= 255);
            break;
        }
        }
        if (step % 997 == 0) {
            check_invariants(pc.cpu0);
            check_invariants(pc.cpu1);
            auto before = pc.save_all();
            pc.load_all(before);
            CHECK(pc.save_all() == before);
        }
    }
}
