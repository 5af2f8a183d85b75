// Argument checking with the wording of QEMU's QObject input visitor
// (qapi/qobject-input-visitor.c), so clients see the same errors as from QEMU:
//   missing      "Parameter 'keys[0].type' is missing"
//   wrong type   "Invalid parameter type for 'hold-time', expected: integer"
//   bad enum     "Parameter 'format' does not accept value 'gif'" (QEMU names the member only,
//                and 'null' for a list element)
//   unknown      "Parameter 'bogus' is unexpected"
// Like QEMU's generated marshallers, a command reads its members in schema order and then calls
// finish(); every check happens before the command has any effect.
#pragma once
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qmp/json.hpp"
#include "qmp/qmp_target.hpp"

namespace hvm {

// Thrown by command code; the dispatcher turns it into the error answer.
class QmpException : public std::exception {
  public:
    explicit QmpException(QmpError e) : error_(std::move(e)) {}
    const QmpError& error() const { return error_; }
    const char* what() const noexcept override { return error_.desc.c_str(); }

  private:
    QmpError error_;
};

[[noreturn]] void qmp_throw(std::string desc, std::string error_class = "GenericError");

class QmpArgs {
  public:
    // `object` must be a JSON object; `path` is its full name for messages ("" at top level,
    // "keys[0]" for a list element).
    QmpArgs(const Json& object, std::string path = "");
    // Checks that `value` (named `path`) is an object and wraps it.
    static QmpArgs nested(const Json& value, std::string path);

    std::string string(std::string_view name);
    std::optional<std::string> opt_string(std::string_view name);
    int64_t integer(std::string_view name);
    std::optional<int64_t> opt_integer(std::string_view name);
    bool boolean(std::string_view name);
    // Index of the value in `names`.
    size_t enumeration(std::string_view name, std::span<const std::string_view> names);
    std::optional<size_t> opt_enumeration(std::string_view name,
                                          std::span<const std::string_view> names);
    const Json::Array& list(std::string_view name);
    std::optional<std::reference_wrapper<const Json::Array>> opt_list(std::string_view name);
    QmpArgs object(std::string_view name);
    // A required member of any type (checked by the caller, e.g. a union).
    const Json& any(std::string_view name);

    // "Parameter '<first unread member>' is unexpected".
    void finish();

    std::string full_name(std::string_view name) const;
    const std::string& path() const { return path_; }

    // Checks for list elements, which have no member name.
    static std::string element_string(const Json& v, const std::string& full_name);
    static size_t element_enumeration(const Json& v, const std::string& full_name,
                                      std::span<const std::string_view> names);

  private:
    const Json* take(std::string_view name, bool required);
    [[noreturn]] void type_error(std::string_view name, const char* expected) const;

    const Json::Object* members_;
    std::string path_;
    std::vector<bool> used_;
};

} // namespace hvm
