// hvm: a virtual machine monitor for QEMU's `pc` machine, on KVM or on hvm's own x86 emulator.
#include <cstdio>
#include <exception>

#include "base/error.hpp"
#include "cli/options.hpp"
#include "machine/machine.hpp"

int main(int argc, char** argv) {
    try {
        hvm::MachineConfig config;
        if (!hvm::parse_command_line(argc, argv, config)) return 0;
        hvm::Machine machine(config);
        return machine.run();
    } catch (const hvm::UserError& e) {
        fprintf(stderr, "hvm: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        fprintf(stderr, "hvm: internal error: %s\n", e.what());
        return 2;
    }
}
