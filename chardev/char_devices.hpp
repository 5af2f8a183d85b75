// Opening backends from specs, and the machine's set of them. Usage:
//   CharDevices chardevs({device_lock, [&] { platform.request_exit(0); }});
//   for (auto& c : config.chardevs) chardevs.add_chardev(c);          // all -chardev first
//   CharBackend* com1 = chardevs.open_target(config.serial[0], "-serial", "serial0");
//   // nullptr = "none": no UART at all
// Destroy the CharDevices after every device that uses its backends (declare it first), and
// without holding the device-model lock (backend threads are joined).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chardev/char_backend.hpp"
#include "chardev/char_spec.hpp"

namespace hvm {

// Opens the backend `spec` describes. `label` names it where QEMU would print a label (pty).
// Throws UserError on any host error (file not writable, socket refused, ...).
std::unique_ptr<CharBackend> open_char_backend(const CharSpec& spec, CharContext& context,
                                               const std::string& label);

class CharDevices {
  public:
    explicit CharDevices(CharContext context) : context_(std::move(context)) {}
    CharDevices(const CharDevices&) = delete;
    CharDevices& operator=(const CharDevices&) = delete;

    // Parses and opens one -chardev option; a repeated id is a UserError.
    CharBackend& add_chardev(std::string_view option_text);
    // A -serial/-debugcon value: nullptr for "none", the named backend for chardev:ID (unknown id
    // is a UserError), otherwise a new inline backend owned here.
    CharBackend* open_target(std::string_view value, const char* option, const std::string& label);
    // The backend of -chardev id=`id` (for -device ...,chardev=ID), or nullptr.
    CharBackend* find(std::string_view id) const;

  private:
    CharContext context_;
    std::vector<std::pair<std::string, std::unique_ptr<CharBackend>>> named_;
    std::vector<std::unique_ptr<CharBackend>> inline_;
};

} // namespace hvm
