#include "base/state.hpp"

namespace hvm {

void StateWriter::raw(const void* p, size_t n) {
    if (!n) return;
    auto b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
}

void StateWriter::begin(std::string_view section, uint32_t version) {
    uint32_t len = static_cast<uint32_t>(section.size());
    raw(&len, 4);
    raw(section.data(), len);
    raw(&version, 4);
}

void StateWriter::put_bytes(std::span<const uint8_t> bytes) {
    uint32_t len = static_cast<uint32_t>(bytes.size());
    raw(&len, 4);
    raw(bytes.data(), bytes.size());
}

void StateReader::raw(void* p, size_t n) {
    if (n > data_.size() - pos_) throw StateError("state: truncated");
    if (n) memcpy(p, data_.data() + pos_, n);
    pos_ += n;
}

uint32_t StateReader::begin(std::string_view section, uint32_t min_version, uint32_t max_version) {
    uint32_t len;
    raw(&len, 4);
    if (len != section.size()) throw StateError("state: expected section " + std::string(section));
    std::string name(len, '\0');
    raw(name.data(), len);
    if (name != section) throw StateError("state: expected section " + std::string(section));
    uint32_t version;
    raw(&version, 4);
    if (version < min_version || version > max_version)
        throw StateError("state: unsupported version of " + name);
    return version;
}

void StateReader::get_bytes(std::span<uint8_t> out) {
    uint32_t len;
    raw(&len, 4);
    if (len != out.size()) throw StateError("state: field size mismatch");
    raw(out.data(), len);
}

} // namespace hvm
