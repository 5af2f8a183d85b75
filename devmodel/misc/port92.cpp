#include "devmodel/misc/port92.hpp"

namespace hvm {

void Port92::io_read(uint64_t, std::span<uint8_t> data) {
    for (auto& b : data) b = value_;
}

void Port92::io_write(uint64_t, std::span<const uint8_t> data) {
    if (data.empty()) return;
    uint8_t old = value_;
    value_ = data[0];
    platform_.set_a20(value_ & kA20);
    // The reset fires on the rising edge only: writing 1 again while it is 1 does nothing.
    if ((value_ & kFastReset) && !(old & kFastReset)) platform_.request_reset();
}

void Port92::reset(ResetKind kind) {
    // QEMU's port92_reset clears only the reset bit; at power-on the object starts at zero.
    if (kind == ResetKind::PowerOn)
        value_ = 0;
    else
        value_ &= uint8_t(~kFastReset);
}

void Port92::save(StateWriter& out) const {
    out.begin("port92", 1);
    out.put(value_);
}

void Port92::load(StateReader& in) {
    in.begin("port92", 1, 1);
    value_ = in.get<uint8_t>(); // every value is one a guest can write
}

} // namespace hvm
