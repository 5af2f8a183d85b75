#include "block/drive_options.hpp"

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "base/error.hpp"

namespace hvm::block {
namespace {

// Splits "a=b,c=d" honouring ",," escapes. A bare "key" means key=on (QEMU's shorthand).
std::vector<std::pair<std::string, std::string>> split_options(std::string_view s) {
    std::vector<std::pair<std::string, std::string>> out;
    size_t i = 0;
    while (i < s.size()) {
        std::string key, value;
        bool has_value = false;
        while (i < s.size() && s[i] != '=' && s[i] != ',') key += s[i++];
        if (i < s.size() && s[i] == '=') {
            has_value = true;
            i++;
            while (i < s.size()) {
                if (s[i] == ',') {
                    if (i + 1 < s.size() && s[i + 1] == ',') {
                        value += ',';
                        i += 2;
                        continue;
                    }
                    break;
                }
                value += s[i++];
            }
        }
        if (i < s.size()) i++; // the separating comma
        if (key.empty())
            fail("Invalid -drive option: empty parameter name in '" + std::string(s) + "'");
        out.emplace_back(key, has_value ? value : "on");
    }
    return out;
}

bool parse_bool(const std::string& key, const std::string& v) {
    if (v == "on" || v == "yes" || v == "true") return true;
    if (v == "off" || v == "no" || v == "false") return false;
    fail("Parameter '" + key + "' expects 'on' or 'off'");
}

int parse_number(const std::string& key, const std::string& v) {
    if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos)
        fail("Parameter '" + key + "' expects a non-negative number");
    return std::atoi(v.c_str());
}

} // namespace

OpenOptions DriveOptions::open_options(bool global_snapshot) const {
    OpenOptions o;
    o.format = format;
    o.read_only = read_only;
    o.cache = cache;
    // QEMU ignores snapshot for read-only drives: nothing would be written anyway.
    o.snapshot = (snapshot || global_snapshot) && !read_only;
    return o;
}

DriveOptions parse_drive_option(std::string_view value) {
    DriveOptions d;
    bool have_file = false;
    bool read_only_given = false;
    for (auto& [key, v] : split_options(value)) {
        if (key == "file") {
            d.file = v;
            have_file = true;
        } else if (key == "format") {
            if (v != "raw" && v != "qcow2")
                fail("Unknown driver '" + v + "' in -drive format= (hvm supports raw and qcow2)");
            d.format = v;
        } else if (key == "if") {
            if (v == "ide")
                d.interface = DriveInterface::Ide;
            else if (v == "none")
                d.interface = DriveInterface::None;
            else
                fail("unsupported bus type '" + v + "' in -drive if= (hvm supports ide, none)");
        } else if (key == "index") {
            d.index = parse_number(key, v);
        } else if (key == "bus") {
            d.bus = parse_number(key, v);
        } else if (key == "unit") {
            d.unit = parse_number(key, v);
        } else if (key == "media") {
            if (v == "disk")
                d.media = DriveMedia::Disk;
            else if (v == "cdrom")
                d.media = DriveMedia::Cdrom;
            else
                fail("'" + v + "' invalid media (use disk or cdrom)");
        } else if (key == "readonly") {
            d.read_only = parse_bool(key, v);
            read_only_given = true;
        } else if (key == "cache") {
            if (v == "writeback")
                d.cache = CacheMode::writeback_mode();
            else if (v == "writethrough")
                d.cache = CacheMode::writethrough();
            else if (v == "none" || v == "off")
                d.cache = CacheMode::none();
            else if (v == "directsync")
                d.cache = CacheMode::directsync();
            else if (v == "unsafe")
                d.cache = CacheMode::unsafe();
            else
                fail("invalid cache option '" + v +
                     "' (use writeback, writethrough, none, directsync or unsafe)");
            d.cache_name = v == "off" ? "none" : v;
        } else if (key == "snapshot") {
            d.snapshot = parse_bool(key, v);
        } else {
            fail("Invalid parameter '" + key + "' in -drive");
        }
    }
    if (d.index && (d.bus || d.unit)) fail("-drive: index cannot be used with bus and unit");
    if (d.media == DriveMedia::Cdrom) {
        if (read_only_given && !d.read_only) fail("-drive: a CD-ROM cannot be read-write");
        d.read_only = true;
    } else {
        if (!have_file || d.file.empty()) fail("-drive: media=disk needs file=");
        if (d.read_only && d.interface == DriveInterface::Ide)
            fail("-drive: readonly=on is not supported by IDE hard disks (use media=cdrom)");
    }
    if (d.interface == DriveInterface::Ide) {
        if (d.bus && *d.bus >= kIdeBuses)
            fail("-drive: bus " + std::to_string(*d.bus) + " too big (max is " +
                 std::to_string(kIdeBuses - 1) + ")");
        if (d.unit && *d.unit >= kIdeUnitsPerBus)
            fail("-drive: unit " + std::to_string(*d.unit) + " too big (max is " +
                 std::to_string(kIdeUnitsPerBus - 1) + ")");
        if (d.index && *d.index >= kIdeBuses * kIdeUnitsPerBus)
            fail("-drive: index " + std::to_string(*d.index) + " too big (max is " +
                 std::to_string(kIdeBuses * kIdeUnitsPerBus - 1) + ")");
    }
    return d;
}

void assign_ide_slots(std::vector<DriveOptions>& drives) {
    bool used[kIdeBuses][kIdeUnitsPerBus] = {};
    auto take = [&](DriveOptions& d, int bus, int unit) {
        if (used[bus][unit])
            fail("-drive: drive with bus=" + std::to_string(bus) +
                 ", unit=" + std::to_string(unit) +
                 " (index=" + std::to_string(bus * kIdeUnitsPerBus + unit) + ") exists");
        used[bus][unit] = true;
        d.bus = bus;
        d.unit = unit;
        d.index.reset();
    };
    // Explicit positions first, then the rest in command-line order.
    for (DriveOptions& d : drives) {
        if (d.interface != DriveInterface::Ide) continue;
        if (d.index)
            take(d, *d.index / kIdeUnitsPerBus, *d.index % kIdeUnitsPerBus);
        else if (d.bus && d.unit)
            take(d, *d.bus, *d.unit);
    }
    for (DriveOptions& d : drives) {
        if (d.interface != DriveInterface::Ide || (d.bus && d.unit)) continue;
        bool placed = false;
        for (int b = d.bus.value_or(0); b < kIdeBuses && !placed; b++) {
            const int u_end = d.unit ? *d.unit + 1 : kIdeUnitsPerBus;
            for (int u = d.unit.value_or(0); u < u_end && !placed; u++) {
                if (!used[b][u]) {
                    take(d, b, u);
                    placed = true;
                }
            }
            if (d.bus) break; // bus= given: stay on it
        }
        if (!placed) fail("-drive: too many IDE drives (the pc machine has 4 IDE slots)");
    }
}

} // namespace hvm::block
