#include "qmp/qmp_session.hpp"

#include <array>
#include <limits>
#include <sstream>

namespace hvm {

namespace {

constexpr std::array<std::string_view, 1> kQmpCapabilities = {"oob"};
constexpr std::array<std::string_view, 2> kImageFormats = {"ppm", "png"};
constexpr std::array<std::string_view, 2> kKeyValueKinds = {"number", "qcode"};
constexpr std::array<std::string_view, 4> kInputEventKinds = {"key", "btn", "rel", "abs"};
constexpr std::array<std::string_view, 7> kInputButtons = {
    "left", "middle", "right", "wheel-up", "wheel-down", "side", "extra"};
constexpr std::array<std::string_view, 2> kInputAxes = {"x", "y"};

void check_no_nul(const std::string& s, const std::string& name) {
    if (s.find('\0') != std::string::npos)
        qmp_throw("Parameter '" + name + "' expects a string without NUL characters");
}

// qapi/ui.json KeyValue: {"type": "number", "data": int} | {"type": "qcode", "data": QKeyCode}.
QmpKey parse_key_value(const Json& v, const std::string& path) {
    QmpArgs a = QmpArgs::nested(v, path);
    QmpKey key;
    size_t kind = a.enumeration("type", kKeyValueKinds);
    if (kind == 0) {
        key.kind = QmpKey::Kind::Number;
        key.number = a.integer("data");
    } else {
        key.kind = QmpKey::Kind::QCode;
        size_t i = a.enumeration("data", qkeycode_names());
        key.qcode = qkeycode_names()[i];
        // ui/input.c: 'sysrq' is a synonym of 'print' and is rewritten to it.
        if (key.qcode == "sysrq") key.qcode = qkeycode_names()[*qkeycode_index("print")];
    }
    a.finish();
    return key;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Dispatcher

QmpDispatcher::QmpDispatcher(QmpTarget& target, std::mutex* device_lock)
    : target_(target), device_lock_(device_lock) {
    add("qmp_capabilities",
        [this](QmpArgs& a, QmpSessionState& s) { return qmp_capabilities(a, s); });
    add("query-status", [this](QmpArgs& a, QmpSessionState&) { return query_status(a); });
    add("query-version", [](QmpArgs& a, QmpSessionState&) {
        a.finish();
        return version_json();
    });
    add("query-commands", [this](QmpArgs& a, QmpSessionState&) { return query_commands(a); });
    add("stop", [this](QmpArgs& a, QmpSessionState&) { return simple(a, &QmpTarget::stop); });
    add("cont", [this](QmpArgs& a, QmpSessionState&) { return simple(a, &QmpTarget::cont); });
    add("system_reset",
        [this](QmpArgs& a, QmpSessionState&) { return simple(a, &QmpTarget::system_reset); });
    add("system_powerdown",
        [this](QmpArgs& a, QmpSessionState&) { return simple(a, &QmpTarget::system_powerdown); });
    add("quit", [this](QmpArgs& a, QmpSessionState&) { return simple(a, &QmpTarget::quit); });
    add("screendump", [this](QmpArgs& a, QmpSessionState&) { return screendump(a); });
    add("send-key", [this](QmpArgs& a, QmpSessionState&) { return send_key(a); });
    add("input-send-event", [this](QmpArgs& a, QmpSessionState&) { return input_send_event(a); });
    add("human-monitor-command",
        [this](QmpArgs& a, QmpSessionState&) { return human_monitor_command(a); });
}

void QmpDispatcher::add(std::string name, Handler handler) {
    commands_.push_back(Command{std::move(name), std::move(handler), false});
}

bool QmpDispatcher::has_command(std::string_view name) const {
    for (const auto& c : commands_)
        if (c.name == name) return true;
    return false;
}

std::vector<std::string> QmpDispatcher::command_names() const {
    std::vector<std::string> names;
    for (const auto& c : commands_) names.push_back(c.name);
    return names;
}

Json QmpDispatcher::version_json() {
    return Json::object(
        {{"qemu", Json::object({{"micro", kMicro}, {"minor", kMinor}, {"major", kMajor}})},
         {"package", kPackage}});
}

std::unique_lock<std::mutex> QmpDispatcher::lock_device() {
    if (!device_lock_) return {};
    return std::unique_lock<std::mutex>(*device_lock_);
}

void QmpDispatcher::check_outcome(const QmpOutcome& outcome) {
    if (outcome) throw QmpException(*outcome);
}

Json QmpDispatcher::run(const std::string& command, const Json& arguments, QmpSessionState& state,
                        bool out_of_band) {
    const Command* cmd = nullptr;
    for (const auto& c : commands_)
        if (c.name == command) cmd = &c;
    // In negotiation mode only qmp_capabilities exists (monitor/qmp.c
    // qmp_cap_negotiation_commands).
    if (!cmd || (!state.command_mode && command != "qmp_capabilities"))
        qmp_throw("The command " + command + " has not been found", "CommandNotFound");
    if (out_of_band && !cmd->allow_oob)
        qmp_throw("The command " + command + " does not support OOB");
    QmpArgs args(arguments);
    return cmd->handler(args, state);
}

Json QmpDispatcher::qmp_capabilities(QmpArgs& args, QmpSessionState& state) {
    bool oob = false;
    if (auto enable = args.opt_list("enable")) {
        const auto& list = enable->get();
        for (size_t i = 0; i < list.size(); ++i) {
            QmpArgs::element_enumeration(list[i], "enable[" + std::to_string(i) + "]",
                                         kQmpCapabilities);
            oob = true; // "oob" is the only capability, and hvm offers it
        }
    }
    args.finish();
    if (state.command_mode)
        qmp_throw("Capabilities negotiation is already complete, command ignored",
                  "CommandNotFound");
    state.command_mode = true;
    state.oob = oob;
    return Json::object();
}

Json QmpDispatcher::query_status(QmpArgs& args) {
    args.finish();
    QmpStatus st;
    {
        auto lock = lock_device();
        st = target_.query_status();
    }
    // "singlestep" is part of StatusInfo in 7.2 (deprecated, always false without gdbstub).
    return Json::object({{"running", st.running},
                         {"singlestep", false},
                         {"status", std::string(run_state_name(st.status))}});
}

Json QmpDispatcher::query_commands(QmpArgs& args) {
    args.finish();
    Json list = Json::array();
    for (const auto& c : commands_) list.push(Json::object({{"name", c.name}}));
    return list;
}

Json QmpDispatcher::simple(QmpArgs& args, QmpOutcome (QmpTarget::*op)()) {
    args.finish();
    auto lock = lock_device();
    check_outcome((target_.*op)());
    return Json::object();
}

Json QmpDispatcher::screendump(QmpArgs& args) {
    std::string filename = args.string("filename");
    std::optional<std::string> device = args.opt_string("device");
    std::optional<int64_t> head = args.opt_integer("head");
    std::optional<size_t> format = args.opt_enumeration("format", kImageFormats);
    args.finish();
    check_no_nul(filename, "filename");
    if (device) check_no_nul(*device, "device");
    // ui/console.c qmp_screendump.
    if (head && !device) qmp_throw("'head' must be specified together with 'device'");
    auto fmt = format.value_or(0) == 1 ? ImageFormat::Png : ImageFormat::Ppm;
    auto lock = lock_device();
    check_outcome(target_.screendump(filename, device, head.value_or(0), fmt));
    return Json::object();
}

Json QmpDispatcher::send_key(QmpArgs& args) {
    const Json::Array& list = args.list("keys");
    std::vector<QmpKey> keys;
    for (size_t i = 0; i < list.size(); ++i)
        keys.push_back(parse_key_value(list[i], "keys[" + std::to_string(i) + "]"));
    std::optional<int64_t> hold = args.opt_integer("hold-time");
    args.finish();
    // QEMU truncates hold-time to the uint32 delay of qemu_input_event_send_key_delay(); hvm
    // refuses values that would not survive that instead of waiting ~49 days.
    if (hold && (*hold < 0 || *hold > std::numeric_limits<uint32_t>::max()))
        qmp_throw("Parameter 'hold-time' expects a value between 0 and 4294967295");
    uint32_t hold_ms = hold && *hold > 0 ? static_cast<uint32_t>(*hold) : kDefaultKeyDelayMs;
    auto lock = lock_device();
    check_outcome(target_.send_key(keys, hold_ms));
    return Json::object();
}

Json QmpDispatcher::input_send_event(QmpArgs& args) {
    std::optional<std::string> device = args.opt_string("device");
    std::optional<int64_t> head = args.opt_integer("head");
    const Json::Array& list = args.list("events");
    std::vector<QmpInputEvent> events;
    for (size_t i = 0; i < list.size(); ++i) {
        std::string path = "events[" + std::to_string(i) + "]";
        QmpArgs e = QmpArgs::nested(list[i], path);
        QmpInputEvent ev;
        ev.kind = static_cast<QmpInputEvent::Kind>(e.enumeration("type", kInputEventKinds));
        QmpArgs d = e.object("data");
        switch (ev.kind) {
        case QmpInputEvent::Kind::Key:
            ev.key = parse_key_value(d.any("key"), d.full_name("key"));
            ev.down = d.boolean("down");
            break;
        case QmpInputEvent::Kind::Btn:
            ev.button = static_cast<InputButton>(d.enumeration("button", kInputButtons));
            ev.down = d.boolean("down");
            break;
        case QmpInputEvent::Kind::Rel:
        case QmpInputEvent::Kind::Abs:
            ev.axis = static_cast<InputAxis>(d.enumeration("axis", kInputAxes));
            ev.value = d.integer("value");
            break;
        }
        d.finish();
        e.finish();
        events.push_back(ev);
    }
    args.finish();
    if (device) check_no_nul(*device, "device");
    auto lock = lock_device();
    // ui/input.c qmp_input_send_event refuses input while the VM is stopped.
    QmpStatus st = target_.query_status();
    if (!st.running && st.status != RunState::Suspended) qmp_throw(kQmpVmNotRunning);
    check_outcome(target_.input_send_event(device, head.value_or(0), events));
    return Json::object();
}

Json QmpDispatcher::human_monitor_command(QmpArgs& args) {
    std::string line = args.string("command-line");
    std::optional<int64_t> cpu = args.opt_integer("cpu-index");
    args.finish();
    if (cpu) {
        uint32_t n;
        {
            auto lock = lock_device();
            n = target_.cpu_count();
        }
        if (*cpu < 0 || *cpu >= static_cast<int64_t>(n))
            qmp_throw("Parameter 'cpu-index' expects a CPU number");
    }
    return Json(hmp(line));
}

// A tiny HMP: the commands below, with QEMU's output text. HMP output lines end in CRLF, as
// QEMU's monitor writes them.
std::string QmpDispatcher::hmp(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    if (words.empty()) return "";
    const std::string& cmd = words[0];
    auto error_text = [](const QmpOutcome& o) {
        return o ? "Error: " + o->desc + "\r\n" : std::string();
    };
    if (cmd == "info" && words.size() == 2 && words[1] == "status") {
        QmpStatus st;
        {
            auto lock = lock_device();
            st = target_.query_status();
        }
        // monitor/hmp-cmds.c hmp_info_status.
        std::string s = std::string("VM status: ") + (st.running ? "running" : "paused");
        if (!st.running && st.status != RunState::Paused)
            s += " (" + std::string(run_state_name(st.status)) + ")";
        return s + "\r\n";
    }
    if (cmd == "info" && words.size() == 2 && words[1] == "version") {
        // hmp_info_version: major.minor.micro immediately followed by the package string.
        return std::to_string(kMajor) + "." + std::to_string(kMinor) + "." +
               std::to_string(kMicro) + kPackage + "\r\n";
    }
    if (cmd == "info" && words.size() == 1) {
        return "info status  -- show the current VM status (running|paused)\r\n"
               "info version  -- show the version of QEMU\r\n";
    }
    if (words.size() == 1) {
        QmpOutcome (QmpTarget::*op)() = nullptr;
        if (cmd == "stop") op = &QmpTarget::stop;
        if (cmd == "cont" || cmd == "c") op = &QmpTarget::cont;
        if (cmd == "system_reset") op = &QmpTarget::system_reset;
        if (cmd == "system_powerdown") op = &QmpTarget::system_powerdown;
        if (cmd == "quit" || cmd == "q") op = &QmpTarget::quit;
        if (op) {
            auto lock = lock_device();
            return error_text((target_.*op)());
        }
    }
    // monitor/hmp.c monitor_parse_command names the whole command as typed.
    std::string typed = cmd == "info" && words.size() >= 2 ? "info " + words[1] : cmd;
    return "unknown command: '" + typed + "'\r\n";
}

// ---------------------------------------------------------------------------------------------
// Session

QmpSession::QmpSession(QmpDispatcher& dispatcher, bool pretty)
    : dispatcher_(dispatcher), pretty_(pretty) {}

std::string QmpSession::format(const Json& value) const {
    std::string text = value.dump(pretty_);
    std::string out;
    out.reserve(text.size() + 8);
    for (char c : text) {
        if (c == '\n') out += '\r';
        out += c;
    }
    out += "\r\n";
    return out;
}

std::string QmpSession::greeting() const {
    return format(Json::object({{"QMP", Json::object({{"version", QmpDispatcher::version_json()},
                                                      {"capabilities", Json::array({"oob"})}})}}));
}

void QmpSession::feed(std::string_view bytes, const std::function<void(std::string)>& send) {
    std::vector<JsonStreamFramer::Message> messages;
    framer_.feed(bytes, messages);
    for (const auto& m : messages) send(handle(m));
}

std::string QmpSession::handle(const JsonStreamFramer::Message& message) {
    if (!message.ok) {
        // A parse error never carries "id": it was not read (qmp-spec.rst, "Error").
        return format(Json::object(
            {{"error", Json::object({{"class", "GenericError"}, {"desc", message.error}})}}));
    }
    return format(dispatch(message.value));
}

Json QmpSession::dispatch(const Json& request) {
    const Json* id = request.find("id");
    Json response = Json::object();
    try {
        // qapi/qmp-dispatch.c qmp_dispatch_check_obj.
        if (!request.is_object()) qmp_throw("QMP input must be a JSON object");
        const char* exec_key = nullptr;
        for (const auto& [key, value] : request.as_object()) {
            if (key == "execute" || (key == "exec-oob" && state_.oob)) {
                if (!value.is_string())
                    qmp_throw("QMP input member '" + key + "' must be a string");
                if (exec_key)
                    qmp_throw("QMP input member '" + key + "' clashes with '" + exec_key + "'");
                exec_key = key == "execute" ? "execute" : "exec-oob";
            } else if (key == "arguments") {
                if (!value.is_object()) qmp_throw("QMP input member 'arguments' must be an object");
            } else if (key != "id") {
                qmp_throw("QMP input member '" + key + "' is unexpected");
            }
        }
        if (!exec_key) qmp_throw("QMP input lacks member 'execute'");
        const std::string& command = request.find(exec_key)->as_string();
        const Json* args = request.find("arguments");
        static const Json kNoArguments = Json::object();
        bool oob = std::string_view(exec_key) == "exec-oob";
        Json ret = dispatcher_.run(command, args ? *args : kNoArguments, state_, oob);
        response.set("return", std::move(ret));
    } catch (const QmpException& e) {
        std::string desc = e.error().desc;
        // monitor/qmp.c monitor_qmp_dispatch: a more useful message before negotiation.
        if (!state_.command_mode && e.error().error_class == "CommandNotFound")
            desc = "Expecting capabilities negotiation with 'qmp_capabilities'";
        response.set("error", Json::object({{"class", e.error().error_class}, {"desc", desc}}));
    }
    if (id) response.set("id", *id);
    return response;
}

Json qmp_event(std::string_view name, const Json& data, int64_t seconds, int64_t microseconds) {
    Json ev = Json::object(
        {{"timestamp", Json::object({{"seconds", seconds}, {"microseconds", microseconds}})},
         {"event", std::string(name)}});
    if (!data.is_null()) ev.set("data", data);
    return ev;
}

} // namespace hvm
