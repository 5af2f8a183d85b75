#include "devmodel/ide/piix3_ide.hpp"

#include <cstdio>

namespace hvm {

namespace {
constexpr uint32_t kStateVersion = 1;

// QEMU numbers the four IDE units in creation order: QM00001 primary master .. QM00004.
std::string qemu_serial(unsigned channel, unsigned unit) {
    char s[16];
    std::snprintf(s, sizeof s, "QM%05u", 1 + 2 * (channel & 1) + (unit & 1));
    return s;
}
} // namespace

Piix3Ide::Piix3Ide(IrqPin primary_irq, IrqPin secondary_irq, GuestMemory& memory,
                   block::BlockWorkerPool* pool, std::mutex& device_lock)
    : PciDevice(PciIdentity{kVendor, kDevice, 0x00, kClassIde, 0, pci::kQemuSubsystemVendor,
                            pci::kQemuSubsystem, 0, kStatus}) {
    channels_[0] = std::make_unique<IdeChannel>(0, primary_irq, memory, pool, device_lock, *this);
    channels_[1] = std::make_unique<IdeChannel>(1, secondary_irq, memory, pool, device_lock, *this);
    define_bar(kBusMasterBar, PciBar{PciBarKind::Io, kBusMasterSize, false, &bm_io_,
                                     AccessSizes{1, 4}, "piix3-ide-bmdma"});
}

void Piix3Ide::attach_disk(unsigned channel, unsigned unit,
                           std::unique_ptr<block::BlockDevice> disk,
                           std::optional<IdeGeometry> geometry) {
    std::shared_ptr<block::BlockDevice> d(std::move(disk));
    IdeGeometry g = geometry ? *geometry : (d ? guess_ide_geometry(*d) : IdeGeometry{});
    drive(channel, unit).attach_disk(std::move(d), g, qemu_serial(channel, unit));
}

void Piix3Ide::attach_cdrom(unsigned channel, unsigned unit,
                            std::unique_ptr<block::BlockDevice> medium) {
    drive(channel, unit)
        .attach_cdrom(std::shared_ptr<block::BlockDevice>(std::move(medium)),
                      qemu_serial(channel, unit));
}

void Piix3Ide::map_legacy_ports(Bus& pio) {
    static const char* const cmd_names[2] = {"ide0-cmd", "ide1-cmd"};
    static const char* const ctl_names[2] = {"ide0-ctl", "ide1-ctl"};
    for (unsigned i = 0; i < kChannels; i++) {
        pio.add(kCommandPort[i], 8, &channels_[i]->command_block(), AccessSizes{1, 4},
                cmd_names[i]);
        // One port only: 0x3F7/0x377 belong to the floppy controller's DIR.
        pio.add(kControlPort[i], 1, &channels_[i]->control_block(), AccessSizes{1, 1},
                ctl_names[i]);
    }
}

void Piix3Ide::device_reset(ResetKind) {
    for (auto& ch : channels_) ch->reset();
}

bool Piix3Ide::bus_master_enabled() const {
    return config_word(pci::kCommand) & pci::kCommandMaster;
}

void Piix3Ide::signal_master_abort() {
    set_config_word(pci::kStatus, uint16_t(config_word(pci::kStatus) | pci::kStatusRecMasterAbort));
}

void Piix3Ide::BusMasterIo::io_read(uint64_t offset, std::span<uint8_t> data) {
    d_.channel(unsigned(offset >> 3)).bm_read(unsigned(offset & 7), data);
}

void Piix3Ide::BusMasterIo::io_write(uint64_t offset, std::span<const uint8_t> data) {
    d_.channel(unsigned(offset >> 3)).bm_write(unsigned(offset & 7), data);
}

void Piix3Ide::save_extra(StateWriter& out) const {
    out.begin("piix3-ide-channels", kStateVersion);
    for (auto& ch : channels_) ch->save(out);
}

void Piix3Ide::load_extra(StateReader& in) {
    in.begin("piix3-ide-channels", kStateVersion, kStateVersion);
    for (auto& ch : channels_) ch->load(in);
}

} // namespace hvm
