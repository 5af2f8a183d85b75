// Versioned device state. A device writes a section (name + version) and its fields in order; the
// reader checks the name, accepts versions in [min_version, version], checks every field's size,
// and throws StateError on anything inconsistent. State files are untrusted input: after load()
// a device re-validates what it read (indices in range, FIFO counts within capacity).
#pragma once
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace hvm {

class StateError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class StateWriter {
  public:
    void begin(std::string_view section, uint32_t version);
    template <typename T>
    requires std::is_trivially_copyable_v<T>
    void put(const T& value) {
        put_bytes(std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
    }
    void put_bytes(std::span<const uint8_t> bytes);
    const std::vector<uint8_t>& data() const { return buf_; }

  private:
    void raw(const void* p, size_t n);
    std::vector<uint8_t> buf_;
};

class StateReader {
  public:
    explicit StateReader(std::span<const uint8_t> data) : data_(data) {}
    // Returns the version found; throws if the name differs or the version is out of range.
    uint32_t begin(std::string_view section, uint32_t min_version, uint32_t max_version);
    template <typename T>
    requires std::is_trivially_copyable_v<T> T get() {
        T value;
        get_bytes(std::span(reinterpret_cast<uint8_t*>(&value), sizeof(T)));
        return value;
    }
    template <typename T> void get(T& value) { value = get<T>(); }
    void get_bytes(std::span<uint8_t> out);
    bool at_end() const { return pos_ == data_.size(); }

  private:
    void raw(void* p, size_t n);
    std::span<const uint8_t> data_;
    size_t pos_ = 0;
};

} // namespace hvm
