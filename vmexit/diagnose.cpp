#include "vmexit/diagnose.hpp"

#include <capstone/capstone.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace hvm {

namespace {

constexpr uint64_t kCr0Pe = 1u << 0;
constexpr uint64_t kEferLma = 1u << 10;
constexpr uint64_t kRflagsVm = 1u << 17;
constexpr size_t kCodeBytes = 48;
constexpr size_t kCodeInsns = 8;

void appendf(std::string& out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string& out, const char* fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) out.append(buf, std::min<size_t>(size_t(n), sizeof buf - 1));
}

bool long_mode(const CpuState& s) {
    return (s.efer & kEferLma) != 0;
}
bool protected_mode(const CpuState& s) {
    return (s.cr0 & kCr0Pe) != 0;
}

// The descriptor's attribute bits in their place in the high dword (bits 8-23), as QEMU prints
// them.
uint32_t descriptor_flags(const Segment& g) {
    return (uint32_t(g.type & 0xf) << 8) | (uint32_t(g.s & 1) << 12) | (uint32_t(g.dpl & 3) << 13) |
           (uint32_t(g.present & 1) << 15) | (uint32_t(g.avl & 1) << 20) |
           (uint32_t(g.l & 1) << 21) | (uint32_t(g.db & 1) << 22) | (uint32_t(g.g & 1) << 23);
}

void format_segment(std::string& out, const CpuState& s, const char* name, const Segment& g) {
    const bool lma = long_mode(s);
    if (lma)
        appendf(out, "%-3s=%04x %016" PRIx64 " %08x %08x", name, g.selector, g.base, g.limit,
                descriptor_flags(g));
    else
        appendf(out, "%-3s=%04x %08" PRIx64 " %08x %08x", name, g.selector, g.base & 0xffffffff,
                g.limit, descriptor_flags(g));
    if (protected_mode(s) && g.present && !g.unusable) {
        appendf(out, " DPL=%u ", g.dpl & 3);
        if (g.s) {
            if (g.type & 8) { // code: conforming, readable
                out += g.l ? "CS64" : g.db ? "CS32" : "CS16";
                appendf(out, " [%c%c", (g.type & 4) ? 'C' : '-', (g.type & 2) ? 'R' : '-');
            } else { // data: expand-down, writable
                out += (g.db || lma) ? "DS  " : "DS16";
                appendf(out, " [%c%c", (g.type & 4) ? 'E' : '-', (g.type & 2) ? 'W' : '-');
            }
            appendf(out, "%c]", (g.type & 1) ? 'A' : '-');
        } else {
            // System descriptor types (SDM Vol. 3 table 3-2), legacy and IA-32e meanings.
            static constexpr const char* legacy[16] = {
                "Reserved",   "TSS16-avl",  "LDT",       "TSS16-busy", "CallGate16", "TaskGate",
                "IntGate16",  "TrapGate16", "Reserved",  "TSS32-avl",  "Reserved",   "TSS32-busy",
                "CallGate32", "Reserved",   "IntGate32", "TrapGate32"};
            static constexpr const char* ia32e[16] = {
                "Reserved",   "Reserved", "LDT",       "Reserved",  "Reserved", "Reserved",
                "Reserved",   "Reserved", "Reserved",  "TSS64-avl", "Reserved", "TSS64-busy",
                "CallGate64", "Reserved", "IntGate64", "TrapGate64"};
            out += (lma ? ia32e : legacy)[g.type & 0xf];
        }
    }
    out += '\n';
}

std::string flag_letters(uint64_t f) {
    std::string r = "[";
    r += (f & (1u << 10)) ? 'D' : '-';
    r += (f & (1u << 11)) ? 'O' : '-';
    r += (f & (1u << 7)) ? 'S' : '-';
    r += (f & (1u << 6)) ? 'Z' : '-';
    r += (f & (1u << 4)) ? 'A' : '-';
    r += (f & (1u << 2)) ? 'P' : '-';
    r += (f & (1u << 0)) ? 'C' : '-';
    r += ']';
    return r;
}

} // namespace

unsigned code_bits(const CpuState& s) {
    if (!protected_mode(s) || (s.rflags & kRflagsVm)) return 16;
    if (long_mode(s) && s.seg[CS].l) return 64;
    return s.seg[CS].db ? 32 : 16;
}

uint64_t code_linear_address(const CpuState& s) {
    switch (code_bits(s)) {
    case 64: return s.rip;
    case 32:
        return (s.seg[CS].base + (s.rip & 0xffffffff)) & (long_mode(s) ? ~0ull : 0xffffffffull);
    default:
        // Real mode: CS.base + IP, 21 bits at most (FFFF:FFFF); protected 16-bit: 32 bits.
        return (s.seg[CS].base + (s.rip & 0xffff)) & (long_mode(s) ? ~0ull : 0xffffffffull);
    }
}

std::string format_cpu_state(const CpuState& s) {
    std::string out;
    const unsigned cpl =
        protected_mode(s) ? ((s.rflags & kRflagsVm) ? 3u : s.seg[SS].dpl & 3u) : 0u;
    if (long_mode(s)) {
        static constexpr const char* names[16] = {"RAX", "RBX", "RCX", "RDX", "RSI", "RDI",
                                                  "RBP", "RSP", "R8 ", "R9 ", "R10", "R11",
                                                  "R12", "R13", "R14", "R15"};
        static constexpr unsigned order[16] = {RAX, RBX, RCX, RDX, RSI, RDI, RBP, RSP,
                                               R8,  R9,  R10, R11, R12, R13, R14, R15};
        for (unsigned i = 0; i < 16; i++)
            appendf(out, "%s=%016" PRIx64 "%c", names[i], s.gpr[order[i]],
                    (i % 4 == 3) ? '\n' : ' ');
        appendf(out, "RIP=%016" PRIx64 " RFL=%08" PRIx64 " %s CPL=%u II=%u HLT=%u\n", s.rip,
                s.rflags, flag_letters(s.rflags).c_str(), cpl, s.interrupt_shadow ? 1 : 0,
                s.halted ? 1 : 0);
    } else {
        appendf(out, "EAX=%08" PRIx64 " EBX=%08" PRIx64 " ECX=%08" PRIx64 " EDX=%08" PRIx64 "\n",
                s.gpr[RAX] & 0xffffffff, s.gpr[RBX] & 0xffffffff, s.gpr[RCX] & 0xffffffff,
                s.gpr[RDX] & 0xffffffff);
        appendf(out, "ESI=%08" PRIx64 " EDI=%08" PRIx64 " EBP=%08" PRIx64 " ESP=%08" PRIx64 "\n",
                s.gpr[RSI] & 0xffffffff, s.gpr[RDI] & 0xffffffff, s.gpr[RBP] & 0xffffffff,
                s.gpr[RSP] & 0xffffffff);
        appendf(out, "EIP=%08" PRIx64 " EFL=%08" PRIx64 " %s CPL=%u II=%u HLT=%u\n",
                s.rip & 0xffffffff, s.rflags & 0xffffffff, flag_letters(s.rflags).c_str(), cpl,
                s.interrupt_shadow ? 1 : 0, s.halted ? 1 : 0);
    }
    static constexpr const char* seg_names[6] = {"ES", "CS", "SS", "DS", "FS", "GS"};
    for (unsigned i = 0; i < 6; i++) format_segment(out, s, seg_names[i], s.seg[i]);
    format_segment(out, s, "LDT", s.seg[LDTR]);
    format_segment(out, s, "TR", s.seg[TR]);
    if (long_mode(s)) {
        appendf(out, "GDT=     %016" PRIx64 " %08x\n", s.gdt.base, s.gdt.limit);
        appendf(out, "IDT=     %016" PRIx64 " %08x\n", s.idt.base, s.idt.limit);
        appendf(out, "CR0=%08" PRIx64 " CR2=%016" PRIx64 " CR3=%016" PRIx64 " CR4=%08" PRIx64 "\n",
                s.cr0, s.cr2, s.cr3, s.cr4);
        for (int i = 0; i < 4; i++) appendf(out, "DR%d=%016" PRIx64 " ", i, s.dr[i]);
        appendf(out, "\nDR6=%016" PRIx64 " DR7=%016" PRIx64 "\n", s.dr[6], s.dr[7]);
    } else {
        appendf(out, "GDT=     %08" PRIx64 " %08x\n", s.gdt.base & 0xffffffff, s.gdt.limit);
        appendf(out, "IDT=     %08" PRIx64 " %08x\n", s.idt.base & 0xffffffff, s.idt.limit);
        appendf(out, "CR0=%08" PRIx64 " CR2=%08" PRIx64 " CR3=%08" PRIx64 " CR4=%08" PRIx64 "\n",
                s.cr0 & 0xffffffff, s.cr2 & 0xffffffff, s.cr3 & 0xffffffff, s.cr4 & 0xffffffff);
        for (int i = 0; i < 4; i++) appendf(out, "DR%d=%08" PRIx64 " ", i, s.dr[i] & 0xffffffff);
        appendf(out, "\nDR6=%08" PRIx64 " DR7=%08" PRIx64 "\n", s.dr[6] & 0xffffffff,
                s.dr[7] & 0xffffffff);
    }
    appendf(out, "EFER=%016" PRIx64 " CR8=%" PRIx64 " APIC_BASE=%016" PRIx64 "\n", s.efer,
            s.cr8 & 0xf, s.apic_base);
    return out;
}

std::vector<DisasmLine> disassemble_x86(const uint8_t* code, size_t len, uint64_t address,
                                        unsigned bits, size_t max_insns) {
    std::vector<DisasmLine> lines;
    const cs_mode mode = bits == 64 ? CS_MODE_64 : bits == 32 ? CS_MODE_32 : CS_MODE_16;
    csh handle;
    if (cs_open(CS_ARCH_X86, mode, &handle) != CS_ERR_OK) return lines;
    cs_insn* insn = cs_malloc(handle);
    size_t off = 0;
    while (off < len && lines.size() < max_insns) {
        const uint8_t* p = code + off;
        size_t left = len - off;
        uint64_t addr = address + off;
        DisasmLine line;
        if (cs_disasm_iter(handle, &p, &left, &addr, insn)) {
            line.address = insn->address;
            line.bytes.assign(insn->bytes, insn->bytes + insn->size);
            line.text = insn->mnemonic;
            if (insn->op_str[0]) line.text += std::string(" ") + insn->op_str;
            off += insn->size;
        } else {
            line.address = address + off;
            line.bytes.push_back(code[off]);
            line.text = "(bad)";
            off++;
        }
        lines.push_back(std::move(line));
    }
    cs_free(insn, 1);
    cs_close(&handle);
    return lines;
}

std::string describe_cpu(Vcpu& vcpu, const char* why) {
    std::string out;
    appendf(out, "vCPU %u: %s\n", vcpu.index(), why ? why : "");
    if (!vcpu.error.empty() && (!why || !std::strstr(why, vcpu.error.c_str())))
        out += vcpu.error + "\n";
    CpuState s;
    vcpu.get_state(s);
    out += format_cpu_state(s);

    const unsigned bits = code_bits(s);
    const uint64_t linear = code_linear_address(s);
    uint8_t code[kCodeBytes];
    const size_t n = vcpu.read_code(linear, code, sizeof code);
    const uint64_t ip = bits == 64 ? s.rip : bits == 32 ? (s.rip & 0xffffffff) : (s.rip & 0xffff);
    appendf(out, "Code (%u-bit, linear %#" PRIx64 "):", bits, linear);
    if (n == 0) {
        out += " <not readable>\n";
        return out;
    }
    for (size_t i = 0; i < n; i++) appendf(out, " %02x", code[i]);
    out += '\n';
    for (const DisasmLine& l : disassemble_x86(code, n, ip, bits, kCodeInsns)) {
        if (bits == 16)
            appendf(out, "  %04x:%04" PRIx64 "  ", s.seg[CS].selector, l.address & 0xffff);
        else
            appendf(out, "  %0*" PRIx64 "  ", bits == 64 ? 16 : 8, l.address);
        std::string hex;
        for (uint8_t b : l.bytes) appendf(hex, "%02x ", b);
        appendf(out, "%-30s %s\n", hex.c_str(), l.text.c_str());
    }
    return out;
}

} // namespace hvm
