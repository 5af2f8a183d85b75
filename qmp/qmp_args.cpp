#include "qmp/qmp_args.hpp"

namespace hvm {

void qmp_throw(std::string desc, std::string error_class) {
    throw QmpException(QmpError{std::move(error_class), std::move(desc)});
}

QmpError qmp_unsupported(const std::string& what) {
    return qmp_generic_error(what + " is not supported by hvm yet");
}

QmpArgs::QmpArgs(const Json& object, std::string path)
    : members_(&object.as_object()), path_(std::move(path)), used_(members_->size(), false) {}

QmpArgs QmpArgs::nested(const Json& value, std::string path) {
    if (!value.is_object())
        qmp_throw("Invalid parameter type for '" + path + "', expected: object");
    return QmpArgs(value, std::move(path));
}

std::string QmpArgs::full_name(std::string_view name) const {
    if (path_.empty()) return std::string(name);
    return path_ + "." + std::string(name);
}

void QmpArgs::type_error(std::string_view name, const char* expected) const {
    qmp_throw("Invalid parameter type for '" + full_name(name) + "', expected: " + expected);
}

const Json* QmpArgs::take(std::string_view name, bool required) {
    for (size_t i = 0; i < members_->size(); ++i) {
        if ((*members_)[i].first == name) {
            used_[i] = true;
            return &(*members_)[i].second;
        }
    }
    if (required) qmp_throw("Parameter '" + full_name(name) + "' is missing");
    return nullptr;
}

std::optional<std::string> QmpArgs::opt_string(std::string_view name) {
    const Json* v = take(name, false);
    if (!v) return std::nullopt;
    if (!v->is_string()) type_error(name, "string");
    return v->as_string();
}

std::string QmpArgs::string(std::string_view name) {
    take(name, true);
    return *opt_string(name);
}

std::optional<int64_t> QmpArgs::opt_integer(std::string_view name) {
    const Json* v = take(name, false);
    if (!v) return std::nullopt;
    if (!v->is_int()) type_error(name, "integer");
    return v->as_int();
}

int64_t QmpArgs::integer(std::string_view name) {
    take(name, true);
    return *opt_integer(name);
}

bool QmpArgs::boolean(std::string_view name) {
    const Json* v = take(name, true);
    if (!v->is_bool()) type_error(name, "boolean");
    return v->as_bool();
}

std::optional<size_t> QmpArgs::opt_enumeration(std::string_view name,
                                               std::span<const std::string_view> names) {
    std::optional<std::string> s = opt_string(name);
    if (!s) return std::nullopt;
    for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == *s) return i;
    qmp_throw("Parameter '" + std::string(name) + "' does not accept value '" + *s + "'");
}

size_t QmpArgs::enumeration(std::string_view name, std::span<const std::string_view> names) {
    take(name, true);
    return *opt_enumeration(name, names);
}

std::optional<std::reference_wrapper<const Json::Array>> QmpArgs::opt_list(std::string_view name) {
    const Json* v = take(name, false);
    if (!v) return std::nullopt;
    if (!v->is_array()) type_error(name, "array");
    return std::cref(v->as_array());
}

const Json::Array& QmpArgs::list(std::string_view name) {
    take(name, true);
    return opt_list(name)->get();
}

QmpArgs QmpArgs::object(std::string_view name) {
    const Json* v = take(name, true);
    return nested(*v, full_name(name));
}

const Json& QmpArgs::any(std::string_view name) {
    return *take(name, true);
}

void QmpArgs::finish() {
    for (size_t i = 0; i < members_->size(); ++i)
        if (!used_[i])
            qmp_throw("Parameter '" + full_name((*members_)[i].first) + "' is unexpected");
}

std::string QmpArgs::element_string(const Json& v, const std::string& full_name) {
    if (!v.is_string())
        qmp_throw("Invalid parameter type for '" + full_name + "', expected: string");
    return v.as_string();
}

size_t QmpArgs::element_enumeration(const Json& v, const std::string& full_name,
                                    std::span<const std::string_view> names) {
    std::string s = element_string(v, full_name);
    for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == s) return i;
    qmp_throw("Parameter 'null' does not accept value '" + s + "'");
}

} // namespace hvm
