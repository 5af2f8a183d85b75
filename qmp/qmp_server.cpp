#include "qmp/qmp_server.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/error.hpp"
#include "base/log.hpp"

namespace hvm {

namespace {

std::string errno_text(int e) {
    return std::strerror(e);
}

void set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

} // namespace

QmpServer::QmpServer(const QmpListenSpec& spec, QmpTarget& target, std::mutex& device_lock)
    : spec_(spec), dispatcher_(target, &device_lock) {
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) fail("qmp: eventfd: " + errno_text(errno));
    try {
        if (spec_.kind == QmpListenSpec::Kind::Unix) {
            listen_unix();
        } else {
            listen_tcp();
        }
        if (spec_.wait) {
            std::fprintf(stderr, "hvm: waiting for QMP connection on %s\n",
                         spec_.describe().c_str());
            int fd;
            do {
                fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            } while (fd < 0 && errno == EINTR);
            if (fd < 0) fail("qmp: waiting for a connection failed: " + errno_text(errno));
            accept_client(fd);
        }
    } catch (...) {
        if (client_fd_ >= 0) close(client_fd_);
        if (listen_fd_ >= 0) close(listen_fd_);
        if (!unlink_path_.empty()) unlink(unlink_path_.c_str());
        close(wake_fd_);
        throw;
    }
    set_nonblocking(listen_fd_);
    thread_ = std::thread([this] { run(); });
}

QmpServer::~QmpServer() {
    stopping_ = true;
    wake();
    if (thread_.joinable()) thread_.join();
    if (client_fd_ >= 0) {
        // Whatever was answered or emitted last (quit's answer, SHUTDOWN) still goes out.
        drain_events();
        for (int waited_ms = 0; !out_.empty() && waited_ms < 1000; waited_ms += 50) {
            if (!write_client()) break;
            if (out_.empty()) break;
            pollfd p{client_fd_, POLLOUT, 0};
            poll(&p, 1, 50);
        }
        close(client_fd_);
    }
    if (listen_fd_ >= 0) close(listen_fd_);
    if (!unlink_path_.empty()) unlink(unlink_path_.c_str());
    close(wake_fd_);
}

void QmpServer::listen_unix() {
    const std::string& path = spec_.path;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(addr.sun_path))
        fail("qmp: unix socket path '" + path + "' is empty or too long");
    std::memcpy(addr.sun_path, path.data(), path.size());
    // A socket file left by an earlier run is replaced (QEMU unlinks it too); any other kind of
    // file at that path is left alone and bind() reports it.
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) fail("qmp: socket: " + errno_text(errno));
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0)
        fail("qmp: cannot listen on " + spec_.describe() + ": " + errno_text(errno));
    unlink_path_ = path;
    if (listen(listen_fd_, 16) < 0)
        fail("qmp: cannot listen on " + spec_.describe() + ": " + errno_text(errno));
}

void QmpServer::listen_tcp() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string port = std::to_string(spec_.port);
    int rc =
        getaddrinfo(spec_.host.empty() ? nullptr : spec_.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0)
        fail("qmp: cannot resolve '" + spec_.host + "' for " + spec_.describe() + ": " +
             gai_strerror(rc));
    int last_errno = 0;
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0) {
            listen_fd_ = fd;
            break;
        }
        last_errno = errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (listen_fd_ < 0)
        fail("qmp: cannot listen on " + spec_.describe() + ": " + errno_text(last_errno));
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
        if (ss.ss_family == AF_INET)
            local_port_ = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            local_port_ = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    }
}

void QmpServer::wake() {
    uint64_t one = 1;
    ssize_t n = write(wake_fd_, &one, sizeof(one));
    (void)n; // EAGAIN: the counter is already non-zero, the thread will wake anyway
}

void QmpServer::emit_event(std::string_view name, const Json& data) {
    timespec ts{};
    int64_t sec = -1, usec = -1; // qmp-spec.rst: -1/-1 when host time is unavailable
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0) {
        sec = ts.tv_sec;
        usec = ts.tv_nsec / 1000;
    }
    {
        std::lock_guard<std::mutex> g(events_lock_);
        if (pending_events_.size() >= kMaxPendingEvents) {
            static RateLimiter limiter;
            if (limiter.allow()) LOG_WARN("qmp: event queue full, dropping the oldest event");
            pending_events_.erase(pending_events_.begin());
        }
        pending_events_.push_back(qmp_event(name, data, sec, usec));
    }
    wake();
}

void QmpServer::emit_shutdown(bool guest, ShutdownCause reason) {
    emit_event("SHUTDOWN", Json::object({{"guest", guest},
                                         {"reason", std::string(shutdown_cause_name(reason))}}));
}

void QmpServer::emit_reset(bool guest, ShutdownCause reason) {
    emit_event("RESET", Json::object({{"guest", guest},
                                      {"reason", std::string(shutdown_cause_name(reason))}}));
}

void QmpServer::drain_events() {
    std::vector<Json> events;
    {
        std::lock_guard<std::mutex> g(events_lock_);
        events.swap(pending_events_);
    }
    if (!session_ || !session_->wants_events()) return;
    for (const auto& e : events) out_ += session_->format(e);
}

void QmpServer::accept_client(int fd) {
    set_nonblocking(fd);
    if (spec_.kind == QmpListenSpec::Kind::Tcp && spec_.nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    client_fd_ = fd;
    session_ = std::make_unique<QmpSession>(dispatcher_, spec_.pretty);
    out_ = session_->greeting();
    // Events from before this client existed are not its business.
    std::lock_guard<std::mutex> g(events_lock_);
    pending_events_.clear();
    LOG_INFO("qmp %s: client connected", spec_.describe().c_str());
}

void QmpServer::drop_client(const char* why) {
    LOG_INFO("qmp %s: client %s", spec_.describe().c_str(), why);
    close(client_fd_);
    client_fd_ = -1;
    session_.reset();
    out_.clear();
    out_.shrink_to_fit();
}

// Sends what it can without blocking. False if the client is gone.
bool QmpServer::write_client() {
    while (!out_.empty()) {
        ssize_t n = send(client_fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
        if (n > 0) {
            out_.erase(0, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
        return false;
    }
    return true;
}

void QmpServer::read_client() {
    // Small reads bound the answers one read can produce (a stray '}' is one error each).
    char buf[4096];
    ssize_t n = recv(client_fd_, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
        drop_client(n == 0 ? "disconnected" : "read failed");
        return;
    }
    session_->feed(std::string_view(buf, static_cast<size_t>(n)), [this](std::string answer) {
        // Events a command caused (STOP from stop) precede its answer, as in QEMU.
        drain_events();
        out_ += answer;
    });
}

void QmpServer::run() {
    while (!stopping_) {
        pollfd fds[3];
        nfds_t n = 0;
        fds[n++] = {wake_fd_, POLLIN, 0};
        int client_slot = -1, listen_slot = -1;
        if (client_fd_ >= 0) {
            short ev = 0;
            if (out_.size() < kOutputHighWater) ev |= POLLIN;
            if (!out_.empty()) ev |= POLLOUT;
            client_slot = static_cast<int>(n);
            fds[n++] = {client_fd_, ev, 0};
        } else {
            listen_slot = static_cast<int>(n);
            fds[n++] = {listen_fd_, POLLIN, 0};
        }
        int rc = poll(fds, n, -1);
        if (rc < 0) {
            if (errno == EINTR) continue;
            LOG_ERROR("qmp: poll failed: %s", errno_text(errno).c_str());
            return;
        }
        if (fds[0].revents & POLLIN) {
            uint64_t count;
            ssize_t r = read(wake_fd_, &count, sizeof(count));
            (void)r;
            if (stopping_) return;
            drain_events();
        }
        if (listen_slot >= 0 && (fds[listen_slot].revents & POLLIN)) {
            int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd >= 0) {
                accept_client(fd);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                static RateLimiter limiter;
                if (limiter.allow())
                    LOG_WARN("qmp %s: accept failed: %s", spec_.describe().c_str(),
                             errno_text(errno).c_str());
            }
        }
        if (client_slot >= 0 && client_fd_ >= 0) {
            short re = fds[client_slot].revents;
            if (re & (POLLIN | POLLHUP | POLLERR)) read_client();
        }
        if (client_fd_ >= 0) {
            if (!write_client()) {
                drop_client("went away");
            } else if (out_.size() > kOutputHardLimit) {
                LOG_WARN("qmp %s: client does not read its answers, disconnecting",
                         spec_.describe().c_str());
                drop_client("disconnected by hvm");
            }
        }
    }
}

} // namespace hvm
