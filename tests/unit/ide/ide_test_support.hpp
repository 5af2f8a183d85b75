// A small machine for the IDE tests: PIO and MMIO buses, the PciBus, 16 MiB of real GuestMemory,
// a RAM-backed BlockDevice, and the PIIX3 IDE function at 00:01.1 with its legacy ports mapped.
// Every port access takes the device-model lock, as the vCPU dispatcher does, so DMA completions
// on the worker pool never race the test thread.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "block/block_device.hpp"
#include "block/block_worker_pool.hpp"
#include "devmodel/ide/ata.hpp"
#include "devmodel/ide/piix3_ide.hpp"
#include "devmodel/pci/pci_bus.hpp"
#include "devmodel/pci/pci_irq_router.hpp"
#include "vcpu/guest_memory.hpp"
#include "vmexit/bus.hpp"

namespace idetest {

using namespace hvm;

// Sparse RAM disk: sectors never written read as a pattern derived from their LBA, so large
// virtual sizes (LBA48 tests) cost nothing.
class RamDisk : public block::BlockDevice {
  public:
    RamDisk(uint64_t bytes, bool read_only = false, bool wce = true)
        : BlockDevice("ram", bytes, read_only), wce_(wce) {}
    const char* format_name() const override { return "ram"; }
    bool write_cache_enabled() const override { return wce_; }

    static uint8_t pattern(uint64_t offset) { return uint8_t((offset * 7) ^ (offset >> 9)); }
    uint8_t byte(uint64_t offset) const {
        auto it = sectors_.find(offset / 512);
        return it != sectors_.end() ? it->second[offset % 512] : pattern(offset);
    }
    void set(uint64_t offset, std::span<const uint8_t> data) {
        for (size_t i = 0; i < data.size(); i++) {
            auto& s = sector(offset + i);
            s[(offset + i) % 512] = data[i];
        }
    }
    std::atomic<int> flushes{0}, reads{0}, writes{0};
    bool fail_io = false;
    // While closed, reads block on the worker thread (to catch a transfer in flight).
    void close_gate() {
        std::lock_guard g(gate_mutex_);
        gate_closed_ = true;
    }
    void open_gate() {
        {
            std::lock_guard g(gate_mutex_);
            gate_closed_ = false;
        }
        gate_cv_.notify_all();
    }
    bool wait_blocked() {
        std::unique_lock g(gate_mutex_);
        return gate_cv_.wait_for(g, std::chrono::seconds(10), [&] { return blocked_ > 0; });
    }

  protected:
    block::IoStatus do_read(uint64_t offset, std::span<uint8_t> data) override {
        reads++;
        {
            std::unique_lock g(gate_mutex_);
            if (gate_closed_) {
                blocked_++;
                gate_cv_.notify_all();
                gate_cv_.wait(g, [&] { return !gate_closed_; });
                blocked_--;
            }
        }
        if (fail_io) return block::IoStatus::IoError;
        for (size_t i = 0; i < data.size(); i++) data[i] = byte(offset + i);
        return block::IoStatus::Ok;
    }
    block::IoStatus do_write(uint64_t offset, std::span<const uint8_t> data) override {
        writes++;
        if (fail_io) return block::IoStatus::IoError;
        set(offset, data);
        return block::IoStatus::Ok;
    }
    block::IoStatus do_flush() override {
        flushes++;
        return block::IoStatus::Ok;
    }

  private:
    std::array<uint8_t, 512>& sector(uint64_t offset) {
        uint64_t lba = offset / 512;
        auto it = sectors_.find(lba);
        if (it == sectors_.end()) {
            std::array<uint8_t, 512> s;
            for (unsigned i = 0; i < 512; i++) s[i] = pattern(lba * 512 + i);
            it = sectors_.emplace(lba, s).first;
        }
        return it->second;
    }
    bool wce_;
    std::mutex gate_mutex_;
    std::condition_variable gate_cv_;
    bool gate_closed_ = false;
    int blocked_ = 0;
    std::map<uint64_t, std::array<uint8_t, 512>> sectors_;
};

struct Lines : IrqSink {
    std::map<unsigned, bool> levels;
    std::map<unsigned, int> rises;
    void set_irq(unsigned line, bool level) override {
        if (level && !levels[line]) rises[line]++;
        levels[line] = level;
    }
};

constexpr uint64_t kRamSize = 16 << 20;
constexpr uint16_t kBmBase = 0xC120;

struct Rig {
    Bus pio{"pio"};
    Bus mmio{"mmio"};
    Lines isa;
    PciIrqRouter router{isa};
    PciBus pci{pio, mmio, router};
    GuestMemory mem;
    uint8_t* ram = nullptr;
    std::mutex lock;
    std::unique_ptr<block::BlockWorkerPool> pool;
    std::unique_ptr<Piix3Ide> ide;
    RamDisk* disk = nullptr; // primary master, if attached
    RamDisk* cd = nullptr;   // secondary master, if attached

    explicit Rig(bool async = true) {
        ram = mem.allocate(kRamSize, "ram");
        mem.add_region(MemRegion{0, kRamSize, ram, false, "ram"});
        if (async) pool = std::make_unique<block::BlockWorkerPool>(2);
        ide = std::make_unique<Piix3Ide>(IrqPin(&isa, 14), IrqPin(&isa, 15), mem, pool.get(), lock);
    }
    ~Rig() {
        if (pool) pool->drain();
    }

    RamDisk& add_disk(uint64_t bytes, unsigned channel = 0, unsigned unit = 0, bool wce = true) {
        auto d = std::make_unique<RamDisk>(bytes, false, wce);
        RamDisk* p = d.get();
        ide->attach_disk(channel, unit, std::move(d));
        if (channel == 0 && unit == 0) disk = p;
        return *p;
    }
    RamDisk* add_cdrom(uint64_t bytes, unsigned channel = 1, unsigned unit = 0) {
        std::unique_ptr<RamDisk> d;
        if (bytes) d = std::make_unique<RamDisk>(bytes, true, false);
        RamDisk* p = d.get();
        ide->attach_cdrom(channel, unit, std::move(d));
        if (channel == 1 && unit == 0) cd = p;
        return p;
    }
    // Plug in at 00:01.1, reset, map the ports and program BAR4 + command as SeaBIOS does.
    void start(bool bus_master = true) {
        pci.attach(*ide, Piix3Ide::kDevfn);
        ide->reset(ResetKind::PowerOn);
        ide->map_legacy_ports(pio);
        cfg_write(0x20, 4, kBmBase | 1);
        cfg_write(0x04, 2, bus_master ? 0x0105 : 0x0101);
    }

    uint32_t cfg_read(unsigned off, unsigned size) {
        std::lock_guard g(lock);
        return pci.config_read(0, Piix3Ide::kDevfn, off, size);
    }
    void cfg_write(unsigned off, unsigned size, uint32_t v) {
        std::lock_guard g(lock);
        pci.config_write(0, Piix3Ide::kDevfn, off, size, v);
    }
    void out(uint16_t port, unsigned size, uint32_t v) {
        uint8_t b[4];
        le_store(std::span(b, size), v);
        std::lock_guard g(lock);
        pio.write(port, std::span<const uint8_t>(b, size));
    }
    uint32_t in(uint16_t port, unsigned size) {
        uint8_t b[4] = {};
        std::lock_guard g(lock);
        pio.read(port, std::span(b, size));
        return uint32_t(le_load(std::span<const uint8_t>(b, size)));
    }
    void outb(uint16_t p, uint8_t v) { out(p, 1, v); }
    uint8_t inb(uint16_t p) { return uint8_t(in(p, 1)); }
    uint16_t inw(uint16_t p) { return uint16_t(in(p, 2)); }
    void outw(uint16_t p, uint16_t v) { out(p, 2, v); }

    static uint16_t base(unsigned ch) { return Piix3Ide::kCommandPort[ch]; }
    static uint16_t ctl(unsigned ch) { return Piix3Ide::kControlPort[ch]; }
    uint8_t status(unsigned ch = 0) { return inb(base(ch) + 7); }
    uint8_t alt_status(unsigned ch = 0) { return inb(ctl(ch)); }
    uint8_t error(unsigned ch = 0) { return inb(base(ch) + 1); }
    bool irq(unsigned ch = 0) { return isa.levels[14 + ch]; }
    int irq_rises(unsigned ch = 0) { return isa.rises[14 + ch]; }
    void drain() {
        if (pool) pool->drain();
    }

    // LBA28 task file + command.
    void lba28(unsigned ch, unsigned unit, uint32_t lba, uint8_t count) {
        outb(base(ch) + 6, uint8_t(0xE0 | unit << 4 | ((lba >> 24) & 0xF)));
        outb(base(ch) + 2, count);
        outb(base(ch) + 3, uint8_t(lba));
        outb(base(ch) + 4, uint8_t(lba >> 8));
        outb(base(ch) + 5, uint8_t(lba >> 16));
    }
    void lba48(unsigned ch, unsigned unit, uint64_t lba, uint16_t count) {
        outb(base(ch) + 6, uint8_t(0x40 | unit << 4));
        outb(base(ch) + 2, uint8_t(count >> 8));
        outb(base(ch) + 3, uint8_t(lba >> 24));
        outb(base(ch) + 4, uint8_t(lba >> 32));
        outb(base(ch) + 5, uint8_t(lba >> 40));
        outb(base(ch) + 2, uint8_t(count));
        outb(base(ch) + 3, uint8_t(lba));
        outb(base(ch) + 4, uint8_t(lba >> 8));
        outb(base(ch) + 5, uint8_t(lba >> 16));
    }
    void command(unsigned ch, uint8_t cmd) { outb(base(ch) + 7, cmd); }

    // REP INSW of `words` words.
    std::vector<uint8_t> insw(unsigned ch, size_t words) {
        std::vector<uint8_t> v(words * 2);
        for (size_t i = 0; i < words; i++) {
            uint16_t w = inw(base(ch));
            v[2 * i] = uint8_t(w);
            v[2 * i + 1] = uint8_t(w >> 8);
        }
        return v;
    }
    void outsw(unsigned ch, std::span<const uint8_t> data) {
        for (size_t i = 0; i + 1 < data.size(); i += 2)
            outw(base(ch), uint16_t(data[i] | data[i + 1] << 8));
    }
    std::vector<uint16_t> identify(unsigned ch = 0, unsigned unit = 0, uint8_t cmd = 0xEC) {
        outb(base(ch) + 6, uint8_t(0xA0 | unit << 4));
        command(ch, cmd);
        auto raw = insw(ch, 256);
        std::vector<uint16_t> w(256);
        for (unsigned i = 0; i < 256; i++) w[i] = uint16_t(raw[2 * i] | raw[2 * i + 1] << 8);
        return w;
    }
    static std::string ata_string(const std::vector<uint16_t>& w, unsigned first, unsigned n) {
        std::string s;
        for (unsigned i = 0; i < n; i++) {
            s += char(w[first + i] >> 8);
            s += char(w[first + i] & 0xFF);
        }
        while (!s.empty() && s.back() == ' ') s.pop_back();
        return s;
    }

    // Bus master.
    uint16_t bm(unsigned ch) { return uint16_t(kBmBase + 8 * ch); }
    void write_prd(uint32_t table, std::vector<std::pair<uint32_t, uint32_t>> entries,
                   bool terminate = true) {
        for (size_t i = 0; i < entries.size(); i++) {
            uint32_t flags = (terminate && i + 1 == entries.size()) ? 0x80000000u : 0;
            uint32_t count = entries[i].second == 0x10000 ? 0 : entries[i].second;
            std::memcpy(ram + table + 8 * i, &entries[i].first, 4);
            uint32_t w = count | flags;
            std::memcpy(ram + table + 8 * i + 4, &w, 4);
        }
    }
    void bm_setup(unsigned ch, uint32_t table, bool to_memory) {
        out(bm(ch) + 4, 4, table);
        outb(bm(ch) + 2, 0x06); // clear INTR and ERR
        outb(bm(ch), to_memory ? 0x08 : 0x00);
    }
    void bm_start(unsigned ch, bool to_memory) { outb(bm(ch), to_memory ? 0x09 : 0x01); }
    uint8_t bm_status(unsigned ch) { return inb(bm(ch) + 2); }

    // ATAPI: PACKET with the given byte count limit, then the 12-byte CDB.
    void packet(unsigned ch, std::vector<uint8_t> cdb, uint16_t bcl = 0xFFFE, bool dma = false,
                unsigned unit = 0) {
        cdb.resize(12);
        outb(base(ch) + 6, uint8_t(0xA0 | unit << 4));
        outb(base(ch) + 1, dma ? 1 : 0);
        outb(base(ch) + 4, uint8_t(bcl));
        outb(base(ch) + 5, uint8_t(bcl >> 8));
        command(ch, 0xA0);
        outsw(ch, cdb);
    }
    // Reads a whole PIO reply, DRQ block by DRQ block; returns the bytes.
    std::vector<uint8_t> atapi_read_reply(unsigned ch, int* blocks = nullptr) {
        std::vector<uint8_t> all;
        int n = 0;
        for (int guard = 0; guard < 100000; guard++) {
            uint8_t st = status(ch);
            if (!(st & ata::kStatusDrq)) break;
            unsigned bc = inb(base(ch) + 4) | inb(base(ch) + 5) << 8;
            auto part = insw(ch, (bc + 1) / 2);
            part.resize(bc);
            all.insert(all.end(), part.begin(), part.end());
            n++;
        }
        if (blocks) *blocks = n;
        return all;
    }
    std::vector<uint8_t> request_sense(unsigned ch = 1) {
        packet(ch, {0x03, 0, 0, 0, 18});
        return atapi_read_reply(ch);
    }
};

} // namespace idetest
