// Intel 82371SB PIIX3 function 0, the PCI-to-ISA bridge at 00:01.0 (82371SB datasheet §2.2;
// QEMU hw/isa/piix3.c). 8086:7000, class 060100, header type 0x80 (multi-function: without it
// functions 1-3 are never scanned), status 0x0200 (DEVSEL medium).
//
//  - PIRQRC[A:D] (0x60-0x63) steer the four PCI interrupt lines; every write re-routes through
//    the PciIrqRouter at once (the DSDT's LNKx._SRS writes them at run time).
//  - The Reset Control register at I/O port 0xCF9 (reset_control(), reached through PciBus's
//    0xCF8 window): a write with bit 2 set resets the machine, whatever bit 1 (hard/soft) says,
//    as QEMU's rcr_write does; otherwise bit 1 is kept and read back.
//  - Other registers hold QEMU's piix3_reset values (0x4C=0x4D, 0x4E=0x03, 0x69=0x02, 0x70=0x80,
//    0x76/0x77=0x0C, 0x78=0x02, 0xA0=0x08, 0xA8=0x0F) and are plain storage, as in QEMU. The
//    command register reads 0 after reset: QEMU's piix3_reset writes 7 but the generic PCI reset
//    that follows clears it, which is why SeaBIOS leaves 0x0103 there (measured).
// The ELCR (0x4D0/0x4D1) lives in the PIC model.
#pragma once
#include <cstdint>

#include "devmodel/pci/pci_device.hpp"
#include "devmodel/pci/pci_irq_router.hpp"
#include "devmodel/platform.hpp"

namespace hvm {

class Piix3IsaBridge : public PciDevice {
  public:
    static constexpr uint16_t kVendor = 0x8086, kDevice = 0x7000;
    static constexpr unsigned kPirqRc = 0x60; // PIRQRC[A..D] at 0x60..0x63
    static constexpr uint8_t kPirqReset = 0x80;
    static constexpr uint8_t kRcSystemReset = 0x04; // RC bit 2: reset CPU / system
    static constexpr uint8_t kRcHardReset = 0x02;   // RC bit 1: full (hard) reset

    Piix3IsaBridge(PciIrqRouter& router, PlatformControl& platform);

    // Port 0xCF9 (one byte). Give it to PciBus::set_reset_control.
    IoHandler& reset_control() { return rcr_io_; }
    uint8_t reset_control_value() const { return rcr_; }

    const char* name() const override { return "piix3"; }

  protected:
    void config_written(unsigned offset, unsigned size) override;
    void device_reset(ResetKind kind) override;
    void save_extra(StateWriter& out) const override;
    void load_extra(StateReader& in) override;
    void sync_derived_state() override;

  private:
    class ResetControlIo : public IoHandler {
      public:
        explicit ResetControlIo(Piix3IsaBridge& d) : d_(d) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;

      private:
        Piix3IsaBridge& d_;
    };

    void push_routes();

    PciIrqRouter& router_;
    PlatformControl& platform_;
    uint8_t rcr_ = 0;
    ResetControlIo rcr_io_{*this};
};

} // namespace hvm
