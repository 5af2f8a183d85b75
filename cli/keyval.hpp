// QEMU's option-value syntax: "value" or "key=value,key=value", where the first element may be
// an implied key (`-m 512`, `-smp 2,cores=2`, `-machine pc,kernel-irqchip=off`) and ",," is a
// literal comma.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hvm {

class KeyVal {
  public:
    // `implied_key` names the first element when it has no '='. Throws UserError on syntax
    // errors, naming `option` ("-smp") in the message.
    static KeyVal parse(std::string_view text, const char* option, const char* implied_key);

    bool has(std::string_view key) const;
    std::optional<std::string> get(std::string_view key) const;
    std::string get_or(std::string_view key, std::string def) const;
    // Parses an on/off style flag (on, off, yes, no, true, false); throws UserError otherwise.
    std::optional<bool> get_bool(std::string_view key) const;
    // Parses a number (decimal or 0x hex); throws UserError if malformed.
    std::optional<uint64_t> get_uint(std::string_view key) const;
    // Throws UserError naming the first key not in `known`.
    void expect_only(std::initializer_list<std::string_view> known) const;
    const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
    const char* option() const { return option_; }

  private:
    std::vector<std::pair<std::string, std::string>> items_;
    const char* option_ = "";
};

// "512", "512M", "2G", "1024k" → bytes (QEMU's -m default unit is MiB). Throws UserError.
uint64_t parse_size(std::string_view text, const char* option, uint64_t default_unit);
// Decimal or 0x-prefixed hex; nullopt on any junk.
std::optional<uint64_t> parse_number(std::string_view text);

} // namespace hvm
