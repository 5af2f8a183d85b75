// Character devices: the host end of a serial port or debug console. A chip (the 16550, the
// debugcon) sees only these two small interfaces; terminals, files, ptys and sockets live behind
// them (QEMU's Chardev / CharBackend split, without the QOM).
//
// Locking: every call in either direction happens with the device-model lock held, except
// CharBackend::attach(), which takes that lock itself (it is a setup/teardown operation). A backend
// that reads host input does so on its own thread and calls the frontend with the lock held.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

namespace hvm {

// The device end (a UART). Called by the backend with the device-model lock held.
class CharFrontend {
  public:
    virtual ~CharFrontend() = default;
    // How many bytes the device can take right now. Backends never deliver more, so input is
    // never dropped: what does not fit stays on the host side (in the socket, the tty) until the
    // frontend calls CharBackend::accept_input().
    virtual size_t can_receive() = 0;
    // `bytes.size()` is at most what the last can_receive() returned under the same lock hold.
    virtual void receive(std::span<const uint8_t> bytes) = 0;
    // A break condition on the line (stdio's Ctrl-A b, like QEMU's CHR_EVENT_BREAK).
    virtual void receive_break() = 0;
};

// The host end.
class CharBackend {
  public:
    virtual ~CharBackend() = default;
    // Guest output. Called with the device-model lock held; never blocks for long: a backend
    // whose host side is full queues a bounded amount and then drops (like QEMU after its
    // retries), and drops everything while no peer is connected (sockets, ptys).
    virtual void write(std::span<const uint8_t> bytes) = 0;
    // Connects the device that receives host input; nullptr disconnects. Takes the device-model
    // lock itself: call it at setup or teardown, never from a device handler. A frontend must be
    // detached (or the backend destroyed) before the frontend is destroyed.
    virtual void attach(CharFrontend* frontend) = 0;
    // The frontend has room again (the guest read a byte). Called with the device-model lock
    // held; it only wakes the backend's reader, which then delivers under the lock.
    virtual void accept_input() = 0;
};

// What backends need from the machine.
struct CharContext {
    std::mutex& device_lock;
    // stdio's Ctrl-A x: the user asked hvm to quit. Called with the device-model lock held.
    std::function<void()> quit;
};

// `null`: output is discarded, there is never input.
class NullCharBackend : public CharBackend {
  public:
    void write(std::span<const uint8_t>) override {}
    void attach(CharFrontend*) override {}
    void accept_input() override {}
};

} // namespace hvm
