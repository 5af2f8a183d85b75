// The device model's end of every vCPU exit: one IoSink shared by all vCPUs and both engines.
// It takes the device-model lock, loops REP string I/O element by element, and routes each access
// to the PIO bus, the vCPU's own local APIC page (userspace irqchip only: the LAPIC is per CPU, not
// on the shared bus) or the MMIO bus.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "vcpu/engine.hpp"
#include "vmexit/bus.hpp"

namespace hvm {

class ExitDispatcher : public IoSink {
  public:
    ExitDispatcher(std::mutex& device_lock, Bus& pio, Bus& mmio)
        : lock_(device_lock), pio_(pio), mmio_(mmio) {}

    // Userspace irqchip: vCPU i's local APIC register page. `base` is read on every MMIO exit so
    // that IA32_APIC_BASE relocation takes effect at once.
    struct LocalApicWindow {
        IoHandler* handler = nullptr;
        std::atomic<uint64_t>* base = nullptr; // page-aligned; 0 = APIC disabled
    };
    void set_local_apics(std::vector<LocalApicWindow> windows) { apics_ = std::move(windows); }

    void handle_io(IoRequest& req) override;

    uint64_t pio_exits() const { return pio_exits_.load(std::memory_order_relaxed); }
    uint64_t mmio_exits() const { return mmio_exits_.load(std::memory_order_relaxed); }

  private:
    void mmio_access(unsigned vcpu, uint64_t addr, uint8_t* data, unsigned size, bool is_write);
    std::mutex& lock_;
    Bus& pio_;
    Bus& mmio_;
    std::vector<LocalApicWindow> apics_;
    std::atomic<uint64_t> pio_exits_{0}, mmio_exits_{0};
};

} // namespace hvm
