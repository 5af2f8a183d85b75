#include "chardev/char_spec.hpp"

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <utility>
#include <vector>

#include "base/error.hpp"

namespace hvm {

namespace {

using Items = std::vector<std::pair<std::string, std::string>>;

// QEMU's option-list splitting: elements separated by ',', ",," is a literal comma. An element
// without '=' is kept with an empty value and `bare` set (QEMU's legacy short-form flags).
struct Item {
    std::string key, value;
    bool bare = false;
};

std::vector<Item> split(std::string_view text, const std::string& option) {
    std::vector<std::string> parts;
    std::string cur;
    for (size_t i = 0; i < text.size(); i++) {
        if (text[i] == ',') {
            if (i + 1 < text.size() && text[i + 1] == ',') {
                cur += ',';
                i++;
                continue;
            }
            parts.push_back(std::move(cur));
            cur.clear();
        } else {
            cur += text[i];
        }
    }
    parts.push_back(std::move(cur));
    std::vector<Item> items;
    for (size_t i = 0; i < parts.size(); i++) {
        const std::string& p = parts[i];
        if (p.empty()) {
            if (i + 1 == parts.size() && i > 0) continue; // trailing comma
            fail(option + ": empty element in '" + std::string(text) + "'");
        }
        auto eq = p.find('=');
        if (eq == std::string::npos) {
            items.push_back({p, "", true});
        } else {
            if (eq == 0) fail(option + ": empty key in '" + p + "'");
            items.push_back({p.substr(0, eq), p.substr(eq + 1), false});
        }
    }
    return items;
}

bool parse_bool(const Item& it, const std::string& option) {
    const std::string& v = it.value;
    if (v == "on" || v == "yes" || v == "true") return true;
    if (v == "off" || v == "no" || v == "false") return false;
    fail(option + ": " + it.key + "='" + v + "' is not on or off");
}

std::optional<uint16_t> parse_port(std::string_view text) {
    if (text.empty() || text.size() > 5) return std::nullopt;
    uint32_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + uint32_t(c - '0');
    }
    if (v > 65535) return std::nullopt;
    return static_cast<uint16_t>(v);
}

// Socket flags shared by the -serial and -chardev forms. Returns false if `it` is not one.
bool socket_flag(const Item& it, CharSpec& s, bool& wait_given, const std::string& option) {
    if (it.bare) {
        // QEMU's pre-6.0 short forms, still common in scripts.
        if (it.key == "server") {
            s.server = true;
        } else if (it.key == "nowait" || it.key == "wait") {
            s.wait = it.key == "wait";
            wait_given = true;
        } else if (it.key == "nodelay") {
            s.nodelay = true;
        } else {
            return false;
        }
        return true;
    }
    if (it.key == "server") {
        s.server = parse_bool(it, option);
    } else if (it.key == "wait") {
        s.wait = parse_bool(it, option);
        wait_given = true;
    } else if (it.key == "nodelay") {
        s.nodelay = parse_bool(it, option);
    } else {
        return false;
    }
    return true;
}

[[noreturn]] void unsupported_key(const Item& it, const std::string& option) {
    if (it.key == "reconnect" || it.key == "telnet" || it.key == "tn3270" ||
        it.key == "websocket" || it.key == "tls-creds" || it.key == "tls-authz" ||
        it.key == "logfile" || it.key == "logappend" || it.key == "to" || it.key == "ipv4" ||
        it.key == "ipv6" || it.key == "abstract" || it.key == "tight" || it.key == "fd" ||
        it.key == "input-path")
        fail(option + ": parameter '" + it.key + "' is not supported by hvm");
    fail(option + ": unknown parameter '" + it.key + "'");
}

void finish_socket(CharSpec& s, bool wait_given, const std::string& option) {
    if (!s.server && wait_given)
        fail(option + ": 'wait' only applies to a listening socket (add server=on)");
    if (!s.server) s.wait = false;
    if (s.kind == CharBackendKind::TcpSocket && !s.server && s.port == 0)
        fail(option + ": a connecting TCP socket needs a port other than 0");
    if (s.kind == CharBackendKind::UnixSocket && s.path.empty())
        fail(option + ": a unix socket needs a path");
}

// "unix:PATH,opts" / "tcp:HOST:PORT,opts" of -serial.
CharSpec parse_serial_socket(std::string_view rest, bool is_unix, const std::string& option) {
    auto items = split(rest, option);
    CharSpec s;
    s.kind = is_unix ? CharBackendKind::UnixSocket : CharBackendKind::TcpSocket;
    // The first element is the address itself: split() has already turned ",," into ','.
    const Item& addr = items.front();
    std::string address = addr.bare ? addr.key : addr.key + "=" + addr.value;
    if (is_unix) {
        s.path = address;
    } else {
        auto colon = address.rfind(':');
        if (colon == std::string::npos)
            fail(option + ": expected tcp:HOST:PORT, got 'tcp:" + address + "'");
        std::string host = address.substr(0, colon);
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
            host = host.substr(1, host.size() - 2);
        auto port = parse_port(std::string_view(address).substr(colon + 1));
        if (!port) fail(option + ": invalid TCP port in 'tcp:" + address + "'");
        s.host = host;
        s.port = *port;
    }
    bool wait_given = false;
    for (size_t i = 1; i < items.size(); i++)
        if (!socket_flag(items[i], s, wait_given, option)) unsupported_key(items[i], option);
    finish_socket(s, wait_given, option);
    return s;
}

} // namespace

std::string CharSpec::describe() const {
    switch (kind) {
    case CharBackendKind::Null: return "null";
    case CharBackendKind::Stdio: return "stdio";
    case CharBackendKind::Pty: return "pty";
    case CharBackendKind::File: return "file:" + path;
    case CharBackendKind::UnixSocket: return "unix:" + path + (server ? ",server=on" : "");
    case CharBackendKind::TcpSocket:
        return "tcp:" + host + ":" + std::to_string(port) + (server ? ",server=on" : "");
    }
    return "?";
}

SerialTarget parse_serial_spec(std::string_view text, const char* option_name) {
    const std::string option = option_name;
    SerialTarget t;
    if (text.empty()) fail(option + ": missing value");
    std::string_view v = text;
    bool mux = false;
    if (v.substr(0, 4) == "mon:") {
        // QEMU multiplexes its monitor here; hvm has no monitor, only the Ctrl-A escapes.
        mux = true;
        v.remove_prefix(4);
    }
    t.kind = SerialTarget::Kind::Backend;
    CharSpec& s = t.backend;
    if (v == "none" && !mux) {
        t.kind = SerialTarget::Kind::None;
    } else if (v == "null") {
        s.kind = CharBackendKind::Null;
    } else if (v == "stdio") {
        s.kind = CharBackendKind::Stdio;
    } else if (v == "pty") {
        s.kind = CharBackendKind::Pty;
    } else if (v.substr(0, 5) == "file:") {
        s.kind = CharBackendKind::File;
        s.path = std::string(v.substr(5));
        if (s.path.empty()) fail(option + ": file: needs a path");
    } else if (v.substr(0, 8) == "chardev:" && !mux) {
        t.kind = SerialTarget::Kind::Chardev;
        t.chardev_id = std::string(v.substr(8));
        if (t.chardev_id.empty()) fail(option + ": chardev: needs an id");
    } else if (v.substr(0, 5) == "unix:") {
        s = parse_serial_socket(v.substr(5), true, option);
    } else if (v.substr(0, 4) == "tcp:") {
        s = parse_serial_socket(v.substr(4), false, option);
    } else if (v == "vc" || v.substr(0, 3) == "vc:") {
        fail(option + ": virtual consoles (vc) are not supported; use stdio, pty or file:PATH");
    } else if (v.substr(0, 7) == "telnet:" || v.substr(0, 4) == "udp:" ||
               v.substr(0, 5) == "pipe:" || v.substr(0, 10) == "websocket:" ||
               v.substr(0, 5) == "/dev/" || v == "braille" || v == "msmouse") {
        fail(option + ": '" + std::string(v) + "' is not supported by hvm (stdio, pty, " +
             "file:PATH, unix:PATH, tcp:HOST:PORT, chardev:ID, null, none)");
    } else {
        fail(option + ": unknown character device '" + std::string(text) + "'");
    }
    s.mux = mux;
    return t;
}

CharSpec parse_chardev_spec(std::string_view text) {
    const std::string option = "-chardev";
    if (text.empty()) fail("-chardev: missing value");
    auto items = split(text, option);
    if (!items.front().bare) fail("-chardev: the first element must be the backend type");
    const std::string type = items.front().key;
    CharSpec s;
    if (type == "null")
        s.kind = CharBackendKind::Null;
    else if (type == "stdio")
        s.kind = CharBackendKind::Stdio;
    else if (type == "file")
        s.kind = CharBackendKind::File;
    else if (type == "pty")
        s.kind = CharBackendKind::Pty;
    else if (type == "socket")
        s.kind = CharBackendKind::TcpSocket; // decided below
    else if (type == "vc" || type == "pipe" || type == "serial" || type == "tty" ||
             type == "parallel" || type == "parport" || type == "udp" || type == "ringbuf" ||
             type == "memory" || type == "msmouse" || type == "braille" || type == "testdev" ||
             type == "spicevmc" || type == "spiceport" || type == "wctablet" ||
             type == "qemu-vdagent" || type == "dbus")
        fail("-chardev: backend type '" + type + "' is not supported by hvm");
    else
        fail("-chardev: unknown backend type '" + type + "'");

    bool wait_given = false, have_port = false, have_host = false;
    for (size_t i = 1; i < items.size(); i++) {
        const Item& it = items[i];
        if (s.kind == CharBackendKind::TcpSocket && socket_flag(it, s, wait_given, option))
            continue;
        if (it.bare) fail("-chardev: expected key=value, got '" + it.key + "'");
        if (it.key == "id") {
            s.id = it.value;
        } else if (it.key == "mux") {
            s.mux = parse_bool(it, option);
        } else if (it.key == "signal" && s.kind == CharBackendKind::Stdio) {
            s.signal = parse_bool(it, option);
        } else if (it.key == "path" &&
                   (s.kind == CharBackendKind::File || s.kind == CharBackendKind::TcpSocket)) {
            s.path = it.value;
            if (s.path.empty()) fail("-chardev: path= must not be empty");
        } else if (it.key == "append" && s.kind == CharBackendKind::File) {
            s.append = parse_bool(it, option);
        } else if (it.key == "host" && s.kind == CharBackendKind::TcpSocket) {
            s.host = it.value;
            have_host = true;
        } else if (it.key == "port" && s.kind == CharBackendKind::TcpSocket) {
            auto port = parse_port(it.value);
            if (!port) fail("-chardev: invalid port '" + it.value + "'");
            s.port = *port;
            have_port = true;
        } else {
            unsupported_key(it, option);
        }
    }
    if (s.id.empty()) fail("-chardev: " + type + " needs an id= parameter");
    if (s.kind == CharBackendKind::File && s.path.empty())
        fail("-chardev: file needs a path= parameter");
    if (s.kind == CharBackendKind::TcpSocket) {
        if (!s.path.empty()) {
            if (have_port || have_host)
                fail("-chardev: socket takes either path= (unix) or host=/port= (tcp), not both");
            s.kind = CharBackendKind::UnixSocket;
        } else if (!have_port) {
            fail("-chardev: socket needs path= (unix) or port= (tcp)");
        }
        finish_socket(s, wait_given, option);
    }
    return s;
}

} // namespace hvm
