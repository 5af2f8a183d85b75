// Random register traffic, DMA rings full of random bytes and random frames, with save/load and
// resets mixed in: nothing may crash or trip ASan/UBSan, and the ring pointers stay in range.
#include <doctest/doctest.h>

#include <random>

#include "tests/unit/net/net_test_support.hpp"

using namespace hvm;
using namespace hvm::test;

TEST_CASE("random registers, descriptors and frames never break the chip") {
    for (uint32_t seed = 1; seed <= 6; seed++) {
        NicRig r;
        std::mt19937 rng(seed);
        auto rnd = [&](uint32_t n) { return uint32_t(rng() % n); };
        for (uint64_t a = 0; a < NicRig::kRamSize; a += 4) r.put32(a, rng());
        // Bias addresses toward RAM so the DMA paths run, not just their error paths.
        auto addr = [&] { return rnd(4) ? rnd(NicRig::kRamSize) : uint32_t(rng()); };
        const unsigned hot[] = {Rtl8139::kCr,      Rtl8139::kTsd0,    Rtl8139::kTsad0,
                                Rtl8139::kRcr,     Rtl8139::kTcr,     Rtl8139::kCapr,
                                Rtl8139::kIsr,     Rtl8139::kImr,     Rtl8139::kCpcr,
                                Rtl8139::kTppoll,  Rtl8139::kRdsarLo, Rtl8139::kCr9346,
                                Rtl8139::kRbstart, Rtl8139::kTimerInt};
        for (int op = 0; op < 20000; op++) {
            switch (rnd(12)) {
            case 0:
            case 1:
            case 2: {
                unsigned size = 1u << rnd(3);
                unsigned off = rnd(2) ? hot[rnd(std::size(hot))] : rnd(256);
                off = std::min(off, 256 - size);
                uint32_t v =
                    off == Rtl8139::kTsad0 || off == Rtl8139::kRbstart || off == Rtl8139::kRdsarLo
                        ? addr()
                        : uint32_t(rng());
                r.out(off, size, v);
                break;
            }
            case 3:
            case 4: {
                unsigned size = 1u << rnd(3);
                r.in(std::min(rnd(256), 256 - size), size);
                break;
            }
            case 5:
            case 6: {
                std::vector<uint8_t> f(rnd(4) ? rnd(1600) : rnd(70000));
                for (auto& b : f) b = uint8_t(rng());
                if (rnd(2) && f.size() >= 6) std::copy(kNicMac.begin(), kNicMac.end(), f.begin());
                r.nic.receive(f);
                r.nic.can_receive();
                break;
            }
            case 7: r.outb(Rtl8139::kTppoll, 0x40); break;
            case 8: r.clock.advance(rnd(100000)); break;
            case 9: {
                // Plant a plausible C+ descriptor at the current ring positions.
                uint32_t at = rnd(NicRig::kRamSize - 16) & ~15u;
                r.put32(at, rng() | (rnd(2) ? Rtl8139::kDescOwn : 0));
                r.put32(at + 8, addr());
                r.put32(at + 12, rnd(8) ? 0 : rng());
                break;
            }
            case 10:
                if (rnd(50) == 0) {
                    StateWriter w;
                    r.nic.save(w);
                    StateReader rd(w.data());
                    r.nic.load(rd);
                    CHECK(rd.at_end());
                }
                break;
            case 11:
                if (rnd(200) == 0) {
                    r.nic.reset(rnd(2) ? ResetKind::PowerOn : ResetKind::Hard);
                    r.program_bars();
                }
                break;
            }
            // The receive write pointer stays inside the ring whatever happened (the ring is
            // the size RCR selects, or 8 KiB after a reset that kept RCR, as in QEMU).
            uint32_t size = 8192u << ((r.inl(Rtl8139::kRcr) >> 11) & 3);
            REQUIRE(r.inw(Rtl8139::kCbr) < size);
        }
    }
}
