// The 93C46 serial EEPROM (64 x 16 bit, Microwire) behind the RTL8139's 9346CR register, as QEMU's
// rtl8139.c models it (prom9346_*): the guest bit-bangs chip select (EECS), clock (EESK) and data
// in (EEDI), and samples data out (EEDO).
//
// Protocol (93C46 datasheet, "READ"): raise CS; on each rising SK edge the chip samples DI. It
// waits for a start bit 1, then takes 8 bits: a 2-bit opcode and a 6-bit address. For READ (10)
// DO drives a dummy 0, then the 16 data bits MSB first, one per rising SK edge. After the 16th
// bit the chip waits for the next start bit without a CS toggle (QEMU: the FreeBSD rl/re
// drivers never toggle CS between reads). Linux 8139too first reads word 0 with 8 address bits
// (93C56) and falls back to 6 because the answer is not 0x8129; the same shift sequence gives
// the same answer here.
//
// Like QEMU's model the EEPROM is read-only: WRITE, ERASE, WRAL, EWEN and EWDS are decoded and
// ignored (QEMU leaves prom9346's write modes unreachable), so a guest cannot change the MAC
// address a later boot reads.
#pragma once
#include <array>
#include <cstdint>

#include "base/state.hpp"

namespace hvm {

class Eeprom93c46 {
  public:
    static constexpr unsigned kWords = 64;
    static constexpr unsigned kAddressBits = 6;
    static constexpr uint8_t kOpMask = 0xC0, kOpRead = 0x80;

    enum class Mode : uint8_t { Idle = 0, AwaitStart = 1, Command = 2, DataRead = 3 };

    Eeprom93c46() = default;

    // QEMU's contents for an RTL8139: word 0 the 8129 signature, words 1-2 the PCI vendor and
    // device IDs, words 7-9 the MAC address (byte 0 in the low half of word 7).
    void load_rtl8139_defaults(const std::array<uint8_t, 6>& mac);

    // New levels of the three input wires (9346CR bits EECS, EESK, EEDI).
    void set_wires(bool cs, bool sk, bool di);
    // EEDO as the controller sees it: low while CS is low.
    bool data_out() const { return cs_ && do_; }

    uint16_t word(unsigned index) const { return contents_[index % kWords]; }
    void set_word(unsigned index, uint16_t v) { contents_[index % kWords] = v; }
    Mode mode() const { return mode_; }

    void save(StateWriter& out) const;
    void load(StateReader& in); // validates mode and counters

  private:
    void clock_edge();
    void decode(uint8_t command);

    std::array<uint16_t, kWords> contents_{};
    Mode mode_ = Mode::Idle;
    uint8_t tick_ = 0; // rising SK edges in the current phase (at most 16)
    uint8_t address_ = 0;
    uint16_t input_ = 0;
    uint16_t output_ = 0;
    bool cs_ = false, sk_ = false, di_ = false, do_ = false;
};

} // namespace hvm
