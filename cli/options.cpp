#include "cli/options.hpp"

#include <cstdio>
#include <cstring>
#include <map>

#include "base/error.hpp"

namespace hvm {

namespace {

const char kUsage[] =
    "usage: hvm [options]\n"
    "QEMU-compatible options hvm supports:\n"
    "  -accel kvm|emu|tcg      vCPU engine (tcg = hvm's emulator); default: KVM when it is\n"
    "                          hardware-backed, the emulator otherwise\n"
    "  -enable-kvm             same as -accel kvm\n"
    "  -machine pc[,accel=..][,kernel-irqchip=on|off]   (-M)\n"
    "  -cpu host|qemu64        CPU model\n"
    "  -m SIZE                 guest RAM (default unit MiB; 128M default)\n"
    "  -smp N[,cpus=N][,cores=..,threads=..,sockets=..,maxcpus=..]\n"
    "  -kernel FILE            Linux bzImage or multiboot kernel\n"
    "  -initrd FILE            initial ramdisk (multiboot: module list 'f1 args,f2')\n"
    "  -append CMDLINE         kernel command line\n"
    "  -serial SPEC            stdio | file:PATH | pty | unix:PATH[,server=on,wait=off] |\n"
    "                          tcp:HOST:PORT[,server=on,wait=off] | chardev:ID | null | none\n"
    "  -chardev TYPE,id=ID,... character backend for -serial chardev:ID / -device\n"
    "  -device isa-debugcon,iobase=N,chardev=ID\n"
    "  -device isa-debug-exit[,iobase=N][,iosize=N]\n"
    "  -debugcon SPEC          isa-debugcon at port 0xE9\n"
    "  -display none           headless\n"
    "  -nographic              headless, serial on stdio\n"
    "  -no-reboot              exit instead of rebooting\n"
    "  -no-shutdown            (accepted: stop instead of exiting on power-off is not\n"
    "                          supported yet, so hvm exits)\n"
    "  -rtc base=utc|localtime\n"
    "  -d ITEMS / -D FILE      tracing (in_asm,int,cpu_reset with -accel emu) to FILE\n"
    "  -name NAME\n"
    "  -option-rom FILE        option ROM SeaBIOS runs (fw_cfg genroms/)\n"
    "  -boot [order=]DEVS[,menu=on|off]   boot order: a floppy, c disk, d CD-ROM, n network\n"
    "  -uuid UUID, -smbios type=1,manufacturer=..,product=..,version=..,serial=..,uuid=..\n"
    "  -bios FILE              system BIOS (default /usr/share/seabios/bios-256k.bin; used\n"
    "                          when there is no -kernel)\n"
    "  -version, -h\n";

bool is_opt(const char* a, const char* name) {
    // QEMU accepts both -opt and --opt.
    if (a[0] == '-' && a[1] == '-') a++;
    return strcmp(a, name) == 0;
}

void parse_accel(const std::string& v, MachineConfig& c) {
    if (v == "kvm")
        c.accel = Accel::Kvm;
    else if (v == "emu" || v == "tcg")
        c.accel = Accel::Emu;
    else
        fail("-accel: unsupported accelerator '" + v + "' (hvm has kvm and emu)");
}

void parse_machine(const std::string& text, MachineConfig& c) {
    auto kv = KeyVal::parse(text, "-machine", "type");
    kv.expect_only({"type", "accel", "kernel-irqchip", "usb", "vmport", "hpet"});
    if (auto t = kv.get("type")) {
        if (*t != "pc" && t->rfind("pc-i440fx", 0) != 0)
            fail("-machine: unsupported machine type '" + *t + "' (hvm provides 'pc')");
    }
    if (auto a = kv.get("accel")) parse_accel(*a, c);
    if (auto k = kv.get("kernel-irqchip")) {
        if (*k == "split") fail("-machine: kernel-irqchip=split is not supported (use on or off)");
        c.kernel_irqchip = *kv.get_bool("kernel-irqchip");
        c.kernel_irqchip_set = true;
    }
    if (auto u = kv.get_bool("usb"); u && *u) fail("-machine: usb=on is not supported yet");
}

void parse_smp(const std::string& text, MachineConfig& c) {
    auto kv = KeyVal::parse(text, "-smp", "cpus");
    kv.expect_only({"cpus", "maxcpus", "sockets", "dies", "cores", "threads"});
    uint64_t n = 0;
    if (auto v = kv.get_uint("cpus")) n = *v;
    uint64_t sockets = kv.get_uint("sockets").value_or(1);
    uint64_t cores = kv.get_uint("cores").value_or(0);
    uint64_t threads = kv.get_uint("threads").value_or(1);
    if (n == 0 && cores) n = sockets * cores * threads;
    if (n == 0) fail("-smp: the number of CPUs must be at least 1");
    if (n > kMaxCpus)
        fail("-smp: " + std::to_string(n) + " CPUs requested, the pc machine supports " +
             std::to_string(kMaxCpus));
    if (auto m = kv.get_uint("maxcpus"); m && *m != n)
        fail("-smp: maxcpus different from cpus (CPU hotplug) is not supported");
    c.cpus = static_cast<unsigned>(n);
}

void parse_display(const std::string& text, MachineConfig& c) {
    auto kv = KeyVal::parse(text, "-display", "type");
    auto t = kv.get_or("type", "");
    if (t == "none") {
        kv.expect_only({"type"});
        c.display_none = true;
        return;
    }
    fail("-display: '" + t + "' is not supported yet (use -display none)");
}

void parse_rtc(const std::string& text, MachineConfig& c) {
    auto kv = KeyVal::parse(text, "-rtc", nullptr);
    kv.expect_only({"base", "clock", "driftfix"});
    auto b = kv.get_or("base", "utc");
    if (b != "utc" && b != "localtime")
        fail("-rtc: base='" + b + "' is not supported (utc or localtime)");
    c.rtc_base = b;
    auto clk = kv.get_or("clock", "host");
    if (clk != "host" && clk != "rt" && clk != "vm") fail("-rtc: clock='" + clk + "' is not valid");
    auto drift = kv.get_or("driftfix", "none");
    if (drift != "none" && drift != "slew") fail("-rtc: driftfix='" + drift + "' is not valid");
}

void parse_boot(const std::string& text, MachineConfig& c) {
    // QEMU: "-boot d" (legacy: the order string alone) or "-boot order=dc,menu=on,...".
    auto kv = KeyVal::parse(text, "-boot", "order");
    kv.expect_only({"order", "once", "menu", "splash", "splash-time", "reboot-timeout", "strict"});
    if (kv.has("once")) fail("-boot: once= is not supported yet");
    std::string order = kv.get_or("order", c.boot_order);
    if (order.empty() || order.size() > 4) fail("-boot: invalid boot order '" + order + "'");
    for (char d : order)
        if (d != 'a' && d != 'c' && d != 'd' && d != 'n')
            fail(std::string("-boot: invalid boot device '") + d + "' (a, c, d or n)");
    c.boot_order = order;
    if (auto m = kv.get_bool("menu")) c.boot_menu = *m;
}

} // namespace

bool parse_command_line(int argc, char** argv, MachineConfig& c) {
    auto need = [&](int& i) -> std::string {
        if (i + 1 >= argc) fail(std::string(argv[i]) + ": requires an argument");
        return argv[++i];
    };
    bool serial_given = false;
    for (int i = 1; i < argc; i++) {
        const char* a = argv[i];
        if (a[0] != '-') fail(std::string(a) + ": disk images are not supported yet (no -hda)");
        if (is_opt(a, "-h") || is_opt(a, "-help")) {
            fputs(kUsage, stdout);
            return false;
        } else if (is_opt(a, "-version")) {
            puts("hvm version 0.1 (QEMU pc machine compatible command line)");
            return false;
        } else if (is_opt(a, "-accel")) {
            auto kv = KeyVal::parse(need(i), "-accel", "accel");
            kv.expect_only({"accel", "thread"});
            parse_accel(kv.get_or("accel", ""), c);
        } else if (is_opt(a, "-enable-kvm")) {
            c.accel = Accel::Kvm;
        } else if (is_opt(a, "-machine") || is_opt(a, "-M")) {
            parse_machine(need(i), c);
        } else if (is_opt(a, "-cpu")) {
            auto kv = KeyVal::parse(need(i), "-cpu", "model");
            auto m = kv.get_or("model", "");
            if (kv.items().size() > 1)
                fail("-cpu: feature flags (" + kv.items()[1].first + ") are not supported yet");
            if (m != "host" && m != "qemu64" && m != "max")
                fail("-cpu: unsupported CPU model '" + m + "' (host, max or qemu64)");
            c.cpu_model = m == "max" ? "host" : m;
        } else if (is_opt(a, "-m")) {
            auto kv = KeyVal::parse(need(i), "-m", "size");
            kv.expect_only({"size", "slots", "maxmem"});
            if (kv.has("slots") || kv.has("maxmem")) fail("-m: memory hotplug is not supported");
            uint64_t bytes = parse_size(kv.get_or("size", ""), "-m", 1ull << 20);
            if (bytes < (1ull << 20))
                fail("-m: guest RAM must be at least 1 MiB (got " + kv.get_or("size", "") + ")");
            if (bytes > kMaxRam) fail("-m: guest RAM larger than 1 TiB is not supported");
            c.ram_size = (bytes + 0xfff) & ~0xfffull;
        } else if (is_opt(a, "-smp")) {
            parse_smp(need(i), c);
        } else if (is_opt(a, "-kernel")) {
            c.kernel = need(i);
        } else if (is_opt(a, "-initrd")) {
            c.initrd = need(i);
        } else if (is_opt(a, "-append")) {
            c.append = need(i);
        } else if (is_opt(a, "-serial")) {
            if (!serial_given) c.serial.clear();
            serial_given = true;
            if (c.serial.size() == 4) fail("-serial: at most 4 serial ports");
            c.serial.push_back(need(i));
        } else if (is_opt(a, "-chardev")) {
            c.chardevs.push_back(need(i));
        } else if (is_opt(a, "-device")) {
            c.devices.push_back(KeyVal::parse(need(i), "-device", "driver"));
        } else if (is_opt(a, "-debugcon")) {
            c.debugcon = need(i);
        } else if (is_opt(a, "-display")) {
            parse_display(need(i), c);
        } else if (is_opt(a, "-nographic")) {
            c.nographic = true;
            c.display_none = true;
        } else if (is_opt(a, "-no-reboot")) {
            c.no_reboot = true;
        } else if (is_opt(a, "-no-shutdown")) {
            c.no_shutdown = true;
        } else if (is_opt(a, "-rtc")) {
            parse_rtc(need(i), c);
        } else if (is_opt(a, "-d")) {
            c.trace = need(i);
        } else if (is_opt(a, "-D")) {
            c.trace_file = need(i);
        } else if (is_opt(a, "-name")) {
            auto kv = KeyVal::parse(need(i), "-name", "guest");
            c.name = kv.get_or("guest", "");
        } else if (is_opt(a, "-bios")) {
            c.bios = need(i);
        } else if (is_opt(a, "-option-rom")) {
            auto kv = KeyVal::parse(need(i), "-option-rom", "romfile");
            kv.expect_only({"romfile"});
            c.option_roms.push_back(kv.get_or("romfile", ""));
        } else if (is_opt(a, "-boot")) {
            parse_boot(need(i), c);
        } else if (is_opt(a, "-uuid")) {
            c.uuid = need(i);
        } else if (is_opt(a, "-smbios")) {
            c.smbios.push_back(need(i));
        } else if (is_opt(a, "-nodefaults")) {
            // hvm creates no default devices beyond the pc board and COM1.
        } else {
            fail(std::string(a) + ": option not supported by hvm (see hvm -h)");
        }
    }
    if (!serial_given) {
        // QEMU: -nographic puts COM1 on stdio; with -display none it goes to a (non-existent)
        // virtual console, i.e. nowhere.
        c.serial.push_back(c.nographic ? "stdio" : "null");
    }
    if (!c.initrd.empty() && c.kernel.empty()) fail("-initrd: needs -kernel");
    if (!c.append.empty() && c.kernel.empty()) fail("-append: needs -kernel");
    if (!c.trace_file.empty() && c.trace.empty()) fail("-D: needs -d");
    return true;
}

} // namespace hvm
