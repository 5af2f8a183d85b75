#include "vmexit/dispatch.hpp"

namespace hvm {

void ExitDispatcher::handle_io(IoRequest& req) {
    if (req.size != 1 && req.size != 2 && req.size != 4 && req.size != 8) return;
    std::lock_guard g(lock_);
    if (req.kind == IoRequest::Kind::Pio) {
        pio_exits_.fetch_add(1, std::memory_order_relaxed);
        uint16_t port = static_cast<uint16_t>(req.addr);
        for (uint32_t i = 0; i < req.count; i++) {
            uint8_t* d = req.data + size_t(i) * req.size;
            if (req.is_write)
                pio_.write(port, std::span<const uint8_t>(d, req.size));
            else
                pio_.read(port, std::span<uint8_t>(d, req.size));
        }
        return;
    }
    mmio_exits_.fetch_add(1, std::memory_order_relaxed);
    for (uint32_t i = 0; i < req.count; i++)
        mmio_access(req.vcpu, req.addr + uint64_t(i) * req.size, req.data + size_t(i) * req.size,
                    req.size, req.is_write);
}

void ExitDispatcher::mmio_access(unsigned vcpu, uint64_t addr, uint8_t* data, unsigned size,
                                 bool is_write) {
    if (vcpu < apics_.size() && apics_[vcpu].handler) {
        uint64_t base = apics_[vcpu].base->load(std::memory_order_relaxed);
        if (base && addr - base < 0x1000) {
            uint64_t off = addr - base;
            // The xAPIC registers are 32 bits wide at 16-byte strides; other sizes or a straddle
            // of the page end are dropped / read as zero, like the hardware's undefined result.
            if (size == 4 && (off & 3) == 0) {
                if (is_write)
                    apics_[vcpu].handler->io_write(off, std::span<const uint8_t>(data, 4));
                else
                    apics_[vcpu].handler->io_read(off, std::span<uint8_t>(data, 4));
            } else if (!is_write) {
                for (unsigned i = 0; i < size; i++) data[i] = 0;
            }
            return;
        }
    }
    if (is_write)
        mmio_.write(addr, std::span<const uint8_t>(data, size));
    else
        mmio_.read(addr, std::span<uint8_t>(data, size));
}

} // namespace hvm
