// ATAPI side of IdeDrive: the PACKET protocol and the MMC command set of QEMU's "QEMU DVD-ROM"
// (QEMU 7.2 hw/ide/atapi.c, hw/block/cdrom.c). The 12-byte packet is copied out of the PIO
// buffer before any reply is built in it, every length field is bounded by the reply actually
// built, and every LBA/count pair is checked against the medium in 64-bit arithmetic
// (CVE-2020-29443).
#include <algorithm>
#include <cstring>

#include "base/log.hpp"
#include "devmodel/ide/ata.hpp"
#include "devmodel/ide/ide_channel.hpp"
#include "devmodel/ide/ide_drive.hpp"

namespace hvm {

using namespace ata;
using namespace atapi;

namespace {

uint16_t be16(const uint8_t* p) {
    return uint16_t(p[0] << 8 | p[1]);
}
uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
void put_be16(uint8_t* p, uint16_t v) {
    p[0] = uint8_t(v >> 8);
    p[1] = uint8_t(v);
}
void put_be32(uint8_t* p, uint32_t v) {
    p[0] = uint8_t(v >> 24);
    p[1] = uint8_t(v >> 16);
    p[2] = uint8_t(v >> 8);
    p[3] = uint8_t(v);
}
void pad_string(uint8_t* p, size_t len, const char* s) {
    for (size_t i = 0; i < len; i++) p[i] = uint8_t(*s ? *s++ : ' ');
}
void lba_to_msf(uint8_t* p, uint32_t lba) {
    lba += 150; // the 2-second pregap
    p[0] = uint8_t((lba / 75) / 60);
    p[1] = uint8_t((lba / 75) % 60);
    p[2] = uint8_t(lba % 75);
}
void put_address(uint8_t*& q, bool msf, uint32_t lba) {
    if (msf) {
        *q++ = 0;
        lba_to_msf(q, lba);
        q += 3;
    } else {
        put_be32(q, lba);
        q += 4;
    }
}

// READ TOC format 0: one data track and the lead-out, as QEMU (and Bochs) present an ISO.
int read_toc(uint32_t sectors, uint8_t* buf, bool msf, uint8_t start_track) {
    if (start_track > 1 && start_track != 0xAA) return -1;
    uint8_t* q = buf + 2;
    *q++ = 1; // first track
    *q++ = 1; // last track
    if (start_track <= 1) {
        *q++ = 0;
        *q++ = 0x14; // ADR 1, data track
        *q++ = 1;
        *q++ = 0;
        put_address(q, msf, 0);
    }
    *q++ = 0;
    *q++ = 0x16;
    *q++ = 0xAA; // lead-out
    *q++ = 0;
    put_address(q, msf, sectors);
    int len = int(q - buf);
    put_be16(buf, uint16_t(len - 2));
    return len;
}

// READ TOC format 2 (full TOC): points A0, A1, A2 and track 1 of session 1.
int read_toc_raw(uint32_t sectors, uint8_t* buf, bool msf) {
    uint8_t* q = buf + 2;
    *q++ = 1; // first session
    *q++ = 1; // last session
    auto point = [&](uint8_t pt) {
        *q++ = 1;    // session
        *q++ = 0x14; // data track
        *q++ = 0;    // TNO
        *q++ = pt;
        *q++ = 0; // ATIME
        *q++ = 0;
        *q++ = 0;
    };
    point(0xA0);
    *q++ = 0;
    *q++ = 1; // first track
    *q++ = 0; // disc type
    *q++ = 0;
    point(0xA1);
    *q++ = 0;
    *q++ = 1; // last track
    *q++ = 0;
    *q++ = 0;
    point(0xA2);
    put_address(q, msf, sectors); // lead-out
    point(1);
    if (msf) {
        *q++ = 0;
        lba_to_msf(q, 0);
        q += 3;
    } else {
        for (int i = 0; i < 4; i++) *q++ = 0;
    }
    int len = int(q - buf);
    put_be16(buf, uint16_t(len - 2));
    return len;
}

// Command flags (QEMU atapi_cmd_table).
constexpr uint8_t kAllowUa = 0x01;    // runs while a UNIT ATTENTION is pending
constexpr uint8_t kCheckReady = 0x02; // needs a medium
constexpr uint8_t kNonData = 0x04;    // never transfers data: byte count limit may be 0
constexpr uint8_t kCondData = 0x08;   // checks the byte count limit itself
constexpr uint8_t kKnown = 0x80;

uint8_t command_flags(uint8_t op) {
    switch (op) {
    case kTestUnitReady: return kKnown | kCheckReady | kNonData;
    case kRequestSense: return kKnown | kAllowUa;
    case kInquiry: return kKnown | kAllowUa;
    case kStartStopUnit: return kKnown | kNonData;
    case kPreventAllowMediumRemoval: return kKnown | kNonData;
    case kReadCapacity: return kKnown | kCheckReady;
    case kRead10: return kKnown | kCheckReady;
    case kSeek10: return kKnown | kCheckReady | kNonData;
    case kReadTocPmaAtip: return kKnown | kCheckReady;
    case kGetConfiguration: return kKnown | kAllowUa;
    case kGetEventStatusNotification: return kKnown | kAllowUa;
    case kReadDiscInformation: return kKnown | kCheckReady;
    case kModeSense10: return kKnown;
    case kRead12: return kKnown | kCheckReady;
    case kReadDvdStructure: return kKnown | kCheckReady;
    case kSetCdSpeed: return kKnown | kNonData;
    case kMechanismStatus: return kKnown;
    case kReadCd: return kKnown | kCheckReady | kCondData;
    default: return 0;
    }
}

} // namespace

// At least one whole 2048-byte sector (QEMU only asks for a non-empty image, and then reports
// a capacity of 0xFFFFFFFF for an image smaller than one CD sector).
bool IdeDrive::media_present() const {
    return medium_ && !tray_open_ && (total_sectors() >> 2) > 0;
}
bool IdeDrive::media_is_dvd() const {
    return media_present() && total_sectors() > kCdMaxSectors512;
}
bool IdeDrive::media_is_cd() const {
    return media_present() && total_sectors() <= kCdMaxSectors512;
}

uint16_t IdeDrive::byte_count_limit() const {
    uint16_t bcl = uint16_t(tf_.lcyl | tf_.hcyl << 8);
    return bcl == 0xFFFF ? 0xFFFE : bcl;
}

// ---- medium changes -------------------------------------------------------------------------

// QEMU ide_cd_change_cb: the next command sees NOT READY, the one after UNIT ATTENTION, and
// GET EVENT STATUS NOTIFICATION reports NewMedia. QEMU also pulses the interrupt line.
void IdeDrive::media_changed(bool loaded) {
    tray_open_ = !loaded;
    cdrom_changed_ = 1;
    event_new_media_ = true;
    event_eject_request_ = false;
    raise_irq();
}

void IdeDrive::change_medium(std::unique_ptr<block::BlockDevice> medium) {
    if (!is_cd()) return;
    if (dma_cmd_ == DmaCommand::AtapiRead) channel_.cancel_dma();
    medium_ = std::shared_ptr<block::BlockDevice>(std::move(medium));
    tray_locked_ = false;
    media_changed(true);
}

bool IdeDrive::eject(bool force) {
    if (!is_cd()) return false;
    if (tray_locked_ && !force) {
        event_eject_request_ = true; // the guest decides (QEMU ide_cd_eject_request_cb)
        raise_irq();
        return false;
    }
    if (dma_cmd_ == DmaCommand::AtapiRead) channel_.cancel_dma();
    medium_.reset();
    tray_locked_ = false;
    media_changed(false);
    return true;
}

// ---- packet protocol ------------------------------------------------------------------------

// PACKET (A0h): wait for the 12-byte command with CoD=1, IO=0 and DRQ, no interrupt (word 0
// advertises the 50 us DRQ type).
void IdeDrive::atapi_packet() {
    status_ = kStatusDrdy | kStatusDsc;
    atapi_dma_ = tf_.feature & kPacketDma;
    tf_.nsector = kIntReasonCoD;
    start_transfer(0, kPacketSize, EndAction::AtapiPacket);
}

void IdeDrive::atapi_ok() {
    error_ = 0;
    status_ = kStatusDrdy | kStatusDsc;
    tf_.nsector = (tf_.nsector & ~7u) | kIntReasonIo | kIntReasonCoD;
    // Sense data describes the last command that failed; a pending UNIT ATTENTION stays until
    // it is reported. (QEMU keeps stale sense after good commands.)
    if (sense_key_ != kSenseUnitAttention) sense_key_ = asc_ = 0;
    transfer_stop();
    raise_irq();
}

void IdeDrive::atapi_error(uint8_t sense_key, uint8_t asc) {
    error_ = uint8_t(sense_key << 4);
    status_ = kStatusDrdy | kStatusErr;
    tf_.nsector = (tf_.nsector & ~7u) | kIntReasonIo | kIntReasonCoD;
    sense_key_ = sense_key;
    asc_ = asc;
    transfer_stop();
    raise_irq();
}

void IdeDrive::atapi_io_error() {
    if (!medium_)
        atapi_error(kSenseNotReady, kAscMediumNotPresent);
    else
        atapi_error(kSenseIllegalRequest, kAscLbaOutOfRange); // QEMU ide_atapi_io_error
}

void IdeDrive::atapi_check_status() {
    error_ = kErrorMc | uint8_t(kSenseUnitAttention << 4);
    status_ = kStatusErr;
    tf_.nsector = 0;
    raise_irq();
}

// QEMU ide_atapi_cmd: the packet has arrived.
void IdeDrive::atapi_command() {
    uint8_t cdb[kPacketSize];
    std::memcpy(cdb, buf_.data(), kPacketSize);
    transfer_stop();
    const uint8_t flags = command_flags(cdb[0]);

    if (sense_key_ == kSenseUnitAttention && !(flags & kAllowUa)) {
        atapi_check_status();
        return;
    }
    // After a medium change report "no medium", then UNIT ATTENTION, so guests that never poll
    // GET EVENT STATUS still see the tray cycle.
    if (!(flags & kAllowUa) && !tray_open_ && medium_ && cdrom_changed_) {
        if (cdrom_changed_ == 1) {
            atapi_error(kSenseNotReady, kAscMediumNotPresent);
            cdrom_changed_ = 2;
        } else {
            atapi_error(kSenseUnitAttention, kAscMediumMayHaveChanged);
            cdrom_changed_ = 0;
        }
        return;
    }
    if ((flags & kCheckReady) && !media_present()) {
        atapi_error(kSenseNotReady, kAscMediumNotPresent);
        return;
    }
    // A PIO data command with a byte count limit of 0 is aborted at the ATA level (ATA8-ACS
    // 7.17.6.49). QEMU raises no interrupt here; hvm completes the command properly.
    if ((flags & kKnown) && !(flags & (kNonData | kCondData)) && !atapi_dma_ &&
        byte_count_limit() == 0) {
        abort_command();
        raise_irq();
        return;
    }

    switch (cdb[0]) {
    case kTestUnitReady:
    case kSetCdSpeed: atapi_ok(); break;
    case kRequestSense: cmd_request_sense(cdb); break;
    case kInquiry: cmd_inquiry(cdb); break;
    case kStartStopUnit: cmd_start_stop_unit(cdb); break;
    case kPreventAllowMediumRemoval:
        tray_locked_ = cdb[4] & 1;
        atapi_ok();
        break;
    case kReadCapacity: {
        uint64_t total = total_sectors() >> 2;
        put_be32(buf_.data(), uint32_t(total - 1)); // the last LBA, not the count
        put_be32(buf_.data() + 4, kSectorSize);
        atapi_reply(8, 8);
        break;
    }
    case kRead10:
    case kRead12: cmd_read(cdb); break;
    case kSeek10:
        if (be32(cdb + 2) >= (total_sectors() >> 2))
            atapi_error(kSenseIllegalRequest, kAscLbaOutOfRange);
        else
            atapi_ok();
        break;
    case kReadTocPmaAtip: cmd_read_toc(cdb); break;
    case kGetConfiguration: cmd_get_configuration(cdb); break;
    case kGetEventStatusNotification: cmd_get_event_status(cdb); break;
    case kReadDiscInformation: cmd_read_disc_information(cdb); break;
    case kModeSense10: cmd_mode_sense(cdb); break;
    case kReadDvdStructure: cmd_read_dvd_structure(cdb); break;
    case kMechanismStatus: cmd_mechanism_status(cdb); break;
    case kReadCd: cmd_read_cd(cdb); break;
    default: atapi_error(kSenseIllegalRequest, kAscIllegalOpcode); break;
    }
}

// Sends `size` bytes already built in buf_ (at most `max_size`, the allocation length).
void IdeDrive::atapi_reply(size_t size, size_t max_size) {
    size = std::min({size, max_size, kBufferSize});
    lba_ = -1;
    packet_transfer_size_ = size;
    reply_size_ = uint32_t(size);
    elementary_transfer_size_ = 0;
    if (atapi_dma_) {
        status_ = kStatusDrdy | kStatusDsc | kStatusDrq;
        dma_cmd_ = DmaCommand::AtapiReply;
        IdeDmaRequest req;
        req.kind = IdeDmaKind::BufferRead;
        req.bytes = size;
        req.ata = false;
        channel_.request_dma(unit_, req);
    } else {
        status_ = kStatusDrdy | kStatusDsc;
        io_buffer_index_ = 0;
        atapi_reply_end();
    }
}

// QEMU ide_atapi_cmd_reply_end: the next DRQ block of a PIO reply. Each block is at most the
// byte count limit (made even when it cuts the transfer) and never crosses a CD sector.
void IdeDrive::atapi_reply_end() {
    if (packet_transfer_size_ == 0) {
        atapi_ok();
        return;
    }
    if (lba_ != -1 && io_buffer_index_ >= cd_sector_size_) {
        if (!cd_read_sector()) {
            atapi_io_error();
            return;
        }
    }
    uint64_t size;
    const uint32_t in_sector =
        lba_ != -1 ? cd_sector_size_ - std::min(io_buffer_index_, cd_sector_size_) : UINT32_MAX;
    if (elementary_transfer_size_ > 0) {
        size = std::min<uint64_t>(in_sector, elementary_transfer_size_);
    } else {
        // A new DRQ block: tell the host its size in the byte count registers, and interrupt.
        tf_.nsector = (tf_.nsector & ~7u) | kIntReasonIo;
        uint32_t bcl = byte_count_limit();
        size = packet_transfer_size_;
        if (size > bcl) {
            bcl &= ~1u;
            if (bcl == 0) { // a limit of 1 cannot carry a word: refuse instead of spinning
                abort_command();
                raise_irq();
                return;
            }
            size = bcl;
        }
        tf_.lcyl = uint8_t(size);
        tf_.hcyl = uint8_t(size >> 8);
        elementary_transfer_size_ = uint32_t(size);
        size = std::min<uint64_t>(size, in_sector);
        raise_irq();
    }
    size = std::min<uint64_t>(size, packet_transfer_size_);
    packet_transfer_size_ -= size;
    elementary_transfer_size_ -= uint32_t(size);
    uint32_t offset = io_buffer_index_;
    io_buffer_index_ += uint32_t(size);
    if (lba_ == -1 && io_buffer_index_ > reply_size_) { // a reply never outgrows what was built
        abort_command();
        raise_irq();
        return;
    }
    start_transfer(offset, size_t(size), EndAction::AtapiReply);
}

// Reads the next CD sector into the buffer (2048 bytes, or 2352 with the Mode 1 sync, header
// and zeroed EDC/ECC around it).
bool IdeDrive::cd_read_sector() {
    if (!medium_ || lba_ < 0) return false;
    uint64_t offset = uint64_t(lba_) * kSectorSize;
    uint8_t* dst = buf_.data() + (cd_sector_size_ == kRawSectorSize ? 16 : 0);
    if (cd_sector_size_ != kSectorSize && cd_sector_size_ != kRawSectorSize) return false;
    if (medium_->read(offset, std::span(dst, kSectorSize)) != block::IoStatus::Ok) return false;
    if (cd_sector_size_ == kRawSectorSize) cd_data_to_raw();
    lba_++;
    io_buffer_index_ = 0;
    return true;
}

void IdeDrive::cd_data_to_raw() {
    uint8_t* p = buf_.data();
    p[0] = 0;
    std::memset(p + 1, 0xFF, 10);
    p[11] = 0;
    lba_to_msf(p + 12, uint32_t(lba_));
    p[15] = 0x01; // mode 1
    std::memset(p + 16 + kSectorSize, 0, kRawSectorSize - 16 - kSectorSize);
}

void IdeDrive::atapi_start_read(uint32_t lba, uint32_t count, unsigned sector_size) {
    lba_ = lba;
    packet_transfer_size_ = uint64_t(count) * sector_size;
    elementary_transfer_size_ = 0;
    cd_sector_size_ = sector_size;
    if (atapi_dma_) {
        if (sector_size != kSectorSize) {
            // Raw (2352-byte) reads are served by PIO only in hvm.
            atapi_error(kSenseIllegalRequest, kAscInvalidFieldInCdb);
            return;
        }
        status_ = kStatusDrdy | kStatusDsc | kStatusDrq | kStatusBsy;
        dma_cmd_ = DmaCommand::AtapiRead;
        IdeDmaRequest req;
        req.kind = IdeDmaKind::DiskRead;
        req.offset = uint64_t(lba) * kSectorSize;
        req.bytes = uint64_t(count) * kSectorSize;
        req.ata = false;
        channel_.request_dma(unit_, req);
        return;
    }
    io_buffer_index_ = sector_size; // forces the first sector read
    status_ = kStatusDrdy | kStatusDsc;
    atapi_reply_end();
}

// ---- MMC commands ---------------------------------------------------------------------------

void IdeDrive::cmd_read(const uint8_t* cdb) {
    uint64_t total = total_sectors() >> 2;
    uint32_t count = cdb[0] == kRead10 ? be16(cdb + 7) : be32(cdb + 6);
    if (count == 0) {
        atapi_ok();
        return;
    }
    uint32_t lba = be32(cdb + 2);
    if (uint64_t(lba) + count > total) {
        atapi_error(kSenseIllegalRequest, kAscLbaOutOfRange);
        return;
    }
    atapi_start_read(lba, count, kSectorSize);
}

void IdeDrive::cmd_read_cd(const uint8_t* cdb) {
    uint64_t total = total_sectors() >> 2;
    uint32_t count = uint32_t(cdb[6]) << 16 | uint32_t(cdb[7]) << 8 | cdb[8];
    if (count == 0) {
        atapi_ok();
        return;
    }
    uint32_t lba = be32(cdb + 2);
    if (uint64_t(lba) + count > total) {
        atapi_error(kSenseIllegalRequest, kAscLbaOutOfRange);
        return;
    }
    uint8_t request = cdb[9] & 0xF8;
    if (request == 0) {
        atapi_ok();
        return;
    }
    if (!atapi_dma_ && byte_count_limit() == 0) {
        abort_command();
        raise_irq();
        return;
    }
    if (request == 0x10)
        atapi_start_read(lba, count, kSectorSize); // user data
    else if (request == 0xF8)
        atapi_start_read(lba, count, kRawSectorSize); // sync, header, data, EDC/ECC
    else
        atapi_error(kSenseIllegalRequest, kAscInvalidFieldInCdb);
}

void IdeDrive::cmd_request_sense(const uint8_t* cdb) {
    uint8_t max_len = cdb[4];
    uint8_t* b = buf_.data();
    std::memset(b, 0, 18);
    b[0] = 0x70 | 0x80; // current error, fixed format, VALID
    b[2] = sense_key_;
    b[7] = 10; // additional length
    b[12] = asc_;
    b[13] = 0; // ASCQ: QEMU reports none
    if (sense_key_ == kSenseUnitAttention) sense_key_ = kSenseNone;
    atapi_reply(18, max_len);
}

void IdeDrive::cmd_inquiry(const uint8_t* cdb) {
    const uint8_t page = cdb[2];
    const unsigned max_len = cdb[4];
    uint8_t* b = buf_.data();
    std::memset(b, 0, 256);
    unsigned idx = 0, size_idx, preamble;
    if (cdb[1] & 0x01) { // EVPD
        preamble = 4;
        size_idx = 3;
        b[idx++] = 0x05; // CD-ROM
        b[idx++] = page;
        b[idx++] = 0;
        idx++;
        switch (page) {
        case 0x00: // supported pages
            b[idx++] = 0x00;
            b[idx++] = 0x83;
            break;
        case 0x83: // device identification, modelled after libata
            if (idx + 24 > max_len) {
                atapi_error(kSenseIllegalRequest, kAscDataPhaseError);
                return;
            }
            b[idx++] = 0x02; // ASCII
            b[idx++] = 0x00; // vendor specific
            b[idx++] = 0x00;
            b[idx++] = 20;
            pad_string(b + idx, 20, serial_.c_str());
            idx += 20;
            if (idx + 72 > max_len) break;
            b[idx++] = 0x02;
            b[idx++] = 0x01; // T10 vendor identification
            b[idx++] = 0x00;
            b[idx++] = 68;
            pad_string(b + idx, 8, "ATA");
            idx += 8;
            pad_string(b + idx, 40, "QEMU DVD-ROM");
            idx += 40;
            pad_string(b + idx, 20, serial_.c_str());
            idx += 20;
            break;
        default: atapi_error(kSenseIllegalRequest, kAscInvalidFieldInCdb); return;
        }
    } else {
        preamble = 5;
        size_idx = 4;
        b[0] = 0x05; // CD-ROM
        b[1] = 0x80; // removable
        b[2] = 0x00;
        b[3] = 0x21; // ATAPI-2 response format
        pad_string(b + 8, 8, "QEMU");
        pad_string(b + 16, 16, "QEMU DVD-ROM");
        pad_string(b + 32, 4, kFirmwareRevision);
        idx = 36;
    }
    b[size_idx] = uint8_t(idx - preamble);
    atapi_reply(idx, max_len);
}

void IdeDrive::cmd_mode_sense(const uint8_t* cdb) {
    const unsigned max_len = be16(cdb + 7);
    const unsigned action = cdb[2] >> 6;
    const unsigned code = cdb[2] & 0x3F;
    uint8_t* b = buf_.data();
    if (action == 3) {
        atapi_error(kSenseIllegalRequest, kAscSavingParametersNotSupported);
        return;
    }
    if (action != 0) { // changeable and default values are not reported (QEMU)
        atapi_error(kSenseIllegalRequest, kAscInvalidFieldInCdb);
        return;
    }
    std::memset(b, 0, 32);
    b[2] = 0x70; // medium type: door closed, no disc present type code (QEMU)
    switch (code) {
    case kModePageErrorRecovery:
        put_be16(b, 16 - 2);
        b[8] = kModePageErrorRecovery;
        b[9] = 16 - 10;
        b[11] = 0x05; // read retry count
        atapi_reply(16, max_len);
        return;
    case kModePageAudioControl:
        put_be16(b, 24 - 2);
        b[8] = kModePageAudioControl;
        b[9] = 24 - 10;
        atapi_reply(24, max_len);
        return;
    case kModePageCapabilities:
        put_be16(b, 30 - 2);
        b[8] = kModePageCapabilities;
        b[9] = 30 - 10;
        b[10] = 0x3B; // reads CD-R, CD-RW, DVD-ROM, DVD-R, DVD-RAM
        b[11] = 0x00;
        b[12] = 0x71; // audio play (Linux automounts on it), ...
        b[13] = 3 << 5;
        b[14] = (1 << 0) | (1 << 3) | (1 << 5); // lock, eject, tray loader
        if (tray_locked_) b[14] |= 1 << 1;
        b[15] = 0x00;
        put_be16(b + 16, 704); // 4x
        b[18] = 0;
        b[19] = 2;
        put_be16(b + 20, 512);
        put_be16(b + 22, 704);
        atapi_reply(30, max_len);
        return;
    default: atapi_error(kSenseIllegalRequest, kAscInvalidFieldInCdb); return;
    }
}

void IdeDrive::cmd_read_toc(const uint8_t* cdb) {
    const unsigned max_len = be16(cdb + 7);
    // MMC puts the format in byte 2; SFF-8020 (and QEMU) in byte 9 bits 7:6. Accept both.
    const unsigned format = (cdb[2] & 0x0F) ? (cdb[2] & 0x0F) : (cdb[9] >> 6);
    const bool msf = (cdb[1] >> 1) & 1;
    const uint32_t total = uint32_t(std::min<uint64_t>(total_sectors() >> 2, UINT32_MAX));
    uint8_t* b = buf_.data();
    std::memset(b, 0, 64);
    int len;
    switch (format) {
    case 0: len = read_toc(total, b, msf, cdb[6]); break;
    case 1: // multi-session: a single session
        b[1] = 0x0A;
        b[2] = 0x01;
        b[3] = 0x01;
        len = 12;
        break;
    case 2: len = read_toc_raw(total, b, msf); break;
    default: len = -1; break;
    }
    if (len < 0) {
        atapi_error(kSenseIllegalRequest, kAscInvalidFieldInCdb);
        return;
    }
    atapi_reply(size_t(len), max_len);
}

void IdeDrive::cmd_get_configuration(const uint8_t* cdb) {
    if (cdb[2] != 0 || cdb[3] != 0) { // only feature 0 (profile list)
        atapi_error(kSenseIllegalRequest, kAscInvalidFieldInCdb);
        return;
    }
    const unsigned max_len = std::min<unsigned>(be16(cdb + 7), 512);
    uint8_t* b = buf_.data();
    std::memset(b, 0, 512);
    if (media_is_dvd())
        put_be16(b + 6, kProfileDvdRom);
    else if (media_is_cd())
        put_be16(b + 6, kProfileCdRom);
    b[10] = 0x02 | 0x01; // persistent, current
    unsigned len = 12;
    for (uint16_t profile : {kProfileDvdRom, kProfileCdRom}) {
        put_be16(b + len, profile);
        b[len + 2] = (b[len] == b[6] && b[len + 1] == b[7]) ? 1 : 0; // current
        b[11] += 4;
        len += 4;
    }
    put_be32(b, len - 4);
    atapi_reply(len, max_len);
}

// Polled media events only (MMC-5 §6.6; asynchronous mode is optional).
void IdeDrive::cmd_get_event_status(const uint8_t* cdb) {
    if (!(cdb[1] & 0x01)) {
        atapi_error(kSenseIllegalRequest, kAscInvalidFieldInCdb);
        return;
    }
    const unsigned max_len = be16(cdb + 7);
    uint8_t* b = buf_.data();
    std::memset(b, 0, 8);
    b[3] = 1 << kGesnMediaClass; // supported event classes
    unsigned used;
    if (cdb[4] & (1 << kGesnMediaClass)) {
        b[2] = kGesnMediaClass;
        uint8_t media_status = tray_open_ ? kMediaStatusTrayOpen
                               : medium_  ? kMediaStatusPresent
                                          : 0;
        uint8_t event = kMediaEventNoChange;
        if (media_status != kMediaStatusTrayOpen) {
            if (event_new_media_) {
                event = kMediaEventNewMedia;
                event_new_media_ = false;
            } else if (event_eject_request_) {
                event = kMediaEventEjectRequest;
                event_eject_request_ = false;
            }
        }
        b[4] = event;
        b[5] = media_status;
        used = 8;
    } else {
        b[2] = kGesnNoEventAvailable;
        used = 4;
    }
    put_be16(b, uint16_t(used - 4));
    atapi_reply(used, max_len);
}

void IdeDrive::cmd_read_disc_information(const uint8_t* cdb) {
    if ((cdb[1] & 7) != 0) { // types 1/2 are Blu-ray only
        atapi_error(kSenseIllegalRequest, kAscInvalidFieldInCdb);
        return;
    }
    const unsigned max_len = be16(cdb + 7);
    uint8_t* b = buf_.data();
    std::memset(b, 0, 34);
    b[1] = 32;
    b[2] = 0x0E; // last session complete, disc finalized
    b[3] = 1;    // first track on disc
    b[4] = 1;    // sessions
    b[5] = 1;    // first track of last session
    b[6] = 1;    // last track of last session
    b[7] = 0x20; // unrestricted use
    b[8] = 0x00; // CD-ROM or DVD-ROM
    atapi_reply(34, max_len);
}

// Returns the reply length, or -ASC.
int IdeDrive::dvd_read_structure(uint8_t format, uint8_t layer) {
    uint8_t* b = buf_.data();
    switch (format) {
    case 0x00: { // physical format information
        if (layer != 0) return -kAscInvalidFieldInCdb;
        uint64_t total = total_sectors() >> 2;
        if (total == 0) return -kAscMediumNotPresent;
        b[4] = 1;   // DVD-ROM, part version 1
        b[5] = 0xF; // 120 mm
        b[6] = 1;   // one layer, read-only
        b[7] = 0;
        put_be32(b + 8, 0);
        put_be32(b + 12, uint32_t(total - 1));
        put_be32(b + 16, uint32_t(total - 1));
        put_be16(b, 2048 + 2);
        return 2048 + 4;
    }
    case 0x01: // copyright information: none
        put_be16(b, 4 + 2);
        return 4 + 4;
    case 0x04: // manufacturing information
        put_be16(b, 2048 + 2);
        return 2048 + 4;
    case 0xFF: // the list of the above
        b[4] = 0x00;
        b[5] = 0x40;
        put_be16(b + 6, 2048 + 4);
        b[8] = 0x01;
        b[9] = 0x40;
        put_be16(b + 10, 4 + 4);
        b[12] = 0x03;
        b[13] = 0x40;
        put_be16(b + 14, 188 + 4);
        b[16] = 0x04;
        b[17] = 0x40;
        put_be16(b + 18, 2048 + 4);
        put_be16(b, 16 + 2);
        return 16 + 4;
    default: return -kAscInvalidFieldInCdb;
    }
}

void IdeDrive::cmd_read_dvd_structure(const uint8_t* cdb) {
    const uint8_t media = cdb[1], format = cdb[7];
    const unsigned max_len = be16(cdb + 8);
    if (format < 0xFF) {
        if (media_is_cd()) {
            atapi_error(kSenseIllegalRequest, kAscIncompatibleFormat);
            return;
        }
        if (!media_present()) {
            atapi_error(kSenseIllegalRequest, kAscInvalidFieldInCdb);
            return;
        }
    }
    std::memset(buf_.data(), 0, 2048 + 8);
    if ((format <= 0x7F || format == 0xFF) && media == 0) {
        int ret = dvd_read_structure(format, cdb[6]);
        if (ret < 0)
            atapi_error(kSenseIllegalRequest, uint8_t(-ret));
        else
            atapi_reply(size_t(ret), max_len);
        return;
    }
    atapi_error(kSenseIllegalRequest, kAscInvalidFieldInCdb);
}

void IdeDrive::cmd_start_stop_unit(const uint8_t* cdb) {
    const bool start = cdb[4] & 1;
    const bool loej = cdb[4] & 2; // load on start, eject on stop
    if (cdb[4] & 0xF0) {          // power conditions: nothing to load or eject
        atapi_ok();
        return;
    }
    if (loej) {
        if (!start && !tray_open_ && tray_locked_) {
            atapi_error(medium_ ? kSenseNotReady : kSenseIllegalRequest,
                        kAscMediumRemovalPrevented);
            return;
        }
        tray_open_ = !start; // the medium stays in the tray; an open tray has no medium
    }
    atapi_ok();
}

void IdeDrive::cmd_mechanism_status(const uint8_t* cdb) {
    const unsigned max_len = be16(cdb + 8);
    uint8_t* b = buf_.data();
    std::memset(b, 0, 8);
    b[5] = 1; // one slot
    atapi_reply(8, max_len);
}

} // namespace hvm
