// QEMU's firmware configuration device (fw_cfg), x86 I/O-port flavour, as QEMU 7.2 presents it to
// SeaBIOS and Linux (QEMU docs/specs/fw_cfg.rst; shared/reference/pc-platform.md §1.1-§1.4):
//  - 0x510 selector (16-bit write; bit 15 = arch-local items, bit 14 ignored), 0x511 data
//    (8-bit reads that auto-increment; 0 past the end), both in one 2-byte window whose byte
//    reads all return data, as QEMU's fw_cfg_comb_mem_ops do;
//  - 0x514/0x518 the big-endian DMA address, high then low; writing the low half (or the whole
//    64 bits) runs the transfer; reading gives "QEMU CFG";
//  - DMA descriptors {be32 control; be32 length; be64 address} in guest RAM, reached only through
//    GuestMemory: anything outside RAM sets the ERROR bit and touches nothing on the host.
// Items are numbered keys; named files live from selector 0x20 on, sorted by name, and are listed
// in the directory item 0x19. The device knows nothing about ACPI or SMBIOS; the machine fills it.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "devmodel/device.hpp"
#include "vcpu/guest_memory.hpp"

namespace hvm {

class Bus;

namespace fw_cfg {
// Keys (include/standard-headers/linux/qemu_fw_cfg.h)
constexpr uint16_t kSignature = 0x00, kId = 0x01, kUuid = 0x02, kRamSize = 0x03;
constexpr uint16_t kNoGraphic = 0x04, kNbCpus = 0x05, kMachineId = 0x06;
constexpr uint16_t kKernelAddr = 0x07, kKernelSize = 0x08, kKernelCmdline = 0x09;
constexpr uint16_t kInitrdAddr = 0x0a, kInitrdSize = 0x0b, kBootDevice = 0x0c, kNuma = 0x0d;
constexpr uint16_t kBootMenu = 0x0e, kMaxCpus = 0x0f, kKernelEntry = 0x10, kKernelData = 0x11;
constexpr uint16_t kInitrdData = 0x12, kCmdlineAddr = 0x13, kCmdlineSize = 0x14;
constexpr uint16_t kCmdlineData = 0x15, kSetupAddr = 0x16, kSetupSize = 0x17, kSetupData = 0x18;
constexpr uint16_t kFileDir = 0x19, kFileFirst = 0x20;
constexpr uint16_t kWriteChannel = 0x4000; // obsolete since QEMU 2.4: ignored
constexpr uint16_t kArchLocal = 0x8000;
constexpr uint16_t kEntryMask = 0x3FFF; // key bits without the write-channel and arch bits
// x86 arch-local keys (QEMU hw/i386/fw_cfg.h)
constexpr uint16_t kAcpiTables = 0x8000, kSmbiosEntries = 0x8001, kIrq0Override = 0x8002;
constexpr uint16_t kE820Table = 0x8003, kHpet = 0x8004;
// FW_CFG_ID feature bits
constexpr uint32_t kIdTraditional = 1u << 0, kIdDma = 1u << 1;
// DMA control bits
constexpr uint32_t kDmaError = 1u << 0, kDmaRead = 1u << 1, kDmaSkip = 1u << 2;
constexpr uint32_t kDmaSelect = 1u << 3, kDmaWrite = 1u << 4;
constexpr uint64_t kDmaSignature = 0x51454D5520434647ull; // "QEMU CFG"
constexpr size_t kDmaDescriptorSize = 16;
constexpr size_t kDirEntrySize = 64; // {be32 size; be16 select; u16 reserved; char name[56]}
constexpr size_t kMaxNameLength = 55;
constexpr size_t kDefaultFileSlots = 0x20; // QEMU FW_CFG_FILE_SLOTS_DFLT
// Ports of the `pc` machine
constexpr uint16_t kIoBase = 0x510; // selector; data at +1
constexpr uint16_t kIoLength = 2;
constexpr uint16_t kDmaBase = 0x514; // DMA address, high dword at +0, low at +4
constexpr uint16_t kDmaLength = 8;
} // namespace fw_cfg

class FwCfg : public Device {
  public:
    // `mem` is where DMA descriptors and buffers live; `file_slots` bounds the directory.
    explicit FwCfg(GuestMemory& mem, size_t file_slots = fw_cfg::kDefaultFileSlots);
    FwCfg(const FwCfg&) = delete;
    FwCfg& operator=(const FwCfg&) = delete;

    // Registers 0x510 (2 bytes, sizes 1-2) and 0x514 (8 bytes, sizes 1-8) on the PIO bus; both
    // handlers apply QEMU's access rules themselves (fw_cfg_comb_valid, fw_cfg_dma_mem_valid).
    void attach(Bus& pio);
    IoHandler& io_port() { return io_; }
    IoHandler& dma_port() { return dma_; }

    // --- Content (called by the machine while building it; never by the guest) ---
    // A numbered item. Keys below 0x20 or 0x8000-0x801F; re-adding replaces the content.
    void add_item(uint16_t key, std::vector<uint8_t> bytes);
    void add_u16(uint16_t key, uint16_t v);
    void add_u32(uint16_t key, uint32_t v);
    void add_u64(uint16_t key, uint64_t v);
    void add_string(uint16_t key, std::string_view s); // NUL-terminated
    // A named file (1-55 characters, unique). Throws UserError when the directory is full or the
    // name is taken, std::invalid_argument for a bad name.
    void add_file(std::string_view name, std::vector<uint8_t> bytes, bool writable = false);
    // Replaces a file's content (its size may change); throws std::invalid_argument if absent.
    void modify_file(std::string_view name, std::vector<uint8_t> bytes);
    // Called whenever the guest selects the item: lets content be built lazily on first use
    // (QEMU builds the ACPI tables this way). The callback may call modify_file().
    void set_select_callback(std::string_view file, std::function<void()> cb);
    // Called after a DMA write changed a writable file.
    void set_write_callback(std::string_view file,
                            std::function<void(uint32_t offset, uint32_t length)> cb);

    const std::vector<uint8_t>* find_file(std::string_view name) const;
    const std::vector<uint8_t>* find_item(uint16_t key) const;
    std::optional<uint16_t> file_selector(std::string_view name) const;
    size_t file_count() const { return files_.size(); }
    // The directory item's bytes (be32 count, then 64-byte entries sorted by name).
    std::vector<uint8_t> directory() const;

    // --- Device ---
    const char* name() const override { return "fw_cfg"; }
    void reset(ResetKind kind) override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

    // --- Register behaviour (what the two IoHandlers call) ---
    void select(uint16_t key);
    uint8_t read_data_byte();
    void write_dma_address(unsigned offset, std::span<const uint8_t> data);
    uint8_t read_dma_register(uint64_t offset) const;
    uint64_t dma_address() const { return dma_addr_; }

  private:
    struct Item {
        std::vector<uint8_t> data;
        bool writable = false;
        std::function<void()> on_select;
        std::function<void(uint32_t, uint32_t)> on_write;
    };
    struct File {
        std::string name;
        Item item;
    };
    struct IoPort : IoHandler {
        FwCfg* dev;
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;
    };
    struct DmaPort : IoHandler {
        FwCfg* dev;
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;
    };

    Item* current();
    Item* item_for_key(uint16_t key);
    File* file_by_name(std::string_view name);
    const File* file_by_name(std::string_view name) const;
    void rebuild_directory();
    void run_dma();
    // One transfer; returns the control word to write back (0 or kDmaError).
    uint32_t dma_transfer(uint32_t control, uint32_t length, uint64_t address);

    GuestMemory& mem_;
    size_t file_slots_;
    std::map<uint16_t, Item> items_; // keys < 0x20 and arch-local keys
    std::vector<File> files_;        // sorted by name; selector = 0x20 + index
    IoPort io_;
    DmaPort dma_;
    static constexpr uint16_t kInvalid = 0xFFFF; // QEMU FW_CFG_INVALID
    uint16_t cur_key_ = kInvalid;
    uint32_t cur_offset_ = 0;
    uint64_t dma_addr_ = 0;
};

} // namespace hvm
