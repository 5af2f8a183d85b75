#include "chardev/stream_backend.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace hvm {

StreamCharBackend::StreamCharBackend(std::mutex& device_lock, PeerLoss loss)
    : lock_(device_lock), loss_(loss) {
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

StreamCharBackend::~StreamCharBackend() {
    stop();
    if (owned_) {
        if (in_fd_ >= 0) close(in_fd_);
        if (out_fd_ >= 0 && out_fd_ != in_fd_) close(out_fd_);
    }
    close(wake_fd_);
}

void StreamCharBackend::start() {
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void StreamCharBackend::stop() {
    if (!thread_.joinable()) return;
    {
        std::lock_guard g(lock_);
        stopping_ = true;
    }
    wake();
    thread_.join();
}

void StreamCharBackend::wake() {
    uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the thread will wake anyway.
    ssize_t r = ::write(wake_fd_, &one, sizeof one);
    (void)r;
}

void StreamCharBackend::attach(CharFrontend* frontend) {
    {
        std::lock_guard g(lock_);
        frontend_ = frontend;
    }
    wake();
}

void StreamCharBackend::accept_input() {
    wake();
}

void StreamCharBackend::set_stream_locked(int in_fd, int out_fd, bool owned, bool sockets) {
    in_fd_ = in_fd;
    out_fd_ = out_fd;
    owned_ = owned;
    sockets_ = sockets;
    in_eof_ = peer_gone_ = broken_ = hup_seen_ = false;
    out_queue_.clear();
    wake();
}

void StreamCharBackend::drop_stream_locked() {
    if (owned_) {
        if (in_fd_ >= 0) close(in_fd_);
        if (out_fd_ >= 0 && out_fd_ != in_fd_) close(out_fd_);
    }
    in_fd_ = out_fd_ = -1;
    owned_ = false;
    broken_ = hup_seen_ = false;
    out_queue_.clear();
    // pending_ is kept: the peer sent it before leaving and the guest still gets it.
}

void StreamCharBackend::process_input_locked(std::span<const uint8_t> raw) {
    for (uint8_t b : raw) pending_.push_back(b);
}

size_t StreamCharBackend::room_locked() {
    return frontend_ ? frontend_->can_receive() : 0;
}

void StreamCharBackend::deliver_locked() {
    uint8_t chunk[256];
    while (!pending_.empty() && frontend_) {
        size_t room = frontend_->can_receive();
        if (room == 0) break;
        if (pending_.front() == kBreak) {
            // A break takes a receiver slot (a NUL with LSR.BI), so it waits for room too.
            pending_.pop_front();
            frontend_->receive_break();
            continue;
        }
        size_t n = 0;
        while (n < room && n < sizeof chunk && !pending_.empty() && pending_.front() != kBreak) {
            chunk[n++] = static_cast<uint8_t>(pending_.front());
            pending_.pop_front();
        }
        frontend_->receive(std::span<const uint8_t>(chunk, n));
    }
}

void StreamCharBackend::queue_output_locked(std::span<const uint8_t> bytes) {
    size_t space = kOutputQueueLimit - std::min(kOutputQueueLimit, out_queue_.size());
    size_t take = std::min(space, bytes.size());
    out_queue_.insert(out_queue_.end(), bytes.begin(), bytes.begin() + take);
    if (take < bytes.size()) {
        dropped_.fetch_add(bytes.size() - take, std::memory_order_relaxed);
        if (drop_log_.allow())
            LOG_WARN("character device: the host side is not reading; dropping guest output");
    }
}

void StreamCharBackend::write(std::span<const uint8_t> bytes) {
    if (bytes.empty()) return;
    if (!connected_locked()) {
        dropped_.fetch_add(bytes.size(), std::memory_order_relaxed);
        return;
    }
    if (!out_queue_.empty()) {
        // Keep the order: older bytes are still waiting for the stream.
        queue_output_locked(bytes);
        return;
    }
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t r = sockets_ ? ::send(out_fd_, bytes.data() + done, bytes.size() - done,
                                      MSG_NOSIGNAL | MSG_DONTWAIT)
                             : ::write(out_fd_, bytes.data() + done, bytes.size() - done);
        if (r > 0) {
            done += size_t(r);
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        // EPIPE, ECONNRESET, EIO (pty reader gone): the I/O thread deals with the stream.
        broken_ = true;
        dropped_.fetch_add(bytes.size() - done, std::memory_order_relaxed);
        wake();
        return;
    }
    if (done < bytes.size()) {
        queue_output_locked(bytes.subspan(done));
        wake(); // poll for POLLOUT
    }
}

void StreamCharBackend::flush_locked() {
    uint8_t chunk[4096];
    while (!out_queue_.empty() && connected_locked()) {
        size_t n = std::min(out_queue_.size(), sizeof chunk);
        std::copy_n(out_queue_.begin(), n, chunk);
        ssize_t r = sockets_ ? ::send(out_fd_, chunk, n, MSG_NOSIGNAL | MSG_DONTWAIT)
                             : ::write(out_fd_, chunk, n);
        if (r > 0) {
            out_queue_.erase(out_queue_.begin(), out_queue_.begin() + r);
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        broken_ = true;
        return;
    }
}

void StreamCharBackend::run() {
    uint8_t buf[4096];
    for (;;) {
        pollfd pfd[3];
        nfds_t n = 0;
        int timeout = -1;
        int stream_slot = -1, out_slot = -1, listen_slot = -1;
        int in_fd = -1;
        size_t read_max = 0;
        {
            std::lock_guard g(lock_);
            if (stopping_) return;
            if (broken_) {
                if (loss_ == PeerLoss::Close) {
                    drop_stream_locked();
                } else {
                    peer_gone_ = true;
                    broken_ = false;
                    out_queue_.clear();
                }
            }
            if (peer_gone_) {
                // A pty master reports POLLHUP for as long as no reader has the slave open.
                pollfd p{out_fd_, 0, 0};
                if (::poll(&p, 1, 0) == 1 && !(p.revents & POLLHUP)) peer_gone_ = false;
            }
            deliver_locked();
            pfd[n++] = {wake_fd_, POLLIN, 0};
            in_fd = in_fd_;
            if (out_fd_ >= 0 && peer_gone_) {
                timeout = 1000; // QEMU also looks at a disconnected pty once a second
            } else if (in_fd_ >= 0 || out_fd_ >= 0) {
                if (in_fd_ >= 0 && !in_eof_ && pending_.empty())
                    read_max = std::min(room_locked(), sizeof buf);
                bool want_out = !out_queue_.empty();
                short in_events = read_max > 0 ? POLLIN : 0;
                if (in_fd_ == out_fd_) {
                    short ev = in_events | (want_out ? POLLOUT : 0);
                    // With no events poll still reports a hang-up, which is how a socket
                    // server notices its client left; after that, only look when there is room
                    // to read what the peer sent before leaving.
                    if (ev || !hup_seen_) {
                        stream_slot = out_slot = int(n);
                        pfd[n++] = {in_fd_, ev, 0};
                    }
                } else {
                    if (in_events) {
                        stream_slot = int(n);
                        pfd[n++] = {in_fd_, in_events, 0};
                    }
                    if (want_out && out_fd_ >= 0) {
                        out_slot = int(n);
                        pfd[n++] = {out_fd_, POLLOUT, 0};
                    }
                }
            } else {
                int lfd = listen_fd();
                if (lfd >= 0) {
                    listen_slot = int(n);
                    pfd[n++] = {lfd, POLLIN, 0};
                }
            }
        }

        int r = ::poll(pfd, n, timeout);
        if (r < 0) {
            if (errno == EINTR) continue;
            LOG_ERROR("character device: poll failed: %s", strerror(errno));
            return;
        }
        if (pfd[0].revents & POLLIN) {
            uint64_t v;
            ssize_t got = ::read(wake_fd_, &v, sizeof v);
            (void)got;
        }
        if (listen_slot >= 0 && pfd[listen_slot].revents) {
            int fd = accept_peer();
            if (fd >= 0) {
                std::lock_guard g(lock_);
                set_stream_locked(fd, fd, true, true);
            }
            continue;
        }
        if (stream_slot >= 0) {
            short rev = pfd[stream_slot].revents;
            if (read_max > 0 && (rev & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t got = ::read(in_fd, buf, read_max);
                int err = errno;
                std::lock_guard g(lock_);
                if (stopping_) return;
                if (got > 0) {
                    process_input_locked(std::span<const uint8_t>(buf, size_t(got)));
                } else if (got < 0 && (err == EAGAIN || err == EINTR)) {
                    // spurious wake-up
                } else if (got < 0 && err == EIO && loss_ == PeerLoss::Wait) {
                    peer_gone_ = true; // pty: the reader closed the slave
                    out_queue_.clear();
                } else {
                    on_input_eof_locked();
                }
                continue;
            }
            if (rev & (POLLHUP | POLLERR)) {
                std::lock_guard g(lock_);
                if (loss_ == PeerLoss::Wait) {
                    peer_gone_ = true;
                    out_queue_.clear();
                } else if (rev & POLLERR) {
                    drop_stream_locked();
                } else {
                    hup_seen_ = true;
                }
            }
        }
        if (out_slot >= 0 && (pfd[out_slot].revents & POLLOUT)) {
            std::lock_guard g(lock_);
            flush_locked();
        } else if (out_slot >= 0 && out_slot != stream_slot &&
                   (pfd[out_slot].revents & (POLLERR | POLLHUP))) {
            std::lock_guard g(lock_);
            broken_ = true; // stdout went away
        }
    }
}

} // namespace hvm
