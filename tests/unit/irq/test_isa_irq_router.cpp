#include <doctest/doctest.h>

#include <vector>

#include "devmodel/irq/isa_irq_router.hpp"

using namespace hvm;

namespace {

struct Lines : IrqSink {
    std::vector<std::pair<unsigned, bool>> calls;
    void set_irq(unsigned line, bool level) override { calls.push_back({line, level}); }
};

using Call = std::pair<unsigned, bool>;

} // namespace

TEST_CASE("ISA IRQ 0 goes to PIC input 0 and IOAPIC pin 2 (MADT override)") {
    Lines pic, ioapic;
    IsaIrqRouter gsi(pic, ioapic);
    gsi.set_irq(0, true);
    CHECK(pic.calls == std::vector<Call>{{0, true}});
    CHECK(ioapic.calls == std::vector<Call>{{2, true}});
    CHECK(gsi.level(0));
}

TEST_CASE("GSI 1..15 go to the same PIC input and IOAPIC pin; GSI 2 skips the cascade") {
    for (unsigned n = 1; n < 16; n++) {
        CAPTURE(n);
        Lines pic, ioapic;
        IsaIrqRouter gsi(pic, ioapic);
        gsi.set_irq(n, true);
        gsi.set_irq(n, false);
        if (n == 2)
            CHECK(pic.calls.empty());
        else
            CHECK(pic.calls == std::vector<Call>{{n, true}, {n, false}});
        CHECK(ioapic.calls == std::vector<Call>{{n, true}, {n, false}});
    }
}

TEST_CASE("GSI 16..23 reach the IOAPIC only; larger numbers nothing") {
    Lines pic, ioapic;
    IsaIrqRouter gsi(pic, ioapic);
    for (unsigned n = 16; n < 24; n++) gsi.set_irq(n, true);
    gsi.set_irq(24, true);
    gsi.set_irq(~0u, true);
    CHECK(pic.calls.empty());
    REQUIRE(ioapic.calls.size() == 8);
    for (unsigned i = 0; i < 8; i++) CHECK(ioapic.calls[i] == Call{16 + i, true});
    CHECK_FALSE(gsi.level(24));
}

TEST_CASE("IOAPIC pin 2 is the OR of GSI 0 and GSI 2") {
    Lines pic, ioapic;
    IsaIrqRouter gsi(pic, ioapic);
    gsi.set_irq(0, true);
    gsi.set_irq(2, true);
    gsi.set_irq(0, false);
    CHECK(ioapic.calls.back() == Call{2, true}); // GSI 2 still holds it
    gsi.set_irq(2, false);
    CHECK(ioapic.calls.back() == Call{2, false});
}

TEST_CASE("router state round-trips and rejects lines past 23") {
    Lines pic, ioapic;
    IsaIrqRouter gsi(pic, ioapic);
    gsi.set_irq(2, true);
    gsi.set_irq(9, true);
    StateWriter w;
    gsi.save(w);
    gsi.set_irq(9, false);
    StateReader r(w.data());
    gsi.load(r);
    CHECK(gsi.level(9));
    // After restore, GSI 0 falling must not drop pin 2 while GSI 2 is high.
    gsi.set_irq(0, false);
    CHECK(ioapic.calls.back() == Call{2, true});

    std::vector<uint8_t> bad = w.data();
    bad[bad.size() - 1] = 0x01; // bit 24
    StateReader rb(bad);
    CHECK_THROWS_AS(gsi.load(rb), StateError);
}
