// Motorola MC146818A real-time clock and 128 bytes of CMOS RAM at ports 0x70 (index) and 0x71
// (data), ISA IRQ 8, as QEMU 7.2's mc146818rtc presents it to SeaBIOS and guests.
//
// Time is kept as calendar seconds plus the position of the divider chain within the current
// second, both advanced lazily from the injected Clock: reading a register brings them up to
// date, and the flags in register C (PF, AF, UF) are computed for everything that happened since
// the last access, whether or not its interrupt is enabled (datasheet: "PF is set independent of
// PIE"). Timers are armed only for interrupts that are enabled and can still change the IRQ
// line: the next periodic tap edge, the next update cycle.
//
// While the clock runs (SET = 0, divider DV = 010) the time registers are generated from the
// calendar seconds in the format register B selects; while it is stopped they hold the bytes as
// written, and restarting it converts them back (as QEMU does, so odd values are normalised).
//
// Lost ticks: with RtcLostTickPolicy::Reinject (QEMU's lost_tick_policy=slew, `-rtc
// driftfix=slew`) periodic ticks that come while the previous one is still unacknowledged
// (PF set, register C not yet read) are counted, up to one second's worth, and re-delivered one
// per read of register C (at most 20 per tick, as QEMU): the read clears the flags and lowers
// IRQ 8, then PF and IRQF are set again and IRQ 8 rises for the next one.
#pragma once
#include <array>
#include <cstdint>

#include "base/clock.hpp"
#include "devmodel/device.hpp"
#include "devmodel/irq/irq_pin.hpp"

namespace hvm {

enum class RtcLostTickPolicy : uint8_t { Discard, Reinject };

class Mc146818Rtc final : public IoHandler, public Device {
  public:
    static constexpr uint64_t kBasePort = 0x70;
    static constexpr uint64_t kPortCount = 2; // register with AccessSizes{1, 1}
    static constexpr unsigned kCmosSize = 128;

    // Register indices (datasheet "Address Map").
    static constexpr uint8_t kSeconds = 0x00, kSecondsAlarm = 0x01, kMinutes = 0x02,
                             kMinutesAlarm = 0x03, kHours = 0x04, kHoursAlarm = 0x05,
                             kDayOfWeek = 0x06, kDayOfMonth = 0x07, kMonth = 0x08, kYear = 0x09,
                             kRegA = 0x0a, kRegB = 0x0b, kRegC = 0x0c, kRegD = 0x0d;
    static constexpr uint8_t kShutdownStatus = 0x0f;
    static constexpr uint8_t kCentury = 0x32;    // FADT CENTURY; QEMU keeps it in the clock
    static constexpr uint8_t kPs2Century = 0x37; // IBM PS/2 century byte, an alias of 0x32

    // Port 0x70: bit 7 disables NMI, bits 6-0 are the index.
    static constexpr uint8_t kNmiDisable = 0x80, kIndexMask = 0x7f;
    // Register A.
    static constexpr uint8_t kUip = 0x80, kDividerMask = 0x70, kRateMask = 0x0f;
    static constexpr uint8_t kDivider32k = 0x20; // DV = 010: 32.768 kHz time base, running
    // Register B.
    static constexpr uint8_t kSet = 0x80, kPie = 0x40, kAie = 0x20, kUie = 0x10, kSqwe = 0x08,
                             kDm = 0x04, k24Hour = 0x02, kDse = 0x01;
    // Register C.
    static constexpr uint8_t kIrqf = 0x80, kPf = 0x40, kAf = 0x20, kUf = 0x10;
    static constexpr uint8_t kIrqSources = kPf | kAf | kUf; // same bits as PIE, AIE, UIE
    // Register D.
    static constexpr uint8_t kVrt = 0x80;
    // Alarm register values 0xC0-0xFF match any value.
    static constexpr uint8_t kAlarmDontCare = 0xc0;
    static constexpr uint32_t kMaxReinjectOnAck = 20;

    // The clock starts at `utc_seconds + offset_seconds` (seconds since 1970-01-01; the machine
    // passes the host time and the offset of `-rtc base=localtime` or of a given date).
    Mc146818Rtc(Clock& clock, IrqPin irq, int64_t utc_seconds, int64_t offset_seconds = 0,
                RtcLostTickPolicy policy = RtcLostTickPolicy::Discard);

    void io_read(uint64_t offset, std::span<uint8_t> data) override;
    void io_write(uint64_t offset, std::span<const uint8_t> data) override;

    const char* name() const override { return "mc146818rtc"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

    // For the machine to fill the CMOS (memory size, disks, boot order...). Indices >= 128 are
    // ignored (write) or read as 0xFF. The clock registers behave as for a guest access, except
    // that reading register C does not acknowledge it.
    uint8_t cmos_read(unsigned index);
    void cmos_write(unsigned index, uint8_t value);

    bool nmi_masked() const { return nmi_masked_; }
    uint32_t coalesced_ticks() const { return st_.coalesced; }

  private:
    struct State {
        std::array<uint8_t, kCmosSize> cmos{};
        int64_t seconds = 0;    // calendar time, valid while the clock runs
        uint64_t phase_ns = 0;  // divider chain position within the second
        uint64_t synced_ns = 0; // clock time the two above describe
        uint32_t coalesced = 0;
        uint32_t reinjected_on_ack = 0;
    };

    // Everything below works on a State so that save() can bring a copy up to date.
    static bool divider_running(const State& s);
    static bool clock_running(const State& s);
    static uint32_t period_cycles(const State& s);
    static uint8_t time_register(const State& s, uint8_t index, int64_t seconds);
    static void freeze_time(State& s);
    static void thaw_time(State& s);
    static bool alarm_matched(const State& s, int64_t before, int64_t after);
    void advance(State& s, uint64_t now) const;

    void sync();
    uint8_t read_register(uint8_t index, bool acknowledge);
    void write_register(uint8_t index, uint8_t value);
    void write_reg_a(uint8_t value);
    void write_reg_b(uint8_t value);
    void acknowledge();
    void drive(bool level);
    void reschedule();
    bool update_in_progress() const;

    Clock& clock_;
    IrqPin irq_;
    RtcLostTickPolicy policy_;
    State st_;
    uint8_t index_ = 0;
    bool nmi_masked_ = false;
    bool irq_level_ = false;
    Timer periodic_timer_;
    Timer update_timer_;
};

} // namespace hvm
