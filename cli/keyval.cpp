#include "cli/keyval.hpp"

#include <cerrno>
#include <cstdlib>

#include "base/error.hpp"

namespace hvm {

std::optional<uint64_t> parse_number(std::string_view text) {
    if (text.empty() || text.size() > 40) return std::nullopt;
    std::string s(text);
    int base = 10;
    const char* p = s.c_str();
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        p += 2;
    }
    if (*p == '\0' || *p == '-' || *p == '+' || *p == ' ') return std::nullopt;
    char* end = nullptr;
    errno = 0;
    unsigned long long v = strtoull(p, &end, base);
    if (errno != 0 || *end != '\0') return std::nullopt;
    return v;
}

uint64_t parse_size(std::string_view text, const char* option, uint64_t default_unit) {
    if (text.empty()) fail(std::string(option) + ": missing size");
    uint64_t unit = default_unit;
    std::string_view digits = text;
    switch (text.back()) {
    case 'k':
    case 'K':
        unit = 1ull << 10;
        digits.remove_suffix(1);
        break;
    case 'm':
    case 'M':
        unit = 1ull << 20;
        digits.remove_suffix(1);
        break;
    case 'g':
    case 'G':
        unit = 1ull << 30;
        digits.remove_suffix(1);
        break;
    case 't':
    case 'T':
        unit = 1ull << 40;
        digits.remove_suffix(1);
        break;
    case 'b':
    case 'B':
        unit = 1;
        digits.remove_suffix(1);
        break;
    default: break;
    }
    auto n = parse_number(digits);
    if (!n) fail(std::string(option) + ": invalid size '" + std::string(text) + "'");
    if (*n != 0 && unit > UINT64_MAX / *n)
        fail(std::string(option) + ": size '" + std::string(text) + "' is too large");
    return *n * unit;
}

KeyVal KeyVal::parse(std::string_view text, const char* option, const char* implied_key) {
    KeyVal kv;
    kv.option_ = option;
    std::vector<std::string> parts;
    std::string cur;
    for (size_t i = 0; i < text.size(); i++) {
        if (text[i] == ',') {
            if (i + 1 < text.size() && text[i + 1] == ',') {
                cur += ',';
                i++;
                continue;
            }
            parts.push_back(cur);
            cur.clear();
        } else {
            cur += text[i];
        }
    }
    parts.push_back(cur);
    for (size_t i = 0; i < parts.size(); i++) {
        const std::string& p = parts[i];
        auto eq = p.find('=');
        if (eq == std::string::npos) {
            if (i == 0 && implied_key) {
                if (p.empty()) fail(std::string(option) + ": missing value");
                kv.items_.emplace_back(implied_key, p);
                continue;
            }
            if (p.empty() && i + 1 == parts.size() && i > 0) continue; // trailing comma
            fail(std::string(option) + ": expected key=value, got '" + p + "'");
        }
        if (eq == 0) fail(std::string(option) + ": empty key in '" + p + "'");
        kv.items_.emplace_back(p.substr(0, eq), p.substr(eq + 1));
    }
    return kv;
}

bool KeyVal::has(std::string_view key) const {
    return get(key).has_value();
}

std::optional<std::string> KeyVal::get(std::string_view key) const {
    // The last occurrence wins, as in QEMU.
    for (auto it = items_.rbegin(); it != items_.rend(); ++it)
        if (it->first == key) return it->second;
    return std::nullopt;
}

std::string KeyVal::get_or(std::string_view key, std::string def) const {
    auto v = get(key);
    return v ? *v : def;
}

std::optional<bool> KeyVal::get_bool(std::string_view key) const {
    auto v = get(key);
    if (!v) return std::nullopt;
    if (*v == "on" || *v == "yes" || *v == "true") return true;
    if (*v == "off" || *v == "no" || *v == "false") return false;
    fail(std::string(option_) + ": " + std::string(key) + "='" + *v + "' is not on or off");
}

std::optional<uint64_t> KeyVal::get_uint(std::string_view key) const {
    auto v = get(key);
    if (!v) return std::nullopt;
    auto n = parse_number(*v);
    if (!n) fail(std::string(option_) + ": " + std::string(key) + "='" + *v + "' is not a number");
    return n;
}

void KeyVal::expect_only(std::initializer_list<std::string_view> known) const {
    for (auto& [k, v] : items_) {
        bool ok = false;
        for (auto n : known) ok = ok || k == n;
        if (!ok) fail(std::string(option_) + ": unsupported parameter '" + k + "'");
    }
}

} // namespace hvm
