#include "qmp/qmp_options.hpp"

#include <charconv>
#include <optional>
#include <sys/un.h>
#include <vector>

#include "base/error.hpp"

namespace hvm {

namespace {

// Splits at ',' with ",," as a literal comma (QEMU's option syntax).
std::vector<std::string> split_options(std::string_view text) {
    std::vector<std::string> parts(1);
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == ',') {
            if (i + 1 < text.size() && text[i + 1] == ',') {
                parts.back() += ',';
                ++i;
            } else {
                parts.emplace_back();
            }
        } else {
            parts.back() += text[i];
        }
    }
    return parts;
}

std::optional<bool> parse_bool(std::string_view v) {
    if (v == "on" || v == "yes" || v == "true") return true;
    if (v == "off" || v == "no" || v == "false") return false;
    return std::nullopt;
}

} // namespace

std::string QmpListenSpec::describe() const {
    if (kind == Kind::Unix) return "unix:" + path + ",server=on";
    return "tcp:" + host + ":" + std::to_string(port) + ",server=on";
}

QmpListenSpec parse_qmp_option(std::string_view text, const char* option_name) {
    const std::string option = option_name;
    const std::string where = option + " " + std::string(text);
    QmpListenSpec s;
    s.pretty = option == "-qmp-pretty";
    std::vector<std::string> parts = split_options(text);
    std::string_view head = parts[0];
    if (head.substr(0, 5) == "unix:") {
        s.kind = QmpListenSpec::Kind::Unix;
        s.path = std::string(head.substr(5));
        if (s.path.empty()) fail(where + ": missing socket path");
        if (s.path.size() >= sizeof(sockaddr_un::sun_path))
            fail(where + ": socket path longer than " +
                 std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
    } else if (head.substr(0, 4) == "tcp:") {
        s.kind = QmpListenSpec::Kind::Tcp;
        std::string_view hp = head.substr(4);
        size_t colon = hp.rfind(':');
        if (colon == std::string_view::npos) fail(where + ": expected tcp:[HOST]:PORT");
        std::string_view host = hp.substr(0, colon), port = hp.substr(colon + 1);
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
            host = host.substr(1, host.size() - 2); // [::1]
        s.host = std::string(host);
        unsigned value = 0;
        auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (port.empty() || ec != std::errc() || p != port.data() + port.size() || value > 65535)
            fail(where + ": port '" + std::string(port) + "' is not a number from 0 to 65535");
        s.port = static_cast<uint16_t>(value);
    } else {
        fail(where + ": hvm's QMP listens on unix:PATH or tcp:HOST:PORT sockets only");
    }

    bool server = false;
    for (size_t i = 1; i < parts.size(); ++i) {
        std::string_view item = parts[i];
        size_t eq = item.find('=');
        std::string_view key = item.substr(0, eq);
        bool known = key == "server" || key == "wait" ||
                     (key == "nowait" && eq == std::string_view::npos) ||
                     (key == "nodelay" && s.kind == QmpListenSpec::Kind::Tcp);
        if (!known) fail(where + ": unknown parameter '" + std::string(key) + "'");
        std::optional<bool> value = true; // a bare flag means on
        if (eq != std::string_view::npos) {
            value = parse_bool(item.substr(eq + 1));
            if (!value)
                fail(where + ": " + std::string(key) + "='" + std::string(item.substr(eq + 1)) +
                     "' is not on or off");
        }
        if (key == "server") {
            server = *value;
        } else if (key == "wait") {
            s.wait = *value;
        } else if (key == "nowait" && eq == std::string_view::npos) {
            s.wait = false;
        } else {
            s.nodelay = *value;
        }
    }
    if (!server)
        fail(where + ": hvm's QMP only listens for clients; add server=on (e.g. " +
             std::string(parts[0]) + ",server=on,wait=off)");
    return s;
}

QmpMonSpec parse_mon_option(std::string_view text) {
    const std::string where = "-mon " + std::string(text);
    QmpMonSpec m;
    bool control = false;
    std::vector<std::string> items = split_options(text);
    for (size_t i = 0; i < items.size(); ++i) {
        const std::string& item = items[i];
        size_t eq = item.find('=');
        std::string key = item.substr(0, eq);
        std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
        if (eq == std::string::npos) {
            // QEMU's implied key for -mon is chardev ("-mon m,mode=control").
            if (i != 0) fail(where + ": expected KEY=VALUE, got '" + item + "'");
            m.chardev = item;
        } else if (key == "chardev") {
            m.chardev = value;
        } else if (key == "mode") {
            if (value == "control") {
                control = true;
            } else if (value == "readline") {
                control = false;
            } else {
                fail(where + ": mode='" + value + "' must be readline or control");
            }
        } else if (key == "pretty") {
            std::optional<bool> b = parse_bool(value);
            if (!b) fail(where + ": pretty='" + value + "' is not on or off");
            m.pretty = *b;
        } else if (key == "id") {
            // accepted, as QEMU does; nothing refers to a monitor's id in hvm
        } else {
            fail(where + ": unknown parameter '" + key + "'");
        }
    }
    if (m.chardev.empty()) fail(where + ": chardev=ID is required");
    if (!control)
        fail(where + ": the human monitor (mode=readline, QEMU's default) is not supported yet; "
                     "use mode=control for QMP");
    return m;
}

} // namespace hvm
