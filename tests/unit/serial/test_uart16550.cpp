#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "base/clock.hpp"
#include "base/state.hpp"
#include "devmodel/serial/uart16550.hpp"

using namespace hvm;
using U = Uart16550;

namespace {

struct RecordingIrq : IrqSink {
    bool level = false;
    int raises = 0; // rising edges seen
    void set_irq(unsigned, bool l) override {
        if (l && !level) raises++;
        level = l;
    }
};

struct FakeBackend : CharBackend {
    std::string out;
    int accepts = 0;
    CharFrontend* frontend = nullptr;
    void write(std::span<const uint8_t> b) override { out.append(b.begin(), b.end()); }
    void attach(CharFrontend* f) override { frontend = f; }
    void accept_input() override { accepts++; }
};

struct Rig {
    FakeClock clock;
    RecordingIrq irq;
    FakeBackend backend;
    U uart{clock, IrqPin(&irq, 4), &backend};
    Rig() { uart.reset(ResetKind::PowerOn); }
    uint8_t rd(unsigned r) { return uart.read_register(r); }
    void wr(unsigned r, uint8_t v) { uart.write_register(r, v); }
    void rx(const std::string& s) {
        uart.receive(
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
    }
    uint8_t iir_id() { return rd(U::kIirFcr) & 0x0F; }
};

} // namespace

TEST_CASE("uart: reset values are QEMU's") {
    Rig r;
    CHECK(r.rd(U::kLsr) == 0x60);
    CHECK(r.rd(U::kIirFcr) == 0x01);
    CHECK(r.rd(U::kMcr) == 0x08); // OUT2
    CHECK(r.rd(U::kMsr) == 0xB0); // DCD, DSR, CTS
    CHECK(r.rd(U::kLcr) == 0x00);
    CHECK(r.rd(U::kIer) == 0x00);
    CHECK(r.backend.frontend == &r.uart);
    CHECK_FALSE(r.irq.level);
    r.wr(U::kLcr, U::kLcrDlab);
    CHECK(r.rd(0) == 0x0C); // 9600 baud
    CHECK(r.rd(1) == 0x00);
}

TEST_CASE("uart: divisor latch shadows RBR/THR and IER while DLAB is set") {
    Rig r;
    r.wr(U::kIer, 0x05);
    r.wr(U::kLcr, 0x83); // DLAB, 8 data bits
    r.wr(0, 0x01);
    r.wr(1, 0x00);
    CHECK(r.rd(0) == 0x01);
    CHECK(r.rd(1) == 0x00);
    CHECK(r.backend.out.empty()); // the DLL write did not transmit
    r.wr(U::kLcr, 0x03);
    CHECK(r.rd(U::kIer) == 0x05);
    CHECK(r.rd(U::kLcr) == 0x03);
    // 115200 baud, 8N1: 10 bits of 1/115200 s.
    CHECK(r.uart.char_time_ns() == 86805);
    r.wr(U::kLcr, 0x83);
    r.wr(0, 0x00);
    r.wr(1, 0x03);       // divisor 0x300
    r.wr(U::kLcr, 0x1F); // 8 bits, 2 stop, even parity: 12 bits
    CHECK(r.uart.char_time_ns() == 12ull * 1000000000ull * 0x300 / 115200);
    r.wr(U::kLcr, 0x80);
    r.wr(0, 0);
    r.wr(1, 0);
    r.wr(U::kLcr, 0x00); // divisor 0: QEMU's ~3500 baud, 5N1 = 7 bits
    CHECK(r.uart.char_time_ns() == 7ull * 1000000000ull / 3500);
}

TEST_CASE("uart: THR goes to the backend at once and THRE interrupts follow QEMU's rules") {
    Rig r;
    r.wr(U::kRbrThr, 'h');
    r.wr(U::kRbrThr, 'i');
    CHECK(r.backend.out == "hi");
    CHECK(r.rd(U::kLsr) == 0x60);
    CHECK_FALSE(r.irq.level); // ETBEI off

    r.wr(U::kIer, U::kIerThre); // enabling ETBEI with THR empty raises THRE at once
    CHECK(r.irq.level);
    CHECK(r.iir_id() == U::kIirThre); // this read acknowledges it
    CHECK_FALSE(r.irq.level);
    CHECK(r.iir_id() == U::kIirNoInt);

    int before = r.irq.raises;
    r.wr(U::kRbrThr, 'x'); // each byte written gives a fresh edge when THR empties again
    CHECK(r.irq.raises == before + 1);
    CHECK(r.irq.level);
    r.wr(U::kRbrThr, 'y'); // writing THR also clears a pending THRE before re-raising it
    CHECK(r.irq.raises == before + 2);
    CHECK(r.backend.out == "hixy");
}

TEST_CASE("uart: Linux serial8250 THRE probe sees THRE after each ETBEI enable") {
    // serial8250_do_startup: IER=THRI, read IIR, IER=0, IER=THRI, read IIR. A UART whose second
    // read shows no interrupt gets UART_BUG_THRE and a polling timer.
    Rig r;
    CHECK((r.rd(U::kLsr) & U::kLsrThre));
    r.wr(U::kIer, U::kIerThre);
    uint8_t iir1 = r.rd(U::kIirFcr);
    r.wr(U::kIer, 0);
    CHECK_FALSE(r.irq.level);
    r.wr(U::kIer, U::kIerThre);
    uint8_t iir2 = r.rd(U::kIirFcr);
    r.wr(U::kIer, 0);
    CHECK((iir1 & 0x0F) == U::kIirThre);
    CHECK((iir2 & 0x0F) == U::kIirThre);
    CHECK_FALSE(r.irq.level);
}

TEST_CASE("uart: receiving without FIFO, one byte at a time") {
    Rig r;
    r.wr(U::kIer, U::kIerRda);
    CHECK(r.uart.can_receive() == 1);
    r.rx("a");
    CHECK(r.uart.can_receive() == 0);
    CHECK((r.rd(U::kLsr) & U::kLsrDr));
    CHECK(r.irq.level);
    CHECK(r.iir_id() == U::kIirRda);
    int accepts = r.backend.accepts;
    CHECK(r.rd(U::kRbrThr) == 'a');
    CHECK(r.backend.accepts == accepts + 1); // the backend is told there is room again
    CHECK_FALSE((r.rd(U::kLsr) & U::kLsrDr));
    CHECK_FALSE(r.irq.level);
    CHECK(r.rd(U::kRbrThr) == 'a'); // RBR keeps its last value
}

TEST_CASE("uart: FIFO enable, IIR FIFO bits, and trigger levels 1/4/8/14") {
    const std::pair<uint8_t, unsigned> levels[] = {{0x00, 1}, {0x40, 4}, {0x80, 8}, {0xC0, 14}};
    for (const auto& entry : levels) {
        const uint8_t bits = entry.first;
        const unsigned level = entry.second;
        CAPTURE(level);
        Rig r;
        r.wr(U::kIirFcr, uint8_t(bits | U::kFcrEnable));
        CHECK((r.rd(U::kIirFcr) & 0xC0) == 0xC0);
        CHECK(r.uart.rx_trigger_level() == level);
        r.wr(U::kIer, U::kIerRda);
        CHECK(r.uart.can_receive() == level);
        for (unsigned i = 0; i + 1 < level; i++) r.rx("z");
        CHECK(bool(r.rd(U::kLsr) & U::kLsrDr) == (level > 1));
        CHECK_FALSE(r.irq.level); // below the trigger level: no RDA yet
        r.rx("z");
        CHECK(r.irq.level);
        CHECK(r.iir_id() == U::kIirRda);
        CHECK(r.uart.can_receive() == 0); // backpressure at the trigger level
        r.rd(U::kRbrThr);
        CHECK(r.uart.can_receive() == 1);
    }
    Rig r;
    r.wr(U::kIirFcr, 0x01);
    r.wr(U::kIirFcr, 0x00); // FIFO off again
    CHECK((r.rd(U::kIirFcr) & 0xC0) == 0);
}

TEST_CASE("uart: the FIFO keeps order and overrun keeps its contents") {
    Rig r;
    r.wr(U::kIirFcr, 0xC1);
    r.wr(U::kMcr, U::kMcrLoop); // loop-back is the only way to overfill: backends respect room
    for (int i = 0; i < 18; i++) r.wr(U::kRbrThr, uint8_t('a' + i));
    CHECK(r.backend.out.empty());
    uint8_t lsr = r.rd(U::kLsr);
    CHECK((lsr & U::kLsrOe));
    CHECK_FALSE((r.rd(U::kLsr) & U::kLsrOe)); // cleared by the read
    std::string got;
    while (r.rd(U::kLsr) & U::kLsrDr) got += char(r.rd(U::kRbrThr));
    CHECK(got == "abcdefghijklmnop");
}

TEST_CASE("uart: overrun without FIFO replaces the byte and raises a line-status interrupt") {
    Rig r;
    r.wr(U::kIer, U::kIerRls | U::kIerRda);
    r.wr(U::kMcr, U::kMcrLoop);
    r.wr(U::kRbrThr, '1');
    r.wr(U::kRbrThr, '2');
    CHECK(r.iir_id() == U::kIirRls); // highest priority
    CHECK((r.rd(U::kLsr) & U::kLsrOe));
    CHECK(r.iir_id() == U::kIirRda);
    CHECK(r.rd(U::kRbrThr) == '2');
    CHECK(r.iir_id() == U::kIirNoInt);
}

TEST_CASE("uart: character timeout after four character times, measured on the clock") {
    Rig r;
    r.wr(U::kIirFcr, 0x81); // trigger level 8
    r.wr(U::kIer, U::kIerRda);
    uint64_t four = 4 * r.uart.char_time_ns();
    r.rx("abc");
    CHECK_FALSE(r.irq.level);
    r.clock.advance(four - 1);
    CHECK_FALSE(r.irq.level);
    r.clock.advance(1);
    CHECK(r.irq.level);
    CHECK(r.iir_id() == U::kIirCti);
    CHECK(r.rd(U::kRbrThr) == 'a'); // reading clears the indication and restarts the count
    CHECK_FALSE(r.irq.level);
    r.clock.advance(four - 1);
    CHECK_FALSE(r.irq.level);
    r.clock.advance(1);
    CHECK(r.iir_id() == U::kIirCti);
    CHECK(r.rd(U::kRbrThr) == 'b');
    CHECK(r.rd(U::kRbrThr) == 'c');
    r.clock.advance(10 * four);
    CHECK_FALSE(r.irq.level); // empty FIFO: no timeout

    // New input restarts the count too.
    r.rx("d");
    r.clock.advance(four / 2);
    r.rx("e");
    r.clock.advance(four - four / 2);
    CHECK_FALSE(r.irq.level);
    r.clock.advance(four / 2);
    CHECK(r.iir_id() == U::kIirCti);
}

TEST_CASE("uart: the timeout follows the programmed baud rate and is masked by ERBFI") {
    Rig r;
    r.wr(U::kLcr, 0x83);
    r.wr(0, 1); // 115200 baud
    r.wr(U::kLcr, 0x03);
    r.wr(U::kIirFcr, 0xC1);
    r.rx("q");
    r.clock.advance(4 * 86805);
    CHECK_FALSE(r.irq.level); // IER.ERBFI off: CTI masked (QEMU, and real chips)
    r.wr(U::kIer, U::kIerRda);
    CHECK(r.irq.level);
    CHECK(r.iir_id() == U::kIirCti);
}

TEST_CASE("uart: interrupt priority is line status > data/timeout > THRE > modem status") {
    Rig r;
    r.wr(U::kIirFcr, 0x01); // FIFO, trigger 1
    r.wr(U::kMcr, U::kMcrLoop | U::kMcrRts);
    r.wr(U::kMcr, U::kMcrLoop);                         // CTS 1 -> 0: a modem status delta
    for (int i = 0; i < 17; i++) r.wr(U::kRbrThr, 'x'); // fills the FIFO and overruns
    r.wr(U::kIer, 0x0F);
    CHECK(r.iir_id() == U::kIirRls);
    r.rd(U::kLsr); // clears OE
    CHECK(r.iir_id() == U::kIirRda);
    r.wr(U::kIirFcr, 0x03); // clear the receive FIFO
    CHECK(r.iir_id() == U::kIirThre);
    CHECK(r.iir_id() == U::kIirMs); // the IIR read acknowledged THRE
    uint8_t msr = r.rd(U::kMsr);
    CHECK((msr & U::kMsrDcts));
    CHECK(r.iir_id() == U::kIirNoInt);
    CHECK_FALSE(r.irq.level);
}

TEST_CASE("uart: FCR clears the receive FIFO and tells the backend") {
    Rig r;
    r.wr(U::kIirFcr, 0xC1);
    r.rx("hello");
    int accepts = r.backend.accepts;
    r.wr(U::kIirFcr, 0xC3);
    CHECK_FALSE((r.rd(U::kLsr) & U::kLsrDr));
    CHECK(r.uart.can_receive() == 14);
    CHECK(r.backend.accepts == accepts + 1);
    r.rx("w");
    r.wr(U::kIirFcr, 0x00); // disabling the FIFO flushes it as well
    CHECK_FALSE((r.rd(U::kLsr) & U::kLsrDr));
}

TEST_CASE("uart: loop-back mirrors MCR into MSR with delta bits, and keeps data off the line") {
    Rig r;
    // Linux 8250 autoconfig: MCR = LOOP | OUT2 | RTS must read back MSR[7:4] = DCD | CTS.
    r.wr(U::kMcr, U::kMcrLoop | 0x0A);
    CHECK((r.rd(U::kMsr) & 0xF0) == 0x90);
    r.wr(U::kMcr, U::kMcrLoop | 0x0F);
    CHECK((r.rd(U::kMsr) & 0xF0) == 0xF0);
    r.rd(U::kMsr);
    r.wr(U::kIer, U::kIerMs);
    r.wr(U::kMcr, U::kMcrLoop | U::kMcrDtr | U::kMcrRts | U::kMcrOut2); // OUT1 (RI) 1 -> 0
    CHECK(r.irq.level);
    CHECK(r.iir_id() == U::kIirMs);
    uint8_t msr = r.rd(U::kMsr);
    CHECK(msr == (0xB0 | U::kMsrTeri));
    CHECK_FALSE(r.irq.level);
    r.wr(U::kMcr, U::kMcrLoop | U::kMcrDtr | U::kMcrRts | U::kMcrOut2 | U::kMcrOut1);
    CHECK((r.rd(U::kMsr) & 0x0F) == 0); // RI rising edge: no TERI

    CHECK(r.uart.can_receive() == 0); // host input is held back in loop-back
    r.wr(U::kRbrThr, 'L');
    CHECK(r.backend.out.empty());
    CHECK(r.rd(U::kRbrThr) == 'L');
    int accepts = r.backend.accepts;
    r.wr(U::kMcr, 0x0B);
    CHECK(r.backend.accepts == accepts + 1); // input may flow again
    CHECK(r.uart.can_receive() == 1);
    CHECK((r.rd(U::kMsr) & 0xF0) == 0xB0);
    r.wr(U::kRbrThr, 'N');
    CHECK(r.backend.out == "N");
}

TEST_CASE("uart: a break is a NUL with BI, and LSR bit 7 while it sits in the FIFO") {
    Rig r;
    r.wr(U::kIirFcr, 0xC1);
    r.wr(U::kIer, U::kIerRls);
    r.rx("a");
    r.uart.receive_break();
    CHECK(r.iir_id() == U::kIirRls);
    uint8_t lsr = r.rd(U::kLsr);
    CHECK((lsr & (U::kLsrBi | U::kLsrDr | U::kLsrFifoError)) ==
          (U::kLsrBi | U::kLsrDr | U::kLsrFifoError));
    CHECK_FALSE(r.irq.level);
    CHECK((r.rd(U::kLsr) & U::kLsrFifoError)); // the NUL is still in the FIFO
    CHECK(r.rd(U::kRbrThr) == 'a');
    CHECK(r.rd(U::kRbrThr) == 0);
    CHECK((r.rd(U::kLsr) & U::kLsrFifoError));       // reported once more by this read ...
    CHECK_FALSE((r.rd(U::kLsr) & U::kLsrFifoError)); // ... then gone
}

TEST_CASE("uart: MCR.OUT2 does not gate the interrupt, as in QEMU") {
    Rig r;
    r.wr(U::kMcr, 0x00);
    r.wr(U::kIer, U::kIerThre);
    CHECK(r.irq.level);
}

TEST_CASE("uart: out-of-window offsets and wide accesses are harmless") {
    Rig r;
    uint8_t buf[4] = {0, 0, 0, 0};
    r.uart.io_read(6, std::span<uint8_t>(buf, 4));
    CHECK(buf[2] == 0xFF);
    CHECK(buf[3] == 0xFF);
    const uint8_t w[4] = {'a', 0, 0, 0};
    r.uart.io_write(7, std::span<const uint8_t>(w, 4));
    CHECK(r.rd(U::kScr) == 'a');
    r.uart.io_write(0, std::span<const uint8_t>(w, 1));
    CHECK(r.backend.out == "a");
}

TEST_CASE("uart: save/load round trip, including FIFO contents and a running timeout") {
    Rig a;
    a.wr(U::kLcr, 0x83);
    a.wr(0, 3);
    a.wr(U::kLcr, 0x1B);
    a.wr(U::kIirFcr, 0x81);
    a.wr(U::kIer, U::kIerRda | U::kIerRls);
    a.wr(U::kScr, 0x5A);
    a.rx("xyz");
    a.uart.receive_break();
    a.clock.advance(1000);
    StateWriter w;
    a.uart.save(w);

    Rig b;
    b.clock.advance(5000); // a different clock: only the remaining time counts
    StateReader in(w.data());
    b.uart.load(in);
    CHECK(in.at_end());
    for (unsigned reg : {U::kIer, U::kIirFcr, U::kLcr, U::kMcr, U::kMsr, U::kScr})
        CHECK(b.rd(reg) == a.rd(reg));
    CHECK(b.irq.level == a.irq.level);
    uint64_t rest = 4 * a.uart.char_time_ns() - 1000;
    a.clock.advance(rest);
    b.clock.advance(rest - 1);
    CHECK(a.iir_id() == U::kIirRls); // break pending beats the timeout
    CHECK(b.iir_id() == U::kIirRls);
    CHECK(a.rd(U::kLsr) == b.rd(U::kLsr));
    CHECK(a.iir_id() == U::kIirCti);
    CHECK(b.iir_id() == U::kIirNoInt);
    b.clock.advance(1);
    CHECK(b.iir_id() == U::kIirCti);
    std::string ga, gb;
    while (a.rd(U::kLsr) & U::kLsrDr) ga += char(a.rd(U::kRbrThr));
    while (b.rd(U::kLsr) & U::kLsrDr) gb += char(b.rd(U::kRbrThr));
    CHECK(ga == std::string("xyz\0", 4));
    CHECK(gb == ga);
}

TEST_CASE("uart: load rejects inconsistent or hostile state") {
    Rig a;
    a.wr(U::kIirFcr, 0x01);
    a.rx("ab");
    StateWriter w;
    a.uart.save(w);
    const std::vector<uint8_t> good = w.data();
    // Field layout: each put() is a 4-byte length then the value; the section header is
    // 4 + strlen("uart16550") + 4 bytes.
    const size_t header = 4 + 9 + 4;
    auto field = [&](int index) {
        // sizes of the fields in save() order
        const size_t sizes[] = {2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 16, 2, 1, 8};
        size_t off = header;
        for (int i = 0; i < index; i++) off += 4 + sizes[i];
        return off + 4;
    };
    auto corrupt = [&](int index, uint8_t value) {
        std::vector<uint8_t> bad = good;
        bad[field(index)] = value;
        Rig b;
        StateReader in(bad);
        CHECK_THROWS_AS(b.uart.load(in), StateError);
        // A failed load leaves the device as it was.
        CHECK(b.rd(U::kLsr) == 0x60);
    };
    corrupt(2, 0x10); // IER reserved bits
    corrupt(3, 0x31); // FCR reserved bits
    corrupt(5, 0x20); // MCR reserved bits
    corrupt(6, 0x60); // LSR.DR clear with bytes in the FIFO
    corrupt(7, 0x00); // MSR disagrees with the (non-loop) modem lines
    corrupt(11, 17);  // FIFO count beyond 16
    std::vector<uint8_t> truncated(good.begin(), good.end() - 3);
    Rig c;
    StateReader in(truncated);
    CHECK_THROWS_AS(c.uart.load(in), StateError);
}

TEST_CASE("uart: reset lowers the line and clears the FIFOs") {
    Rig r;
    r.wr(U::kIirFcr, 0xC1);
    r.wr(U::kIer, 0x0F);
    r.rx("abc");
    CHECK(r.irq.level);
    r.uart.reset(ResetKind::Hard);
    CHECK_FALSE(r.irq.level);
    CHECK(r.rd(U::kLsr) == 0x60);
    CHECK(r.rd(U::kIirFcr) == 0x01);
    CHECK(r.uart.can_receive() == 1);
}
