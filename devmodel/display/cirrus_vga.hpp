// Cirrus Logic CL-GD5446 as QEMU 7.2's `cirrus-vga` presents it (QEMU hw/display/cirrus_vga.c,
// cirrus_vga_rop.h, cirrus_vga_rop2.h for the facts SeaBIOS's vgabios-cirrus and the XP/Linux
// drivers rely on; Finn Thoegersen's VGADOC for register names).
//
// PCI 1013:00B8 rev 0, class 030000, subsystem 1AF4:1100, no INTx (pc-platform.md §6):
//  - BAR0, 32 MiB prefetchable memory: [0, vram) the linear framebuffer (offsets masked to the
//    VRAM size; with SR17 bits 6+2 set, the last 256 bytes of VRAM are the blitter registers
//    instead), [16 MiB, 20 MiB) the system-to-screen blit aperture (writes feed the blitter).
//  - BAR1, 4 KiB memory: [0, 0x100) the VGA ports 0x3C0-0x4BF, [0x100, ...) the blitter
//    registers (QEMU cirrus_mmio_io).
//  - Expansion ROM: the VGA BIOS image handed in by the machine (vgabios-cirrus.bin, 64 KiB BAR).
// Legacy decode: ports 0x3B0-0x3DF and the 0xA0000 window; the machine registers io() and
// window() on its buses (they stay decoded regardless of the PCI command register, as QEMU's
// legacy VGA regions do).
//
// Extensions over the VGA core:
//  - SR6 unlock (0x12 reads back 0x12, anything else 0x0F); SR7 extended mode and pixel depth;
//    SR0F/SR15/SR17/SR1F as QEMU reports a 4 MiB 5446; SR10/SR11 cursor position with the low
//    3 bits from the index used; SR12/SR13 cursor attributes and pattern.
//  - GR0/GR1 full 8-bit shadows (blit colours), GR5 extended write modes 4/5, GR9/GRA bank
//    offsets, GRB banking mode (dual bank, 16K granularity, 8/16-byte addressing), GR10-GR15
//    colour bytes, GR20-GR39 blitter, GR31 start/reset/status.
//  - CR1A/CR1B/CR1D start address and offset bits, CR24/CR26 attribute readback, CR27 = 0xB8.
//  - Hidden DAC register behind four 0x3C6 reads (15/16 bpp select), hidden cursor palette
//    (SR12 bit 1).
//  - BitBLT: every ROP QEMU implements, forward and backward, transparent compare (8/16 bpp),
//    pattern fill, colour expansion (opaque and transparent, inverted), solid fill, system-to-
//    screen through the 0xA0000 window, the linear window or the blit aperture. Every blit is
//    checked whole (width, height, both pitches, source and destination, negative pitch
//    included) before a pixel moves; a refused blit moves nothing and leaves the engine idle
//    (GR31 start/busy cleared), as QEMU's bitblt_ignore. VRAM is always addressed
//    `offset & (vram_size - 1)` (CVE-2014-8106, CVE-2017-2615, CVE-2017-2620).
//  - The hardware cursor (32x32 or 64x64, 2 planes: transparent / inverted / colour 0 /
//    colour 15 of the hidden palette) is drawn by the renderer.
#pragma once
#include <array>
#include <climits>
#include <cstdint>
#include <vector>

#include "base/log.hpp"
#include "devmodel/display/vga_core.hpp"
#include "devmodel/pci/pci_device.hpp"

namespace hvm {

namespace cirrus {
constexpr uint16_t kVendor = 0x1013;
constexpr uint16_t kDevice5446 = 0x00B8;
constexpr uint8_t kCr27Id5446 = 0xB8; // (0x2E << 2)

constexpr uint32_t kBar0Size = 0x2000000;         // 32 MiB
constexpr uint32_t kBlitApertureBase = 0x1000000; // in BAR0
constexpr uint32_t kBlitApertureSize = 0x400000;
constexpr uint32_t kMmioSize = 0x1000;

// Sequencer.
constexpr unsigned kSrUnlock = 0x06, kSrExtMode = 0x07, kSrDramControl = 0x0F, kSrCursorX = 0x10,
                   kSrCursorY = 0x11, kSrCursorAttr = 0x12, kSrCursorPattern = 0x13,
                   kSrScratch3 = 0x15, kSrConfig = 0x17, kSrMclk = 0x1F;
constexpr uint8_t kUnlockKey = 0x12, kLocked = 0x0F;
constexpr uint8_t kSr07Extended = 0x01, kSr07BppMask = 0x0E;
constexpr uint8_t kSr07Bpp8 = 0x00, kSr07Bpp16DoubleClock = 0x02, kSr07Bpp24 = 0x04,
                  kSr07Bpp16 = 0x06, kSr07Bpp32 = 0x08;
constexpr uint8_t kCursorShow = 0x01, kCursorHiddenPel = 0x02, kCursorLarge = 0x04;
constexpr uint8_t kSr17MmioEnable = 0x04, kSr17MmioLinear = 0x40;
// Graphics controller.
constexpr unsigned kGrBank0 = 0x09, kGrBank1 = 0x0A, kGrBankMode = 0x0B;
constexpr uint8_t kGrbDualBank = 0x01, kGrbAddr8 = 0x02, kGrbExtWrite = 0x04,
                  kGrbGranularity16K = 0x20;
constexpr unsigned kGrBltWidth = 0x20, kGrBltHeight = 0x22, kGrBltDstPitch = 0x24,
                   kGrBltSrcPitch = 0x26, kGrBltDst = 0x28, kGrBltSrc = 0x2C,
                   kGrBltWriteMask = 0x2F, kGrBltMode = 0x30, kGrBltStatus = 0x31, kGrBltRop = 0x32,
                   kGrBltModeExt = 0x33, kGrBltTransColor = 0x34, kGrBltTransMask = 0x38;
constexpr uint8_t kBltBackwards = 0x01, kBltMemSysDest = 0x02, kBltMemSysSrc = 0x04,
                  kBltTransparentComp = 0x08, kBltPixelWidthMask = 0x30, kBltPatternCopy = 0x40,
                  kBltColorExpand = 0x80;
constexpr uint8_t kBltStatusBusy = 0x01, kBltStatusStart = 0x02, kBltStatusReset = 0x04,
                  kBltStatusFifoUsed = 0x10, kBltStatusAutoStart = 0x80;
constexpr uint8_t kBltExtDwordGranularity = 0x01, kBltExtColorExpInv = 0x02,
                  kBltExtSolidFill = 0x04;
// ROP codes (GR32).
constexpr uint8_t kRop0 = 0x00, kRopSrcAndDst = 0x05, kRopNop = 0x06, kRopSrcAndNotDst = 0x09,
                  kRopNotDst = 0x0B, kRopSrc = 0x0D, kRop1 = 0x0E, kRopNotSrcAndDst = 0x50,
                  kRopSrcXorDst = 0x59, kRopSrcOrDst = 0x6D, kRopNotSrcOrNotDst = 0x90,
                  kRopSrcNotXorDst = 0x95, kRopSrcOrNotDst = 0xAD, kRopNotSrc = 0xD0,
                  kRopNotSrcOrDst = 0xD6, kRopNotSrcAndNotDst = 0xDA;
// Blitter registers in the MMIO views (QEMU CIRRUS_MMIO_*).
constexpr unsigned kMmioBgColor = 0x00, kMmioFgColor = 0x04, kMmioWidth = 0x08, kMmioHeight = 0x0A,
                   kMmioDstPitch = 0x0C, kMmioSrcPitch = 0x0E, kMmioDstAddr = 0x10,
                   kMmioSrcAddr = 0x14, kMmioWriteMask = 0x17, kMmioMode = 0x18, kMmioRop = 0x1A,
                   kMmioModeExt = 0x1B, kMmioTransColor = 0x1C, kMmioTransMask = 0x20,
                   kMmioStatus = 0x40;
constexpr uint32_t kBltBufSize = 2048 * 4; // one line of system-to-screen data
} // namespace cirrus

// The register-level chip: VGA core plus Cirrus extensions and the blitter.
class CirrusVgaCore : public VgaCore {
  public:
    // `vram_size`: 4, 8 or 16 MiB (QEMU accepts exactly these for cirrus-vga).
    CirrusVgaCore(Clock& clock, uint32_t vram_size);

    uint8_t read_port(uint16_t port) override;
    void write_port(uint16_t port, uint8_t value) override;
    // The 0xA0000 window: standard VGA until SR7 bit 0, then two banks and the blitter MMIO
    // at 0xB8000 (SR17).
    uint8_t read_window(uint32_t offset) override;
    void write_window(uint32_t offset, uint8_t value) override;
    // BAR0 offsets (linear framebuffer + blit aperture) and BAR1 offsets.
    uint8_t read_lfb(uint32_t offset);
    void write_lfb(uint32_t offset, uint8_t value);
    uint8_t read_mmio(uint32_t offset);
    void write_mmio(uint32_t offset, uint8_t value);

    void reset() override;
    void save(StateWriter& out) const override;
    void load(StateReader& in) override;

    // Blitter register bytes by MMIO offset (0x00-0xFF), as both MMIO views decode them.
    uint8_t read_blt_reg(unsigned address);
    void write_blt_reg(unsigned address, uint8_t value);

    uint8_t hidden_dac() const { return hidden_dac_data_; }
    bool blit_in_progress() const { return srcptr_ != srcptr_end_; }
    uint32_t bank_base(unsigned i) const { return bank_base_[i & 1]; }
    uint32_t bank_limit(unsigned i) const { return bank_limit_[i & 1]; }
    uint64_t blits_refused() const { return blits_refused_; }
    // QEMU's `blitter=off`: GR31 start requests are ignored.
    void set_blitter_enabled(bool on) { enable_blitter_ = on; }

  protected:
    unsigned display_bpp() const override;
    DisplayOffsets display_offsets() const override;
    void display_resolution(uint32_t& width, uint32_t& height) const override;
    void draw_cursor_line(uint32_t* row, uint32_t width, uint32_t y) const override;
    uint64_t cursor_signature() const override;
    void cursor_rows(uint32_t& first, uint32_t& end) const override;
    uint64_t display_signature() const override;

  private:
    enum class BlitOp : uint8_t {
        None,
        Forward,
        Backward,
        ForwardTransp,
        BackwardTransp,
        PatternFill,
        ColorExpand,
        ColorExpandTransp,
        ColorExpandPattern,
        ColorExpandPatternTransp,
        SolidFill,
    };
    // Lowest and highest VRAM byte a blit would write (dry run of its first and last line).
    struct Extent {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
    };

    uint8_t read_sr(uint8_t index);
    void write_sr(uint8_t index, uint8_t value);
    uint8_t read_gr(uint8_t index);
    void write_gr(uint8_t index, uint8_t value);
    uint8_t read_cr(uint8_t index);
    void write_cr(uint8_t index, uint8_t value);
    uint8_t read_hidden_dac();
    void write_hidden_dac(uint8_t value);
    uint8_t read_palette();
    void write_palette(uint8_t value);
    void update_bank(unsigned index);
    uint32_t bank_address(uint32_t window_offset, bool& ok) const;
    uint32_t extended_address(uint32_t offset) const;
    void write_video_byte(uint32_t addr, uint8_t value);
    void write_mode45(unsigned mode, uint32_t addr, uint8_t value);
    uint32_t cursor_pattern_base() const;

    // Blitter (cirrus_blitter.cpp).
    void write_blt_status(uint8_t value);
    void blit_start();
    void blit_reset();
    bool region_unsafe(int64_t pitch, int64_t addr) const;
    bool blit_unsafe(bool dst_only) const;
    bool blit_solid_fill(uint8_t rop);
    bool blit_video_to_video();
    bool blit_pattern_copy();
    bool blit_cpu_to_video();
    void blit_feed(uint8_t value);
    void blit_cpu_to_video_next();
    void run_op(uint32_t dst, uint32_t src, int dstpitch, int srcpitch, int width, int height);
    void invalidate(uint32_t dst, int pitch, int bytes, int lines);
    uint32_t fg_color() const;
    uint32_t bg_color() const;
    uint8_t src8(uint32_t addr) const;
    uint16_t src16(uint32_t addr) const;
    uint32_t src32(uint32_t addr) const;
    bool extent_inside(uint32_t dst, uint32_t src, int dstpitch, int srcpitch);
    template <unsigned R>
    void run_rop(uint32_t dst, uint32_t src, int dstpitch, int srcpitch, int width, int height);
    template <unsigned R> void rop8(uint32_t addr, uint8_t s, bool transparent, uint8_t key);
    template <unsigned R> void rop16(uint32_t addr, uint16_t s, bool transparent, uint16_t key);
    template <unsigned R> void rop32(uint32_t addr, uint32_t s);
    void record_write(int64_t lo, int64_t hi);

    uint8_t shadow_gr0_ = 0, shadow_gr1_ = 0;
    uint8_t hidden_dac_lockindex_ = 5, hidden_dac_data_ = 0;
    std::array<uint32_t, 2> bank_base_{}, bank_limit_{};
    std::array<uint8_t, 48> hidden_palette_{};
    uint32_t hw_cursor_x_ = 0, hw_cursor_y_ = 0;

    // Blit in flight (system-to-screen) or being set up.
    int blt_pixelwidth_ = 1;
    int blt_width_ = 0, blt_height_ = 0;
    int blt_dstpitch_ = 0, blt_srcpitch_ = 0;
    uint32_t blt_fgcol_ = 0, blt_bgcol_ = 0;
    uint32_t blt_dstaddr_ = 0, blt_srcaddr_ = 0;
    uint8_t blt_mode_ = 0, blt_modeext_ = 0;
    BlitOp blt_op_ = BlitOp::None;
    uint8_t blt_rop_index_ = 2; // NOP
    std::vector<uint8_t> bltbuf_;
    uint32_t srcptr_ = 0, srcptr_end_ = 0; // indices into bltbuf_
    int64_t srccounter_ = 0;
    uint64_t blits_refused_ = 0;
    bool enable_blitter_ = true;
    RateLimiter refused_log_{8, 4096};
    Extent* dry_run_ = nullptr; // set while measuring a blit: writes are recorded, not done
};

// The PCI function: identity, BARs and ROM around a CirrusVgaCore.
class CirrusVga : public PciDevice {
  public:
    struct Options {
        unsigned vgamem_mb = 4; // 4, 8 or 16
        bool blitter = true;    // QEMU's `blitter` property
    };

    // `rom`: the VGA BIOS image for the expansion ROM BAR (may be empty: no ROM BAR).
    // Throws UserError for a vgamem_mb QEMU would refuse.
    CirrusVga(Clock& clock, std::vector<uint8_t> rom, Options options);

    // Legacy decode for the machine: ports 0x3B0 length 0x30 AccessSizes{1,1}; 0xA0000
    // length 0x20000 AccessSizes{1,4}.
    IoHandler& vga_io() { return core_.io(); }
    IoHandler& vga_window() { return core_.window(); }
    CirrusVgaCore& core() { return core_; }
    const CirrusVgaCore& core() const { return core_; }

    void render(Framebuffer& fb) { core_.render(fb); }
    TextScreen text_screen() const { return core_.text_screen(); }

    const char* name() const override { return "cirrus-vga"; }

  protected:
    void device_reset(ResetKind kind) override;
    void save_extra(StateWriter& out) const override;
    void load_extra(StateReader& in) override;

  private:
    class Lfb : public IoHandler {
      public:
        explicit Lfb(CirrusVgaCore& c) : c_(c) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;

      private:
        CirrusVgaCore& c_;
    };
    class Mmio : public IoHandler {
      public:
        explicit Mmio(CirrusVgaCore& c) : c_(c) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;

      private:
        CirrusVgaCore& c_;
    };
    class Rom : public IoHandler {
      public:
        explicit Rom(const std::vector<uint8_t>& bytes) : bytes_(bytes) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t, std::span<const uint8_t>) override {}

      private:
        const std::vector<uint8_t>& bytes_;
    };

    static uint32_t checked_vram_size(unsigned vgamem_mb);

    CirrusVgaCore core_;
    std::vector<uint8_t> rom_;
    Lfb lfb_{core_};
    Mmio mmio_{core_};
    Rom rom_io_{rom_};
};

} // namespace hvm
