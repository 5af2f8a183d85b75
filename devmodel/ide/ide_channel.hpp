// One IDE channel of the PIIX3 (82371SB datasheet §2.4, §2.7; QEMU hw/ide/core.c, pci.c, piix.c):
// two devices on one cable, the command block (8 ports: 0x1F0 / 0x170), the control block (one
// port: 0x3F6 / 0x376, alternate status and device control), the ISA interrupt line (IRQ 14 /
// 15, driven as a level that the status read or a new command drops, as QEMU does) and the
// channel's half of the bus-master block (command, status, PRD table pointer).
//
// Register semantics as QEMU 7.2:
//  - Features..Device/Head writes go to both devices; they are ignored while the selected device
//    is BSY or DRQ. Writing Device/Head selects the device; HOB (device control bit 7) picks the
//    previous ("high order") values on reads of registers 1-5, and any task-file write clears it.
//  - With no device on the channel every register reads 0; with the slave selected and absent,
//    Error and Status read 0 and commands are ignored (Linux and SeaBIOS probe on that).
//  - The data port moves 2 or 4 bytes per access; REP INSW/OUTSW arrive element by element and
//    each element is a bounds-checked copy out of the device buffer.
//  - Device control: nIEN masks the interrupt (and drops a pending one, as the tri-stated INTRQ
//    does on real hardware), SRST holds both devices BSY until it is released, then they run
//    their diagnostic and show their signatures (0x01/0x01/0x00/0x00 ATA, 0x14/0xEB ATAPI).
//
// Bus-master IDE (Intel "Programming Interface for Bus Master IDE Controller" 1.0, PIIX3 §2.7.3):
//  - Command (+0): bit 0 Start/Stop, bit 3 direction; status (+2): bit 0 ACTIVE (read only), bits
//    1 ERROR and 2 INTERRUPT write-one-to-clear, bits 5/6 drive DMA capable (R/W), bit 7
//    simplex (0: the PIIX3 runs both channels at once); PRD table address (+4, dword aligned).
//  - PRD entries are {u32 address, u16 byte count (0 = 64 KiB, bit 0 ignored), u16 flags with
//    EOT in bit 15}. The walk is capped at 8192 entries (a 64 KiB table), so an unterminated
//    table cannot loop. A table or buffer outside guest RAM (or above 4 GiB, or with bus
//    mastering disabled in the PCI command register) ends the command with ERROR in the
//    bus-master status, PCI Received Master Abort and an aborted command on the drive.
//  - A PRD table shorter than the transfer: ACTIVE cleared, no interrupt, nothing transferred
//    (QEMU ide_dma_cb "PRDs too short"). Longer: the transfer completes with INTERRUPT set and
//    ACTIVE still set (an ATA command only, as QEMU).
//  - The INTERRUPT bit follows the channel's IRQ output, PIO commands included (QEMU bmdma_irq).
//  - Clearing Start while a transfer is in flight abandons it: nothing more reaches guest memory
//    and the drive ends the command aborted. (QEMU instead waits for the transfer to finish; a
//    guest only does this on its error path, before resetting the channel.)
//
// Disk I/O for DMA runs on the BlockWorkerPool in chunks of up to 256 KiB through a bounce
// buffer; completions take the injected device-model lock before touching the channel. Without
// a pool (fuzzers) the same steps run synchronously.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "base/state.hpp"
#include "block/block_worker_pool.hpp"
#include "devmodel/device.hpp"
#include "devmodel/ide/ide_dma.hpp"
#include "devmodel/ide/ide_drive.hpp"
#include "devmodel/irq/irq_pin.hpp"
#include "vcpu/guest_memory.hpp"

namespace hvm {

// What the channel needs from the PCI function it belongs to.
class IdeDmaHost {
  public:
    virtual ~IdeDmaHost() = default;
    virtual bool bus_master_enabled() const = 0;
    virtual void signal_master_abort() = 0;
};

class IdeChannel {
  public:
    // Bus-master register offsets within the channel's 8 bytes and their bits.
    static constexpr unsigned kBmCommand = 0, kBmStatus = 2, kBmPrdTable = 4;
    static constexpr uint8_t kBmCmdStart = 0x01, kBmCmdWrite = 0x08;
    static constexpr uint8_t kBmStatusActive = 0x01, kBmStatusError = 0x02,
                             kBmStatusInterrupt = 0x04, kBmStatusDrive0Dma = 0x20,
                             kBmStatusDrive1Dma = 0x40, kBmStatusSimplex = 0x80;
    static constexpr unsigned kMaxPrdEntries = 8192;
    static constexpr uint64_t kDmaChunk = 256 * 1024;

    IdeChannel(unsigned index, IrqPin irq, GuestMemory& memory, block::BlockWorkerPool* pool,
               std::mutex& device_lock, IdeDmaHost& host);
    ~IdeChannel();
    IdeChannel(const IdeChannel&) = delete;
    IdeChannel& operator=(const IdeChannel&) = delete;

    unsigned index() const { return index_; }
    IdeDrive& drive(unsigned unit) { return *drives_[unit & 1]; }
    const IdeDrive& drive(unsigned unit) const { return *drives_[unit & 1]; }

    // The legacy windows: register command_block() for 8 ports with AccessSizes{1, 4} and
    // control_block() for 1 port with AccessSizes{1, 1}.
    IoHandler& command_block() { return command_io_; }
    IoHandler& control_block() { return control_io_; }
    // Bus-master registers, offset 0..7 within this channel's half of BAR4.
    void bm_read(unsigned offset, std::span<uint8_t> data);
    void bm_write(unsigned offset, std::span<const uint8_t> data);

    void reset(); // machine reset: devices, device control, bus master
    bool irq_level() const { return irq_level_; }
    uint8_t bm_status() const { return bm_status_; }
    bool dma_in_flight() const { return job_ != nullptr; }
    bool dma_pending() const { return pending_.has_value(); } // waiting for Start, or running

    void save(StateWriter& out) const;
    void load(StateReader& in);

    // ---- used by IdeDrive ----
    void raise_irq();
    void request_dma(unsigned unit, const IdeDmaRequest& request);
    void request_flush(unsigned unit);
    void cancel_dma(); // abandon whatever the bus master or the flush is doing

  private:
    struct SgEntry {
        uint64_t gpa;
        uint64_t len;
    };
    struct Job {
        unsigned unit = 0;
        IdeDmaRequest req;
        std::vector<SgEntry> sg;
        uint64_t done = 0;
        bool stay_active = false;
        bool flushing = false;
        std::shared_ptr<block::BlockDevice> medium;
        std::vector<uint8_t> bounce;
    };
    // Lets a completion on a worker thread find the channel, or learn it is gone.
    struct Anchor {
        std::mutex mutex;
        IdeChannel* channel = nullptr;
        std::mutex* device_lock = nullptr;
    };

    class CommandBlock : public IoHandler {
      public:
        explicit CommandBlock(IdeChannel& ch) : ch_(ch) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;

      private:
        IdeChannel& ch_;
    };
    class ControlBlock : public IoHandler {
      public:
        explicit ControlBlock(IdeChannel& ch) : ch_(ch) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;

      private:
        IdeChannel& ch_;
    };

    IdeDrive& selected() { return *drives_[unit_]; }
    bool no_devices() const { return !drives_[0]->present() && !drives_[1]->present(); }
    bool selected_absent() const { return unit_ == 1 && !drives_[1]->present(); }
    uint8_t read_register(unsigned reg);
    void write_register(unsigned reg, uint8_t value);
    void write_control(uint8_t value);
    void lower_irq();
    void write_bm_command(uint8_t value);

    void run_dma();
    bool build_sg(Job& job);
    bool guest_range_ok(uint64_t gpa, uint64_t len) const;
    bool copy_to_guest(const Job& job, uint64_t pos, std::span<const uint8_t> data);
    bool copy_from_guest(const Job& job, uint64_t pos, std::span<uint8_t> data);
    void pump();
    void submit_chunk(const std::shared_ptr<Job>& job);
    void chunk_completed(const std::shared_ptr<Job>& job, block::IoStatus status);
    bool apply_chunk(Job& job, block::IoStatus status);
    void finish_dma(IdeDmaOutcome outcome, block::IoStatus status);
    void resume_after_load();

    unsigned index_;
    IrqPin irq_;
    GuestMemory& memory_;
    block::BlockWorkerPool* pool_;
    std::mutex& device_lock_;
    IdeDmaHost& host_;
    std::shared_ptr<Anchor> anchor_;
    std::unique_ptr<IdeDrive> drives_[2];
    CommandBlock command_io_{*this};
    ControlBlock control_io_{*this};

    unsigned unit_ = 0;
    uint8_t control_ = 0;
    bool irq_level_ = false;

    uint8_t bm_cmd_ = 0, bm_status_ = 0;
    uint32_t bm_prd_table_ = 0;
    // PRD walk position (QEMU cur_addr / cur_prd_*).
    uint32_t cur_table_ = 0;
    uint32_t cur_prd_addr_ = 0, cur_prd_len_ = 0;
    bool cur_prd_last_ = false;
    unsigned prd_entries_ = 0;

    std::optional<IdeDmaRequest> pending_; // waiting for Start, or running
    unsigned pending_unit_ = 0;
    std::shared_ptr<Job> job_; // in flight
    bool in_pump_ = false;
};

} // namespace hvm
