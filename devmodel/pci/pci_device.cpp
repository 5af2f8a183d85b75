#include "devmodel/pci/pci_device.hpp"

#include <cassert>
#include <stdexcept>

#include "devmodel/pci/pci_bus.hpp"

namespace hvm {

namespace {
constexpr uint32_t kStateVersion = 1;
constexpr uint64_t kIoSpaceEnd = 0x10000;     // the PIO bus decodes 16 address bits
constexpr uint64_t kMem32End = 0xFFFFFFFFull; // QEMU: a 32-bit BAR touching 4G-1 is unmapped
constexpr unsigned kBarEnd = pci::kBar0 + 4 * PciDevice::kBarCount;

[[maybe_unused]] bool is_pow2(uint32_t v) {
    return v && !(v & (v - 1));
}
} // namespace

// ---- BusMapping ----------------------------------------------------------------------------

BusMapping::~BusMapping() {
    if (mapped() && bus_) bus_->remove(base_);
}

void BusMapping::configure(uint64_t length, IoHandler* handler, AccessSizes sizes,
                           std::string name) {
    assert(!mapped());
    length_ = length;
    handler_ = handler;
    sizes_ = sizes;
    name_ = std::move(name);
}

bool BusMapping::set_base(Bus& bus, uint64_t base) {
    if (base == base_ && (&bus == bus_ || !mapped())) return true;
    if (mapped()) {
        bus_->remove(base_);
        base_ = kUnmapped;
    }
    bus_ = &bus;
    if (base == kUnmapped || !handler_ || length_ == 0) return base == kUnmapped;
    try {
        bus.add(base, length_, handler_, sizes_, name_);
    } catch (const std::invalid_argument& e) {
        // A guest may aim a BAR at anything; the strict bus refuses overlaps. Real hardware would
        // decode both and fight on the bus; here the window is simply not there until the guest
        // moves it somewhere free.
        if (refused_.allow())
            LOG_WARN("%s: not mapped at 0x%llx (%s)", name_.c_str(), (unsigned long long)base,
                     e.what());
        return false;
    }
    base_ = base;
    return true;
}

// ---- PciDevice -----------------------------------------------------------------------------

PciDevice::PciDevice(const PciIdentity& id) {
    set_config_word(pci::kVendorId, id.vendor_id);
    set_config_word(pci::kDeviceId, id.device_id);
    set_config_word(pci::kStatus, id.status);
    config_[pci::kRevisionId] = id.revision;
    config_[pci::kClassCode] = uint8_t(id.class_code);
    config_[pci::kClassCode + 1] = uint8_t(id.class_code >> 8);
    config_[pci::kClassCode + 2] = uint8_t(id.class_code >> 16);
    config_[pci::kHeaderType] = id.header_type;
    set_config_word(pci::kSubsystemVendorId, id.subsystem_vendor_id);
    set_config_word(pci::kSubsystemId, id.subsystem_id);
    config_[pci::kInterruptPin] = id.interrupt_pin <= 4 ? id.interrupt_pin : 0;

    // QEMU pci_init_wmask / pci_init_w1cmask: the writable header bits of every function, and
    // the whole device-specific area writable until a chip narrows it.
    uint16_t cmd = pci::kCommandIo | pci::kCommandMemory | pci::kCommandMaster |
                   pci::kCommandIntxDisable | pci::kCommandSerr;
    wmask_[pci::kCommand] = uint8_t(cmd);
    wmask_[pci::kCommand + 1] = uint8_t(cmd >> 8);
    wmask_[pci::kCacheLineSize] = 0xFF;
    wmask_[pci::kInterruptLine] = 0xFF;
    for (unsigned i = pci::kHeaderSize; i < kConfigSize; i++) wmask_[i] = 0xFF;
    uint16_t w1c = pci::kStatusMasterParity | pci::kStatusSigTargetAbort |
                   pci::kStatusRecTargetAbort | pci::kStatusRecMasterAbort |
                   pci::kStatusSigSystemError | pci::kStatusDetectedParity;
    w1cmask_[pci::kStatus] = uint8_t(w1c);
    w1cmask_[pci::kStatus + 1] = uint8_t(w1c >> 8);
}

void PciDevice::set_config_word(unsigned offset, uint16_t v) {
    config_[offset & 0xFF] = uint8_t(v);
    config_[(offset + 1) & 0xFF] = uint8_t(v >> 8);
}

void PciDevice::set_config_dword(unsigned offset, uint32_t v) {
    for (unsigned i = 0; i < 4; i++) config_[(offset + i) & 0xFF] = uint8_t(v >> (8 * i));
}

uint16_t PciDevice::config_word(unsigned offset) const {
    return uint16_t(config_[offset & 0xFF] | config_[(offset + 1) & 0xFF] << 8);
}

uint32_t PciDevice::config_dword(unsigned offset) const {
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++) v |= uint32_t(config_[(offset + i) & 0xFF]) << (8 * i);
    return v;
}

void PciDevice::define_bar(unsigned index, const PciBar& bar) {
    assert(index < kBarCount && bar.handler);
    assert(is_pow2(bar.size) && bar.size >= (bar.kind == PciBarKind::Io ? 4u : 16u));
    assert(bar.kind == PciBarKind::Memory32 || bar.size <= 256); // PCI 3.0 §6.2.5.1
    BarSlot& s = bars_[index];
    s.bar = bar;
    s.mapping.configure(bar.size, bar.handler, bar.sizes, bar.name);
    unsigned reg = pci::kBar0 + 4 * index;
    uint32_t type =
        bar.kind == PciBarKind::Io ? pci::kBarIo : (bar.prefetchable ? pci::kBarMemPrefetch : 0);
    uint32_t low = bar.kind == PciBarKind::Io ? 0x3u : 0xFu;
    set_config_dword(reg, type);
    uint32_t mask = ~(bar.size - 1) & ~low;
    for (unsigned i = 0; i < 4; i++) wmask_[reg + i] = uint8_t(mask >> (8 * i));
}

void PciDevice::define_rom(uint32_t size, IoHandler* handler, std::string name) {
    assert(handler && is_pow2(size) && size >= 0x800);
    BarSlot& s = bars_[kRomSlot];
    s.bar = PciBar{PciBarKind::Memory32, size, false, handler, AccessSizes{1, 4}, name};
    s.mapping.configure(size, handler, AccessSizes{1, 4}, std::move(name));
    set_config_dword(pci::kRomAddress, 0);
    uint32_t mask = (~(size - 1) & pci::kRomAddressMask) | pci::kRomEnable;
    for (unsigned i = 0; i < 4; i++) wmask_[pci::kRomAddress + i] = uint8_t(mask >> (8 * i));
}

void PciDevice::add_capability(uint8_t id, uint8_t offset, uint8_t size) {
    assert(offset >= pci::kHeaderSize && (offset & 3) == 0 && size >= 2 &&
           unsigned(offset) + size <= kConfigSize);
    for (unsigned i = 0; i < size; i++) {
        wmask_[offset + i] = 0;
        w1cmask_[offset + i] = 0;
    }
    config_[offset] = id;
    config_[offset + 1] = config_[pci::kCapabilitiesPointer];
    config_[pci::kCapabilitiesPointer] = offset;
    set_config_word(pci::kStatus, uint16_t(config_word(pci::kStatus) | pci::kStatusCapList));
}

uint32_t PciDevice::config_read(unsigned offset, unsigned size) {
    uint32_t v = 0;
    for (unsigned i = 0; i < size && i < 4; i++)
        v |= uint32_t(config_[(offset + i) & 0xFF]) << (8 * i);
    return v;
}

void PciDevice::config_write(unsigned offset, unsigned size, uint32_t value) {
    if (size > 4 || offset >= kConfigSize || size > kConfigSize - offset) return;
    bool old_intx = intx_effective();
    for (unsigned i = 0; i < size; i++) {
        unsigned a = offset + i;
        uint8_t v = uint8_t(value >> (8 * i));
        config_[a] = uint8_t((config_[a] & ~wmask_[a]) | (v & wmask_[a]));
        config_[a] &= uint8_t(~(v & w1cmask_[a]));
    }
    if (overlaps(offset, size, pci::kCommand, 2) ||
        overlaps(offset, size, pci::kBar0, kBarEnd - pci::kBar0) ||
        overlaps(offset, size, pci::kRomAddress, 4))
        update_mappings();
    if (overlaps(offset, size, pci::kCommand, 2)) intx_changed(old_intx);
    config_written(offset, size);
}

uint64_t PciDevice::mapped_base(unsigned slot) const {
    return slot <= kRomSlot ? bars_[slot].mapping.base() : BusMapping::kUnmapped;
}

// Where a BAR decodes now (QEMU pci_bar_address): nowhere while its space is disabled in the
// command register, while a ROM's enable bit is clear, at address 0, or when the window would
// wrap or touch 4G-1 (a BAR being sized reads back all-ones and must not be mapped there).
uint64_t PciDevice::bar_target(unsigned slot) const {
    const PciBar& b = bars_[slot].bar;
    if (b.size == 0) return BusMapping::kUnmapped;
    uint16_t cmd = config_word(pci::kCommand);
    uint64_t addr;
    if (slot == kRomSlot) {
        uint32_t reg = config_dword(pci::kRomAddress);
        if (!(cmd & pci::kCommandMemory) || !(reg & pci::kRomEnable)) return BusMapping::kUnmapped;
        addr = reg & pci::kRomAddressMask & ~(b.size - 1);
    } else {
        uint32_t reg = config_dword(pci::kBar0 + 4 * slot);
        if (b.kind == PciBarKind::Io) {
            if (!(cmd & pci::kCommandIo)) return BusMapping::kUnmapped;
            addr = reg & ~3u & ~(b.size - 1);
        } else {
            if (!(cmd & pci::kCommandMemory)) return BusMapping::kUnmapped;
            addr = reg & ~0xFu & ~(b.size - 1);
        }
    }
    uint64_t last = addr + b.size - 1;
    if (addr == 0 || last >= kMem32End) return BusMapping::kUnmapped;
    if (b.kind == PciBarKind::Io && slot != kRomSlot && last >= kIoSpaceEnd)
        return BusMapping::kUnmapped;
    return addr;
}

void PciDevice::update_mappings() {
    if (!bus_) return;
    for (unsigned slot = 0; slot <= kRomSlot; slot++) {
        BarSlot& s = bars_[slot];
        if (s.bar.size == 0) continue;
        Bus& target =
            (s.bar.kind == PciBarKind::Io && slot != kRomSlot) ? bus_->pio() : bus_->mmio();
        s.mapping.set_base(target, bar_target(slot));
    }
}

bool PciDevice::intx_effective() const {
    return intx_level_ && !(config_word(pci::kCommand) & pci::kCommandIntxDisable);
}

void PciDevice::intx_changed(bool old_effective) {
    bool now = intx_effective();
    if (now == old_effective) return;
    uint8_t pin = config_[pci::kInterruptPin];
    if (bus_ && pin >= 1 && pin <= 4) bus_->irq_router().set_intx(devfn_, pin - 1, now);
}

void PciDevice::set_intx(bool level) {
    bool old = intx_effective();
    intx_level_ = level;
    // PCI 2.3 Interrupt Status: reflects the pin's state regardless of Interrupt Disable.
    uint16_t st = config_word(pci::kStatus);
    st = level ? (st | pci::kStatusInterrupt) : (st & ~pci::kStatusInterrupt);
    set_config_word(pci::kStatus, st);
    intx_changed(old);
}

void PciDevice::attach(PciBus* bus, uint8_t devfn) {
    bus_ = bus;
    devfn_ = devfn;
    if (!initial_taken_) {
        initial_ = config_;
        initial_taken_ = true;
    }
    update_mappings();
    sync_derived_state();
}

void PciDevice::reset(ResetKind kind) {
    if (!initial_taken_) {
        initial_ = config_;
        initial_taken_ = true;
    }
    set_intx(false);
    if (kind == ResetKind::PowerOn) config_ = initial_;
    device_reset(kind);
    // QEMU pci_do_device_reset: every writable command/status bit, the interrupt line, the cache
    // line size and all BARs go back to zero (BARs keep their read-only type bits).
    for (unsigned a : {pci::kCommand, pci::kCommand + 1, pci::kStatus, pci::kStatus + 1})
        config_[a] &= uint8_t(~(wmask_[a] | w1cmask_[a]));
    config_[pci::kInterruptLine] &= uint8_t(~wmask_[pci::kInterruptLine]);
    config_[pci::kCacheLineSize] = 0;
    for (unsigned i = 0; i < kBarCount; i++) {
        const PciBar& b = bars_[i].bar;
        if (b.size == 0) continue;
        set_config_dword(pci::kBar0 + 4 * i, b.kind == PciBarKind::Io
                                                 ? pci::kBarIo
                                                 : (b.prefetchable ? pci::kBarMemPrefetch : 0));
    }
    if (bars_[kRomSlot].bar.size) set_config_dword(pci::kRomAddress, 0);
    update_mappings();
    sync_derived_state();
}

void PciDevice::save(StateWriter& out) const {
    out.begin(name(), kStateVersion);
    out.put_bytes(config_);
    out.put<uint8_t>(intx_level_);
    save_extra(out);
}

void PciDevice::load(StateReader& in) {
    in.begin(name(), kStateVersion, kStateVersion);
    std::array<uint8_t, kConfigSize> cfg;
    in.get_bytes(cfg);
    uint8_t intx = in.get<uint8_t>();
    if (intx > 1) throw StateError(std::string(name()) + ": bad INTx level");
    // The state must belong to this function: same identity, same read-only header.
    for (unsigned a : {0u, 1u, 2u, 3u, 8u, 9u, 10u, 11u, 14u, 0x2Cu, 0x2Du, 0x2Eu, 0x2Fu, 0x3Du})
        if (cfg[a] != config_[a])
            throw StateError(std::string(name()) + ": config identity differs");
    bool old_intx = intx_effective();
    // Bits no guest can write keep this build's values (state files are untrusted); the
    // interrupt status bit is re-derived from the pin below.
    for (unsigned a = 0; a < kConfigSize; a++) {
        uint8_t writable = wmask_[a] | w1cmask_[a];
        config_[a] = uint8_t((cfg[a] & writable) | (config_[a] & ~writable));
    }
    load_extra(in);
    update_mappings();
    sync_derived_state();
    intx_level_ = intx != 0;
    uint16_t st = config_word(pci::kStatus);
    set_config_word(pci::kStatus,
                    intx_level_ ? (st | pci::kStatusInterrupt) : (st & ~pci::kStatusInterrupt));
    intx_changed(old_intx);
}

} // namespace hvm
