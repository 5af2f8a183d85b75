#include "devmodel/misc/ps2_device.hpp"

namespace hvm {

uint8_t Ps2Device::read() {
    if (count_ == 0) return 0; // callers check has_data(); never read stale slots
    uint8_t b = data_[head_];
    head_ = (head_ + 1) % kQueueSize;
    count_--;
    return b;
}

void Ps2Device::queue(std::initializer_list<uint8_t> bytes) {
    if (bytes.size() > kQueueSize - count_) return;
    for (uint8_t b : bytes) {
        data_[(head_ + count_) % kQueueSize] = b;
        count_++;
    }
    if (data_ready_) data_ready_();
}

void Ps2Device::save_queue(StateWriter& out) const {
    std::array<uint8_t, kQueueSize> ordered{};
    for (unsigned i = 0; i < count_; i++) ordered[i] = data_[(head_ + i) % kQueueSize];
    out.put(uint8_t(count_));
    out.put(ordered);
}

Ps2Device::QueueImage Ps2Device::read_queue(StateReader& in) {
    QueueImage image;
    image.count = in.get<uint8_t>();
    image.bytes = in.get<std::array<uint8_t, kQueueSize>>();
    if (image.count > kQueueSize) throw StateError("ps2: queue count out of range");
    return image;
}

void Ps2Device::restore_queue(const QueueImage& image) {
    data_ = image.bytes;
    head_ = 0;
    count_ = image.count;
}

} // namespace hvm
