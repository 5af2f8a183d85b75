// Command-line syntax for QMP monitors, as QEMU takes it:
//   -qmp unix:PATH[,server=on|off][,wait=on|off]
//   -qmp tcp:[HOST]:PORT[,server=on|off][,wait=on|off][,nodelay=on|off]
//        (QEMU's older flags `server`, `nowait`, `nodelay` work too; ",," is a literal comma)
//   -qmp-pretty ...        the same, answers pretty-printed
//   -mon chardev=ID,mode=control[,pretty=on|off]   with -chardev socket,id=ID,... (the machine
//        converts that chardev's socket settings into a QmpListenSpec)
// hvm's QMP only listens (QEMU's -qmp without server=on connects out; that is refused with a
// one-line UserError, as is anything else it cannot do). wait=on (QEMU's default for a server)
// blocks hvm's start until the first client connects.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace hvm {

struct QmpListenSpec {
    enum class Kind { Unix, Tcp };
    Kind kind = Kind::Unix;
    std::string path; // Unix
    std::string host; // Tcp: empty = every interface
    uint16_t port = 0;
    bool wait = true;
    bool nodelay = false;
    bool pretty = false; // -qmp-pretty / -mon pretty=on

    // "unix:/tmp/q,server=on" style, for messages.
    std::string describe() const;
};

// `option` names the option in messages ("-qmp", "-qmp-pretty"); pretty is set for -qmp-pretty.
QmpListenSpec parse_qmp_option(std::string_view text, const char* option = "-qmp");

struct QmpMonSpec {
    std::string chardev; // the -chardev id
    bool pretty = false;
};
// -mon: QEMU's default mode is readline (HMP), which hvm does not have yet: mode=control is
// required.
QmpMonSpec parse_mon_option(std::string_view text);

} // namespace hvm
