// Tiny real-mode guests on /dev/kvm. Each test case starts with REQUIRE_KVM(): without /dev/kvm it
// prints "SKIP: no /dev/kvm" and passes. Guest instructions are expensive on a software KVM
// (KVM-PVM: ~10 us per exit), so the programs stay a handful of bytes.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "base/error.hpp"
#include "vcpu/guest_memory.hpp"
#include "vcpu/kvm/kvm_engine.hpp"
#include "vcpu/kvm/kvm_vcpu.hpp"

using namespace hvm;
using namespace std::chrono_literals;

namespace {

bool have_kvm() {
    if (access("/dev/kvm", R_OK | W_OK) == 0) return true;
    std::printf("SKIP: no /dev/kvm\n");
    return false;
}
#define REQUIRE_KVM()                                                                              \
    do {                                                                                           \
        if (!have_kvm()) {                                                                         \
            MESSAGE("SKIP: no /dev/kvm");                                                          \
            return;                                                                                \
        }                                                                                          \
    } while (0)

constexpr uint16_t kDonePort = 0x99; // a write here makes the sink kick the vCPU (run() returns)

struct Access {
    IoRequest::Kind kind;
    bool write;
    uint8_t size;
    uint32_t count;
    uint64_t addr;
    std::vector<uint8_t> data;
    unsigned vcpu;
};

class RecordingSink : public IoSink {
  public:
    void handle_io(IoRequest& r) override {
        if (!r.is_write && on_read) on_read(r);
        std::lock_guard g(m);
        log.push_back({r.kind, r.is_write, r.size, r.count, r.addr,
                       std::vector<uint8_t>(r.data, r.data + size_t(r.size) * r.count), r.vcpu});
        if (r.kind == IoRequest::Kind::Pio && r.is_write && r.addr == kDonePort && vcpu)
            vcpu->kick();
        cv.notify_all();
    }
    std::vector<Access> pio_to(uint64_t port) {
        std::lock_guard g(m);
        std::vector<Access> out;
        for (auto& a : log)
            if (a.kind == IoRequest::Kind::Pio && a.addr == port) out.push_back(a);
        return out;
    }
    bool wait_for_port(uint64_t port, std::chrono::milliseconds timeout) {
        std::unique_lock g(m);
        return cv.wait_for(g, timeout, [&] {
            for (auto& a : log)
                if (a.kind == IoRequest::Kind::Pio && a.addr == port) return true;
            return false;
        });
    }
    std::function<void(IoRequest&)> on_read;
    Vcpu* vcpu = nullptr;
    std::mutex m;
    std::condition_variable cv;
    std::vector<Access> log;
};

// The device model's local APIC as the vCPU sees it without the in-kernel irqchip.
class FakeInterrupts : public CpuInterrupts {
  public:
    explicit FakeInterrupts(std::mutex& lock) : lock_(lock) {}
    void raise(int vector) {
        std::lock_guard g(lock_);
        vectors.push_back(vector);
        update();
    }
    void send_sipi(int vector) {
        std::lock_guard g(lock_);
        sipi = vector;
        update();
    }
    void send_nmi() {
        std::lock_guard g(lock_);
        nmi = true;
        update();
    }
    void send_init() {
        std::lock_guard g(lock_);
        init = true;
        update();
    }
    int acknowledge_interrupt() override {
        acks++;
        if (vectors.empty()) return -1;
        int v = vectors.front();
        vectors.pop_front();
        update();
        return v;
    }
    bool acknowledge_nmi() override {
        bool r = nmi;
        nmi = false;
        update();
        return r;
    }
    bool acknowledge_init() override {
        bool r = init;
        init = false;
        update();
        return r;
    }
    int acknowledge_sipi() override {
        int v = sipi;
        sipi = -1;
        update();
        return v;
    }
    void set_tpr(uint8_t cr8) override { tpr_ = cr8; }
    uint8_t tpr() const override { return tpr_; }
    bool read_msr(uint32_t msr, uint64_t& value) override {
        if (msr != 0x1b) return false;
        value = apic_base;
        return true;
    }
    bool write_msr(uint32_t msr, uint64_t value) override {
        if (msr != 0x1b) return false;
        apic_base = value;
        return true;
    }

    std::deque<int> vectors;
    int sipi = -1;
    bool init = false;
    bool nmi = false;
    int acks = 0;
    uint8_t tpr_ = 0;
    uint64_t apic_base = 0xfed00900; // distinctive, so a test can see where a RDMSR was answered

  private:
    void update() {
        uint32_t p = 0;
        if (!vectors.empty()) p |= kIntr;
        if (init) p |= kInit;
        if (nmi) p |= kNmi;
        if (sipi >= 0) p |= kSipi;
        pending.store(p);
        if (p && kick) kick();
    }
    std::mutex& lock_;
};

struct Guest {
    explicit Guest(bool kernel_irqchip = true, unsigned vcpus = 1, std::string model = "host")
        : engine(make_config(kernel_irqchip, vcpus, model)) {
        ram = mem.allocate(kRam, "ram");
        mem.add_region(MemRegion{0, kRam, ram, false, "ram"});
    }
    static EngineConfig make_config(bool kernel_irqchip, unsigned vcpus, const std::string& model) {
        EngineConfig c;
        c.vcpus = vcpus;
        c.kernel_irqchip = kernel_irqchip;
        c.cpu_model = model;
        return c;
    }
    // Maps memory and creates vCPU `index`, whose program starts at 0000:ip in real mode.
    Vcpu& start(unsigned index = 0, uint16_t ip = 0x1000, bool map = true) {
        if (map) engine.map_memory(mem);
        if (!engine.in_kernel_irqchip()) {
            engine.set_device_lock(device_lock);
            irqs.push_back(std::make_unique<FakeInterrupts>(device_lock));
        }
        vcpus.push_back(engine.create_vcpu(
            index, sink, engine.in_kernel_irqchip() ? nullptr : irqs.back().get()));
        Vcpu& v = *vcpus.back();
        sink.vcpu = &v;
        if (ip != 0xfff0) {
            CpuState s;
            v.get_state(s);
            s.seg[CS].selector = 0;
            s.seg[CS].base = 0;
            s.rip = ip;
            s.halted = false; // an AP reads as halted while it waits for SIPI
            v.set_state(s);
        }
        return v;
    }
    void load(uint64_t gpa, std::initializer_list<uint8_t> bytes) {
        std::vector<uint8_t> b(bytes);
        REQUIRE(mem.write(gpa, b));
    }
    // run() on another thread, with a deadline: a broken engine fails the test instead of hanging.
    VcpuExit run_with_timeout(Vcpu& v, std::chrono::milliseconds timeout = 5000ms) {
        auto f = std::async(std::launch::async, [&] { return v.run(); });
        if (f.wait_for(timeout) != std::future_status::ready) {
            v.kick();
            f.wait();
            FAIL("run() did not return in time");
        }
        return f.get();
    }

    static constexpr uint64_t kRam = 0x10000;
    GuestMemory mem;
    uint8_t* ram = nullptr;
    KvmEngine engine;
    std::mutex device_lock;
    RecordingSink sink;
    std::vector<std::unique_ptr<FakeInterrupts>> irqs;
    std::vector<std::unique_ptr<Vcpu>> vcpus;
};

// mov dx, kDonePort; out dx, al; jmp $
#define DONE 0xba, 0x99, 0x00, 0xee, 0xeb, 0xfe

} // namespace

TEST_CASE("out dx, al reaches the IoSink with port, size and data") {
    REQUIRE_KVM();
    Guest g;
    g.load(0x1000,
           {0xba, 0xf8, 0x03, 0xb0, 'A', 0xee, DONE}); // mov dx,0x3f8; mov al,'A'; out dx,al
    Vcpu& v = g.start();
    CHECK(g.run_with_timeout(v) == VcpuExit::Kicked);
    auto w = g.sink.pio_to(0x3f8);
    REQUIRE(w.size() == 1);
    CHECK(w[0].write);
    CHECK(w[0].size == 1);
    CHECK(w[0].count == 1);
    CHECK(w[0].data == std::vector<uint8_t>{'A'});
    CHECK(w[0].vcpu == 0);
}

TEST_CASE("rep outsb delivers the string in order; rep insb fills guest memory") {
    REQUIRE_KVM();
    Guest g;
    g.load(0x1100, {'h', 'e', 'l', 'l', 'o'});
    g.load(0x1000, {
                       0x31, 0xc0,       // xor ax, ax
                       0x8e, 0xd8,       // mov ds, ax
                       0x8e, 0xc0,       // mov es, ax
                       0xbe, 0x00, 0x11, // mov si, 0x1100
                       0xb9, 0x05, 0x00, // mov cx, 5
                       0xba, 0xe9, 0x00, // mov dx, 0xe9
                       0xf3, 0x6e,       // rep outsb
                       0xbf, 0x00, 0x12, // mov di, 0x1200
                       0xb9, 0x04, 0x00, // mov cx, 4
                       0xba, 0x60, 0x00, // mov dx, 0x60
                       0xf3, 0x6c,       // rep insb
                       DONE,
                   });
    uint8_t next = 0x10;
    g.sink.on_read = [&](IoRequest& r) {
        for (uint32_t i = 0; i < r.size * r.count; i++) r.data[i] = next++;
    };
    Vcpu& v = g.start();
    CHECK(g.run_with_timeout(v) == VcpuExit::Kicked);
    std::string out;
    for (auto& a : g.sink.pio_to(0xe9)) {
        CHECK(a.write);
        CHECK(a.size == 1);
        out.append(a.data.begin(), a.data.end());
    }
    CHECK(out == "hello");
    uint32_t in_elements = 0;
    for (auto& a : g.sink.pio_to(0x60)) {
        CHECK_FALSE(a.write);
        in_elements += a.count;
    }
    CHECK(in_elements == 4);
    CHECK(g.ram[0x1200] == 0x10);
    CHECK(g.ram[0x1201] == 0x11);
    CHECK(g.ram[0x1202] == 0x12);
    CHECK(g.ram[0x1203] == 0x13);
}

TEST_CASE("MMIO outside RAM: a write and a read that returns the sink's data") {
    REQUIRE_KVM();
    Guest g;
    g.load(0x1000, {
                       0xbb, 0x00, 0x20,                   // mov bx, 0x2000
                       0x8e, 0xdb,                         // mov ds, bx
                       0xc7, 0x06, 0x10, 0x00, 0xef, 0xbe, // mov word [0x10], 0xbeef
                       0xa1, 0x20, 0x00,                   // mov ax, [0x20]
                       0xba, 0x80, 0x00,                   // mov dx, 0x80
                       0xef,                               // out dx, ax
                       DONE,
                   });
    g.sink.on_read = [](IoRequest& r) {
        if (r.kind == IoRequest::Kind::Mmio && r.addr == 0x20020 && r.size == 2) {
            r.data[0] = 0x34;
            r.data[1] = 0x12;
        }
    };
    Vcpu& v = g.start();
    CHECK(g.run_with_timeout(v) == VcpuExit::Kicked);
    std::vector<Access> mmio;
    for (auto& a : g.sink.log)
        if (a.kind == IoRequest::Kind::Mmio) mmio.push_back(a);
    REQUIRE(mmio.size() == 2);
    CHECK(mmio[0].write);
    CHECK(mmio[0].addr == 0x20010);
    CHECK(mmio[0].size == 2);
    CHECK(mmio[0].data == std::vector<uint8_t>{0xef, 0xbe});
    CHECK_FALSE(mmio[1].write);
    CHECK(mmio[1].addr == 0x20020);
    auto out = g.sink.pio_to(0x80);
    REQUIRE(out.size() == 1);
    CHECK(out[0].size == 2);
    CHECK(out[0].data == std::vector<uint8_t>{0x34, 0x12});
}

TEST_CASE("in al, dx and in eax, dx return what the sink put in the data") {
    REQUIRE_KVM();
    Guest g;
    g.load(0x1000, {
                       0xba, 0x71, 0x00, // mov dx, 0x71
                       0xec,             // in al, dx
                       0xba, 0x80, 0x00, // mov dx, 0x80
                       0xee,             // out dx, al
                       0xba, 0x72, 0x00, // mov dx, 0x72
                       0x66, 0xed,       // in eax, dx
                       0xba, 0x84, 0x00, // mov dx, 0x84
                       0x66, 0xef,       // out dx, eax
                       DONE,
                   });
    g.sink.on_read = [](IoRequest& r) {
        if (r.addr == 0x71) r.data[0] = 0x5a;
        if (r.addr == 0x72 && r.size == 4) std::memcpy(r.data, "\x78\x56\x34\x12", 4);
    };
    Vcpu& v = g.start();
    CHECK(g.run_with_timeout(v) == VcpuExit::Kicked);
    auto a = g.sink.pio_to(0x80);
    REQUIRE(a.size() == 1);
    CHECK(a[0].data == std::vector<uint8_t>{0x5a});
    auto b = g.sink.pio_to(0x84);
    REQUIRE(b.size() == 1);
    CHECK(b[0].size == 4);
    CHECK(b[0].data == std::vector<uint8_t>{0x78, 0x56, 0x34, 0x12});
    auto in = g.sink.pio_to(0x71);
    REQUIRE(in.size() == 1);
    CHECK_FALSE(in[0].write);
}

TEST_CASE("read-only memory: reads see the ROM, writes exit as MMIO and change nothing") {
    REQUIRE_KVM();
    Guest g;
    uint8_t* rom = g.mem.allocate(0x1000, "rom");
    rom[0] = 0xc3;
    g.mem.add_region(MemRegion{0x20000, 0x1000, rom, true, "rom"});
    g.load(0x1000, {
                       0xbb,
                       0x00,
                       0x20, // mov bx, 0x2000
                       0x8e,
                       0xdb, // mov ds, bx
                       0xa0,
                       0x00,
                       0x00, // mov al, [0]
                       0xba,
                       0x80,
                       0x00, // mov dx, 0x80
                       0xee, // out dx, al
                       0xc6,
                       0x06,
                       0x00,
                       0x00,
                       0x55, // mov byte [0], 0x55
                       DONE,
                   });
    Vcpu& v = g.start();
    CHECK(g.run_with_timeout(v) == VcpuExit::Kicked);
    auto a = g.sink.pio_to(0x80);
    REQUIRE(a.size() == 1);
    CHECK(a[0].data == std::vector<uint8_t>{0xc3});
    CHECK(rom[0] == 0xc3);
    bool saw_write = false;
    for (auto& x : g.sink.log)
        saw_write |=
            x.kind == IoRequest::Kind::Mmio && x.write && x.addr == 0x20000 && x.data[0] == 0x55;
    CHECK(saw_write);
}

TEST_CASE("kick() from another thread makes run() return Kicked (in-kernel irqchip)") {
    REQUIRE_KVM();
    Guest g;
    g.load(0x1000, {0xba, 0x80, 0x00, 0xee, 0xeb, 0xfe}); // out 0x80; jmp $
    Vcpu& v = g.start();
    auto f = std::async(std::launch::async, [&] { return v.run(); });
    REQUIRE(g.sink.wait_for_port(0x80, 5000ms));
    std::this_thread::sleep_for(20ms); // let it spin in the guest
    v.kick();
    REQUIRE(f.wait_for(5000ms) == std::future_status::ready);
    CHECK(f.get() == VcpuExit::Kicked);
    // A kick before run() is not lost.
    v.kick();
    CHECK(g.run_with_timeout(v) == VcpuExit::Kicked);
}

TEST_CASE("kick() wakes a vCPU halted in the kernel (in-kernel irqchip, IF=0)") {
    REQUIRE_KVM();
    Guest g;
    g.load(0x1000, {0xba, 0x80, 0x00, 0xee, 0xfa, 0xf4, 0xeb, 0xfe}); // out 0x80; cli; hlt
    Vcpu& v = g.start();
    auto f = std::async(std::launch::async, [&] { return v.run(); });
    REQUIRE(g.sink.wait_for_port(0x80, 5000ms));
    std::this_thread::sleep_for(20ms);
    v.kick();
    REQUIRE(f.wait_for(5000ms) == std::future_status::ready);
    CHECK(f.get() == VcpuExit::Kicked);
    CpuState s;
    v.get_state(s);
    CHECK(s.halted);
}

TEST_CASE("userspace irqchip: HLT with IF=0 is Halted") {
    REQUIRE_KVM();
    Guest g(false);
    g.load(0x1000, {0xfa, 0xf4}); // cli; hlt
    Vcpu& v = g.start();
    CHECK(g.run_with_timeout(v) == VcpuExit::Halted);
    CpuState s;
    v.get_state(s);
    CHECK(s.halted);
    CHECK(s.rip == 0x1002);
    // A second run() keeps sleeping (no second Halted) until kicked.
    auto f = std::async(std::launch::async, [&] { return v.run(); });
    CHECK(f.wait_for(50ms) == std::future_status::timeout);
    v.kick();
    REQUIRE(f.wait_for(5000ms) == std::future_status::ready);
    CHECK(f.get() == VcpuExit::Kicked);
}

TEST_CASE("userspace irqchip: STI; HLT sleeps until an interrupt, which is injected") {
    REQUIRE_KVM();
    Guest g(false);
    // IVT vector 0x20 -> 0000:1100: out 0x81; iret
    g.load(0x80, {0x00, 0x11, 0x00, 0x00});
    g.load(0x1100, {0xba, 0x81, 0x00, 0xee, 0xcf});
    g.load(0x1000, {
                       0xba, 0x82, 0x00, 0xee, // out 0x82 (about to halt)
                       0xfb, 0xf4,             // sti; hlt
                       0xba, 0x80, 0x00, 0xee, // out 0x80 (after the halt)
                       0xfa, 0xf4,             // cli; hlt
                   });
    Vcpu& v = g.start();
    FakeInterrupts& irq = *g.irqs.back();
    auto f = std::async(std::launch::async, [&] { return v.run(); });
    REQUIRE(g.sink.wait_for_port(0x82, 5000ms));
    CHECK(f.wait_for(50ms) == std::future_status::timeout); // asleep in HLT
    CHECK(g.sink.pio_to(0x80).empty());
    irq.raise(0x20);
    REQUIRE(f.wait_for(5000ms) == std::future_status::ready);
    CHECK(f.get() == VcpuExit::Halted);
    CHECK(g.sink.pio_to(0x81).size() == 1); // the handler ran
    CHECK(g.sink.pio_to(0x80).size() == 1); // and then the code after HLT
    std::lock_guard lk(g.device_lock);
    CHECK(irq.vectors.empty());
}

TEST_CASE("userspace irqchip: an NMI wakes a CLI; HLT and runs its handler (vector 2)") {
    REQUIRE_KVM();
    Guest g(false);
    g.load(0x08, {0x00, 0x11, 0x00, 0x00});         // IVT vector 2 -> 0000:1100
    g.load(0x1100, {0xba, 0x81, 0x00, 0xee, 0xcf}); // out 0x81; iret
    g.load(0x1000,
           {0xfa, 0xf4, 0xba, 0x80, 0x00, 0xee, 0xfa, 0xf4}); // cli; hlt; out 0x80; cli; hlt
    Vcpu& v = g.start();
    FakeInterrupts& irq = *g.irqs.back();
    CHECK(g.run_with_timeout(v) == VcpuExit::Halted);
    CHECK(g.sink.pio_to(0x81).empty());
    irq.send_nmi();
    CHECK(g.run_with_timeout(v) == VcpuExit::Halted); // the second dead halt is reported too
    CHECK(g.sink.pio_to(0x81).size() == 1);
    CHECK(g.sink.pio_to(0x80).size() == 1);
}

TEST_CASE("userspace irqchip: kick() wakes a vCPU sleeping in HLT") {
    REQUIRE_KVM();
    Guest g(false);
    g.load(0x1000, {0xfb, 0xf4, 0xeb, 0xfe}); // sti; hlt
    Vcpu& v = g.start();
    auto f = std::async(std::launch::async, [&] { return v.run(); });
    CHECK(f.wait_for(100ms) == std::future_status::timeout);
    v.kick();
    REQUIRE(f.wait_for(5000ms) == std::future_status::ready);
    CHECK(f.get() == VcpuExit::Kicked);
}

TEST_CASE("userspace irqchip: an AP waits for SIPI, starts at V<<8:0, and INIT sends it back") {
    REQUIRE_KVM();
    Guest g(false, 2);
    g.engine.map_memory(g.mem);
    g.load(0x3000, {0xba, 0x82, 0x00, 0xee, 0xfa, 0xf4}); // out 0x82; cli; hlt
    Vcpu& ap = g.start(1, 0xfff0, false);                 // left in its reset state
    FakeInterrupts& irq = *g.irqs.back();
    CpuState s;
    ap.get_state(s);
    CHECK(s.halted); // wait-for-SIPI
    auto f = std::async(std::launch::async, [&] { return ap.run(); });
    CHECK(f.wait_for(50ms) == std::future_status::timeout);
    CHECK(g.sink.log.empty());
    irq.send_sipi(0x03);
    REQUIRE(f.wait_for(5000ms) == std::future_status::ready);
    CHECK(f.get() == VcpuExit::Halted);
    CHECK(g.sink.pio_to(0x82).size() == 1);
    ap.get_state(s);
    CHECK(s.seg[CS].selector == 0x0300);
    CHECK(s.seg[CS].base == 0x3000);

    irq.send_init();
    auto f2 = std::async(std::launch::async, [&] { return ap.run(); });
    std::this_thread::sleep_for(50ms);
    ap.kick();
    REQUIRE(f2.wait_for(5000ms) == std::future_status::ready);
    CHECK(f2.get() == VcpuExit::Kicked);
    ap.get_state(s);
    CHECK(s.seg[CS].base == 0xffff0000);
    CHECK(s.rip == 0xfff0);
    CHECK(s.halted);
    CHECK(g.sink.pio_to(0x82).size() == 1);
}

TEST_CASE("in-kernel irqchip: an AP in its reset state waits for INIT/SIPI and does not run") {
    REQUIRE_KVM();
    Guest g(true, 2);
    g.engine.map_memory(g.mem);
    Vcpu& ap = g.start(1, 0xfff0, false);
    CpuState s;
    ap.get_state(s);
    CHECK(s.halted);
    auto f = std::async(std::launch::async, [&] { return ap.run(); });
    CHECK(f.wait_for(100ms) == std::future_status::timeout);
    ap.kick();
    REQUIRE(f.wait_for(5000ms) == std::future_status::ready);
    CHECK(f.get() == VcpuExit::Kicked);
    CHECK(g.sink.log.empty());
}

TEST_CASE("userspace irqchip: IA32_APIC_BASE goes to the device model's LAPIC") {
    REQUIRE_KVM();
    Guest g(false);
    g.load(0x1000, {
                       0x66, 0xb9, 0x1b, 0x00, 0x00, 0x00, // mov ecx, 0x1b
                       0x0f, 0x32,                         // rdmsr
                       0xba, 0x80, 0x00, 0x66, 0xef,       // out 0x80, eax
                       0x66, 0xb8, 0x00, 0x09, 0xe0, 0xfe, // mov eax, 0xfee00900
                       0x66, 0x31, 0xd2,                   // xor edx, edx
                       0x0f, 0x30,                         // wrmsr
                       DONE,
                   });
    Vcpu& v = g.start();
    CHECK(g.run_with_timeout(v) == VcpuExit::Kicked);
    auto a = g.sink.pio_to(0x80);
    REQUIRE(a.size() == 1);
    uint32_t eax;
    std::memcpy(&eax, a[0].data.data(), 4);
    CHECK(eax == 0xfed00900);
    std::lock_guard lk(g.device_lock);
    CHECK(g.irqs.back()->apic_base == 0xfee00900);
}

TEST_CASE("an MSR KVM does not know reads as 0 instead of #GP") {
    REQUIRE_KVM();
    Guest g;
    g.load(0x1000, {
                       0x66, 0xb8, 0xef, 0xbe, 0xad, 0xde, // mov eax, 0xdeadbeef
                       0x66, 0xb9, 0x11, 0x06, 0x00, 0x00, // mov ecx, 0x611 (RAPL package energy)
                       0x0f, 0x32,                         // rdmsr
                       0xba, 0x80, 0x00, 0x66, 0xef,       // out 0x80, eax
                       DONE,
                   });
    Vcpu& v = g.start();
    CHECK(g.run_with_timeout(v) == VcpuExit::Kicked);
    auto a = g.sink.pio_to(0x80);
    REQUIRE(a.size() == 1);
    CHECK(a[0].data == std::vector<uint8_t>{0, 0, 0, 0});
}

TEST_CASE("triple fault (IDT limit 0, int3 with no room on the stack) is Shutdown") {
    REQUIRE_KVM();
    Guest g;
    // With an IDT limit of 0, INT3 faults (#GP), so does the #GP and then the #DF: a triple
    // fault on hardware. KVM's real-mode emulator (what a software KVM such as KVM-PVM runs
    // real mode with) ignores the IDT limit, so the stack is also left with one byte: every
    // push of FLAGS at SS:FFFF raises #SS, which escalates the same way there.
    g.load(0x1100, {0, 0, 0, 0, 0, 0}); // IDTR: limit 0, base 0
    g.load(0x1000, {
                       0x0f,
                       0x01,
                       0x1e,
                       0x00,
                       0x11, // lidt [0x1100]
                       0xbc,
                       0x01,
                       0x00, // mov sp, 1
                       0xcc, // int3
                       DONE,
                   });
    Vcpu& v = g.start();
    CHECK(g.run_with_timeout(v) == VcpuExit::Shutdown);
    CHECK(g.sink.pio_to(kDonePort).empty());
}

TEST_CASE("get_state / set_state round trip") {
    REQUIRE_KVM();
    Guest g;
    Vcpu& v = g.start();
    CpuState s;
    v.get_state(s);
    for (unsigned i = 0; i < 16; i++) s.gpr[i] = 0x1111111111111111ull * (i + 1) + i;
    s.rip = 0x1234;
    s.rflags = 0x2 | 0x1 | 0x40 | 0x800; // CF ZF OF
    s.seg[DS].selector = 0x1234;
    s.seg[DS].base = 0x12340;
    s.seg[ES].selector = 0x40;
    s.seg[ES].base = 0x400;
    s.gdt = {0x5000, 0x27};
    s.idt = {0x6000, 0x3ff};
    s.cr2 = 0xdeadb000;
    s.cr3 = 0x7000;
    s.dr[0] = 0x1000;
    s.dr[1] = 0x2000;
    s.dr[2] = 0x3000;
    s.dr[3] = 0x4000;
    s.dr[7] = 0x400 | 0x3; // L0 G0
    s.sysenter_cs = 0x10;
    s.sysenter_esp = 0xffff8000;
    s.sysenter_eip = 0xc0001000;
    s.star = 0x0023001000000000ull;
    s.lstar = 0xffffffff81000000ull;
    s.cstar = 0xffffffff81000100ull;
    s.sfmask = 0x47700;
    s.kernel_gs_base = 0xffff888000000000ull;
    s.pat = 0x0007040600070106ull;
    s.tsc = 1ull << 40;
    for (int i = 0; i < 16; i++) s.fxsave[160 + i] = uint8_t(0xa0 + i); // XMM0
    s.fxsave[32] = 0x55;                                                // ST0 low byte
    s.fxsave[4] = 0x01;                                                 // abridged tag: ST0 valid
    s.fxsave[24] = 0x80; // MXCSR 0x1f80 | DAZ... keep default
    s.nmi_masked = true;
    v.set_state(s);
    CpuState r;
    v.get_state(r);
    for (unsigned i = 0; i < 16; i++) CHECK(r.gpr[i] == s.gpr[i]);
    CHECK(r.rip == s.rip);
    CHECK(r.rflags == s.rflags);
    CHECK(r.seg[DS].selector == 0x1234);
    CHECK(r.seg[DS].base == 0x12340);
    CHECK(r.seg[ES].base == 0x400);
    CHECK(r.gdt.base == 0x5000);
    CHECK(r.gdt.limit == 0x27);
    CHECK(r.idt.base == 0x6000);
    CHECK(r.idt.limit == 0x3ff);
    CHECK(r.cr2 == s.cr2);
    CHECK(r.cr3 == s.cr3);
    CHECK(r.dr[0] == 0x1000);
    CHECK(r.dr[3] == 0x4000);
    CHECK((r.dr[7] & 0xff) == 0x3);
    CHECK(r.sysenter_cs == s.sysenter_cs);
    CHECK(r.sysenter_esp == s.sysenter_esp);
    CHECK(r.sysenter_eip == s.sysenter_eip);
    CHECK(r.star == s.star);
    CHECK(r.lstar == s.lstar);
    CHECK(r.cstar == s.cstar);
    CHECK(r.sfmask == s.sfmask);
    CHECK(r.kernel_gs_base == s.kernel_gs_base);
    CHECK(r.pat == s.pat);
    CHECK(r.misc_enable == 1);
    if (KvmEngine::is_hardware_backed()) {
        CHECK(r.tsc >= s.tsc);
        CHECK(r.tsc < s.tsc + (1ull << 36)); // ~20 s of TSC at most
    } else {
        // A software KVM (KVM-PVM) runs the guest on the host's TSC and cannot offset it.
        MESSAGE("TSC after set_state: " << r.tsc << " (set " << s.tsc
                                        << "; no TSC offsetting here)");
    }
    CHECK(std::memcmp(r.fxsave + 160, s.fxsave + 160, 16) == 0);
    CHECK(r.fxsave[32] == 0x55);
    CHECK(r.fxsave[4] == 0x01);
    CHECK(r.nmi_masked);
    CHECK(r.apic_base == s.apic_base);
    CHECK(r.xcr0 == 1);
}

TEST_CASE("get_state / set_state round trip in 64-bit mode") {
    REQUIRE_KVM();
    Guest g;
    Vcpu& v = g.start();
    CpuState s;
    v.get_state(s);
    s.cr0 = 0x80050033; // PG WP NE ET MP PE
    s.cr4 = 0x20;       // PAE
    s.cr3 = 0x9000;
    s.efer = 0x500; // LME LMA
    s.seg[CS] = Segment{0, 0xffffffff, 0x08, 11, 1, 0, 1, 0, 1, 0, 1, 0};
    for (unsigned r : {ES, SS, DS})
        s.seg[r] = Segment{0, 0xffffffff, 0x10, 3, 1, 0, 1, 0, 0, 1, 1, 0};
    s.seg[FS] = Segment{0x7fff12345000ull, 0xffffffff, 0, 3, 1, 0, 1, 0, 0, 1, 1, 0};
    s.seg[GS] = Segment{0xffff888012345678ull, 0xffffffff, 0, 3, 1, 0, 1, 0, 0, 1, 1, 0};
    s.seg[TR] = Segment{0xfffffe0000003000ull, 0x67, 0x40, 11, 0, 0, 1, 0, 0, 0, 0, 0};
    s.rip = 0xffffffff81000000ull;
    s.gdt = {0xfffffe0000001000ull, 0x7f};
    v.set_state(s);
    CpuState r;
    v.get_state(r);
    CHECK(r.efer == 0x500);
    CHECK(r.cr0 == s.cr0);
    CHECK(r.cr4 == s.cr4);
    CHECK(r.seg[CS].l == 1);
    CHECK(r.seg[CS].selector == 0x08);
    CHECK(r.seg[FS].base == 0x7fff12345000ull);
    CHECK(r.seg[GS].base == 0xffff888012345678ull);
    CHECK(r.seg[TR].base == 0xfffffe0000003000ull);
    CHECK(r.rip == 0xffffffff81000000ull);
    CHECK(r.gdt.base == 0xfffffe0000001000ull);
}

TEST_CASE("CPUID leaf 1 shows the hypervisor bit and the APIC ID; leaf 0x40000000 says KVM") {
    REQUIRE_KVM();
    for (std::string model : {"host", "qemu64"}) {
        CAPTURE(model);
        Guest g(false, 2, model);
        g.engine.map_memory(g.mem);
        g.load(0x1000, {
                           0x66, 0xb8, 0x01, 0x00, 0x00, 0x00, // mov eax, 1
                           0x0f, 0xa2,                         // cpuid
                           0xba, 0x80, 0x00,                   // mov dx, 0x80
                           0x66, 0xef,                         // out dx, eax
                           0x66, 0x89, 0xd8, 0x66, 0xef,       // mov eax, ebx; out
                           0x66, 0x89, 0xc8, 0x66, 0xef,       // mov eax, ecx; out
                           0x66, 0xb8, 0x00, 0x00, 0x00, 0x40, // mov eax, 0x40000000
                           0x0f, 0xa2,                         // cpuid
                           0xba, 0x80, 0x00,                   // mov dx, 0x80 (CPUID wrote EDX)
                           0x66, 0x89, 0xd8, 0x66, 0xef,       // mov eax, ebx; out
                           DONE,
                       });
        Vcpu& v = g.start(1, 0x1000, false);
        CHECK(g.run_with_timeout(v) == VcpuExit::Kicked);
        auto a = g.sink.pio_to(0x80);
        REQUIRE(a.size() == 4);
        uint32_t eax, ebx, ecx;
        std::memcpy(&eax, a[0].data.data(), 4);
        std::memcpy(&ebx, a[1].data.data(), 4);
        std::memcpy(&ecx, a[2].data.data(), 4);
        CHECK((ebx >> 24) == 1);          // APIC ID of vCPU 1
        CHECK(((ebx >> 16) & 0xff) == 2); // two logical processors
        CHECK((ecx & (1u << 31)) != 0);   // hypervisor
        CHECK((ecx & (1u << 21)) == 0);   // no x2APIC with the device model's LAPIC
        CHECK(std::string(reinterpret_cast<const char*>(a[3].data.data()), 4) == "KVMK");
        if (model == "qemu64") CHECK(eax == 0x00060fb1);
        auto* kv = dynamic_cast<KvmVcpu*>(&v);
        REQUIRE(kv);
        CHECK(find_cpuid(kv->cpuid(), 1)->ebx == ebx);
    }
}

TEST_CASE("emulation failure: the assist hook can resume the guest; without it, InternalError") {
    REQUIRE_KVM();
    for (bool with_hook : {true, false}) {
        CAPTURE(with_hook);
        Guest g;
        // jmp far 8000:0000: code fetch from guest-physical 0x80000, where there is no RAM
        g.load(0x1000, {0xea, 0x00, 0x00, 0x00, 0x80});
        g.load(0x1200, {0xba, 0x84, 0x00, 0xee, DONE}); // out 0x84; done
        int calls = 0;
        if (with_hook) {
            g.engine.set_emulation_assist([&](Vcpu& cpu) {
                calls++;
                CpuState s;
                cpu.get_state(s);
                s.seg[CS].selector = 0;
                s.seg[CS].base = 0;
                s.rip = 0x1200;
                cpu.set_state(s);
                return true;
            });
        }
        Vcpu& v = g.start();
        VcpuExit e = g.run_with_timeout(v);
        if (with_hook) {
            CHECK(e == VcpuExit::Kicked);
            CHECK(calls == 1);
            CHECK(g.sink.pio_to(0x84).size() == 1);
        } else {
            CHECK(e == VcpuExit::InternalError);
            CHECK(v.error.find("suberror 1 (emulation failure)") != std::string::npos);
            MESSAGE("error: " << v.error);
        }
    }
}

TEST_CASE("in-kernel irqchip: GSI 0 reaches PIC pin 0 and IOAPIC pin 2; GSI 2 goes nowhere") {
    REQUIRE_KVM();
    Guest g;
    KvmIrqSink* sink = g.engine.kvm_irq_sink();
    REQUIRE(sink);
    CHECK(g.engine.irq_sink() == sink);
    auto master = [&] { return sink->irqchip_state().pic_irr[0]; };
    auto slave = [&] { return sink->irqchip_state().pic_irr[1]; };
    auto ioapic = [&] { return sink->irqchip_state().ioapic_irr; };
    sink->set_irq(0, true);
    CHECK((master() & 0x01) != 0);
    CHECK((ioapic() & (1u << 2)) != 0);
    CHECK((ioapic() & 1u) == 0);
    sink->set_irq(0, false);
    sink->set_irq(2, true);
    CHECK((ioapic() & (1u << 2)) == 0);
    CHECK((master() & 0x04) == 0);
    sink->set_irq(2, false);
    sink->set_irq(9, true);
    CHECK((slave() & 0x02) != 0);
    CHECK((ioapic() & (1u << 9)) != 0);
    sink->set_irq(9, false);
    sink->set_irq(19, true);
    CHECK((ioapic() & (1u << 19)) != 0);
    CHECK(slave() == 0x02); // unchanged: an edge-triggered 8259 input stays requested
    sink->set_irq(19, false);
    CHECK((ioapic() & (1u << 19)) == 0); // the line went low again
    sink->set_irq(24, true);             // beyond the IOAPIC: ignored
}

TEST_CASE("in-kernel PIT: channel 2 gate and OUT as port 0x61 sees them") {
    REQUIRE_KVM();
    Guest g;
    PitChannel2* pit = g.engine.pit_channel2(); // what port 0x61's device takes
    REQUIRE(pit);
    CHECK_FALSE(pit->gate2()); // KVM resets channel 2 with the gate low
    pit->set_gate2(true);
    CHECK(pit->gate2());
    // The guest programs channel 2: mode 0, lobyte/hibyte, count 0xffff (~55 ms).
    g.load(0x1000, {
                       0xb0,
                       0xb0,
                       0xe6,
                       0x43, // mov al, 0xb0; out 0x43, al
                       0xb0,
                       0xff,
                       0xe6,
                       0x42, // mov al, 0xff; out 0x42, al
                       0xe6,
                       0x42, // out 0x42, al
                       DONE,
                   });
    Vcpu& v = g.start();
    CHECK(g.run_with_timeout(v) == VcpuExit::Kicked);
    CHECK(g.sink.pio_to(0x42).empty()); // the kernel handled the PIT ports
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(pit->out2());
    while (!pit->out2() && std::chrono::steady_clock::now() - t0 < 2s)
        std::this_thread::sleep_for(1ms);
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(pit->out2());
    CHECK(waited >= 40ms);
    CHECK(waited < 1500ms);
    pit->set_gate2(false);
    CHECK_FALSE(pit->gate2());
}

TEST_CASE("cost of one PIO exit round trip (100,000 out instructions)") {
    REQUIRE_KVM();
    Guest g;
    g.load(0x1000, {
                       0x66,
                       0xb9,
                       0xa0,
                       0x86,
                       0x01,
                       0x00, // mov ecx, 100000
                       0xba,
                       0x80,
                       0x00, // mov dx, 0x80
                       0xee, // 1: out dx, al
                       0x66,
                       0x49, // dec ecx
                       0x75,
                       0xfb, // jnz 1b
                       DONE,
                   });
    struct Counter : IoSink {
        void handle_io(IoRequest& r) override {
            if (r.addr == 0x80) n++;
            if (r.addr == kDonePort) v->kick();
        }
        uint64_t n = 0;
        Vcpu* v = nullptr;
    } counter;
    g.engine.map_memory(g.mem);
    auto v = g.engine.create_vcpu(0, counter, nullptr);
    counter.v = v.get();
    CpuState s;
    v->get_state(s);
    s.seg[CS].selector = 0;
    s.seg[CS].base = 0;
    s.rip = 0x1000;
    v->set_state(s);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(v->run() == VcpuExit::Kicked);
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    CHECK(counter.n == 100000);
    std::printf(
        "kvm: PIO exit round trip: %.0f ns per exit (%llu exits in %.3f s; hardware-backed: %s)\n",
        ns / double(counter.n + 1), static_cast<unsigned long long>(counter.n), ns / 1e9,
        KvmEngine::is_hardware_backed() ? "yes" : "no");
}

TEST_CASE("read_code translates the linear address and stops where RAM ends") {
    REQUIRE_KVM();
    Guest g;
    g.load(0x1000, {0xba, 0xf8, 0x03, 0xb0, 'A', 0xee, DONE});
    g.load(0xfff8, {1, 2, 3, 4, 5, 6, 7, 8});
    Vcpu& v = g.start();
    uint8_t buf[16] = {};
    CHECK(v.read_code(0x1000, buf, 6) == 6);
    CHECK(buf[0] == 0xba);
    CHECK(buf[4] == 'A');
    CHECK(v.read_code(0xfff8, buf, 16) == 8); // the last 8 bytes of RAM, then nothing
    CHECK(buf[7] == 8);
    CHECK(v.read_code(0x80000, buf, 16) == 0);
    // Page-crossing reads come back whole.
    CHECK(v.read_code(0xffc, buf, 8) == 8);
}
