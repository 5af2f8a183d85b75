// The IBM VGA register set and memory organisation (IBM VGA/XGA Technical Reference; FreeVGA),
// as QEMU 7.2's hw/display/vga.c presents it to SeaBIOS's VGA BIOS. Used by the Cirrus
// CL-GD5446 (cirrus_vga.hpp) and later by `-vga std`.
//
// Ports 0x3B0-0x3DF (one window, register io() at vga::kPortBase, length vga::kPortCount,
// AccessSizes{1,1}; a 16-bit OUT to an index port is split by the bus into index then data):
//  - 0x3C2 write: Miscellaneous Output (bit 0 selects colour 0x3Dx or mono 0x3Bx CRTC/status
//    ports; the other set then reads 0xFF and ignores writes, as QEMU's vga_ioport_invalid).
//    0x3CC reads it back. 0x3C2 read: Input Status 0 (0, as QEMU).
//  - 0x3BA/0x3DA read: Input Status 1. Vertical retrace and display-disabled bits follow the
//    CRTC timing against the injected Clock (QEMU's "precise" retrace method: 25.175/28.322 MHz
//    dot clock from misc bits 3:2, 8/9-dot characters from SR1 bit 0, SR1 bit 3 halves it).
//    Reading it resets the attribute controller flip-flop. Write: Feature Control (bit 4 kept;
//    0x3CA reads it).
//  - 0x3C0/0x3C1 attribute controller: index/data flip-flop on 0x3C0, index bit 5 = palette
//    address source (screen on). 0x3C1 reads the indexed register (0 above 0x14).
//  - 0x3C4/0x3C5 sequencer (index masked to 0-7), 0x3CE/0x3CF graphics controller (index masked
//    to 0-15), 0x3B4/5 or 0x3D4/5 CRTC (256 indices kept, as QEMU; CR11 bit 7 write-protects
//    CR0-CR7 except CR7 bit 4). Values are masked with QEMU's sr_mask/gr_mask.
//  - 0x3C6 PEL mask (stored and read back), 0x3C7 DAC read index (read: DAC state 0/3),
//    0x3C8 DAC write index, 0x3C9 DAC data: three accesses per entry (R, G, B; 6 bits each).
//
// VRAM: planes interleaved, as QEMU's layout: byte 4*a+p is plane p at address a. Chain-4 then
// addresses VRAM bytewise (mode 13h, SVGA linear modes), odd/even puts even addresses in planes
// 0/2 and odd ones in 1/3 (text: characters plane 0, attributes plane 1, fonts plane 2).
// The legacy window 0xA0000-0xBFFFF (window(), length 0x20000, AccessSizes{1,4}) decodes per
// GR6 bits 3:2 (128K at A0000 / 64K at A0000 / 32K at B0000 / 32K at B8000); write modes 0-3
// with rotate, set/reset, logical op, bit mask and map mask; read modes 0 and 1 (colour
// compare); latches loaded by every planar read. Every VRAM offset is bounds-checked.
//
// Rendering: render() draws the current mode (text with fonts from plane 2, 9-dot columns,
// cursor and blink; 16-colour planar; CGA 4-colour; 256-colour; and, through the display hooks
// a chip overrides, packed 8/15/16/24/32 bpp) into a 32-bit XRGB Framebuffer, with the per-row
// dirty hint from a VRAM dirty bitmap. text_screen() reads a text mode back as characters.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "base/clock.hpp"
#include "base/state.hpp"
#include "devmodel/device.hpp"
#include "devmodel/display/framebuffer.hpp"

namespace hvm {

namespace vga {
constexpr uint16_t kPortBase = 0x3B0;
constexpr uint16_t kPortCount = 0x30;
constexpr uint64_t kWindowBase = 0xA0000;
constexpr uint64_t kWindowSize = 0x20000;

// Ports.
constexpr uint16_t kCrtIndexMono = 0x3B4, kCrtDataMono = 0x3B5, kInputStatus1Mono = 0x3BA;
constexpr uint16_t kAttrWrite = 0x3C0, kAttrRead = 0x3C1;
constexpr uint16_t kMiscWrite = 0x3C2, kInputStatus0 = 0x3C2;
constexpr uint16_t kSeqIndex = 0x3C4, kSeqData = 0x3C5;
constexpr uint16_t kPelMask = 0x3C6, kDacReadIndex = 0x3C7, kDacState = 0x3C7;
constexpr uint16_t kDacWriteIndex = 0x3C8, kDacData = 0x3C9;
constexpr uint16_t kFeatureRead = 0x3CA, kMiscRead = 0x3CC;
constexpr uint16_t kGfxIndex = 0x3CE, kGfxData = 0x3CF;
constexpr uint16_t kCrtIndexColor = 0x3D4, kCrtDataColor = 0x3D5, kInputStatus1Color = 0x3DA;

// Sequencer.
constexpr unsigned kSrReset = 0x00, kSrClocking = 0x01, kSrMapMask = 0x02, kSrCharMap = 0x03,
                   kSrMemoryMode = 0x04;
constexpr uint8_t kSr01Dots8 = 0x01, kSr01DotClockDiv2 = 0x08;
constexpr uint8_t kSr04Chain4 = 0x08;
// Graphics controller.
constexpr unsigned kGrSetReset = 0x00, kGrEnableSetReset = 0x01, kGrColorCompare = 0x02,
                   kGrDataRotate = 0x03, kGrReadMap = 0x04, kGrMode = 0x05, kGrMisc = 0x06,
                   kGrColorDontCare = 0x07, kGrBitMask = 0x08;
constexpr uint8_t kGr05ReadMode1 = 0x08, kGr05OddEven = 0x10;
constexpr uint8_t kGr06Graphics = 0x01;
// CRTC.
constexpr unsigned kCrHTotal = 0x00, kCrHDisplayEnd = 0x01, kCrHRetraceStart = 0x04,
                   kCrHRetraceEnd = 0x05, kCrVTotal = 0x06, kCrOverflow = 0x07,
                   kCrMaxScanLine = 0x09, kCrCursorStart = 0x0A, kCrCursorEnd = 0x0B,
                   kCrStartHigh = 0x0C, kCrStartLow = 0x0D, kCrCursorHigh = 0x0E,
                   kCrCursorLow = 0x0F, kCrVRetraceStart = 0x10, kCrVRetraceEnd = 0x11,
                   kCrVDisplayEnd = 0x12, kCrOffset = 0x13, kCrMode = 0x17, kCrLineCompare = 0x18;
constexpr uint8_t kCr11Protect = 0x80;
constexpr uint8_t kCr0aCursorOff = 0x20;
// Attribute controller.
constexpr unsigned kArMode = 0x10, kArOverscan = 0x11, kArPlaneEnable = 0x12, kArPanning = 0x13,
                   kArColorSelect = 0x14, kArCount = 0x15;
constexpr uint8_t kArIndexPaletteSource = 0x20; // index bit 5: screen on
constexpr uint8_t kAr10LineGraphics = 0x04, kAr10Blink = 0x08, kAr10P54Select = 0x80;
// Misc output / input status 1.
constexpr uint8_t kMiscColor = 0x01;
constexpr uint8_t kSt01DisplayDisabled = 0x01, kSt01VRetrace = 0x08;

constexpr unsigned kPaletteSize = 256 * 3;
} // namespace vga

class VgaCore {
  public:
    static constexpr uint32_t kMinVramSize = 256 * 1024;
    static constexpr uint32_t kMaxVramSize = 256u * 1024 * 1024;
    static constexpr uint32_t kDirtyBlock = 1024; // bytes of VRAM per dirty bit
    // Cursor blinks every 16 frames at 60 Hz (QEMU VGA_TEXT_CURSOR_PERIOD_MS / 2); blinking
    // characters at half that rate (IBM VGA: 32 frames).
    static constexpr uint64_t kCursorBlinkHalfPeriodNs = 266'666'667;
    static constexpr uint32_t kMaxFrameWidth = 2048, kMaxFrameHeight = 2048;

    // `vram_size`: a power of two in [kMinVramSize, kMaxVramSize] (a wiring constant).
    VgaCore(Clock& clock, uint32_t vram_size);
    virtual ~VgaCore() = default;
    VgaCore(const VgaCore&) = delete;
    VgaCore& operator=(const VgaCore&) = delete;

    // Ports 0x3B0-0x3DF and the 0xA0000 window as bus regions.
    IoHandler& io() { return io_; }
    IoHandler& window() { return window_; }

    // One byte access to an absolute port number (0x3B0-0x3DF; others read 0).
    virtual uint8_t read_port(uint16_t port);
    virtual void write_port(uint16_t port, uint8_t value);
    // One byte access at `offset` into the 0xA0000 window, standard VGA decoding.
    virtual uint8_t read_window(uint32_t offset);
    virtual void write_window(uint32_t offset, uint8_t value);

    // Power-on register state (QEMU vga_common_reset); VRAM is left as it is.
    virtual void reset();
    virtual void save(StateWriter& out) const;
    virtual void load(StateReader& in);

    // Draws the current mode into `fb` (resized as needed). Call with the device-model lock held.
    void render(Framebuffer& fb);
    // The current text screen; columns == 0 when not in a text mode.
    TextScreen text_screen() const;
    bool in_text_mode() const;

    // Register files, for chips built on the core, the machine's monitor and tests.
    uint8_t sr(unsigned i) const { return sr_[i & 0xFF]; }
    uint8_t gr(unsigned i) const { return gr_[i & 0xFF]; }
    uint8_t cr(unsigned i) const { return cr_[i & 0xFF]; }
    uint8_t ar(unsigned i) const { return ar_[i & 0x1F]; }
    uint8_t misc_output() const { return msr_; }
    bool attr_flip_flop() const { return ar_flip_flop_ != 0; }
    uint32_t latch() const { return latch_; }
    const std::array<uint8_t, vga::kPaletteSize>& palette() const { return palette_; }
    std::span<uint8_t> vram() { return vram_; }
    std::span<const uint8_t> vram() const { return vram_; }
    uint32_t vram_size() const { return vram_size_; }
    Clock& clock() { return clock_; }

    // Marks VRAM [offset, offset+len) as changed (offsets wrap at the VRAM size).
    void mark_dirty(uint32_t offset, uint32_t len);

  protected:
    // ---- hooks for chips that extend the VGA (Cirrus) -------------------------------------
    struct DisplayOffsets {
        uint32_t line_offset = 0; // bytes of VRAM per scanline
        uint32_t start_addr = 0;  // in 4-byte VRAM units (the CRTC's address counter)
        uint32_t line_compare = 0;
    };
    // Bits per pixel of a packed-pixel mode; 0 = a standard VGA mode (QEMU get_bpp).
    virtual unsigned display_bpp() const { return 0; }
    virtual DisplayOffsets display_offsets() const;
    // Graphics resolution in pixels before doubling (QEMU get_resolution).
    virtual void display_resolution(uint32_t& width, uint32_t& height) const;
    // Draws a hardware cursor onto screen row `y` (`row` holds `width` pixels).
    virtual void draw_cursor_line(uint32_t* row, uint32_t width, uint32_t y) const {
        (void)row;
        (void)width;
        (void)y;
    }
    // State of that cursor (position, shape, colours) and the rows it covers: when the
    // signature changes, the old and new rows are reported dirty.
    virtual uint64_t cursor_signature() const { return 0; }
    virtual void cursor_rows(uint32_t& first, uint32_t& end) const { first = end = 0; }
    // Chip registers that change how VRAM is shown (hashed into the mode signature).
    virtual uint64_t display_signature() const { return 0; }

    // ---- the standard register behaviour, for overriding chips ----------------------------
    bool port_decoded(uint16_t port) const; // false for the inactive mono/colour set
    void write_crtc(uint8_t index, uint8_t value);
    void write_attr(uint8_t value);
    uint8_t read_input_status_1();
    uint8_t read_dac_data();
    void write_dac_data(uint8_t value);
    uint8_t vram_byte(uint64_t addr) const { return vram_[addr & vram_mask_]; }

    Clock& clock_;
    const uint32_t vram_size_;
    const uint32_t vram_mask_;
    std::vector<uint8_t> vram_;

    std::array<uint8_t, 256> sr_{};
    std::array<uint8_t, 256> gr_{};
    std::array<uint8_t, 256> cr_{};
    std::array<uint8_t, 32> ar_{};
    uint8_t sr_index_ = 0, gr_index_ = 0, cr_index_ = 0, ar_index_ = 0;
    uint8_t ar_flip_flop_ = 0;
    uint8_t msr_ = 0, fcr_ = 0, st00_ = 0, st01_ = 0;
    uint8_t pel_mask_ = 0xFF;
    uint8_t dac_state_ = 0, dac_sub_index_ = 0, dac_read_index_ = 0, dac_write_index_ = 0;
    std::array<uint8_t, 3> dac_cache_{};
    std::array<uint8_t, vga::kPaletteSize> palette_{};
    bool dac_8bit_ = false;    // VBE 8-bit DAC (set by a VBE extension; never by plain VGA)
    uint32_t bank_offset_ = 0; // VBE bank for memory map 1 (0 on plain VGA)
    uint32_t latch_ = 0;
    bool font_dirty_ = true; // plane 2 written since the last render

  private:
    class Io : public IoHandler {
      public:
        explicit Io(VgaCore& v) : v_(v) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;

      private:
        VgaCore& v_;
    };
    class Window : public IoHandler {
      public:
        explicit Window(VgaCore& v) : v_(v) {}
        void io_read(uint64_t offset, std::span<uint8_t> data) override;
        void io_write(uint64_t offset, std::span<const uint8_t> data) override;

      private:
        VgaCore& v_;
    };

    // Rendering (vga_render.cpp).
    enum class GfxMode : uint8_t { Blank, Text, Graphic };
    GfxMode current_mode() const;
    uint64_t mode_signature(GfxMode mode) const;
    bool range_dirty(uint64_t addr, uint64_t len) const;
    void render_blank(Framebuffer& fb);
    void render_text(Framebuffer& fb, bool full);
    void render_graphic(Framebuffer& fb, bool full);
    void palette16(std::array<uint32_t, 16>& pal) const;
    void palette256(std::array<uint32_t, 256>& pal) const;
    void text_geometry(unsigned& cols, unsigned& rows, unsigned& cw, unsigned& ch) const;

    Io io_{*this};
    Window window_{*this};

    std::vector<uint64_t> dirty_; // one bit per kDirtyBlock of VRAM
    uint64_t last_signature_ = 0;
    bool rendered_once_ = false;
    uint32_t last_width_ = 640, last_height_ = 480;
    uint64_t last_cursor_signature_ = 0;
    uint32_t last_cursor_first_ = 0, last_cursor_end_ = 0;
    uint64_t last_blink_phase_ = ~0ull;
    uint32_t last_text_cursor_ = ~0u;
};

} // namespace hvm
