#include "vcpu/emu/emu_engine.hpp"

#include <algorithm>
#include <stdexcept>

namespace hvm::emu {

EmuVcpu::EmuVcpu(EmuEngine& engine, unsigned index, GuestMemory& mem, IoSink& io,
                 CpuInterrupts* interrupts, std::mutex* device_lock)
    : engine_(engine), cpu_(index, mem, io, interrupts, device_lock) {}

EmuVcpu::~EmuVcpu() {
    engine_.remove(&cpu_);
}

VcpuExit EmuVcpu::run() {
    VcpuExit e = cpu_.run();
    if (e == VcpuExit::InternalError) error = cpu_.error;
    return e;
}

EmuEngine::~EmuEngine() {
    if (mem_) mem_->set_write_observer(nullptr);
}

void EmuEngine::map_memory(GuestMemory& mem) {
    bool remap = mem_ != nullptr;
    mem_ = &mem;
    mem.set_write_observer(this);
    // A new layout (PAM shadowing, SMRAM) invalidates every vCPU's TLB, which caches host
    // pointers into the old regions. The A20 generation makes each vCPU flush its TLB at its
    // next port write or instruction batch: exactly what is needed here too.
    if (remap) set_a20(a20());
}

std::unique_ptr<Vcpu> EmuEngine::create_vcpu(unsigned index, IoSink& io,
                                             CpuInterrupts* interrupts) {
    if (!mem_) throw std::logic_error("EmuEngine::create_vcpu before map_memory");
    auto v = std::make_unique<EmuVcpu>(*this, index, *mem_, io, interrupts, device_lock_);
    v->cpu().set_a20_source(&a20_);
    std::lock_guard g(cpus_lock_);
    cpus_.push_back(&v->cpu());
    return v;
}

void EmuEngine::remove(X86Cpu* cpu) {
    std::lock_guard g(cpus_lock_);
    cpus_.erase(std::remove(cpus_.begin(), cpus_.end(), cpu), cpus_.end());
}

void EmuEngine::memory_written(uint64_t gpa, uint64_t len) {
    std::lock_guard g(cpus_lock_);
    for (X86Cpu* c : cpus_) c->memory_written(gpa, len);
}

} // namespace hvm::emu
