#include <doctest/doctest.h>

#include <string>

#include "base/error.hpp"
#include "chardev/char_spec.hpp"

using namespace hvm;
using K = CharBackendKind;

namespace {

// Every refusal is one line that names the option.
void check_refused(const std::string& text, bool chardev) {
    CAPTURE(text);
    try {
        if (chardev)
            parse_chardev_spec(text);
        else
            parse_serial_spec(text, "-serial");
        FAIL("accepted");
    } catch (const UserError& e) {
        std::string msg = e.what();
        CHECK(msg.find('\n') == std::string::npos);
        CHECK(msg.rfind(chardev ? "-chardev: " : "-serial: ", 0) == 0);
    }
}

} // namespace

TEST_CASE("-serial: simple backends") {
    auto t = parse_serial_spec("stdio");
    CHECK(t.kind == SerialTarget::Kind::Backend);
    CHECK(t.backend.kind == K::Stdio);
    CHECK_FALSE(t.backend.mux);
    t = parse_serial_spec("mon:stdio");
    CHECK(t.backend.kind == K::Stdio);
    CHECK(t.backend.mux);
    CHECK(parse_serial_spec("none").kind == SerialTarget::Kind::None);
    CHECK(parse_serial_spec("null").backend.kind == K::Null);
    CHECK(parse_serial_spec("pty").backend.kind == K::Pty);
    t = parse_serial_spec("file:serial.log");
    CHECK(t.backend.kind == K::File);
    CHECK(t.backend.path == "serial.log");
    CHECK_FALSE(t.backend.append);
    t = parse_serial_spec("chardev:com1");
    CHECK(t.kind == SerialTarget::Kind::Chardev);
    CHECK(t.chardev_id == "com1");
}

TEST_CASE("-serial: unix and tcp sockets") {
    auto s = parse_serial_spec("unix:/tmp/hvm.sock,server=on,wait=off").backend;
    CHECK(s.kind == K::UnixSocket);
    CHECK(s.path == "/tmp/hvm.sock");
    CHECK(s.server);
    CHECK_FALSE(s.wait);
    s = parse_serial_spec("unix:/tmp/a,,b,server,nowait").backend; // ",," is a comma
    CHECK(s.path == "/tmp/a,b");
    CHECK(s.server);
    CHECK_FALSE(s.wait);
    s = parse_serial_spec("unix:/tmp/c").backend;
    CHECK_FALSE(s.server);
    CHECK_FALSE(s.wait);
    s = parse_serial_spec("unix:/tmp/d,server").backend;
    CHECK(s.wait); // QEMU's default: wait for the first client
    s = parse_serial_spec("tcp:127.0.0.1:4444,server=on,wait=off").backend;
    CHECK(s.kind == K::TcpSocket);
    CHECK(s.host == "127.0.0.1");
    CHECK(s.port == 4444);
    CHECK(s.server);
    CHECK_FALSE(s.wait);
    s = parse_serial_spec("tcp::4444,server").backend;
    CHECK(s.host.empty());
    CHECK(s.wait);
    s = parse_serial_spec("tcp:[::1]:5555,nodelay=on").backend;
    CHECK(s.host == "::1");
    CHECK(s.port == 5555);
    CHECK(s.nodelay);
    CHECK_FALSE(s.server);
    CHECK(s.describe() == "tcp:::1:5555");
    CHECK(parse_serial_spec("tcp:localhost:0,server=on,wait=off").backend.port == 0);
}

TEST_CASE("-serial: refusals are one line") {
    for (const char* bad : {"",
                            "vc",
                            "vc:800x600",
                            "bogus",
                            "file:",
                            "chardev:",
                            "mon:none",
                            "tcp:nohost",
                            "tcp:h:99999",
                            "tcp:h:12a",
                            "tcp:h:",
                            "tcp:h:0",
                            "unix:/x,wait=off",
                            "unix:/x,reconnect=1",
                            "unix:/x,bogus=1",
                            "unix:/x,server=maybe",
                            "telnet:h:1",
                            "udp:h:1",
                            "/dev/ttyS0",
                            "pipe:p",
                            "msmouse",
                            "unix:",
                            "unix:/x,=on"})
        check_refused(bad, false);
    try {
        parse_serial_spec("vc", "-debugcon");
        FAIL("accepted");
    } catch (const UserError& e) {
        CHECK(std::string(e.what()).rfind("-debugcon: ", 0) == 0);
    }
}

TEST_CASE("-chardev: every supported type") {
    auto s = parse_chardev_spec("socket,id=s0,path=/tmp/s,server=on,wait=off");
    CHECK(s.kind == K::UnixSocket);
    CHECK(s.id == "s0");
    CHECK(s.path == "/tmp/s");
    CHECK(s.server);
    CHECK_FALSE(s.wait);
    s = parse_chardev_spec("socket,id=t,host=127.0.0.1,port=1234,server=on,wait=off,nodelay=on");
    CHECK(s.kind == K::TcpSocket);
    CHECK(s.host == "127.0.0.1");
    CHECK(s.port == 1234);
    CHECK(s.nodelay);
    s = parse_chardev_spec("socket,id=t,port=4444,server,nowait");
    CHECK(s.kind == K::TcpSocket);
    CHECK(s.host.empty());
    CHECK(s.server);
    CHECK_FALSE(s.wait);
    s = parse_chardev_spec("file,id=f,path=out.log,append=on");
    CHECK(s.kind == K::File);
    CHECK(s.path == "out.log");
    CHECK(s.append);
    s = parse_chardev_spec("file,id=f,path=a,,b");
    CHECK(s.path == "a,b");
    s = parse_chardev_spec("stdio,id=c,signal=off,mux=on");
    CHECK(s.kind == K::Stdio);
    CHECK_FALSE(s.signal);
    CHECK(s.mux);
    CHECK(parse_chardev_spec("stdio,id=c").signal);
    CHECK(parse_chardev_spec("null,id=n").kind == K::Null);
    CHECK(parse_chardev_spec("pty,id=p").kind == K::Pty);
}

TEST_CASE("-chardev: refusals are one line") {
    for (const char* bad : {"",
                            "socket,id=x",
                            "file,id=f",
                            "stdio",
                            "id=x,stdio",
                            "vc,id=v",
                            "bogus,id=b",
                            "socket,id=x,path=/a,port=1",
                            "stdio,id=s,path=/x",
                            "null,id=n,signal=off",
                            "socket,id=s,path=/x,wait=off",
                            "socket,id=s,port=70000,server=on",
                            "socket,id=s,host=h,port=0",
                            "socket,id=s,path=/x,telnet=on",
                            "socket,id=s,path=/x,reconnect=2",
                            "file,id=f,path=",
                            "file,id=f,path=x,logfile=y",
                            "pty,id=p,path=/tmp/link",
                            "stdio,id=s,=1",
                            "serial,id=s,path=/dev/ttyS0",
                            "stdio,id=s,mux=maybe"})
        check_refused(bad, true);
}
