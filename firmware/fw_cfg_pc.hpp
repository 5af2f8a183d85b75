// What QEMU 7.2's `pc` machine puts in fw_cfg for SeaBIOS (shared/reference/pc-platform.md §1.2,
// §1.3): the legacy keys, the ACPI blobs and table-loader, SMBIOS, e820, boot settings and
// option ROMs; plus the -kernel items that SeaBIOS's linuxboot_dma.bin option ROM reads.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/acpi/pc_acpi.hpp"
#include "firmware/fw_cfg.hpp"
#include "firmware/smbios/smbios.hpp"

namespace hvm {

struct PcFwCfgConfig {
    uint64_t ram_size = 0;
    unsigned present_cpus = 1;            // key 0x05 nb_cpus
    unsigned max_cpus = 1;                // key 0x0F; SeaBIOS reads it as etc/max-cpus
    Uuid uuid{};                          // key 0x02 (zeros without -uuid)
    bool nographic = false;               // key 0x04: SeaBIOS then makes a serial console on 0x3F8
    bool boot_menu = false;               // key 0x0E (-boot menu=on)
    bool hpet = true;                     // key 0x8004 lists one HPET block
    bool irq0_override = true;            // key 0x8002
    uint32_t boot_fail_wait = 0xFFFFFFFF; // etc/boot-fail-wait: retry forever
    // The fw_cfg `etc/e820` blob. The machine builds it with bios/e820.hpp
    // pc_fw_cfg_e820_blob() (that library is not a dependency of firmware/).
    std::vector<uint8_t> e820;
    std::string bootorder; // lines of OpenFirmware paths, empty for none
    PcAcpiConfig acpi;
    SmbiosConfig smbios;
};

// etc/system-states: one byte per S0..S5; bit 7 = enabled, low bits = SLP_TYP (QEMU piix4).
std::vector<uint8_t> pc_system_states(bool s3, bool s4);

// Fills `fw` for the `pc` machine. Throws UserError on an unusable configuration.
void populate_pc_fw_cfg(FwCfg& fw, const PcFwCfgConfig& cfg);

// An option ROM SeaBIOS runs from fw_cfg ("genroms/<name>", what -option-rom adds).
void add_option_rom(FwCfg& fw, std::string_view name, std::vector<uint8_t> rom);

// The -kernel items QEMU's x86_load_linux() adds (all addresses/sizes le32). The loader
// (bios/linux_boot) splits the bzImage, patches the setup header and chooses the addresses; this
// only publishes the result. The linuxboot_dma.bin ROM itself goes in with add_option_rom().
struct LinuxBootFwCfg {
    uint32_t setup_addr = 0;    // real-mode part (QEMU: 0x10000 / 0x90000)
    std::vector<uint8_t> setup; // boot sector + setup, header already patched
    uint32_t kernel_addr = 0;   // protected-mode part, 0x100000
    std::vector<uint8_t> kernel;
    uint32_t initrd_addr = 0; // 0 and empty when there is no initrd
    std::vector<uint8_t> initrd;
    uint32_t cmdline_addr = 0;
    std::string cmdline;
};
void add_linux_boot(FwCfg& fw, const LinuxBootFwCfg& boot);

} // namespace hvm
