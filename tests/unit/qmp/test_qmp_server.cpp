#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <memory>
#include <netinet/in.h>
#include <poll.h>
#include <random>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include "base/error.hpp"
#include "qmp/qmp_server.hpp"
#include "unit/qmp/fake_target.hpp"

using namespace hvm;
using hvm::test::FakeTarget;

namespace {

std::string temp_socket_path() {
    static std::atomic<int> n{0};
    return "/tmp/hvm-qmp-test-" + std::to_string(getpid()) + "-" + std::to_string(n++) + ".sock";
}

class Client {
  public:
    explicit Client(const std::string& path) {
        fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
        REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    }
    explicit Client(uint16_t port) {
        fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    }
    ~Client() { close_now(); }
    void close_now() {
        if (fd_ >= 0) close(fd_);
        fd_ = -1;
    }
    int fd() const { return fd_; }

    void send_all(std::string_view s) {
        while (!s.empty()) {
            ssize_t n = send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
            REQUIRE(n > 0);
            s.remove_prefix(static_cast<size_t>(n));
        }
    }
    // One CRLF-terminated line (without CRLF); "" on timeout or EOF.
    std::string line(int timeout_ms = 5000) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            size_t pos = buf_.find("\r\n");
            if (pos != std::string::npos) {
                std::string l = buf_.substr(0, pos);
                buf_.erase(0, pos + 2);
                return l;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
            if (left <= 0) return "";
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left)) <= 0) return "";
            char tmp[65536];
            ssize_t n = recv(fd_, tmp, sizeof(tmp), 0);
            if (n <= 0) {
                eof_ = true;
                return "";
            }
            buf_.append(tmp, static_cast<size_t>(n));
        }
    }
    Json json(int timeout_ms = 5000) {
        std::string l = line(timeout_ms);
        REQUIRE_MESSAGE(!l.empty(), "no answer from the server");
        return Json::parse(l);
    }
    bool eof(int timeout_ms = 5000) {
        std::string l = line(timeout_ms);
        return l.empty() && eof_;
    }
    void negotiate() {
        Json g = json();
        REQUIRE(g.find("QMP"));
        send_all("{\"execute\": \"qmp_capabilities\"}\n");
        REQUIRE(json() == Json::parse(R"({"return": {}})"));
    }

  private:
    int fd_ = -1;
    std::string buf_;
    bool eof_ = false;
};

struct ServerFixture {
    FakeTarget target;
    std::mutex lock;
    std::string path = temp_socket_path();
    std::unique_ptr<QmpServer> server;

    explicit ServerFixture(bool pretty = false) {
        QmpListenSpec spec;
        spec.path = path;
        spec.wait = false;
        spec.pretty = pretty;
        server = std::make_unique<QmpServer>(spec, target, lock);
        target.device_lock = &lock;
        target.emit = [this](std::string_view name, Json data) { server->emit_event(name, data); };
    }
};

void check_timestamp(const Json& ev) {
    const Json* ts = ev.find("timestamp");
    REQUIRE(ts);
    int64_t sec = ts->find("seconds")->as_int();
    int64_t usec = ts->find("microseconds")->as_int();
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    CHECK(sec <= now);
    CHECK(sec >= now - 60);
    CHECK(usec >= 0);
    CHECK(usec < 1000000);
}

} // namespace

TEST_CASE("QMP server: unix socket session with events before answers") {
    ServerFixture f;
    Client c(f.path);
    CHECK(c.line() == "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": "
                      "7}, \"package\": \"hvm\"}, \"capabilities\": [\"oob\"]}}");
    c.send_all("{\"execute\": \"qmp_capabilities\", \"id\": 1}\r\n");
    CHECK(c.line() == R"({"return": {}, "id": 1})");
    c.send_all(R"({"execute": "stop", "id": 2})");
    Json ev = c.json();
    CHECK(ev.find("event")->as_string() == "STOP");
    CHECK_FALSE(ev.find("data"));
    check_timestamp(ev);
    CHECK(c.json() == Json::parse(R"({"return": {}, "id": 2})"));
    c.send_all(R"({"execute": "query-status"})");
    CHECK(c.line() == R"({"return": {"running": false, "singlestep": false, "status": "paused"}})");
    c.send_all(R"({"execute": "system_reset"})");
    ev = c.json();
    CHECK(ev.find("event")->as_string() == "RESET");
    CHECK(*ev.find("data") ==
          Json::parse(R"({"guest": false, "reason": "host-qmp-system-reset"})"));
    CHECK(c.json() == Json::parse(R"({"return": {}})"));
    CHECK(f.target.lock_was_held);
}

TEST_CASE("QMP server: events from other threads, typed helpers, none before negotiation") {
    ServerFixture f;
    Client c(f.path);
    REQUIRE(c.json().find("QMP"));
    f.server->emit_powerdown(); // negotiation mode: dropped
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    c.send_all(R"({"execute": "qmp_capabilities"})");
    CHECK(c.json() == Json::parse(R"({"return": {}})"));
    std::thread t([&] {
        std::lock_guard<std::mutex> g(f.lock); // a vCPU thread would hold the device lock
        f.server->emit_shutdown(true, ShutdownCause::GuestShutdown);
        f.server->emit_reset(true, ShutdownCause::GuestReset);
        f.server->emit_resume();
    });
    t.join();
    Json e1 = c.json(), e2 = c.json(), e3 = c.json();
    CHECK(e1.find("event")->as_string() == "SHUTDOWN");
    CHECK(*e1.find("data") == Json::parse(R"({"guest": true, "reason": "guest-shutdown"})"));
    check_timestamp(e1);
    CHECK(e2.find("event")->as_string() == "RESET");
    CHECK(*e2.find("data") == Json::parse(R"({"guest": true, "reason": "guest-reset"})"));
    CHECK(e3.find("event")->as_string() == "RESUME");
    CHECK(c.line(200).empty()); // and POWERDOWN never came
}

TEST_CASE("QMP server: TCP on a kernel-chosen port, pretty output") {
    FakeTarget target;
    std::mutex lock;
    QmpListenSpec spec =
        parse_qmp_option("tcp:127.0.0.1:0,server=on,wait=off,nodelay=on", "-qmp-pretty");
    QmpServer server(spec, target, lock);
    REQUIRE(server.local_port() != 0);
    Client c(server.local_port());
    std::string greeting;
    for (std::string l = c.line(); !l.empty(); l = c.line()) {
        greeting += l + "\n";
        if (l == "}") break;
    }
    CHECK(greeting == "{\n"
                      "    \"QMP\": {\n"
                      "        \"version\": {\n"
                      "            \"qemu\": {\n"
                      "                \"micro\": 0,\n"
                      "                \"minor\": 2,\n"
                      "                \"major\": 7\n"
                      "            },\n"
                      "            \"package\": \"hvm\"\n"
                      "        },\n"
                      "        \"capabilities\": [\n"
                      "            \"oob\"\n"
                      "        ]\n"
                      "    }\n"
                      "}\n");
    c.send_all("{\"execute\":\n \"qmp_capabilities\"\n}\n");
    CHECK(c.line() == "{");
    CHECK(c.line() == "    \"return\": {");
    CHECK(c.line() == "    }");
    CHECK(c.line() == "}");
}

TEST_CASE("QMP server: one client at a time, the next one waits for its greeting") {
    ServerFixture f;
    auto a = std::make_unique<Client>(f.path);
    a->negotiate();
    Client b(f.path);
    CHECK(b.line(300).empty()); // queued in the backlog
    a->send_all(R"({"execute": "query-version", "id": "a"})");
    CHECK(a->json().find("id")->as_string() == "a");
    a.reset(); // disconnects
    Json g = b.json();
    CHECK(g.find("QMP"));
    // A fresh session: negotiation starts over.
    b.send_all(R"({"execute": "query-status"})");
    CHECK(b.json().find("error")->find("class")->as_string() == "CommandNotFound");
}

TEST_CASE("QMP server: hostile client — garbage, huge and deep messages, floods") {
    ServerFixture f;
    Client c(f.path);
    c.negotiate();

    // Random bytes, control characters included: the server answers errors and stays usable.
    std::mt19937 rng(1234);
    std::string garbage;
    for (int i = 0; i < 20000; ++i) garbage += static_cast<char>(rng() & 0xFF);
    c.send_all(garbage);
    c.send_all(std::string("\x01", 1)); // resync as qmp-spec.rst recommends
    c.send_all(R"({"execute": "query-version", "id": "after-garbage"})");
    for (;;) {
        std::string l = c.line();
        REQUIRE(!l.empty());
        Json j = Json::parse(l); // every answer is valid JSON, even for binary input
        if (j.find("id") && *j.find("id") == Json("after-garbage")) {
            CHECK(j.find("return"));
            break;
        }
        CHECK(j.find("error"));
    }

    // 2 MiB in one request.
    std::string huge = R"({"execute": "screendump", "arguments": {"filename": ")" +
                       std::string(2 << 20, 'a') + R"("}})";
    c.send_all(huge);
    CHECK(c.json() ==
          Json::parse(
              R"({"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}})"));
    c.send_all(std::string(100000, '[') + std::string(100000, ']'));
    CHECK(
        c.json() ==
        Json::parse(
            R"({"error": {"class": "GenericError", "desc": "JSON nesting depth limit exceeded"}})"));
    CHECK(f.target.calls.empty());

    // Many commands at once, answered in order.
    std::string many;
    for (int i = 0; i < 2000; ++i)
        many += R"({"execute": "query-version", "id": )" + std::to_string(i) + "}";
    c.send_all(many);
    for (int i = 0; i < 2000; ++i) {
        Json j = c.json();
        REQUIRE(j.find("id"));
        CHECK(j.find("id")->as_int() == i);
    }
    c.send_all(R"({"execute": "query-status", "id": "alive"})");
    CHECK(c.json().find("id")->as_string() == "alive");
}

TEST_CASE("QMP server: clients leaving mid-command or never reading") {
    ServerFixture f;
    {
        Client c(f.path);
        c.negotiate();
        c.send_all(R"({"execute": "stop", "arguments": {"x": )"); // half a request
    }
    {
        Client c(f.path);
        c.negotiate();
        // A burst of commands, then gone before the answers are read.
        std::string burst;
        for (int i = 0; i < 500; ++i) burst += R"({"execute": "query-commands"})";
        c.send_all(burst);
    }
    {
        // A client that floods and never reads: the server stops reading it (backpressure) and
        // the flood cannot exhaust memory; it leaves eventually.
        Client c(f.path);
        int fl = fcntl(c.fd(), F_GETFL);
        fcntl(c.fd(), F_SETFL, fl | O_NONBLOCK);
        std::string req;
        for (int i = 0; i < 1000; ++i) req += R"({"execute": "query-commands"})";
        size_t sent = 0;
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
        while (std::chrono::steady_clock::now() < until) {
            ssize_t n = send(c.fd(), req.data(), req.size(), MSG_NOSIGNAL);
            if (n > 0) {
                sent += static_cast<size_t>(n);
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            if (sent > (64u << 20)) break;
        }
        // The server gave up reading long before 64 MiB of requests.
        CHECK(sent < (64u << 20));
    }
    // The server still serves the next client.
    Client c(f.path);
    c.negotiate();
    c.send_all(R"({"execute": "query-status", "id": 9})");
    CHECK(c.json().find("id")->as_int() == 9);
}

TEST_CASE("QMP server: quit's answer and SHUTDOWN reach the client before it goes") {
    ServerFixture f;
    Client c(f.path);
    c.negotiate();
    c.send_all(R"({"execute": "quit", "id": "bye"})");
    Json ev = c.json();
    CHECK(ev.find("event")->as_string() == "SHUTDOWN");
    CHECK(*ev.find("data") == Json::parse(R"({"guest": false, "reason": "host-qmp-quit"})"));
    CHECK(c.json() == Json::parse(R"({"return": {}, "id": "bye"})"));
    // The machine then destroys the server: an event emitted last still goes out, then EOF.
    f.server->emit_event("LAST");
    f.server.reset();
    Json last = c.json();
    CHECK(last.find("event")->as_string() == "LAST");
    CHECK(c.eof());
    struct stat st;
    CHECK(stat(f.path.c_str(), &st) != 0); // socket file removed
}

TEST_CASE("QMP server: wait=on blocks until the first client connects") {
    FakeTarget target;
    std::mutex lock;
    std::string path = temp_socket_path();
    std::atomic<bool> constructed{false};
    std::string greeting;
    std::thread client([&] {
        // Connect once the socket exists; the server must not be constructed before that.
        for (int i = 0; i < 500; ++i) {
            struct stat st;
            if (stat(path.c_str(), &st) == 0) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        CHECK_FALSE(constructed.load());
        Client c(path);
        greeting = c.line();
    });
    QmpServer server(parse_qmp_option("unix:" + path + ",server=on"), target, lock);
    constructed = true;
    client.join();
    CHECK(greeting.find("\"QMP\"") != std::string::npos);
}

TEST_CASE("QMP server: a stale socket file is replaced; other errors are one-line UserErrors") {
    FakeTarget target;
    std::mutex lock;
    std::string path = temp_socket_path();
    {
        QmpServer first(parse_qmp_option("unix:" + path + ",server=on,wait=off"), target, lock);
        // Leak the file the way a crashed hvm would: make a second socket file at the path.
    }
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    close(s);
    {
        QmpServer again(parse_qmp_option("unix:" + path + ",server=on,wait=off"), target, lock);
        Client c(path);
        CHECK(c.json().find("QMP"));
    }
    CHECK_THROWS_AS(QmpServer(parse_qmp_option("unix:/nonexistent-dir/q.sock,server=on,wait=off"),
                              target, lock),
                    UserError);
    // A regular file at the path is not deleted.
    std::string file = temp_socket_path();
    int fd = open(file.c_str(), O_CREAT | O_WRONLY, 0600);
    close(fd);
    CHECK_THROWS_AS(
        QmpServer(parse_qmp_option("unix:" + file + ",server=on,wait=off"), target, lock),
        UserError);
    struct stat st;
    CHECK(stat(file.c_str(), &st) == 0);
    unlink(file.c_str());
}
