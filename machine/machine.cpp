#include "machine/machine.hpp"

#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <unistd.h>
#include <x86intrin.h>

#include "base/error.hpp"
#include "base/log.hpp"
#include "bios/bios_rom.hpp"
#include "bios/boot_cpu.hpp"
#include "bios/e820.hpp"
#include "bios/kernel_loader.hpp"
#include "chardev/char_devices.hpp"
#include "devmodel/acpi/cpu_hotplug.hpp"
#include "devmodel/acpi/hpet.hpp"
#include "devmodel/acpi/pci_hotplug.hpp"
#include "devmodel/acpi/piix4_pm.hpp"
#include "devmodel/irq/apic_bus.hpp"
#include "devmodel/irq/ioapic.hpp"
#include "devmodel/irq/isa_irq_router.hpp"
#include "devmodel/irq/local_apic.hpp"
#include "devmodel/irq/pic8259.hpp"
#include "devmodel/misc/debug_exit.hpp"
#include "devmodel/misc/debugcon.hpp"
#include "devmodel/misc/i8042.hpp"
#include "devmodel/misc/isa_device_options.hpp"
#include "devmodel/misc/port92.hpp"
#include "devmodel/misc/post_code_port.hpp"
#include "devmodel/pci/pci_bus.hpp"
#include "devmodel/pci/pci_irq_router.hpp"
#include "devmodel/pci/piix3.hpp"
#include "devmodel/serial/uart16550.hpp"
#include "devmodel/timer/mc146818_rtc.hpp"
#include "devmodel/timer/pit8254.hpp"
#include "devmodel/timer/pit_channel2.hpp"
#include "devmodel/timer/system_control_port_b.hpp"
#include "firmware/acpi/pc_acpi.hpp"
#include "firmware/acpi/table_loader.hpp"
#include "firmware/fw_cfg.hpp"
#include "firmware/fw_cfg_pc.hpp"
#include "firmware/mptable.hpp"
#include "firmware/smbios/smbios.hpp"
#include "machine/cmos.hpp"
#include "vcpu/emu/emu_engine.hpp"
#include "vcpu/kvm/kvm_engine.hpp"
#include "vmexit/diagnose.hpp"

namespace hvm {

namespace {

// The guest TSC runs at the host's rate on both engines; the local APIC's TSC-deadline timer
// needs the frequency. Measured once against CLOCK_MONOTONIC (20 ms).
uint64_t measure_tsc_hz() {
    timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    uint64_t t0 = __rdtsc();
    timespec req{0, 20'000'000};
    nanosleep(&req, nullptr);
    clock_gettime(CLOCK_MONOTONIC, &b);
    uint64_t t1 = __rdtsc();
    double ns = double(b.tv_sec - a.tv_sec) * 1e9 + double(b.tv_nsec - a.tv_nsec);
    uint64_t hz = ns > 0 ? uint64_t(double(t1 - t0) * 1e9 / ns) : 0;
    return hz ? hz : 1'000'000'000;
}

// A PAM segment in write-only state: reads come from the ROM side (the BIOS image, or nothing),
// writes go to the RAM underneath (i440FX datasheet, PAM "WE" only). Rare: firmware uses it, if
// at all, only while copying itself into shadow RAM.
class PamWriteOnlyWindow : public IoHandler {
  public:
    PamWriteOnlyWindow(uint8_t* ram, const uint8_t* rom, uint64_t size)
        : ram_(ram), rom_(rom), size_(size) {}
    void io_read(uint64_t offset, std::span<uint8_t> data) override {
        for (size_t i = 0; i < data.size(); i++)
            data[i] = rom_ && offset + i < size_ ? rom_[offset + i] : 0xff;
    }
    void io_write(uint64_t offset, std::span<const uint8_t> data) override {
        for (size_t i = 0; i < data.size(); i++)
            if (ram_ && offset + i < size_) ram_[offset + i] = data[i];
    }

  private:
    uint8_t* ram_;
    const uint8_t* rom_;
    uint64_t size_;
};

struct ComPort {
    uint16_t base;
    unsigned irq;
};
constexpr ComPort kComPorts[4] = {{0x3f8, 4}, {0x2f8, 3}, {0x3e8, 4}, {0x2e8, 3}};

} // namespace

Machine::Machine(const MachineConfig& config) : cfg_(config) {
    firmware_boot_ = cfg_.kernel.empty();
    if (firmware_boot_)
        bios_ = std::make_unique<BiosImage>(
            load_bios_image(cfg_.bios.empty() ? kDefaultBiosPath : cfg_.bios));
    choose_engine();
    build_memory();
    build_board();
    build_vcpus();
    load_boot_images();
}

Machine::~Machine() {
    stop_vcpus();
    clock_.stop();
}

// ---- construction ---------------------------------------------------------------------------

void Machine::choose_engine() {
    bool hw = KvmEngine::is_hardware_backed();
    Accel accel = cfg_.accel;
    if (accel == Accel::Auto) {
        // KVM where the CPU virtualises in hardware; hvm's emulator everywhere else (a
        // paravirtual or nested software KVM runs guest kernel code ~1000x slower than native).
        bool kvm_usable = access("/dev/kvm", R_OK | W_OK) == 0;
        accel = hw && kvm_usable ? Accel::Kvm : Accel::Emu;
        fprintf(stderr, "hvm: warning: using %s\n",
                accel == Accel::Kvm ? "KVM (hardware-backed)"
                : kvm_usable        ? "the emulator engine: KVM here is not hardware-backed "
                                      "(no VT-x/AMD-V)"
                                    : "the emulator engine: no usable /dev/kvm");
    } else if (accel == Accel::Kvm && !hw) {
        fprintf(stderr, "hvm: warning: KVM is not hardware-backed on this host (no VT-x/AMD-V): "
                        "guest kernel code runs very slowly (-accel emu is faster here)\n");
    }
    if (accel == Accel::Emu) {
        if (cfg_.kernel_irqchip_set && cfg_.kernel_irqchip)
            fail("-machine kernel-irqchip=on: needs -accel kvm (the emulator uses hvm's own "
                 "interrupt controllers)");
        auto emu = std::make_unique<emu::EmuEngine>(&lock_);
        emu_ = emu.get();
        engine_ = std::move(emu);
        userspace_irqchip_ = true;
        return;
    }
    EngineConfig ec;
    ec.vcpus = cfg_.cpus;
    ec.kernel_irqchip = cfg_.kernel_irqchip;
    ec.cpu_model = cfg_.cpu_model;
    auto kvm = std::make_unique<KvmEngine>(ec);
    kvm_ = kvm.get();
    engine_ = std::move(kvm);
    userspace_irqchip_ = !engine_->in_kernel_irqchip();
    if (kvm_ && userspace_irqchip_) kvm_->set_device_lock(lock_);
}

void Machine::build_memory() {
    ram_ = PcRamLayout::for_size(cfg_.ram_size);
    ram_low_ = mem_.allocate(ram_.below_4g, "ram");
    // Conventional memory; the legacy VGA window 0xA0000-0xBFFFF stays MMIO; 0xC0000-0xFFFFF is
    // switched between RAM and ROM by the PAM registers (map_pam_segment); then extended memory,
    // RAM above 4 GiB, and the BIOS image just below 4 GiB.
    mem_.add_region(
        {0, std::min<uint64_t>(ram_.below_4g, 0xa0000), ram_low_, false, "ram-conventional"});
    if (ram_.below_4g > 0x100000)
        mem_.add_region({0x100000, ram_.below_4g - 0x100000, ram_low_ + 0x100000, false, "ram"});
    if (ram_.above_4g) {
        uint8_t* high = mem_.allocate(ram_.above_4g, "ram-high");
        mem_.add_region({1ull << 32, ram_.above_4g, high, false, "ram-above-4g"});
    }
    if (bios_) {
        bios_rom_ = mem_.allocate(bios_->bytes.size(), "bios");
        memcpy(bios_rom_, bios_->bytes.data(), bios_->bytes.size());
        mem_.add_region(
            {(1ull << 32) - bios_->bytes.size(), bios_->bytes.size(), bios_rom_, true, "bios"});
    }
    for (unsigned seg = 0; seg < pam_.size(); seg++) map_pam_segment(seg, PamState::Pci);
    engine_->map_memory(mem_);
}

void Machine::map_pam_segment(unsigned segment, PamState state) {
    auto [base, size] = I440fxHostBridge::pam_segment(segment);
    mem_.remove_region(base);
    if (pam_windows_[segment]) {
        mmio_.remove(base);
        pam_windows_[segment].reset();
    }
    uint8_t* ram = uint64_t(base) + size <= ram_.below_4g ? ram_low_ + base : nullptr;
    // The ROM side: the last 128 KiB of the BIOS image (QEMU's isa-bios) at 0xE0000-0xFFFFF.
    const uint8_t* rom = nullptr;
    if (bios_ && base >= 0x100000 - bios_->isa_size())
        rom = bios_rom_ + bios_->bytes.size() - (0x100000 - base);
    switch (state) {
    case PamState::ReadWrite:
        if (ram) mem_.add_region({base, size, ram, false, "pam-ram"});
        break;
    case PamState::ReadOnly:
        if (ram) mem_.add_region({base, size, ram, true, "pam-ram-readonly"});
        break;
    case PamState::Pci:
        if (rom) mem_.add_region({base, size, const_cast<uint8_t*>(rom), true, "isa-bios"});
        break;
    case PamState::WriteOnly:
        pam_windows_[segment] = std::make_unique<PamWriteOnlyWindow>(ram, rom, size);
        mmio_.add(base, size, pam_windows_[segment].get(), {1, 8}, "pam-write-only");
        break;
    }
    pam_[segment] = state;
}

void Machine::pam_changed(unsigned segment, PamState state) {
    if (segment >= pam_.size() || pam_[segment] == state) return;
    map_pam_segment(segment, state);
    engine_->map_memory(mem_);
}

void Machine::smram_changed(bool dram_visible) {
    // D_OPEN shows the RAM under the VGA window; hvm has no SMM, so nothing else uses it.
    if (ram_.below_4g < 0xc0000) return;
    if (dram_visible)
        mem_.add_region({0xa0000, 0x20000, ram_low_ + 0xa0000, false, "smram"});
    else
        mem_.remove_region(0xa0000);
    engine_->map_memory(mem_);
}

void Machine::add_pio(uint64_t base, uint64_t len, IoHandler& h, AccessSizes sizes,
                      const char* name) {
    try {
        pio_.add(base, len, &h, sizes, name);
    } catch (const std::invalid_argument& e) {
        fail(std::string(name) + ": I/O ports 0x" +
             [&] {
                 char b[16];
                 snprintf(b, sizeof b, "%llx", (unsigned long long)base);
                 return std::string(b);
             }() +
             " are already in use (" + e.what() + ")");
    }
}

IrqPin Machine::isa_irq(unsigned line) {
    // The HPET's legacy-replacement mode takes IRQ 0 and 8 away from the PIT and the RTC.
    if (hpet_ && line == 0) return IrqPin(&hpet_->legacy_inputs(), Hpet::kPitInput);
    if (hpet_ && line == 8) return IrqPin(&hpet_->legacy_inputs(), Hpet::kRtcInput);
    return IrqPin(gsi_, line);
}

void Machine::build_board() {
    build_interrupt_controllers();
    build_chipset();
    build_isa_devices();
    build_fw_cfg();
}

// fw_cfg with everything QEMU's `pc` serves SeaBIOS: e820, ACPI tables and their table-loader,
// SMBIOS, CPU counts, boot settings (pc-platform.md §1).
void Machine::build_fw_cfg() {
    fw_cfg_ = std::make_unique<FwCfg>(mem_);
    fw_cfg_->attach(pio_);
    devices_.push_back(fw_cfg_.get());
    PcFwCfgConfig fc;
    fc.ram_size = cfg_.ram_size;
    fc.present_cpus = cfg_.cpus;
    fc.max_cpus = cfg_.cpus;
    fc.nographic = cfg_.nographic;
    fc.e820 = pc_fw_cfg_e820_blob(ram_);
    fc.acpi.apic_ids.clear();
    for (unsigned i = 0; i < cfg_.cpus; i++) fc.acpi.apic_ids.push_back(i);
    fc.acpi.present_cpus = cfg_.cpus;
    fc.acpi.ram_below_4g = ram_.below_4g;
    fc.acpi.ram_above_4g = ram_.above_4g;
    fc.acpi.com1 = !uarts_.empty();
    fc.smbios.ram_size = cfg_.ram_size;
    fc.smbios.cores_per_socket = cfg_.cpus;
    fc.smbios.ram_ranges.push_back({0, ram_.below_4g});
    if (ram_.above_4g) fc.smbios.ram_ranges.push_back({1ull << 32, ram_.above_4g});
    fc.boot_menu = cfg_.boot_menu;
    if (!cfg_.uuid.empty()) {
        fc.uuid = parse_uuid(cfg_.uuid);
        fc.smbios.system.uuid = fc.uuid;
    }
    for (auto& spec : cfg_.smbios) apply_smbios_option(spec, fc.smbios.system);
    if (fc.smbios.system.uuid) fc.uuid = *fc.smbios.system.uuid;
    populate_pc_fw_cfg(*fw_cfg_, fc);
    for (auto& path : cfg_.option_roms) {
        std::ifstream f(path, std::ios::binary);
        if (!f) fail("-option-rom: " + path + ": cannot read the file");
        std::vector<uint8_t> rom((std::istreambuf_iterator<char>(f)),
                                 std::istreambuf_iterator<char>());
        if (rom.empty() || rom.size() > (1u << 20))
            fail("-option-rom: " + path + ": not an option ROM of 1 byte to 1 MiB");
        std::string name = path.substr(path.find_last_of('/') + 1);
        add_option_rom(*fw_cfg_, name, std::move(rom));
    }
}

// A boot without firmware places the ACPI tables itself, by running the same table-loader script
// SeaBIOS would: the tables go to the top of RAM below 4 GiB (reserved in the e820 map given to
// the kernel, as SeaBIOS reserves its high zone), the RSDP into the BIOS area at 0xE0000 where
// OSes scan for it. Returns the RSDP address.
uint64_t Machine::place_acpi_tables(std::vector<E820Entry>& e820) {
    const std::vector<uint8_t>* loader = fw_cfg_->find_file("etc/table-loader");
    if (!loader) return 0;
    constexpr uint64_t kHighZone = 256 * 1024;
    uint64_t top = std::min<uint64_t>(ram_.below_4g, 0xe0000000ull);
    if (top < 16ull << 20) return 0; // too little RAM to spare a high zone; Linux uses the MP table
    uint64_t bottom = top - kHighZone;
    for (auto it = e820.begin(); it != e820.end(); ++it) {
        if (it->type == E820Type::Ram && it->addr < top && it->end() >= top) {
            uint64_t end = it->end();
            it->size = bottom - it->addr;
            E820Entry reserved{bottom, kHighZone, E820Type::Reserved};
            it = e820.insert(it + 1, reserved);
            if (end > top) e820.insert(it + 1, E820Entry{top, end - top, E820Type::Ram});
            break;
        }
    }
    BumpLoaderAllocator alloc(bottom, top);
    auto lookup = [this](std::string_view name) { return fw_cfg_->find_file(name); };
    LoaderReplayResult r = replay_table_loader(*loader, lookup, alloc, mem_);
    auto it = r.addresses.find("etc/acpi/rsdp");
    return it == r.addresses.end() ? 0 : it->second;
}

// The PCI side of QEMU's `pc`: i440FX host bridge 00:00.0, PIIX3 ISA bridge 00:01.0, PIIX4 PM
// 00:01.3, plus the ACPI hotplug register blocks and the HPET the DSDT describes.
void Machine::build_chipset() {
    pirq_ = std::make_unique<PciIrqRouter>(*gsi_);
    pci_ = std::make_unique<PciBus>(pio_, mmio_, *pirq_);
    add_pio(0xcf8, 8, pci_->config_io(), {1, 4}, "pci-config");
    devices_.push_back(pci_.get());
    host_bridge_ = std::make_unique<I440fxHostBridge>(*this, cfg_.ram_size);
    pci_->attach(*host_bridge_, pci::devfn(0, 0));
    devices_.push_back(host_bridge_.get());
    piix3_ = std::make_unique<Piix3IsaBridge>(*pirq_, *this);
    pci_->attach(*piix3_, pci::devfn(1, 0));
    pci_->set_reset_control(&piix3_->reset_control());
    devices_.push_back(piix3_.get());
    pm_ = std::make_unique<Piix4Pm>(clock_, IrqPin(gsi_, 9), *this, Piix4PmOptions{});
    pci_->attach(*pm_, pci::devfn(1, 3));
    devices_.push_back(pm_.get());
    add_pio(0xafe0, 4, pm_->gpe0_io(), {1, 1}, "acpi-gpe0");
    add_pio(0xb2, 2, pm_->apm_io(), {1, 1}, "apm");
    std::vector<uint32_t> apic_ids;
    for (unsigned i = 0; i < cfg_.cpus; i++) apic_ids.push_back(i);
    cpu_hotplug_ = std::make_unique<AcpiCpuHotplug>(apic_ids);
    add_pio(0xaf00, 32, *cpu_hotplug_, {1, 4}, "acpi-cpu-hotplug");
    devices_.push_back(cpu_hotplug_.get());
    pci_hotplug_ = std::make_unique<AcpiPciHotplug>();
    add_pio(0xae00, 0x18, *pci_hotplug_, {4, 4}, "acpi-pci-hotplug");
    devices_.push_back(pci_hotplug_.get());
    hpet_ = std::make_unique<Hpet>(clock_, *gsi_, [](bool) {});
    mmio_.add(0xfed00000, 0x400, hpet_.get(), {4, 8}, "hpet");
    devices_.push_back(hpet_.get());
}

// What SeaBIOS would have left behind, for a boot without firmware (-kernel): shadow RAM
// read/write in all PAM segments, PCI interrupts routed to IRQ 10/11 as level lines (Appendix A:
// PIRQA-D = 10, 10, 11, 11; ELCR 0x4D1 = 0x0C), the ACPI PM block at 0x600 (SeaBIOS moves it
// there when it loads QEMU's ACPI tables).
void Machine::direct_boot_firmware_setup() {
    pci_->config_write(0, pci::devfn(0, 0), 0x59, 1, 0x30);
    for (unsigned r = 0x5a; r <= 0x5f; r++) pci_->config_write(0, pci::devfn(0, 0), r, 1, 0x33);
    pci_->config_write(0, pci::devfn(1, 0), 0x60, 4, 0x0b0b0a0a);
    pci_->config_write(0, pci::devfn(1, 3), 0x40, 4, 0x601);
    pci_->config_write(0, pci::devfn(1, 3), 0x80, 1, 0x01);
    if (pic_) {
        uint8_t elcr = 0x0c;
        pio_.write(0x4d1, std::span<const uint8_t>(&elcr, 1));
    }
}

void Machine::build_interrupt_controllers() {
    if (!userspace_irqchip_) {
        gsi_ = kvm_->irq_sink();
        return;
    }
    apic_bus_ = std::make_unique<ApicBus>();
    pic_ = std::make_unique<Pic8259Pair>(IrqPin(apic_bus_.get(), ApicBus::kLint0));
    ioapic_ = std::make_unique<IoApic>(*apic_bus_, clock_);
    apic_bus_->connect_ioapic(*ioapic_);
    apic_bus_->connect_ext_int(*pic_);
    router_ = std::make_unique<IsaIrqRouter>(*pic_, *ioapic_);
    gsi_ = router_.get();
    add_pio(Pic8259Pair::kMasterPort, 2, pic_->master_io(), {1, 1}, "i8259-master");
    add_pio(Pic8259Pair::kSlavePort, 2, pic_->slave_io(), {1, 1}, "i8259-slave");
    add_pio(Pic8259Pair::kElcrPort, 2, pic_->elcr_io(), {1, 1}, "elcr");
    mmio_.add(IoApic::kDefaultBase, IoApic::kMmioSize, ioapic_.get(), {4, 4}, "ioapic");
    devices_.push_back(pic_.get());
    devices_.push_back(ioapic_.get());
    devices_.push_back(router_.get());

    uint64_t tsc_hz = measure_tsc_hz();
    std::vector<ExitDispatcher::LocalApicWindow> windows;
    for (unsigned i = 0; i < cfg_.cpus; i++) {
        LocalApic::Config c;
        c.apic_id = uint8_t(i);
        c.bsp = i == 0;
        c.tsc_hz = tsc_hz;
        auto l = std::make_unique<LocalApic>(*apic_bus_, clock_, c);
        apic_bus_->attach(*l);
        windows.push_back({l.get(), &l->mmio_base()});
        devices_.push_back(l.get());
        lapics_.push_back(std::move(l));
    }
    dispatcher_.set_local_apics(std::move(windows));
}

void Machine::build_isa_devices() {
    // PIT and port 0x61: in the kernel with KVM's irqchip (QEMU's kvm-i8254), else ours.
    if (userspace_irqchip_) {
        pit_ = std::make_unique<Pit8254>(clock_, isa_irq(0));
        add_pio(Pit8254::kBasePort, Pit8254::kPortCount, *pit_, {1, 1}, "i8254");
        devices_.push_back(pit_.get());
        port61_ = std::make_unique<SystemControlPortB>(clock_, *pit_);
    } else {
        port61_ = std::make_unique<SystemControlPortB>(clock_, *kvm_->pit_channel2());
    }
    add_pio(SystemControlPortB::kPort, SystemControlPortB::kPortCount, *port61_, {1, 1}, "port61");
    devices_.push_back(port61_.get());

    // RTC/CMOS, with the time base of -rtc base=.
    time_t now = time(nullptr);
    int64_t offset = 0;
    if (cfg_.rtc_base == "localtime") {
        tm local;
        localtime_r(&now, &local);
        offset = local.tm_gmtoff;
    }
    rtc_ = std::make_unique<Mc146818Rtc>(clock_, isa_irq(8), int64_t(now), offset);
    add_pio(Mc146818Rtc::kBasePort, Mc146818Rtc::kPortCount, *rtc_, {1, 1}, "mc146818");
    devices_.push_back(rtc_.get());

    i8042_ = std::make_unique<I8042>(*this, isa_irq(1), isa_irq(12));
    add_pio(0x60, 1, i8042_->data_port(), {1, 1}, "i8042-data");
    add_pio(0x64, 1, i8042_->command_port(), {1, 1}, "i8042-cmd");
    devices_.push_back(i8042_.get());
    port92_ = std::make_unique<Port92>(*this);
    add_pio(Port92::kPort, 1, *port92_, {1, 1}, "port92");
    devices_.push_back(port92_.get());
    post_ = std::make_unique<PostCodePort>(clock_);
    add_pio(PostCodePort::kPort, 1, *post_, {1, 1}, "post-code");
    devices_.push_back(post_.get());

    // Character devices, then the serial ports and debug ports that use them.
    chardevs_ = std::make_unique<CharDevices>(CharContext{lock_, [this] { request_exit(0); }});
    for (auto& spec : cfg_.chardevs) chardevs_->add_chardev(spec);
    for (size_t i = 0; i < cfg_.serial.size(); i++) {
        std::string label = "serial" + std::to_string(i);
        CharBackend* backend = chardevs_->open_target(cfg_.serial[i], "-serial", label);
        if (!backend) continue; // -serial none: no UART at this address
        auto u = std::make_unique<Uart16550>(clock_, isa_irq(kComPorts[i].irq), backend);
        add_pio(kComPorts[i].base, Uart16550::kWindowSize, *u, {1, 1}, "serial");
        devices_.push_back(u.get());
        uarts_.push_back(std::move(u));
    }
    if (!cfg_.debugcon.empty()) {
        CharBackend* backend = chardevs_->open_target(cfg_.debugcon, "-debugcon", "debugcon");
        if (backend) {
            auto d = std::make_unique<DebugCon>(backend);
            add_pio(0xe9, 1, *d, {1, 1}, "isa-debugcon");
            devices_.push_back(d.get());
            debugcons_.push_back(std::move(d));
        }
    }
    for (auto& dev : cfg_.devices) {
        std::string driver = dev.get_or("driver", "");
        if (driver == "isa-debugcon") {
            DebugConOptions o = parse_isa_debugcon(dev.items());
            CharBackend* backend = chardevs_->find(o.chardev);
            if (!backend) fail("-device isa-debugcon: chardev '" + o.chardev + "' not found");
            auto d = std::make_unique<DebugCon>(backend, o.readback);
            add_pio(o.iobase, 1, *d, {1, 1}, "isa-debugcon");
            devices_.push_back(d.get());
            debugcons_.push_back(std::move(d));
        } else if (driver == "isa-debug-exit") {
            DebugExitOptions o = parse_isa_debug_exit(dev.items());
            auto d = std::make_unique<DebugExit>(*this);
            add_pio(o.iobase, o.iosize, *d, {1, 4}, "isa-debug-exit");
            devices_.push_back(d.get());
            debug_exits_.push_back(std::move(d));
        } else {
            fail("-device " + driver + ": device not supported by hvm");
        }
    }

    CmosConfig cmos;
    cmos.ram_below_4g = ram_.below_4g;
    cmos.ram_above_4g = ram_.above_4g;
    cmos.cpus = cfg_.cpus;
    cmos.boot_order = cfg_.boot_order.c_str();
    fill_pc_cmos(cmos, [this](uint8_t i, uint8_t v) { rtc_->cmos_write(i, v); });
}

void Machine::build_vcpus() {
    for (unsigned i = 0; i < cfg_.cpus; i++)
        vcpus_.push_back(
            engine_->create_vcpu(i, dispatcher_, userspace_irqchip_ ? lapics_[i].get() : nullptr));
}

void Machine::load_boot_images() {
    if (firmware_boot_) {
        // Every CPU starts at the reset vector: the BSP runs the BIOS, the APs wait for SIPI.
        for (unsigned i = 0; i < vcpus_.size(); i++) vcpus_[i]->set_state(reset_cpu_state(i));
        return;
    }
    direct_boot_firmware_setup();
    std::vector<E820Entry> e820 = pc_e820_map(ram_);
    write_boot_gdt(mem_);
    write_bios_data_area(mem_);
    // MP table for the kernel to find the CPUs and the IOAPIC (no ACPI tables yet): in the
    // BIOS area, where the MP specification lets an OS search (0xF0000-0xFFFFF).
    MpTableConfig mp;
    mp.cpus = cfg_.cpus;
    mp.pci_bus = false;
    mp.ioapic_id = 0;
    place_mp_table_in(mem_, 0xf0000, 0x100000, build_mp_config_table(mp));

    uint64_t rsdp = place_acpi_tables(e820);
    KernelBootConfig kc;
    kc.acpi_rsdp_addr = rsdp;
    kc.kernel_path = cfg_.kernel;
    kc.initrd = cfg_.initrd;
    kc.cmdline = cfg_.append;
    KernelBootResult boot = load_kernel_file(mem_, e820, kc);
    for (unsigned i = 0; i < vcpus_.size(); i++)
        vcpus_[i]->set_state(i == 0 ? boot.cpu : reset_cpu_state(i));
}

void Machine::reset_devices(ResetKind kind) {
    std::lock_guard g(lock_);
    for (Device* d : devices_) d->reset(kind);
    CmosConfig cmos;
    cmos.ram_below_4g = ram_.below_4g;
    cmos.ram_above_4g = ram_.above_4g;
    cmos.cpus = cfg_.cpus;
    cmos.boot_order = cfg_.boot_order.c_str();
    fill_pc_cmos(cmos, [this](uint8_t i, uint8_t v) { rtc_->cmos_write(i, v); });
    a20_ = true;
}

// ---- running --------------------------------------------------------------------------------

void Machine::start_vcpus() {
    stopping_ = false;
    for (unsigned i = 0; i < vcpus_.size(); i++)
        threads_.emplace_back([this, i] { vcpu_thread(i); });
}

void Machine::stop_vcpus() {
    {
        std::lock_guard g(event_mutex_);
        stopping_ = true;
    }
    event_cv_.notify_all();
    for (auto& v : vcpus_) v->kick();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    threads_.clear();
}

void Machine::vcpu_thread(unsigned index) {
    Vcpu& vcpu = *vcpus_[index];
    while (!stopping_) {
        VcpuExit e = vcpu.run();
        if (stopping_) break;
        switch (e) {
        case VcpuExit::Kicked: continue;
        case VcpuExit::Shutdown:
            post_event(Event::TripleFault, 0, describe_cpu(vcpu, "triple fault (shutdown)"));
            break;
        case VcpuExit::InternalError:
            post_event(Event::Error, 0,
                       describe_cpu(vcpu, ("internal error: " + vcpu.error).c_str()));
            break;
        case VcpuExit::Halted: break; // a CPU halted for good: it stays so until reset
        }
        // Wait, parked, until the machine stops or resets this vCPU.
        std::unique_lock g(event_mutex_);
        event_cv_.wait(g, [this] { return stopping_.load(); });
    }
}

void Machine::post_event(Event e, int status, std::string message) {
    {
        std::lock_guard g(event_mutex_);
        // The first event wins: a power-off racing a reset is a power-off.
        if (event_ != Event::None) return;
        event_ = e;
        event_status_ = status;
        event_message_ = std::move(message);
    }
    event_cv_.notify_all();
}

void Machine::request_reset() {
    post_event(Event::Reset);
}
void Machine::request_poweroff() {
    post_event(Event::PowerOff);
}
void Machine::request_exit(int status) {
    post_event(Event::Exit, status);
}

int Machine::run() {
    clock_.start();
    start_vcpus();
    for (;;) {
        Event e;
        int status;
        std::string message;
        {
            std::unique_lock g(event_mutex_);
            event_cv_.wait(g, [this] { return event_ != Event::None; });
            e = event_;
            status = event_status_;
            message = std::move(event_message_);
            event_ = Event::None;
        }
        stop_vcpus();
        switch (e) {
        case Event::PowerOff: return 0;
        case Event::Exit: return status;
        case Event::Error: fprintf(stderr, "hvm: %s", message.c_str()); return 1;
        case Event::TripleFault:
            fprintf(stderr, "hvm: %s", message.c_str());
            if (cfg_.no_reboot) return 1;
            break;
        case Event::Reset:
            if (cfg_.no_reboot) return 0;
            break;
        case Event::None: break;
        }
        // Platform reset: every chip, then the boot images and the vCPUs, as a real board does.
        reset_devices(ResetKind::Hard);
        load_boot_images();
        start_vcpus();
    }
}

} // namespace hvm

namespace hvm {
void Machine::set_a20(bool enabled) {
    a20_ = enabled;
    // KVM has no A20 gate (QEMU ignores it there too); the emulator masks address bit 20.
    if (emu_) emu_->set_a20(enabled);
}
} // namespace hvm
