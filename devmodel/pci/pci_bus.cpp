#include "devmodel/pci/pci_bus.hpp"

#include <stdexcept>
#include <string>

namespace hvm {

namespace {
constexpr uint32_t kStateVersion = 1;
constexpr unsigned kDataOffset = 4; // 0xCFC within the window
constexpr unsigned kRcrOffset = 1;  // 0xCF9 within the window

uint32_t all_ones(unsigned size) {
    return size >= 4 ? 0xFFFFFFFFu : (1u << (8 * size)) - 1;
}
} // namespace

PciBus::PciBus(Bus& pio, Bus& mmio, PciIrqRouter& irq_router)
    : pio_(pio), mmio_(mmio), irq_router_(irq_router) {}

void PciBus::attach(PciDevice& dev, uint8_t devfn) {
    if (devices_[devfn])
        throw std::invalid_argument("pci: slot " + std::to_string(devfn >> 3) + "." +
                                    std::to_string(devfn & 7) + " is already taken");
    if (dev.bus_)
        throw std::invalid_argument(std::string("pci: ") + dev.name() + " attached twice");
    devices_[devfn] = &dev;
    dev.attach(this, devfn);
}

uint32_t PciBus::config_read(uint8_t bus, uint8_t devfn, unsigned offset, unsigned size) {
    PciDevice* dev = bus == 0 ? devices_[devfn] : nullptr;
    if (!dev || (size != 1 && size != 2 && size != 4) || offset >= PciDevice::kConfigSize ||
        size > PciDevice::kConfigSize - offset)
        return all_ones(size);
    return dev->config_read(offset, size);
}

void PciBus::config_write(uint8_t bus, uint8_t devfn, unsigned offset, unsigned size,
                          uint32_t value) {
    PciDevice* dev = bus == 0 ? devices_[devfn] : nullptr;
    if (!dev || (size != 1 && size != 2 && size != 4) || offset >= PciDevice::kConfigSize ||
        size > PciDevice::kConfigSize - offset)
        return;
    dev->config_write(offset, size, value);
}

void PciBus::ConfigIo::io_read(uint64_t offset, std::span<uint8_t> data) {
    unsigned size = unsigned(data.size());
    if (offset < kDataOffset) {
        if (offset == kRcrOffset && size == 1 && bus_.rcr_) {
            bus_.rcr_->io_read(0, data);
            return;
        }
        for (unsigned i = 0; i < size; i++) {
            uint64_t o = offset + i;
            data[i] = o < kDataOffset ? uint8_t(bus_.config_address_ >> (8 * o)) : 0xFF;
        }
        return;
    }
    unsigned byte = unsigned(offset - kDataOffset);
    uint32_t addr = bus_.config_address_;
    // An access running past 0xCFF is not a configuration cycle (QEMU rejects unaligned ones).
    if (!(addr & kConfigEnable) || byte + size > 4) {
        le_store(data, all_ones(size));
        return;
    }
    le_store(data,
             bus_.config_read(uint8_t(addr >> 16), uint8_t(addr >> 8), (addr & 0xFC) + byte, size));
}

void PciBus::ConfigIo::io_write(uint64_t offset, std::span<const uint8_t> data) {
    unsigned size = unsigned(data.size());
    if (offset < kDataOffset) {
        if (offset == 0 && size == 4) {
            bus_.config_address_ = uint32_t(le_load(data));
        } else if (offset == kRcrOffset && size == 1 && bus_.rcr_) {
            bus_.rcr_->io_write(0, data);
        }
        // Other byte/word cycles at 0xCF8-0xCFB are not CONFIG_ADDRESS writes.
        return;
    }
    unsigned byte = unsigned(offset - kDataOffset);
    uint32_t addr = bus_.config_address_;
    if (!(addr & kConfigEnable) || byte + size > 4) return;
    bus_.config_write(uint8_t(addr >> 16), uint8_t(addr >> 8), (addr & 0xFC) + byte, size,
                      uint32_t(le_load(data)));
}

void PciBus::reset(ResetKind) {
    config_address_ = 0;
}

void PciBus::save(StateWriter& out) const {
    out.begin(name(), kStateVersion);
    out.put(config_address_);
}

void PciBus::load(StateReader& in) {
    in.begin(name(), kStateVersion, kStateVersion);
    config_address_ = in.get<uint32_t>(); // any value is one a guest can latch
}

} // namespace hvm
