#include "devmodel/misc/isa_device_options.hpp"

#include <cerrno>
#include <cstdlib>

#include "base/error.hpp"

namespace hvm {

namespace {

constexpr uint32_t kIoSpaceSize = 0x10000;

uint64_t parse_u32(const std::string& device, const std::string& key, const std::string& text) {
    // strtoull with base 0, as QEMU's qemu_strtou64 for integer properties, minus its laxness
    // about signs and spaces.
    bool ok = !text.empty() && text[0] >= '0' && text[0] <= '9';
    char* end = nullptr;
    errno = 0;
    unsigned long long v = ok ? strtoull(text.c_str(), &end, 0) : 0;
    if (!ok || errno != 0 || *end != '\0' || v > 0xFFFFFFFFull)
        fail("-device " + device + ": " + key + "='" + text + "' is not a valid number");
    return v;
}

uint16_t parse_iobase(const std::string& device, const std::string& text) {
    uint64_t v = parse_u32(device, "iobase", text);
    if (v >= kIoSpaceSize)
        fail("-device " + device + ": iobase=" + text + " is beyond the 64 KiB I/O space");
    return uint16_t(v);
}

[[noreturn]] void unknown(const std::string& device, const std::string& key) {
    fail("-device " + device + ": unsupported parameter '" + key + "'");
}

} // namespace

DebugConOptions parse_isa_debugcon(const DeviceProperties& props) {
    const std::string dev = "isa-debugcon";
    DebugConOptions o;
    for (auto& [key, value] : props) {
        if (key == "driver" || key == "id") continue;
        if (key == "iobase")
            o.iobase = parse_iobase(dev, value);
        else if (key == "chardev")
            o.chardev = value;
        // QEMU's property is 32 bits wide but the port is one byte: a read shows the low byte.
        else if (key == "readback")
            o.readback = uint8_t(parse_u32(dev, key, value));
        else
            unknown(dev, key);
    }
    if (o.chardev.empty()) fail("-device " + dev + ": needs chardev=ID (a -chardev to write to)");
    return o;
}

DebugExitOptions parse_isa_debug_exit(const DeviceProperties& props) {
    const std::string dev = "isa-debug-exit";
    DebugExitOptions o;
    for (auto& [key, value] : props) {
        if (key == "driver" || key == "id") continue;
        if (key == "iobase")
            o.iobase = parse_iobase(dev, value);
        else if (key == "iosize")
            o.iosize = uint32_t(parse_u32(dev, key, value));
        else
            unknown(dev, key);
    }
    if (o.iosize == 0) fail("-device " + dev + ": iosize must be at least 1");
    if (uint64_t(o.iobase) + o.iosize > kIoSpaceSize)
        fail("-device " + dev + ": iobase + iosize goes beyond the 64 KiB I/O space");
    return o;
}

} // namespace hvm
