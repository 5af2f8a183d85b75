#include "devmodel/pci/i440fx.hpp"

#include <algorithm>

namespace hvm {

namespace {
constexpr uint8_t kPam0Mask = 0x30;      // PAM0: only HIENABLE (bits 5:4) exists
constexpr uint8_t kPamNMask = 0x33;      // PAM1..6: LOENABLE 1:0, HIENABLE 5:4
constexpr uint8_t kSmramWritable = 0x78; // D_OPEN, D_CLS, D_LCK, G_SMRAME; C_BASE_SEG is fixed
} // namespace

I440fxHostBridge::Segment I440fxHostBridge::pam_segment(unsigned index) {
    if (index == 0) return {0xF0000, 0x10000};
    if (index >= kPamSegments) return {0, 0};
    return {0xC0000 + 0x4000 * (index - 1), 0x4000};
}

I440fxHostBridge::I440fxHostBridge(PamListener& listener, uint64_t ram_size)
    : PciDevice(PciIdentity{kVendor, kDevice, kRevision, 0x060000, 0}), listener_(listener) {
    set_config_byte(kDram, uint8_t(std::min<uint64_t>(ram_size >> 23, 255)));
    set_wmask_byte(kPam0, kPam0Mask);
    for (unsigned i = 1; i < kPamCount; i++) set_wmask_byte(kPam0 + i, kPamNMask);
    set_config_byte(kSmram, kSmramReset);
    set_wmask_byte(kSmram, kSmramWritable);
}

PamState I440fxHostBridge::state_in(const std::array<uint8_t, kPamCount>& pam, unsigned segment) {
    if (segment == 0) return PamState((pam[0] >> 4) & 3);
    if (segment >= kPamSegments) return PamState::Pci;
    unsigned reg = 1 + (segment - 1) / 2;
    unsigned shift = (segment - 1) % 2 ? 4 : 0;
    return PamState((pam[reg] >> shift) & 3);
}

PamState I440fxHostBridge::pam_state(unsigned segment) const {
    return state_in(pam_, segment);
}

// Reports every segment whose state differs from what the listener last heard, then the SMRAM
// window, after enforcing D_LCK.
void I440fxHostBridge::sync_listener() {
    std::array<uint8_t, kPamCount> now;
    for (unsigned i = 0; i < kPamCount; i++) now[i] = config_byte(kPam0 + i);
    std::array<uint8_t, kPamCount> old = pam_;
    pam_ = now;
    for (unsigned s = 0; s < kPamSegments; s++) {
        PamState st = state_in(now, s);
        if (st != state_in(old, s)) listener_.pam_changed(s, st);
    }

    uint8_t smram = config_byte(kSmram);
    if (smram_ & kSmramDLck) {
        smram = smram_; // locked until reset (82441FX §3.2.24)
    } else if (smram & kSmramDLck) {
        smram &= uint8_t(~kSmramDOpen); // setting D_LCK closes SMRAM
    }
    set_config_byte(kSmram, smram);
    bool was_open = smram_ & kSmramDOpen;
    smram_ = smram;
    if (was_open != bool(smram & kSmramDOpen)) listener_.smram_changed(smram & kSmramDOpen);
}

void I440fxHostBridge::config_written(unsigned offset, unsigned size) {
    if (overlaps(offset, size, kPam0, kPamCount) || overlaps(offset, size, kSmram, 1))
        sync_listener();
}

void I440fxHostBridge::device_reset(ResetKind) {
    for (unsigned i = 0; i < kPamCount; i++) set_config_byte(kPam0 + i, 0);
    smram_ = kSmramReset; // PCIRST# also releases D_LCK
    set_config_byte(kSmram, kSmramReset);
}

// After attach, reset and load the machine hears the whole picture, not just changes.
void I440fxHostBridge::sync_derived_state() {
    // A loaded D_LCK is honoured; D_OPEN cannot be set together with it.
    uint8_t smram = config_byte(kSmram);
    if (smram & kSmramDLck) smram &= uint8_t(~kSmramDOpen);
    set_config_byte(kSmram, smram);
    smram_ = smram;
    for (unsigned i = 0; i < kPamCount; i++) pam_[i] = config_byte(kPam0 + i);
    for (unsigned s = 0; s < kPamSegments; s++) listener_.pam_changed(s, state_in(pam_, s));
    listener_.smram_changed(smram & kSmramDOpen);
}

} // namespace hvm
