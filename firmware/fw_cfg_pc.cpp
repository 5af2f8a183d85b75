#include "firmware/fw_cfg_pc.hpp"

#include "base/error.hpp"

namespace hvm {

namespace {

// QEMU hw/timer/hpet.c: struct hpet_fw_config {u8 count; {le32 id; le64 addr; le16 min_tick;
// u8 page_prot} hpet[8]}, packed.
constexpr size_t kHpetFwEntries = 8;
constexpr size_t kHpetFwEntrySize = 15;

std::vector<uint8_t> hpet_fw_config(bool hpet) {
    std::vector<uint8_t> b(1 + kHpetFwEntries * kHpetFwEntrySize, 0);
    if (hpet) {
        b[0] = 1;
        for (int i = 0; i < 4; i++) b[1 + i] = uint8_t(acpi::kHpetBlockId >> (8 * i));
        for (int i = 0; i < 8; i++) b[5 + i] = uint8_t(uint64_t(acpi::kHpetAddr) >> (8 * i));
    }
    return b;
}

} // namespace

std::vector<uint8_t> pc_system_states(bool s3, bool s4) {
    constexpr uint8_t kEnabled = 0x80;
    // S0 on; S1, S2 off; S3 = SLP_TYP 1, S4 = SLP_TYP 2, S5 = SLP_TYP 0 (QEMU piix4_pm_realize).
    return {kEnabled, 0, 0, uint8_t(s3 ? kEnabled | 1 : 1), uint8_t(s4 ? kEnabled | 2 : 2),
            kEnabled};
}

void populate_pc_fw_cfg(FwCfg& fw, const PcFwCfgConfig& cfg) {
    using namespace fw_cfg;
    if (cfg.present_cpus == 0 || cfg.max_cpus < cfg.present_cpus || cfg.max_cpus > 255)
        fail("fw_cfg: CPU counts must satisfy 1 <= cpus <= maxcpus <= 255");
    if (cfg.ram_size == 0) fail("fw_cfg: no RAM");
    if (cfg.e820.empty() || cfg.e820.size() % 20) fail("fw_cfg: etc/e820 must be 20-byte entries");

    fw.add_item(kUuid, std::vector<uint8_t>(cfg.uuid.begin(), cfg.uuid.end()));
    fw.add_u64(kRamSize, cfg.ram_size);
    fw.add_u16(kNoGraphic, cfg.nographic ? 1 : 0);
    fw.add_u16(kNbCpus, uint16_t(cfg.present_cpus));
    fw.add_u16(kMaxCpus, uint16_t(cfg.max_cpus));
    // NUMA: le64 node count (0), then a le64 node per possible CPU and per node.
    fw.add_item(kNuma, std::vector<uint8_t>(8 * (1 + cfg.max_cpus), 0));
    fw.add_u16(kBootMenu, cfg.boot_menu ? 1 : 0);
    fw.add_u16(kAcpiTables, 0);    // no legacy -acpitable blobs
    fw.add_u16(kSmbiosEntries, 0); // no legacy SMBIOS entries: the tables are files
    fw.add_u32(kIrq0Override, cfg.irq0_override ? 1 : 0);
    fw.add_u32(kE820Table, 0); // legacy reserved-range table, empty: etc/e820 is authoritative
    fw.add_item(kHpet, hpet_fw_config(cfg.hpet));

    PcAcpiBlobs acpi = build_pc_acpi(cfg.acpi);
    fw.add_file(acpi::kRsdpFile, std::move(acpi.rsdp));
    fw.add_file(acpi::kTablesFile, std::move(acpi.tables));
    fw.add_file(acpi::kLoaderFile, std::move(acpi.loader));

    SmbiosConfig sm = cfg.smbios;
    SmbiosTables smb = build_smbios(sm);
    fw.add_file(smbios::kAnchorFile, std::vector<uint8_t>(smb.anchor.begin(), smb.anchor.end()));
    fw.add_file(smbios::kTablesFile, std::move(smb.tables));

    fw.add_file("etc/e820", cfg.e820);
    std::vector<uint8_t> wait(4);
    for (int i = 0; i < 4; i++) wait[i] = uint8_t(cfg.boot_fail_wait >> (8 * i));
    fw.add_file("etc/boot-fail-wait", std::move(wait));
    fw.add_file("etc/system-states", pc_system_states(cfg.acpi.s3, cfg.acpi.s4));
    fw.add_file("bootorder", std::vector<uint8_t>(cfg.bootorder.begin(), cfg.bootorder.end()));
    fw.add_file("bios-geometry", {});
}

void add_option_rom(FwCfg& fw, std::string_view name, std::vector<uint8_t> rom) {
    if (name.empty() || name.find('/') != name.npos) fail("option ROM name must be a file name");
    if (rom.empty()) fail("option ROM '" + std::string(name) + "' is empty");
    fw.add_file("genroms/" + std::string(name), std::move(rom));
}

void add_linux_boot(FwCfg& fw, const LinuxBootFwCfg& b) {
    using namespace fw_cfg;
    if (b.setup.empty() || b.kernel.empty()) fail("-kernel: empty setup or kernel image");
    fw.add_u32(kSetupAddr, b.setup_addr);
    fw.add_u32(kSetupSize, uint32_t(b.setup.size()));
    fw.add_item(kSetupData, b.setup);
    fw.add_u32(kKernelAddr, b.kernel_addr);
    fw.add_u32(kKernelSize, uint32_t(b.kernel.size()));
    fw.add_item(kKernelData, b.kernel);
    fw.add_u32(kInitrdAddr, b.initrd_addr);
    fw.add_u32(kInitrdSize, uint32_t(b.initrd.size()));
    fw.add_item(kInitrdData, b.initrd);
    fw.add_u32(kCmdlineAddr, b.cmdline_addr);
    fw.add_u32(kCmdlineSize, uint32_t(b.cmdline.size() + 1));
    fw.add_string(kCmdlineData, b.cmdline);
}

} // namespace hvm
