#include "devmodel/pci/piix3.hpp"

namespace hvm {

namespace {
constexpr uint32_t kExtraVersion = 1;

// QEMU piix3_reset: the device-specific registers and their values.
struct ResetValue {
    uint8_t offset, value;
};
constexpr ResetValue kResetValues[] = {
    {0x4C, 0x4D}, {0x4E, 0x03}, {0x4F, 0x00}, {0x60, 0x80}, {0x61, 0x80}, {0x62, 0x80},
    {0x63, 0x80}, {0x69, 0x02}, {0x70, 0x80}, {0x76, 0x0C}, {0x77, 0x0C}, {0x78, 0x02},
    {0x79, 0x00}, {0x80, 0x00}, {0x82, 0x00}, {0xA0, 0x08}, {0xA2, 0x00}, {0xA3, 0x00},
    {0xA4, 0x00}, {0xA5, 0x00}, {0xA6, 0x00}, {0xA7, 0x00}, {0xA8, 0x0F}, {0xAA, 0x00},
    {0xAB, 0x00}, {0xAC, 0x00}, {0xAE, 0x00},
};
} // namespace

Piix3IsaBridge::Piix3IsaBridge(PciIrqRouter& router, PlatformControl& platform)
    : PciDevice(PciIdentity{kVendor, kDevice, 0x00, 0x060100, pci::kHeaderTypeMultiFunction,
                            pci::kQemuSubsystemVendor, pci::kQemuSubsystem, 0,
                            pci::kStatusDevselMedium}),
      router_(router), platform_(platform) {
    for (const ResetValue& r : kResetValues) set_config_byte(r.offset, r.value);
    push_routes();
}

void Piix3IsaBridge::push_routes() {
    for (unsigned p = 0; p < PciIrqRouter::kPirqCount; p++)
        router_.set_route(p, config_byte(kPirqRc + p));
}

void Piix3IsaBridge::config_written(unsigned offset, unsigned size) {
    if (overlaps(offset, size, kPirqRc, PciIrqRouter::kPirqCount)) push_routes();
}

void Piix3IsaBridge::device_reset(ResetKind) {
    for (const ResetValue& r : kResetValues) set_config_byte(r.offset, r.value);
    rcr_ = 0;
    push_routes();
}

void Piix3IsaBridge::save_extra(StateWriter& out) const {
    out.begin("piix3/rcr", kExtraVersion);
    out.put(rcr_);
}

void Piix3IsaBridge::load_extra(StateReader& in) {
    in.begin("piix3/rcr", kExtraVersion, kExtraVersion);
    uint8_t rcr = in.get<uint8_t>();
    if (rcr & ~kRcHardReset) throw StateError("piix3: bad reset control value");
    rcr_ = rcr;
}

void Piix3IsaBridge::sync_derived_state() {
    push_routes();
}

void Piix3IsaBridge::ResetControlIo::io_read(uint64_t, std::span<uint8_t> data) {
    for (auto& b : data) b = d_.rcr_;
}

void Piix3IsaBridge::ResetControlIo::io_write(uint64_t, std::span<const uint8_t> data) {
    if (data.empty()) return;
    uint8_t v = data[0];
    if (v & kRcSystemReset) {
        // SeaBIOS writes 0x02 then 0x06; Linux reboot=pci writes 0x02, 0x06 too. hvm has one
        // platform reset path for all sources, so hard and soft reset are the same here.
        d_.platform_.request_reset();
        return;
    }
    d_.rcr_ = v & kRcHardReset;
}

} // namespace hvm
