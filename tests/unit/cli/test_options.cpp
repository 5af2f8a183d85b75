#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "base/error.hpp"
#include "cli/options.hpp"

using namespace hvm;

namespace {
MachineConfig parse(std::vector<std::string> args) {
    args.insert(args.begin(), "hvm");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    MachineConfig c;
    parse_command_line(static_cast<int>(argv.size()), argv.data(), c);
    return c;
}
} // namespace

TEST_CASE("QEMU-style options parse into the machine configuration") {
    auto c = parse({"-accel",
                    "kvm",
                    "-m",
                    "512",
                    "-smp",
                    "2",
                    "-kernel",
                    "vmlinuz",
                    "-initrd",
                    "initrd.img",
                    "-append",
                    "console=ttyS0 quiet",
                    "-serial",
                    "stdio",
                    "-display",
                    "none",
                    "-no-reboot",
                    "-machine",
                    "pc,kernel-irqchip=off",
                    "-cpu",
                    "host"});
    CHECK(c.accel == Accel::Kvm);
    CHECK(c.ram_size == 512ull << 20);
    CHECK(c.cpus == 2);
    CHECK(c.kernel == "vmlinuz");
    CHECK(c.append == "console=ttyS0 quiet");
    CHECK(c.serial == std::vector<std::string>{"stdio"});
    CHECK(c.display_none);
    CHECK(c.no_reboot);
    CHECK_FALSE(c.kernel_irqchip);
    CHECK(c.cpu_model == "host");
}

TEST_CASE("sizes, smp topologies and accelerator aliases") {
    CHECK(parse({"-m", "2G"}).ram_size == 2ull << 30);
    CHECK(parse({"-m", "size=1024M"}).ram_size == 1ull << 30);
    CHECK(parse({"-smp", "cores=2,threads=2"}).cpus == 4);
    CHECK(parse({"-smp", "cpus=3"}).cpus == 3);
    CHECK(parse({"-accel", "tcg"}).accel == Accel::Emu);
    CHECK(parse({"-machine", "accel=kvm"}).accel == Accel::Kvm);
    CHECK(parse({"-enable-kvm"}).accel == Accel::Kvm);
    CHECK(parse({}).serial == std::vector<std::string>{"null"});
    CHECK(parse({"-nographic"}).serial == std::vector<std::string>{"stdio"});
    auto d = parse({"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"});
    REQUIRE(d.devices.size() == 1);
    CHECK(d.devices[0].get("driver") == "isa-debug-exit");
    CHECK(d.devices[0].get_uint("iobase") == 0xf4u);
}

TEST_CASE("bad command lines are one clear error") {
    CHECK_THROWS_AS(parse({"-m", "0"}), UserError);
    CHECK_THROWS_AS(parse({"-m", "12Q"}), UserError);
    CHECK_THROWS_AS(parse({"-m", "99999999999999999999"}), UserError);
    CHECK_THROWS_AS(parse({"-smp", "0"}), UserError);
    CHECK_THROWS_AS(parse({"-smp", "300"}), UserError);
    CHECK_THROWS_AS(parse({"-frobnicate"}), UserError);
    CHECK_THROWS_AS(parse({"-kernel"}), UserError);
    CHECK_THROWS_AS(parse({"-accel", "hax"}), UserError);
    CHECK_THROWS_AS(parse({"-machine", "q35"}), UserError);
    CHECK_THROWS_AS(parse({"-cpu", "pentium"}), UserError);
    CHECK_THROWS_AS(parse({"-initrd", "x"}), UserError);
    CHECK_THROWS_AS(parse({"disk.img"}), UserError);
    CHECK_THROWS_AS(parse({"-display", "sdl"}), UserError);
    try {
        parse({"-frobnicate"});
    } catch (const UserError& e) {
        CHECK(std::string(e.what()).find("-frobnicate") != std::string::npos);
    }
}

TEST_CASE("firmware options: -bios, -option-rom, -boot, -uuid, -smbios") {
    auto c =
        parse({"-bios", "b.bin", "-option-rom", "probe.rom", "-boot", "order=dc,menu=on", "-uuid",
               "12345678-1234-1234-1234-123456789abc", "-smbios", "type=1,serial=42"});
    CHECK(c.bios == "b.bin");
    CHECK(c.option_roms == std::vector<std::string>{"probe.rom"});
    CHECK(c.boot_order == "dc");
    CHECK(c.boot_menu);
    CHECK(c.uuid == "12345678-1234-1234-1234-123456789abc");
    CHECK(c.smbios.size() == 1);
    CHECK(parse({"-boot", "d"}).boot_order == "d");
    CHECK_THROWS_AS(parse({"-boot", "order=x"}), UserError);
    CHECK_THROWS_AS(parse({"-boot", "once=d"}), UserError);
}
