#include "devmodel/display/vga_core.hpp"

#include <cassert>
#include <cstring>

namespace hvm {

using namespace vga;

namespace {

constexpr uint32_t kStateVersion = 1;

// Bits a guest can set in the standard registers (QEMU sr_mask / gr_mask).
constexpr std::array<uint8_t, 8> kSrMask = {0x03, 0x3D, 0x0F, 0x3F, 0x0E, 0x00, 0x00, 0xFF};
constexpr std::array<uint8_t, 16> kGrMask = {0x0F, 0x0F, 0x0F, 0x1F, 0x03, 0x7B, 0x0F, 0x0F,
                                             0xFF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

// Four plane bits -> a 32-bit mask with 0xFF in each selected plane's byte.
constexpr uint32_t plane_mask(unsigned m) {
    uint32_t v = 0;
    for (unsigned p = 0; p < 4; p++)
        if (m & (1u << p)) v |= 0xFFu << (8 * p);
    return v;
}

bool is_pow2(uint32_t v) {
    return v && !(v & (v - 1));
}

} // namespace

VgaCore::VgaCore(Clock& clock, uint32_t vram_size)
    : clock_(clock), vram_size_(vram_size), vram_mask_(vram_size - 1), vram_(vram_size, 0),
      dirty_((vram_size / kDirtyBlock + 63) / 64, ~0ull) {
    assert(is_pow2(vram_size) && vram_size >= kMinVramSize && vram_size <= kMaxVramSize);
    reset();
}

void VgaCore::reset() {
    sr_.fill(0);
    gr_.fill(0);
    cr_.fill(0);
    ar_.fill(0);
    sr_index_ = gr_index_ = cr_index_ = ar_index_ = 0;
    ar_flip_flop_ = 0;
    msr_ = fcr_ = st00_ = st01_ = 0;
    pel_mask_ = 0xFF;
    dac_state_ = dac_sub_index_ = dac_read_index_ = dac_write_index_ = 0;
    dac_cache_.fill(0);
    palette_.fill(0);
    dac_8bit_ = false;
    bank_offset_ = 0;
    latch_ = 0;
    font_dirty_ = true;
    rendered_once_ = false;
}

// ---- ports ---------------------------------------------------------------------------------

bool VgaCore::port_decoded(uint16_t port) const {
    if (msr_ & kMiscColor) return !(port >= 0x3B0 && port <= 0x3BF);
    return !(port >= 0x3D0 && port <= 0x3DF);
}

uint8_t VgaCore::read_input_status_1() {
    // Character-clock position within the frame from the CRTC timing registers (IBM VGA TR
    // "CRT Controller Registers"; QEMU vga_precise_retrace). Polling loops on bit 3 (vertical
    // retrace) and bit 0 (display disabled) then see the frame advance with the clock.
    static constexpr uint64_t kDotClockHz[4] = {25175000, 28322000, 25175000, 25175000};
    uint64_t htotal = uint64_t(cr_[kCrHTotal]) + 5;
    uint64_t hstart = cr_[kCrHRetraceStart] + ((cr_[kCrHRetraceEnd] >> 5) & 3);
    uint64_t hend = hstart + (cr_[kCrHRetraceEnd] & 0x1F) + 1;
    uint8_t ov = cr_[kCrOverflow];
    uint64_t vtotal = (cr_[kCrVTotal] | (((ov & 1) | ((ov >> 4) & 2)) << 8)) + 2;
    uint64_t vstart = cr_[kCrVRetraceStart] | ((((ov >> 2) & 1) | ((ov >> 6) & 2)) << 8);
    uint64_t vend = vstart + (cr_[kCrVRetraceEnd] & 0x0F) + 1;
    uint64_t dots = (sr_[kSrClocking] & kSr01Dots8) ? 8 : 9;
    htotal <<= (sr_[kSrClocking] >> 3) & 1;
    uint64_t hz = kDotClockHz[(msr_ >> 2) & 3];

    // frame_ns = total_chars * dots / hz seconds; everything below stays far from 2^64.
    uint64_t total_chars = vtotal * htotal;
    uint64_t frame_ns = total_chars * dots * 1'000'000'000ull / hz;
    uint8_t val = st01_ & uint8_t(~(kSt01VRetrace | kSt01DisplayDisabled));
    if (frame_ns == 0) return uint8_t(st01_ ^ (kSt01VRetrace | kSt01DisplayDisabled));
    uint64_t t = clock_.now_ns() % frame_ns;
    uint64_t cur_char = t * hz / (dots * 1'000'000'000ull);
    uint64_t line = cur_char / htotal;
    if (line >= vstart && line <= vend) {
        val |= kSt01VRetrace | kSt01DisplayDisabled;
    } else {
        uint64_t c = cur_char % htotal;
        if (c >= hstart && c <= hend) val |= kSt01DisplayDisabled;
    }
    return val;
}

uint8_t VgaCore::read_dac_data() {
    // dac_read_index_ is 8 bits: the entry is always inside the 768-byte palette.
    uint8_t v = palette_[dac_read_index_ * 3u + dac_sub_index_];
    if (++dac_sub_index_ == 3) {
        dac_sub_index_ = 0;
        dac_read_index_++;
    }
    return v;
}

void VgaCore::write_dac_data(uint8_t value) {
    dac_cache_[dac_sub_index_] = value;
    if (++dac_sub_index_ == 3) {
        std::memcpy(&palette_[dac_write_index_ * 3u], dac_cache_.data(), 3);
        dac_sub_index_ = 0;
        dac_write_index_++;
    }
}

void VgaCore::write_crtc(uint8_t index, uint8_t value) {
    // CR11 bit 7 protects CR0-CR7 from old software that would program CGA/EGA timings; CR7
    // bit 4 (line compare bit 8) stays writable (IBM VGA TR, CR11).
    if ((cr_[kCrVRetraceEnd] & kCr11Protect) && index <= kCrOverflow) {
        if (index == kCrOverflow)
            cr_[kCrOverflow] = uint8_t((cr_[kCrOverflow] & ~0x10) | (value & 0x10));
        return;
    }
    cr_[index] = value;
}

void VgaCore::write_attr(uint8_t value) {
    if (ar_flip_flop_ == 0) {
        ar_index_ = value & 0x3F;
    } else {
        unsigned index = ar_index_ & 0x1F;
        if (index <= 0x0F)
            ar_[index] = value & 0x3F;
        else if (index == kArMode)
            ar_[index] = value & uint8_t(~0x10);
        else if (index == kArOverscan)
            ar_[index] = value;
        else if (index == kArPlaneEnable)
            ar_[index] = value & uint8_t(~0xC0);
        else if (index == kArPanning || index == kArColorSelect)
            ar_[index] = value & uint8_t(~0xF0);
        // 0x15-0x1F: no register.
    }
    ar_flip_flop_ ^= 1;
}

uint8_t VgaCore::read_port(uint16_t port) {
    if (!port_decoded(port)) return 0xFF;
    switch (port) {
    case kAttrWrite: return ar_flip_flop_ == 0 ? ar_index_ : 0;
    case kAttrRead: {
        unsigned index = ar_index_ & 0x1F;
        return index < kArCount ? ar_[index] : 0;
    }
    case kInputStatus0: return st00_;
    case kSeqIndex: return sr_index_;
    case kSeqData: return sr_[sr_index_ & 7];
    case kPelMask: return pel_mask_;
    case kDacState: return dac_state_;
    case kDacWriteIndex: return dac_write_index_;
    case kDacData: return read_dac_data();
    case kFeatureRead: return fcr_;
    case kMiscRead: return msr_;
    case kGfxIndex: return gr_index_;
    case kGfxData: return gr_[gr_index_ & 0x0F];
    case kCrtIndexMono:
    case kCrtIndexColor: return cr_index_;
    case kCrtDataMono:
    case kCrtDataColor: return cr_[cr_index_];
    case kInputStatus1Mono:
    case kInputStatus1Color:
        st01_ = read_input_status_1();
        ar_flip_flop_ = 0;
        return st01_;
    default: return 0;
    }
}

void VgaCore::write_port(uint16_t port, uint8_t value) {
    if (!port_decoded(port)) return;
    switch (port) {
    case kAttrWrite: write_attr(value); break;
    case kMiscWrite: msr_ = value & uint8_t(~0x10); break;
    case kSeqIndex: sr_index_ = value & 7; break;
    case kSeqData: sr_[sr_index_ & 7] = value & kSrMask[sr_index_ & 7]; break;
    case kPelMask: pel_mask_ = value; break;
    case kDacReadIndex:
        dac_read_index_ = value;
        dac_sub_index_ = 0;
        dac_state_ = 3;
        break;
    case kDacWriteIndex:
        dac_write_index_ = value;
        dac_sub_index_ = 0;
        dac_state_ = 0;
        break;
    case kDacData: write_dac_data(value); break;
    case kGfxIndex: gr_index_ = value & 0x0F; break;
    case kGfxData: gr_[gr_index_ & 0x0F] = value & kGrMask[gr_index_ & 0x0F]; break;
    case kCrtIndexMono:
    case kCrtIndexColor: cr_index_ = value; break;
    case kCrtDataMono:
    case kCrtDataColor: write_crtc(cr_index_, value); break;
    case kInputStatus1Mono:
    case kInputStatus1Color: fcr_ = value & 0x10; break;
    default: break;
    }
}

// ---- the 0xA0000 window ----------------------------------------------------------------------

void VgaCore::mark_dirty(uint32_t offset, uint32_t len) {
    if (len == 0) return;
    offset &= vram_mask_;
    if (len > vram_size_) len = vram_size_;
    uint32_t first = offset / kDirtyBlock;
    uint32_t last = uint32_t((uint64_t(offset) + len - 1) / kDirtyBlock);
    uint32_t blocks = vram_size_ / kDirtyBlock;
    for (uint32_t b = first; b <= last; b++) {
        uint32_t i = b % blocks; // a range that wraps past the end continues at 0
        dirty_[i / 64] |= 1ull << (i % 64);
    }
}

uint8_t VgaCore::read_window(uint32_t offset) {
    uint64_t addr = offset & 0x1FFFF;
    switch ((gr_[kGrMisc] >> 2) & 3) {
    case 0: break;
    case 1:
        if (addr >= 0x10000) return 0xFF;
        addr += bank_offset_;
        break;
    case 2:
        if (addr < 0x10000 || addr >= 0x18000) return 0xFF;
        addr -= 0x10000;
        break;
    default:
        if (addr < 0x18000) return 0xFF;
        addr -= 0x18000;
        break;
    }

    if (sr_[kSrMemoryMode] & kSr04Chain4) {
        return addr < vram_size_ ? vram_[addr] : 0xFF;
    }
    if (gr_[kGrMode] & kGr05OddEven) {
        unsigned plane = (gr_[kGrReadMap] & 2) | (addr & 1);
        uint64_t a = ((addr & ~1ull) << 1) | plane;
        return a < vram_size_ ? vram_[a] : 0xFF;
    }
    // Planar: every read loads the four latches (IBM VGA TR, "Read Modes").
    if (addr * 4 + 3 >= vram_size_) return 0xFF;
    latch_ = uint32_t(vram_[addr * 4]) | uint32_t(vram_[addr * 4 + 1]) << 8 |
             uint32_t(vram_[addr * 4 + 2]) << 16 | uint32_t(vram_[addr * 4 + 3]) << 24;
    if (!(gr_[kGrMode] & kGr05ReadMode1)) {
        return uint8_t(latch_ >> (8 * (gr_[kGrReadMap] & 3)));
    }
    // Read mode 1: a bit is 1 where every plane enabled in Color Don't Care matches Color
    // Compare.
    uint32_t diff = (latch_ ^ plane_mask(gr_[kGrColorCompare])) & plane_mask(gr_[kGrColorDontCare]);
    diff |= diff >> 16;
    diff |= diff >> 8;
    return uint8_t(~diff);
}

void VgaCore::write_window(uint32_t offset, uint8_t value) {
    uint64_t addr = offset & 0x1FFFF;
    switch ((gr_[kGrMisc] >> 2) & 3) {
    case 0: break;
    case 1:
        if (addr >= 0x10000) return;
        addr += bank_offset_;
        break;
    case 2:
        if (addr < 0x10000 || addr >= 0x18000) return;
        addr -= 0x10000;
        break;
    default:
        if (addr < 0x18000) return;
        addr -= 0x18000;
        break;
    }

    uint8_t map_mask = sr_[kSrMapMask] & 0x0F;
    if (sr_[kSrMemoryMode] & kSr04Chain4) {
        unsigned plane = addr & 3;
        if ((map_mask & (1u << plane)) && addr < vram_size_) {
            vram_[addr] = value;
            if (plane == 2) font_dirty_ = true;
            mark_dirty(uint32_t(addr), 1);
        }
        return;
    }
    if (gr_[kGrMode] & kGr05OddEven) {
        unsigned plane = (gr_[kGrReadMap] & 2) | (addr & 1);
        uint64_t a = ((addr & ~1ull) << 1) | plane;
        if ((map_mask & (1u << plane)) && a < vram_size_) {
            vram_[a] = value;
            if (plane == 2) font_dirty_ = true;
            mark_dirty(uint32_t(a), 1);
        }
        return;
    }
    if (addr * 4 + 3 >= vram_size_) return;

    // Planar write modes (IBM VGA TR, "Write Modes"; FreeVGA "Graphics Controller").
    uint32_t val = 0, bit_mask = 0;
    unsigned rotate = gr_[kGrDataRotate] & 7;
    bool use_latch_only = false;
    switch (gr_[kGrMode] & 3) {
    case 0: {
        uint32_t v = uint8_t((value >> rotate) | (value << (8 - rotate)));
        v |= v << 8;
        v |= v << 16;
        uint32_t sr_enable = plane_mask(gr_[kGrEnableSetReset]);
        val = (v & ~sr_enable) | (plane_mask(gr_[kGrSetReset]) & sr_enable);
        bit_mask = gr_[kGrBitMask];
        break;
    }
    case 1:
        val = latch_;
        use_latch_only = true;
        break;
    case 2:
        val = plane_mask(value & 0x0F);
        bit_mask = gr_[kGrBitMask];
        break;
    default: {
        uint8_t v = uint8_t((value >> rotate) | (value << (8 - rotate)));
        bit_mask = gr_[kGrBitMask] & v;
        val = plane_mask(gr_[kGrSetReset]);
        break;
    }
    }
    if (!use_latch_only) {
        switch (gr_[kGrDataRotate] >> 3) {
        case 1: val &= latch_; break;
        case 2: val |= latch_; break;
        case 3: val ^= latch_; break;
        default: break;
        }
        bit_mask |= bit_mask << 8;
        bit_mask |= bit_mask << 16;
        val = (val & bit_mask) | (latch_ & ~bit_mask);
    }
    uint32_t write_mask = plane_mask(map_mask);
    for (unsigned p = 0; p < 4; p++) {
        if (write_mask & (0xFFu << (8 * p))) vram_[addr * 4 + p] = uint8_t(val >> (8 * p));
    }
    if (map_mask & 4) font_dirty_ = true;
    mark_dirty(uint32_t(addr * 4), 4);
}

// ---- bus adapters ----------------------------------------------------------------------------

void VgaCore::Io::io_read(uint64_t offset, std::span<uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++)
        data[i] = v_.read_port(uint16_t(kPortBase + offset + i));
}

void VgaCore::Io::io_write(uint64_t offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++)
        v_.write_port(uint16_t(kPortBase + offset + i), data[i]);
}

void VgaCore::Window::io_read(uint64_t offset, std::span<uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++) data[i] = v_.read_window(uint32_t(offset + i));
}

void VgaCore::Window::io_write(uint64_t offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); i++) v_.write_window(uint32_t(offset + i), data[i]);
}

// ---- state -----------------------------------------------------------------------------------

void VgaCore::save(StateWriter& out) const {
    out.begin("vga", kStateVersion);
    out.put(vram_size_);
    out.put_bytes(sr_);
    out.put_bytes(gr_);
    out.put_bytes(cr_);
    out.put_bytes(ar_);
    for (uint8_t v :
         {sr_index_, gr_index_, cr_index_, ar_index_, ar_flip_flop_, msr_, fcr_, st00_, st01_,
          pel_mask_, dac_state_, dac_sub_index_, dac_read_index_, dac_write_index_})
        out.put(v);
    out.put_bytes(dac_cache_);
    out.put_bytes(palette_);
    out.put(uint8_t(dac_8bit_));
    out.put(bank_offset_);
    out.put(latch_);
    out.put_bytes(vram_);
}

void VgaCore::load(StateReader& in) {
    in.begin("vga", 1, kStateVersion);
    if (in.get<uint32_t>() != vram_size_) throw StateError("vga: VRAM size differs");
    in.get_bytes(sr_);
    in.get_bytes(gr_);
    in.get_bytes(cr_);
    in.get_bytes(ar_);
    for (uint8_t* p :
         {&sr_index_, &gr_index_, &cr_index_, &ar_index_, &ar_flip_flop_, &msr_, &fcr_, &st00_,
          &st01_, &pel_mask_, &dac_state_, &dac_sub_index_, &dac_read_index_, &dac_write_index_})
        *p = in.get<uint8_t>();
    in.get_bytes(dac_cache_);
    in.get_bytes(palette_);
    uint8_t dac8 = in.get<uint8_t>();
    bank_offset_ = in.get<uint32_t>();
    latch_ = in.get<uint32_t>();
    in.get_bytes(vram_);
    if (ar_flip_flop_ > 1 || dac_sub_index_ > 2 || (dac_state_ != 0 && dac_state_ != 3) ||
        dac8 > 1 || ar_index_ > 0x3F)
        throw StateError("vga: register state out of range");
    if (bank_offset_ >= vram_size_) throw StateError("vga: bank offset outside VRAM");
    dac_8bit_ = dac8 != 0;
    font_dirty_ = true;
    rendered_once_ = false;
    for (auto& w : dirty_) w = ~0ull;
}

} // namespace hvm
