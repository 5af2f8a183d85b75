// A small builder for ACPI Machine Language (ACPI 6.4 chapter 20, "ACPI Machine Language
// Specification"). Each function returns the encoding of one AML term; containers (Scope, Device,
// Method, If, Package, Buffer...) take their already encoded body and prefix it with the opcode
// and the PkgLength the body needs. The encodings are chosen the way QEMU's hw/acpi/aml-build.c
// chooses them (ZeroOp/OneOp for 0/1, the shortest integer prefix, EisaId as a DWordConst, the
// shortest PkgLength), so that hvm's DSDT can be compared byte for byte with QEMU's.
//
// The builder is only ever fed by hvm's own table code, never by the guest: a malformed name or an
// out-of-range value is a programming error and throws std::invalid_argument.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

namespace hvm::aml {

// One or more encoded AML terms.
struct Aml {
    std::vector<uint8_t> bytes;

    Aml() = default;
    Aml(std::initializer_list<uint8_t> b) : bytes(b) {}
    Aml& operator+=(const Aml& other) {
        bytes.insert(bytes.end(), other.bytes.begin(), other.bytes.end());
        return *this;
    }
    Aml& add_byte(uint8_t b) {
        bytes.push_back(b);
        return *this;
    }
    size_t size() const { return bytes.size(); }
    bool operator==(const Aml&) const = default;
};

// Terms concatenated in order.
Aml seq(std::initializer_list<Aml> terms);

// --- Encoding primitives (§20.2.4, §20.2.2) ---
// PkgLength for a package whose contents are `length` bytes long. With `include_self` the encoded
// value also counts the PkgLength bytes (packages); without, it is the plain value (field units,
// whose PkgLength is a bit count).
std::vector<uint8_t> pkg_length(uint64_t length, bool include_self);
// NameString: "\\" root prefix, "^" parent prefixes, then dot-separated segments of up to four
// characters ('_' padded). One segment: NameSeg; two: DualNamePrefix; more: MultiNamePrefix. A bare
// prefix ("\\") is followed by NullName.
Aml name_string(std::string_view path);
// A bare NameSeg, as used in a FieldList.
std::vector<uint8_t> name_seg(std::string_view seg);

// --- Data objects (§20.2.3) ---
Aml integer(uint64_t v); // ZeroOp, OneOp, or the shortest Byte/Word/DWord/QWord prefix
Aml zero();
Aml one();
Aml ones(); // OnesOp (0xFF): all bits set at the table's integer width
Aml byte_const(uint8_t v);
Aml word_const(uint16_t v);
Aml dword_const(uint32_t v);
Aml qword_const(uint64_t v);
Aml string(std::string_view s);
// A compressed EISA ID ("PNP0A03") as a DWordConst, as ASL's EisaId() compiles it.
Aml eisa_id(std::string_view id);
uint32_t eisa_id_value(std::string_view id);
Aml buffer(std::span<const uint8_t> data); // Buffer (n) { data }
Aml buffer(uint64_t size, std::span<const uint8_t> data = {});
// ToUUID("e5c937d0-3553-4d7a-9117-ea4d19c3434d"): a 16-byte buffer in ACPI's mixed-endian order.
Aml to_uuid(std::string_view uuid);
// Package (num_elements) { elements }; more than 255 elements need VarPackage (not used here).
Aml package(uint8_t num_elements, const Aml& elements = {});

// --- Names and arguments ---
Aml local(unsigned n); // Local0..Local7
Aml arg(unsigned n);   // Arg0..Arg6
Aml debug_obj();
Aml null_name(); // an omitted Target

// --- Named objects and namespace modifiers (§20.2.5.1, §20.2.5.2) ---
Aml name(std::string_view path, const Aml& value);
Aml scope(std::string_view path, const Aml& body);
Aml device(std::string_view path, const Aml& body);
Aml method(std::string_view path, unsigned argc, bool serialized, const Aml& body);
Aml processor(std::string_view path, uint8_t proc_id, uint32_t pblk_addr, uint8_t pblk_len,
              const Aml& body);
Aml mutex(std::string_view path, uint8_t sync_level);

enum class RegionSpace : uint8_t { SystemMemory = 0, SystemIO = 1, PciConfig = 2 };
Aml operation_region(std::string_view path, RegionSpace space, const Aml& offset,
                     const Aml& length);
enum class FieldAccess : uint8_t { Any = 0, Byte = 1, Word = 2, DWord = 3 };
enum class FieldLock : uint8_t { NoLock = 0, Lock = 1 };
enum class FieldUpdate : uint8_t { Preserve = 0, WriteAsOnes = 1, WriteAsZeros = 2 };
// FieldList entries.
Aml named_field(std::string_view seg, uint32_t bits);
Aml reserved_field(uint32_t bits); // shown as Offset()/skipped bits
Aml field(std::string_view region, FieldAccess access, FieldLock lock, FieldUpdate update,
          const Aml& elements);
Aml create_dword_field(const Aml& source, const Aml& byte_index, std::string_view path);

// --- Statements (§20.2.5.3) ---
Aml if_(const Aml& predicate, const Aml& body);
Aml else_(const Aml& body);
Aml while_(const Aml& predicate, const Aml& body);
Aml return_(const Aml& value);
Aml break_();
Aml notify(const Aml& object, const Aml& value);
Aml acquire(const Aml& mutex_name, uint16_t timeout);
Aml release(const Aml& mutex_name);

// --- Expressions (§20.2.5.4) ---
Aml store(const Aml& source, const Aml& target);
Aml add(const Aml& a, const Aml& b, const Aml& target = null_name());
Aml subtract(const Aml& a, const Aml& b, const Aml& target = null_name());
Aml and_(const Aml& a, const Aml& b, const Aml& target = null_name());
Aml or_(const Aml& a, const Aml& b, const Aml& target = null_name());
Aml shift_left(const Aml& a, const Aml& b, const Aml& target = null_name());
Aml shift_right(const Aml& a, const Aml& b, const Aml& target = null_name());
Aml increment(const Aml& target);
Aml land(const Aml& a, const Aml& b);
Aml lor(const Aml& a, const Aml& b);
Aml lnot(const Aml& a);
Aml lequal(const Aml& a, const Aml& b);
Aml lless(const Aml& a, const Aml& b);
Aml lgreater(const Aml& a, const Aml& b);
Aml lnot_equal(const Aml& a, const Aml& b); // LNot(LEqual())
Aml index(const Aml& source, const Aml& idx, const Aml& target = null_name());
Aml deref_of(const Aml& ref);
Aml size_of(const Aml& obj);
Aml to_hex_string(const Aml& source, const Aml& target);
Aml to_buffer(const Aml& source, const Aml& target);
// A call of a control method: the name followed by its arguments.
Aml call(std::string_view path, std::initializer_list<Aml> args = {});

// --- Resource descriptors (ACPI 6.4 §6.4) for ResourceTemplate() ---
// A ResourceTemplate: a Buffer holding the descriptors followed by the End Tag (checksum 0).
Aml resource_template(const Aml& descriptors);
Aml io_port(uint16_t min, uint16_t max, uint8_t align, uint8_t length); // IO (Decode16, ...)
Aml irq_no_flags(uint8_t irq);
enum class IrqTrigger { Level, Edge };
enum class IrqPolarity { ActiveHigh, ActiveLow };
Aml interrupt(bool consumer, IrqTrigger trigger, IrqPolarity polarity, bool shared,
              std::span<const uint32_t> irqs);
Aml memory32_fixed(bool read_write, uint32_t base, uint32_t length);
Aml dma_channel(uint8_t channel); // DMA (Compatibility, NotBusMaster, Transfer8) {channel}
Aml word_bus_number(uint16_t min, uint16_t max);
Aml word_io(uint16_t min, uint16_t max); // producer, EntireRange, TypeStatic, Dense
Aml dword_memory(bool cacheable, uint32_t min, uint32_t max);
Aml qword_memory(bool cacheable, uint64_t min, uint64_t max);

} // namespace hvm::aml
