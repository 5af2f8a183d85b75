// The cascaded 8259A pair of the PC (PIIX3's integrated copy): master at 0x20/0x21, slave at
// 0xA0/0xA1 on master IR2, and the PIIX3 edge/level control registers (ELCR) at 0x4D0/0x4D1.
//
// Behaviour follows the Intel 8259A datasheet (ICW1-ICW4, OCW1-OCW3) as the PIIX3 integrates it,
// with the choices QEMU's i8259 (hw/intc/i8259.c) and KVM's (arch/x86/kvm/i8259.c) make where the
// datasheet leaves room:
//  - edge or level per input from the ELCR only; ICW1.LTIM is ignored, as on PIIX3 where the ELCR
//    replaces it. IRQ 0, 1, 2, 8 and 13 are always edge (ELCR masks 0xF8 / 0xDE);
//  - the slave's request re-triggers master IR2 after every state change (KVM's model), so a
//    second slave request is never lost behind a still-high slave INT;
//  - an INTA with nothing pending returns IRQ 7 of the chip that had nothing (spurious 7 / 15);
//    for a spurious 15 the master's IR2 is still put in service, which is why Linux and Windows
//    EOI only the master for it.
#pragma once
#include <cstdint>

#include "base/log.hpp"
#include "devmodel/device.hpp"
#include "devmodel/irq/ext_int.hpp"
#include "devmodel/irq/irq_pin.hpp"

namespace hvm {

class Pic8259Pair : public IrqSink, public Device, public ExtIntController {
  public:
    static constexpr uint16_t kMasterPort = 0x20; // 2 ports
    static constexpr uint16_t kSlavePort = 0xA0;  // 2 ports
    static constexpr uint16_t kElcrPort = 0x4D0;  // 2 ports: master, slave
    static constexpr unsigned kCascadeIrq = 2;    // master input wired to the slave's INT
    // PIIX3: IRQ 0 (PIT), 1 (keyboard), 2 (cascade), 8 (RTC) and 13 (FPU) are edge only.
    static constexpr uint8_t kElcrMaskMaster = 0xF8;
    static constexpr uint8_t kElcrMaskSlave = 0xDE;

    // `intr` is the INT output to the CPU side (normally ApicBus's LINT0 wire).
    explicit Pic8259Pair(IrqPin intr = {});
    Pic8259Pair(const Pic8259Pair&) = delete;
    Pic8259Pair& operator=(const Pic8259Pair&) = delete;

    // Connects (or re-connects) the INT output and drives it with the current level.
    void connect_output(IrqPin intr);
    bool output() const { return int_level_; }

    // ISA IRQ inputs 0..15. Input 2 is the cascade and not a device input: drives are ignored.
    void set_irq(unsigned line, bool level) override;

    // INTA cycle (ExtINT): the vector to run, the request moved to in-service.
    int acknowledge() override;

    // Register windows; each expects 1-byte accesses (register them with AccessSizes{1,1}).
    IoHandler& master_io() { return master_io_; }
    IoHandler& slave_io() { return slave_io_; }
    IoHandler& elcr_io() { return elcr_io_; }

    const char* name() const override { return "i8259"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

  private:
    // One 8259A. Field names follow the datasheet.
    struct Chip {
        uint8_t irr = 0;           // interrupt request register
        uint8_t imr = 0;           // interrupt mask register (OCW1)
        uint8_t isr = 0;           // in-service register
        uint8_t edge = 0;          // edge-sense latch: input level last seen by the edge detector
        uint8_t pins = 0;          // current input levels
        uint8_t elcr = 0;          // PIIX3 edge/level control: 1 = level
        uint8_t priority_add = 0;  // IR number with the highest priority (rotation)
        uint8_t vector_base = 0;   // ICW2 T7-T3
        uint8_t init_state = 0;    // 0 = ready, 1..3 = expecting ICW2..ICW4
        bool read_isr = false;     // OCW3 RR/RIS: read ISR instead of IRR
        bool poll = false;         // OCW3 P: next read is a poll
        bool special_mask = false; // OCW3 SMM
        bool auto_eoi = false;     // ICW4 AEOI
        bool rotate_on_aeoi = false;
        bool special_fully_nested = false; // ICW4 SFNM
        bool icw4_needed = false;          // ICW1 IC4
        bool single = false;               // ICW1 SNGL

        int highest(uint8_t mask) const;
        int pending_irq(bool is_master) const;
        void set_input(unsigned pin, bool level);
        void intack(unsigned irq);
        void init_reset();
    };

    class PortIo : public IoHandler {
      public:
        PortIo(Pic8259Pair& pic, unsigned chip) : pic_(pic), chip_(chip) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;

      private:
        Pic8259Pair& pic_;
        unsigned chip_;
    };
    class ElcrIo : public IoHandler {
      public:
        explicit ElcrIo(Pic8259Pair& pic) : pic_(pic) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;

      private:
        Pic8259Pair& pic_;
    };

    uint8_t read_port(unsigned chip, unsigned port);
    void write_command(unsigned chip, uint8_t value);
    void write_data(unsigned chip, uint8_t value);
    void write_elcr(unsigned chip, uint8_t value);
    void update();
    void drive_output(bool level);
    static uint8_t elcr_mask(unsigned chip) { return chip == 0 ? kElcrMaskMaster : kElcrMaskSlave; }

    Chip chip_[2]; // [0] master, [1] slave
    IrqPin intr_;
    bool int_level_ = false;
    PortIo master_io_{*this, 0};
    PortIo slave_io_{*this, 1};
    ElcrIo elcr_io_{*this};
    RateLimiter bad_input_;
};

} // namespace hvm
