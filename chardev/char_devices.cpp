#include "chardev/char_devices.hpp"

#include "base/error.hpp"
#include "chardev/file_backend.hpp"
#include "chardev/pty_backend.hpp"
#include "chardev/socket_backend.hpp"
#include "chardev/stdio_backend.hpp"

namespace hvm {

std::unique_ptr<CharBackend> open_char_backend(const CharSpec& spec, CharContext& context,
                                               const std::string& label) {
    switch (spec.kind) {
    case CharBackendKind::Null: return std::make_unique<NullCharBackend>();
    case CharBackendKind::Stdio: return std::make_unique<StdioCharBackend>(context, spec.signal);
    case CharBackendKind::File: return std::make_unique<FileCharBackend>(spec.path, spec.append);
    case CharBackendKind::Pty: return std::make_unique<PtyCharBackend>(context.device_lock, label);
    case CharBackendKind::UnixSocket:
    case CharBackendKind::TcpSocket:
        return std::make_unique<SocketCharBackend>(context.device_lock, spec);
    }
    fail("character device: unknown backend kind");
}

CharBackend& CharDevices::add_chardev(std::string_view option_text) {
    CharSpec spec = parse_chardev_spec(option_text);
    if (find(spec.id)) fail("-chardev: duplicate id '" + spec.id + "'");
    auto backend = open_char_backend(spec, context_, spec.id);
    CharBackend& ref = *backend;
    named_.emplace_back(spec.id, std::move(backend));
    return ref;
}

CharBackend* CharDevices::open_target(std::string_view value, const char* option,
                                      const std::string& label) {
    SerialTarget t = parse_serial_spec(value, option);
    switch (t.kind) {
    case SerialTarget::Kind::None: return nullptr;
    case SerialTarget::Kind::Chardev: {
        CharBackend* b = find(t.chardev_id);
        if (!b) fail(std::string(option) + ": no -chardev with id '" + t.chardev_id + "'");
        return b;
    }
    case SerialTarget::Kind::Backend: break;
    }
    inline_.push_back(open_char_backend(t.backend, context_, label));
    return inline_.back().get();
}

CharBackend* CharDevices::find(std::string_view id) const {
    for (auto& [name, backend] : named_)
        if (name == id) return backend.get();
    return nullptr;
}

} // namespace hvm
