#include <doctest/doctest.h>

#include <mutex>
#include <string>
#include <vector>

#include "qmp/qmp_session.hpp"
#include "unit/qmp/fake_target.hpp"

using namespace hvm;
using hvm::test::FakeTarget;

namespace {

struct Fixture {
    FakeTarget target;
    std::mutex lock;
    QmpDispatcher dispatcher{target, &lock};
    QmpSession session{dispatcher, false};

    Fixture() { target.device_lock = &lock; }

    // Raw answers, each checked to be one CRLF-terminated line.
    std::vector<std::string> raw(std::string_view text) {
        std::vector<std::string> out;
        session.feed(text, [&](std::string s) { out.push_back(std::move(s)); });
        for (const auto& s : out) {
            REQUIRE(s.size() >= 2);
            CHECK(s.substr(s.size() - 2) == "\r\n");
            CHECK(s.find('\n') == s.size() - 1);
        }
        return out;
    }
    // The single answer to `text`, without CRLF.
    std::string one(std::string_view text) {
        auto out = raw(text);
        REQUIRE(out.size() == 1);
        return out[0].substr(0, out[0].size() - 2);
    }
    Json json(std::string_view text) { return Json::parse(one(text)); }
    void negotiate() { REQUIRE(one(R"({"execute": "qmp_capabilities"})") == R"({"return": {}})"); }
    // {"error": {...}} -> "Class: desc"
    std::string error(std::string_view text) {
        Json r = json(text);
        const Json* e = r.find("error");
        if (!e) return "(no error) " + r.dump();
        return e->find("class")->as_string() + ": " + e->find("desc")->as_string();
    }
};

} // namespace

TEST_CASE("QMP: greeting is QEMU 7.2's, byte for byte") {
    Fixture f;
    CHECK(f.session.greeting() == "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, "
                                  "\"major\": 7}, \"package\": \"hvm\"}, \"capabilities\": "
                                  "[\"oob\"]}}\r\n");
    QmpSession pretty(f.dispatcher, true);
    std::string g = pretty.greeting();
    CHECK(g.rfind("{\r\n    \"QMP\": {\r\n        \"version\": {\r\n", 0) == 0);
    CHECK(g.substr(g.size() - 3) == "}\r\n");
    CHECK(Json::parse(g) == Json::parse(f.session.greeting()));
}

TEST_CASE("QMP: capabilities negotiation mode") {
    Fixture f;
    CHECK(
        f.one(R"({"execute": "query-status", "id": 7})") ==
        R"({"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}, "id": 7})");
    CHECK(f.error(R"({"execute": "no-such-command"})") ==
          "CommandNotFound: Expecting capabilities negotiation with 'qmp_capabilities'");
    CHECK(f.target.calls.empty()); // nothing ran
    // Request-level errors keep their own class and text before negotiation too.
    CHECK(f.error(R"({"arguments": {}})") == "GenericError: QMP input lacks member 'execute'");
    CHECK(f.error(R"({"execute": "qmp_capabilities", "arguments": {"x": 1}})") ==
          "GenericError: Parameter 'x' is unexpected");
    CHECK_FALSE(f.session.wants_events());
    f.negotiate();
    CHECK(f.session.wants_events());
    CHECK(
        f.one(R"({"execute": "qmp_capabilities", "id": "again"})") ==
        R"({"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}, "id": "again"})");
    CHECK(
        f.one(R"({"execute": "no-such-command"})") ==
        R"({"error": {"class": "CommandNotFound", "desc": "The command no-such-command has not been found"}})");
}

TEST_CASE("QMP: qmp_capabilities arguments") {
    Fixture f;
    CHECK(f.error(R"({"execute": "qmp_capabilities", "arguments": {"enable": "oob"}})") ==
          "GenericError: Invalid parameter type for 'enable', expected: array");
    CHECK(f.error(R"({"execute": "qmp_capabilities", "arguments": {"enable": [1]}})") ==
          "GenericError: Invalid parameter type for 'enable[0]', expected: string");
    CHECK(f.error(R"({"execute": "qmp_capabilities", "arguments": {"enable": ["nope"]}})") ==
          "GenericError: Parameter 'null' does not accept value 'nope'");
    CHECK_FALSE(f.session.state().command_mode);
    CHECK(f.one(R"({"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}})") ==
          R"({"return": {}})");
    CHECK(f.session.state().command_mode);
    CHECK(f.session.state().oob);
}

TEST_CASE("QMP: request checking (qmp_dispatch_check_obj)") {
    Fixture f;
    f.negotiate();
    CHECK(f.one("[1, 2]") ==
          R"({"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}})");
    CHECK(f.one("42\n") == // a bare number ends at a delimiter
          R"({"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}})");
    CHECK(
        f.one(R"({"id": 5})") ==
        R"({"error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}, "id": 5})");
    CHECK(f.error(R"({"execute": 1})") ==
          "GenericError: QMP input member 'execute' must be a string");
    CHECK(f.error(R"({"execute": "stop", "arguments": []})") ==
          "GenericError: QMP input member 'arguments' must be an object");
    CHECK(f.error(R"({"execute": "stop", "foo": 1})") ==
          "GenericError: QMP input member 'foo' is unexpected");
    // exec-oob is only a member once "oob" was enabled.
    CHECK(f.error(R"({"exec-oob": "stop"})") ==
          "GenericError: QMP input member 'exec-oob' is unexpected");
    CHECK(f.target.calls.empty());
}

TEST_CASE("QMP: out-of-band requests once oob is enabled") {
    Fixture f;
    f.one(R"({"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}})");
    CHECK(f.error(R"({"exec-oob": "stop", "id": 1})") ==
          "GenericError: The command stop does not support OOB");
    CHECK(f.error(R"({"execute": "stop", "exec-oob": "cont"})") ==
          "GenericError: QMP input member 'exec-oob' clashes with 'execute'");
    CHECK(f.error(R"({"exec-oob": "nope"})") ==
          "CommandNotFound: The command nope has not been found");
    CHECK(f.target.calls.empty());
}

TEST_CASE("QMP: id is echoed verbatim, whatever JSON value it is") {
    Fixture f;
    f.negotiate();
    const char* ids[] = {R"("abc")",
                         "1",
                         "-3",
                         "0.5",
                         "null",
                         "true",
                         R"([1, "x", {}])",
                         R"({"deep": {"n": [null]}})"};
    for (const char* id : ids) {
        Json r = f.json(std::string(R"({"execute": "query-version", "id": )") + id + "}");
        REQUIRE(r.find("id"));
        CHECK(*r.find("id") == Json::parse(id));
        CHECK(r.as_object().back().first == "id"); // after "return", as QEMU prints it
    }
    // Errors echo it too, also from argument checking.
    Json r = f.json(R"({"execute": "stop", "arguments": {"x": 1}, "id": {"a": [1]}})");
    CHECK(r.find("error"));
    CHECK(*r.find("id") == Json::parse(R"({"a": [1]})"));
}

TEST_CASE("QMP: JSON parse errors answer GenericError without id") {
    Fixture f;
    f.negotiate();
    CHECK(f.one(R"({ "execute": })") ==
          R"({"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}})");
    CHECK(f.one(R"({"execute": "stop", "id": 1,})") ==
          R"({"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}})");
    CHECK(f.target.calls.empty());
}

TEST_CASE("QMP: several requests in one read are answered in order") {
    Fixture f;
    auto out = f.raw(R"({"execute":"qmp_capabilities","id":1}{"execute":"stop","id":2})"
                     "\n"
                     R"({"execute":"query-status","id":3} {"execute":"cont","id":4})");
    REQUIRE(out.size() == 4);
    for (int i = 0; i < 4; ++i) CHECK(Json::parse(out[i]).find("id")->as_int() == i + 1);
    CHECK(Json::parse(out[2]).find("return")->find("status")->as_string() == "paused");
    CHECK(f.target.calls == std::vector<std::string>{"stop", "query_status", "cont"});
    CHECK(f.target.lock_was_held);
}

TEST_CASE("QMP: query-status, query-version, query-commands") {
    Fixture f;
    f.negotiate();
    CHECK(f.one(R"({"execute": "query-status"})") ==
          R"({"return": {"running": true, "singlestep": false, "status": "running"}})");
    f.target.status = {false, RunState::Prelaunch};
    CHECK(f.one(R"({"execute": "query-status"})") ==
          R"({"return": {"running": false, "singlestep": false, "status": "prelaunch"}})");
    f.target.status = {false, RunState::GuestPanicked};
    CHECK(f.json(R"({"execute": "query-status"})").find("return")->find("status")->as_string() ==
          "guest-panicked");
    CHECK(f.error(R"({"execute": "query-status", "arguments": {"verbose": true}})") ==
          "GenericError: Parameter 'verbose' is unexpected");
    CHECK(f.one(R"({"execute": "query-version"})") ==
          R"({"return": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "hvm"}})");
    Json cmds = *f.json(R"({"execute": "query-commands"})").find("return");
    std::vector<std::string> names;
    for (const auto& c : cmds.as_array()) names.push_back(c.find("name")->as_string());
    std::vector<std::string> expected = {"qmp_capabilities",
                                         "query-status",
                                         "query-version",
                                         "query-commands",
                                         "stop",
                                         "cont",
                                         "system_reset",
                                         "system_powerdown",
                                         "quit",
                                         "screendump",
                                         "send-key",
                                         "input-send-event",
                                         "human-monitor-command"};
    CHECK(names == expected);
    CHECK(f.target.lock_was_held);
}

TEST_CASE("QMP: stop, cont, system_reset, system_powerdown, quit") {
    const char* commands[] = {"stop", "cont", "system_reset", "system_powerdown", "quit"};
    for (const char* c : commands) {
        CAPTURE(c);
        Fixture f;
        f.negotiate();
        CHECK(f.one(std::string(R"({"execute": ")") + c + R"(", "id": 1})") ==
              R"({"return": {}, "id": 1})");
        REQUIRE(f.target.calls.size() == 1);
        CHECK(f.target.calls[0] == c);
        // Unknown arguments: refused before the target sees anything.
        CHECK(f.error(std::string(R"({"execute": ")") + c + R"(", "arguments": {"a": 1}})") ==
              "GenericError: Parameter 'a' is unexpected");
        CHECK(f.target.calls.size() == 1);
        // The target's refusal is the answer.
        f.target.failures[c] = qmp_unsupported(c);
        CHECK(f.error(std::string(R"({"execute": ")") + c + R"("})") ==
              std::string("GenericError: ") + c + " is not supported by hvm yet");
        f.target.failures[c] = QmpError{"DeviceNotFound", "no such thing"};
        CHECK(f.error(std::string(R"({"execute": ")") + c + R"("})") ==
              "DeviceNotFound: no such thing");
        CHECK(f.target.lock_was_held);
    }
}

TEST_CASE("QMP: screendump") {
    Fixture f;
    f.negotiate();
    CHECK(f.one(R"({"execute": "screendump", "arguments": {"filename": "/tmp/s.ppm"}})") ==
          R"({"return": {}})");
    REQUIRE(f.target.screendump_args);
    CHECK(f.target.screendump_args->filename == "/tmp/s.ppm");
    CHECK_FALSE(f.target.screendump_args->device);
    CHECK(f.target.screendump_args->format == ImageFormat::Ppm);
    f.one(R"({"execute": "screendump", "arguments": {"filename": "a.png", "format": "png",
             "device": "vga", "head": 1}})");
    CHECK(f.target.screendump_args->format == ImageFormat::Png);
    CHECK(*f.target.screendump_args->device == "vga");
    CHECK(f.target.screendump_args->head == 1);
    f.target.calls.clear();

    CHECK(f.error(R"({"execute": "screendump"})") ==
          "GenericError: Parameter 'filename' is missing");
    CHECK(f.error(R"({"execute": "screendump", "arguments": {"filename": 3}})") ==
          "GenericError: Invalid parameter type for 'filename', expected: string");
    CHECK(
        f.error(R"({"execute": "screendump", "arguments": {"filename": "x", "format": "gif"}})") ==
        "GenericError: Parameter 'format' does not accept value 'gif'");
    CHECK(f.error(R"({"execute": "screendump", "arguments": {"filename": "x", "head": "0"}})") ==
          "GenericError: Invalid parameter type for 'head', expected: integer");
    CHECK(f.error(R"({"execute": "screendump", "arguments": {"filename": "x", "head": 1}})") ==
          "GenericError: 'head' must be specified together with 'device'");
    CHECK(f.error(R"({"execute": "screendump", "arguments": {"filename": "a\u0000b"}})") ==
          "GenericError: Parameter 'filename' expects a string without NUL characters");
    CHECK(f.error(R"({"execute": "screendump", "arguments": {"filename": "x", "bogus": 1}})") ==
          "GenericError: Parameter 'bogus' is unexpected");
    CHECK(f.target.calls.empty());
    f.target.failures["screendump"] = qmp_generic_error(kQmpNoConsole);
    CHECK(f.error(R"({"execute": "screendump", "arguments": {"filename": "x"}})") ==
          "GenericError: There is no console to take a screendump from");
}

TEST_CASE("QMP: send-key") {
    Fixture f;
    f.negotiate();
    CHECK(f.one(R"({"execute": "send-key", "arguments": {"keys": [
                 {"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"},
                 {"type": "qcode", "data": "delete"}, {"type": "number", "data": 30},
                 {"type": "qcode", "data": "sysrq"}]}})") == R"({"return": {}})");
    REQUIRE(f.target.keys.size() == 5);
    CHECK(f.target.keys[0].kind == QmpKey::Kind::QCode);
    CHECK(f.target.keys[0].qcode == "ctrl");
    CHECK(f.target.keys[2].qcode == "delete");
    CHECK(f.target.keys[3].kind == QmpKey::Kind::Number);
    CHECK(f.target.keys[3].number == 30);
    CHECK(f.target.keys[4].qcode == "print"); // QEMU's sysrq synonym
    CHECK(f.target.hold_time_ms == QmpDispatcher::kDefaultKeyDelayMs);
    f.one(R"({"execute": "send-key", "arguments": {"keys": [], "hold-time": 250}})");
    CHECK(f.target.keys.empty());
    CHECK(f.target.hold_time_ms == 250);
    f.one(R"({"execute": "send-key", "arguments": {"keys": [], "hold-time": 0}})");
    CHECK(f.target.hold_time_ms == QmpDispatcher::kDefaultKeyDelayMs);
    // Every QKeyCode name of 7.2 is accepted, and only those.
    for (auto name : qkeycode_names()) {
        std::string req =
            R"({"execute": "send-key", "arguments": {"keys": [{"type": "qcode", "data": ")" +
            std::string(name) + "\"}]}}";
        CHECK(f.one(req) == R"({"return": {}})");
    }
    f.target.calls.clear();

    auto err = [&](const char* args) {
        return f.error(std::string(R"({"execute": "send-key", "arguments": )") + args + "}");
    };
    CHECK(err("{}") == "GenericError: Parameter 'keys' is missing");
    CHECK(err(R"({"keys": "a"})") ==
          "GenericError: Invalid parameter type for 'keys', expected: array");
    CHECK(err(R"({"keys": [{"type": "qcode", "data": "a"}, "b"]})") ==
          "GenericError: Invalid parameter type for 'keys[1]', expected: object");
    CHECK(err(R"({"keys": [{"data": "a"}]})") ==
          "GenericError: Parameter 'keys[0].type' is missing");
    CHECK(err(R"({"keys": [{"type": "qcode"}]})") ==
          "GenericError: Parameter 'keys[0].data' is missing");
    CHECK(err(R"({"keys": [{"type": "scancode", "data": 1}]})") ==
          "GenericError: Parameter 'type' does not accept value 'scancode'");
    CHECK(err(R"({"keys": [{"type": "qcode", "data": "f13"}]})") ==
          "GenericError: Parameter 'data' does not accept value 'f13'");
    CHECK(err(R"({"keys": [{"type": "qcode", "data": 4}]})") ==
          "GenericError: Invalid parameter type for 'keys[0].data', expected: string");
    CHECK(err(R"({"keys": [{"type": "number", "data": "4"}]})") ==
          "GenericError: Invalid parameter type for 'keys[0].data', expected: integer");
    CHECK(err(R"({"keys": [{"type": "number", "data": 1.5}]})") ==
          "GenericError: Invalid parameter type for 'keys[0].data', expected: integer");
    CHECK(err(R"({"keys": [{"type": "qcode", "data": "a", "down": true}]})") ==
          "GenericError: Parameter 'keys[0].down' is unexpected");
    CHECK(err(R"({"keys": [], "hold-time": "1"})") ==
          "GenericError: Invalid parameter type for 'hold-time', expected: integer");
    CHECK(err(R"({"keys": [], "hold-time": -1})") ==
          "GenericError: Parameter 'hold-time' expects a value between 0 and 4294967295");
    CHECK(err(R"({"keys": [], "hold-time": 4294967296})") ==
          "GenericError: Parameter 'hold-time' expects a value between 0 and 4294967295");
    CHECK(f.target.calls.empty());
    f.target.failures["send_key"] = qmp_unsupported("send-key");
    CHECK(err(R"({"keys": []})") == "GenericError: send-key is not supported by hvm yet");
}

TEST_CASE("QMP: input-send-event") {
    Fixture f;
    f.negotiate();
    CHECK(f.one(R"({"execute": "input-send-event", "arguments": {"events": [
        {"type": "key", "data": {"down": true, "key": {"type": "qcode", "data": "ctrl"}}},
        {"type": "btn", "data": {"down": false, "button": "wheel-down"}},
        {"type": "rel", "data": {"axis": "y", "value": -3}},
        {"type": "abs", "data": {"axis": "x", "value": 20000}}]}})") == R"({"return": {}})");
    REQUIRE(f.target.input_events.size() == 4);
    const auto& ev = f.target.input_events;
    CHECK(ev[0].kind == QmpInputEvent::Kind::Key);
    CHECK(ev[0].down);
    CHECK(ev[0].key.qcode == "ctrl");
    CHECK(ev[1].kind == QmpInputEvent::Kind::Btn);
    CHECK(ev[1].button == InputButton::WheelDown);
    CHECK_FALSE(ev[1].down);
    CHECK(ev[2].kind == QmpInputEvent::Kind::Rel);
    CHECK(ev[2].axis == InputAxis::Y);
    CHECK(ev[2].value == -3);
    CHECK(ev[3].kind == QmpInputEvent::Kind::Abs);
    CHECK(ev[3].value == 20000);
    CHECK_FALSE(f.target.input_device);
    f.one(
        R"({"execute": "input-send-event", "arguments": {"device": "video0", "head": 2, "events": []}})");
    CHECK(*f.target.input_device == "video0");
    CHECK(f.target.input_head == 2);
    f.target.calls.clear();

    auto err = [&](const char* args) {
        return f.error(std::string(R"({"execute": "input-send-event", "arguments": )") + args +
                       "}");
    };
    CHECK(err("{}") == "GenericError: Parameter 'events' is missing");
    CHECK(err(R"({"events": [{"type": "key"}]})") ==
          "GenericError: Parameter 'events[0].data' is missing");
    CHECK(err(R"({"events": [{"type": "mtt", "data": {}}]})") ==
          "GenericError: Parameter 'type' does not accept value 'mtt'");
    CHECK(err(R"({"events": [{"type": "btn", "data": {"button": "wheel-left", "down": true}}]})") ==
          "GenericError: Parameter 'button' does not accept value 'wheel-left'");
    CHECK(err(R"({"events": [{"type": "btn", "data": {"button": "left"}}]})") ==
          "GenericError: Parameter 'events[0].data.down' is missing");
    CHECK(err(R"({"events": [{"type": "abs", "data": {"axis": "z", "value": 1}}]})") ==
          "GenericError: Parameter 'axis' does not accept value 'z'");
    CHECK(
        err(R"({"events": [{"type": "key", "data": {"down": 1, "key": {"type": "qcode", "data": "a"}}}]})") ==
        "GenericError: Invalid parameter type for 'events[0].data.down', expected: boolean");
    CHECK(
        err(R"({"events": [{"type": "key", "data": {"down": true, "key": {"type": "qcode"}}}]})") ==
        "GenericError: Parameter 'events[0].data.key.data' is missing");
    CHECK(err(R"({"events": [{"type": "rel", "data": {"axis": "x", "value": 1, "extra": 0}}]})") ==
          "GenericError: Parameter 'events[0].data.extra' is unexpected");
    CHECK(err(R"({"events": [{"type": "rel", "data": {"axis": "x", "value": 1}, "x": 0}]})") ==
          "GenericError: Parameter 'events[0].x' is unexpected");
    CHECK(f.target.calls.empty());

    // QEMU refuses input while the VM is not running (suspended is fine).
    f.target.status = {false, RunState::Paused};
    CHECK(err(R"({"events": []})") == "GenericError: VM not running");
    CHECK(f.target.calls == std::vector<std::string>{"query_status"});
    f.target.status = {false, RunState::Suspended};
    CHECK(f.one(R"({"execute": "input-send-event", "arguments": {"events": []}})") ==
          R"({"return": {}})");
    f.target.status = {true, RunState::Running};
    f.target.failures["input_send_event"] =
        qmp_generic_error("Input handler not found for event type btn");
    CHECK(err(R"({"events": [{"type": "btn", "data": {"button": "left", "down": true}}]})") ==
          "GenericError: Input handler not found for event type btn");
    CHECK(f.target.lock_was_held);
}

TEST_CASE("QMP: human-monitor-command with a tiny HMP") {
    Fixture f;
    f.negotiate();
    auto hmp = [&](const char* line) {
        Json r = f.json(
            std::string(R"({"execute": "human-monitor-command", "arguments": {"command-line": ")") +
            line + "\"}}");
        REQUIRE(r.find("return"));
        return r.find("return")->as_string();
    };
    CHECK(hmp("info status") == "VM status: running\r\n");
    f.target.status = {false, RunState::Paused};
    CHECK(hmp("  info   status ") == "VM status: paused\r\n");
    f.target.status = {false, RunState::Shutdown};
    CHECK(hmp("info status") == "VM status: paused (shutdown)\r\n");
    CHECK(hmp("info version") == "7.2.0hvm\r\n");
    CHECK(hmp("") == "");
    CHECK(hmp("frobnicate now") == "unknown command: 'frobnicate'\r\n");
    CHECK(hmp("info frob") == "unknown command: 'info frob'\r\n");
    f.target.calls.clear();
    CHECK(hmp("stop") == "");
    CHECK(hmp("c") == "");
    CHECK(f.target.calls == std::vector<std::string>{"stop", "cont"});
    f.target.failures["system_reset"] = qmp_generic_error("Resetting is not possible");
    CHECK(hmp("system_reset") == "Error: Resetting is not possible\r\n");

    CHECK(
        f.one(
             R"({"execute": "human-monitor-command", "arguments": {"command-line": "info status", "cpu-index": 1}})")
            .find("VM status") != std::string::npos);
    CHECK(
        f.error(
            R"({"execute": "human-monitor-command", "arguments": {"command-line": "info status", "cpu-index": 2}})") ==
        "GenericError: Parameter 'cpu-index' expects a CPU number");
    CHECK(
        f.error(
            R"({"execute": "human-monitor-command", "arguments": {"command-line": "x", "cpu-index": -1}})") ==
        "GenericError: Parameter 'cpu-index' expects a CPU number");
    CHECK(f.error(R"({"execute": "human-monitor-command"})") ==
          "GenericError: Parameter 'command-line' is missing");
    CHECK(f.target.lock_was_held);
}

TEST_CASE("QMP: events are formatted as QEMU does") {
    Json e = qmp_event("SHUTDOWN", Json::object({{"guest", true}, {"reason", "guest-shutdown"}}),
                       1645523438, 951702);
    CHECK(
        e.dump() ==
        R"({"timestamp": {"seconds": 1645523438, "microseconds": 951702}, "event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}})");
    CHECK(qmp_event("STOP", Json(), 1, 2).dump() ==
          R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"})");
}
