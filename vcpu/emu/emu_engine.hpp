// hvm's own x86 engine ("-accel emu"): an interpreter per vCPU thread, interrupts from the device
// model's PIC/IOAPIC/LAPIC through CpuInterrupts.
#pragma once
#include <memory>
#include <mutex>
#include <vector>

#include "vcpu/emu/x86_cpu.hpp"
#include "vcpu/engine.hpp"
#include "vcpu/guest_memory.hpp"

namespace hvm::emu {

class EmuEngine;

class EmuVcpu final : public Vcpu {
  public:
    EmuVcpu(EmuEngine& engine, unsigned index, GuestMemory& mem, IoSink& io,
            CpuInterrupts* interrupts, std::mutex* device_lock);
    ~EmuVcpu() override;
    unsigned index() const override { return cpu_.index(); }
    VcpuExit run() override;
    void kick() override { cpu_.kick(); }
    void get_state(CpuState& out) override { cpu_.get_state(out); }
    void set_state(const CpuState& in) override { cpu_.set_state(in); }
    size_t read_code(uint64_t linear, uint8_t* out, size_t len) override {
        return cpu_.read_code(linear, out, len);
    }
    X86Cpu& cpu() { return cpu_; }
    void set_trace(EmuTrace* trace) { cpu_.set_trace(trace); }

  private:
    EmuEngine& engine_;
    X86Cpu cpu_;
};

class EmuEngine final : public Engine, public MemoryWriteObserver {
  public:
    // `device_lock` is the device-model lock that CpuInterrupts::acknowledge_* and the LAPIC MSR
    // calls need; null when there is no device model (unit tests).
    explicit EmuEngine(std::mutex* device_lock) : device_lock_(device_lock) {}
    ~EmuEngine() override;
    const char* name() const override { return "emu"; }
    bool in_kernel_irqchip() const override { return false; }
    void map_memory(GuestMemory& mem) override;
    std::unique_ptr<Vcpu> create_vcpu(unsigned index, IoSink& io,
                                      CpuInterrupts* interrupts) override;
    // DMA and loader writes: drop decoded code of those pages in every vCPU.
    void memory_written(uint64_t gpa, uint64_t len) override;
    // The A20 gate (PlatformControl::set_a20 from port 0x92 / the i8042): closed, physical
    // address bit 20 reads as 0 for every vCPU (QEMU's pc under TCG does the same). Open at
    // power-on. A vCPU sees a change after its next port write or instruction batch.
    void set_a20(bool enabled) {
        uint32_t v = a20_.load();
        a20_.store((((v >> 1) + 1) << 1) | (enabled ? 1 : 0), std::memory_order_release);
    }
    bool a20() const { return a20_.load() & 1; }

  private:
    friend class EmuVcpu;
    void remove(X86Cpu* cpu);
    std::mutex* device_lock_;
    GuestMemory* mem_ = nullptr;
    std::mutex cpus_lock_;
    std::vector<X86Cpu*> cpus_;
    std::atomic<uint32_t> a20_{1};
};

} // namespace hvm::emu
