// A device on one port of the 8042: it takes the bytes the controller passes on (guest writes to
// port 0x60, or 0xD4 then 0x60 for the aux port) and queues reply bytes for the controller, which
// presents them one at a time in its output buffer. The keyboard and the mouse answer their
// command protocols; host key and pointer events will queue through the same queue when the input
// side arrives.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>

#include "base/state.hpp"

namespace hvm {

class Ps2Device {
  public:
    // QEMU's PS2_QUEUE_SIZE; a real keyboard buffers about as much.
    static constexpr unsigned kQueueSize = 16;

    Ps2Device() = default;
    Ps2Device(const Ps2Device&) = default;
    // Copies the device state but keeps this device's controller hook (state restore goes
    // through a temporary, so a failed load changes nothing).
    Ps2Device& operator=(const Ps2Device& other) {
        data_ = other.data_;
        head_ = other.head_;
        count_ = other.count_;
        return *this;
    }
    virtual ~Ps2Device() = default;
    // A byte from the controller.
    virtual void write(uint8_t byte) = 0;
    // Power-on state (the controller's reset resets its devices, as QEMU's reset handlers do).
    virtual void reset() = 0;

    bool has_data() const { return count_ > 0; }
    // The oldest queued byte; has_data() must be true.
    uint8_t read();
    // The controller's hook, called whenever bytes were queued.
    void set_data_ready(std::function<void()> callback) { data_ready_ = std::move(callback); }

  protected:
    // Queues a whole reply, or nothing if it does not fit (QEMU's ps2_queue_N).
    void queue(std::initializer_list<uint8_t> bytes);
    void clear_queue() { head_ = count_ = 0; }
    struct QueueImage {
        uint8_t count = 0;
        std::array<uint8_t, kQueueSize> bytes{};
    };
    void save_queue(StateWriter& out) const;
    static QueueImage read_queue(StateReader& in); // throws StateError on a bad count
    void restore_queue(const QueueImage& image);

  private:
    std::array<uint8_t, kQueueSize> data_{};
    unsigned head_ = 0, count_ = 0;
    std::function<void()> data_ready_;
};

} // namespace hvm
