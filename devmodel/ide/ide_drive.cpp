// ATA side of IdeDrive: registers, PIO, the ATA command set, IDENTIFY, state.
#include "devmodel/ide/ide_drive.hpp"

#include <algorithm>
#include <cstring>

#include "base/error.hpp"
#include "base/log.hpp"
#include "devmodel/ide/ata.hpp"
#include "devmodel/ide/ide_channel.hpp"

namespace hvm {

using namespace ata;

namespace {

constexpr uint64_t kSector = 512;
constexpr uint32_t kStateVersion = 1;

void put_word(uint8_t* buf, unsigned word, uint16_t v) {
    buf[2 * word] = uint8_t(v);
    buf[2 * word + 1] = uint8_t(v >> 8);
}

// ATA strings: two characters per word, the first in the high byte (ATA-6 §3.2.9; QEMU padstr).
void put_ata_string(uint8_t* buf, unsigned word, unsigned len, const std::string& s) {
    for (unsigned i = 0; i < len; i++) buf[2 * word + (i ^ 1)] = uint8_t(i < s.size() ? s[i] : ' ');
}

bool pio_in(uint8_t action) {
    return action != 2 /* SectorWrite */ && action != 5 /* AtapiPacket */;
}

} // namespace

IdeDrive::IdeDrive(IdeChannel& channel, unsigned unit) : channel_(channel), unit_(unit & 1) {
    reset(true);
}

void IdeDrive::attach_disk(std::shared_ptr<block::BlockDevice> disk, const IdeGeometry& geometry,
                           std::string serial) {
    if (!disk) fail("IDE disk: no image");
    if (disk->read_only())
        fail("IDE disk '" + disk->filename() +
             "' is read-only: drop readonly=on, or attach it with media=cdrom");
    kind_ = IdeDriveKind::Disk;
    medium_ = std::move(disk);
    geometry_ = geometry;
    if (geometry_.heads == 0 || geometry_.heads > 16 || geometry_.sectors == 0 ||
        geometry_.sectors > 255 || geometry_.cylinders == 0 || geometry_.cylinders > 65535)
        geometry_ = guess_ide_geometry(*medium_);
    write_cache_ = medium_->write_cache_enabled();
    serial_ = std::move(serial);
    reset(true);
}

void IdeDrive::attach_cdrom(std::shared_ptr<block::BlockDevice> medium, std::string serial) {
    kind_ = IdeDriveKind::Cdrom;
    medium_ = std::move(medium);
    geometry_ = {};
    write_cache_ = false;
    serial_ = std::move(serial);
    reset(true);
}

void IdeDrive::raise_irq() {
    channel_.raise_irq();
}

// ---- reset and signature ------------------------------------------------------------------

void IdeDrive::reset(bool hard) {
    mult_sectors_ = kMaxMultipleSectors;
    tf_ = TaskFile{};
    tf_.select = kDeviceObsolete;
    status_ = kStatusDrdy | kStatusDsc;
    error_ = 0;
    lba48_ = false;
    sense_key_ = 0;
    asc_ = 0;
    cdrom_changed_ = 0;
    packet_transfer_size_ = 0;
    elementary_transfer_size_ = 0;
    io_buffer_index_ = 0;
    cd_sector_size_ = 0;
    reply_size_ = 0;
    lba_ = -1;
    atapi_dma_ = false;
    tray_locked_ = false;
    tray_open_ = false;
    req_nb_sectors_ = 0;
    dma_cmd_ = DmaCommand::None;
    if (hard) {
        cur_cylinders_ = uint16_t(std::min<uint32_t>(geometry_.cylinders, 65535));
        cur_heads_ = uint16_t(geometry_.heads);
        cur_sectors_ = uint16_t(geometry_.sectors);
    }
    set_signature();
    end_action_ = EndAction::Idle;
    data_pos_ = data_end_ = 0;
}

// ATA-6 §9.12: what the task file holds after a reset or EXECUTE DEVICE DIAGNOSTIC tells the
// host which kind of device answers.
void IdeDrive::set_signature() {
    tf_.select &= uint8_t(~kDeviceHeadMask);
    tf_.nsector = 1;
    tf_.sector = 1;
    if (is_cd()) {
        tf_.lcyl = 0x14;
        tf_.hcyl = 0xEB;
    } else if (present()) {
        tf_.lcyl = 0;
        tf_.hcyl = 0;
    } else {
        tf_.lcyl = 0xFF;
        tf_.hcyl = 0xFF;
    }
}

void IdeDrive::srst_assert() {
    transfer_stop();
    reset(false);
    status_ = kStatusBsy;
}

// The devices run their diagnostic when SRST is released (ATA-6 §9.2). QEMU also raises the
// interrupt here for a disk; the standard says a software reset does not, and hvm follows it.
void IdeDrive::srst_release() {
    set_signature();
    error_ = 0x01; // "device 0 passed, device 1 passed or not present"
    status_ = is_cd() ? 0 : uint8_t(kStatusDrdy | kStatusDsc);
}

void IdeDrive::execute_diagnostic() {
    set_signature();
    error_ = 0x01;
    if (is_cd()) {
        status_ = 0; // packet devices leave DRDY clear (ATAPI-6 §9.10)
    } else {
        status_ = kStatusDrdy | kStatusDsc;
        raise_irq();
    }
}

// ---- registers ------------------------------------------------------------------------------

void IdeDrive::write_taskfile(unsigned reg, uint8_t value) {
    switch (reg) {
    case kRegError:
        tf_.hob_feature = tf_.feature;
        tf_.feature = value;
        break;
    case kRegSectorCount:
        tf_.hob_nsector = uint8_t(tf_.nsector);
        tf_.nsector = value;
        break;
    case kRegLbaLow:
        tf_.hob_sector = tf_.sector;
        tf_.sector = value;
        break;
    case kRegLbaMid:
        tf_.hob_lcyl = tf_.lcyl;
        tf_.lcyl = value;
        break;
    case kRegLbaHigh:
        tf_.hob_hcyl = tf_.hcyl;
        tf_.hcyl = value;
        break;
    case kRegDevice: tf_.select = value | kDeviceObsolete; break;
    default: break;
    }
}

uint8_t IdeDrive::read_taskfile(unsigned reg, bool hob) const {
    switch (reg) {
    case kRegError: return hob ? tf_.hob_feature : error_;
    case kRegSectorCount: return hob ? tf_.hob_nsector : uint8_t(tf_.nsector);
    case kRegLbaLow: return hob ? tf_.hob_sector : tf_.sector;
    case kRegLbaMid: return hob ? tf_.hob_lcyl : tf_.lcyl;
    case kRegLbaHigh: return hob ? tf_.hob_hcyl : tf_.hcyl;
    case kRegDevice: return tf_.select;
    default: return 0xFF;
    }
}

// Status bit 4 of a packet device is SERVICE, and Win9x's ATAPI driver misbehaves when it reads
// 1 (pc-platform.md §9); QEMU reports DSC there, hvm masks it.
uint8_t IdeDrive::status() const {
    return is_cd() ? uint8_t(status_ & ~kStatusDsc) : status_;
}

// ---- PIO data -------------------------------------------------------------------------------

void IdeDrive::start_transfer(size_t offset, size_t size, EndAction action) {
    if (offset > kBufferSize || size > kBufferSize - offset) {
        // Unreachable by construction; the check keeps a state-file or logic slip from ever
        // turning into an out-of-bounds PIO window (CVE-2015-5154).
        LOG_ERROR("ide: PIO window %zu+%zu outside the buffer", offset, size);
        abort_command();
        raise_irq();
        return;
    }
    data_pos_ = offset;
    data_end_ = offset + size;
    end_action_ = action;
    if (!(status_ & kStatusErr)) status_ |= kStatusDrq;
}

void IdeDrive::transfer_stop() {
    end_action_ = EndAction::Idle;
    data_pos_ = data_end_ = 0;
    status_ &= uint8_t(~kStatusDrq);
}

void IdeDrive::end_transfer() {
    switch (end_action_) {
    case EndAction::SectorRead: sector_read(); break;
    case EndAction::SectorWrite: sector_write(); break;
    case EndAction::AtapiReply: atapi_reply_end(); break;
    case EndAction::AtapiPacket: atapi_command(); break;
    case EndAction::Stop:
    case EndAction::Idle: transfer_stop(); break;
    }
}

// A 2- or 4-byte data port read. Outside a data-in phase it reads 0 and moves nothing (QEMU).
// An access reaching past the end of the block takes the bytes that remain, zero-padded, and
// ends the block: an odd-length ATAPI reply then completes instead of leaving DRQ set forever.
uint32_t IdeDrive::read_data(unsigned size) {
    if (!(status_ & kStatusDrq) || !pio_in(uint8_t(end_action_)) || data_pos_ >= data_end_)
        return 0;
    size_t n = std::min<size_t>(size, data_end_ - data_pos_);
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) v |= uint32_t(buf_[data_pos_ + i]) << (8 * i);
    data_pos_ += n;
    if (data_pos_ >= data_end_) {
        status_ &= uint8_t(~kStatusDrq);
        end_transfer();
    }
    return v;
}

void IdeDrive::write_data(unsigned size, uint32_t value) {
    if (!(status_ & kStatusDrq) || pio_in(uint8_t(end_action_)) || data_pos_ >= data_end_) return;
    size_t n = std::min<size_t>(size, data_end_ - data_pos_);
    for (size_t i = 0; i < n; i++) buf_[data_pos_ + i] = uint8_t(value >> (8 * i));
    data_pos_ += n;
    if (data_pos_ >= data_end_) {
        status_ &= uint8_t(~kStatusDrq);
        end_transfer();
    }
}

// ---- addressing -----------------------------------------------------------------------------

int64_t IdeDrive::get_sector() const {
    if (tf_.select & kDeviceLba) {
        if (lba48_)
            return int64_t(tf_.hob_hcyl) << 40 | int64_t(tf_.hob_lcyl) << 32 |
                   int64_t(tf_.hob_sector) << 24 | int64_t(tf_.hcyl) << 16 |
                   int64_t(tf_.lcyl) << 8 | tf_.sector;
        return int64_t(tf_.select & kDeviceHeadMask) << 24 | int64_t(tf_.hcyl) << 16 |
               int64_t(tf_.lcyl) << 8 | tf_.sector;
    }
    // CHS in the current translation. Sector numbers start at 1: sector 0 is no address.
    if (cur_heads_ == 0 || cur_sectors_ == 0 || tf_.sector == 0) return -1;
    int64_t cyl = int64_t(tf_.hcyl) << 8 | tf_.lcyl;
    return (cyl * cur_heads_ + (tf_.select & kDeviceHeadMask)) * cur_sectors_ + tf_.sector - 1;
}

void IdeDrive::set_sector(int64_t sector) {
    if (sector < 0) return;
    uint64_t s = uint64_t(sector);
    if (tf_.select & kDeviceLba) {
        if (lba48_) {
            tf_.sector = uint8_t(s);
            tf_.lcyl = uint8_t(s >> 8);
            tf_.hcyl = uint8_t(s >> 16);
            tf_.hob_sector = uint8_t(s >> 24);
            tf_.hob_lcyl = uint8_t(s >> 32);
            tf_.hob_hcyl = uint8_t(s >> 40);
        } else {
            tf_.select = uint8_t((tf_.select & ~kDeviceHeadMask) | ((s >> 24) & kDeviceHeadMask));
            tf_.hcyl = uint8_t(s >> 16);
            tf_.lcyl = uint8_t(s >> 8);
            tf_.sector = uint8_t(s);
        }
    } else if (cur_heads_ && cur_sectors_) {
        uint64_t per_cyl = uint64_t(cur_heads_) * cur_sectors_;
        uint64_t cyl = s / per_cyl, r = s % per_cyl;
        tf_.hcyl = uint8_t(cyl >> 8);
        tf_.lcyl = uint8_t(cyl);
        tf_.select = uint8_t((tf_.select & ~kDeviceHeadMask) | ((r / cur_sectors_) & 0x0F));
        tf_.sector = uint8_t(r % cur_sectors_ + 1);
    }
}

bool IdeDrive::sector_range_ok(int64_t sector, uint64_t count) const {
    uint64_t total = total_sectors();
    return sector >= 0 && uint64_t(sector) <= total && count <= total - uint64_t(sector);
}

// QEMU ide_cmd_lba48_transform: a count of 0 means 256 (LBA28) or 65536 (LBA48).
void IdeDrive::lba48_transform(bool lba48) {
    lba48_ = lba48;
    uint32_t lo = tf_.nsector & 0xFF;
    if (!lba48)
        tf_.nsector = lo ? lo : 256;
    else
        tf_.nsector = (lo || tf_.hob_nsector) ? (uint32_t(tf_.hob_nsector) << 8 | lo) : 65536;
}

// ---- command execution ----------------------------------------------------------------------

void IdeDrive::abort_command() {
    transfer_stop();
    status_ = kStatusDrdy | kStatusErr;
    error_ = kErrorAbrt;
}

void IdeDrive::rw_error(uint8_t error) {
    abort_command();
    error_ = error;
    raise_irq();
}

// QEMU ide_exec_cmd. The channel has already dropped commands to an absent slave.
void IdeDrive::execute(uint8_t command) {
    // Only DEVICE RESET, and only to a packet device, is accepted while BSY or DRQ.
    if (status_ & (kStatusBsy | kStatusDrq)) {
        if (command != kCmdDeviceReset || !is_cd()) return;
    }
    status_ = kStatusDrdy | kStatusBsy;
    error_ = 0;
    bool set_dsc = false;
    if (dispatch_ata(command, set_dsc)) {
        status_ &= uint8_t(~kStatusBsy);
        if (set_dsc && !error_) status_ |= kStatusDsc;
        raise_irq();
    }
}

// Returns true when the command completed here (the caller clears BSY and interrupts).
bool IdeDrive::dispatch_ata(uint8_t cmd, bool& set_dsc) {
    const bool hd = kind_ == IdeDriveKind::Disk;
    const bool cd = is_cd();
    switch (cmd) {
    case kCmdDeviceReset:
        if (!cd) break;
        transfer_stop();
        channel_.cancel_dma();
        reset(false);
        status_ = 0; // ATA8-ACS 7.10.4: no DRDY, no interrupt
        return false;
    case kCmdRecalibrate:
    case kCmdSeek:
        if (!hd) break;
        set_dsc = true;
        return true;
    case kCmdReadSectors:
    case kCmdReadSectorsNoRetry:
    case kCmdReadSectorsExt:
        if (cd && cmd == kCmdReadSectors) {
            set_signature(); // ATA-4 8.27.5.2: a packet device answers with its signature
            abort_command();
            return true;
        }
        if (!hd) break;
        lba48_transform(cmd == kCmdReadSectorsExt);
        req_nb_sectors_ = 1;
        sector_read();
        return false;
    case kCmdReadMultiple:
    case kCmdReadMultipleExt:
        if (!hd) break;
        if (!mult_sectors_) {
            abort_command();
            return true;
        }
        lba48_transform(cmd == kCmdReadMultipleExt);
        req_nb_sectors_ = mult_sectors_;
        sector_read();
        return false;
    case kCmdWriteSectors:
    case kCmdWriteSectorsNoRetry:
    case kCmdWriteSectorsExt:
    case 0x3C: // WRITE VERIFY
        if (!hd) break;
        lba48_transform(cmd == kCmdWriteSectorsExt);
        req_nb_sectors_ = 1;
        status_ = kStatusDsc | kStatusDrdy;
        start_transfer(0, kSector, EndAction::SectorWrite);
        return false;
    case kCmdWriteMultiple:
    case kCmdWriteMultipleExt: {
        if (!hd) break;
        if (!mult_sectors_) {
            abort_command();
            return true;
        }
        lba48_transform(cmd == kCmdWriteMultipleExt);
        req_nb_sectors_ = mult_sectors_;
        uint32_t n = std::min(tf_.nsector, req_nb_sectors_);
        status_ = kStatusDsc | kStatusDrdy;
        start_transfer(0, n * kSector, EndAction::SectorWrite);
        return false;
    }
    case kCmdReadDma:
    case kCmdReadDmaNoRetry:
    case kCmdReadDmaExt:
        if (!hd) break;
        lba48_transform(cmd == kCmdReadDmaExt);
        start_ata_dma(false);
        return false;
    case kCmdWriteDma:
    case kCmdWriteDmaNoRetry:
    case kCmdWriteDmaExt:
        if (!hd) break;
        lba48_transform(cmd == kCmdWriteDmaExt);
        start_ata_dma(true);
        return false;
    case kCmdReadVerify:
    case kCmdReadVerifyNoRetry:
    case kCmdReadVerifyExt:
        if (!hd) break;
        lba48_transform(cmd == kCmdReadVerifyExt);
        // QEMU verifies nothing; hvm at least refuses addresses past the end, as a disk does.
        if (!sector_range_ok(get_sector(), tf_.nsector)) {
            abort_command();
            error_ = kErrorIdnf;
            return true;
        }
        set_dsc = true;
        return true;
    case kCmdExecuteDiagnostic: execute_diagnostic(); return false;
    case kCmdInitializeDeviceParameters: {
        if (!hd) break;
        // ATA-6 §8.16: heads from Device/Head, sectors per track from Sector Count; CHS
        // addressing and IDENTIFY words 54-58 follow. (QEMU ignores the command.)
        uint16_t spt = uint16_t(tf_.nsector & 0xFF);
        uint16_t heads = uint16_t((tf_.select & kDeviceHeadMask) + 1);
        if (spt == 0) {
            abort_command();
            return true;
        }
        cur_heads_ = heads;
        cur_sectors_ = spt;
        cur_cylinders_ = uint16_t(std::min<uint64_t>(total_sectors() / (heads * spt), 65535));
        set_dsc = true;
        return true;
    }
    case kCmdStandbyImmediate:
    case kCmdIdleImmediate:
    case kCmdStandby:
    case kCmdIdle:
    case kCmdSleep:
    case kCmdStandbyImmediate1:
    case kCmdIdleImmediate1:
    case kCmdStandby1:
    case kCmdIdle1:
    case kCmdSleep1:
        if (!hd) break;
        return true; // no spindle to stop (QEMU: NOP)
    case kCmdCheckPowerMode:
    case kCmdCheckPowerMode1:
        if (!hd) break;
        tf_.nsector = 0xFF; // active or idle
        set_dsc = true;
        return true;
    case kCmdPacket:
        if (!cd) break;
        if (tf_.feature & kPacketOverlap) {
            abort_command();
            return true;
        }
        atapi_packet();
        return false;
    case kCmdIdentifyPacket:
        if (!cd) break;
        build_identify_packet();
        status_ = kStatusDrdy | kStatusDsc;
        start_transfer(0, 512, EndAction::Stop);
        raise_irq();
        return false;
    case kCmdSetMultipleMode: {
        if (!hd) break;
        uint32_t n = tf_.nsector & 0xFF;
        if (n != 0 && (n > kMaxMultipleSectors || (n & (n - 1)) != 0)) {
            abort_command();
        } else {
            mult_sectors_ = uint8_t(n);
            set_dsc = true;
        }
        return true;
    }
    case kCmdFlushCache: flush_cache(); return false;
    case kCmdFlushCacheExt:
        if (!hd) break;
        flush_cache();
        return false;
    case kCmdIdentify:
        if (hd) {
            build_identify();
            status_ = kStatusDrdy | kStatusDsc;
            start_transfer(0, 512, EndAction::Stop);
            raise_irq();
            return false;
        }
        if (cd) set_signature();
        abort_command();
        return true;
    case kCmdSetFeatures: set_dsc = true; return set_features();
    case kCmdReadNativeMax:
    case kCmdReadNativeMaxExt:
        if (!hd) break;
        if (total_sectors() == 0) {
            abort_command();
            return true;
        }
        lba48_transform(cmd == kCmdReadNativeMaxExt);
        set_sector(int64_t(total_sectors() - 1));
        set_dsc = true;
        return true;
    default: break;
    }
    abort_command();
    return true;
}

// QEMU ide_sector_read, synchronous: one block of up to req_nb_sectors_ sectors per call.
void IdeDrive::sector_read() {
    status_ = kStatusDrdy | kStatusDsc;
    error_ = 0; // Windows relies on it (QEMU comment)
    uint32_t n = std::min(tf_.nsector, req_nb_sectors_);
    if (n == 0 || !medium_) {
        transfer_stop();
        return;
    }
    int64_t sector = get_sector();
    if (!sector_range_ok(sector, n)) {
        rw_error(kErrorIdnf);
        return;
    }
    if (medium_->read(uint64_t(sector) * kSector, std::span(buf_.data(), n * kSector)) !=
        block::IoStatus::Ok) {
        rw_error(kErrorAbrt);
        return;
    }
    set_sector(sector + n);
    tf_.nsector -= n;
    start_transfer(0, n * kSector, EndAction::SectorRead);
    raise_irq();
}

// QEMU ide_sector_write, synchronous: the block the guest just filled goes to the medium.
void IdeDrive::sector_write() {
    status_ = kStatusDrdy | kStatusDsc | kStatusBsy;
    uint32_t n = std::min(tf_.nsector, req_nb_sectors_);
    if (n == 0 || !medium_) {
        status_ &= uint8_t(~kStatusBsy);
        transfer_stop();
        return;
    }
    int64_t sector = get_sector();
    if (!sector_range_ok(sector, n)) {
        rw_error(kErrorIdnf);
        return;
    }
    block::IoStatus st =
        medium_->write(uint64_t(sector) * kSector, std::span(buf_.data(), n * kSector));
    if (st == block::IoStatus::Ok && !write_cache_) st = medium_->flush();
    if (st != block::IoStatus::Ok) {
        rw_error(kErrorAbrt);
        return;
    }
    tf_.nsector -= n;
    set_sector(sector + n);
    status_ &= uint8_t(~kStatusBsy);
    if (tf_.nsector == 0)
        transfer_stop();
    else
        start_transfer(0, std::min(tf_.nsector, req_nb_sectors_) * kSector, EndAction::SectorWrite);
    raise_irq();
}

// READ/WRITE DMA: the range is checked before the bus master is involved (QEMU checks it when
// the transfer starts; both end the command with an error and an interrupt).
void IdeDrive::start_ata_dma(bool write) {
    int64_t sector = get_sector();
    uint64_t n = tf_.nsector;
    if (!sector_range_ok(sector, n)) {
        rw_error(kErrorIdnf);
        return;
    }
    status_ = kStatusDrdy | kStatusDsc | kStatusDrq;
    dma_cmd_ = write ? DmaCommand::AtaWrite : DmaCommand::AtaRead;
    IdeDmaRequest req;
    req.kind = write ? IdeDmaKind::DiskWrite : IdeDmaKind::DiskRead;
    req.offset = uint64_t(sector) * kSector;
    req.bytes = n * kSector;
    req.ata = true;
    req.flush_after = write && !write_cache_;
    channel_.request_dma(unit_, req);
}

void IdeDrive::dma_finished(IdeDmaOutcome outcome, block::IoStatus status) {
    DmaCommand cmd = dma_cmd_;
    dma_cmd_ = DmaCommand::None;
    switch (cmd) {
    case DmaCommand::AtaRead:
    case DmaCommand::AtaWrite:
        if (outcome == IdeDmaOutcome::Ok) {
            set_sector(get_sector() + int64_t(tf_.nsector));
            tf_.nsector = 0;
            status_ = kStatusDrdy | kStatusDsc;
            raise_irq();
        } else if (outcome == IdeDmaOutcome::ShortPrd) {
            status_ = kStatusDrdy | kStatusDsc; // no interrupt: the driver times out (QEMU)
        } else {
            if (outcome == IdeDmaOutcome::IoError)
                LOG_DEBUG("ide: DMA failed: %s", block::to_string(status));
            abort_command();
            raise_irq();
        }
        break;
    case DmaCommand::AtapiRead:
    case DmaCommand::AtapiReply:
        if (outcome == IdeDmaOutcome::Ok) {
            if (cmd == DmaCommand::AtapiRead && cd_sector_size_)
                lba_ += int64_t(packet_transfer_size_ / cd_sector_size_);
            packet_transfer_size_ = 0;
            atapi_ok();
        } else if (outcome == IdeDmaOutcome::ShortPrd) {
            status_ = kStatusDrdy | kStatusDsc;
        } else if (outcome == IdeDmaOutcome::MemoryFault) {
            atapi_error(0x0B /* ABORTED COMMAND */, 0);
        } else {
            atapi_io_error();
        }
        break;
    default: break;
    }
}

void IdeDrive::dma_abandoned() {
    if (dma_cmd_ == DmaCommand::None) return;
    dma_cmd_ = DmaCommand::None;
    abort_command();
}

void IdeDrive::flush_cache() {
    if (!medium_ || is_cd()) {
        status_ = kStatusDrdy | kStatusDsc;
        raise_irq();
        return;
    }
    status_ |= kStatusBsy;
    dma_cmd_ = DmaCommand::Flush;
    channel_.request_flush(unit_);
}

void IdeDrive::flush_finished(block::IoStatus status) {
    if (dma_cmd_ != DmaCommand::Flush) return;
    dma_cmd_ = DmaCommand::None;
    if (status != block::IoStatus::Ok) {
        rw_error(kErrorAbrt);
        return;
    }
    status_ = kStatusDrdy | kStatusDsc;
    raise_irq();
}

// QEMU cmd_set_features. Returns true when complete.
bool IdeDrive::set_features() {
    if (!present()) {
        abort_command();
        return true;
    }
    switch (tf_.feature) {
    case kFeatureEnableWriteCache: write_cache_ = true; return true;
    case kFeatureDisableWriteCache:
        write_cache_ = false;
        flush_cache(); // what was cached must reach the disk now
        return false;
    case 0xCC: // reverting to power-on defaults enable
    case 0x66: // ... disable
    case 0xAA: // read look-ahead enable
    case 0x55: // ... disable
    case 0x05: // advanced power management
    case 0x85:
    case 0x69:
    case 0x67:
    case 0x96:
    case 0x9A:
    case 0x42: // automatic acoustic management
    case 0xC2: return true;
    case kFeatureSetTransferMode:
        switch ((tf_.nsector & 0xFF) >> 3) {
        case 0x00: // PIO default
        case 0x01: // PIO mode
        case 0x02: // single word DMA
        case 0x04: // multiword DMA
        case 0x08: // Ultra DMA
            transfer_mode_ = uint8_t(tf_.nsector);
            return true;
        default: break;
        }
        break;
    default: break;
    }
    abort_command();
    return true;
}

// ---- IDENTIFY -------------------------------------------------------------------------------

namespace {
// Words 62, 63 and 88 for the transfer mode last set with SET FEATURES 03h (QEMU keeps them in
// its identify_data).
void put_transfer_mode(uint8_t* p, uint8_t mode) {
    uint16_t w62 = 0x07, w63 = 0x07, w88 = 0x3F;
    uint16_t bit = uint16_t(1u << ((mode & 7) + 8));
    switch (mode >> 3) {
    case 0x02: w62 |= bit; break;
    case 0x04: w63 |= bit; break;
    case 0x08: w88 |= bit; break;
    default: break;
    }
    put_word(p, 62, w62);
    put_word(p, 63, w63);
    put_word(p, 88, w88);
}
} // namespace

// QEMU ide_identify, word for word.
void IdeDrive::build_identify() {
    uint8_t* p = buf_.data();
    std::memset(p, 0, 512);
    uint64_t total = total_sectors();
    put_word(p, 0, 0x0040);
    put_word(p, 1, uint16_t(geometry_.cylinders));
    put_word(p, 3, uint16_t(geometry_.heads));
    put_word(p, 4, uint16_t(512 * geometry_.sectors));
    put_word(p, 5, 512);
    put_word(p, 6, uint16_t(geometry_.sectors));
    put_ata_string(p, 10, 20, serial_);
    put_word(p, 20, 3);
    put_word(p, 21, 512);
    put_word(p, 22, 4);
    put_ata_string(p, 23, 8, kFirmwareRevision);
    put_ata_string(p, 27, 40, "QEMU HARDDISK");
    put_word(p, 47, 0x8000 | kMaxMultipleSectors);
    put_word(p, 48, 1);                               // dword I/O
    put_word(p, 49, (1 << 11) | (1 << 9) | (1 << 8)); // IORDY, LBA, DMA
    put_word(p, 51, 0x200);
    put_word(p, 52, 0x200);
    put_word(p, 53, 1 | (1 << 1) | (1 << 2)); // words 54-58, 64-70, 88 valid
    put_word(p, 54, cur_cylinders_);
    put_word(p, 55, cur_heads_);
    put_word(p, 56, cur_sectors_);
    uint32_t cur_capacity = uint32_t(cur_cylinders_) * cur_heads_ * cur_sectors_;
    put_word(p, 57, uint16_t(cur_capacity));
    put_word(p, 58, uint16_t(cur_capacity >> 16));
    if (mult_sectors_) put_word(p, 59, 0x100 | mult_sectors_);
    uint64_t lba28 = std::min<uint64_t>(total, (1u << 28) - 1);
    put_word(p, 60, uint16_t(lba28));
    put_word(p, 61, uint16_t(lba28 >> 16));
    put_transfer_mode(p, transfer_mode_);
    put_word(p, 64, 0x03); // PIO 3-4
    put_word(p, 65, 120);
    put_word(p, 66, 120);
    put_word(p, 67, 120);
    put_word(p, 68, 120);
    put_word(p, 80, 0xF0); // ATA-3..ATA-6
    put_word(p, 81, 0x16);
    put_word(p, 82, (1 << 14) | (1 << 5) | 1);                      // NOP, write cache, SMART
    put_word(p, 83, (1 << 14) | (1 << 13) | (1 << 12) | (1 << 10)); // FLUSH EXT, FLUSH, LBA48
    put_word(p, 84, 1 << 14);
    put_word(p, 85, uint16_t((1 << 14) | (write_cache_ ? 1 << 5 : 0) | 1));
    put_word(p, 86, (1 << 13) | (1 << 12) | (1 << 10));
    put_word(p, 87, 1 << 14);
    put_word(p, 93, 1 | (1 << 14) | 0x2000);
    put_word(p, 100, uint16_t(total));
    put_word(p, 101, uint16_t(total >> 16));
    put_word(p, 102, uint16_t(total >> 32));
    put_word(p, 103, uint16_t(total >> 48));
    // Word 255 stays 0: QEMU writes no integrity word, and 0 tells the host "not used".
}

// QEMU ide_atapi_identify with USE_DMA_CDROM.
void IdeDrive::build_identify_packet() {
    uint8_t* p = buf_.data();
    std::memset(p, 0, 512);
    put_word(p, 0, (2 << 14) | (5 << 8) | (1 << 7) | (2 << 5)); // removable CD-ROM, 12-byte packets
    put_ata_string(p, 10, 20, serial_);
    put_word(p, 20, 3);
    put_word(p, 21, 512);
    put_word(p, 22, 4);
    put_ata_string(p, 23, 8, kFirmwareRevision);
    put_ata_string(p, 27, 40, "QEMU DVD-ROM");
    put_word(p, 48, 1);
    put_word(p, 49, (1 << 9) | (1 << 8)); // LBA, DMA
    put_word(p, 53, 7);
    put_transfer_mode(p, transfer_mode_);
    put_word(p, 64, 3);
    put_word(p, 65, 0xB4);
    put_word(p, 66, 0xB4);
    put_word(p, 67, 0x12C);
    put_word(p, 68, 0xB4);
    put_word(p, 71, 30);
    put_word(p, 72, 30);
    put_word(p, 80, 0x1E);
}

// ---- state ----------------------------------------------------------------------------------

void IdeDrive::save(StateWriter& out) const {
    out.begin("ide-drive", kStateVersion);
    out.put<uint8_t>(uint8_t(kind_));
    out.put(tf_.feature);
    out.put(tf_.hob_feature);
    out.put(tf_.nsector);
    out.put(tf_.hob_nsector);
    out.put(tf_.sector);
    out.put(tf_.hob_sector);
    out.put(tf_.lcyl);
    out.put(tf_.hob_lcyl);
    out.put(tf_.hcyl);
    out.put(tf_.hob_hcyl);
    out.put(tf_.select);
    out.put(status_);
    out.put(error_);
    out.put<uint8_t>(lba48_);
    out.put(mult_sectors_);
    out.put(transfer_mode_);
    out.put<uint8_t>(write_cache_);
    out.put(cur_cylinders_);
    out.put(cur_heads_);
    out.put(cur_sectors_);
    out.put_bytes(buf_);
    out.put<uint32_t>(uint32_t(data_pos_));
    out.put<uint32_t>(uint32_t(data_end_));
    out.put<uint8_t>(uint8_t(end_action_));
    out.put(req_nb_sectors_);
    out.put<uint8_t>(uint8_t(dma_cmd_));
    out.put(sense_key_);
    out.put(asc_);
    out.put(cdrom_changed_);
    out.put<uint8_t>(tray_open_);
    out.put<uint8_t>(tray_locked_);
    out.put<uint8_t>(event_new_media_);
    out.put<uint8_t>(event_eject_request_);
    out.put<uint8_t>(atapi_dma_);
    out.put(lba_);
    out.put(packet_transfer_size_);
    out.put(elementary_transfer_size_);
    out.put(io_buffer_index_);
    out.put(cd_sector_size_);
    out.put(reply_size_);
}

void IdeDrive::load(StateReader& in) {
    in.begin("ide-drive", kStateVersion, kStateVersion);
    auto flag = [&](const char* what) {
        uint8_t v = in.get<uint8_t>();
        if (v > 1) throw StateError(std::string("ide-drive: bad ") + what);
        return v != 0;
    };
    if (in.get<uint8_t>() != uint8_t(kind_)) throw StateError("ide-drive: device kind differs");
    TaskFile tf;
    in.get(tf.feature);
    in.get(tf.hob_feature);
    in.get(tf.nsector);
    in.get(tf.hob_nsector);
    in.get(tf.sector);
    in.get(tf.hob_sector);
    in.get(tf.lcyl);
    in.get(tf.hob_lcyl);
    in.get(tf.hcyl);
    in.get(tf.hob_hcyl);
    in.get(tf.select);
    uint8_t status = in.get<uint8_t>();
    uint8_t error = in.get<uint8_t>();
    bool lba48 = flag("lba48");
    uint8_t mult = in.get<uint8_t>();
    uint8_t mode = in.get<uint8_t>();
    bool wce = flag("write cache");
    uint16_t cyls = in.get<uint16_t>(), heads = in.get<uint16_t>(), secs = in.get<uint16_t>();
    in.get_bytes(buf_);
    uint32_t pos = in.get<uint32_t>(), end = in.get<uint32_t>();
    uint8_t action = in.get<uint8_t>();
    uint32_t req = in.get<uint32_t>();
    uint8_t dma = in.get<uint8_t>();
    uint8_t sense = in.get<uint8_t>(), asc = in.get<uint8_t>(), changed = in.get<uint8_t>();
    bool tray_open = flag("tray"), tray_locked = flag("lock");
    bool new_media = flag("event"), eject_request = flag("event");
    bool atapi_dma = flag("atapi dma");
    int64_t lba = in.get<int64_t>();
    uint64_t packet_size = in.get<uint64_t>();
    uint32_t elementary = in.get<uint32_t>(), index = in.get<uint32_t>();
    uint32_t sector_size = in.get<uint32_t>(), reply_size = in.get<uint32_t>();

    // Everything that later indexes the buffer or divides is checked here.
    if (tf.nsector > 65536) throw StateError("ide-drive: sector count out of range");
    if (mult > kMaxMultipleSectors || (mult & (mult - 1)))
        throw StateError("ide-drive: bad multiple count");
    if (pos > end || end > kBufferSize) throw StateError("ide-drive: PIO window out of range");
    if (action > kEndActionLast) throw StateError("ide-drive: bad transfer state");
    if (req > kMaxMultipleSectors) throw StateError("ide-drive: bad block size");
    if (dma > kDmaCommandLast) throw StateError("ide-drive: bad DMA command");
    if (changed > 2) throw StateError("ide-drive: bad media change state");
    if (sector_size != 0 && sector_size != atapi::kSectorSize &&
        sector_size != atapi::kRawSectorSize)
        throw StateError("ide-drive: bad CD sector size");
    if (index > kBufferSize || reply_size > kBufferSize || elementary > 0xFFFF || lba < -1)
        throw StateError("ide-drive: ATAPI transfer state out of range");
    if (kind_ == IdeDriveKind::Disk && (heads == 0 || heads > 16 || secs == 0 || secs > 255))
        throw StateError("ide-drive: bad CHS translation");

    tf_ = tf;
    status_ = status;
    error_ = error;
    lba48_ = lba48;
    mult_sectors_ = mult;
    transfer_mode_ = mode;
    write_cache_ = wce;
    cur_cylinders_ = cyls;
    cur_heads_ = heads;
    cur_sectors_ = secs;
    data_pos_ = pos;
    data_end_ = end;
    end_action_ = EndAction(action);
    req_nb_sectors_ = req;
    dma_cmd_ = DmaCommand(dma);
    sense_key_ = sense;
    asc_ = asc;
    cdrom_changed_ = changed;
    tray_open_ = tray_open;
    tray_locked_ = tray_locked;
    event_new_media_ = new_media;
    event_eject_request_ = eject_request;
    atapi_dma_ = atapi_dma;
    lba_ = lba;
    packet_transfer_size_ = packet_size;
    elementary_transfer_size_ = elementary;
    io_buffer_index_ = index;
    cd_sector_size_ = sector_size;
    reply_size_ = reply_size;
}

} // namespace hvm
