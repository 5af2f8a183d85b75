// QEMU's character-device option syntax, as far as hvm implements it:
//   -serial / -debugcon VALUE:
//     none | null | stdio | mon:stdio | pty | file:PATH | chardev:ID
//     unix:PATH[,server=on|off][,wait=on|off]
//     tcp:[HOST]:PORT[,server=on|off][,wait=on|off][,nodelay=on|off]
//     (QEMU's older flags `server`, `nowait` and `nodelay` are accepted too)
//   -chardev TYPE,id=ID,...:
//     null | stdio[,signal=on|off] | pty | file,path=P[,append=on|off]
//     socket,path=P[,server=..][,wait=..] |
//     socket,[host=H,]port=N[,server=..][,wait=..][,nodelay=..] every type also takes mux=on|off
//     (only stdio's Ctrl-A escapes use it; see stdio_backend.hpp)
// Anything else is a UserError with one line naming the option.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace hvm {

enum class CharBackendKind { Null, Stdio, File, Pty, UnixSocket, TcpSocket };

struct CharSpec {
    CharBackendKind kind = CharBackendKind::Null;
    std::string id;   // -chardev id=; empty for an inline -serial value
    std::string path; // File: output file; UnixSocket: socket path
    std::string host; // TcpSocket: empty = every interface (server) or localhost (client)
    uint16_t port = 0;
    bool server = false;
    bool wait = true; // server only: block at startup until a client connects (QEMU default)
    bool nodelay = false;
    bool append = false; // File: append instead of truncating
    bool signal = true;  // Stdio: Ctrl-C etc. stay signals (QEMU's signal=on default)
    bool mux = false;    // mon:stdio / mux=on

    // "unix:/tmp/s,server=on" style, for messages.
    std::string describe() const;
};

// A -serial or -debugcon value: no device, a reference to a -chardev, or an inline backend.
struct SerialTarget {
    enum class Kind { None, Chardev, Backend };
    Kind kind = Kind::None;
    std::string chardev_id; // Kind::Chardev
    CharSpec backend;       // Kind::Backend
};

// `option` names the command-line option in error messages ("-serial", "-debugcon").
SerialTarget parse_serial_spec(std::string_view text, const char* option = "-serial");
CharSpec parse_chardev_spec(std::string_view text);

} // namespace hvm
