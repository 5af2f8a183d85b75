#include "devmodel/misc/debug_exit.hpp"

#include <algorithm>

namespace hvm {

void DebugExit::io_read(uint64_t, std::span<uint8_t> data) {
    for (auto& b : data) b = 0;
}

void DebugExit::io_write(uint64_t, std::span<const uint8_t> data) {
    if (data.empty()) return;
    platform_.request_exit(exit_status(le_load(data.first(std::min<size_t>(data.size(), 4)))));
}

} // namespace hvm
