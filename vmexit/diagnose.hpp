// What hvm prints when a vCPU cannot go on (triple fault, engine internal error): the registers
// in the layout of QEMU's "info registers" / cpu_dump_state, and the instructions at CS:RIP
// disassembled with capstone in the mode the CPU is in. Works for every engine: it only uses
// Vcpu::get_state and Vcpu::read_code.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "vcpu/engine.hpp"

namespace hvm {

// "vCPU n: <why>", the register dump and the code at CS:RIP.
std::string describe_cpu(Vcpu& vcpu, const char* why);

// The register dump alone (no trailing newline issues: every line ends with '\n').
std::string format_cpu_state(const CpuState& s);

// 16, 32 or 64: the default operand size of the code CS:RIP points at. Real mode and virtual-8086
// mode are 16-bit; in long mode CS.L selects 64-bit; otherwise CS.D does.
unsigned code_bits(const CpuState& s);

// The linear address of CS:RIP (CS.base ignored in 64-bit mode; IP/EIP truncated to the mode).
uint64_t code_linear_address(const CpuState& s);

struct DisasmLine {
    uint64_t address = 0; // as given (IP/EIP/RIP of the instruction)
    std::vector<uint8_t> bytes;
    std::string text; // "mov eax, 1"; "(bad)" for bytes capstone cannot decode
};

// Decodes up to `max_insns` instructions from `code`. Undecodable bytes become one "(bad)" line
// each, so the listing still shows what is there.
std::vector<DisasmLine> disassemble_x86(const uint8_t* code, size_t len, uint64_t address,
                                        unsigned bits, size_t max_insns);

} // namespace hvm
