#include "chardev/socket_backend.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/error.hpp"
#include "base/log.hpp"

namespace hvm {

namespace {

std::string errno_text(int err) {
    return strerror(err);
}

sockaddr_un unix_address(const std::string& path, const std::string& what) {
    sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path)
        fail(what + ": socket path is longer than " + std::to_string(sizeof sa.sun_path - 1) +
             " bytes");
    memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    return sa;
}

struct AddrInfo {
    addrinfo* list = nullptr;
    ~AddrInfo() {
        if (list) freeaddrinfo(list);
    }
};

} // namespace

SocketCharBackend::SocketCharBackend(std::mutex& device_lock, const CharSpec& spec)
    : StreamCharBackend(device_lock, PeerLoss::Close), spec_(spec) {
    bool is_unix = spec.kind == CharBackendKind::UnixSocket;
    int fd = -1;
    if (spec.server) {
        if (is_unix)
            listen_unix(spec.path);
        else
            listen_tcp(spec.host, spec.port);
        if (spec.wait) {
            CharSpec shown = spec;
            if (!is_unix) shown.port = local_port_;
            fprintf(stderr, "hvm: waiting for connection on %s\n", shown.describe().c_str());
            for (;;) {
                pollfd p{listen_fd_, POLLIN, 0};
                if (::poll(&p, 1, -1) < 0 && errno != EINTR)
                    fail("socket: waiting for a connection failed: " + errno_text(errno));
                fd = accept_peer();
                if (fd >= 0) break;
            }
        }
    } else {
        fd = is_unix ? connect_unix(spec.path) : connect_tcp(spec.host, spec.port);
    }
    if (fd >= 0) {
        std::lock_guard g(device_lock);
        set_stream_locked(fd, fd, true, true);
    }
    start();
}

SocketCharBackend::~SocketCharBackend() {
    stop();
    if (listen_fd_ >= 0) close(listen_fd_);
    if (!unlink_path_.empty()) unlink(unlink_path_.c_str());
}

void SocketCharBackend::tune(int fd) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (spec_.kind == CharBackendKind::TcpSocket && spec_.nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

void SocketCharBackend::listen_unix(const std::string& path) {
    const std::string what = "socket " + spec_.describe();
    sockaddr_un sa = unix_address(path, what);
    // Non-blocking: a client that gives up between poll() and accept() must not stall us.
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) fail(what + ": " + errno_text(errno));
    // Replace a stale socket left by an earlier run, but never another kind of file.
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 1) != 0) {
        int err = errno;
        close(fd);
        fail(what + ": cannot listen: " + errno_text(err));
    }
    listen_fd_ = fd;
    unlink_path_ = path;
}

void SocketCharBackend::listen_tcp(const std::string& host, uint16_t port) {
    const std::string what = "socket " + spec_.describe();
    addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    AddrInfo ai;
    std::string service = std::to_string(port);
    int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &ai.list);
    if (rc != 0) fail(what + ": cannot resolve '" + host + "': " + gai_strerror(rc));
    int last_err = 0;
    for (addrinfo* a = ai.list; a; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            last_err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1) == 0) {
            sockaddr_storage bound;
            socklen_t len = sizeof bound;
            if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
                if (bound.ss_family == AF_INET)
                    local_port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
                else if (bound.ss_family == AF_INET6)
                    local_port_ = ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
            }
            listen_fd_ = fd;
            return;
        }
        last_err = errno;
        close(fd);
    }
    fail(what + ": cannot listen: " + errno_text(last_err));
}

int SocketCharBackend::connect_unix(const std::string& path) {
    const std::string what = "socket " + spec_.describe();
    sockaddr_un sa = unix_address(path, what);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(what + ": " + errno_text(errno));
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        int err = errno;
        close(fd);
        fail("cannot connect to " + spec_.describe() + ": " + errno_text(err));
    }
    tune(fd);
    return fd;
}

int SocketCharBackend::connect_tcp(const std::string& host, uint16_t port) {
    addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    AddrInfo ai;
    std::string service = std::to_string(port);
    const char* name = host.empty() ? "localhost" : host.c_str();
    int rc = getaddrinfo(name, service.c_str(), &hints, &ai.list);
    if (rc != 0)
        fail("socket " + spec_.describe() + ": cannot resolve '" + name + "': " + gai_strerror(rc));
    int last_err = 0;
    for (addrinfo* a = ai.list; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last_err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            tune(fd);
            return fd;
        }
        last_err = errno;
        close(fd);
    }
    fail("cannot connect to " + spec_.describe() + ": " + errno_text(last_err));
}

int SocketCharBackend::accept_peer() {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            LOG_WARN("socket %s: accept failed: %s", spec_.describe().c_str(), strerror(errno));
        return -1;
    }
    tune(fd);
    LOG_INFO("socket %s: client connected", spec_.describe().c_str());
    return fd;
}

} // namespace hvm
