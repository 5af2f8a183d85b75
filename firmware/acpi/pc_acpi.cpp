#include "firmware/acpi/pc_acpi.hpp"

#include <cstring>
#include <stdexcept>

#include "base/error.hpp"

namespace hvm {

namespace {

constexpr char kOemId[6] = {'B', 'O', 'C', 'H', 'S', ' '};
constexpr char kOemTableId[8] = {'B', 'X', 'P', 'C', ' ', ' ', ' ', ' '};
constexpr char kCreatorId[4] = {'B', 'X', 'P', 'C'};

// FADT (ACPI 1.0b §5.2.5, revision 1) field offsets.
constexpr size_t kFadtFirmwareCtrl = 36, kFadtDsdt = 40, kFadtIntModel = 44, kFadtSciInt = 46;
constexpr size_t kFadtSmiCmd = 48, kFadtAcpiEnable = 52, kFadtAcpiDisable = 53;
constexpr size_t kFadtPm1aEvt = 56, kFadtPm1aCnt = 64, kFadtPmTmr = 76, kFadtGpe0 = 80;
constexpr size_t kFadtPm1EvtLen = 88, kFadtPm1CntLen = 89, kFadtPmTmrLen = 91;
constexpr size_t kFadtGpe0Len = 92, kFadtPLvl2Lat = 96, kFadtPLvl3Lat = 98, kFadtCentury = 108;
constexpr size_t kFadtFlags = 112, kFadtSize = 116;
// FADT flags QEMU's pc sets (measured 0x80A5): WBINVD, PROC_C1, SLP_BUTTON (a control-method
// sleep button, i.e. none fixed), RTC_S4, USE_PLATFORM_CLOCK. PWR_BUTTON is clear: the power
// button is the fixed-feature one in PM1_STS.
constexpr uint32_t kFadtWbinvd = 1u << 0, kFadtProcC1 = 1u << 2, kFadtSlpButton = 1u << 5;
constexpr uint32_t kFadtRtcS4 = 1u << 7, kFadtUsePlatformClock = 1u << 15;
constexpr uint16_t kNoCState = 0x0FFF; // P_LVL2/3 latency above 100/1000 us: C2/C3 unsupported
constexpr uint8_t kCmosCentury = 0x32;
constexpr uint8_t kApmCnt = 0xB2, kAcpiEnable = 0xF1, kAcpiDisable = 0xF0; // PIIX4 APMC
// MADT (ACPI 1.0b §5.2.8)
constexpr uint32_t kMadtPcatCompat = 1;
constexpr uint8_t kMadtLapic = 0, kMadtIoapic = 1, kMadtIso = 2, kMadtLapicNmi = 4;
// ISA IRQs that are level-triggered, active-high PCI/SCI lines (QEMU: mask 0x0e20).
constexpr uint16_t kLevelIsaIrqs = (1u << 5) | (1u << 9) | (1u << 10) | (1u << 11);
constexpr uint16_t kIsoActiveHighLevel = 0x000D; // polarity 01 (high), trigger 11 (level)
// WAET (Microsoft "Windows ACPI Emulated Devices Table"): bit 1 = ACPI PM timer good, one read
// suffices. Bit 0 (RTC needs no INT ack) stays clear: hvm's RTC, like QEMU's, needs reg C read.
constexpr uint32_t kWaetPmTimerGood = 1u << 1;

void put(std::vector<uint8_t>& t, size_t off, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; i++) t[off + i] = uint8_t(v >> (8 * i));
}
void append(std::vector<uint8_t>& t, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; i++) t.push_back(uint8_t(v >> (8 * i)));
}
void finish_length(std::vector<uint8_t>& t) {
    put(t, 4, t.size(), 4);
}

} // namespace

void validate_pc_acpi_config(const PcAcpiConfig& cfg) {
    if (cfg.apic_ids.empty() || cfg.apic_ids.size() > 255)
        fail("ACPI tables: between 1 and 255 CPUs are supported");
    if (cfg.present_cpus == 0 || cfg.present_cpus > cfg.apic_ids.size())
        fail("ACPI tables: present CPUs must be between 1 and the maximum CPU count");
    for (size_t i = 0; i < cfg.apic_ids.size(); i++) {
        // 0xFF is the broadcast ID; larger IDs need x2APIC structures, which `pc` never uses.
        if (cfg.apic_ids[i] >= 0xFF) fail("ACPI tables: APIC IDs above 254 are not supported");
        for (size_t j = 0; j < i; j++)
            if (cfg.apic_ids[j] == cfg.apic_ids[i]) fail("ACPI tables: duplicate APIC ID");
    }
    if (cfg.ram_below_4g == 0 || cfg.ram_below_4g > acpi::kPciHoleEnd)
        fail("ACPI tables: RAM below 4 GiB must end below the PCI hole");
    if (cfg.ram_above_4g > (1ull << 52) || cfg.pci_hole64_size > (1ull << 52))
        fail("ACPI tables: RAM or 64-bit PCI window too large");
    if (!(cfg.fixed_pci_slots & 0x3))
        fail("ACPI tables: slots 0 (host bridge) and 1 (PIIX3) cannot be hot-pluggable");
}

std::vector<uint8_t> acpi_table(std::string_view signature, uint8_t revision,
                                std::span<const uint8_t> body) {
    if (signature.size() != 4) throw std::invalid_argument("ACPI signature must be 4 characters");
    std::vector<uint8_t> t(acpi::kHeaderSize, 0);
    std::memcpy(&t[0], signature.data(), 4);
    t[8] = revision;
    std::memcpy(&t[10], kOemId, 6);
    std::memcpy(&t[16], kOemTableId, 8);
    put(t, 24, 1, 4); // OEM revision
    std::memcpy(&t[28], kCreatorId, 4);
    put(t, 32, 1, 4); // creator revision
    t.insert(t.end(), body.begin(), body.end());
    finish_length(t);
    return t;
}

void acpi_fix_checksum(std::vector<uint8_t>& table) {
    if (table.size() < acpi::kHeaderSize) throw std::invalid_argument("ACPI table too short");
    table[acpi::kChecksumOffset] = 0;
    uint8_t sum = 0;
    for (uint8_t b : table) sum = uint8_t(sum + b);
    table[acpi::kChecksumOffset] = uint8_t(-sum);
}

std::vector<uint8_t> build_facs() {
    // FACS (ACPI 1.0b §5.2.6): no header checksum, 64 bytes, no S4BIOS, version 0.
    std::vector<uint8_t> t(64, 0);
    std::memcpy(&t[0], "FACS", 4);
    put(t, 4, t.size(), 4);
    return t;
}

std::vector<uint8_t> build_fadt(const PcAcpiConfig& cfg, uint32_t facs_addr, uint32_t dsdt_addr) {
    std::vector<uint8_t> t = acpi_table("FACP", 1, std::vector<uint8_t>(kFadtSize - 36, 0));
    put(t, kFadtFirmwareCtrl, facs_addr, 4);
    put(t, kFadtDsdt, dsdt_addr, 4);
    t[kFadtIntModel] = 1; // ACPI 1.0 "dual PIC" interrupt model field, as QEMU fills it
    put(t, kFadtSciInt, acpi::kSciIrq, 2);
    if (cfg.smm) {
        put(t, kFadtSmiCmd, kApmCnt, 4);
        t[kFadtAcpiEnable] = kAcpiEnable;
        t[kFadtAcpiDisable] = kAcpiDisable;
    }
    put(t, kFadtPm1aEvt, acpi::kPmBase, 4);
    put(t, kFadtPm1aCnt, acpi::kPmBase + 4, 4);
    put(t, kFadtPmTmr, acpi::kPmBase + 8, 4);
    put(t, kFadtGpe0, acpi::kGpe0Base, 4);
    t[kFadtPm1EvtLen] = 4;
    t[kFadtPm1CntLen] = 2;
    t[kFadtPmTmrLen] = 4;
    t[kFadtGpe0Len] = acpi::kGpe0Length;
    put(t, kFadtPLvl2Lat, kNoCState, 2);
    put(t, kFadtPLvl3Lat, kNoCState, 2);
    t[kFadtCentury] = kCmosCentury;
    put(t, kFadtFlags,
        kFadtWbinvd | kFadtProcC1 | kFadtSlpButton | kFadtRtcS4 | kFadtUsePlatformClock, 4);
    return t;
}

std::vector<uint8_t> build_madt(const PcAcpiConfig& cfg) {
    validate_pc_acpi_config(cfg);
    std::vector<uint8_t> b;
    append(b, acpi::kLapicAddr, 4);
    append(b, kMadtPcatCompat, 4);
    for (size_t i = 0; i < cfg.apic_ids.size(); i++) {
        b.insert(b.end(), {kMadtLapic, 8, uint8_t(i), uint8_t(cfg.apic_ids[i])});
        append(b, i < cfg.present_cpus ? 1 : 0, 4); // enabled
    }
    b.insert(b.end(), {kMadtIoapic, 12, acpi::kIoapicId, 0});
    append(b, acpi::kIoapicAddr, 4);
    append(b, 0, 4); // GSI base
    auto iso = [&](uint8_t irq, uint32_t gsi, uint16_t flags) {
        b.insert(b.end(), {kMadtIso, 10, 0 /* ISA bus */, irq});
        append(b, gsi, 4);
        append(b, flags, 2);
    };
    if (cfg.irq0_override) iso(0, 2, 0); // the PIT's IRQ0 is wired to IOAPIC pin 2
    for (uint8_t irq = 1; irq < 16; irq++)
        if (kLevelIsaIrqs & (1u << irq)) iso(irq, irq, kIsoActiveHighLevel);
    // NMI on LINT1 of every local APIC (processor ID 0xFF = all), flags conforming.
    b.insert(b.end(), {kMadtLapicNmi, 6, 0xFF, 0, 0, 1});
    return acpi_table("APIC", 1, b);
}

std::vector<uint8_t> build_hpet_table() {
    std::vector<uint8_t> b;
    append(b, acpi::kHpetBlockId, 4);
    // Base address as a Generic Address Structure: system memory, width/offset/access 0.
    b.insert(b.end(), {0, 0, 0, 0});
    append(b, acpi::kHpetAddr, 8);
    b.push_back(0);  // HPET number
    append(b, 0, 2); // minimum clock tick in periodic mode
    b.push_back(0);  // no page protection
    return acpi_table("HPET", 1, b);
}

std::vector<uint8_t> build_waet() {
    std::vector<uint8_t> b;
    append(b, kWaetPmTimerGood, 4);
    return acpi_table("WAET", 1, b);
}

std::vector<uint8_t> build_rsdt(const std::vector<uint32_t>& entries) {
    std::vector<uint8_t> b;
    for (uint32_t e : entries) append(b, e, 4);
    return acpi_table("RSDT", 1, b);
}

std::vector<uint8_t> build_rsdp(uint32_t rsdt_addr) {
    // ACPI 1.0 RSDP (§5.2.4.3): 20 bytes, revision 0, no XSDT.
    std::vector<uint8_t> r(20, 0);
    std::memcpy(&r[0], "RSD PTR ", 8);
    std::memcpy(&r[9], kOemId, 6);
    put(r, 16, rsdt_addr, 4);
    return r;
}

PcAcpiBlobs build_pc_acpi(const PcAcpiConfig& cfg) {
    validate_pc_acpi_config(cfg);
    PcAcpiBlobs out;
    TableLoader loader;
    const char* tables = acpi::kTablesFile;
    const char* rsdp = acpi::kRsdpFile;
    // QEMU's order (acpi-build.c acpi_build): RSDP into the F-segment, the tables blob high.
    loader.allocate(rsdp, 16, LoaderZone::FSeg);
    loader.allocate(tables, 64, LoaderZone::High);

    auto add = [&](std::vector<uint8_t> t, const char* sig) {
        uint32_t off = uint32_t(out.tables.size());
        out.layout.push_back({sig, off, uint32_t(t.size())});
        out.tables.insert(out.tables.end(), t.begin(), t.end());
        return off;
    };
    auto checksum = [&](uint32_t off) {
        uint32_t len = uint32_t(out.tables.size()) - off;
        loader.add_checksum(tables, off + acpi::kChecksumOffset, off, len);
    };

    // The FACS must be 64-byte aligned (ACPI 1.0b §5.2.6): it goes first in a 64-aligned blob.
    uint32_t facs = add(build_facs(), "FACS");
    uint32_t dsdt = add(build_dsdt(cfg), "DSDT");
    checksum(dsdt);
    // The pointers hold the offsets inside the blob; ADD_POINTER adds the blob's address.
    uint32_t fadt = add(build_fadt(cfg, facs, dsdt), "FACP");
    loader.add_pointer(tables, fadt + kFadtFirmwareCtrl, 4, tables);
    loader.add_pointer(tables, fadt + kFadtDsdt, 4, tables);
    checksum(fadt);
    std::vector<uint32_t> rsdt_entries{fadt};
    uint32_t madt = add(build_madt(cfg), "APIC");
    checksum(madt);
    rsdt_entries.push_back(madt);
    if (cfg.hpet) {
        uint32_t hpet = add(build_hpet_table(), "HPET");
        checksum(hpet);
        rsdt_entries.push_back(hpet);
    }
    uint32_t waet = add(build_waet(), "WAET");
    checksum(waet);
    rsdt_entries.push_back(waet);
    uint32_t rsdt = add(build_rsdt(rsdt_entries), "RSDT");
    for (size_t i = 0; i < rsdt_entries.size(); i++)
        loader.add_pointer(tables, uint32_t(rsdt + acpi::kHeaderSize + 4 * i), 4, tables);
    checksum(rsdt);

    out.rsdp = build_rsdp(rsdt);
    loader.add_pointer(rsdp, 16, 4, tables);
    loader.add_checksum(rsdp, 8, 0, uint32_t(out.rsdp.size()));

    size_t padded = (out.tables.size() + acpi::kTablesBlobAlign - 1) / acpi::kTablesBlobAlign *
                    acpi::kTablesBlobAlign;
    out.tables.resize(padded, 0);
    out.loader = loader.blob(acpi::kLoaderBlobAlign);
    return out;
}

} // namespace hvm
