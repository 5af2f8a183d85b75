// A QMP server on a unix or TCP socket, with its own thread.
//
//   std::mutex& lock = machine's device-model lock;
//   QmpServer qmp(parse_qmp_option("unix:/tmp/q,server=on,wait=off"), machine_target, lock);
//   ...                                  // from anywhere, lock held or not:
//   qmp.emit_stop();                     // or emit_event("NAME", data)
//
// - The constructor binds and listens (a UserError with one line if it cannot). With wait=on it
//   then blocks until the first client connects, as QEMU does; with wait=off it returns at once.
// - The thread polls the listening socket, the client and a wake-up eventfd. One client at a
//   time (QEMU allows one per monitor): later clients wait in the listen backlog and get their
//   greeting when the current one leaves.
// - Every QmpTarget call is made on this thread with `device_lock` held (see qmp_target.hpp).
// - emit_event() is thread-safe and never takes the device lock, so the machine may call it
//   from vCPU threads, timer callbacks or QmpTarget methods. Events are delivered to a client in
//   command mode and dropped otherwise (QEMU does the same).
// - Hostile clients: output waiting for a client that does not read stops the server from
//   reading that client's requests (backpressure, as QEMU's request queue does); beyond a hard
//   cap the client is disconnected. Input limits are JsonStreamFramer's.
// - The destructor stops the thread, flushes what is queued for the client (bounded wait), closes
//   the sockets and removes the unix socket file. Do not destroy the server with the device lock
//   held or from a QmpTarget method (the thread may be waiting for that lock).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "qmp/json.hpp"
#include "qmp/qmp_options.hpp"
#include "qmp/qmp_session.hpp"
#include "qmp/qmp_target.hpp"

namespace hvm {

class QmpServer {
  public:
    // Output queued for a client above which its requests are no longer read.
    static constexpr size_t kOutputHighWater = size_t{1} << 20;
    // Output queued above which the client is disconnected (it stopped reading).
    static constexpr size_t kOutputHardLimit = size_t{16} << 20;
    // Events waiting for the server thread; older ones are dropped beyond this.
    static constexpr size_t kMaxPendingEvents = 4096;

    QmpServer(const QmpListenSpec& spec, QmpTarget& target, std::mutex& device_lock);
    ~QmpServer();
    QmpServer(const QmpServer&) = delete;
    QmpServer& operator=(const QmpServer&) = delete;

    // Queues {"event": name, "data": data, "timestamp": now}; `data` is omitted when null.
    void emit_event(std::string_view name, const Json& data = Json());
    // The events hvm's machine emits, with QEMU's data.
    void emit_shutdown(bool guest, ShutdownCause reason);
    void emit_reset(bool guest, ShutdownCause reason);
    void emit_stop() { emit_event("STOP"); }
    void emit_resume() { emit_event("RESUME"); }
    void emit_powerdown() { emit_event("POWERDOWN"); }

    // TCP: the bound port (the kernel's choice for port 0). 0 for unix sockets.
    uint16_t local_port() const { return local_port_; }
    const QmpListenSpec& spec() const { return spec_; }

  private:
    void listen_unix();
    void listen_tcp();
    void run();
    void accept_client(int fd);
    void drop_client(const char* why);
    void read_client();
    bool write_client();
    void drain_events();
    void wake();

    QmpListenSpec spec_;
    QmpDispatcher dispatcher_;
    int listen_fd_ = -1;
    int wake_fd_ = -1;
    int client_fd_ = -1;
    uint16_t local_port_ = 0;
    std::string unlink_path_;

    std::unique_ptr<QmpSession> session_; // server thread only
    std::string out_;                     // server thread only

    std::mutex events_lock_;
    std::vector<Json> pending_events_;

    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

} // namespace hvm
