#include "devmodel/irq/pic8259.hpp"

namespace hvm {

namespace {

// ICW1 / OCW2 / OCW3 are told apart by bits 4 and 3 of a write to the command port
// (8259A datasheet, "Programming the 8259A").
constexpr uint8_t kIcw1Init = 0x10;
constexpr uint8_t kIcw1Ic4 = 0x01;
constexpr uint8_t kIcw1Single = 0x02;
constexpr uint8_t kOcw3Select = 0x08;
constexpr uint8_t kOcw3Esmm = 0x40;
constexpr uint8_t kOcw3Smm = 0x20;
constexpr uint8_t kOcw3Poll = 0x04;
constexpr uint8_t kOcw3Rr = 0x02;
constexpr uint8_t kOcw3Ris = 0x01;
constexpr uint8_t kIcw4Aeoi = 0x02;
constexpr uint8_t kIcw4Sfnm = 0x10;
constexpr uint8_t kPollInterrupt = 0x80;
constexpr unsigned kSpuriousIrq = 7;

// OCW2 R/SL/EOI (bits 7..5).
enum Ocw2 : uint8_t {
    kRotateAeoiClear = 0,
    kNonSpecificEoi = 1,
    kNop = 2,
    kSpecificEoi = 3,
    kRotateAeoiSet = 4,
    kRotateNonSpecificEoi = 5,
    kSetPriority = 6,
    kRotateSpecificEoi = 7,
};

constexpr uint32_t kStateVersion = 1;

} // namespace

// ---- one 8259A ------------------------------------------------------------------------------

// Priority rank (0 = highest) of the highest-priority bit of `mask`, 8 if none. Rotation makes IR
// `priority_add` the highest priority.
int Pic8259Pair::Chip::highest(uint8_t mask) const {
    if (mask == 0) return 8;
    int rank = 0;
    while ((mask & (1u << ((rank + priority_add) & 7))) == 0) rank++;
    return rank;
}

// The IR this chip would signal on INT now, or -1. A request is signalled only when it ranks above
// everything in service; with special mask mode, masked in-service levels do not block, and with
// special fully nested mode on the master, the slave's own in-service level does not block a
// higher-priority slave request (datasheet, "Special Fully Nested Mode").
int Pic8259Pair::Chip::pending_irq(bool is_master) const {
    int rank = highest(irr & ~imr);
    if (rank == 8) return -1;
    uint8_t in_service = isr;
    if (special_mask) in_service &= ~imr;
    if (special_fully_nested && is_master) in_service &= ~(1u << kCascadeIrq);
    if (rank < highest(in_service)) return (rank + priority_add) & 7;
    return -1;
}

void Pic8259Pair::Chip::set_input(unsigned pin, bool level) {
    uint8_t mask = uint8_t(1u << pin);
    if (elcr & mask) {
        // Level mode: the request follows the line.
        irr = level ? (irr | mask) : (irr & ~mask);
    } else if (level && !(edge & mask)) {
        irr |= mask; // rising edge
    }
    edge = level ? (edge | mask) : (edge & ~mask);
    pins = level ? (pins | mask) : (pins & ~mask);
}

void Pic8259Pair::Chip::intack(unsigned irq) {
    uint8_t mask = uint8_t(1u << irq);
    if (auto_eoi) {
        if (rotate_on_aeoi) priority_add = (irq + 1) & 7;
    } else {
        isr |= mask;
    }
    // A level request stays in the IRR while its line is high: after the EOI it requests again.
    if (!(elcr & mask)) irr &= ~mask;
}

// What ICW1 does before ICW2..4 arrive (datasheet: the edge-sense circuit is reset, the IMR is
// cleared, IR7 gets the lowest priority, special mask mode is cleared and status read is set to
// IRR; ICW4 functions are cleared). The ELCR is a PIIX3 register and is not touched.
void Pic8259Pair::Chip::init_reset() {
    edge = 0;
    irr = pins & elcr;
    imr = 0;
    isr = 0;
    priority_add = 0;
    vector_base = 0;
    init_state = 0;
    read_isr = false;
    poll = false;
    special_mask = false;
    auto_eoi = false;
    rotate_on_aeoi = false;
    special_fully_nested = false;
    icw4_needed = false;
    single = false;
}

// ---- the pair -------------------------------------------------------------------------------

Pic8259Pair::Pic8259Pair(IrqPin intr) : intr_(intr) {
    reset(ResetKind::PowerOn);
}

void Pic8259Pair::connect_output(IrqPin intr) {
    intr_ = intr;
    intr_.set(int_level_);
}

void Pic8259Pair::drive_output(bool level) {
    if (level == int_level_) return;
    int_level_ = level;
    intr_.set(level);
}

// Recomputes the slave->master cascade and the INT output. Must run after every state change.
void Pic8259Pair::update() {
    // Master IR2 is edge-only (ELCR bit 2 cannot be set): a slave request is a pulse on it, given
    // again after every change so that a request still pending behind an acknowledged one reaches
    // the master once the master's IR2 is free again.
    if (chip_[1].pending_irq(false) >= 0) chip_[0].irr |= uint8_t(1u << kCascadeIrq);
    drive_output(chip_[0].pending_irq(true) >= 0);
}

void Pic8259Pair::set_irq(unsigned line, bool level) {
    if (line >= 16 || line == kCascadeIrq) {
        if (bad_input_.allow()) LOG_DEBUG("i8259: drive of non-device input %u ignored", line);
        return;
    }
    chip_[line >> 3].set_input(line & 7, level);
    update();
}

int Pic8259Pair::acknowledge() {
    Chip& master = chip_[0];
    Chip& slave = chip_[1];
    int vector;
    int irq = master.pending_irq(true);
    if (irq < 0) {
        // The request went away before INTA: the 8259A answers with IR7 and sets no ISR bit.
        vector = master.vector_base + kSpuriousIrq;
    } else if (unsigned(irq) == kCascadeIrq) {
        master.intack(kCascadeIrq);
        int irq2 = slave.pending_irq(false);
        if (irq2 >= 0) {
            slave.intack(unsigned(irq2));
            vector = slave.vector_base + irq2;
        } else {
            vector = slave.vector_base + kSpuriousIrq; // spurious IRQ 15
        }
    } else {
        master.intack(unsigned(irq));
        vector = master.vector_base + irq;
    }
    update();
    return vector;
}

uint8_t Pic8259Pair::read_port(unsigned chip, unsigned port) {
    Chip& c = chip_[chip];
    if (c.poll) {
        // Poll command: the read is the INTA; bit 7 says whether there was a request.
        c.poll = false;
        int irq = c.pending_irq(chip == 0);
        if (irq < 0) return 0;
        c.intack(unsigned(irq));
        update();
        return uint8_t(kPollInterrupt | irq);
    }
    if (port == 1) return c.imr;
    return c.read_isr ? c.isr : c.irr;
}

void Pic8259Pair::write_command(unsigned chip, uint8_t value) {
    Chip& c = chip_[chip];
    if (value & kIcw1Init) {
        // ICW1. LTIM (bit 3) is ignored: PIIX3 takes edge/level from the ELCR only. ADI and the
        // 8080 address bits mean nothing in x86 mode.
        c.init_reset();
        c.init_state = 1;
        c.icw4_needed = value & kIcw1Ic4;
        c.single = value & kIcw1Single;
        update();
        return;
    }
    if (value & kOcw3Select) {
        if (value & kOcw3Poll) c.poll = true;
        if (value & kOcw3Rr) c.read_isr = value & kOcw3Ris;
        if (value & kOcw3Esmm) c.special_mask = value & kOcw3Smm;
        update();
        return;
    }
    unsigned level = value & 7;
    switch (value >> 5) {
    case kRotateAeoiClear: c.rotate_on_aeoi = false; break;
    case kRotateAeoiSet: c.rotate_on_aeoi = true; break;
    case kNonSpecificEoi:
    case kRotateNonSpecificEoi: {
        int rank = c.highest(c.isr);
        if (rank == 8) break;
        unsigned irq = (rank + c.priority_add) & 7;
        c.isr &= ~(1u << irq);
        if ((value >> 5) == kRotateNonSpecificEoi) c.priority_add = (irq + 1) & 7;
        break;
    }
    case kSpecificEoi: c.isr &= ~(1u << level); break;
    case kRotateSpecificEoi:
        c.isr &= ~(1u << level);
        c.priority_add = (level + 1) & 7;
        break;
    case kSetPriority: c.priority_add = (level + 1) & 7; break; // L = the lowest-priority IR
    case kNop: break;
    }
    update();
}

void Pic8259Pair::write_data(unsigned chip, uint8_t value) {
    Chip& c = chip_[chip];
    switch (c.init_state) {
    case 0: c.imr = value; break; // OCW1
    case 1:                       // ICW2: x86 mode uses T7-T3 only
        c.vector_base = value & 0xF8;
        c.init_state = c.single ? (c.icw4_needed ? 3 : 0) : 2;
        break;
    case 2: // ICW3: the PC's cascade wiring is fixed (slave on IR2, slave ID 2)
        c.init_state = c.icw4_needed ? 3 : 0;
        break;
    default: // ICW4. uPM = 0 (8080 mode) and the buffered-mode bits do not change a PC.
        c.special_fully_nested = value & kIcw4Sfnm;
        c.auto_eoi = value & kIcw4Aeoi;
        c.init_state = 0;
        break;
    }
    update();
}

void Pic8259Pair::write_elcr(unsigned chip, uint8_t value) {
    Chip& c = chip_[chip];
    c.elcr = value & elcr_mask(chip);
    // Inputs that became level-sensitive request while their line is high.
    c.irr = uint8_t((c.irr & ~c.elcr) | (c.pins & c.elcr));
    update();
}

void Pic8259Pair::PortIo::io_read(uint64_t offset, std::span<uint8_t> data) {
    le_store(data, offset < 2 ? pic_.read_port(chip_, unsigned(offset)) : 0xFF);
}

void Pic8259Pair::PortIo::io_write(uint64_t offset, std::span<const uint8_t> data) {
    uint8_t v = uint8_t(le_load(data));
    if (offset == 0)
        pic_.write_command(chip_, v);
    else if (offset == 1)
        pic_.write_data(chip_, v);
}

void Pic8259Pair::ElcrIo::io_read(uint64_t offset, std::span<uint8_t> data) {
    le_store(data, offset < 2 ? pic_.chip_[offset].elcr : 0xFF);
}

void Pic8259Pair::ElcrIo::io_write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset < 2) pic_.write_elcr(unsigned(offset), uint8_t(le_load(data)));
}

void Pic8259Pair::reset(ResetKind) {
    // PIIX3 reset clears the ELCR too. Input levels are wires driven by other devices and stay.
    for (auto& c : chip_) {
        c.elcr = 0;
        c.init_reset();
    }
    update();
}

void Pic8259Pair::save(StateWriter& out) const {
    out.begin("i8259", kStateVersion);
    for (const Chip& c : chip_) {
        uint8_t fields[] = {
            c.irr,         c.imr,          c.isr,         c.edge,           c.pins,
            c.elcr,        c.priority_add, c.vector_base, c.init_state,     c.read_isr,
            c.poll,        c.special_mask, c.auto_eoi,    c.rotate_on_aeoi, c.special_fully_nested,
            c.icw4_needed, c.single};
        out.put_bytes(fields);
    }
}

void Pic8259Pair::load(StateReader& in) {
    in.begin("i8259", kStateVersion, kStateVersion);
    Chip loaded[2];
    for (unsigned i = 0; i < 2; i++) {
        uint8_t f[17];
        in.get_bytes(f);
        for (unsigned b = 9; b < 17; b++)
            if (f[b] > 1) throw StateError("i8259: bad flag in state");
        if (f[5] & ~elcr_mask(i)) throw StateError("i8259: ELCR sets an edge-only input");
        if (f[6] > 7 || (f[7] & 7) || f[8] > 3) throw StateError("i8259: bad register in state");
        Chip& c = loaded[i];
        c.irr = f[0];
        c.imr = f[1];
        c.isr = f[2];
        c.edge = f[3];
        c.pins = f[4];
        c.elcr = f[5];
        c.priority_add = f[6];
        c.vector_base = f[7];
        c.init_state = f[8];
        c.read_isr = f[9];
        c.poll = f[10];
        c.special_mask = f[11];
        c.auto_eoi = f[12];
        c.rotate_on_aeoi = f[13];
        c.special_fully_nested = f[14];
        c.icw4_needed = f[15];
        c.single = f[16];
        // Level requests are the line levels, whatever the file says.
        c.irr = uint8_t((c.irr & ~c.elcr) | (c.pins & c.elcr));
    }
    loaded[0].pins &= ~(1u << kCascadeIrq); // the cascade input is not a device line
    chip_[0] = loaded[0];
    chip_[1] = loaded[1];
    update();
    intr_.set(int_level_); // the receiver may have been restored separately
}

} // namespace hvm
