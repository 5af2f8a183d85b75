// The -device options of the small ISA devices, QEMU's property names and defaults:
//   -device isa-debugcon[,iobase=N][,chardev=ID][,readback=N]   (iobase 0xE9, readback 0xE9)
//   -device isa-debug-exit[,iobase=N][,iosize=N]                 (iobase 0x501, iosize 2)
// The CLI hands over the key/value pairs it parsed (KeyVal::items(), "driver" included); numbers
// are read like QEMU's integer properties (decimal, 0x hex, 0 octal). Errors are one-line
// UserErrors naming the device.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hvm {

using DeviceProperties = std::vector<std::pair<std::string, std::string>>;

struct DebugConOptions {
    uint16_t iobase = 0xE9;
    std::string chardev; // required: QEMU refuses a debugcon without a character device
    uint8_t readback = 0xE9;
};

struct DebugExitOptions {
    uint16_t iobase = 0x501;
    uint32_t iosize = 2;
};

DebugConOptions parse_isa_debugcon(const DeviceProperties& props);
DebugExitOptions parse_isa_debug_exit(const DeviceProperties& props);

} // namespace hvm
