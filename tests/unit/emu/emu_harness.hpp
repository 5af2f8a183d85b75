// Shared setup for the emulator tests: guest RAM, a recording IoSink, an EmuEngine vCPU and
// helpers that build real-mode, protected-mode and long-mode states with identity paging.
#pragma once
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vcpu/emu/emu_engine.hpp"
#include "vcpu/guest_memory.hpp"

namespace emu_test {

using namespace hvm;

// Records every I/O request; port reads return `pio_read_value`, MMIO reads come from `mmio`.
struct RecordingSink : IoSink {
    struct Record {
        IoRequest::Kind kind;
        bool is_write;
        uint8_t size;
        uint32_t count;
        uint64_t addr;
        std::vector<uint8_t> data;
    };
    std::vector<Record> records;
    uint32_t pio_read_value = 0;
    std::vector<uint8_t> mmio = std::vector<uint8_t>(0x1000, 0);
    uint64_t mmio_base = 0xfed00000;
    void handle_io(IoRequest& r) override {
        size_t n = size_t(r.size) * r.count;
        if (!r.is_write) {
            for (size_t i = 0; i < n; i++) {
                if (r.kind == IoRequest::Kind::Pio) {
                    r.data[i] = uint8_t(pio_read_value >> (8 * (i % r.size)));
                } else {
                    uint64_t off = r.addr + i - mmio_base;
                    r.data[i] = off < mmio.size() ? mmio[off] : 0xff;
                }
            }
        } else if (r.kind == IoRequest::Kind::Mmio) {
            for (size_t i = 0; i < n; i++) {
                uint64_t off = r.addr + i - mmio_base;
                if (off < mmio.size()) mmio[off] = r.data[i];
            }
        }
        records.push_back({r.kind, r.is_write, r.size, r.count, r.addr,
                           std::vector<uint8_t>(r.data, r.data + n)});
    }
};

// A local APIC stand-in: the test sets `pending` and the vectors the acknowledge calls return.
struct FakeInterrupts : CpuInterrupts {
    int vector = 0x20;
    int sipi_vector = -1;
    uint8_t tpr_value = 0;
    uint64_t apic_base = 0xfee00900;
    int acks = 0;
    int acknowledge_interrupt() override {
        acks++;
        pending &= ~kIntr;
        return vector;
    }
    bool acknowledge_nmi() override {
        pending &= ~kNmi;
        return true;
    }
    bool acknowledge_init() override {
        pending &= ~kInit;
        return true;
    }
    int acknowledge_sipi() override {
        pending &= ~kSipi;
        return sipi_vector;
    }
    void set_tpr(uint8_t v) override { tpr_value = v; }
    uint8_t tpr() const override { return tpr_value; }
    bool read_msr(uint32_t msr, uint64_t& v) override {
        if (msr != 0x1b) return false;
        v = apic_base;
        return true;
    }
    bool write_msr(uint32_t msr, uint64_t v) override {
        if (msr != 0x1b) return false;
        apic_base = v;
        return true;
    }
};

// Fixed guest-physical layout used by the tests.
inline constexpr uint64_t kRamSize = 16ull << 20;
inline constexpr uint64_t kGdt = 0x800;  // GDT (see gdt_entries below)
inline constexpr uint64_t kIdt = 0x1000; // IDT (long mode: 16-byte gates)
inline constexpr uint64_t kTss = 0x2000; // TSS
inline constexpr uint64_t kPml4 = 0x10000, kPdpt = 0x11000, kPd = 0x12000, kPt = 0x13000;
inline constexpr uint64_t kCode = 0x100000;
inline constexpr uint64_t kData = 0x200000;
inline constexpr uint64_t kStack = 0x300000; // stack top
inline constexpr uint64_t kRom = 0xfff00000; // 1 MiB ROM region (read-only)

// GDT selectors
inline constexpr uint16_t kSelCode64 = 0x08, kSelData = 0x10, kSelCode32 = 0x18, kSelCode16 = 0x20,
                          kSelData16 = 0x28, kSelUCode64 = 0x33, kSelUData = 0x3b,
                          kSelUCode32 = 0x43, kSelTss = 0x48;

inline uint64_t seg_desc(uint32_t base, uint32_t limit, unsigned type, unsigned dpl, bool l,
                         bool db, bool g, bool s = true) {
    return (limit & 0xffffull) | (uint64_t(base & 0xffffff) << 16) | (uint64_t(type) << 40) |
           (uint64_t(s) << 44) | (uint64_t(dpl) << 45) | (1ull << 47) |
           (uint64_t((limit >> 16) & 0xf) << 48) | (uint64_t(l) << 53) | (uint64_t(db) << 54) |
           (uint64_t(g) << 55) | (uint64_t(base >> 24) << 56);
}

struct Machine {
    GuestMemory mem;
    uint8_t* ram = nullptr;
    uint8_t* rom = nullptr;
    RecordingSink sink;
    emu::EmuEngine engine{nullptr};
    std::unique_ptr<Vcpu> vcpu;

    explicit Machine(CpuInterrupts* irq = nullptr) {
        ram = mem.allocate(kRamSize, "ram");
        mem.add_region({0, kRamSize, ram, false, "ram"});
        rom = mem.allocate(1 << 20, "rom");
        mem.add_region({kRom, 1 << 20, rom, true, "rom"});
        engine.map_memory(mem);
        vcpu = engine.create_vcpu(0, sink, irq);
        build_tables();
    }
    emu::X86Cpu& cpu() { return static_cast<emu::EmuVcpu&>(*vcpu).cpu(); }

    template <typename T> void poke(uint64_t gpa, T v) { memcpy(ram + gpa, &v, sizeof v); }
    template <typename T> T peek(uint64_t gpa) {
        T v;
        memcpy(&v, ram + gpa, sizeof v);
        return v;
    }
    void load(uint64_t gpa, const std::vector<uint8_t>& bytes) {
        memcpy(ram + gpa, bytes.data(), bytes.size());
    }

    void build_tables() {
        uint64_t gdt[16] = {};
        gdt[1] = seg_desc(0, 0xfffff, 11, 0, true, false, true);  // 0x08 64-bit code
        gdt[2] = seg_desc(0, 0xfffff, 3, 0, false, true, true);   // 0x10 data
        gdt[3] = seg_desc(0, 0xfffff, 11, 0, false, true, true);  // 0x18 32-bit code
        gdt[4] = seg_desc(0, 0xffff, 11, 0, false, false, false); // 0x20 16-bit code
        gdt[5] = seg_desc(0, 0xffff, 3, 0, false, false, false);  // 0x28 16-bit data
        gdt[6] = seg_desc(0, 0xfffff, 11, 3, true, false, true);  // 0x30 user 64-bit code
        gdt[7] = seg_desc(0, 0xfffff, 3, 3, false, true, true);   // 0x38 user data
        gdt[8] = seg_desc(0, 0xfffff, 11, 3, false, true, true);  // 0x40 user 32-bit code
        gdt[9] = seg_desc(uint32_t(kTss), 0x67, 9, 0, false, false, false, false); // 0x48 TSS
        gdt[10] = 0; // upper half of the 64-bit TSS descriptor
        memcpy(ram + kGdt, gdt, sizeof gdt);
        // Identity map the first 1 GiB with 2 MiB pages, except the first 2 MiB which use 4 KiB
        // pages (so tests can unmap single pages), plus the ROM at 0xfff00000.
        poke<uint64_t>(kPml4, kPdpt | 7);
        poke<uint64_t>(kPdpt, kPd | 7);
        for (uint64_t i = 1; i < 512; i++) poke<uint64_t>(kPd + i * 8, (i << 21) | 0x87);
        poke<uint64_t>(kPd, kPt | 7);
        for (uint64_t i = 0; i < 512; i++) poke<uint64_t>(kPt + i * 8, (i << 12) | 7);
        uint64_t pd3 = 0x14000;
        poke<uint64_t>(kPdpt + 3 * 8, pd3 | 7);
        for (uint64_t i = 0; i < 512; i++)
            poke<uint64_t>(pd3 + i * 8, (0xc0000000ull + (i << 21)) | 0x87);
        // TSS: RSP0 and IST1
        poke<uint64_t>(kTss + 4, kStack - 0x10000);
        poke<uint64_t>(kTss + 0x24, kStack - 0x20000);
    }

    static Segment seg_from(uint16_t sel, uint64_t d) {
        Segment s;
        s.selector = sel;
        s.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
        uint32_t lim = uint32_t((d & 0xffff) | (((d >> 48) & 0xf) << 16));
        s.type = (d >> 40) & 0xf;
        s.s = (d >> 44) & 1;
        s.dpl = (d >> 45) & 3;
        s.present = (d >> 47) & 1;
        s.l = (d >> 53) & 1;
        s.db = (d >> 54) & 1;
        s.g = (d >> 55) & 1;
        s.limit = s.g ? (lim << 12) | 0xfff : lim;
        return s;
    }
    Segment gdt_seg(uint16_t sel) { return seg_from(sel, peek<uint64_t>(kGdt + (sel & ~7))); }

    // 64-bit mode, CPL 0, paging on, flat segments, RIP = kCode.
    CpuState long_mode_state() {
        CpuState s = reset_cpu_state(0);
        s.cr0 = 0x80010033; // PG WP NE ET MP PE
        s.cr3 = kPml4;
        s.cr4 = 0x20 | 0x80; // PAE PGE
        s.efer = 0xd01;      // SCE LME LMA NXE
        s.seg[CS] = gdt_seg(kSelCode64);
        for (unsigned r : {ES, SS, DS, FS, GS}) s.seg[r] = gdt_seg(kSelData);
        s.seg[TR] = gdt_seg(kSelTss);
        s.seg[TR].type = 11;
        s.seg[LDTR] = Segment{};
        s.seg[LDTR].unusable = 1;
        s.gdt = {kGdt, 0x7f};
        s.idt = {kIdt, 0xfff};
        s.rip = kCode;
        s.gpr[RSP] = kStack;
        s.rflags = 2;
        return s;
    }

    // Real mode at 0000:7C00 with SS:SP = 0000:7000.
    CpuState real_mode_state() {
        CpuState s = reset_cpu_state(0);
        s.seg[CS].selector = 0;
        s.seg[CS].base = 0;
        s.rip = 0x7c00;
        s.gpr[RSP] = 0x7000;
        s.idt = {0, 0x3ff};
        return s;
    }

    // Installs a 64-bit interrupt gate for `vector` pointing at `handler`.
    void set_gate64(unsigned vector, uint64_t handler, unsigned dpl = 0, unsigned ist = 0,
                    bool trap = false) {
        uint64_t lo = (handler & 0xffff) | (uint64_t(kSelCode64) << 16) | (uint64_t(ist) << 32) |
                      (uint64_t(trap ? 15 : 14) << 40) | (uint64_t(dpl) << 45) | (1ull << 47) |
                      (((handler >> 16) & 0xffff) << 48);
        poke<uint64_t>(kIdt + vector * 16, lo);
        poke<uint64_t>(kIdt + vector * 16 + 8, handler >> 32);
    }

    // Runs until HLT (or a limit); returns instructions executed.
    uint64_t run_until_halt(uint64_t max = 1000000) { return cpu().step_n(max); }
};

} // namespace emu_test

namespace emu_test {

// A tiny byte emitter with labels and absolute/relative fixups, for hand-assembled test programs.
class Asm {
  public:
    explicit Asm(uint64_t origin) : origin_(origin) {}
    Asm& b(std::initializer_list<uint8_t> bytes) {
        // push_back rather than insert: GCC 12 warns falsely (-Wstringop-overflow) on the latter
        for (uint8_t x : bytes) code_.push_back(x);
        return *this;
    }
    Asm& d16(uint16_t v) { return b({uint8_t(v), uint8_t(v >> 8)}); }
    Asm& d32(uint32_t v) {
        return b({uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)});
    }
    Asm& d64(uint64_t v) {
        d32(uint32_t(v));
        return d32(uint32_t(v >> 32));
    }
    Asm& label(const std::string& name) {
        labels_[name] = here();
        return *this;
    }
    // Absolute address of a label (16 or 32 bits), patched at finish().
    Asm& abs16(const std::string& name) { return fix(name, 2, false); }
    Asm& abs32(const std::string& name) { return fix(name, 4, false); }
    // rel32 relative to the end of the 4-byte field (RIP-relative and near branches).
    Asm& rel32(const std::string& name) { return fix(name, 4, true); }
    Asm& rel8(const std::string& name) { return fix(name, 1, true); }
    uint64_t here() const { return origin_ + code_.size(); }
    uint64_t addr(const std::string& name) const { return labels_.at(name); }
    std::vector<uint8_t> finish() {
        for (auto& f : fixups_) {
            uint64_t target = labels_.at(f.name);
            uint64_t v = f.rel ? target - (origin_ + f.pos + f.size) : target;
            for (unsigned i = 0; i < f.size; i++) code_[f.pos + i] = uint8_t(v >> (8 * i));
        }
        return code_;
    }

  private:
    Asm& fix(const std::string& name, unsigned size, bool rel) {
        fixups_.push_back({name, code_.size(), size, rel});
        for (unsigned i = 0; i < size; i++) code_.push_back(0);
        return *this;
    }
    struct Fixup {
        std::string name;
        size_t pos;
        unsigned size;
        bool rel;
    };
    uint64_t origin_;
    std::vector<uint8_t> code_;
    std::map<std::string, uint64_t> labels_;
    std::vector<Fixup> fixups_;
};

} // namespace emu_test
