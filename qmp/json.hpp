// A small, strict JSON (RFC 8259) value, parser and writer for QMP.
//
// The parser takes one complete document (the QMP stream framer in json_stream.hpp cuts the byte
// stream into documents) and is strict: UTF-8 only, no comments, no trailing commas, no leading
// zeros, no NaN/Infinity, no duplicate object keys, \u surrogate pairs must pair up. A client is
// untrusted, so input is bounded: at most kMaxDepth nested arrays/objects (the recursion depth of
// the parser) and kMaxDocumentBytes bytes; anything else is a JsonError, never a crash.
// Error messages are QEMU's ("JSON parse error, expecting value", qobject/json-parser.c), because
// QMP clients show them to users and tests compare them.
//
// The writer produces QEMU's two output styles (qobject/json-writer.c): compact with ", " and ": "
// separators, and "pretty" with four-space indentation. Output is pure ASCII (qmp-spec.rst: "sends
// its output encoded in ASCII"): other characters are \uXXXX escapes (uppercase hex, surrogate
// pairs beyond the BMP) and invalid UTF-8 in a string becomes U+FFFD.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace hvm {

class JsonError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class Json {
  public:
    static constexpr size_t kMaxDepth = 64;
    static constexpr size_t kMaxDocumentBytes = size_t{1} << 20;

    enum class Type { Null, Bool, Int, Double, String, Array, Object };
    struct Null {};
    using Array = std::vector<Json>;
    // Members keep their order (the order QEMU builds them in, for readable output); keys are
    // unique (the parser rejects duplicates, set() replaces).
    using Object = std::vector<std::pair<std::string, Json>>;

    Json() : v_(Null{}) {}
    Json(std::nullptr_t) : v_(Null{}) {}
    Json(bool b) : v_(b) {}
    Json(int i) : v_(int64_t{i}) {}
    Json(unsigned i) : v_(int64_t{i}) {}
    Json(int64_t i) : v_(i) {}
    Json(double d) : v_(d) {}
    Json(const char* s) : v_(std::string(s)) {}
    Json(std::string s) : v_(std::move(s)) {}
    Json(std::string_view s) : v_(std::string(s)) {}
    Json(Array a) : v_(std::move(a)) {}
    Json(Object o) : v_(std::move(o)) {}

    static Json object(std::initializer_list<std::pair<std::string, Json>> members = {});
    static Json array(std::initializer_list<Json> elements = {});

    Type type() const { return static_cast<Type>(v_.index()); }
    bool is_null() const { return type() == Type::Null; }
    bool is_bool() const { return type() == Type::Bool; }
    bool is_int() const { return type() == Type::Int; }
    bool is_double() const { return type() == Type::Double; }
    bool is_number() const { return is_int() || is_double(); }
    bool is_string() const { return type() == Type::String; }
    bool is_array() const { return type() == Type::Array; }
    bool is_object() const { return type() == Type::Object; }

    // Accessors assert the type (callers check is_*() first; a wrong type is a bug in hvm).
    bool as_bool() const;
    int64_t as_int() const;
    double as_double() const; // also converts an Int
    const std::string& as_string() const;
    const Array& as_array() const;
    Array& as_array();
    const Object& as_object() const;
    Object& as_object();

    // Object helpers: find returns nullptr when absent (or when this is not an object).
    const Json* find(std::string_view key) const;
    void set(std::string key, Json value); // insert or replace
    // Array helper.
    void push(Json value);

    bool operator==(const Json& other) const;

    // Parses exactly one document (surrounding whitespace allowed). Throws JsonError with
    // QEMU's wording ("JSON parse error, ...") or a limit message.
    static Json parse(std::string_view text);

    // Compact: {"a": 1, "b": [true, null]}. Pretty: QEMU's -qmp-pretty layout.
    std::string dump(bool pretty = false) const;

  private:
    std::variant<Null, bool, int64_t, double, std::string, Array, Object> v_;
};

// Appends `s` as a JSON string literal (quotes included), ASCII only, QEMU's escapes.
void json_quote(std::string& out, std::string_view s);

// True if `s` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool json_valid_utf8(std::string_view s);

} // namespace hvm
