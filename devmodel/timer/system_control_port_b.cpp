#include "devmodel/timer/system_control_port_b.hpp"

#include "devmodel/timer/pit_clock.hpp"

namespace hvm {

namespace {
constexpr uint32_t kStateVersion = 1;
}

void SystemControlPortB::io_read(uint64_t, std::span<uint8_t> data) {
    bool refresh = (pit_ticks_at(clock_.now_ns()) / kRefreshTicks) & 1;
    uint8_t value =
        uint8_t((pit_.gate2() ? kTimer2Gate : 0) | (speaker_data_enable_ ? kSpeakerDataEnable : 0) |
                (refresh ? kRefreshToggle : 0) | (pit_.out2() ? kTimer2Out : 0));
    le_store(data, value);
}

void SystemControlPortB::io_write(uint64_t, std::span<const uint8_t> data) {
    if (data.empty()) return;
    speaker_data_enable_ = data[0] & kSpeakerDataEnable;
    pit_.set_gate2(data[0] & kTimer2Gate);
}

// Counter 2's GATE belongs to the PIT, which resets it itself.
void SystemControlPortB::reset(ResetKind) {
    speaker_data_enable_ = false;
}

void SystemControlPortB::save(StateWriter& out) const {
    out.begin(name(), kStateVersion);
    out.put<uint8_t>(speaker_data_enable_);
}

void SystemControlPortB::load(StateReader& in) {
    in.begin(name(), 1, kStateVersion);
    uint8_t enable = in.get<uint8_t>();
    if (enable > 1) throw StateError("port61: bad speaker data enable");
    speaker_data_enable_ = enable;
}

} // namespace hvm
