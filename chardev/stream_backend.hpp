// The common engine of every backend whose host side is a byte stream: a terminal (stdio), a pty
// master, a socket connection. One I/O thread per backend:
//  - reads host input only while the frontend has room, at most that many bytes, and hands them
//    over under the device-model lock (backpressure: what the guest cannot take yet stays in the
//    kernel's buffers; nothing is dropped);
//  - sleeps on an eventfd when the frontend is full, until accept_input() says there is room;
//  - flushes guest output that the stream could not take at once.
// Guest output is written directly from write() (device lock held) without blocking: what does not
// fit is queued up to a bound, then dropped and counted. While no peer is connected (socket
// without a client, pty whose reader hung up) output is dropped, as QEMU does.
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "base/log.hpp"
#include "chardev/char_backend.hpp"

namespace hvm {

class StreamCharBackend : public CharBackend {
  public:
    ~StreamCharBackend() override;
    StreamCharBackend(const StreamCharBackend&) = delete;
    StreamCharBackend& operator=(const StreamCharBackend&) = delete;

    void write(std::span<const uint8_t> bytes) override;
    void attach(CharFrontend* frontend) override;
    void accept_input() override;

    // Guest output bytes dropped (no peer, or the peer stopped reading and the queue was full).
    uint64_t dropped_output_bytes() const { return dropped_.load(std::memory_order_relaxed); }
    // Device lock held: is a peer connected right now?
    bool connected_locked() const { return out_fd_ >= 0 && !peer_gone_ && !broken_; }

    static constexpr size_t kOutputQueueLimit = 64 * 1024;

  protected:
    // What losing the peer means: a socket connection is closed (a server listens again); a pty
    // master stays open and is looked at again every second until a reader opens the slave.
    enum class PeerLoss { Close, Wait };

    StreamCharBackend(std::mutex& device_lock, PeerLoss loss);

    // Subclass constructors call start() last; subclass destructors call stop() first, so the
    // thread never runs a hook of a half-built or half-destroyed object.
    void start();
    void stop();

    // Device lock held. Installs the stream (in_fd and out_fd may be the same). If `owned`, the
    // fds are closed when the peer goes away or the backend is destroyed. `sockets` selects
    // send(MSG_NOSIGNAL) so a vanished peer is an error code, not SIGPIPE.
    void set_stream_locked(int in_fd, int out_fd, bool owned, bool sockets);

    // Device lock held: turns raw host input into frontend input. The default passes it through;
    // stdio interprets its Ctrl-A escapes here.
    virtual void process_input_locked(std::span<const uint8_t> raw);
    static constexpr uint16_t kBreak = 0x100;
    void queue_input_locked(uint16_t byte_or_break) { pending_.push_back(byte_or_break); }
    // Writes to the host side directly (stdio's escape help text). Device lock held.
    void write_host_locked(std::span<const uint8_t> bytes) { write(bytes); }

    // Server sockets: while no stream is installed, the I/O thread polls this fd and calls
    // accept_peer() (without the lock) when it is readable; a returned fd >= 0 is installed as
    // an owned socket stream.
    virtual int listen_fd() const { return -1; }
    virtual int accept_peer() { return -1; }
    // Device lock held: end of input on the stream. Sockets: the peer is gone. stdio overrides
    // it with end_input_locked(): the terminal stays an output.
    virtual void on_input_eof_locked() { drop_stream_locked(); }

    void drop_stream_locked();
    void end_input_locked() { in_eof_ = true; }
    std::mutex& device_lock() { return lock_; }

  private:
    void run();
    void deliver_locked();
    size_t room_locked();
    void flush_locked();
    void queue_output_locked(std::span<const uint8_t> bytes);
    void wake();

    std::mutex& lock_;
    const PeerLoss loss_;
    int wake_fd_ = -1;
    std::thread thread_;
    bool stopping_ = false;

    // All below: device lock held.
    CharFrontend* frontend_ = nullptr;
    int in_fd_ = -1, out_fd_ = -1;
    bool owned_ = false, sockets_ = false;
    bool in_eof_ = false;           // stdin reached end of file
    bool peer_gone_ = false;        // PeerLoss::Wait: the pty's reader hung up
    bool broken_ = false;           // a write failed hard; the I/O thread drops the stream
    bool hup_seen_ = false;         // the socket peer hung up; read what it sent once there is room
    std::deque<uint16_t> pending_;  // host input not yet delivered (bytes, kBreak)
    std::deque<uint8_t> out_queue_; // guest output the stream has not taken yet
    std::atomic<uint64_t> dropped_{0};
    RateLimiter drop_log_{1, 1u << 20};
};

} // namespace hvm
