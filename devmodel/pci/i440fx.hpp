// Intel 82441FX PMC, the i440FX host bridge at 00:00.0 (82441FX datasheet §3.2; QEMU
// hw/pci-host/i440fx.c). 8086:1237 rev 02, class 060000, subsystem 1AF4:1100 like every QEMU `pc`
// function (SeaBIOS ignores fw_cfg without it).
//
// What the chip does beyond its PCI header:
//  - PAM0-PAM6 (0x59-0x5F) steer the BIOS areas 0xC0000-0xFFFFF between DRAM and the PCI/ROM side
//    in 13 segments: PAM0 bits 5:4 cover 0xF0000-0xFFFFF (64 KiB), then each nibble of PAM1..PAM6
//    one 16 KiB segment from 0xC0000 to 0xEC000 (low nibble first). Per segment: 0 = DRAM off
//    (reads and writes go to ROM/PCI), 1 = read DRAM / write ROM side, 2 = write DRAM / read ROM
//    side, 3 = DRAM read/write. Any access size works (SeaBIOS writes dwords at 0x58 and 0x5C);
//    the machine, which owns guest memory, remaps through PamListener on every change. Reserved
//    nibble bits read as 0.
//  - SMRAM (0x72) reads 0x02 (C_BASE_SEG = 0xA0000) from reset, as on QEMU. With no SMM, only
//    D_OPEN matters: it makes the DRAM under the VGA window 0xA0000-0xBFFFF visible instead of
//    the VGA memory (QEMU smram_update); D_LCK clears D_OPEN and freezes the register until reset.
//  - 0x57 (DRB) holds the RAM size in 8 MiB units, at most 255, as QEMU's i440fx_init sets it.
// PAM and SMRAM return to 0 / 0x02 on every reset, as PCIRST# does on the real chip (QEMU keeps
// them across a reset and SeaBIOS's qemu_reboot repairs the BIOS copy itself; both work).
#pragma once
#include <array>
#include <cstdint>

#include "devmodel/pci/pci_device.hpp"

namespace hvm {

enum class PamState : uint8_t {
    Pci = 0,       // DRAM disabled: reads and writes go to the ROM / PCI side
    ReadOnly = 1,  // reads from DRAM, writes to the ROM side (dropped)
    WriteOnly = 2, // writes to DRAM, reads from the ROM side
    ReadWrite = 3, // DRAM
};

// Implemented by the machine, which owns GuestMemory and the engines' memory slots.
class PamListener {
  public:
    virtual ~PamListener() = default;
    // Segment `segment` (see I440fxHostBridge::pam_segment) now has `state`.
    virtual void pam_changed(unsigned segment, PamState state) = 0;
    // SMRAM D_OPEN: true = DRAM at 0xA0000-0xBFFFF, false = the VGA window.
    virtual void smram_changed(bool dram_visible) = 0;
};

class I440fxHostBridge : public PciDevice {
  public:
    static constexpr uint16_t kVendor = 0x8086, kDevice = 0x1237;
    static constexpr uint8_t kRevision = 0x02;
    static constexpr unsigned kDram = 0x57; // DRB7 as QEMU fills it: RAM size / 8 MiB
    static constexpr unsigned kPam0 = 0x59; // PAM0..PAM6 at 0x59..0x5F
    static constexpr unsigned kPamCount = 7;
    static constexpr unsigned kSmram = 0x72;
    static constexpr unsigned kPamSegments = 13;
    static constexpr uint8_t kSmramReset = 0x02; // C_BASE_SEG = 010b
    static constexpr uint8_t kSmramDOpen = 0x40;
    static constexpr uint8_t kSmramDCls = 0x20;
    static constexpr uint8_t kSmramDLck = 0x10;
    static constexpr uint8_t kSmramGSmrame = 0x08;

    struct Segment {
        uint32_t base, size;
    };
    // Segment 0 = 0xF0000 (64 KiB), segments 1..12 = 0xC0000 + 16 KiB * (n - 1).
    static Segment pam_segment(unsigned index);

    I440fxHostBridge(PamListener& listener, uint64_t ram_size);

    PamState pam_state(unsigned segment) const;
    bool smram_dram_visible() const { return (smram_ & kSmramDOpen) != 0; }

    const char* name() const override { return "i440fx"; }

  protected:
    void config_written(unsigned offset, unsigned size) override;
    void device_reset(ResetKind kind) override;
    void sync_derived_state() override;

  private:
    static PamState state_in(const std::array<uint8_t, kPamCount>& pam, unsigned segment);
    void sync_listener();

    PamListener& listener_;
    std::array<uint8_t, kPamCount> pam_{}; // as last reported to the listener
    uint8_t smram_ = kSmramReset;          // as last accepted
};

} // namespace hvm
