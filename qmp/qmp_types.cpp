#include "qmp/qmp_types.hpp"

#include <array>

namespace hvm {

std::string_view run_state_name(RunState s) {
    switch (s) {
    case RunState::Debug: return "debug";
    case RunState::InMigrate: return "inmigrate";
    case RunState::InternalError: return "internal-error";
    case RunState::IoError: return "io-error";
    case RunState::Paused: return "paused";
    case RunState::PostMigrate: return "postmigrate";
    case RunState::Prelaunch: return "prelaunch";
    case RunState::FinishMigrate: return "finish-migrate";
    case RunState::RestoreVm: return "restore-vm";
    case RunState::Running: return "running";
    case RunState::SaveVm: return "save-vm";
    case RunState::Shutdown: return "shutdown";
    case RunState::Suspended: return "suspended";
    case RunState::Watchdog: return "watchdog";
    case RunState::GuestPanicked: return "guest-panicked";
    case RunState::Colo: return "colo";
    }
    return "internal-error";
}

std::string_view shutdown_cause_name(ShutdownCause c) {
    switch (c) {
    case ShutdownCause::None: return "none";
    case ShutdownCause::HostError: return "host-error";
    case ShutdownCause::HostQmpQuit: return "host-qmp-quit";
    case ShutdownCause::HostQmpSystemReset: return "host-qmp-system-reset";
    case ShutdownCause::HostSignal: return "host-signal";
    case ShutdownCause::HostUi: return "host-ui";
    case ShutdownCause::GuestShutdown: return "guest-shutdown";
    case ShutdownCause::GuestReset: return "guest-reset";
    case ShutdownCause::GuestPanic: return "guest-panic";
    case ShutdownCause::SubsystemReset: return "subsystem-reset";
    }
    return "none";
}

namespace {

constexpr std::array<std::string_view, 150> kQKeyCodes = {
    "unmapped",
    "shift",
    "shift_r",
    "alt",
    "alt_r",
    "ctrl",
    "ctrl_r",
    "menu",
    "esc",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "0",
    "minus",
    "equal",
    "backspace",
    "tab",
    "q",
    "w",
    "e",
    "r",
    "t",
    "y",
    "u",
    "i",
    "o",
    "p",
    "bracket_left",
    "bracket_right",
    "ret",
    "a",
    "s",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "semicolon",
    "apostrophe",
    "grave_accent",
    "backslash",
    "z",
    "x",
    "c",
    "v",
    "b",
    "n",
    "m",
    "comma",
    "dot",
    "slash",
    "asterisk",
    "spc",
    "caps_lock",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "f6",
    "f7",
    "f8",
    "f9",
    "f10",
    "num_lock",
    "scroll_lock",
    "kp_divide",
    "kp_multiply",
    "kp_subtract",
    "kp_add",
    "kp_enter",
    "kp_decimal",
    "sysrq",
    "kp_0",
    "kp_1",
    "kp_2",
    "kp_3",
    "kp_4",
    "kp_5",
    "kp_6",
    "kp_7",
    "kp_8",
    "kp_9",
    "less",
    "f11",
    "f12",
    "print",
    "home",
    "pgup",
    "pgdn",
    "end",
    "left",
    "up",
    "down",
    "right",
    "insert",
    "delete",
    "stop",
    "again",
    "props",
    "undo",
    "front",
    "copy",
    "open",
    "paste",
    "find",
    "cut",
    "lf",
    "help",
    "meta_l",
    "meta_r",
    "compose",
    "pause",
    "ro",
    "hiragana",
    "henkan",
    "yen",
    "muhenkan",
    "katakanahiragana",
    "kp_comma",
    "kp_equals",
    "power",
    "sleep",
    "wake",
    "audionext",
    "audioprev",
    "audiostop",
    "audioplay",
    "audiomute",
    "volumeup",
    "volumedown",
    "mediaselect",
    "mail",
    "calculator",
    "computer",
    "ac_home",
    "ac_back",
    "ac_forward",
    "ac_refresh",
    "ac_bookmarks",
    "lang1",
    "lang2",
};

} // namespace

std::span<const std::string_view> qkeycode_names() {
    return kQKeyCodes;
}

std::optional<uint16_t> qkeycode_index(std::string_view name) {
    for (size_t i = 0; i < kQKeyCodes.size(); ++i)
        if (kQKeyCodes[i] == name) return static_cast<uint16_t>(i);
    return std::nullopt;
}

} // namespace hvm
