// The QAPI enums and structures QMP commands and events carry, as QEMU 7.2's schema defines them
// (qapi/run-state.json, qapi/ui.json, qapi/control.json). Names are the wire names.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace hvm {

// qapi/run-state.json RunState.
enum class RunState {
    Debug,
    InMigrate,
    InternalError,
    IoError,
    Paused,
    PostMigrate,
    Prelaunch,
    FinishMigrate,
    RestoreVm,
    Running,
    SaveVm,
    Shutdown,
    Suspended,
    Watchdog,
    GuestPanicked,
    Colo,
};
std::string_view run_state_name(RunState s);

// qapi/run-state.json ShutdownCause (SHUTDOWN and RESET events' "reason").
enum class ShutdownCause {
    None,
    HostError,
    HostQmpQuit,
    HostQmpSystemReset,
    HostSignal,
    HostUi,
    GuestShutdown,
    GuestReset,
    GuestPanic,
    SubsystemReset,
};
std::string_view shutdown_cause_name(ShutdownCause c);

// qapi/ui.json ImageFormat (screendump "format", since 7.1).
enum class ImageFormat { Ppm, Png };

// qapi/ui.json InputButton and InputAxis as of QEMU 7.2.
enum class InputButton { Left, Middle, Right, WheelUp, WheelDown, Side, Extra };
enum class InputAxis { X, Y };

// qapi/ui.json QKeyCode as of QEMU 7.2 (the list ends at lang2; f13..f24 came in 8.0), in enum
// order, so an index is QEMU's Q_KEY_CODE_* value.
std::span<const std::string_view> qkeycode_names();
std::optional<uint16_t> qkeycode_index(std::string_view name);

// qapi/ui.json KeyValue: a QKeyCode name or a raw "number" (QEMU's qnum code, an XT scancode
// with 0x80 added for E0-prefixed keys; the target maps it). 'sysrq' arrives as 'print', as QEMU
// rewrites it (ui.json: the two are synonyms).
struct QmpKey {
    enum class Kind { Number, QCode };
    Kind kind = Kind::QCode;
    int64_t number = 0;     // Kind::Number: unvalidated, as the client sent it
    std::string_view qcode; // Kind::QCode: one of qkeycode_names() (static storage)
};

// qapi/ui.json InputEvent.
struct QmpInputEvent {
    enum class Kind { Key, Btn, Rel, Abs };
    Kind kind = Kind::Key;
    QmpKey key;                             // Key
    bool down = false;                      // Key, Btn
    InputButton button = InputButton::Left; // Btn
    InputAxis axis = InputAxis::X;          // Rel, Abs
    int64_t value = 0; // Rel: delta; Abs: position, QEMU's range is 0..0x7fff (unvalidated)
};

} // namespace hvm
