#include <doctest/doctest.h>

#include <string>

#include "base/error.hpp"
#include "qmp/qmp_options.hpp"

using namespace hvm;

namespace {
std::string error_of(std::string_view text, const char* option = "-qmp") {
    try {
        parse_qmp_option(text, option);
    } catch (const UserError& e) {
        return e.what();
    }
    return "(accepted)";
}
std::string mon_error(std::string_view text) {
    try {
        parse_mon_option(text);
    } catch (const UserError& e) {
        return e.what();
    }
    return "(accepted)";
}
} // namespace

TEST_CASE("-qmp: unix and tcp servers, QEMU's flags") {
    QmpListenSpec s = parse_qmp_option("unix:/tmp/q.sock,server=on,wait=off");
    CHECK(s.kind == QmpListenSpec::Kind::Unix);
    CHECK(s.path == "/tmp/q.sock");
    CHECK_FALSE(s.wait);
    CHECK_FALSE(s.pretty);
    CHECK(s.describe() == "unix:/tmp/q.sock,server=on");

    s = parse_qmp_option("unix:/tmp/a,,b,server");
    CHECK(s.path == "/tmp/a,b");
    CHECK(s.wait); // QEMU's default for a server

    s = parse_qmp_option("tcp:127.0.0.1:4444,server,nowait", "-qmp-pretty");
    CHECK(s.kind == QmpListenSpec::Kind::Tcp);
    CHECK(s.host == "127.0.0.1");
    CHECK(s.port == 4444);
    CHECK_FALSE(s.wait);
    CHECK(s.pretty);
    CHECK(s.describe() == "tcp:127.0.0.1:4444,server=on");

    s = parse_qmp_option("tcp::5555,server=yes,wait=no,nodelay");
    CHECK(s.host.empty());
    CHECK(s.port == 5555);
    CHECK(s.nodelay);
    s = parse_qmp_option("tcp:[::1]:6000,server=on");
    CHECK(s.host == "::1");
}

TEST_CASE("-qmp: one-line errors") {
    CHECK(error_of("unix:/tmp/q") ==
          "-qmp unix:/tmp/q: hvm's QMP only listens for clients; add server=on (e.g. "
          "unix:/tmp/q,server=on,wait=off)");
    CHECK(error_of("unix:/tmp/q,server=off").find("add server=on") != std::string::npos);
    CHECK(error_of("stdio") ==
          "-qmp stdio: hvm's QMP listens on unix:PATH or tcp:HOST:PORT sockets only");
    CHECK(error_of("unix:,server=on") == "-qmp unix:,server=on: missing socket path");
    CHECK(error_of("unix:/" + std::string(200, 'a') + ",server=on")
              .find("socket path longer than 107 bytes") != std::string::npos);
    CHECK(error_of("tcp:localhost,server=on") ==
          "-qmp tcp:localhost,server=on: expected tcp:[HOST]:PORT");
    CHECK(error_of("tcp:localhost:70000,server=on") ==
          "-qmp tcp:localhost:70000,server=on: port '70000' is not a number from 0 to 65535");
    CHECK(error_of("tcp:localhost:http,server=on").find("port 'http'") != std::string::npos);
    CHECK(error_of("unix:/tmp/q,server=on,wait=maybe") ==
          "-qmp unix:/tmp/q,server=on,wait=maybe: wait='maybe' is not on or off");
    CHECK(error_of("unix:/tmp/q,server=on,reconnect=1") ==
          "-qmp unix:/tmp/q,server=on,reconnect=1: unknown parameter 'reconnect'");
    CHECK(error_of("unix:/tmp/q,server=on,nodelay") ==
          "-qmp unix:/tmp/q,server=on,nodelay: unknown parameter 'nodelay'");
    CHECK(error_of("unix:/tmp/q,server=on", "-qmp-pretty") == "(accepted)");
}

TEST_CASE("-mon chardev=ID,mode=control") {
    QmpMonSpec m = parse_mon_option("chardev=m,mode=control");
    CHECK(m.chardev == "m");
    CHECK_FALSE(m.pretty);
    m = parse_mon_option("m,mode=control,pretty=on,id=mon0");
    CHECK(m.chardev == "m");
    CHECK(m.pretty);
    CHECK(mon_error("chardev=m") ==
          "-mon chardev=m: the human monitor (mode=readline, QEMU's default) is not supported "
          "yet; use mode=control for QMP");
    CHECK(mon_error("mode=control") == "-mon mode=control: chardev=ID is required");
    CHECK(mon_error("chardev=m,mode=qmp") ==
          "-mon chardev=m,mode=qmp: mode='qmp' must be readline or control");
    CHECK(mon_error("chardev=m,mode=control,pretty=2") ==
          "-mon chardev=m,mode=control,pretty=2: pretty='2' is not on or off");
    CHECK(mon_error("chardev=m,mode=control,x=1") ==
          "-mon chardev=m,mode=control,x=1: unknown parameter 'x'");
    CHECK(mon_error("chardev=m,control") ==
          "-mon chardev=m,control: expected KEY=VALUE, got 'control'");
}
