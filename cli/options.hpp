// hvm's command line: QEMU's syntax for the options hvm supports. Anything else is refused with
// one line naming the option and exit code 1.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cli/keyval.hpp"

namespace hvm {

enum class Accel { Auto, Kvm, Emu };

struct MachineConfig {
    Accel accel = Accel::Auto;
    bool kernel_irqchip = true;
    bool kernel_irqchip_set = false;  // given explicitly with -machine kernel-irqchip=
    std::string cpu_model = "qemu64"; // QEMU's default for -M pc
    uint64_t ram_size = 128ull << 20; // QEMU's default
    unsigned cpus = 1;
    std::string kernel, initrd, append;
    std::vector<std::string> serial;   // -serial specs, COM1 first
    std::vector<std::string> chardevs; // -chardev specs
    std::vector<KeyVal> devices;       // -device driver,key=value...
    std::string debugcon;              // -debugcon spec (QEMU: isa-debugcon at 0xE9)
    bool display_none = false;
    bool nographic = false;
    bool no_reboot = false;
    bool no_shutdown = false;
    std::string rtc_base = "utc";
    std::string trace;                    // -d items
    std::string trace_file;               // -D file
    std::string name;                     // -name
    std::string bios;                     // -bios (default: Debian's SeaBIOS bios-256k.bin)
    std::vector<std::string> option_roms; // -option-rom FILE (fw_cfg genroms/)
    std::string boot_order = "cad";       // -boot order= (QEMU's default)
    bool boot_menu = false;               // -boot menu=on
    std::string uuid;                     // -uuid
    std::vector<std::string> smbios;      // -smbios type=1,...
};

// Parses argv; throws UserError for anything hvm does not support or cannot use.
// Returns false when the command line asked only for --help/--version (already printed).
bool parse_command_line(int argc, char** argv, MachineConfig& out);

// The maximum vCPU count hvm accepts (the `pc` machine's limit in QEMU).
constexpr unsigned kMaxCpus = 255;
constexpr uint64_t kMaxRam = 1ull << 40;

} // namespace hvm
