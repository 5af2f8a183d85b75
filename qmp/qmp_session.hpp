// QMP as QEMU 7.2 speaks it (docs/interop/qmp-spec.rst, monitor/qmp.c, qapi/qmp-dispatch.c),
// independent of sockets so it can be tested byte for byte.
//
// QmpDispatcher holds the command table (built explicitly in its constructor) and calls the
// QmpTarget with the device lock held. QmpSession is one client connection: greeting,
// capabilities negotiation, command mode, request checking, "id" echo, answers. Every line the
// server sends ends in CRLF (QEMU's monitor output turns each '\n' into "\r\n", also inside
// -qmp-pretty output).
#pragma once
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "qmp/json.hpp"
#include "qmp/json_stream.hpp"
#include "qmp/qmp_args.hpp"
#include "qmp/qmp_target.hpp"

namespace hvm {

// Per-connection protocol state that commands can change (qmp_capabilities).
struct QmpSessionState {
    bool command_mode = false; // false: capabilities negotiation mode
    bool oob = false;          // "oob" enabled by qmp_capabilities
};

class QmpDispatcher {
  public:
    // The version hvm reports (query-version, greeting): QEMU 7.2.0, the platform it reproduces.
    static constexpr int kMajor = 7, kMinor = 2, kMicro = 0;
    static constexpr const char* kPackage = "hvm";
    // ui/input.c kbd_default_delay_ms: send-key's hold time when absent or 0.
    static constexpr uint32_t kDefaultKeyDelayMs = 10;

    // `device_lock` is taken around every QmpTarget call; nullptr if the caller already
    // serialises calls with the device model (single-threaded tests).
    QmpDispatcher(QmpTarget& target, std::mutex* device_lock);

    // Runs a checked request. Throws QmpException for any error.
    Json run(const std::string& command, const Json& arguments, QmpSessionState& state,
             bool out_of_band);

    bool has_command(std::string_view name) const;
    std::vector<std::string> command_names() const;
    static Json version_json();

  private:
    using Handler = std::function<Json(QmpArgs&, QmpSessionState&)>;
    struct Command {
        std::string name;
        Handler handler;
        bool allow_oob = false;
    };
    void add(std::string name, Handler handler);
    std::unique_lock<std::mutex> lock_device();
    static void check_outcome(const QmpOutcome& outcome);

    Json qmp_capabilities(QmpArgs& args, QmpSessionState& state);
    Json query_status(QmpArgs& args);
    Json query_commands(QmpArgs& args);
    Json simple(QmpArgs& args, QmpOutcome (QmpTarget::*op)());
    Json screendump(QmpArgs& args);
    Json send_key(QmpArgs& args);
    Json input_send_event(QmpArgs& args);
    Json human_monitor_command(QmpArgs& args);
    std::string hmp(const std::string& line);

    QmpTarget& target_;
    std::mutex* device_lock_;
    std::vector<Command> commands_;
};

class QmpSession {
  public:
    QmpSession(QmpDispatcher& dispatcher, bool pretty);

    // The greeting, sent as soon as a client connects.
    std::string greeting() const;
    // Consumes client bytes; calls `send` with each complete answer (CRLF-terminated), in order.
    void feed(std::string_view bytes, const std::function<void(std::string)>& send);
    // Events are delivered only in command mode (qmp-spec.rst, "Capabilities Negotiation").
    bool wants_events() const { return state_.command_mode; }
    const QmpSessionState& state() const { return state_; }

    // Answer to one parsed request (or parse error), CRLF-terminated.
    std::string handle(const JsonStreamFramer::Message& message);
    std::string format(const Json& value) const;

  private:
    Json dispatch(const Json& request);

    QmpDispatcher& dispatcher_;
    bool pretty_;
    QmpSessionState state_;
    JsonStreamFramer framer_;
};

// {"timestamp": {"seconds": S, "microseconds": US}, "event": NAME[, "data": DATA]}; `data` is
// omitted when null. The timestamp is wall-clock time relative to the Unix epoch (qmp-spec.rst).
Json qmp_event(std::string_view name, const Json& data, int64_t seconds, int64_t microseconds);

} // namespace hvm
