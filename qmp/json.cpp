#include "qmp/json.hpp"

#include <cassert>
#include <cctype>
#include <charconv>
#include <clocale>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <locale.h>
#include <unordered_set>

namespace hvm {

Json Json::object(std::initializer_list<std::pair<std::string, Json>> members) {
    Json j{Object{}};
    for (const auto& [k, v] : members) j.set(k, v);
    return j;
}

Json Json::array(std::initializer_list<Json> elements) {
    return Json{Array(elements)};
}

bool Json::as_bool() const {
    assert(is_bool());
    return std::get<bool>(v_);
}
int64_t Json::as_int() const {
    assert(is_int());
    return std::get<int64_t>(v_);
}
double Json::as_double() const {
    assert(is_number());
    return is_int() ? static_cast<double>(std::get<int64_t>(v_)) : std::get<double>(v_);
}
const std::string& Json::as_string() const {
    assert(is_string());
    return std::get<std::string>(v_);
}
const Json::Array& Json::as_array() const {
    assert(is_array());
    return std::get<Array>(v_);
}
Json::Array& Json::as_array() {
    assert(is_array());
    return std::get<Array>(v_);
}
const Json::Object& Json::as_object() const {
    assert(is_object());
    return std::get<Object>(v_);
}
Json::Object& Json::as_object() {
    assert(is_object());
    return std::get<Object>(v_);
}

const Json* Json::find(std::string_view key) const {
    if (!is_object()) return nullptr;
    for (const auto& [k, v] : std::get<Object>(v_))
        if (k == key) return &v;
    return nullptr;
}

void Json::set(std::string key, Json value) {
    auto& members = as_object();
    for (auto& [k, v] : members) {
        if (k == key) {
            v = std::move(value);
            return;
        }
    }
    members.emplace_back(std::move(key), std::move(value));
}

void Json::push(Json value) {
    as_array().push_back(std::move(value));
}

bool Json::operator==(const Json& other) const {
    if (type() != other.type()) return false;
    switch (type()) {
    case Type::Null: return true;
    case Type::Bool: return as_bool() == other.as_bool();
    case Type::Int: return as_int() == other.as_int();
    case Type::Double: return as_double() == other.as_double();
    case Type::String: return as_string() == other.as_string();
    case Type::Array: return as_array() == other.as_array();
    case Type::Object: {
        // Member order carries no meaning in JSON.
        const auto& a = as_object();
        const auto& b = other.as_object();
        if (a.size() != b.size()) return false;
        for (const auto& [k, v] : a) {
            const Json* w = other.find(k);
            if (!w || !(*w == v)) return false;
        }
        return true;
    }
    }
    return false;
}

// ---------------------------------------------------------------------------------------------
// UTF-8

namespace {

// Decodes one UTF-8 sequence at s[i]; returns the code point and advances i, or -1 if the
// sequence is malformed (truncated, overlong, surrogate, above U+10FFFF).
int32_t decode_utf8(std::string_view s, size_t& i) {
    auto b0 = static_cast<uint8_t>(s[i]);
    if (b0 < 0x80) {
        ++i;
        return b0;
    }
    size_t len;
    uint32_t cp, min;
    if ((b0 & 0xE0) == 0xC0) {
        len = 2, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (s.size() - i < len) return -1;
    for (size_t k = 1; k < len; ++k) {
        auto b = static_cast<uint8_t>(s[i + k]);
        if ((b & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    i += len;
    return static_cast<int32_t>(cp);
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

} // namespace

bool json_valid_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();)
        if (decode_utf8(s, i) < 0) return false;
    return true;
}

// ---------------------------------------------------------------------------------------------
// Parser

namespace {

[[noreturn]] void parse_error(const std::string& what) {
    throw JsonError("JSON parse error, " + what);
}

// Printable rendering of a few offending bytes for messages (the writer escapes the rest).
std::string excerpt(std::string_view s, size_t pos, size_t len) {
    return std::string(s.substr(pos, std::min<size_t>(len, 32)));
}

class Parser {
  public:
    explicit Parser(std::string_view text) : s_(text) {}

    Json document() {
        skip_ws();
        Json v = value(0);
        skip_ws();
        if (pos_ != s_.size()) parse_error("unexpected '" + excerpt(s_, pos_, 1) + "' after value");
        return v;
    }

  private:
    void skip_ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }
    bool at_end() const { return pos_ >= s_.size(); }
    char peek() const { return s_[pos_]; }

    Json value(size_t depth) {
        if (at_end()) parse_error("premature EOI");
        char c = peek();
        switch (c) {
        case '{': return object(depth + 1);
        case '[': return array(depth + 1);
        case '"': return Json(string());
        case '}':
        case ']':
        case ',':
        case ':': parse_error("expecting value");
        default: break;
        }
        if (c == '-' || (c >= '0' && c <= '9')) return number();
        if (c >= 'a' && c <= 'z') return keyword();
        parse_error("stray '" + excerpt(s_, pos_, 1) + "'");
    }

    static void check_depth(size_t depth) {
        if (depth > Json::kMaxDepth) throw JsonError("JSON nesting depth limit exceeded");
    }

    Json object(size_t depth) {
        check_depth(depth);
        ++pos_; // '{'
        Json::Object members;
        // Duplicate keys make a request ambiguous (qmp-spec.rst: "unpredictable results"), so
        // they are rejected; a hash set keeps a hostile 1 MiB object linear.
        std::unordered_set<std::string> seen;
        skip_ws();
        if (at_end()) parse_error("premature EOI");
        if (peek() == '}') {
            ++pos_;
            return Json(std::move(members));
        }
        for (;;) {
            skip_ws();
            if (at_end()) parse_error("premature EOI");
            if (peek() != '"') {
                // QEMU parses the key as a value first: a structural character is "expecting
                // value", any other value is not a string.
                char c = peek();
                if (c == '}' || c == ']' || c == ',' || c == ':') parse_error("expecting value");
                value(depth);
                parse_error("key is not a string in object");
            }
            std::string key = string();
            skip_ws();
            if (at_end()) parse_error("premature EOI");
            if (peek() != ':') parse_error("missing : in object pair");
            ++pos_;
            skip_ws();
            Json v = value(depth);
            if (!seen.insert(key).second) parse_error("duplicate key '" + key + "' in object");
            members.emplace_back(std::move(key), std::move(v));
            skip_ws();
            if (at_end()) parse_error("premature EOI");
            if (peek() == '}') {
                ++pos_;
                return Json(std::move(members));
            }
            if (peek() != ',') parse_error("expected separator in dict");
            ++pos_;
        }
    }

    Json array(size_t depth) {
        check_depth(depth);
        ++pos_; // '['
        Json::Array elements;
        skip_ws();
        if (at_end()) parse_error("premature EOI");
        if (peek() == ']') {
            ++pos_;
            return Json(std::move(elements));
        }
        for (;;) {
            skip_ws();
            elements.push_back(value(depth));
            skip_ws();
            if (at_end()) parse_error("premature EOI");
            if (peek() == ']') {
                ++pos_;
                return Json(std::move(elements));
            }
            if (peek() != ',') parse_error("expected separator in list");
            ++pos_;
        }
    }

    Json keyword() {
        size_t start = pos_;
        while (!at_end() && peek() >= 'a' && peek() <= 'z') ++pos_;
        std::string_view word = s_.substr(start, pos_ - start);
        if (word == "true") return Json(true);
        if (word == "false") return Json(false);
        if (word == "null") return Json(nullptr);
        parse_error("invalid keyword '" + excerpt(s_, start, pos_ - start) + "'");
    }

    // RFC 8259 section 6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    Json number() {
        size_t start = pos_;
        auto digits = [&] {
            size_t n = 0;
            while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_, ++n;
            return n;
        };
        auto bad = [&] {
            while (!at_end() && (std::isalnum(static_cast<unsigned char>(peek())) ||
                                 peek() == '.' || peek() == '+' || peek() == '-'))
                ++pos_;
            parse_error("invalid number '" + excerpt(s_, start, pos_ - start) + "'");
        };
        bool is_float = false;
        if (peek() == '-') ++pos_;
        if (at_end()) bad();
        if (peek() == '0') {
            ++pos_;
            if (!at_end() && peek() >= '0' && peek() <= '9') bad(); // leading zero
        } else if (digits() == 0) {
            bad();
        }
        if (!at_end() && peek() == '.') {
            ++pos_;
            is_float = true;
            if (digits() == 0) bad();
        }
        if (!at_end() && (peek() == 'e' || peek() == 'E')) {
            ++pos_;
            is_float = true;
            if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
            if (digits() == 0) bad();
        }
        if (!at_end() && (std::isalpha(static_cast<unsigned char>(peek())) || peek() == '.')) bad();
        std::string_view text = s_.substr(start, pos_ - start);
        if (!is_float) {
            int64_t i = 0;
            auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), i);
            if (ec == std::errc() && p == text.data() + text.size()) return Json(i);
            // Beyond int64: QEMU falls back to a double as well (qobject/json-parser.c).
        }
        double d = 0;
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
        if (ec == std::errc::result_out_of_range) {
            // from_chars reports both overflow and underflow; strtod in the C locale tells
            // them apart (underflow to zero is fine, infinity is not JSON).
            static locale_t c_locale = newlocale(LC_ALL_MASK, "C", nullptr);
            std::string copy(text);
            d = strtod_l(copy.c_str(), nullptr, c_locale);
            if (std::isinf(d))
                parse_error("number '" + excerpt(s_, start, text.size()) + "' out of range");
        } else if (ec != std::errc() || p != text.data() + text.size()) {
            bad();
        }
        return Json(d);
    }

    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    // Four hex digits at pos_ (after "\u"); -1 if malformed.
    int32_t hex4() {
        if (s_.size() - pos_ < 4) return -1;
        int32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            int h = hex(s_[pos_ + k]);
            if (h < 0) return -1;
            v = (v << 4) | h;
        }
        pos_ += 4;
        return v;
    }

    std::string string() {
        ++pos_; // opening quote
        std::string out;
        for (;;) {
            if (at_end()) parse_error("premature EOI");
            auto c = static_cast<uint8_t>(peek());
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (c < 0x20) parse_error("control character in string");
            if (c != '\\') {
                size_t before = pos_;
                if (decode_utf8(s_, pos_) < 0) parse_error("invalid UTF-8 sequence in string");
                out.append(s_.substr(before, pos_ - before));
                continue;
            }
            size_t esc_start = pos_;
            ++pos_;
            if (at_end()) parse_error("premature EOI");
            char e = peek();
            ++pos_;
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                int32_t cp = hex4();
                if (cp < 0) parse_error("invalid hex escape sequence in string");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    // A leading surrogate must be followed by an escaped trailing one
                    // (RFC 8259 section 7).
                    int32_t trail = -1;
                    if (s_.size() - pos_ >= 2 && s_[pos_] == '\\' && s_[pos_ + 1] == 'u') {
                        pos_ += 2;
                        trail = hex4();
                        if (trail < 0) parse_error("invalid hex escape sequence in string");
                    }
                    if (trail < 0xDC00 || trail > 0xDFFF)
                        parse_error(excerpt(s_, esc_start, pos_ - esc_start) +
                                    " is not a valid Unicode character");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (trail - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    parse_error(excerpt(s_, esc_start, pos_ - esc_start) +
                                " is not a valid Unicode character");
                }
                append_utf8(out, static_cast<uint32_t>(cp));
                break;
            }
            default: parse_error("invalid escape sequence in string");
            }
        }
    }

    std::string_view s_;
    size_t pos_ = 0;
};

} // namespace

Json Json::parse(std::string_view text) {
    if (text.size() > kMaxDocumentBytes) throw JsonError("JSON token size limit exceeded");
    return Parser(text).document();
}

// ---------------------------------------------------------------------------------------------
// Writer

void json_quote(std::string& out, std::string_view s) {
    out += '"';
    for (size_t i = 0; i < s.size();) {
        int32_t cp = decode_utf8(s, i);
        if (cp < 0) {
            cp = 0xFFFD; // QEMU's replacement for malformed input
            ++i;
        }
        switch (cp) {
        case '"': out += "\\\""; continue;
        case '\\': out += "\\\\"; continue;
        case '\b': out += "\\b"; continue;
        case '\f': out += "\\f"; continue;
        case '\n': out += "\\n"; continue;
        case '\r': out += "\\r"; continue;
        case '\t': out += "\\t"; continue;
        default: break;
        }
        char buf[16];
        if (cp > 0xFFFF) {
            uint32_t v = static_cast<uint32_t>(cp) - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04X\\u%04X", 0xD800 + (v >> 10),
                          0xDC00 + (v & 0x3FF));
            out += buf;
        } else if (cp < 0x20 || cp >= 0x7F) {
            std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(cp));
            out += buf;
        } else {
            out += static_cast<char>(cp);
        }
    }
    out += '"';
}

namespace {

void newline(std::string& out, bool pretty, size_t level) {
    if (!pretty) return;
    out += '\n';
    out.append(level * 4, ' ');
}

void write(std::string& out, const Json& v, bool pretty, size_t level) {
    switch (v.type()) {
    case Json::Type::Null: out += "null"; return;
    case Json::Type::Bool: out += v.as_bool() ? "true" : "false"; return;
    case Json::Type::Int: out += std::to_string(v.as_int()); return;
    case Json::Type::Double: {
        double d = v.as_double();
        if (!std::isfinite(d)) {
            out += "null"; // not representable in JSON; never produced by the parser
            return;
        }
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", d); // QEMU's format
        out += buf;
        return;
    }
    case Json::Type::String: json_quote(out, v.as_string()); return;
    case Json::Type::Array: {
        out += '[';
        bool first = true;
        for (const auto& e : v.as_array()) {
            if (!first) out += pretty ? "," : ", ";
            first = false;
            newline(out, pretty, level + 1);
            write(out, e, pretty, level + 1);
        }
        newline(out, pretty, level);
        out += ']';
        return;
    }
    case Json::Type::Object: {
        out += '{';
        bool first = true;
        for (const auto& [k, e] : v.as_object()) {
            if (!first) out += pretty ? "," : ", ";
            first = false;
            newline(out, pretty, level + 1);
            json_quote(out, k);
            out += ": ";
            write(out, e, pretty, level + 1);
        }
        // QEMU's pretty writer closes even an empty container on its own line.
        newline(out, pretty, level);
        out += '}';
        return;
    }
    }
}

} // namespace

std::string Json::dump(bool pretty) const {
    std::string out;
    write(out, *this, pretty, 0);
    return out;
}

} // namespace hvm
