#include "firmware/acpi/aml.hpp"

#include <cctype>
#include <stdexcept>
#include <string>

namespace hvm::aml {

namespace {

// Opcodes (ACPI 6.4 §20.3, "AML Byte Stream Byte Values").
constexpr uint8_t kZeroOp = 0x00, kOneOp = 0x01, kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0A, kWordPrefix = 0x0B, kDWordPrefix = 0x0C;
constexpr uint8_t kStringPrefix = 0x0D, kQWordPrefix = 0x0E;
constexpr uint8_t kScopeOp = 0x10, kBufferOp = 0x11, kPackageOp = 0x12, kMethodOp = 0x14;
constexpr uint8_t kDualNamePrefix = 0x2E, kMultiNamePrefix = 0x2F;
constexpr uint8_t kExtOpPrefix = 0x5B, kRootChar = 0x5C, kParentPrefixChar = 0x5E;
constexpr uint8_t kLocal0Op = 0x60, kArg0Op = 0x68;
constexpr uint8_t kStoreOp = 0x70, kAddOp = 0x72, kSubtractOp = 0x74, kIncrementOp = 0x75;
constexpr uint8_t kShiftLeftOp = 0x79, kShiftRightOp = 0x7A, kAndOp = 0x7B, kOrOp = 0x7D;
constexpr uint8_t kDerefOfOp = 0x83, kNotifyOp = 0x86, kSizeOfOp = 0x87, kIndexOp = 0x88;
constexpr uint8_t kCreateDWordFieldOp = 0x8A;
constexpr uint8_t kLAndOp = 0x90, kLOrOp = 0x91, kLNotOp = 0x92, kLEqualOp = 0x93;
constexpr uint8_t kLGreaterOp = 0x94, kLLessOp = 0x95, kToBufferOp = 0x96, kToHexStringOp = 0x98;
constexpr uint8_t kIfOp = 0xA0, kElseOp = 0xA1, kWhileOp = 0xA2, kReturnOp = 0xA4;
constexpr uint8_t kBreakOp = 0xA5, kOnesOp = 0xFF;
// Extended opcodes, after kExtOpPrefix
constexpr uint8_t kMutexOp = 0x01, kAcquireOp = 0x23, kReleaseOp = 0x27, kDebugOp = 0x31;
constexpr uint8_t kOpRegionOp = 0x80, kFieldOp = 0x81, kDeviceOp = 0x82, kProcessorOp = 0x83;

// Small/large resource item tags (ACPI 6.4 §6.4.2, §6.4.3).
constexpr uint8_t kIrqNoFlagsTag = 0x22, kDmaTag = 0x2A, kIoTag = 0x47, kEndTag = 0x79;
constexpr uint8_t kMemory32FixedTag = 0x86, kDWordAddressTag = 0x87, kWordAddressTag = 0x88;
constexpr uint8_t kExtendedIrqTag = 0x89, kQWordAddressTag = 0x8A;
// Address space resource types and general flags.
constexpr uint8_t kResourceMemory = 0, kResourceIo = 1, kResourceBusNumber = 2;
constexpr uint8_t kProducerMinMaxFixed = 0x0C; // MaxFixed | MinFixed, PosDecode, producer

void put_le(std::vector<uint8_t>& out, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; i++) out.push_back(uint8_t(v >> (8 * i)));
}

// Opcode, PkgLength, body: the shape of every variable-length term.
Aml package_term(std::initializer_list<uint8_t> opcode, const Aml& body) {
    Aml out;
    out.bytes.assign(opcode);
    auto len = pkg_length(body.size(), true);
    out.bytes.insert(out.bytes.end(), len.begin(), len.end());
    out += body;
    return out;
}

Aml op1(uint8_t op, const Aml& a) {
    Aml out{op};
    out += a;
    return out;
}
Aml op2(uint8_t op, const Aml& a, const Aml& b) {
    Aml out{op};
    out += a;
    out += b;
    return out;
}
Aml op3(uint8_t op, const Aml& a, const Aml& b, const Aml& c) {
    Aml out = op2(op, a, b);
    out += c;
    return out;
}

bool is_lead_char(char c) {
    return (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
    return is_lead_char(c) || (c >= '0' && c <= '9');
}

} // namespace

Aml seq(std::initializer_list<Aml> terms) {
    Aml out;
    for (const auto& t : terms) out += t;
    return out;
}

std::vector<uint8_t> pkg_length(uint64_t length, bool include_self) {
    // Thresholds as QEMU's build_prepend_package_length computes them, so that the chosen width
    // matches byte for byte (§20.2.4: 1 byte up to 63, then 2/3/4 bytes of 4+8k bits).
    unsigned n;
    if (length + 1 < (1u << 6))
        n = 1;
    else if (length + 2 < (1u << 12))
        n = 2;
    else if (length + 3 < (1u << 20))
        n = 3;
    else
        n = 4;
    if (include_self) length += n;
    if (length >= (1u << 28)) throw std::invalid_argument("AML package too long");
    std::vector<uint8_t> out;
    if (n == 1) {
        out.push_back(uint8_t(length));
        return out;
    }
    out.push_back(uint8_t(((n - 1) << 6) | (length & 0x0F)));
    for (unsigned i = 1; i < n; i++) out.push_back(uint8_t(length >> (4 + 8 * (i - 1))));
    return out;
}

std::vector<uint8_t> name_seg(std::string_view seg) {
    if (seg.empty() || seg.size() > 4 || !is_lead_char(seg[0]))
        throw std::invalid_argument("bad AML name segment '" + std::string(seg) + "'");
    std::vector<uint8_t> out;
    for (char c : seg) {
        if (!is_name_char(c))
            throw std::invalid_argument("bad AML name segment '" + std::string(seg) + "'");
        out.push_back(uint8_t(c));
    }
    while (out.size() < 4) out.push_back('_');
    return out;
}

Aml name_string(std::string_view path) {
    Aml out;
    size_t pos = 0;
    if (!path.empty() && path[0] == '\\') {
        out.add_byte(kRootChar);
        pos = 1;
    } else {
        while (pos < path.size() && path[pos] == '^') {
            out.add_byte(kParentPrefixChar);
            pos++;
        }
    }
    std::vector<std::string_view> segs;
    std::string_view rest = path.substr(pos);
    while (!rest.empty()) {
        size_t dot = rest.find('.');
        segs.push_back(rest.substr(0, dot));
        if (dot == std::string_view::npos) break;
        rest = rest.substr(dot + 1);
        if (rest.empty()) throw std::invalid_argument("AML name ends with '.'");
    }
    if (segs.empty()) {
        if (pos == 0) throw std::invalid_argument("empty AML name");
        out.add_byte(kZeroOp); // NullName
        return out;
    }
    if (segs.size() > 255) throw std::invalid_argument("AML name has too many segments");
    if (segs.size() == 2) out.add_byte(kDualNamePrefix);
    if (segs.size() > 2) {
        out.add_byte(kMultiNamePrefix);
        out.add_byte(uint8_t(segs.size()));
    }
    for (auto s : segs) {
        auto b = name_seg(s);
        out.bytes.insert(out.bytes.end(), b.begin(), b.end());
    }
    return out;
}

Aml integer(uint64_t v) {
    if (v == 0) return zero();
    if (v == 1) return one();
    if (v <= 0xFF) return byte_const(uint8_t(v));
    if (v <= 0xFFFF) return word_const(uint16_t(v));
    if (v <= 0xFFFFFFFF) return dword_const(uint32_t(v));
    return qword_const(v);
}
Aml zero() {
    return Aml{kZeroOp};
}
Aml one() {
    return Aml{kOneOp};
}
Aml ones() {
    return Aml{kOnesOp};
}
Aml byte_const(uint8_t v) {
    return Aml{kBytePrefix, v};
}
Aml word_const(uint16_t v) {
    Aml out{kWordPrefix};
    put_le(out.bytes, v, 2);
    return out;
}
Aml dword_const(uint32_t v) {
    Aml out{kDWordPrefix};
    put_le(out.bytes, v, 4);
    return out;
}
Aml qword_const(uint64_t v) {
    Aml out{kQWordPrefix};
    put_le(out.bytes, v, 8);
    return out;
}

Aml string(std::string_view s) {
    Aml out{kStringPrefix};
    for (char c : s) {
        // AsciiCharList is 0x01-0x7F (§20.2.3).
        if (c <= 0 || static_cast<unsigned char>(c) > 0x7F)
            throw std::invalid_argument("AML string with a non-ASCII or NUL character");
        out.add_byte(uint8_t(c));
    }
    out.add_byte(0);
    return out;
}

uint32_t eisa_id_value(std::string_view id) {
    // Three compressed letters (5 bits each, 'A' = 1) and four hex digits, stored big-endian in
    // a little-endian DWord (ACPI 6.4 §6.1.5 "_HID").
    auto hex = [&](char c) -> uint32_t {
        if (c >= '0' && c <= '9') return uint32_t(c - '0');
        if (c >= 'A' && c <= 'F') return uint32_t(c - 'A' + 10);
        throw std::invalid_argument("bad EISA ID '" + std::string(id) + "'");
    };
    if (id.size() != 7) throw std::invalid_argument("bad EISA ID '" + std::string(id) + "'");
    for (int i = 0; i < 3; i++)
        if (id[i] < 'A' || id[i] > 'Z')
            throw std::invalid_argument("bad EISA ID '" + std::string(id) + "'");
    uint32_t v = (uint32_t(id[0] - '@') << 26) | (uint32_t(id[1] - '@') << 21) |
                 (uint32_t(id[2] - '@') << 16) | (hex(id[3]) << 12) | (hex(id[4]) << 8) |
                 (hex(id[5]) << 4) | hex(id[6]);
    return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | (v >> 24);
}
Aml eisa_id(std::string_view id) {
    return dword_const(eisa_id_value(id));
}

Aml buffer(std::span<const uint8_t> data) {
    return buffer(data.size(), data);
}
Aml buffer(uint64_t size, std::span<const uint8_t> data) {
    if (data.size() > size) throw std::invalid_argument("AML buffer initializer too long");
    Aml body = integer(size);
    body.bytes.insert(body.bytes.end(), data.begin(), data.end());
    return package_term({kBufferOp}, body);
}

Aml to_uuid(std::string_view uuid) {
    // "aabbccdd-eeff-gghh-iijj-kkllmmnnoopp" -> dd cc bb aa ff ee hh gg ii jj kk ll mm nn oo pp
    // (ACPI 6.4 §19.6.142 ToUUID).
    if (uuid.size() != 36 || uuid[8] != '-' || uuid[13] != '-' || uuid[18] != '-' ||
        uuid[23] != '-')
        throw std::invalid_argument("bad UUID '" + std::string(uuid) + "'");
    auto byte_at = [&](size_t pos) -> uint8_t {
        auto nib = [&](char c) -> uint8_t {
            c = char(std::tolower(static_cast<unsigned char>(c)));
            if (c >= '0' && c <= '9') return uint8_t(c - '0');
            if (c >= 'a' && c <= 'f') return uint8_t(c - 'a' + 10);
            throw std::invalid_argument("bad UUID '" + std::string(uuid) + "'");
        };
        return uint8_t((nib(uuid[pos]) << 4) | nib(uuid[pos + 1]));
    };
    static constexpr size_t kOrder[16] = {6,  4,  2,  0,  11, 9,  16, 14,
                                          19, 21, 24, 26, 28, 30, 32, 34};
    std::vector<uint8_t> b;
    for (size_t p : kOrder) b.push_back(byte_at(p));
    return buffer(b);
}

Aml package(uint8_t num_elements, const Aml& elements) {
    Aml body{num_elements};
    body += elements;
    return package_term({kPackageOp}, body);
}

Aml local(unsigned n) {
    if (n > 7) throw std::invalid_argument("no such AML local");
    return Aml{uint8_t(kLocal0Op + n)};
}
Aml arg(unsigned n) {
    if (n > 6) throw std::invalid_argument("no such AML argument");
    return Aml{uint8_t(kArg0Op + n)};
}
Aml debug_obj() {
    return Aml{kExtOpPrefix, kDebugOp};
}
Aml null_name() {
    return Aml{kZeroOp};
}

Aml name(std::string_view path, const Aml& value) {
    Aml out{kNameOp};
    out += name_string(path);
    out += value;
    return out;
}

Aml scope(std::string_view path, const Aml& body) {
    return package_term({kScopeOp}, seq({name_string(path), body}));
}
Aml device(std::string_view path, const Aml& body) {
    return package_term({kExtOpPrefix, kDeviceOp}, seq({name_string(path), body}));
}
Aml method(std::string_view path, unsigned argc, bool serialized, const Aml& body) {
    if (argc > 7) throw std::invalid_argument("AML method with more than 7 arguments");
    uint8_t flags = uint8_t(argc | (serialized ? 0x08 : 0));
    return package_term({kMethodOp}, seq({name_string(path), Aml{flags}, body}));
}
Aml processor(std::string_view path, uint8_t proc_id, uint32_t pblk_addr, uint8_t pblk_len,
              const Aml& body) {
    Aml head = name_string(path);
    head.add_byte(proc_id);
    put_le(head.bytes, pblk_addr, 4);
    head.add_byte(pblk_len);
    return package_term({kExtOpPrefix, kProcessorOp}, seq({head, body}));
}
Aml mutex(std::string_view path, uint8_t sync_level) {
    if (sync_level > 15) throw std::invalid_argument("AML mutex sync level above 15");
    Aml out{kExtOpPrefix, kMutexOp};
    out += name_string(path);
    out.add_byte(sync_level);
    return out;
}

Aml operation_region(std::string_view path, RegionSpace space, const Aml& offset,
                     const Aml& length) {
    Aml out{kExtOpPrefix, kOpRegionOp};
    out += name_string(path);
    out.add_byte(uint8_t(space));
    out += offset;
    out += length;
    return out;
}

Aml named_field(std::string_view seg, uint32_t bits) {
    Aml out;
    out.bytes = name_seg(seg);
    auto len = pkg_length(bits, false);
    out.bytes.insert(out.bytes.end(), len.begin(), len.end());
    return out;
}
Aml reserved_field(uint32_t bits) {
    Aml out{0x00}; // ReservedField := 0x00 PkgLength
    auto len = pkg_length(bits, false);
    out.bytes.insert(out.bytes.end(), len.begin(), len.end());
    return out;
}
Aml field(std::string_view region, FieldAccess access, FieldLock lock, FieldUpdate update,
          const Aml& elements) {
    uint8_t flags = uint8_t(uint8_t(access) | (uint8_t(lock) << 4) | (uint8_t(update) << 5));
    return package_term({kExtOpPrefix, kFieldOp}, seq({name_string(region), Aml{flags}, elements}));
}
Aml create_dword_field(const Aml& source, const Aml& byte_index, std::string_view path) {
    return seq({Aml{kCreateDWordFieldOp}, source, byte_index, name_string(path)});
}

Aml if_(const Aml& predicate, const Aml& body) {
    return package_term({kIfOp}, seq({predicate, body}));
}
Aml else_(const Aml& body) {
    return package_term({kElseOp}, body);
}
Aml while_(const Aml& predicate, const Aml& body) {
    return package_term({kWhileOp}, seq({predicate, body}));
}
Aml return_(const Aml& value) {
    return op1(kReturnOp, value);
}
Aml break_() {
    return Aml{kBreakOp};
}
Aml notify(const Aml& object, const Aml& value) {
    return op2(kNotifyOp, object, value);
}
Aml acquire(const Aml& mutex_name, uint16_t timeout) {
    Aml out{kExtOpPrefix, kAcquireOp};
    out += mutex_name;
    put_le(out.bytes, timeout, 2);
    return out;
}
Aml release(const Aml& mutex_name) {
    Aml out{kExtOpPrefix, kReleaseOp};
    out += mutex_name;
    return out;
}

Aml store(const Aml& source, const Aml& target) {
    return op2(kStoreOp, source, target);
}
Aml add(const Aml& a, const Aml& b, const Aml& t) {
    return op3(kAddOp, a, b, t);
}
Aml subtract(const Aml& a, const Aml& b, const Aml& t) {
    return op3(kSubtractOp, a, b, t);
}
Aml and_(const Aml& a, const Aml& b, const Aml& t) {
    return op3(kAndOp, a, b, t);
}
Aml or_(const Aml& a, const Aml& b, const Aml& t) {
    return op3(kOrOp, a, b, t);
}
Aml shift_left(const Aml& a, const Aml& b, const Aml& t) {
    return op3(kShiftLeftOp, a, b, t);
}
Aml shift_right(const Aml& a, const Aml& b, const Aml& t) {
    return op3(kShiftRightOp, a, b, t);
}
Aml increment(const Aml& target) {
    return op1(kIncrementOp, target);
}
Aml land(const Aml& a, const Aml& b) {
    return op2(kLAndOp, a, b);
}
Aml lor(const Aml& a, const Aml& b) {
    return op2(kLOrOp, a, b);
}
Aml lnot(const Aml& a) {
    return op1(kLNotOp, a);
}
Aml lequal(const Aml& a, const Aml& b) {
    return op2(kLEqualOp, a, b);
}
Aml lless(const Aml& a, const Aml& b) {
    return op2(kLLessOp, a, b);
}
Aml lgreater(const Aml& a, const Aml& b) {
    return op2(kLGreaterOp, a, b);
}
Aml lnot_equal(const Aml& a, const Aml& b) {
    return lnot(lequal(a, b));
}
Aml index(const Aml& source, const Aml& idx, const Aml& t) {
    return op3(kIndexOp, source, idx, t);
}
Aml deref_of(const Aml& ref) {
    return op1(kDerefOfOp, ref);
}
Aml size_of(const Aml& obj) {
    return op1(kSizeOfOp, obj);
}
Aml to_hex_string(const Aml& source, const Aml& target) {
    return op2(kToHexStringOp, source, target);
}
Aml to_buffer(const Aml& source, const Aml& target) {
    return op2(kToBufferOp, source, target);
}
Aml call(std::string_view path, std::initializer_list<Aml> args) {
    Aml out = name_string(path);
    for (const auto& a : args) out += a;
    return out;
}

Aml resource_template(const Aml& descriptors) {
    Aml body = descriptors;
    body.add_byte(kEndTag | 1); // End Tag, length 1
    body.add_byte(0);           // checksum 0: "the checksum is ignored" (§6.4.2.9)
    return buffer(body.bytes);
}

Aml io_port(uint16_t min, uint16_t max, uint8_t align, uint8_t length) {
    Aml out{kIoTag, 0x01}; // Decode16
    put_le(out.bytes, min, 2);
    put_le(out.bytes, max, 2);
    out.add_byte(align);
    out.add_byte(length);
    return out;
}
Aml irq_no_flags(uint8_t irq) {
    if (irq > 15) throw std::invalid_argument("ISA IRQ above 15");
    Aml out{kIrqNoFlagsTag};
    put_le(out.bytes, 1u << irq, 2);
    return out;
}
Aml interrupt(bool consumer, IrqTrigger trigger, IrqPolarity polarity, bool shared,
              std::span<const uint32_t> irqs) {
    if (irqs.empty() || irqs.size() > 255) throw std::invalid_argument("bad interrupt list");
    Aml out{kExtendedIrqTag};
    put_le(out.bytes, 2 + 4 * irqs.size(), 2);
    uint8_t flags = uint8_t((consumer ? 1 : 0) | (trigger == IrqTrigger::Edge ? 2 : 0) |
                            (polarity == IrqPolarity::ActiveLow ? 4 : 0) | (shared ? 8 : 0));
    out.add_byte(flags);
    out.add_byte(uint8_t(irqs.size()));
    for (uint32_t irq : irqs) put_le(out.bytes, irq, 4);
    return out;
}
Aml memory32_fixed(bool read_write, uint32_t base, uint32_t length) {
    Aml out{kMemory32FixedTag, 9, 0, uint8_t(read_write ? 1 : 0)};
    put_le(out.bytes, base, 4);
    put_le(out.bytes, length, 4);
    return out;
}
Aml dma_channel(uint8_t channel) {
    if (channel > 7) throw std::invalid_argument("ISA DMA channel above 7");
    return Aml{kDmaTag, uint8_t(1u << channel), 0x00}; // compatibility, not bus master, 8-bit
}

namespace {
template <typename T>
Aml address_space(uint8_t tag, uint8_t type, uint8_t type_flags, T min, T max) {
    Aml out{tag};
    put_le(out.bytes, 3 + 5 * sizeof(T), 2);
    out.add_byte(type);
    out.add_byte(kProducerMinMaxFixed);
    out.add_byte(type_flags);
    put_le(out.bytes, 0, sizeof(T)); // granularity
    put_le(out.bytes, min, sizeof(T));
    put_le(out.bytes, max, sizeof(T));
    put_le(out.bytes, 0, sizeof(T)); // translation offset
    put_le(out.bytes, uint64_t(max) - min + 1, sizeof(T));
    return out;
}
// Memory type-specific flags: bit 0 read/write, bits 2:1 = 1 cacheable (§6.4.3.5.5).
uint8_t mem_flags(bool cacheable) {
    return uint8_t(1 | (cacheable ? 2 : 0));
}
} // namespace

Aml word_bus_number(uint16_t min, uint16_t max) {
    if (max < min) throw std::invalid_argument("bad bus range");
    return address_space<uint16_t>(kWordAddressTag, kResourceBusNumber, 0, min, max);
}
Aml word_io(uint16_t min, uint16_t max) {
    if (max < min) throw std::invalid_argument("bad I/O range");
    return address_space<uint16_t>(kWordAddressTag, kResourceIo, 0x03 /* EntireRange */, min, max);
}
Aml dword_memory(bool cacheable, uint32_t min, uint32_t max) {
    if (max < min) throw std::invalid_argument("bad memory range");
    return address_space<uint32_t>(kDWordAddressTag, kResourceMemory, mem_flags(cacheable), min,
                                   max);
}
Aml qword_memory(bool cacheable, uint64_t min, uint64_t max) {
    if (max < min || (min == 0 && max == ~0ull)) throw std::invalid_argument("bad memory range");
    return address_space<uint64_t>(kQWordAddressTag, kResourceMemory, mem_flags(cacheable), min,
                                   max);
}

} // namespace hvm::aml
