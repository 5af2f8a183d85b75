// The system BIOS image (-bios, default Debian's SeaBIOS bios-256k.bin): read and checked here,
// mapped by the machine read-only just below 4 GiB with its last 128 KiB also visible at
// 0xE0000-0xFFFFF while the PAM registers leave that area to the ROM (QEMU's "isa-bios").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hvm {

constexpr const char* kDefaultBiosPath = "/usr/share/seabios/bios-256k.bin";
constexpr uint64_t kIsaBiosMaxSize = 128 * 1024;

struct BiosImage {
    std::string path;
    std::vector<uint8_t> bytes; // size: a multiple of 64 KiB, at most 16 MiB
    uint64_t isa_size() const {
        return bytes.size() < kIsaBiosMaxSize ? bytes.size() : kIsaBiosMaxSize;
    }
};

// Throws UserError (one line) for a missing, empty, oversized or oddly sized file.
BiosImage load_bios_image(const std::string& path);

} // namespace hvm
