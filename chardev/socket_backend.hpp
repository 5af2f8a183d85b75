// `unix:` and `tcp:` sockets, connecting or listening (server=on), one peer at a time.
//  - A server with wait=on (QEMU's default) blocks in the constructor until the first client
//    connects, printing where it waits; with wait=off it starts disconnected. When the client
//    leaves, the server accepts the next one. Output is dropped while no client is connected.
//  - A client connects in the constructor (a refused connection is a UserError, as QEMU fails at
//    startup); when the server goes away it stays disconnected (no reconnect=).
//  - A unix server replaces a stale socket file at its path (QEMU unlinks it too) and removes it
//    when destroyed.
#pragma once
#include <string>

#include "chardev/char_spec.hpp"
#include "chardev/stream_backend.hpp"

namespace hvm {

class SocketCharBackend : public StreamCharBackend {
  public:
    // `spec.kind` is UnixSocket or TcpSocket. Throws UserError on any socket error.
    SocketCharBackend(std::mutex& device_lock, const CharSpec& spec);
    ~SocketCharBackend() override;

    // A TCP server's bound port (the one the kernel picked for port 0); 0 otherwise.
    uint16_t local_port() const { return local_port_; }

  protected:
    int listen_fd() const override { return listen_fd_; }
    int accept_peer() override;

  private:
    void listen_unix(const std::string& path);
    void listen_tcp(const std::string& host, uint16_t port);
    int connect_unix(const std::string& path);
    int connect_tcp(const std::string& host, uint16_t port);
    void tune(int fd);

    CharSpec spec_;
    int listen_fd_ = -1;
    uint16_t local_port_ = 0;
    std::string unlink_path_;
};

} // namespace hvm
