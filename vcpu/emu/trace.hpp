// Diagnosis hooks (QEMU's -d in_asm,int,cpu_reset): the machine installs an EmuTrace to log
// executed instructions (it owns the disassembler), delivered events and resets. With no trace
// installed the cost is one pointer test per instruction.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hvm::emu {

class EmuTrace {
  public:
    virtual ~EmuTrace() = default;
    // Before executing an instruction: `bytes` are its `len` bytes (already fetched).
    virtual void insn(unsigned vcpu, uint16_t cs, uint64_t rip, bool mode64, bool def32,
                      const uint8_t* bytes, size_t len) = 0;
    // An interrupt or exception being delivered (before the IDT/IVT is read).
    virtual void event(unsigned vcpu, uint8_t vector, bool has_error, uint32_t error, uint16_t cs,
                       uint64_t rip, uint64_t cr2) = 0;
    // INIT/reset of the vCPU.
    virtual void cpu_reset(unsigned vcpu) = 0;
};

} // namespace hvm::emu
