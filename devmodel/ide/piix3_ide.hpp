// Intel 82371SB PIIX3 function 1, the IDE controller at 00:01.1 (82371SB datasheet §2.4; QEMU
// hw/ide/piix.c "piix3-ide"; pc-platform.md §3.3 for the registers after SeaBIOS POST).
//
//  - 8086:7010 rev 0, class 010180: mass storage / IDE with prog-if 0x80 (bus master, both
//    channels fixed in compatibility mode), status 0x0280, no INTx pin, subsystem 1AF4:1100.
//  - Both channels decode their legacy ports at all times (QEMU ignores IDETIM's decode-enable
//    bit, and a directly booted kernel needs the disks before any firmware set it): primary
//    0x1F0-0x1F7 + 0x3F6 on ISA IRQ 14, secondary 0x170-0x177 + 0x376 on ISA IRQ 15. The IRQs
//    are ISA pins (edge on the 8259, the IOAPIC's ISA pins), not PCI INTx.
//  - BAR0-3 read 0; BAR4 is the 16-byte bus-master I/O block (channel 0 at +0, channel 1 at +8),
//    mapped by the PCI core wherever the guest puts it (SeaBIOS: 0xC120).
//  - 0x40-0x4F (IDETIM, SIDETIM; Windows' intelide also writes the PIIX4 UDMA registers) are
//    plain storage, as in QEMU.
//  - Bus mastering obeys the PCI command register: DMA with Bus Master clear fails with a master
//    abort (status bit 13) and the bus-master ERROR bit.
//
// Machine wiring (QEMU pc_piix.c): the device sits at devfn 00:01.1; map_legacy_ports() puts
// the command and control blocks on the PIO bus; `-drive if=ide,index=N` is channel N/2, unit
// N%2 (block::assign_ide_slots), a disk through attach_disk(), media=cdrom through
// attach_cdrom(). The drives' serial numbers are QEMU's "QM0000<1+N>".
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "block/block_device.hpp"
#include "block/block_worker_pool.hpp"
#include "devmodel/ide/ide_channel.hpp"
#include "devmodel/ide/ide_geometry.hpp"
#include "devmodel/irq/irq_pin.hpp"
#include "devmodel/pci/pci_device.hpp"
#include "vcpu/guest_memory.hpp"
#include "vmexit/bus.hpp"

namespace hvm {

class Piix3Ide : public PciDevice, public IdeDmaHost {
  public:
    static constexpr uint16_t kVendor = 0x8086, kDevice = 0x7010;
    static constexpr uint32_t kClassIde = 0x010180;
    static constexpr uint16_t kStatus = pci::kStatusDevselMedium | pci::kStatusFastBackToBack;
    static constexpr unsigned kBusMasterBar = 4;
    static constexpr uint32_t kBusMasterSize = 16;
    static constexpr unsigned kIdetimPrimary = 0x40, kIdetimSecondary = 0x42, kSidetim = 0x44;
    static constexpr uint8_t kDevfn = pci::devfn(1, 1);

    static constexpr uint16_t kCommandPort[2] = {0x1F0, 0x170};
    static constexpr uint16_t kControlPort[2] = {0x3F6, 0x376};
    static constexpr unsigned kIsaIrq[2] = {14, 15};
    static constexpr unsigned kChannels = 2;

    // `pool` may be null: DMA then completes synchronously (fuzzers, simple tests).
    // `device_lock` is the device-model lock; DMA completions take it on the worker thread, so
    // the pool must be drained or destroyed while it is not held and before it goes away.
    Piix3Ide(IrqPin primary_irq, IrqPin secondary_irq, GuestMemory& memory,
             block::BlockWorkerPool* pool, std::mutex& device_lock);

    // Before the first reset. `geometry`: as given with -drive cyls=,heads=,secs= (QEMU);
    // nullopt guesses it as QEMU does. Throws UserError for a read-only disk.
    void attach_disk(unsigned channel, unsigned unit, std::unique_ptr<block::BlockDevice> disk,
                     std::optional<IdeGeometry> geometry = std::nullopt);
    // `medium` may be null (an empty drive).
    void attach_cdrom(unsigned channel, unsigned unit, std::unique_ptr<block::BlockDevice> medium);

    IdeChannel& channel(unsigned index) { return *channels_[index & 1]; }
    IdeDrive& drive(unsigned channel, unsigned unit) { return channels_[channel & 1]->drive(unit); }

    // Registers both channels' command and control blocks on the PIO bus.
    void map_legacy_ports(Bus& pio);

    const char* name() const override { return "piix3-ide"; }

  protected:
    void device_reset(ResetKind kind) override;
    void save_extra(StateWriter& out) const override;
    void load_extra(StateReader& in) override;

  private:
    class BusMasterIo : public IoHandler {
      public:
        explicit BusMasterIo(Piix3Ide& d) : d_(d) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;

      private:
        Piix3Ide& d_;
    };

    bool bus_master_enabled() const override;
    void signal_master_abort() override;

    std::unique_ptr<IdeChannel> channels_[kChannels];
    BusMasterIo bm_io_{*this};
};

} // namespace hvm
