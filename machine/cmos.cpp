#include "machine/cmos.hpp"

#include <algorithm>

namespace hvm {

namespace {
uint8_t boot_device_code(char c) {
    switch (c) {
    case 'a': return 1; // floppy
    case 'c': return 2; // hard disk
    case 'd': return 3; // CD-ROM
    case 'n': return 4; // network
    default: return 0;
    }
}
} // namespace

void fill_pc_cmos(const CmosConfig& cfg, const std::function<void(uint8_t, uint8_t)>& write) {
    write(0x0f, 0x00); // shutdown status: normal POST
    write(0x10, 0x00); // floppy drive types: none (hvm builds no floppy controller)
    // Equipment byte: bit 0 floppy present, bit 1 FPU, bit 2 PS/2 mouse (QEMU sets both).
    write(0x14, uint8_t((cfg.floppy ? 0x01 : 0x00) | 0x02 | 0x04));
    write(0x15, 0x80); // base memory: 640 KiB
    write(0x16, 0x02);
    uint64_t ext_kib = cfg.ram_below_4g > (1u << 20) ? (cfg.ram_below_4g >> 10) - 1024 : 0;
    uint16_t ext = uint16_t(std::min<uint64_t>(ext_kib, 0xffff));
    write(0x17, uint8_t(ext));
    write(0x18, uint8_t(ext >> 8));
    write(0x30, uint8_t(ext));
    write(0x31, uint8_t(ext >> 8));
    uint64_t above16 = cfg.ram_below_4g > (16u << 20) ? (cfg.ram_below_4g - (16u << 20)) >> 16 : 0;
    uint16_t a16 = uint16_t(std::min<uint64_t>(above16, 0xffff));
    write(0x34, uint8_t(a16));
    write(0x35, uint8_t(a16 >> 8));
    uint64_t above4g = cfg.ram_above_4g >> 16;
    write(0x5b, uint8_t(above4g));
    write(0x5c, uint8_t(above4g >> 8));
    write(0x5d, uint8_t(above4g >> 16));
    write(0x5f, uint8_t(std::min(cfg.cpus, 256u) - 1));
    // Boot order (QEMU set_boot_dev): first two devices in 0x3D, the third in 0x38 bits 7:4;
    // 0x38 bit 0 = skip the floppy boot-signature check (off).
    const char* b = cfg.boot_order ? cfg.boot_order : "";
    uint8_t d[3] = {0, 0, 0};
    for (int i = 0; i < 3 && b[i]; i++) d[i] = boot_device_code(b[i]);
    write(0x3d, uint8_t(d[1] << 4 | d[0]));
    write(0x38, uint8_t(d[2] << 4));
    write(0x39, 0x00); // disk translation: none (no disks yet)
}

} // namespace hvm
