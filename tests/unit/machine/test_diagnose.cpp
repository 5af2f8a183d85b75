// vmexit/diagnose: the register dump and the disassembly at CS:RIP, on a fake vCPU.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <string>

#include "vmexit/diagnose.hpp"

using namespace hvm;

namespace {

class FakeVcpu : public Vcpu {
  public:
    unsigned index() const override { return 3; }
    VcpuExit run() override { return VcpuExit::Kicked; }
    void kick() override {}
    void get_state(CpuState& out) override { out = state; }
    void set_state(const CpuState& in) override { state = in; }
    size_t read_code(uint64_t linear, uint8_t* out, size_t len) override {
        size_t n = 0;
        for (; n < len; n++) {
            auto it = memory.find(linear + n);
            if (it == memory.end()) break;
            out[n] = it->second;
        }
        return n;
    }
    void put(uint64_t linear, std::initializer_list<uint8_t> bytes) {
        for (uint8_t b : bytes) memory[linear++] = b;
    }
    CpuState state = reset_cpu_state(0);
    std::map<uint64_t, uint8_t> memory;
};

bool contains(const std::string& s, const std::string& what) {
    return s.find(what) != std::string::npos;
}

} // namespace

TEST_CASE("code mode follows CR0.PE, EFLAGS.VM, EFER.LMA with CS.L, and CS.D") {
    CpuState s = reset_cpu_state(0);
    CHECK(code_bits(s) == 16);
    s.cr0 |= 1;
    CHECK(code_bits(s) == 16); // protected mode, CS.D = 0
    s.seg[CS].db = 1;
    CHECK(code_bits(s) == 32);
    s.rflags |= 1u << 17;
    CHECK(code_bits(s) == 16); // virtual-8086
    s.rflags &= ~(1u << 17);
    s.efer = 0x500;
    s.seg[CS].l = 1;
    s.seg[CS].db = 0;
    CHECK(code_bits(s) == 64);
    s.seg[CS].l = 0;
    s.seg[CS].db = 1;
    CHECK(code_bits(s) == 32); // compatibility mode
}

TEST_CASE("linear address of CS:RIP in each mode") {
    CpuState s = reset_cpu_state(0);
    CHECK(code_linear_address(s) == 0xfffffff0);
    s.seg[CS].base = 0xf0000;
    s.rip = 0x1fff0; // only IP counts in 16-bit code
    CHECK(code_linear_address(s) == 0xffff0);
    s.cr0 |= 1;
    s.seg[CS].db = 1;
    s.seg[CS].base = 0x100000;
    s.rip = 0x2000;
    CHECK(code_linear_address(s) == 0x102000);
    s.efer = 0x500;
    s.seg[CS].l = 1;
    s.seg[CS].db = 0;
    s.rip = 0xffffffff81000000ull;
    CHECK(code_linear_address(s) == 0xffffffff81000000ull); // CS.base ignored
}

TEST_CASE("disassembly in 16, 32 and 64-bit modes") {
    const uint8_t far_jmp[] = {0xea, 0x5b, 0xe0, 0x00, 0xf0};
    auto l16 = disassemble_x86(far_jmp, sizeof far_jmp, 0xfff0, 16, 4);
    REQUIRE(l16.size() == 1);
    CHECK(l16[0].bytes.size() == 5);
    CHECK(contains(l16[0].text, "0xf000"));
    CHECK(contains(l16[0].text, "0xe05b"));

    // B8 imm: mov ax, imm16 in 16-bit code, mov eax, imm32 in 32-bit code
    const uint8_t mov[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4};
    auto a = disassemble_x86(mov, sizeof mov, 0x1000, 16, 8);
    CHECK(a[0].text == "mov ax, 1");
    CHECK(a[0].bytes.size() == 3);
    auto b = disassemble_x86(mov, sizeof mov, 0x1000, 32, 8);
    REQUIRE(b.size() == 2);
    CHECK(b[0].text == "mov eax, 1");
    CHECK(b[1].text == "hlt");
    CHECK(b[1].address == 0x1005);

    // 48 89 e5: mov rbp, rsp only in 64-bit mode
    const uint8_t rex[] = {0x48, 0x89, 0xe5};
    auto c = disassemble_x86(rex, sizeof rex, 0xffffffff81000000ull, 64, 8);
    REQUIRE(c.size() == 1);
    CHECK(c[0].text == "mov rbp, rsp");
    CHECK(c[0].address == 0xffffffff81000000ull);

    // Undecodable bytes are listed one by one; max_insns is respected.
    const uint8_t bad[] = {0x0f, 0xff, 0x0f, 0xff};
    auto d = disassemble_x86(bad, 1, 0, 32, 8);
    REQUIRE(d.size() == 1);
    CHECK(d[0].text == "(bad)");
    const uint8_t nops[] = {0x90, 0x90, 0x90, 0x90};
    CHECK(disassemble_x86(nops, 4, 0, 32, 2).size() == 2);
}

TEST_CASE("describe_cpu: QEMU-style real-mode dump with the code at the reset vector") {
    FakeVcpu v;
    v.put(0xfffffff0, {0xea, 0x5b, 0xe0, 0x00, 0xf0});
    v.error = "kvm: vCPU 3: internal error, suberror 1 (emulation failure)";
    std::string d = describe_cpu(v, "triple fault");
    MESSAGE(d);
    CHECK(contains(d, "vCPU 3: triple fault\n"));
    CHECK(contains(d, "suberror 1"));
    CHECK(contains(d, "EAX=00000000 EBX=00000000 ECX=00000000 EDX=00000600\n"));
    CHECK(contains(d, "EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 HLT=0\n"));
    CHECK(contains(d, "CS =f000 ffff0000 0000ffff 00009b00\n"));
    CHECK(contains(d, "SS =0000 00000000 0000ffff 00009300\n"));
    CHECK(contains(d, "TR =0000 00000000 0000ffff 00008b00\n"));
    CHECK(contains(d, "GDT=     00000000 0000ffff\n"));
    CHECK(contains(d, "CR0=60000010 CR2=00000000 CR3=00000000 CR4=00000000\n"));
    CHECK(contains(d, "DR6=ffff0ff0 DR7=00000400\n"));
    CHECK(contains(d, "EFER=0000000000000000"));
    CHECK(contains(d, "Code (16-bit, linear 0xfffffff0): ea 5b e0 00 f0\n"));
    CHECK(contains(d, "f000:fff0"));
    CHECK(contains(d, "ljmp 0xf000:0xe05b"));
}

TEST_CASE("describe_cpu: 32-bit protected mode names the descriptors") {
    FakeVcpu v;
    CpuState& s = v.state;
    s.cr0 = 0x11;
    s.seg[CS] = Segment{0, 0xffffffff, 0x08, 11, 1, 0, 1, 0, 0, 1, 1, 0};
    for (unsigned r : {ES, SS, DS, FS, GS})
        s.seg[r] = Segment{0, 0xffffffff, 0x10, 3, 1, 0, 1, 0, 0, 1, 1, 0};
    s.seg[TR] = Segment{0x5000, 0x67, 0x28, 11, 0, 0, 1, 0, 0, 0, 0, 0};
    s.rip = 0x100000;
    s.rflags = 0x246;
    s.halted = true;
    v.put(0x100000, {0xb8, 0x01, 0x00, 0x00, 0x00, 0xf4});
    std::string d = describe_cpu(v, "internal error");
    CHECK(contains(d, "EFL=00000246 [---Z-P-]"));
    CHECK(contains(d, "HLT=1"));
    CHECK(contains(d, "CS =0008 00000000 ffffffff 00c09b00 DPL=0 CS32 [-RA]\n"));
    CHECK(contains(d, "DS =0010 00000000 ffffffff 00c09300 DPL=0 DS   [-WA]\n"));
    CHECK(contains(d, "TR =0028 00005000 00000067 00008b00 DPL=0 TSS32-busy\n"));
    CHECK(contains(d, "Code (32-bit, linear 0x100000)"));
    CHECK(contains(d, "00100000  b8 01 00 00 00"));
    CHECK(contains(d, "mov eax, 1"));
    CHECK(contains(d, "00100005  f4"));
    CHECK(contains(d, "hlt"));
}

TEST_CASE("describe_cpu: 64-bit mode prints 64-bit registers and bases") {
    FakeVcpu v;
    CpuState& s = v.state;
    s.cr0 = 0x80050033;
    s.cr4 = 0x20;
    s.efer = 0x500;
    s.seg[CS] = Segment{0, 0xffffffff, 0x10, 11, 1, 0, 1, 0, 1, 0, 1, 0};
    s.seg[GS].base = 0xffff888012345678ull;
    s.gpr[R15] = 0x1515151515151515ull;
    s.rip = 0xffffffff81000000ull;
    v.put(s.rip, {0x48, 0x89, 0xe5});
    std::string d = describe_cpu(v, "shutdown");
    CHECK(contains(d, "R15=1515151515151515\n"));
    CHECK(contains(d, "RIP=ffffffff81000000"));
    CHECK(contains(d, "CS =0010 0000000000000000 ffffffff 00a09b00 DPL=0 CS64 [-RA]\n"));
    CHECK(contains(d, "GS =0000 ffff888012345678"));
    CHECK(contains(d, "Code (64-bit, linear 0xffffffff81000000)"));
    CHECK(contains(d, "ffffffff81000000  48 89 e5"));
    CHECK(contains(d, "mov rbp, rsp"));
}

TEST_CASE("describe_cpu: unreadable code is said, not invented") {
    FakeVcpu v;
    std::string d = describe_cpu(v, "triple fault");
    CHECK(contains(d, "Code (16-bit, linear 0xfffffff0): <not readable>\n"));
}
