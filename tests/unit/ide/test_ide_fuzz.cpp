// Random register traffic against both channels and the bus-master block, with random guest
// memory (PRD tables included) and snapshot round trips. Under ASan/UBSan this is the "a guest
// may never crash hvm" check; the assertions check invariants any register state must keep.
#include <doctest/doctest.h>

#include <random>

#include "ide_test_support.hpp"

using namespace idetest;

TEST_CASE("random register traffic never breaks the controller") {
    for (uint64_t seed = 1; seed <= 12; seed++) {
        CAPTURE(seed);
        std::mt19937_64 rng(seed);
        Rig r(seed % 3 == 0); // mostly synchronous: deterministic
        r.add_disk(4 << 20, 0, 0);
        r.add_cdrom(2 << 20, 0, 1);
        r.add_cdrom(seed % 2 ? (1 << 20) : 0, 1, 0);
        r.start();
        // Plausible PRD tables in low memory, random bytes elsewhere.
        for (uint32_t i = 0; i < 0x10000; i += 8) {
            uint32_t addr = uint32_t(rng() % (kRamSize + 0x100000)) & ~1u;
            uint32_t count = uint32_t(rng() % 0x3000) | (rng() % 4 == 0 ? 0x80000000u : 0);
            std::memcpy(r.ram + i, &addr, 4);
            std::memcpy(r.ram + i + 4, &count, 4);
        }
        static const uint16_t ports[] = {0x1F0, 0x1F1, 0x1F2, 0x1F3, 0x1F4, 0x1F5,
                                         0x1F6, 0x1F7, 0x3F6, 0x170, 0x171, 0x172,
                                         0x173, 0x174, 0x175, 0x176, 0x177, 0x376};
        static const uint8_t commands[] = {0x20, 0x24, 0x25, 0x29, 0x30, 0x35, 0x39, 0x40,
                                           0x91, 0xA0, 0xA1, 0xC4, 0xC5, 0xC6, 0xC8, 0xCA,
                                           0xE7, 0xEC, 0xEF, 0x08, 0x90, 0xF8};
        for (int step = 0; step < 4000; step++) {
            unsigned kind = unsigned(rng() % 100);
            if (kind < 30) { // data port bursts, both directions
                uint16_t port = rng() % 2 ? 0x1F0 : 0x170;
                unsigned size = rng() % 2 ? 2 : 4;
                for (int i = 0, n = int(rng() % 300); i < n; i++) {
                    if (rng() % 2)
                        r.in(port, size);
                    else
                        r.out(port, size, uint32_t(rng()));
                }
            } else if (kind < 45) { // a command with random task file
                unsigned ch = unsigned(rng() % 2);
                for (unsigned reg = 1; reg <= 6; reg++)
                    if (rng() % 2) r.outb(uint16_t(Rig::base(ch) + reg), uint8_t(rng()));
                r.command(ch, rng() % 4 ? commands[rng() % sizeof commands] : uint8_t(rng()));
            } else if (kind < 60) { // ATAPI packet with random CDB fields
                unsigned ch = unsigned(rng() % 2);
                std::vector<uint8_t> cdb(12);
                for (auto& b : cdb) b = uint8_t(rng());
                static const uint8_t ops[] = {0x00, 0x03, 0x12, 0x1B, 0x1E, 0x25, 0x28, 0x2B, 0x43,
                                              0x46, 0x4A, 0x51, 0x5A, 0xA8, 0xAD, 0xBB, 0xBD, 0xBE};
                cdb[0] = ops[rng() % sizeof ops];
                r.packet(ch, cdb, uint16_t(rng()), rng() % 3 == 0, unsigned(rng() % 2));
            } else if (kind < 80) { // bus master
                unsigned ch = unsigned(rng() % 2);
                switch (rng() % 4) {
                case 0: r.out(r.bm(ch) + 4, 4, uint32_t(rng() % 0x10000)); break;
                case 1: r.outb(r.bm(ch), uint8_t(rng())); break;
                case 2: r.outb(r.bm(ch) + 2, uint8_t(rng())); break;
                default: r.in(uint16_t(r.bm(ch) + rng() % 8), 1u << (rng() % 3)); break;
                }
            } else if (kind < 95) { // any register, any size
                uint16_t port = ports[rng() % (sizeof ports / sizeof ports[0])];
                if (rng() % 2)
                    r.in(port, 1);
                else
                    r.outb(port, uint8_t(rng()));
            } else if (kind < 97) { // PCI command register, bus mastering on and off
                r.cfg_write(0x04, 2, rng() % 2 ? 0x0105 : 0x0101);
            } else if (kind < 99) { // snapshot round trip
                r.drain();
                std::vector<uint8_t> s;
                {
                    std::lock_guard g(r.lock);
                    bool pending =
                        r.ide->channel(0).dma_pending() || r.ide->channel(1).dma_pending();
                    StateWriter w;
                    r.ide->save(w);
                    s = w.data();
                    StateReader in(s);
                    r.ide->load(in);
                    StateWriter w2;
                    r.ide->save(w2);
                    // A restore reproduces the state exactly, unless it restarted a DMA.
                    if (!pending) CHECK(w2.data() == s);
                }
            } else { // media changes
                std::lock_guard g(r.lock);
                if (rng() % 2)
                    r.ide->drive(1, 0).change_medium(std::make_unique<RamDisk>(1 << 20, true));
                else
                    r.ide->drive(1, 0).eject(rng() % 2);
            }
        }
        r.drain();
        // Whatever happened, a reset brings back a working disk.
        r.outb(Rig::ctl(0), hvm::ata::kControlSrst);
        r.outb(Rig::ctl(0), 0);
        r.cfg_write(0x04, 2, 0x0105);
        auto w = r.identify();
        CHECK(w[0] == 0x0040);
        CHECK(r.status() == (hvm::ata::kStatusDrdy | hvm::ata::kStatusDsc));
    }
}
