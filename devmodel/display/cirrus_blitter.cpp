// The CL-GD5446 BitBLT engine, with QEMU 7.2's semantics (hw/display/cirrus_vga.c,
// cirrus_vga_rop.h, cirrus_vga_rop2.h): which modes exist, the pixel loops, skip-left, pattern
// addressing, colour selection and the status register.
//
// Safety (the Cirrus CVE history: CVE-2014-8106, CVE-2017-2615, CVE-2017-2620, and QEMU's
// later overflow fixes): a blit is checked whole before any pixel moves.
//  1. QEMU's rectangle check (blit_region_is_unsafe) on destination and, for screen-to-screen
//     copies, source, in 64-bit arithmetic, negative pitch included; a zero pitch is refused.
//  2. Then a dry run of the blit's first and last line records the lowest and highest byte the
//     pixel loops would write (24/32-bit pixels past the width, 16/32-bit alignment, skip-left)
//     and the blit is refused unless all of it lies inside VRAM. Lines in between lie between
//     those two (addresses are monotonic in the line number).
// Every VRAM access is additionally `offset & (vram_size - 1)` and every blit-buffer access
// `index & (kBltBufSize - 1)`, so even a wrong check could not reach outside either array.
// A refused blit moves nothing and leaves the engine idle (GR31 start/busy cleared).
#include "devmodel/display/cirrus_vga.hpp"

#include <algorithm>

#include "base/log.hpp"

namespace hvm {

using namespace cirrus;

namespace {

// GR32 codes in QEMU's rop_to_index order; anything else is a no-op.
uint8_t rop_index_of(uint8_t rop) {
    switch (rop) {
    case kRop0: return 0;
    case kRopSrcAndDst: return 1;
    case kRopNop: return 2;
    case kRopSrcAndNotDst: return 3;
    case kRopNotDst: return 4;
    case kRopSrc: return 5;
    case kRop1: return 6;
    case kRopNotSrcAndDst: return 7;
    case kRopSrcXorDst: return 8;
    case kRopSrcOrDst: return 9;
    case kRopNotSrcOrNotDst: return 10;
    case kRopSrcNotXorDst: return 11;
    case kRopSrcOrNotDst: return 12;
    case kRopNotSrc: return 13;
    case kRopNotSrcOrDst: return 14;
    case kRopNotSrcAndNotDst: return 15;
    default: return 2;
    }
}

template <unsigned R, typename T> constexpr T rop_fn(T d, T s) {
    if constexpr (R == 0)
        return T(0);
    else if constexpr (R == 1)
        return T(s & d);
    else if constexpr (R == 2)
        return d;
    else if constexpr (R == 3)
        return T(s & ~d);
    else if constexpr (R == 4)
        return T(~d);
    else if constexpr (R == 5)
        return s;
    else if constexpr (R == 6)
        return T(~T(0));
    else if constexpr (R == 7)
        return T(~s & d);
    else if constexpr (R == 8)
        return T(s ^ d);
    else if constexpr (R == 9)
        return T(s | d);
    else if constexpr (R == 10)
        return T(~s | ~d);
    else if constexpr (R == 11)
        return T(~(s ^ d));
    else if constexpr (R == 12)
        return T(s | ~d);
    else if constexpr (R == 13)
        return T(~s);
    else if constexpr (R == 14)
        return T(~s | d);
    else
        return T(~s & ~d);
}

constexpr uint32_t kBufMask = kBltBufSize - 1;

} // namespace

// ---- pixel writes ----------------------------------------------------------------------------

void CirrusVgaCore::record_write(int64_t lo, int64_t hi) {
    dry_run_->lo = std::min(dry_run_->lo, lo);
    dry_run_->hi = std::max(dry_run_->hi, hi);
}

template <unsigned R>
void CirrusVgaCore::rop8(uint32_t addr, uint8_t s, bool transparent, uint8_t key) {
    if (dry_run_) {
        int64_t a = int32_t(addr);
        record_write(a, a);
        return;
    }
    uint8_t& d = vram_[addr & vram_mask_];
    uint8_t v = rop_fn<R, uint8_t>(d, s);
    if (!transparent || v != key) d = v;
}

template <unsigned R>
void CirrusVgaCore::rop16(uint32_t addr, uint16_t s, bool transparent, uint16_t key) {
    if (dry_run_) {
        int64_t a = int32_t(addr & ~1u);
        record_write(a, a + 1);
        return;
    }
    uint32_t a = addr & vram_mask_ & ~1u;
    uint16_t d = uint16_t(vram_[a] | vram_[a + 1] << 8);
    uint16_t v = rop_fn<R, uint16_t>(d, s);
    if (transparent && v == key) return;
    vram_[a] = uint8_t(v);
    vram_[a + 1] = uint8_t(v >> 8);
}

template <unsigned R> void CirrusVgaCore::rop32(uint32_t addr, uint32_t s) {
    if (dry_run_) {
        int64_t a = int32_t(addr & ~3u);
        record_write(a, a + 3);
        return;
    }
    uint32_t a = addr & vram_mask_ & ~3u;
    uint32_t d = uint32_t(vram_[a]) | uint32_t(vram_[a + 1]) << 8 | uint32_t(vram_[a + 2]) << 16 |
                 uint32_t(vram_[a + 3]) << 24;
    uint32_t v = rop_fn<R, uint32_t>(d, s);
    for (unsigned i = 0; i < 4; i++) vram_[a + i] = uint8_t(v >> (8 * i));
}

uint8_t CirrusVgaCore::src8(uint32_t addr) const {
    // A system-to-screen blit reads its own buffer, a screen-to-screen one VRAM (QEMU cirrus_src).
    if (srccounter_) return bltbuf_[addr & kBufMask];
    return vram_[addr & vram_mask_];
}

uint16_t CirrusVgaCore::src16(uint32_t addr) const {
    if (srccounter_) {
        uint32_t a = addr & kBufMask & ~1u;
        return uint16_t(bltbuf_[a] | bltbuf_[a + 1] << 8);
    }
    uint32_t a = addr & vram_mask_ & ~1u;
    return uint16_t(vram_[a] | vram_[a + 1] << 8);
}

uint32_t CirrusVgaCore::src32(uint32_t addr) const {
    const uint8_t* p;
    if (srccounter_)
        p = &bltbuf_[addr & kBufMask & ~3u];
    else
        p = &vram_[addr & vram_mask_ & ~3u];
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

uint32_t CirrusVgaCore::fg_color() const {
    // GR1 (full byte), GR11, GR13, GR15: the foreground colour's bytes (QEMU cirrus_bitblt_fgcol).
    uint32_t c = shadow_gr1_;
    if (blt_pixelwidth_ >= 2) c |= uint32_t(gr_[0x11]) << 8;
    if (blt_pixelwidth_ >= 3) c |= uint32_t(gr_[0x13]) << 16;
    if (blt_pixelwidth_ >= 4) c |= uint32_t(gr_[0x15]) << 24;
    return c;
}

uint32_t CirrusVgaCore::bg_color() const {
    uint32_t c = shadow_gr0_;
    if (blt_pixelwidth_ >= 2) c |= uint32_t(gr_[0x10]) << 8;
    if (blt_pixelwidth_ >= 3) c |= uint32_t(gr_[0x12]) << 16;
    if (blt_pixelwidth_ >= 4) c |= uint32_t(gr_[0x14]) << 24;
    return c;
}

// ---- the pixel loops -------------------------------------------------------------------------

template <unsigned R>
void CirrusVgaCore::run_rop(uint32_t dst, uint32_t src, int dstpitch, int srcpitch, int width,
                            int height) {
    const int p = blt_pixelwidth_;
    auto put = [&](uint32_t a, uint32_t c) {
        switch (p) {
        case 1: rop8<R>(a, uint8_t(c), false, 0); break;
        case 2: rop16<R>(a, uint16_t(c), false, 0); break;
        case 3:
            rop8<R>(a, uint8_t(c), false, 0);
            rop8<R>(a + 1, uint8_t(c >> 8), false, 0);
            rop8<R>(a + 2, uint8_t(c >> 16), false, 0);
            break;
        default: rop32<R>(a, c); break;
        }
    };
    const uint8_t gr2f = gr_[kGrBltWriteMask];
    const bool inverted = blt_modeext_ & kBltExtColorExpInv;

    switch (blt_op_) {
    case BlitOp::None: break;
    case BlitOp::Forward:
    case BlitOp::ForwardTransp: {
        bool transp = blt_op_ == BlitOp::ForwardTransp;
        int step = transp ? p : 1; // transparent compare exists for 8 and 16 bpp only
        dstpitch -= width;
        srcpitch -= width;
        // QEMU: overlapping lines in a forward blit make it a no-op.
        if (height > 1 && (dstpitch < 0 || srcpitch < 0)) break;
        uint16_t key = uint16_t(gr_[kGrBltTransColor] | gr_[kGrBltTransColor + 1] << 8);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x += step) {
                if (step == 2)
                    rop16<R>(dst, src16(src), transp, key);
                else
                    rop8<R>(dst, src8(src), transp, uint8_t(key));
                dst += step;
                src += step;
            }
            dst += dstpitch;
            src += srcpitch;
        }
        break;
    }
    case BlitOp::Backward:
    case BlitOp::BackwardTransp: {
        bool transp = blt_op_ == BlitOp::BackwardTransp;
        int step = transp ? p : 1;
        dstpitch += width;
        srcpitch += width;
        uint16_t key = uint16_t(gr_[kGrBltTransColor] | gr_[kGrBltTransColor + 1] << 8);
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x += step) {
                if (step == 2)
                    rop16<R>(dst - 1, src16(src - 1), transp, key);
                else
                    rop8<R>(dst, src8(src), transp, uint8_t(key));
                dst -= step;
                src -= step;
            }
            dst += dstpitch;
            src += srcpitch;
        }
        break;
    }
    case BlitOp::PatternFill: {
        // An 8x8 pattern of pixels at the source address (8, 16 or 32 bytes a row).
        int skipleft = p == 3 ? (gr2f & 0x1F) : (gr2f & 0x07) * p;
        int pattern_pitch = p == 1 ? 8 : (p == 2 ? 16 : 32);
        unsigned pattern_y = blt_srcaddr_ & 7;
        for (int y = 0; y < height; y++) {
            unsigned pattern_x = unsigned(skipleft);
            uint32_t addr = dst + uint32_t(skipleft);
            uint32_t src1 = src + pattern_y * uint32_t(pattern_pitch);
            for (int x = skipleft; x < width; x += p) {
                uint32_t col;
                if (p == 1) {
                    col = src8(src1 + pattern_x);
                    pattern_x = (pattern_x + 1) & 7;
                } else if (p == 2) {
                    col = src16(src1 + pattern_x);
                    pattern_x = (pattern_x + 2) & 15;
                } else if (p == 3) {
                    uint32_t a = src1 + pattern_x * 3;
                    col = src8(a) | uint32_t(src8(a + 1)) << 8 | uint32_t(src8(a + 2)) << 16;
                    pattern_x = (pattern_x + 1) & 7;
                } else {
                    col = src32(src1 + pattern_x);
                    pattern_x = (pattern_x + 4) & 31;
                }
                put(addr, col);
                addr += uint32_t(p);
            }
            pattern_y = (pattern_y + 1) & 7;
            dst += uint32_t(dstpitch);
        }
        break;
    }
    case BlitOp::ColorExpandTransp:
    case BlitOp::ColorExpand: {
        // One source bit per pixel, MSB first; the source pitch is ignored (QEMU).
        bool transp = blt_op_ == BlitOp::ColorExpandTransp;
        int srcskip, dstskip;
        if (transp && p == 3) {
            dstskip = gr2f & 0x1F;
            srcskip = dstskip / 3;
        } else {
            srcskip = gr2f & 0x07;
            dstskip = srcskip * p;
        }
        unsigned bits_xor = transp && inverted ? 0xFF : 0x00;
        uint32_t transp_col = inverted ? blt_bgcol_ : blt_fgcol_;
        for (int y = 0; y < height; y++) {
            unsigned bitmask = 0x80u >> srcskip;
            unsigned bits = src8(src++) ^ bits_xor;
            uint32_t addr = dst + uint32_t(dstskip);
            for (int x = dstskip; x < width; x += p) {
                if ((bitmask & 0xFF) == 0) {
                    bitmask = 0x80;
                    bits = src8(src++) ^ bits_xor;
                }
                bool set = bits & bitmask;
                if (!transp)
                    put(addr, set ? blt_fgcol_ : blt_bgcol_);
                else if (set || dry_run_)
                    put(addr, transp_col);
                addr += uint32_t(p);
                bitmask >>= 1;
            }
            dst += uint32_t(dstpitch);
        }
        break;
    }
    case BlitOp::ColorExpandPatternTransp:
    case BlitOp::ColorExpandPattern: {
        // An 8x8 one-bit pattern, one byte a row.
        bool transp = blt_op_ == BlitOp::ColorExpandPatternTransp;
        int srcskip, dstskip;
        if (transp && p == 3) {
            dstskip = gr2f & 0x1F;
            srcskip = dstskip / 3;
        } else {
            srcskip = gr2f & 0x07;
            dstskip = srcskip * p;
        }
        unsigned bits_xor = transp && inverted ? 0xFF : 0x00;
        uint32_t transp_col = inverted ? blt_bgcol_ : blt_fgcol_;
        unsigned pattern_y = blt_srcaddr_ & 7;
        for (int y = 0; y < height; y++) {
            unsigned bits = src8(src + pattern_y) ^ bits_xor;
            unsigned bitpos = 7 - unsigned(srcskip);
            uint32_t addr = dst + uint32_t(dstskip);
            for (int x = dstskip; x < width; x += p) {
                bool set = (bits >> bitpos) & 1;
                if (!transp)
                    put(addr, set ? blt_fgcol_ : blt_bgcol_);
                else if (set || dry_run_)
                    put(addr, transp_col);
                addr += uint32_t(p);
                bitpos = (bitpos - 1) & 7;
            }
            pattern_y = (pattern_y + 1) & 7;
            dst += uint32_t(dstpitch);
        }
        break;
    }
    case BlitOp::SolidFill:
        for (int y = 0; y < height; y++) {
            uint32_t addr = dst;
            for (int x = 0; x < width; x += p) {
                put(addr, blt_fgcol_);
                addr += uint32_t(p);
            }
            dst += uint32_t(dstpitch);
        }
        break;
    }
}

void CirrusVgaCore::run_op(uint32_t dst, uint32_t src, int dstpitch, int srcpitch, int width,
                           int height) {
    switch (blt_rop_index_ & 15) {
    // clang-format off
    case 0: run_rop<0>(dst, src, dstpitch, srcpitch, width, height); break;
    case 1: run_rop<1>(dst, src, dstpitch, srcpitch, width, height); break;
    case 2: break; // NOP: QEMU's rop_nop / fill_nop leave VRAM alone
    case 3: run_rop<3>(dst, src, dstpitch, srcpitch, width, height); break;
    case 4: run_rop<4>(dst, src, dstpitch, srcpitch, width, height); break;
    case 5: run_rop<5>(dst, src, dstpitch, srcpitch, width, height); break;
    case 6: run_rop<6>(dst, src, dstpitch, srcpitch, width, height); break;
    case 7: run_rop<7>(dst, src, dstpitch, srcpitch, width, height); break;
    case 8: run_rop<8>(dst, src, dstpitch, srcpitch, width, height); break;
    case 9: run_rop<9>(dst, src, dstpitch, srcpitch, width, height); break;
    case 10: run_rop<10>(dst, src, dstpitch, srcpitch, width, height); break;
    case 11: run_rop<11>(dst, src, dstpitch, srcpitch, width, height); break;
    case 12: run_rop<12>(dst, src, dstpitch, srcpitch, width, height); break;
    case 13: run_rop<13>(dst, src, dstpitch, srcpitch, width, height); break;
    case 14: run_rop<14>(dst, src, dstpitch, srcpitch, width, height); break;
    default: run_rop<15>(dst, src, dstpitch, srcpitch, width, height); break;
        // clang-format on
    }
}

// ---- checks ----------------------------------------------------------------------------------

bool CirrusVgaCore::region_unsafe(int64_t pitch, int64_t addr) const {
    // QEMU blit_region_is_unsafe, in 64-bit arithmetic.
    if (pitch == 0) return true;
    if (pitch < 0) {
        int64_t min = addr + (int64_t(blt_height_) - 1) * pitch - blt_width_;
        return min < -1 || addr >= int64_t(vram_size_);
    }
    int64_t max = addr + (int64_t(blt_height_) - 1) * pitch + blt_width_;
    return max > int64_t(vram_size_);
}

bool CirrusVgaCore::blit_unsafe(bool dst_only) const {
    if (blt_width_ <= 0 || blt_height_ <= 0 || blt_width_ > int(kBltBufSize)) return true;
    if (region_unsafe(blt_dstpitch_, blt_dstaddr_)) return true;
    if (dst_only) return false;
    return region_unsafe(blt_srcpitch_, blt_srcaddr_);
}

bool CirrusVgaCore::extent_inside(uint32_t dst, uint32_t src, int dstpitch, int srcpitch) {
    if (blt_rop_index_ == 2) return true; // NOP writes nothing
    Extent e;
    dry_run_ = &e;
    // In the per-line loops `dst`/`src` advance by the pitch after each line; the last
    // line of an N-line blit starts (N-1) pitches on.
    run_op(dst, src, dstpitch, srcpitch, blt_width_, 1);
    if (blt_height_ > 1) {
        uint32_t last_dst = uint32_t(int64_t(dst) + int64_t(blt_height_ - 1) * dstpitch);
        uint32_t last_src = uint32_t(int64_t(src) + int64_t(blt_height_ - 1) * srcpitch);
        run_op(last_dst, last_src, dstpitch, srcpitch, blt_width_, 1);
    }
    dry_run_ = nullptr;
    if (e.lo > e.hi) return true; // writes nothing
    return e.lo >= 0 && e.hi < int64_t(vram_size_);
}

void CirrusVgaCore::invalidate(uint32_t dst, int pitch, int bytes, int lines) {
    // Generous by 3 bytes: 24/32-bit pixels may end past the width.
    int64_t start = int64_t(dst) - (pitch < 0 ? bytes - 1 : 0) - 3;
    for (int y = 0; y < lines; y++) {
        mark_dirty(uint32_t(start & vram_mask_), uint32_t(bytes + 6));
        start += pitch;
    }
}

// ---- engine ----------------------------------------------------------------------------------

void CirrusVgaCore::blit_reset() {
    gr_[kGrBltStatus] &= uint8_t(~(kBltStatusStart | kBltStatusBusy | kBltStatusFifoUsed));
    srcptr_ = srcptr_end_ = 0;
    srccounter_ = 0;
}

void CirrusVgaCore::write_blt_status(uint8_t value) {
    uint8_t old = gr_[kGrBltStatus];
    gr_[kGrBltStatus] = value;
    if ((old & kBltStatusReset) && !(value & kBltStatusReset))
        blit_reset();
    else if (!(old & kBltStatusStart) && (value & kBltStatusStart))
        blit_start();
}

bool CirrusVgaCore::blit_pattern_copy() {
    bool video_src = srccounter_ == 0;
    if (video_src) {
        // The pattern is 8x8 pixels aligned to its size (QEMU: by the display depth).
        unsigned bpp = display_bpp();
        uint32_t size = bpp == 8 ? 64 : (bpp == 15 || bpp == 16 ? 128 : 256);
        blt_srcaddr_ &= ~(size - 1);
        if (uint64_t(blt_srcaddr_) + size > vram_size_) return false;
    }
    if (blit_unsafe(true)) return false;
    uint32_t src = video_src ? blt_srcaddr_ : 0;
    if (!extent_inside(blt_dstaddr_, src, blt_dstpitch_, 0)) return false;
    run_op(blt_dstaddr_, src, blt_dstpitch_, 0, blt_width_, blt_height_);
    invalidate(blt_dstaddr_, blt_dstpitch_, blt_width_, blt_height_);
    return true;
}

bool CirrusVgaCore::blit_video_to_video() {
    bool ok;
    if (blt_mode_ & kBltPatternCopy) {
        ok = blit_pattern_copy();
    } else {
        ok = !blit_unsafe(false) &&
             extent_inside(blt_dstaddr_, blt_srcaddr_, blt_dstpitch_, blt_srcpitch_);
        if (ok) {
            run_op(blt_dstaddr_, blt_srcaddr_, blt_dstpitch_, blt_srcpitch_, blt_width_,
                   blt_height_);
            invalidate(blt_dstaddr_, blt_dstpitch_, blt_width_, blt_height_);
        }
    }
    if (ok) blit_reset();
    return ok;
}

bool CirrusVgaCore::blit_solid_fill(uint8_t rop) {
    (void)rop;
    if (blit_unsafe(true) || !extent_inside(blt_dstaddr_, 0, blt_dstpitch_, 0)) return false;
    run_op(blt_dstaddr_, 0, blt_dstpitch_, 0, blt_width_, blt_height_);
    invalidate(blt_dstaddr_, blt_dstpitch_, blt_width_, blt_height_);
    blit_reset();
    return true;
}

bool CirrusVgaCore::blit_cpu_to_video() {
    if (blit_unsafe(true)) return false;
    blt_mode_ &= uint8_t(~kBltMemSysSrc);
    int pitch;
    if (blt_mode_ & kBltPatternCopy) {
        // The CPU sends the 8x8 pattern: 8 bytes of bits, or 8x8 pixels.
        pitch = (blt_mode_ & kBltColorExpand) ? 8 : 8 * 8 * blt_pixelwidth_;
        srccounter_ = pitch;
    } else {
        if (blt_mode_ & kBltColorExpand) {
            int w = blt_width_ / blt_pixelwidth_;
            // QEMU counts dword granularity as (w + 31) >> 5 bytes; kept for fidelity.
            pitch = (blt_modeext_ & kBltExtDwordGranularity) ? (w + 31) >> 5 : (w + 7) >> 3;
        } else {
            pitch = (blt_width_ + 3) & ~3; // lines padded to 32 bits
        }
        srccounter_ = int64_t(pitch) * blt_height_;
    }
    if (pitch <= 0 || pitch > int(kBltBufSize)) return false; // nothing the CPU could send
    blt_srcpitch_ = pitch;
    // Every line is written at dst + n * pitch with the same pixel loop: check the first and
    // the last before accepting data.
    {
        int64_t saved = srccounter_;
        bool inside = extent_inside(blt_dstaddr_, 0, blt_dstpitch_, 0);
        srccounter_ = saved;
        if (!inside) return false;
    }
    srcptr_ = 0;
    srcptr_end_ = uint32_t(pitch);
    return true;
}

void CirrusVgaCore::blit_feed(uint8_t value) {
    bltbuf_[srcptr_ & kBufMask] = value;
    if (++srcptr_ >= srcptr_end_) blit_cpu_to_video_next();
}

void CirrusVgaCore::blit_cpu_to_video_next() {
    if (srccounter_ <= 0) {
        blit_reset();
        return;
    }
    if (blt_mode_ & kBltPatternCopy) {
        blit_pattern_copy();
        blit_reset();
        return;
    }
    // One line of source has arrived (QEMU cirrus_bitblt_cputovideo_next).
    run_op(blt_dstaddr_, 0, 0, 0, blt_width_, 1);
    invalidate(blt_dstaddr_, 0, blt_width_, 1);
    blt_dstaddr_ = uint32_t(int64_t(blt_dstaddr_) + blt_dstpitch_);
    srccounter_ -= blt_srcpitch_;
    if (srccounter_ <= 0) {
        blit_reset();
        return;
    }
    srcptr_ = 0;
    srcptr_end_ = uint32_t(blt_srcpitch_);
}

void CirrusVgaCore::blit_start() {
    uint8_t rop = gr_[kGrBltRop];
    bool ok = false;
    if (enable_blitter_) {
        gr_[kGrBltStatus] |= kBltStatusBusy;
        blt_width_ = (gr_[0x20] | gr_[0x21] << 8) + 1;
        blt_height_ = (gr_[0x22] | gr_[0x23] << 8) + 1;
        blt_dstpitch_ = gr_[0x24] | gr_[0x25] << 8;
        blt_srcpitch_ = gr_[0x26] | gr_[0x27] << 8;
        blt_dstaddr_ = (gr_[0x28] | gr_[0x29] << 8 | gr_[0x2A] << 16) & vram_mask_;
        blt_srcaddr_ = (gr_[0x2C] | gr_[0x2D] << 8 | gr_[0x2E] << 16) & vram_mask_;
        blt_mode_ = gr_[kGrBltMode];
        blt_modeext_ = gr_[kGrBltModeExt];
        blt_pixelwidth_ = ((blt_mode_ & kBltPixelWidthMask) >> 4) + 1;
        blt_mode_ &= uint8_t(~kBltPixelWidthMask);
        blt_rop_index_ = rop_index_of(rop);
        srccounter_ = 0;
        ok = true;
        uint8_t mode = blt_mode_;

        if ((mode & (kBltMemSysSrc | kBltMemSysDest)) == (kBltMemSysSrc | kBltMemSysDest)) {
            ok = false; // memory-to-memory: not implemented by QEMU either
        } else if ((blt_modeext_ & kBltExtSolidFill) &&
                   (mode & (kBltMemSysDest | kBltTransparentComp | kBltPatternCopy |
                            kBltColorExpand)) == (kBltPatternCopy | kBltColorExpand)) {
            blt_op_ = BlitOp::SolidFill;
            blt_fgcol_ = fg_color();
            ok = blit_solid_fill(rop);
        } else {
            if ((mode & (kBltColorExpand | kBltPatternCopy)) == kBltColorExpand) {
                blt_op_ =
                    (mode & kBltTransparentComp) ? BlitOp::ColorExpandTransp : BlitOp::ColorExpand;
            } else if (mode & kBltPatternCopy) {
                if (mode & kBltColorExpand)
                    blt_op_ = (mode & kBltTransparentComp) ? BlitOp::ColorExpandPatternTransp
                                                           : BlitOp::ColorExpandPattern;
                else
                    blt_op_ = BlitOp::PatternFill;
            } else {
                bool transp = mode & kBltTransparentComp;
                if (transp && blt_pixelwidth_ > 2) ok = false; // 8 and 16 bpp only (QEMU)
                if (mode & kBltBackwards) {
                    blt_dstpitch_ = -blt_dstpitch_;
                    blt_srcpitch_ = -blt_srcpitch_;
                    blt_op_ = transp ? BlitOp::BackwardTransp : BlitOp::Backward;
                } else {
                    blt_op_ = transp ? BlitOp::ForwardTransp : BlitOp::Forward;
                }
            }
            blt_fgcol_ = fg_color();
            blt_bgcol_ = bg_color();
            if (ok) {
                if (mode & kBltMemSysSrc)
                    ok = blit_cpu_to_video();
                else if (mode & kBltMemSysDest)
                    ok = false; // video-to-system: QEMU does not implement it
                else
                    ok = blit_video_to_video();
            }
        }
    }
    if (!ok) {
        blits_refused_++;
        if (enable_blitter_ && refused_log_.allow())
            LOG_DEBUG("cirrus: blit refused (mode 0x%02x rop 0x%02x %dx%d dst 0x%x/%d src 0x%x/%d)",
                      gr_[kGrBltMode], rop, blt_width_, blt_height_, blt_dstaddr_, blt_dstpitch_,
                      blt_srcaddr_, blt_srcpitch_);
        blit_reset();
    }
}

} // namespace hvm
