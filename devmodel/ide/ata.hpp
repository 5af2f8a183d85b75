// ATA/ATAPI register and command vocabulary (ATA/ATAPI-6 T13/1410D, ATA8-ACS, MMC-5, SPC-3), named
// as the standards name them. The values are the ones QEMU's hw/ide/internal.h and
// include/scsi/constants.h use, so traces compare one to one.
#pragma once
#include <cstdint>

namespace hvm::ata {

// Command block registers (offsets from 0x1F0 / 0x170).
constexpr unsigned kRegData = 0;
constexpr unsigned kRegError = 1; // read; Features on write
constexpr unsigned kRegSectorCount = 2;
constexpr unsigned kRegLbaLow = 3;  // Sector Number
constexpr unsigned kRegLbaMid = 4;  // Cylinder Low; ATAPI byte count low
constexpr unsigned kRegLbaHigh = 5; // Cylinder High; ATAPI byte count high
constexpr unsigned kRegDevice = 6;  // Device/Head
constexpr unsigned kRegStatus = 7;  // read; Command on write

// Status register (ATA-6 §7.15.6).
constexpr uint8_t kStatusBsy = 0x80;
constexpr uint8_t kStatusDrdy = 0x40;
constexpr uint8_t kStatusDf = 0x20;
constexpr uint8_t kStatusDsc = 0x10; // Device Seek Complete; SERVICE on packet devices
constexpr uint8_t kStatusDrq = 0x08;
constexpr uint8_t kStatusErr = 0x01;

// Error register.
constexpr uint8_t kErrorUnc = 0x40;
constexpr uint8_t kErrorMc = 0x20; // media changed (packet devices)
constexpr uint8_t kErrorIdnf = 0x10;
constexpr uint8_t kErrorAbrt = 0x04;

// Device/Head register.
constexpr uint8_t kDeviceObsolete = 0xA0; // bits 7 and 5 always read 1 (QEMU ATA_DEV_ALWAYS_ON)
constexpr uint8_t kDeviceLba = 0x40;
constexpr uint8_t kDeviceDev1 = 0x10;
constexpr uint8_t kDeviceHeadMask = 0x0F;

// Device Control register (0x3F6 / 0x376, write).
constexpr uint8_t kControlHob = 0x80;
constexpr uint8_t kControlSrst = 0x04;
constexpr uint8_t kControlNien = 0x02;

// Commands (ATA8-ACS table B.2).
constexpr uint8_t kCmdDeviceReset = 0x08;
constexpr uint8_t kCmdRecalibrate = 0x10; // 0x10-0x1F
constexpr uint8_t kCmdReadSectors = 0x20;
constexpr uint8_t kCmdReadSectorsNoRetry = 0x21;
constexpr uint8_t kCmdReadSectorsExt = 0x24;
constexpr uint8_t kCmdReadDmaExt = 0x25;
constexpr uint8_t kCmdReadNativeMaxExt = 0x27;
constexpr uint8_t kCmdReadMultipleExt = 0x29;
constexpr uint8_t kCmdWriteSectors = 0x30;
constexpr uint8_t kCmdWriteSectorsNoRetry = 0x31;
constexpr uint8_t kCmdWriteSectorsExt = 0x34;
constexpr uint8_t kCmdWriteDmaExt = 0x35;
constexpr uint8_t kCmdWriteMultipleExt = 0x39;
constexpr uint8_t kCmdReadVerify = 0x40;
constexpr uint8_t kCmdReadVerifyNoRetry = 0x41;
constexpr uint8_t kCmdReadVerifyExt = 0x42;
constexpr uint8_t kCmdSeek = 0x70; // 0x70-0x7F
constexpr uint8_t kCmdExecuteDiagnostic = 0x90;
constexpr uint8_t kCmdInitializeDeviceParameters = 0x91;
constexpr uint8_t kCmdPacket = 0xA0;
constexpr uint8_t kCmdIdentifyPacket = 0xA1;
constexpr uint8_t kCmdReadMultiple = 0xC4;
constexpr uint8_t kCmdWriteMultiple = 0xC5;
constexpr uint8_t kCmdSetMultipleMode = 0xC6;
constexpr uint8_t kCmdReadDma = 0xC8;
constexpr uint8_t kCmdReadDmaNoRetry = 0xC9;
constexpr uint8_t kCmdWriteDma = 0xCA;
constexpr uint8_t kCmdWriteDmaNoRetry = 0xCB;
constexpr uint8_t kCmdStandbyImmediate = 0xE0;
constexpr uint8_t kCmdIdleImmediate = 0xE1;
constexpr uint8_t kCmdStandby = 0xE2;
constexpr uint8_t kCmdIdle = 0xE3;
constexpr uint8_t kCmdCheckPowerMode = 0xE5;
constexpr uint8_t kCmdSleep = 0xE6;
constexpr uint8_t kCmdFlushCache = 0xE7;
constexpr uint8_t kCmdFlushCacheExt = 0xEA;
constexpr uint8_t kCmdIdentify = 0xEC;
constexpr uint8_t kCmdSetFeatures = 0xEF;
constexpr uint8_t kCmdReadNativeMax = 0xF8;
// Power-management aliases from ATA-1 (QEMU accepts both sets).
constexpr uint8_t kCmdStandbyImmediate1 = 0x94;
constexpr uint8_t kCmdIdleImmediate1 = 0x95;
constexpr uint8_t kCmdStandby1 = 0x96;
constexpr uint8_t kCmdIdle1 = 0x97;
constexpr uint8_t kCmdCheckPowerMode1 = 0x98;
constexpr uint8_t kCmdSleep1 = 0x99;

// SET FEATURES subcommands (Features register).
constexpr uint8_t kFeatureEnableWriteCache = 0x02;
constexpr uint8_t kFeatureSetTransferMode = 0x03;
constexpr uint8_t kFeatureDisableWriteCache = 0x82;

// Interrupt Reason (Sector Count of a packet device, ATA-6 §8.21).
constexpr uint8_t kIntReasonCoD = 0x01;
constexpr uint8_t kIntReasonIo = 0x02;
constexpr uint8_t kIntReasonRel = 0x04;

// PACKET command Features bits.
constexpr uint8_t kPacketDma = 0x01;
constexpr uint8_t kPacketOverlap = 0x02;

} // namespace hvm::ata

// SCSI/MMC vocabulary for the ATAPI CD-ROM.
namespace hvm::atapi {

constexpr unsigned kPacketSize = 12;
constexpr unsigned kSectorSize = 2048;
constexpr unsigned kRawSectorSize = 2352;

// Operation codes (MMC-5).
constexpr uint8_t kTestUnitReady = 0x00;
constexpr uint8_t kRequestSense = 0x03;
constexpr uint8_t kInquiry = 0x12;
constexpr uint8_t kStartStopUnit = 0x1B;
constexpr uint8_t kPreventAllowMediumRemoval = 0x1E;
constexpr uint8_t kReadCapacity = 0x25;
constexpr uint8_t kRead10 = 0x28;
constexpr uint8_t kSeek10 = 0x2B;
constexpr uint8_t kReadTocPmaAtip = 0x43;
constexpr uint8_t kGetConfiguration = 0x46;
constexpr uint8_t kGetEventStatusNotification = 0x4A;
constexpr uint8_t kReadDiscInformation = 0x51;
constexpr uint8_t kModeSense10 = 0x5A;
constexpr uint8_t kRead12 = 0xA8;
constexpr uint8_t kReadDvdStructure = 0xAD;
constexpr uint8_t kSetCdSpeed = 0xBB;
constexpr uint8_t kMechanismStatus = 0xBD;
constexpr uint8_t kReadCd = 0xBE;

// Sense keys (SPC-3 table 27).
constexpr uint8_t kSenseNone = 0x00;
constexpr uint8_t kSenseNotReady = 0x02;
constexpr uint8_t kSenseIllegalRequest = 0x05;
constexpr uint8_t kSenseUnitAttention = 0x06;

// Additional sense codes.
constexpr uint8_t kAscIllegalOpcode = 0x20;
constexpr uint8_t kAscLbaOutOfRange = 0x21;
constexpr uint8_t kAscInvalidFieldInCdb = 0x24;
constexpr uint8_t kAscMediumMayHaveChanged = 0x28;
constexpr uint8_t kAscIncompatibleFormat = 0x30;
constexpr uint8_t kAscSavingParametersNotSupported = 0x39;
constexpr uint8_t kAscMediumNotPresent = 0x3A;
constexpr uint8_t kAscDataPhaseError = 0x4B;
constexpr uint8_t kAscMediumRemovalPrevented = 0x53;

// Mode pages.
constexpr uint8_t kModePageErrorRecovery = 0x01;
constexpr uint8_t kModePageAudioControl = 0x0E;
constexpr uint8_t kModePageCapabilities = 0x2A;

// GET CONFIGURATION profiles (MMC-6 table 91).
constexpr uint16_t kProfileCdRom = 0x0008;
constexpr uint16_t kProfileDvdRom = 0x0010;

// GET EVENT STATUS NOTIFICATION (MMC-5 §6.6).
constexpr uint8_t kGesnMediaClass = 4;
constexpr uint8_t kGesnNoEventAvailable = 0x80;
constexpr uint8_t kMediaEventNoChange = 0;
constexpr uint8_t kMediaEventEjectRequest = 1;
constexpr uint8_t kMediaEventNewMedia = 2;
constexpr uint8_t kMediaStatusTrayOpen = 1;
constexpr uint8_t kMediaStatusPresent = 2;

// Media larger than an 80-minute CD are reported as DVD-ROM (QEMU CD_MAX_SECTORS, in 512-byte
// sectors).
constexpr uint64_t kCdMaxSectors512 = 80ull * 60 * 75 * 2048 / 512;

} // namespace hvm::atapi
