#include "devmodel/display/cirrus_vga.hpp"

#include <algorithm>

#include "base/error.hpp"
#include "base/log.hpp"

namespace hvm {

using namespace vga;
using namespace cirrus;

namespace {

constexpr uint32_t kStateVersion = 1;
constexpr std::array<uint8_t, 5> kSrMask = {0x03, 0x3D, 0x0F, 0x3F, 0x0E};
constexpr std::array<uint8_t, 9> kGrMask = {0x0F, 0x0F, 0x0F, 0x1F, 0x03, 0x7B, 0x0F, 0x0F, 0xFF};
constexpr uint8_t kGrb16ByteAddr = 0x14; // GRB bits 4+2: 16-byte (16 bpp) latch addressing

uint32_t c6_to_8(uint8_t v) {
    v &= 0x3F;
    uint32_t b = v & 1;
    return uint32_t(v) << 2 | b << 1 | b;
}

} // namespace

CirrusVgaCore::CirrusVgaCore(Clock& clock, uint32_t vram_size)
    : VgaCore(clock, vram_size), bltbuf_(kBltBufSize, 0) {
    reset();
}

// ---- reset and state -----------------------------------------------------------------------

void CirrusVgaCore::reset() {
    VgaCore::reset();
    // QEMU cirrus_reset for the 5446: "4MB 64 bit memory config, always PCI".
    sr_[kSrUnlock] = kLocked;
    sr_[kSrMclk] = 0x2D;
    gr_[0x18] = 0x0F;
    sr_[kSrDramControl] = 0x98;
    sr_[kSrConfig] = 0x20;
    sr_[kSrScratch3] = 0x04; // memory size: 4 = 4 MiB
    cr_[0x27] = kCr27Id5446;
    hidden_dac_lockindex_ = 5;
    hidden_dac_data_ = 0;
    shadow_gr0_ = shadow_gr1_ = 0;
    hidden_palette_.fill(0);
    hw_cursor_x_ = hw_cursor_y_ = 0;
    blt_op_ = BlitOp::None;
    blt_rop_index_ = 2;
    srcptr_ = srcptr_end_ = 0;
    srccounter_ = 0;
    update_bank(0);
    update_bank(1);
}

void CirrusVgaCore::save(StateWriter& out) const {
    VgaCore::save(out);
    out.begin("cirrus-vga-core", kStateVersion);
    for (uint8_t v : {shadow_gr0_, shadow_gr1_, hidden_dac_lockindex_, hidden_dac_data_, blt_mode_,
                      blt_modeext_, uint8_t(blt_op_), blt_rop_index_, uint8_t(enable_blitter_)})
        out.put(v);
    out.put_bytes(hidden_palette_);
    out.put(hw_cursor_x_);
    out.put(hw_cursor_y_);
    for (int v : {blt_pixelwidth_, blt_width_, blt_height_, blt_dstpitch_, blt_srcpitch_})
        out.put(int32_t(v));
    for (uint32_t v : {blt_fgcol_, blt_bgcol_, blt_dstaddr_, blt_srcaddr_, srcptr_, srcptr_end_})
        out.put(v);
    out.put(srccounter_);
    out.put_bytes(bltbuf_);
}

void CirrusVgaCore::load(StateReader& in) {
    VgaCore::load(in);
    in.begin("cirrus-vga-core", 1, kStateVersion);
    uint8_t op, en;
    for (uint8_t* p : {&shadow_gr0_, &shadow_gr1_, &hidden_dac_lockindex_, &hidden_dac_data_,
                       &blt_mode_, &blt_modeext_, &op, &blt_rop_index_, &en})
        *p = in.get<uint8_t>();
    in.get_bytes(hidden_palette_);
    hw_cursor_x_ = in.get<uint32_t>();
    hw_cursor_y_ = in.get<uint32_t>();
    for (int* p : {&blt_pixelwidth_, &blt_width_, &blt_height_, &blt_dstpitch_, &blt_srcpitch_})
        *p = in.get<int32_t>();
    for (uint32_t* p :
         {&blt_fgcol_, &blt_bgcol_, &blt_dstaddr_, &blt_srcaddr_, &srcptr_, &srcptr_end_})
        *p = in.get<uint32_t>();
    srccounter_ = in.get<int64_t>();
    in.get_bytes(bltbuf_);

    // Everything the blitter indexes with must be back inside its bounds before it runs again.
    bool bad = op > uint8_t(BlitOp::SolidFill) || blt_rop_index_ > 15 || en > 1 ||
               blt_pixelwidth_ < 1 || blt_pixelwidth_ > 4 || blt_width_ < 0 ||
               blt_width_ > int(kBltBufSize) || blt_height_ < 0 || blt_height_ > 0x2000 ||
               blt_dstpitch_ < -0x2000 || blt_dstpitch_ > 0x2000 || blt_srcpitch_ < -0x2000 ||
               blt_srcpitch_ > 0x2000 || srcptr_ > srcptr_end_ || srcptr_end_ > kBltBufSize ||
               srccounter_ < 0 || srccounter_ > int64_t(kBltBufSize) * 0x2000 ||
               hw_cursor_x_ > 0x7FF || hw_cursor_y_ > 0x7FF;
    if (!bad && srcptr_ != srcptr_end_) {
        // A system-to-screen blit in flight: the line length must match what was validated.
        bad = blt_width_ == 0 || blt_height_ == 0 || srccounter_ == 0 ||
              blt_srcpitch_ != int(srcptr_end_) || blit_unsafe(true);
    }
    if (bad) throw StateError("cirrus-vga: blitter or cursor state out of range");
    blt_op_ = BlitOp(op);
    enable_blitter_ = en != 0;
    update_bank(0);
    update_bank(1);
}

// ---- ports ---------------------------------------------------------------------------------

uint8_t CirrusVgaCore::read_port(uint16_t port) {
    if (!port_decoded(port)) return 0xFF;
    switch (port) {
    case kSeqData: return read_sr(sr_index_);
    case kPelMask: return read_hidden_dac();
    case kDacWriteIndex: hidden_dac_lockindex_ = 0; return dac_write_index_;
    case kDacData: return read_palette();
    case kGfxData: return read_gr(gr_index_);
    case kCrtDataMono:
    case kCrtDataColor: return read_cr(cr_index_);
    default: return VgaCore::read_port(port);
    }
}

void CirrusVgaCore::write_port(uint16_t port, uint8_t value) {
    if (!port_decoded(port)) return;
    switch (port) {
    case kSeqIndex:
        sr_index_ = value; // all 256 indices: the extended sequencer
        break;
    case kSeqData: write_sr(sr_index_, value); break;
    case kPelMask: write_hidden_dac(value); break;
    case kDacData: write_palette(value); break;
    case kGfxIndex: gr_index_ = value; break;
    case kGfxData: write_gr(gr_index_, value); break;
    case kCrtDataMono:
    case kCrtDataColor: write_cr(cr_index_, value); break;
    default: VgaCore::write_port(port, value); break;
    }
}

uint8_t CirrusVgaCore::read_sr(uint8_t index) {
    if ((index & 0x1F) == kSrCursorX) return sr_[kSrCursorX]; // SR10 aliases at 0x30, 0x50 ...
    if ((index & 0x1F) == kSrCursorY) return sr_[kSrCursorY];
    if (index <= 0x1F) return sr_[index];
    return 0xFF;
}

void CirrusVgaCore::write_sr(uint8_t index, uint8_t value) {
    if ((index & 0x1F) == kSrCursorX) {
        // The index's top three bits are the cursor position's low three bits (QEMU).
        sr_[kSrCursorX] = value;
        hw_cursor_x_ = uint32_t(value) << 3 | (index >> 5);
        return;
    }
    if ((index & 0x1F) == kSrCursorY) {
        sr_[kSrCursorY] = value;
        hw_cursor_y_ = uint32_t(value) << 3 | (index >> 5);
        return;
    }
    if (index <= kSrMemoryMode) {
        sr_[index] = value & kSrMask[index];
    } else if (index == kSrUnlock) {
        sr_[kSrUnlock] = (value & 0x17) == kUnlockKey ? kUnlockKey : kLocked;
    } else if (index == kSrConfig) {
        sr_[kSrConfig] = uint8_t((sr_[kSrConfig] & 0x38) | (value & 0xC7)); // bits 5:3 read-only
    } else if (index >= kSrExtMode && index <= 0x1F) {
        sr_[index] = value;
    }
    // SR5 and indices above 0x1F do not exist.
}

uint8_t CirrusVgaCore::read_gr(uint8_t index) {
    if (index == 0) return shadow_gr0_;
    if (index == 1) return shadow_gr1_;
    if (index < 0x3A) return gr_[index];
    return 0xFF;
}

void CirrusVgaCore::write_gr(uint8_t index, uint8_t value) {
    switch (index) {
    case 0x00:
        gr_[0] = value & kGrMask[0];
        shadow_gr0_ = value;
        break;
    case 0x01:
        gr_[1] = value & kGrMask[1];
        shadow_gr1_ = value;
        break;
    case 0x02:
    case 0x03:
    case 0x04:
    case 0x06:
    case 0x07:
    case 0x08: gr_[index] = value & kGrMask[index]; break;
    case 0x05:
        gr_[5] = value & 0x7F; // bits 2:0 = write modes 0-5
        break;
    case kGrBank0:
    case kGrBank1:
    case kGrBankMode:
        gr_[index] = value;
        update_bank(0);
        update_bank(1);
        break;
    case 0x10:
    case 0x11:
    case 0x12:
    case 0x13:
    case 0x14:
    case 0x15:
    case 0x20:
    case 0x22:
    case 0x24:
    case 0x26:
    case 0x28:
    case 0x29:
    case 0x2C:
    case 0x2D:
    case 0x2F:
    case 0x30:
    case 0x32:
    case 0x33:
    case 0x34:
    case 0x35:
    case 0x38:
    case 0x39: gr_[index] = value; break;
    case 0x21:
    case 0x23:
    case 0x25:
    case 0x27:
        gr_[index] = value & 0x1F; // 13-bit width, height and pitches
        break;
    case 0x2A:
        gr_[index] = value & 0x3F; // 22-bit destination
        if (gr_[kGrBltStatus] & kBltStatusAutoStart) blit_start();
        break;
    case 0x2E: gr_[index] = value & 0x3F; break;
    case kGrBltStatus: write_blt_status(value); break;
    default: break;
    }
}

uint8_t CirrusVgaCore::read_cr(uint8_t index) {
    if (index <= kCrLineCompare) return cr_[index];
    switch (index) {
    case 0x24: // attribute controller toggle readback
        return uint8_t(ar_flip_flop_ << 7);
    case 0x26: // attribute controller index readback
        return ar_index_ & 0x3F;
    case 0x19:
    case 0x1A:
    case 0x1B:
    case 0x1C:
    case 0x1D:
    case 0x22:
    case 0x25:
    case 0x27: return cr_[index];
    default: return 0xFF;
    }
}

void CirrusVgaCore::write_cr(uint8_t index, uint8_t value) {
    if (index <= kCrLineCompare)
        write_crtc(index, value);
    else if (index >= 0x19 && index <= 0x1D)
        cr_[index] = value;
    // CR22/CR24/CR26/CR27 are read-only; others do not exist.
}

uint8_t CirrusVgaCore::read_hidden_dac() {
    // The hidden DAC register answers the fifth consecutive read of 0x3C6 (QEMU counts from
    // the last 0x3C8 read or 0x3C6 write).
    if (++hidden_dac_lockindex_ == 5) {
        hidden_dac_lockindex_ = 0;
        return hidden_dac_data_;
    }
    return 0xFF;
}

void CirrusVgaCore::write_hidden_dac(uint8_t value) {
    if (hidden_dac_lockindex_ == 4) hidden_dac_data_ = value;
    hidden_dac_lockindex_ = 0;
}

uint8_t CirrusVgaCore::read_palette() {
    if (!(sr_[kSrCursorAttr] & kCursorHiddenPel)) return read_dac_data();
    uint8_t v = hidden_palette_[(dac_read_index_ & 0x0F) * 3u + dac_sub_index_];
    if (++dac_sub_index_ == 3) {
        dac_sub_index_ = 0;
        dac_read_index_++;
    }
    return v;
}

void CirrusVgaCore::write_palette(uint8_t value) {
    if (!(sr_[kSrCursorAttr] & kCursorHiddenPel)) {
        write_dac_data(value);
        return;
    }
    dac_cache_[dac_sub_index_] = value;
    if (++dac_sub_index_ == 3) {
        std::copy(dac_cache_.begin(), dac_cache_.end(),
                  hidden_palette_.begin() + (dac_write_index_ & 0x0F) * 3);
        dac_sub_index_ = 0;
        dac_write_index_++;
    }
}

// ---- banking and memory --------------------------------------------------------------------

void CirrusVgaCore::update_bank(unsigned index) {
    // QEMU cirrus_update_bank_ptr: GR9 (and GRA in dual-bank mode) in 4K or 16K units; in
    // single-bank mode the second 32K of the window continues the first bank.
    uint8_t grb = gr_[kGrBankMode];
    uint32_t offset = (grb & kGrbDualBank) ? gr_[kGrBank0 + index] : gr_[kGrBank0];
    offset <<= (grb & kGrbGranularity16K) ? 14 : 12;
    uint32_t limit = offset >= vram_size_ ? 0 : vram_size_ - offset;
    if (!(grb & kGrbDualBank) && index != 0) {
        if (limit > 0x8000) {
            offset += 0x8000;
            limit -= 0x8000;
        } else {
            limit = 0;
        }
    }
    bank_base_[index] = limit ? offset : 0;
    bank_limit_[index] = limit;
}

uint32_t CirrusVgaCore::extended_address(uint32_t addr) const {
    // 8- and 16-byte addressing (GRB bits 1 and 4+2) scale the CPU address (QEMU).
    uint8_t grb = gr_[kGrBankMode];
    uint64_t a = addr;
    if ((grb & kGrb16ByteAddr) == kGrb16ByteAddr)
        a <<= 4;
    else if (grb & kGrbAddr8)
        a <<= 3;
    return uint32_t(a & vram_mask_);
}

uint32_t CirrusVgaCore::bank_address(uint32_t window_offset, bool& ok) const {
    unsigned bank = (window_offset >> 15) & 1;
    uint32_t off = window_offset & 0x7FFF;
    ok = off < bank_limit_[bank];
    if (!ok) return 0;
    return extended_address(off + bank_base_[bank]);
}

void CirrusVgaCore::write_mode45(unsigned mode, uint32_t addr, uint8_t value) {
    // Write modes 4 and 5: each data bit writes the foreground colour (GR1) or, in mode 5,
    // the background (GR0); 8 pixels of 1 or 2 bytes (QEMU cirrus_mem_writeb_mode4and5_*).
    bool wide = (gr_[kGrBankMode] & kGrb16ByteAddr) == kGrb16ByteAddr;
    for (unsigned x = 0; x < 8; x++) {
        bool fg = value & (0x80u >> x);
        if (!fg && mode != 5) continue;
        if (wide) {
            uint32_t d = (addr + 2 * x) & vram_mask_ & ~1u;
            vram_[d] = fg ? shadow_gr1_ : shadow_gr0_;
            vram_[d + 1] = fg ? gr_[0x11] : gr_[0x10];
        } else {
            vram_[(addr + x) & vram_mask_] = fg ? shadow_gr1_ : shadow_gr0_;
        }
    }
    mark_dirty(addr, wide ? 16 : 8);
}

void CirrusVgaCore::write_video_byte(uint32_t addr, uint8_t value) {
    unsigned mode = gr_[kGrMode] & 7;
    if (mode < 4 || mode > 5 || !(gr_[kGrBankMode] & kGrbExtWrite)) {
        vram_[addr & vram_mask_] = value;
        mark_dirty(addr, 1);
    } else {
        write_mode45(mode, addr, value);
    }
}

uint8_t CirrusVgaCore::read_window(uint32_t offset) {
    if (!(sr_[kSrExtMode] & kSr07Extended)) return VgaCore::read_window(offset);
    uint32_t addr = offset & 0x1FFFF;
    if (addr < 0x10000) {
        bool ok;
        uint32_t a = bank_address(addr, ok);
        return ok ? vram_[a] : 0xFF;
    }
    if (addr >= 0x18000 && addr < 0x18100) {
        // Blitter registers at 0xB8000 (SR17 bit 2 set, bit 6 clear).
        if ((sr_[kSrConfig] & (kSr17MmioEnable | kSr17MmioLinear)) == kSr17MmioEnable)
            return read_blt_reg(addr & 0xFF);
    }
    return 0xFF;
}

void CirrusVgaCore::write_window(uint32_t offset, uint8_t value) {
    if (!(sr_[kSrExtMode] & kSr07Extended)) {
        VgaCore::write_window(offset, value);
        return;
    }
    uint32_t addr = offset & 0x1FFFF;
    if (addr < 0x10000) {
        if (blit_in_progress()) {
            blit_feed(value);
            return;
        }
        bool ok;
        uint32_t a = bank_address(addr, ok);
        if (ok) write_video_byte(a, value);
    } else if (addr >= 0x18000 && addr < 0x18100) {
        if ((sr_[kSrConfig] & (kSr17MmioEnable | kSr17MmioLinear)) == kSr17MmioEnable)
            write_blt_reg(addr & 0xFF, value);
    }
}

uint8_t CirrusVgaCore::read_lfb(uint32_t offset) {
    if (offset >= vram_size_) return 0xFF; // the blit aperture reads nothing (QEMU)
    uint32_t addr = offset & vram_mask_;
    uint32_t mmio_mask = vram_size_ - 256;
    if ((sr_[kSrConfig] & (kSr17MmioEnable | kSr17MmioLinear)) ==
            (kSr17MmioEnable | kSr17MmioLinear) &&
        (addr & mmio_mask) == mmio_mask)
        return read_blt_reg(addr & 0xFF);
    return vram_[extended_address(addr)];
}

void CirrusVgaCore::write_lfb(uint32_t offset, uint8_t value) {
    if (offset >= vram_size_) {
        if (offset >= kBlitApertureBase && offset < kBlitApertureBase + kBlitApertureSize &&
            blit_in_progress())
            blit_feed(value);
        return;
    }
    uint32_t addr = offset & vram_mask_;
    uint32_t mmio_mask = vram_size_ - 256;
    if ((sr_[kSrConfig] & (kSr17MmioEnable | kSr17MmioLinear)) ==
            (kSr17MmioEnable | kSr17MmioLinear) &&
        (addr & mmio_mask) == mmio_mask) {
        write_blt_reg(addr & 0xFF, value);
    } else if (blit_in_progress()) {
        blit_feed(value);
    } else {
        write_video_byte(extended_address(addr), value);
    }
}

uint8_t CirrusVgaCore::read_mmio(uint32_t offset) {
    if (offset >= 0x100) return read_blt_reg(offset - 0x100);
    return read_port(uint16_t(0x3C0 + offset));
}

void CirrusVgaCore::write_mmio(uint32_t offset, uint8_t value) {
    if (offset >= 0x100)
        write_blt_reg(offset - 0x100, value);
    else
        write_port(uint16_t(0x3C0 + offset), value);
}

uint8_t CirrusVgaCore::read_blt_reg(unsigned address) {
    static constexpr std::array<uint8_t, 4> kBg = {0x00, 0x10, 0x12, 0x14};
    static constexpr std::array<uint8_t, 4> kFg = {0x01, 0x11, 0x13, 0x15};
    if (address < 4) return read_gr(kBg[address]);
    if (address < 8) return read_gr(kFg[address - 4]);
    switch (address) {
    case kMmioWidth:
    case kMmioWidth + 1:
    case kMmioHeight:
    case kMmioHeight + 1:
    case kMmioDstPitch:
    case kMmioDstPitch + 1:
    case kMmioSrcPitch:
    case kMmioSrcPitch + 1:
    case kMmioDstAddr:
    case kMmioDstAddr + 1:
    case kMmioDstAddr + 2: return read_gr(uint8_t(kGrBltWidth + (address - kMmioWidth)));
    case kMmioSrcAddr:
    case kMmioSrcAddr + 1:
    case kMmioSrcAddr + 2: return read_gr(uint8_t(kGrBltSrc + (address - kMmioSrcAddr)));
    case kMmioWriteMask: return read_gr(kGrBltWriteMask);
    case kMmioMode: return read_gr(kGrBltMode);
    case kMmioRop: return read_gr(kGrBltRop);
    case kMmioModeExt: return read_gr(kGrBltModeExt);
    case kMmioTransColor:
    case kMmioTransColor + 1:
        return read_gr(uint8_t(kGrBltTransColor + (address - kMmioTransColor)));
    case kMmioTransMask:
    case kMmioTransMask + 1: return read_gr(uint8_t(kGrBltTransMask + (address - kMmioTransMask)));
    case kMmioStatus: return read_gr(kGrBltStatus);
    default: return 0xFF;
    }
}

void CirrusVgaCore::write_blt_reg(unsigned address, uint8_t value) {
    static constexpr std::array<uint8_t, 4> kBg = {0x00, 0x10, 0x12, 0x14};
    static constexpr std::array<uint8_t, 4> kFg = {0x01, 0x11, 0x13, 0x15};
    if (address < 4) return write_gr(kBg[address], value);
    if (address < 8) return write_gr(kFg[address - 4], value);
    switch (address) {
    case kMmioWidth:
    case kMmioWidth + 1:
    case kMmioHeight:
    case kMmioHeight + 1:
    case kMmioDstPitch:
    case kMmioDstPitch + 1:
    case kMmioSrcPitch:
    case kMmioSrcPitch + 1:
    case kMmioDstAddr:
    case kMmioDstAddr + 1:
    case kMmioDstAddr + 2: return write_gr(uint8_t(kGrBltWidth + (address - kMmioWidth)), value);
    case kMmioSrcAddr:
    case kMmioSrcAddr + 1:
    case kMmioSrcAddr + 2: return write_gr(uint8_t(kGrBltSrc + (address - kMmioSrcAddr)), value);
    case kMmioWriteMask: return write_gr(kGrBltWriteMask, value);
    case kMmioMode: return write_gr(kGrBltMode, value);
    case kMmioRop: return write_gr(kGrBltRop, value);
    case kMmioModeExt: return write_gr(kGrBltModeExt, value);
    case kMmioTransColor:
    case kMmioTransColor + 1:
        return write_gr(uint8_t(kGrBltTransColor + (address - kMmioTransColor)), value);
    case kMmioTransMask:
    case kMmioTransMask + 1:
        return write_gr(uint8_t(kGrBltTransMask + (address - kMmioTransMask)), value);
    case kMmioStatus: return write_gr(kGrBltStatus, value);
    default: return; // includes the destination address's fourth byte (QEMU ignores it)
    }
}

// ---- display hooks -------------------------------------------------------------------------

unsigned CirrusVgaCore::display_bpp() const {
    uint8_t sr7 = sr_[kSrExtMode];
    if (!(sr7 & kSr07Extended)) return 0;
    // 16 bpp: the hidden DAC's low nibble picks 5:5:5 (0) or 5:6:5 (1) (QEMU: others -> 15).
    unsigned depth16 = (hidden_dac_data_ & 0x0F) == 1 ? 16 : 15;
    switch (sr7 & kSr07BppMask) {
    case kSr07Bpp16DoubleClock:
    case kSr07Bpp16: return depth16;
    case kSr07Bpp24: return 24;
    case kSr07Bpp32: return 32;
    default: return 8;
    }
}

VgaCore::DisplayOffsets CirrusVgaCore::display_offsets() const {
    DisplayOffsets o;
    o.line_offset = (cr_[kCrOffset] | uint32_t(cr_[0x1B] & 0x10) << 4) << 3;
    o.start_addr = (uint32_t(cr_[kCrStartHigh]) << 8) | cr_[kCrStartLow] |
                   (uint32_t(cr_[0x1B] & 0x01) << 16) | (uint32_t(cr_[0x1B] & 0x0C) << 15) |
                   (uint32_t(cr_[0x1D] & 0x80) << 12);
    o.line_compare = cr_[kCrLineCompare] | (uint32_t(cr_[kCrOverflow] & 0x10) << 4) |
                     (uint32_t(cr_[kCrMaxScanLine] & 0x40) << 3);
    return o;
}

void CirrusVgaCore::display_resolution(uint32_t& width, uint32_t& height) const {
    VgaCore::display_resolution(width, height);
    if (cr_[0x1A] & 0x01) height *= 2; // interlaced
}

uint64_t CirrusVgaCore::display_signature() const {
    return uint64_t(sr_[kSrExtMode]) | uint64_t(cr_[0x1A]) << 8 | uint64_t(cr_[0x1B]) << 16 |
           uint64_t(cr_[0x1D]) << 24 | uint64_t(hidden_dac_data_) << 32;
}

uint32_t CirrusVgaCore::cursor_pattern_base() const {
    // Cursor patterns live in the last 16 KiB of VRAM, 256 bytes apart (QEMU).
    uint32_t sel = (sr_[kSrCursorAttr] & kCursorLarge) ? (sr_[kSrCursorPattern] & 0x3C)
                                                       : (sr_[kSrCursorPattern] & 0x3F);
    return vram_size_ - 16 * 1024 + sel * 256;
}

uint64_t CirrusVgaCore::cursor_signature() const {
    if (!(sr_[kSrCursorAttr] & kCursorShow)) return 0;
    uint64_t s = uint64_t(sr_[kSrCursorAttr]) | uint64_t(sr_[kSrCursorPattern]) << 8 |
                 uint64_t(hw_cursor_x_) << 16 | uint64_t(hw_cursor_y_) << 32;
    for (unsigned i : {0u, 1u, 2u, 45u, 46u, 47u}) s = s * 31 + hidden_palette_[i];
    return s | 1;
}

void CirrusVgaCore::cursor_rows(uint32_t& first, uint32_t& end) const {
    if (!(sr_[kSrCursorAttr] & kCursorShow)) {
        first = end = 0;
        return;
    }
    first = hw_cursor_y_;
    end = hw_cursor_y_ + ((sr_[kSrCursorAttr] & kCursorLarge) ? 64 : 32);
}

void CirrusVgaCore::draw_cursor_line(uint32_t* row, uint32_t width, uint32_t y) const {
    uint8_t attr = sr_[kSrCursorAttr];
    if (!(attr & kCursorShow)) return;
    bool large = attr & kCursorLarge;
    uint32_t h = large ? 64 : 32;
    if (y < hw_cursor_y_ || y >= hw_cursor_y_ + h) return;
    // 32x32: plane 0 rows of 4 bytes, plane 1 128 bytes later; 64x64: 16-byte rows holding
    // 8 bytes of plane 0 then 8 of plane 1.
    uint64_t src = cursor_pattern_base() + uint64_t(y - hw_cursor_y_) * (large ? 16 : 4);
    uint32_t plane1 = large ? 8 : 128;
    uint32_t x1 = hw_cursor_x_;
    if (x1 >= width) return;
    uint32_t w = std::min(h, width - x1);
    auto colour = [&](unsigned i) {
        return c6_to_8(hidden_palette_[i * 3]) << 16 | c6_to_8(hidden_palette_[i * 3 + 1]) << 8 |
               c6_to_8(hidden_palette_[i * 3 + 2]);
    };
    uint32_t color0 = colour(0), color1 = colour(15);
    for (uint32_t x = 0; x < w; x++) {
        unsigned b0 = (vram_byte(src + x / 8) >> (7 - x % 8)) & 1;
        unsigned b1 = (vram_byte(src + plane1 + x / 8) >> (7 - x % 8)) & 1;
        uint32_t& p = row[x1 + x];
        switch (b0 | b1 << 1) {
        case 1:
            p ^= 0xFFFFFF; // inverted
            break;
        case 2: p = color0; break;
        case 3: p = color1; break;
        default: break; // transparent
        }
    }
}

// ---- the PCI function ----------------------------------------------------------------------

uint32_t CirrusVga::checked_vram_size(unsigned vgamem_mb) {
    if (vgamem_mb != 4 && vgamem_mb != 8 && vgamem_mb != 16)
        fail("cirrus-vga: vgamem_mb must be 4, 8 or 16 (got " + std::to_string(vgamem_mb) + ")");
    return vgamem_mb * 1024u * 1024u;
}

CirrusVga::CirrusVga(Clock& clock, std::vector<uint8_t> rom, Options options)
    : PciDevice(PciIdentity{kVendor, kDevice5446, 0x00, 0x030000, 0, pci::kQemuSubsystemVendor,
                            pci::kQemuSubsystem, 0, 0}),
      core_(clock, checked_vram_size(options.vgamem_mb)), rom_(std::move(rom)) {
    core_.set_blitter_enabled(options.blitter);
    define_bar(
        0, PciBar{PciBarKind::Memory32, kBar0Size, true, &lfb_, AccessSizes{1, 4}, "cirrus-lfb"});
    define_bar(1, PciBar{PciBarKind::Memory32, kMmioSize, false, &mmio_, AccessSizes{1, 4},
                         "cirrus-mmio"});
    if (!rom_.empty()) {
        if (rom_.size() > 0x1000000) fail("cirrus-vga: VGA BIOS image larger than 16 MiB");
        uint32_t size = 0x800;
        while (size < rom_.size()) size <<= 1;
        define_rom(size, &rom_io_, "cirrus-rom");
    }
}

void CirrusVga::device_reset(ResetKind kind) {
    (void)kind;
    core_.reset();
}

void CirrusVga::save_extra(StateWriter& out) const {
    core_.save(out);
}

void CirrusVga::load_extra(StateReader& in) {
    core_.load(in);
}

void CirrusVga::Lfb::io_read(uint64_t offset, std::span<uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++) data[i] = c_.read_lfb(uint32_t(offset + i));
}

void CirrusVga::Lfb::io_write(uint64_t offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++) c_.write_lfb(uint32_t(offset + i), data[i]);
}

void CirrusVga::Mmio::io_read(uint64_t offset, std::span<uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++) data[i] = c_.read_mmio(uint32_t(offset + i));
}

void CirrusVga::Mmio::io_write(uint64_t offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++) c_.write_mmio(uint32_t(offset + i), data[i]);
}

void CirrusVga::Rom::io_read(uint64_t offset, std::span<uint8_t> data) {
    // Beyond the image the ROM BAR reads zeros (QEMU pads the ROM region with zeros).
    for (size_t i = 0; i < data.size(); i++)
        data[i] = offset + i < bytes_.size() ? bytes_[offset + i] : 0;
}

} // namespace hvm
