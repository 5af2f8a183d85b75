// The `pc` DSDT, generated in the order and shape QEMU 7.2's hw/i386/acpi-build.c build_dsdt()
// produces for an i440FX machine (shared/reference/pc-platform.md §2.3), so that the disassembly
// of hvm's table matches QEMU's line for line. Every port or MMIO address the AML touches is one
// hvm emulates: 0x402 (debugcon), 0xAE00 (PCI hotplug), 0xAF00 (CPU hotplug), PIIX3 config
// 0x60-0x63 (PIRQ routing), 0xFED00000 (HPET), 0x510 (fw_cfg).
#include <cstdio>
#include <string>

#include "firmware/acpi/pc_acpi.hpp"

namespace hvm {

using namespace aml;

namespace {

constexpr const char* kCpuLock = "\\_SB.PCI0.PRES.CPLK";
constexpr const char* kCpuSel = "\\_SB.PCI0.PRES.CSEL";
constexpr const char* kCpuEnabled = "\\_SB.PCI0.PRES.CPEN";
constexpr const char* kCpuInsert = "\\_SB.PCI0.PRES.CINS";
constexpr const char* kCpuRemove = "\\_SB.PCI0.PRES.CRMV";
constexpr const char* kCpuEject = "\\_SB.PCI0.PRES.CEJ0";
constexpr const char* kCpuCmd = "\\_SB.PCI0.PRES.CCMD";
constexpr const char* kCpuData = "\\_SB.PCI0.PRES.CDAT";
// QEMU's CPU scan method handles at most this many hot-added CPUs per pass.
constexpr uint8_t kCpuScanMaxPerPass = 255;
// Interrupt Link devices (PIIX3 PIRQA-D) may use these ISA IRQs (QEMU acpi-build.c).
constexpr uint32_t kLinkIrqs[] = {5, 10, 11};
constexpr uint32_t kSciIrqs[] = {acpi::kSciIrq};
// PCI Firmware spec _DSM for device labelling (acpi-index).
constexpr const char* kDsmLabelUuid = "e5c937d0-3553-4d7a-9117-ea4d19c3434d";

std::string fmt(const char* f, unsigned v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

Aml name_ref(std::string_view path) {
    return name_string(path);
}

// \DBUG(x): writes x as hex text to the debug port (QEMU's debugcon at 0x402).
Aml build_debug() {
    Aml body = seq({
        to_hex_string(arg(0), local(0)),
        to_buffer(local(0), local(0)),
        subtract(size_of(local(0)), one(), local(1)),
        store(zero(), local(2)),
        while_(lless(local(2), local(1)),
               seq({store(deref_of(index(local(0), local(2))), name_ref("DBGB")),
                    increment(local(2))})),
        store(byte_const(0x0A), name_ref("DBGB")),
    });
    return scope("\\", seq({operation_region("DBG", RegionSpace::SystemIO,
                                             integer(acpi::kDebugconPort), one()),
                            field("DBG", FieldAccess::Byte, FieldLock::NoLock,
                                  FieldUpdate::Preserve, named_field("DBGB", 8)),
                            method("DBUG", 1, false, body)}));
}

// QEMU's PIIX PCI hotplug registers at 0xAE00 (docs/specs/acpi_pci_hotplug.rst) and the helper
// methods the slot devices call.
Aml build_pci_hotplug_regs() {
    auto dword_field = [](const char* region, Aml fields) {
        return field(region, FieldAccess::DWord, FieldLock::NoLock, FieldUpdate::WriteAsZeros,
                     fields);
    };
    Aml pcej = seq({acquire(name_ref("BLCK"), 0xFFFF), store(arg(0), name_ref("BNUM")),
                    store(shift_left(one(), arg(1)), name_ref("B0EJ")), release(name_ref("BLCK")),
                    return_(zero())});
    Aml aidx =
        seq({acquire(name_ref("BLCK"), 0xFFFF), store(arg(0), name_ref("BNUM")),
             store(shift_left(one(), arg(1)), name_ref("PIDX")), store(name_ref("PIDX"), local(0)),
             release(name_ref("BLCK")), return_(local(0))});
    Aml call_aidx = call("AIDX", {deref_of(index(arg(4), zero())), deref_of(index(arg(4), one()))});
    uint8_t zero_byte[] = {0};
    Aml pdsm = seq({
        if_(lequal(arg(2), zero()),
            seq({store(buffer(1, zero_byte), local(0)), store(zero(), local(1)),
                 if_(lnot_equal(arg(0), to_uuid(kDsmLabelUuid)), return_(local(0))),
                 if_(lless(arg(1), byte_const(2)), return_(local(0))), store(call_aidx, local(2)),
                 if_(lnot(or_(lequal(local(2), zero()), lequal(local(2), dword_const(0xFFFFFFFF)))),
                     seq({or_(local(1), one(), local(1)),
                          or_(local(1), shift_left(one(), byte_const(7)), local(1))})),
                 store(local(1), index(local(0), zero())), return_(local(0))})),
        if_(lequal(arg(2), byte_const(7)),
            seq({store(call_aidx, local(2)), store(package(2), local(0)),
                 if_(lnot(lor(lequal(local(2), zero()), lequal(local(2), dword_const(0xFFFFFFFF)))),
                     seq({store(local(2), index(local(0), zero())),
                          store(string(""), index(local(0), one()))})),
                 return_(local(0))})),
    });
    return scope("_SB.PCI0",
                 seq({operation_region("PCST", RegionSpace::SystemIO,
                                       word_const(acpi::kPciHotplugBase), byte_const(0x08)),
                      dword_field("PCST", seq({named_field("PCIU", 32), named_field("PCID", 32)})),
                      operation_region("SEJ", RegionSpace::SystemIO,
                                       word_const(acpi::kPciHotplugBase + 8), byte_const(0x04)),
                      dword_field("SEJ", named_field("B0EJ", 32)),
                      operation_region("BNMR", RegionSpace::SystemIO,
                                       word_const(acpi::kPciHotplugBase + 0x10), byte_const(0x08)),
                      dword_field("BNMR", seq({named_field("BNUM", 32), named_field("PIDX", 32)})),
                      mutex("BLCK", 0), method("PCEJ", 2, false, pcej),
                      method("AIDX", 2, false, aidx), method("PDSM", 5, true, pdsm)}));
}

Aml prt_entry(const char* link) {
    return package(4, seq({zero(), zero(), name_ref(link), zero()}));
}

// _PRT as a loop over 128 (slot, pin) pairs: link = (slot + pin) & 3 -> LNKD/A/B/C, with slot 1
// INTA (the PIIX4 PM function) on LNKS, the SCI.
Aml build_prt() {
    Aml pin = local(1), slot = local(2), lnk = local(3), route = local(4), res = local(0);
    auto route_if = [&](const char* link, uint64_t idx) {
        return if_(lequal(lnk, integer(idx)), store(prt_entry(link), route));
    };
    Aml loop = seq({
        store(shift_right(pin, byte_const(2)), slot),
        store(and_(add(pin, slot), byte_const(3)), lnk),
        route_if("LNKD", 0),
        if_(lequal(lnk, one()),
            seq({if_(lequal(pin, byte_const(4)), store(prt_entry("LNKS"), route)),
                 else_(store(prt_entry("LNKA"), route))})),
        route_if("LNKB", 2),
        route_if("LNKC", 3),
        store(or_(shift_left(slot, byte_const(16)), word_const(0xFFFF)), index(route, zero())),
        store(and_(pin, byte_const(3)), index(route, one())),
        store(route, index(res, pin)),
        increment(pin),
    });
    return method("_PRT", 0, false,
                  seq({store(package(128), res), store(zero(), pin),
                       while_(lless(pin, byte_const(128)), loop), return_(res)}));
}

Aml link_device(unsigned i) {
    std::string prq = fmt("PRQ%u", i);
    return device(
        std::string("LNK") + char('A' + i),
        seq({name("_HID", eisa_id("PNP0C0F")), name("_UID", integer(i)),
             name("_PRS", resource_template(interrupt(true, IrqTrigger::Level,
                                                      IrqPolarity::ActiveHigh, true, kLinkIrqs))),
             method("_STA", 0, false, return_(call("IQST", {name_ref(prq)}))),
             method("_DIS", 0, false, or_(name_ref(prq), byte_const(0x80), name_ref(prq))),
             method("_CRS", 0, false, return_(call("IQCR", {name_ref(prq)}))),
             method("_SRS", 1, false,
                    seq({create_dword_field(arg(0), byte_const(5), "PRRI"),
                         store(name_ref("PRRI"), name_ref(prq))}))}));
}

Aml build_pci_irq_links() {
    uint32_t zero_irq[] = {0};
    Aml iqst = seq({if_(and_(byte_const(0x80), arg(0)), return_(byte_const(0x09))),
                    return_(byte_const(0x0B))});
    Aml iqcr =
        seq({name("PRR0", resource_template(interrupt(true, IrqTrigger::Level,
                                                      IrqPolarity::ActiveHigh, true, zero_irq))),
             create_dword_field(name_ref("PRR0"), byte_const(5), "PRRI"),
             if_(lless(arg(0), byte_const(0x80)), store(arg(0), name_ref("PRRI"))),
             return_(name_ref("PRR0"))});
    Aml body = seq({scope("PCI0", build_prt()), method("IQST", 1, false, iqst),
                    method("IQCR", 1, true, iqcr)});
    for (unsigned i = 0; i < 4; i++) body += link_device(i);
    body += device(
        "LNKS",
        seq({name("_HID", eisa_id("PNP0C0F")), name("_UID", byte_const(4)),
             name("_PRS", resource_template(interrupt(true, IrqTrigger::Level,
                                                      IrqPolarity::ActiveHigh, true, kSciIrqs))),
             method("_STA", 0, false, return_(byte_const(0x0B))), method("_DIS", 0, false, {}),
             method("_CRS", 0, false, return_(name_ref("_PRS"))), method("_SRS", 1, false, {})}));
    return scope("_SB", body);
}

// \_SB.HPET: present only if the registers at 0xFED00000 read back a sane vendor and period.
Aml build_hpet_device() {
    Aml sta = seq({
        store(name_ref("VEND"), local(0)),
        store(name_ref("PRD"), local(1)),
        shift_right(local(0), byte_const(0x10), local(0)),
        if_(lor(lequal(local(0), zero()), lequal(local(0), word_const(0xFFFF))), return_(zero())),
        // The period must be non-zero and at most 100 ns (HPET spec 1.0a §2.3.4).
        if_(lor(lequal(local(1), zero()), lgreater(local(1), dword_const(100000000))),
            return_(zero())),
        return_(byte_const(0x0F)),
    });
    return scope(
        "_SB",
        device("HPET",
               seq({name("_HID", eisa_id("PNP0103")), name("_UID", zero()),
                    operation_region("HPTM", RegionSpace::SystemMemory,
                                     dword_const(acpi::kHpetAddr), word_const(acpi::kHpetLength)),
                    field("HPTM", FieldAccess::DWord, FieldLock::Lock, FieldUpdate::Preserve,
                          seq({named_field("VEND", 32), named_field("PRD", 32)})),
                    method("_STA", 0, false, sta),
                    name("_CRS", resource_template(memory32_fixed(false, acpi::kHpetAddr,
                                                                  acpi::kHpetLength)))})));
}

// QEMU's "modern" CPU hotplug interface at 0xAF00 (docs/specs/acpi_cpu_hotplug.rst) and the
// processor container with one Processor() per possible CPU.
Aml build_cpus(const PcAcpiConfig& cfg) {
    const unsigned n = unsigned(cfg.apic_ids.size());
    Aml pres = device(
        "\\_SB.PCI0.PRES",
        seq({name("_HID", eisa_id("PNP0A06")), name("_UID", string("CPU Hotplug resources")),
             mutex("CPLK", 0),
             name("_CRS", resource_template(io_port(acpi::kCpuHotplugBase, acpi::kCpuHotplugBase, 1,
                                                    acpi::kCpuHotplugLength))),
             operation_region("PRST", RegionSpace::SystemIO, word_const(acpi::kCpuHotplugBase),
                              byte_const(acpi::kCpuHotplugLength)),
             field("PRST", FieldAccess::Byte, FieldLock::NoLock, FieldUpdate::WriteAsZeros,
                   seq({reserved_field(32), named_field("CPEN", 1), named_field("CINS", 1),
                        named_field("CRMV", 1), named_field("CEJ0", 1), named_field("CEJF", 1),
                        reserved_field(3), named_field("CCMD", 8)})),
             field("PRST", FieldAccess::DWord, FieldLock::NoLock, FieldUpdate::Preserve,
                   seq({named_field("CSEL", 32), reserved_field(32), named_field("CDAT", 32)})),
             method("_INI", 0, true, store(zero(), name_ref("CSEL")))}));

    auto cpu_name = [](unsigned i) { return fmt("C%03X", i); };
    Aml ctfy;
    for (unsigned i = 0; i < n; i++)
        ctfy += if_(lequal(arg(0), integer(i)), notify(name_ref(cpu_name(i)), arg(1)));
    Aml csta = seq({acquire(name_ref(kCpuLock), 0xFFFF), store(arg(0), name_ref(kCpuSel)),
                    store(zero(), local(0)),
                    if_(lequal(name_ref(kCpuEnabled), one()), store(byte_const(0x0F), local(0))),
                    release(name_ref(kCpuLock)), return_(local(0))});
    Aml cej0 = seq({acquire(name_ref(kCpuLock), 0xFFFF), store(arg(0), name_ref(kCpuSel)),
                    store(one(), name_ref(kCpuEject)), release(name_ref(kCpuLock))});
    Aml scan_inner = seq({
        store(zero(), local(0)),
        store(local(3), name_ref(kCpuSel)),
        store(zero(), name_ref(kCpuCmd)),
        if_(lless(name_ref(kCpuData), local(3)), break_()),
        if_(lequal(local(1), byte_const(kCpuScanMaxPerPass)),
            seq({store(one(), local(4)), break_()})),
        store(name_ref(kCpuData), local(3)),
        if_(lequal(name_ref(kCpuInsert), one()),
            seq({store(local(3), index(name_ref("CNEW"), local(1))), increment(local(1)),
                 store(one(), local(0))})),
        else_(if_(lequal(name_ref(kCpuRemove), one()),
                  seq({call("CTFY", {local(3), byte_const(3)}), store(one(), name_ref(kCpuRemove)),
                       store(one(), local(0))}))),
        increment(local(3)),
    });
    Aml scan_notify = seq({
        store(deref_of(index(name_ref("CNEW"), local(2))), local(3)),
        call("CTFY", {local(3), one()}),
        store(local(3), debug_obj()),
        store(local(3), name_ref(kCpuSel)),
        store(one(), name_ref(kCpuInsert)),
        increment(local(2)),
    });
    Aml cscn = seq({
        acquire(name_ref(kCpuLock), 0xFFFF),
        name("CNEW", package(kCpuScanMaxPerPass)),
        store(zero(), local(3)),
        store(one(), local(4)),
        while_(lequal(local(4), one()),
               seq({store(zero(), local(4)), store(one(), local(0)), store(zero(), local(1)),
                    while_(land(lequal(local(0), one()), lless(local(3), integer(n))), scan_inner),
                    store(zero(), local(2)), while_(lless(local(2), local(1)), scan_notify)})),
        release(name_ref(kCpuLock)),
    });
    Aml cost = seq({acquire(name_ref(kCpuLock), 0xFFFF), store(arg(0), name_ref(kCpuSel)),
                    store(one(), name_ref(kCpuCmd)), store(arg(1), name_ref(kCpuData)),
                    store(byte_const(2), name_ref(kCpuCmd)), store(arg(2), name_ref(kCpuData)),
                    release(name_ref(kCpuLock))});
    Aml cpus_body = seq({name("_HID", string("ACPI0010")), name("_CID", eisa_id("PNP0A05")),
                         method("CTFY", 2, false, ctfy), method("CSTA", 1, true, csta),
                         method("CEJ0", 1, true, cej0), method("CSCN", 0, true, cscn),
                         method("COST", 4, true, cost)});
    for (unsigned i = 0; i < n; i++) {
        // _MAT: the processor's MADT Local APIC entry, always marked enabled (QEMU
        // madt_cpu(..., force_enabled=true)); _STA tells present from absent.
        uint8_t mat[8] = {0, 8, uint8_t(i), uint8_t(cfg.apic_ids[i]), 1, 0, 0, 0};
        Aml body = seq({method("_STA", 0, true, return_(call("CSTA", {integer(i)}))),
                        name("_MAT", buffer(mat))});
        if (i != 0) body += method("_EJ0", 1, false, call("CEJ0", {integer(i)}));
        body += method("_OST", 3, true, call("COST", {integer(i), arg(0), arg(1), arg(2)}));
        cpus_body += processor(cpu_name(i), uint8_t(i), 0, 0, body);
    }
    return seq({scope("_SB", seq({pres, device("\\_SB.CPUS", cpus_body)})),
                method("\\_GPE._E02", 0, false, call("\\_SB.CPUS.CSCN"))});
}

Aml build_pci0_crs(const PcAcpiConfig& cfg) {
    uint64_t hole64_start =
        (acpi::kRamAbove4gBase + cfg.ram_above_4g + (1ull << 30) - 1) & ~((1ull << 30) - 1);
    Aml crs = seq({word_bus_number(0, 0xFF), io_port(0xCF8, 0xCF8, 1, 8), word_io(0, 0xCF7),
                   word_io(0xD00, 0xFFFF), dword_memory(true, 0xA0000, 0xBFFFF),
                   dword_memory(false, uint32_t(cfg.ram_below_4g), acpi::kPciHoleEnd)});
    if (cfg.pci_hole64_size)
        crs += qword_memory(true, hole64_start, hole64_start + cfg.pci_hole64_size - 1);
    auto resource_dev = [](const char* dev, const char* uid, uint16_t base, uint8_t len) {
        return device(dev, seq({name("_HID", string("PNP0A06")), name("_UID", string(uid)),
                                name("_STA", byte_const(0x0B)),
                                name("_CRS", resource_template(io_port(base, base, 1, len)))}));
    };
    return scope("\\_SB.PCI0",
                 seq({name("_CRS", resource_template(crs)),
                      resource_dev("GPE0", "GPE0 resources", acpi::kGpe0Base, acpi::kGpe0Length),
                      resource_dev("PHPR", "PCI Hotplug resources", acpi::kPciHotplugBase,
                                   acpi::kPciHotplugLength)}));
}

Aml build_sleep_states(const PcAcpiConfig& cfg) {
    // Package {PM1a_CNT.SLP_TYP, PM1b_CNT.SLP_TYP, reserved, reserved}; the PIIX4 PM decodes
    // SLP_TYP 1 as S3, 2 as S4 and 0 as S5 (QEMU piix4 s4_val = 2).
    auto state = [](const char* n, uint64_t typ) {
        return name(n, package(4, seq({integer(typ), integer(typ), zero(), zero()})));
    };
    Aml body;
    if (cfg.s3) body += state("_S3", 1);
    if (cfg.s4) body += state("_S4", 2);
    body += state("_S5", 0);
    return scope("\\", body);
}

Aml build_fw_cfg_device() {
    return scope(
        "\\_SB.PCI0",
        device("FWCF",
               seq({name("_HID", string("QEMU0002")), name("_STA", byte_const(0x0B)),
                    name("_CRS", resource_template(io_port(acpi::kFwCfgIoBase, acpi::kFwCfgIoBase,
                                                           1, acpi::kFwCfgIoLength)))})));
}

// The ISA devices behind the PIIX3 (00:01.0) and its PIRQ routing registers.
Aml build_isa(const PcAcpiConfig& cfg) {
    Aml out = seq({
        operation_region("P40C", RegionSpace::PciConfig, byte_const(0x60), byte_const(0x04)),
        scope("\\_SB",
              field("PCI0.S08.P40C", FieldAccess::Byte, FieldLock::NoLock, FieldUpdate::Preserve,
                    seq({named_field("PRQ0", 8), named_field("PRQ1", 8), named_field("PRQ2", 8),
                         named_field("PRQ3", 8)}))),
        device("KBD", seq({name("_HID", eisa_id("PNP0303")), name("_STA", byte_const(0x0F)),
                           name("_CRS", resource_template(
                                            seq({io_port(0x60, 0x60, 1, 1),
                                                 io_port(0x64, 0x64, 1, 1), irq_no_flags(1)})))})),
        device("MOU", seq({name("_HID", eisa_id("PNP0F13")), name("_STA", byte_const(0x0F)),
                           name("_CRS", resource_template(irq_no_flags(12)))})),
    });
    if (cfg.fdc) {
        // QEMU's default drive A: 2.88 MB type (CMOS type 5) with no media, as its _FDI reports
        // it (hw/block/fdc-isa.c fdc_isa_build_aml): drive 0, type 5, max cylinder 79, max
        // sector 48, max head 1, then the diskette parameter table bytes.
        static constexpr uint8_t kFdi[16] = {0, 5,    0x4F, 0x30, 1,    0xAF, 2,    0x25,
                                             2, 0x12, 0x1B, 0xFF, 0x6C, 0xF6, 0x0F, 0x08};
        Aml fdi;
        for (uint8_t v : kFdi) fdi += integer(v);
        // _FDE: drives 0-3 present/absent, then the tape field (2 = unknown).
        static constexpr uint8_t kFde[20] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                             0, 0, 0, 0, 0, 0, 2, 0, 0, 0};
        out +=
            device("FDC0",
                   seq({name("_HID", eisa_id("PNP0700")),
                        name("_CRS", resource_template(seq({io_port(0x3F2, 0x3F2, 0, 4),
                                                            io_port(0x3F7, 0x3F7, 0, 1),
                                                            irq_no_flags(6), dma_channel(2)}))),
                        device("FLPA", seq({name("_ADR", zero()), name("_FDI", package(16, fdi))})),
                        name("_FDE", buffer(kFde))}));
    }
    if (cfg.com1) {
        out += device("COM1", seq({name("_HID", eisa_id("PNP0501")), name("_UID", one()),
                                   name("_STA", byte_const(0x0F)),
                                   name("_CRS", resource_template(seq({io_port(0x3F8, 0x3F8, 0, 8),
                                                                       irq_no_flags(4)})))}));
    }
    out += device(
        "RTC",
        seq({name("_HID", eisa_id("PNP0B00")),
             name("_CRS", resource_template(seq({io_port(0x70, 0x70, 1, 8), irq_no_flags(8)})))}));
    return out;
}

// The bus-0 slot devices of QEMU's PIIX PCI hotplug (acpi-build.c build_append_pci_bus_devices),
// the DVNT/PCNT notifiers and \_GPE._E01.
Aml build_pci_slots(const PcAcpiConfig& cfg) {
    Aml pci0 = name("BSEL", zero());
    Aml dvnt;
    for (unsigned slot = 0; slot < 32; slot++) {
        std::string dev = fmt("S%02X", slot << 3);
        Aml dsm = seq({store(package(2, seq({name_ref("BSEL"), name_ref("ASUN")})), local(0)),
                       return_(call("PDSM", {arg(0), arg(1), arg(2), arg(3), local(0)}))});
        Aml body = seq({name("_ADR", integer(uint64_t(slot) << 16)), name("ASUN", integer(slot)),
                        method("_DSM", 4, true, dsm)});
        if (slot == 1) body += build_isa(cfg);
        bool hotplug = !(cfg.fixed_pci_slots & (1u << slot));
        if (hotplug) {
            body += name("_SUN", integer(slot));
            body += method("_EJ0", 1, false, call("PCEJ", {name_ref("BSEL"), name_ref("_SUN")}));
            dvnt += if_(and_(arg(0), integer(1ull << slot)), notify(name_ref(dev), arg(1)));
        }
        pci0 += device(dev, body);
    }
    pci0 += method("DVNT", 2, false, dvnt);
    pci0 += method("PCNT", 0, false,
                   seq({store(zero(), name_ref("BNUM")), call("DVNT", {name_ref("PCIU"), one()}),
                        call("DVNT", {name_ref("PCID"), byte_const(3)})}));
    Aml e01 = seq({acquire(name_ref("\\_SB.PCI0.BLCK"), 0xFFFF), call("\\_SB.PCI0.PCNT"),
                   release(name_ref("\\_SB.PCI0.BLCK"))});
    return seq({scope("\\_SB", scope("PCI0", pci0)), scope("_GPE", method("_E01", 0, false, e01))});
}

} // namespace

std::vector<uint8_t> build_dsdt(const PcAcpiConfig& cfg) {
    validate_pc_acpi_config(cfg);
    Aml body = seq({
        build_debug(),
        scope("_SB", device("PCI0", seq({name("_HID", eisa_id("PNP0A03")), name("_ADR", zero()),
                                         name("_UID", zero())}))),
        build_pci_hotplug_regs(),
        build_pci_irq_links(),
    });
    if (cfg.hpet) body += build_hpet_device();
    body += scope("_GPE", name("_HID", string("ACPI0006")));
    body += build_cpus(cfg);
    body += build_pci0_crs(cfg);
    body += build_sleep_states(cfg);
    body += build_fw_cfg_device();
    body += build_pci_slots(cfg);
    return acpi_table("DSDT", 1, body.bytes);
}

} // namespace hvm
