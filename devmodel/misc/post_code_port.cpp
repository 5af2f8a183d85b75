#include "devmodel/misc/post_code_port.hpp"

#include "base/log.hpp"

namespace hvm {

void PostCodePort::io_read(uint64_t, std::span<uint8_t> data) {
    for (auto& b : data) b = 0xFF;
}

void PostCodePort::io_write(uint64_t, std::span<const uint8_t> data) {
    if (data.empty()) return;
    uint64_t now = clock_.now_ns();
    last_ = data[0];
    ring_[writes_ % kHistory] = Entry{last_, now};
    writes_++;
    LOG_DEBUG("POST code 0x%02x at %llu.%06llu s", last_, (unsigned long long)(now / 1000000000),
              (unsigned long long)(now % 1000000000 / 1000));
}

std::vector<PostCodePort::Entry> PostCodePort::recent() const {
    std::vector<Entry> out;
    uint64_t n = writes_ < kHistory ? writes_ : kHistory;
    for (uint64_t i = writes_ - n; i < writes_; i++) out.push_back(ring_[i % kHistory]);
    return out;
}

void PostCodePort::save(StateWriter& out) const {
    // Diagnostics only; the history's timestamps belong to this process's clock and are not saved.
    out.begin("post-code-port", 1);
    out.put(last_);
}

void PostCodePort::load(StateReader& in) {
    in.begin("post-code-port", 1, 1);
    last_ = in.get<uint8_t>();
}

} // namespace hvm
