#include "bios/bios_rom.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "base/error.hpp"

namespace hvm {

BiosImage load_bios_image(const std::string& path) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) {
        if (path == kDefaultBiosPath)
            fail(path + ": " + std::strerror(errno) +
                 " (install Debian's seabios package, or give -bios FILE)");
        fail(path + ": cannot read BIOS image: " + std::strerror(errno));
    }
    std::streamoff size = f.tellg();
    // QEMU's rule (pc_system_firmware_init): a whole number of 64 KiB blocks; and no more than
    // the 16 MiB below 4 GiB that is left for firmware.
    if (size <= 0 || size % 65536 != 0 || size > (16 << 20))
        fail(path + ": BIOS image size " + std::to_string(size) +
             " is not a multiple of 64 KiB up to 16 MiB");
    BiosImage img;
    img.path = path;
    img.bytes.resize(size_t(size));
    f.seekg(0);
    if (!f.read(reinterpret_cast<char*>(img.bytes.data()), size))
        fail(path + ": short read of BIOS image");
    return img;
}

} // namespace hvm
