#include "devmodel/misc/debugcon.hpp"

namespace hvm {

void DebugCon::io_read(uint64_t, std::span<uint8_t> data) {
    for (auto& b : data) b = readback_;
}

void DebugCon::io_write(uint64_t, std::span<const uint8_t> data) {
    if (!data.empty() && backend_) backend_->write(data.first(1));
}

} // namespace hvm
