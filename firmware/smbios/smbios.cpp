#include "firmware/smbios/smbios.hpp"

#include <cstring>

#include "base/error.hpp"

namespace hvm {

namespace {

// Structure types and fixed values (DMTF DSP0134 3.x, the parts that exist in 2.8)
constexpr uint8_t kTypeSystem = 1, kTypeChassis = 3, kTypeProcessor = 4, kTypeMemArray = 16;
constexpr uint8_t kTypeMemDevice = 17, kTypeMemArrayMapped = 19, kTypeBoot = 32, kTypeEnd = 127;
// QEMU's handle numbering: type << 8, plus an index for repeated types.
constexpr uint16_t handle(uint8_t type, unsigned i = 0) {
    return uint16_t((type << 8) + i);
}
constexpr uint16_t kNoErrorInfo = 0xFFFE;
constexpr uint16_t kUnknown16 = 0xFFFF;

// One structure: formatted area, then its string set.
class Structure {
  public:
    Structure(uint8_t type, uint16_t handle) : b_{type, 0, uint8_t(handle), uint8_t(handle >> 8)} {}
    Structure& u8(uint8_t v) {
        b_.push_back(v);
        return *this;
    }
    Structure& u16(uint16_t v) { return u8(uint8_t(v)).u8(uint8_t(v >> 8)); }
    Structure& u32(uint32_t v) { return u16(uint16_t(v)).u16(uint16_t(v >> 16)); }
    Structure& u64(uint64_t v) { return u32(uint32_t(v)).u32(uint32_t(v >> 32)); }
    Structure& bytes(const uint8_t* p, size_t n) {
        b_.insert(b_.end(), p, p + n);
        return *this;
    }
    // A string reference: the string's number, or 0 for none.
    Structure& str(const std::string& s) {
        if (s.empty()) return u8(0);
        if (s.find('\0') != s.npos) fail("SMBIOS strings cannot contain NUL characters");
        strings_.push_back(s);
        return u8(uint8_t(strings_.size()));
    }
    std::vector<uint8_t> finish() {
        if (b_.size() > 255 || strings_.size() > 255) fail("SMBIOS structure too large");
        b_[1] = uint8_t(b_.size());
        for (const auto& s : strings_) {
            b_.insert(b_.end(), s.begin(), s.end());
            b_.push_back(0);
        }
        if (strings_.empty()) b_.push_back(0);
        b_.push_back(0); // a string set ends with a double NUL
        return b_;
    }

  private:
    std::vector<uint8_t> b_;
    std::vector<std::string> strings_;
};

// SMBIOS 2.6+ stores the UUID's first three fields little-endian (DSP0134 §7.2.1).
std::array<uint8_t, 16> wire_uuid(const Uuid& u) {
    std::array<uint8_t, 16> w = u;
    std::swap(w[0], w[3]);
    std::swap(w[1], w[2]);
    std::swap(w[4], w[5]);
    std::swap(w[6], w[7]);
    return w;
}

uint8_t cap255(unsigned v) {
    return v > 255 ? 0xFF : uint8_t(v);
}

} // namespace

Uuid parse_uuid(std::string_view text) {
    auto bad = [&]() {
        fail("invalid UUID '" + std::string(text) +
             "': expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx");
    };
    if (text.size() != 36) bad();
    Uuid u{};
    size_t n = 0;
    for (size_t i = 0; i < 36; i++) {
        char c = text[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') bad();
            continue;
        }
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            bad(), v = 0;
        u[n / 2] = uint8_t(u[n / 2] | (n % 2 ? v : v << 4));
        n++;
    }
    return u;
}

void apply_smbios_option(std::string_view spec, SmbiosSystemInfo& info) {
    // Split on single commas; ",," stands for a literal comma (QEMU option syntax).
    std::vector<std::string> parts(1);
    for (size_t i = 0; i < spec.size(); i++) {
        if (spec[i] == ',') {
            if (i + 1 < spec.size() && spec[i + 1] == ',') {
                parts.back() += ',';
                i++;
            } else {
                parts.emplace_back();
            }
        } else {
            parts.back() += spec[i];
        }
    }
    SmbiosSystemInfo out = info;
    bool have_type = false;
    for (const auto& p : parts) {
        size_t eq = p.find('=');
        if (eq == std::string::npos) fail("-smbios: '" + p + "' is not key=value");
        std::string key = p.substr(0, eq), val = p.substr(eq + 1);
        if (key == "type") {
            if (val != "1") fail("-smbios: only type=1 is supported, not type=" + val);
            have_type = true;
        } else if (key == "manufacturer")
            out.manufacturer = val;
        else if (key == "product")
            out.product = val;
        else if (key == "version")
            out.version = val;
        else if (key == "serial")
            out.serial = val;
        else if (key == "sku")
            out.sku = val;
        else if (key == "family")
            out.family = val;
        else if (key == "uuid")
            out.uuid = parse_uuid(val);
        else
            fail("-smbios: unknown key '" + key + "' for type 1");
    }
    if (!have_type) fail("-smbios: missing type= (only type=1 is supported)");
    info = out;
}

SmbiosTables build_smbios(const SmbiosConfig& cfg) {
    if (cfg.ram_size == 0) fail("SMBIOS: no RAM");
    if (cfg.sockets == 0 || cfg.cores_per_socket == 0 || cfg.threads_per_core == 0)
        fail("SMBIOS: CPU topology with a zero count");
    if (cfg.sockets > 255) fail("SMBIOS: at most 255 CPU sockets");
    SmbiosTables out;
    auto add = [&](std::vector<uint8_t> s) {
        out.max_struct_size = uint16_t(std::max<size_t>(out.max_struct_size, s.size()));
        out.tables.insert(out.tables.end(), s.begin(), s.end());
        out.count++;
    };

    { // Type 1: System Information (length 27, SMBIOS 2.4+)
        Structure s(kTypeSystem, handle(kTypeSystem));
        s.str(cfg.system.manufacturer)
            .str(cfg.system.product)
            .str(cfg.system.version)
            .str(cfg.system.serial);
        std::array<uint8_t, 16> uuid{};
        if (cfg.system.uuid) uuid = wire_uuid(*cfg.system.uuid);
        s.bytes(uuid.data(), uuid.size());
        s.u8(0x06); // wake-up type: power switch
        s.str(cfg.system.sku).str(cfg.system.family);
        add(s.finish());
    }
    { // Type 3: System Enclosure (length 22 with the SKU string)
        Structure s(kTypeChassis, handle(kTypeChassis));
        s.str("QEMU").u8(0x01 /* other */).str(cfg.machine_version).str("").str("");
        s.u8(0x03).u8(0x03).u8(0x03);     // boot-up, power supply, thermal state: safe
        s.u8(0x02);                       // security status: unknown
        s.u32(0).u8(0).u8(0).u8(0).u8(0); // OEM, height, power cords, contained elements 0/len
        s.str("");                        // SKU
        add(s.finish());
    }
    const unsigned threads_per_socket = cfg.cores_per_socket * cfg.threads_per_core;
    for (unsigned i = 0; i < cfg.sockets; i++) { // Type 4: Processor (length 42, 2.6 layout)
        Structure s(kTypeProcessor, handle(kTypeProcessor, i));
        s.str("CPU " + std::to_string(i)).u8(0x03 /* central */).u8(0x01 /* family: other */);
        s.str("QEMU").u32(cfg.cpuid_signature).u32(cfg.cpuid_features).str(cfg.machine_version);
        s.u8(0).u16(0); // voltage, external clock: unknown
        s.u16(cfg.cpu_speed_mhz).u16(cfg.cpu_speed_mhz);
        s.u8(0x41);                                        // socket populated, CPU enabled
        s.u8(0x01);                                        // upgrade: other
        s.u16(kUnknown16).u16(kUnknown16).u16(kUnknown16); // no cache information
        s.str("").str("").str("");                         // serial, asset tag, part number
        s.u8(cap255(cfg.cores_per_socket)).u8(cap255(cfg.cores_per_socket));
        s.u8(cap255(threads_per_socket));
        s.u16(0x0002); // characteristics: unknown
        s.u16(0x0001); // processor family 2: other
        add(s.finish());
    }
    const uint64_t dimms = (cfg.ram_size + smbios::kMaxDimmSize - 1) / smbios::kMaxDimmSize;
    if (dimms > 255) fail("SMBIOS: RAM too large for the DIMM table");
    { // Type 16: Physical Memory Array (length 23)
        Structure s(kTypeMemArray, handle(kTypeMemArray));
        s.u8(0x01).u8(0x03).u8(0x06); // location other, system memory, multi-bit ECC
        uint64_t kb = cfg.ram_size / 1024;
        bool big = kb >= 0x80000000ull; // 2 TiB and more goes in the extended field
        s.u32(big ? 0x80000000u : uint32_t(kb)).u16(kNoErrorInfo).u16(uint16_t(dimms));
        s.u64(big ? cfg.ram_size : 0);
        add(s.finish());
    }
    for (unsigned i = 0; i < dimms; i++) { // Type 17: Memory Device (length 40, 2.8 layout)
        uint64_t size =
            i + 1 < dimms ? smbios::kMaxDimmSize : (cfg.ram_size - 1) % smbios::kMaxDimmSize + 1;
        uint64_t mb = (size + (1u << 20) - 1) >> 20;
        Structure s(kTypeMemDevice, handle(kTypeMemDevice, i));
        s.u16(handle(kTypeMemArray)).u16(kNoErrorInfo).u16(kUnknown16).u16(kUnknown16);
        s.u16(mb < 0x7FFF ? uint16_t(mb) : 0x7FFF);
        s.u8(0x09).u8(0); // DIMM, not in a set
        s.str("DIMM " + std::to_string(i)).str("");
        s.u8(0x07).u16(0x0002).u16(0); // type RAM, detail other, speed unknown
        s.str("QEMU").str("").str("").str("");
        s.u8(0).u32(mb < 0x7FFF ? 0 : uint32_t(mb)).u16(0).u16(0).u16(0).u16(0);
        add(s.finish());
    }
    for (size_t i = 0; i < cfg.ram_ranges.size(); i++) { // Type 19 (length 31)
        const auto& r = cfg.ram_ranges[i];
        if (r.size == 0 || r.start + r.size < r.start) fail("SMBIOS: bad RAM range");
        uint64_t end = r.start + r.size - 1;
        bool big = end >= (4ull << 40); // 4 TiB: KiB values no longer fit in 32 bits
        Structure s(kTypeMemArrayMapped, handle(kTypeMemArrayMapped, unsigned(i)));
        s.u32(big ? 0xFFFFFFFFu : uint32_t(r.start / 1024))
            .u32(big ? 0xFFFFFFFFu : uint32_t(end / 1024));
        s.u16(handle(kTypeMemArray)).u8(1); // one device per row
        s.u64(big ? r.start : 0).u64(big ? end : 0);
        add(s.finish());
    }
    { // Type 32: System Boot Information
        Structure s(kTypeBoot, handle(kTypeBoot));
        s.u32(0).u16(0).u8(0); // reserved, boot status: no errors
        add(s.finish());
    }
    add(Structure(kTypeEnd, handle(kTypeEnd)).finish());
    if (out.tables.size() > 0xFFFF) fail("SMBIOS tables too large");

    out.anchor = smbios_entry_point(out, 0);
    // As QEMU serves it: "BIOS must recalculate" both checksums (smbios_entry_point_setup).
    out.anchor[4] = 0;
    out.anchor[0x15] = 0;
    return out;
}

std::array<uint8_t, smbios::kEntryPointSize> smbios_entry_point(const SmbiosTables& t,
                                                                uint32_t table_addr) {
    std::array<uint8_t, smbios::kEntryPointSize> ep{};
    std::memcpy(&ep[0], "_SM_", 4);
    ep[5] = smbios::kEntryPointSize;
    ep[6] = smbios::kMajor;
    ep[7] = smbios::kMinor;
    ep[8] = uint8_t(t.max_struct_size);
    ep[9] = uint8_t(t.max_struct_size >> 8);
    std::memcpy(&ep[0x10], "_DMI_", 5);
    uint16_t len = uint16_t(t.tables.size());
    ep[0x16] = uint8_t(len);
    ep[0x17] = uint8_t(len >> 8);
    for (int i = 0; i < 4; i++) ep[0x18 + i] = uint8_t(table_addr >> (8 * i));
    ep[0x1C] = uint8_t(t.count);
    ep[0x1D] = uint8_t(t.count >> 8);
    ep[0x1E] = uint8_t((smbios::kMajor << 4) | smbios::kMinor); // BCD revision 0x28
    uint8_t sum = 0;
    for (size_t i = 0x10; i < ep.size(); i++) sum = uint8_t(sum + ep[i]);
    ep[0x15] = uint8_t(-sum); // intermediate checksum over the _DMI_ part
    sum = 0;
    for (uint8_t b : ep) sum = uint8_t(sum + b);
    ep[4] = uint8_t(-sum);
    return ep;
}

} // namespace hvm
