// What the machine implements so QMP can drive it.
//
// Locking: QmpServer calls every method below from its own thread WITH THE DEVICE-MODEL LOCK HELD
// (the std::mutex& handed to the QmpServer constructor, the same lock every device handler runs
// under), so an implementation may touch devices directly and must not take that lock itself.
// Methods run synchronously and must be brief; anything slow (writing a screendump file is fine,
// waiting for vCPUs to park is fine, waiting for the guest is not) belongs elsewhere.
//
// Errors: a method returns std::nullopt on success or a QmpError, which becomes the command's
// {"error": {"class": ..., "desc": ...}} answer. Use GenericError (the default) unless QEMU uses
// another class for the same failure. An operation the machine cannot do yet answers
// qmp_unsupported("...").
//
// Events: the machine reports state changes through QmpServer::emit_event()/emit_*() (thread-safe,
// callable with the device lock held, also from inside these methods). QEMU emits STOP from
// `stop`, RESUME from `cont`, RESET {guest: false, reason: host-qmp-system-reset} from
// `system_reset`, POWERDOWN from `system_powerdown` and SHUTDOWN {guest: false, reason:
// host-qmp-quit} from `quit`; events emitted during a command reach the client before the
// command's answer, as in QEMU.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qmp/qmp_types.hpp"

namespace hvm {

struct QmpError {
    std::string error_class = "GenericError"; // QapiErrorClass name
    std::string desc;
};
using QmpOutcome = std::optional<QmpError>;

inline QmpError qmp_generic_error(std::string desc) {
    return QmpError{"GenericError", desc};
}
// "<what> is not supported by hvm yet" as a GenericError.
QmpError qmp_unsupported(const std::string& what);

// QEMU 7.2's own texts for failures a machine is likely to report.
inline constexpr const char* kQmpNoConsole = "There is no console to take a screendump from";
inline constexpr const char* kQmpVmNotRunning = "VM not running";

struct QmpStatus {
    bool running = false;
    RunState status = RunState::Prelaunch;
};

class QmpTarget {
  public:
    virtual ~QmpTarget() = default;

    // query-status and HMP `info status`. Also consulted by input-send-event, which QEMU refuses
    // with "VM not running" unless the VM is running or suspended.
    virtual QmpStatus query_status() = 0;

    virtual QmpOutcome stop() = 0;             // pause the vCPUs; emit STOP
    virtual QmpOutcome cont() = 0;             // resume; emit RESUME
    virtual QmpOutcome system_reset() = 0;     // emit RESET
    virtual QmpOutcome system_powerdown() = 0; // ACPI power button; emit POWERDOWN
    // Request hvm's exit and return at once: QEMU answers {"return": {}} first and exits from
    // its main loop. Must not destroy the QmpServer from inside this call (it runs on the
    // server's thread); emit SHUTDOWN {guest: false, reason: host-qmp-quit}.
    virtual QmpOutcome quit() = 0;

    // `filename` is the client's path (free of NUL bytes, otherwise unchecked); `device`/`head`
    // select a console (QEMU: head only together with device, checked before this call).
    virtual QmpOutcome screendump(const std::string& filename,
                                  const std::optional<std::string>& device, int64_t head,
                                  ImageFormat format) = 0;

    // Press all `keys` in order, wait `hold_time_ms`, release them in reverse order (QEMU's
    // qmp_send_key). hold_time_ms is never 0: an absent or zero hold-time becomes QEMU's default.
    virtual QmpOutcome send_key(const std::vector<QmpKey>& keys, uint32_t hold_time_ms) = 0;

    // Deliver `events` in order, then sync (QEMU's qmp_input_send_event). The VM is running or
    // suspended when this is called. QEMU answers "Input handler not found for event type <kind>"
    // when no device takes an event kind.
    virtual QmpOutcome input_send_event(const std::optional<std::string>& device, int64_t head,
                                        const std::vector<QmpInputEvent>& events) = 0;

    // Number of vCPUs, to validate human-monitor-command's cpu-index.
    virtual uint32_t cpu_count() = 0;
};

} // namespace hvm
