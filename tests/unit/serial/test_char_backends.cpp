// Host backends against real files, sockets and ptys. Waits are bounded by deadlines and end as
// soon as the condition holds; only the "nothing arrives" checks take their full time.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "base/clock.hpp"
#include "base/error.hpp"
#include "chardev/char_devices.hpp"
#include "chardev/file_backend.hpp"
#include "chardev/pty_backend.hpp"
#include "chardev/socket_backend.hpp"
#include "chardev/stdio_backend.hpp"
#include "devmodel/serial/uart16550.hpp"

using namespace hvm;
using namespace std::chrono_literals;

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/hvm-chardev-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::string cmd = "rm -rf '" + path + "'";
        int rc = system(cmd.c_str());
        (void)rc;
    }
    std::string file(const char* name) const { return path + "/" + name; }
};

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// A frontend whose room the test controls. Called with `lock` held, like a device.
struct TestFrontend : CharFrontend {
    std::mutex& lock;
    std::condition_variable cv;
    size_t room = 1 << 20;
    std::string got;
    int breaks = 0;
    explicit TestFrontend(std::mutex& m) : lock(m) {}
    size_t can_receive() override { return room; }
    bool overfed = false; // a backend delivered more than offered (checked by the tests)
    void receive(std::span<const uint8_t> b) override {
        if (b.size() > room) overfed = true;
        got.append(b.begin(), b.end());
        room -= std::min(room, b.size());
        cv.notify_all();
    }
    void receive_break() override {
        breaks++;
        cv.notify_all();
    }
    // Waits (lock not held by the caller) until `pred` holds; false on timeout.
    template <typename P> bool wait(P pred, std::chrono::milliseconds limit = 5000ms) {
        std::unique_lock g(lock);
        return cv.wait_for(g, limit, pred);
    }
};

template <typename P> bool eventually(P pred, std::chrono::milliseconds limit = 5000ms) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(2ms);
    }
    return pred();
}

int unix_connect(const std::string& path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

void send_all(int fd, const std::string& s) {
    REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()));
}

// Reads until `n` bytes arrived or 5 s passed.
std::string recv_n(int fd, size_t n) {
    std::string out;
    auto end = std::chrono::steady_clock::now() + 5s;
    while (out.size() < n && std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char buf[256];
        ssize_t r = read(fd, buf, std::min(sizeof buf, n - out.size()));
        if (r <= 0) break;
        out.append(buf, size_t(r));
    }
    return out;
}

void write_locked(std::mutex& lock, CharBackend& b, const std::string& s) {
    std::lock_guard g(lock);
    b.write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

bool connected(std::mutex& lock, StreamCharBackend& b) {
    std::lock_guard g(lock);
    return b.connected_locked();
}

} // namespace

TEST_CASE("file backend writes every byte, truncating or appending") {
    TempDir dir;
    std::string path = dir.file("serial.log");
    {
        FileCharBackend f(path, false);
        const uint8_t bytes[] = {'o', 'k', '\n', 0, 0xFF, '\r'};
        f.write(bytes);
        f.write(std::span<const uint8_t>());
    }
    CHECK(slurp(path) == std::string("ok\n\0\xFF\r", 6));
    {
        FileCharBackend f(path, true);
        const uint8_t more[] = {'+'};
        f.write(more);
    }
    CHECK(slurp(path).size() == 7);
    {
        FileCharBackend f(path, false); // QEMU truncates unless append=on
    }
    CHECK(slurp(path).empty());
    CHECK_THROWS_AS(FileCharBackend(dir.file("no/such/dir/x"), false), UserError);
}

TEST_CASE("unix socket server: round trip with one client, then the next client") {
    TempDir dir;
    std::mutex lock;
    CharSpec spec;
    spec.kind = CharBackendKind::UnixSocket;
    spec.path = dir.file("com1.sock");
    spec.server = true;
    spec.wait = false;
    SocketCharBackend backend(lock, spec);
    TestFrontend fe(lock);
    backend.attach(&fe);

    write_locked(lock, backend, "lost"); // no client yet: dropped, never blocks
    CHECK(backend.dropped_output_bytes() == 4);

    int c = unix_connect(spec.path);
    REQUIRE(c >= 0);
    REQUIRE(eventually([&] { return connected(lock, backend); }));
    send_all(c, "ping");
    CHECK(fe.wait([&] { return fe.got == "ping"; }));
    write_locked(lock, backend, "pong");
    CHECK(recv_n(c, 4) == "pong");
    close(c);
    REQUIRE(eventually([&] { return !connected(lock, backend); }));

    int c2 = unix_connect(spec.path);
    REQUIRE(c2 >= 0);
    REQUIRE(eventually([&] { return connected(lock, backend); }));
    write_locked(lock, backend, "again");
    CHECK(recv_n(c2, 5) == "again");
    send_all(c2, "!");
    CHECK(fe.wait([&] { return fe.got == "ping!"; }));
    close(c2);
    backend.attach(nullptr);
}

TEST_CASE("backpressure: a frontend without room receives nothing until it says so") {
    TempDir dir;
    std::mutex lock;
    CharSpec spec;
    spec.kind = CharBackendKind::UnixSocket;
    spec.path = dir.file("bp.sock");
    spec.server = true;
    spec.wait = false;
    SocketCharBackend backend(lock, spec);
    TestFrontend fe(lock);
    fe.room = 0;
    backend.attach(&fe);
    int c = unix_connect(spec.path);
    REQUIRE(c >= 0);
    REQUIRE(eventually([&] { return connected(lock, backend); }));
    send_all(c, "abcdef");
    CHECK_FALSE(fe.wait([&] { return !fe.got.empty(); }, 200ms));
    {
        std::lock_guard g(lock);
        fe.room = 2;
        backend.accept_input();
    }
    CHECK(fe.wait([&] { return fe.got == "ab"; }));
    CHECK_FALSE(fe.wait([&] { return fe.got.size() > 2; }, 100ms));
    {
        std::lock_guard g(lock);
        fe.room = 100;
        backend.accept_input();
    }
    CHECK(fe.wait([&] { return fe.got == "abcdef"; }));
    // The client leaving does not lose what it sent while the guest was full.
    {
        std::lock_guard g(lock);
        fe.room = 0;
    }
    send_all(c, "xyz");
    close(c);
    std::this_thread::sleep_for(50ms);
    {
        std::lock_guard g(lock);
        fe.room = 100;
        backend.accept_input();
    }
    CHECK(fe.wait([&] { return fe.got == "abcdefxyz"; }));
    CHECK_FALSE(fe.overfed);
    backend.attach(nullptr);
}

TEST_CASE("backpressure: room that shrinks after the backend read is still respected") {
    // The guest may take room away between the backend's read and its delivery (loop-back on,
    // FIFO off): what was read then waits in the backend, it is neither forced in nor dropped.
    struct ShrinkingFrontend : TestFrontend {
        using TestFrontend::TestFrontend;
        bool offered = false;
        size_t can_receive() override {
            if (!offered && room > 0) {
                offered = true;
                return 8;
            }
            return room;
        }
    };
    TempDir dir;
    std::mutex lock;
    CharSpec spec;
    spec.kind = CharBackendKind::UnixSocket;
    spec.path = dir.file("shrink.sock");
    spec.server = true;
    spec.wait = false;
    SocketCharBackend backend(lock, spec);
    ShrinkingFrontend fe(lock);
    fe.room = 2;
    int c = unix_connect(spec.path);
    REQUIRE(c >= 0);
    REQUIRE(eventually([&] { return connected(lock, backend); }));
    send_all(c, "12345678");
    std::this_thread::sleep_for(50ms); // let all eight bytes reach the socket
    backend.attach(&fe);
    CHECK(fe.wait([&] { return fe.got == "12"; }));
    CHECK_FALSE(fe.wait([&] { return fe.got.size() > 2; }, 100ms));
    {
        std::lock_guard g(lock);
        fe.room = 100;
        backend.accept_input();
    }
    CHECK(fe.wait([&] { return fe.got == "12345678"; }));
    CHECK_FALSE(fe.overfed);
    close(c);
    backend.attach(nullptr);
}

TEST_CASE("the UART takes a fast sender's bytes at the guest's pace, none lost") {
    TempDir dir;
    std::mutex lock;
    FakeClock clock;
    CharSpec spec;
    spec.kind = CharBackendKind::UnixSocket;
    spec.path = dir.file("uart.sock");
    spec.server = true;
    spec.wait = false;
    SocketCharBackend backend(lock, spec);
    Uart16550 uart(clock, IrqPin(), &backend);
    {
        std::lock_guard g(lock);
        uart.reset(ResetKind::PowerOn);
        uart.write_register(Uart16550::kIirFcr, 0xC1); // FIFO, trigger level 14
    }
    int c = unix_connect(spec.path);
    REQUIRE(c >= 0);
    REQUIRE(eventually([&] { return connected(lock, backend); }));
    std::string sent;
    for (int i = 0; i < 300; i++) sent += char('!' + i % 90);
    send_all(c, sent);
    std::string got;
    bool overrun = false;
    REQUIRE(eventually([&] {
        // The guest: drain whatever is there, like an interrupt handler would.
        std::lock_guard g(lock);
        for (;;) {
            uint8_t lsr = uart.read_register(Uart16550::kLsr);
            overrun |= (lsr & Uart16550::kLsrOe) != 0;
            if (!(lsr & Uart16550::kLsrDr)) break;
            got += char(uart.read_register(Uart16550::kRbrThr));
        }
        return got.size() >= sent.size();
    }));
    CHECK(got == sent);
    CHECK_FALSE(overrun);
    {
        std::lock_guard g(lock);
        uart.write_register(Uart16550::kRbrThr, 'Z');
    }
    CHECK(recv_n(c, 1) == "Z");
    close(c);
}

TEST_CASE("unix socket client connects to a listening peer") {
    TempDir dir;
    std::string path = dir.file("peer.sock");
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    REQUIRE(bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(listen(l, 1) == 0);
    std::mutex lock;
    TestFrontend fe(lock);
    auto spec = parse_serial_spec("unix:" + path).backend;
    SocketCharBackend backend(lock, spec);
    backend.attach(&fe);
    int peer = accept(l, nullptr, nullptr);
    REQUIRE(peer >= 0);
    send_all(peer, "hello");
    CHECK(fe.wait([&] { return fe.got == "hello"; }));
    write_locked(lock, backend, "world");
    CHECK(recv_n(peer, 5) == "world");
    close(peer);
    REQUIRE(eventually([&] { return !connected(lock, backend); })); // no reconnect
    write_locked(lock, backend, "x");
    backend.attach(nullptr);
    close(l);

    CHECK_THROWS_AS(SocketCharBackend(lock, parse_serial_spec("unix:" + path).backend),
                    UserError); // nobody listens any more
}

TEST_CASE("unix socket server with wait=on blocks until the first client") {
    TempDir dir;
    std::mutex lock;
    std::string path = dir.file("wait.sock");
    std::atomic<int> client{-1};
    std::thread t([&] {
        for (int i = 0; i < 500 && client < 0; i++) {
            client = unix_connect(path);
            if (client < 0) std::this_thread::sleep_for(10ms);
        }
    });
    SocketCharBackend backend(lock, parse_serial_spec("unix:" + path + ",server=on").backend);
    t.join();
    REQUIRE(client >= 0);
    CHECK(connected(lock, backend));
    write_locked(lock, backend, "hi");
    CHECK(recv_n(client, 2) == "hi");
    close(client);
}

TEST_CASE("tcp server on loopback, kernel-chosen port") {
    std::mutex lock;
    SocketCharBackend backend(lock,
                              parse_serial_spec("tcp:127.0.0.1:0,server=on,wait=off").backend);
    REQUIRE(backend.local_port() != 0);
    TestFrontend fe(lock);
    backend.attach(&fe);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(backend.local_port());
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    REQUIRE(eventually([&] { return connected(lock, backend); }));
    send_all(c, "tcp");
    CHECK(fe.wait([&] { return fe.got == "tcp"; }));
    write_locked(lock, backend, "ok");
    CHECK(recv_n(c, 2) == "ok");
    close(c);
    backend.attach(nullptr);
}

TEST_CASE("pty: announced like QEMU, bytes both ways through the slave") {
    std::mutex lock;
    // Capture the announcement on stderr.
    TempDir dir;
    std::string err_path = dir.file("stderr.txt");
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int ef = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(ef, STDERR_FILENO);
    auto backend = std::make_unique<PtyCharBackend>(lock, "serial0");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(ef);
    CHECK(slurp(err_path) == "char device redirected to " + backend->path() + " (label serial0)\n");

    TestFrontend fe(lock);
    backend->attach(&fe);
    int slave = open(backend->path().c_str(), O_RDWR | O_NOCTTY);
    REQUIRE(slave >= 0);
    REQUIRE(write(slave, "typed", 5) == 5);
    CHECK(fe.wait([&] { return fe.got == "typed"; }));
    write_locked(lock, *backend, "shown\n"); // raw mode: no \r added
    CHECK(recv_n(slave, 6) == "shown\n");
    close(slave);
    REQUIRE(eventually([&] { return !connected(lock, *backend); })); // reader hung up
    write_locked(lock, *backend, "dropped");
    backend->attach(nullptr);
}

TEST_CASE("stdio: Ctrl-A escapes, quit, break, and only one user of the terminal") {
    // Put pipes where stdin and stdout are for the duration of the test.
    int in_pipe[2], out_pipe[2];
    REQUIRE(pipe(in_pipe) == 0);
    REQUIRE(pipe(out_pipe) == 0);
    fflush(stdout);
    int saved_in = dup(STDIN_FILENO), saved_out = dup(STDOUT_FILENO);
    dup2(in_pipe[0], STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    std::mutex lock;
    int quits = 0;
    CharContext ctx{lock, [&] { quits++; }};
    std::string echoed;
    {
        StdioCharBackend backend(ctx, true);
        CHECK_THROWS_AS(StdioCharBackend(ctx, true), UserError);
        TestFrontend fe(lock);
        backend.attach(&fe);
        const char input[] = "a\x01\x01"
                             "b\x01"
                             "bc\x01"
                             "q"
                             "d\x01"
                             "x";
        REQUIRE(write(in_pipe[1], input, sizeof input - 1) == ssize_t(sizeof input - 1));
        CHECK(fe.wait([&] { return quits == 1; }));
        CHECK(fe.got == "a\x01"
                        "bcd"); // Ctrl-A q is swallowed, like QEMU's mux
        CHECK(fe.breaks == 1);
        write_locked(lock, backend, "out");
        echoed = recv_n(out_pipe[0], 20);
        close(in_pipe[1]); // end of input: the terminal stays an output
        std::this_thread::sleep_for(20ms);
        write_locked(lock, backend, "!");
        echoed += recv_n(out_pipe[0], 1);
        backend.attach(nullptr);
    }
    dup2(saved_in, STDIN_FILENO);
    dup2(saved_out, STDOUT_FILENO);
    close(saved_in);
    close(saved_out);
    close(in_pipe[0]);
    close(out_pipe[0]);
    close(out_pipe[1]);
    CHECK(echoed == "hvm: Terminated\r\nout!");
    // The terminal is free again.
    CHECK(quits == 1);
}

TEST_CASE("CharDevices resolves -serial values and -chardev ids") {
    TempDir dir;
    std::mutex lock;
    CharDevices devs(CharContext{lock, nullptr});
    CharBackend& log = devs.add_chardev("file,id=log,path=" + dir.file("a.log"));
    CHECK(devs.find("log") == &log);
    CHECK(devs.find("nope") == nullptr);
    CHECK_THROWS_AS(devs.add_chardev("null,id=log"), UserError);
    CHECK(devs.open_target("chardev:log", "-serial", "serial0") == &log);
    CHECK(devs.open_target("none", "-serial", "serial1") == nullptr);
    CharBackend* f = devs.open_target("file:" + dir.file("b.log"), "-serial", "serial2");
    REQUIRE(f != nullptr);
    const uint8_t b[] = {'B'};
    f->write(b);
    log.write(b);
    CHECK(slurp(dir.file("b.log")) == "B");
    CHECK(slurp(dir.file("a.log")) == "B");
    CHECK_THROWS_AS(devs.open_target("chardev:missing", "-serial", "x"), UserError);
    CHECK_THROWS_AS(devs.open_target("file:" + dir.file("no/dir/c"), "-serial", "x"), UserError);
    CHECK(devs.open_target("null", "-debugcon", "debugcon") != nullptr);
}
