// One device on an IDE channel: an ATA hard disk on a BlockDevice, or an ATAPI CD/DVD-ROM whose
// medium (an ISO image, 2048-byte sectors) can be absent, ejected and changed. Behaviour follows
// QEMU 7.2 hw/ide/core.c and hw/ide/atapi.c command by command, so that guests see the same
// device as on QEMU's `pc` machine; where hvm deviates it says so next to the code.
//
// The device owns its task-file registers (the channel writes Features..Device/Head to both
// devices, as on the real cable), its status and error, and a 16 KiB PIO buffer. Data port
// accesses move bytes between that buffer and the guest; whenever a block is consumed the
// device runs the next step of the command (read the next sectors, write the block that was
// just filled, run the ATAPI packet, send the next part of an ATAPI reply).
//
// PIO is synchronous: a READ SECTORS reads its block from the BlockDevice inside the register
// access that starts or continues it. DMA and FLUSH CACHE are asynchronous: the device asks its
// channel (IdeChannel) to run them on the block worker pool and is told the outcome later, with
// the device-model lock held.
//
// Every guest-supplied value is checked before use: LBAs and counts against the medium (IDNF on
// a disk, ILLEGAL REQUEST / LBA OUT OF RANGE on the CD: CVE-2020-29443), every PIO window against
// the buffer (CVE-2015-5154), ATAPI allocation lengths and byte count limits against the reply.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/state.hpp"
#include "block/block_device.hpp"
#include "devmodel/ide/ide_dma.hpp"
#include "devmodel/ide/ide_geometry.hpp"

namespace hvm {

class IdeChannel;

enum class IdeDriveKind : uint8_t { None = 0, Disk = 1, Cdrom = 2 };

class IdeDrive {
  public:
    static constexpr unsigned kMaxMultipleSectors = 16; // QEMU MAX_MULT_SECTORS
    static constexpr size_t kBufferSize = 16 * 1024;
    static constexpr const char* kFirmwareRevision = "2.5+"; // QEMU's qemu_hw_version()
    // SET FEATURES 03h value QEMU's IDENTIFY starts with: UDMA mode 5 selected (word 88 bit 13).
    static constexpr uint8_t kInitialTransferMode = 0x45;

    IdeDrive(IdeChannel& channel, unsigned unit);
    IdeDrive(const IdeDrive&) = delete;
    IdeDrive& operator=(const IdeDrive&) = delete;

    // Machine wiring, before the first reset. `serial` is the IDENTIFY serial number ("QM00001"
    // for the primary master as in QEMU). A disk must be writable (QEMU refuses read-only IDE
    // disks); a CD-ROM may start empty.
    void attach_disk(std::shared_ptr<block::BlockDevice> disk, const IdeGeometry& geometry,
                     std::string serial);
    void attach_cdrom(std::shared_ptr<block::BlockDevice> medium, std::string serial);

    IdeDriveKind kind() const { return kind_; }
    bool present() const { return kind_ != IdeDriveKind::None; }
    const IdeGeometry& geometry() const { return geometry_; }
    block::BlockDevice* medium() const { return medium_.get(); }
    const std::string& serial() const { return serial_; }

    // CD-ROM medium control (QMP `blockdev-change-medium` / `eject`), with the device-model lock
    // held. Both tell the guest as QEMU does: the next command reports NOT READY, then UNIT
    // ATTENTION / MEDIUM MAY HAVE CHANGED, and GET EVENT STATUS NOTIFICATION reports NewMedia.
    // eject() refuses a medium the guest locked (PREVENT ALLOW MEDIUM REMOVAL) unless `force`,
    // posting an eject request event instead.
    void change_medium(std::unique_ptr<block::BlockDevice> medium);
    bool eject(bool force = false);
    bool tray_open() const { return tray_open_; }
    bool tray_locked() const { return tray_locked_; }

    // ---- used by IdeChannel, with the device-model lock held ----
    // QEMU ide_reset. `hard`: a machine reset, which also undoes INITIALIZE DEVICE PARAMETERS.
    void reset(bool hard = true);
    void write_taskfile(unsigned reg, uint8_t value);    // registers 1..6
    uint8_t read_taskfile(unsigned reg, bool hob) const; // registers 1..6
    uint8_t status() const;
    void execute(uint8_t command);
    uint32_t read_data(unsigned size);
    void write_data(unsigned size, uint32_t value);
    void srst_assert();
    void srst_release();
    // The bus-master engine's answers.
    void dma_finished(IdeDmaOutcome outcome, block::IoStatus status);
    void flush_finished(block::IoStatus status);
    std::span<const uint8_t> reply_buffer() const { return buf_; }
    // The DMA in flight is abandoned (bus master stopped, reset): end the command aborted.
    void dma_abandoned();
    std::shared_ptr<block::BlockDevice> medium_ref() const { return medium_; }

    void save(StateWriter& out) const;
    void load(StateReader& in);

  private:
    // What happens when the current PIO block has been moved (QEMU end_transfer_func).
    enum class EndAction : uint8_t {
        Idle = 0,    // nothing in progress
        SectorRead,  // READ SECTORS/MULTIPLE: read the next block
        SectorWrite, // WRITE SECTORS/MULTIPLE: write this block
        Stop,        // one-block replies (IDENTIFY)
        AtapiReply,  // next part of an ATAPI reply
        AtapiPacket, // the 12-byte packet has arrived
    };
    static constexpr uint8_t kEndActionLast = uint8_t(EndAction::AtapiPacket);
    enum class DmaCommand : uint8_t { None = 0, AtaRead, AtaWrite, AtapiRead, AtapiReply, Flush };
    static constexpr uint8_t kDmaCommandLast = uint8_t(DmaCommand::Flush);

    struct TaskFile {
        uint8_t feature = 0, hob_feature = 0;
        uint32_t nsector = 0; // after the LBA48 transform: 1..65536
        uint8_t hob_nsector = 0;
        uint8_t sector = 0, hob_sector = 0;
        uint8_t lcyl = 0, hob_lcyl = 0;
        uint8_t hcyl = 0, hob_hcyl = 0;
        uint8_t select = 0;
    };

    bool is_cd() const { return kind_ == IdeDriveKind::Cdrom; }
    uint64_t total_sectors() const { return medium_ ? medium_->sectors() : 0; }
    void raise_irq();

    // ---- ATA (ide_drive.cpp) ----
    bool dispatch_ata(uint8_t command, bool& set_dsc);
    void set_signature();
    void abort_command();
    void rw_error(uint8_t error);
    void start_transfer(size_t offset, size_t size, EndAction action);
    void transfer_stop();
    void end_transfer();
    int64_t get_sector() const;
    void set_sector(int64_t sector);
    bool sector_range_ok(int64_t sector, uint64_t count) const;
    void lba48_transform(bool lba48);
    void sector_read();
    void sector_write();
    void start_ata_dma(bool write);
    void build_identify();
    void build_identify_packet();
    void execute_diagnostic();
    bool set_features();
    void flush_cache();

    // ---- ATAPI (atapi.cpp) ----
    void atapi_packet();
    void atapi_command();
    void atapi_check_status();
    void atapi_io_error();
    void cd_data_to_raw();
    int dvd_read_structure(uint8_t format, uint8_t layer);
    bool media_is_dvd() const;
    bool media_is_cd() const;
    void atapi_reply(size_t size, size_t max_size);
    void atapi_reply_end();
    void atapi_ok();
    void atapi_error(uint8_t sense_key, uint8_t asc);
    void atapi_start_read(uint32_t lba, uint32_t count, unsigned sector_size);
    bool cd_read_sector();
    bool media_present() const;
    uint16_t byte_count_limit() const;
    void media_changed(bool loaded);
    void cmd_inquiry(const uint8_t* cdb);
    void cmd_request_sense(const uint8_t* cdb);
    void cmd_mode_sense(const uint8_t* cdb);
    void cmd_read(const uint8_t* cdb);
    void cmd_read_cd(const uint8_t* cdb);
    void cmd_read_toc(const uint8_t* cdb);
    void cmd_get_configuration(const uint8_t* cdb);
    void cmd_get_event_status(const uint8_t* cdb);
    void cmd_read_disc_information(const uint8_t* cdb);
    void cmd_read_dvd_structure(const uint8_t* cdb);
    void cmd_start_stop_unit(const uint8_t* cdb);
    void cmd_mechanism_status(const uint8_t* cdb);

    IdeChannel& channel_;
    unsigned unit_;
    IdeDriveKind kind_ = IdeDriveKind::None;
    std::shared_ptr<block::BlockDevice> medium_;
    std::string serial_;
    IdeGeometry geometry_;

    // Registers.
    TaskFile tf_;
    uint8_t status_ = 0;
    uint8_t error_ = 0;
    bool lba48_ = false;

    // Settings the guest changes.
    uint8_t mult_sectors_ = kMaxMultipleSectors;
    uint8_t transfer_mode_ = kInitialTransferMode;
    bool write_cache_ = true;
    uint16_t cur_cylinders_ = 0, cur_heads_ = 0, cur_sectors_ = 0; // INITIALIZE DEVICE PARAMETERS

    // PIO.
    std::array<uint8_t, kBufferSize> buf_{};
    size_t data_pos_ = 0, data_end_ = 0;
    EndAction end_action_ = EndAction::Idle;
    uint32_t req_nb_sectors_ = 0;

    // DMA.
    DmaCommand dma_cmd_ = DmaCommand::None;

    // ATAPI.
    uint8_t sense_key_ = 0, asc_ = 0;
    uint8_t cdrom_changed_ = 0; // 1: report NOT READY next, 2: then UNIT ATTENTION
    bool tray_open_ = false, tray_locked_ = false;
    bool event_new_media_ = false, event_eject_request_ = false;
    bool atapi_dma_ = false;
    int64_t lba_ = -1; // next CD sector to read; -1 for a reply from buf_
    uint64_t packet_transfer_size_ = 0;
    uint32_t elementary_transfer_size_ = 0;
    uint32_t io_buffer_index_ = 0;
    uint32_t cd_sector_size_ = 0;
    uint32_t reply_size_ = 0; // valid bytes in buf_ for an ATAPI reply
};

} // namespace hvm
