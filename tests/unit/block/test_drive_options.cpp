#include <doctest/doctest.h>

#include "base/error.hpp"
#include "block/drive_options.hpp"

using namespace hvm::block;

TEST_CASE("drive: a full option string") {
    auto d = parse_drive_option(
        "file=/img/a,,b.qcow2,format=qcow2,if=ide,bus=1,unit=0,media=disk,cache=none,snapshot=on");
    CHECK(d.file == "/img/a,b.qcow2");
    CHECK(d.format == "qcow2");
    CHECK(d.interface == DriveInterface::Ide);
    CHECK(d.bus == 1);
    CHECK(d.unit == 0);
    CHECK_FALSE(d.index.has_value());
    CHECK(d.media == DriveMedia::Disk);
    CHECK(d.cache == CacheMode::none());
    CHECK(d.cache_name == "none");
    CHECK(d.snapshot);
    CHECK_FALSE(d.read_only);
    auto o = d.open_options();
    CHECK(o.snapshot);
    CHECK(o.cache.direct);
}

TEST_CASE("drive: defaults, cdrom implies read-only, empty cdrom allowed") {
    auto d = parse_drive_option("file=disk.img");
    CHECK(d.format.empty());
    CHECK(d.cache == CacheMode::writeback_mode());
    CHECK(d.media == DriveMedia::Disk);
    auto c = parse_drive_option("media=cdrom,index=2");
    CHECK(c.read_only);
    CHECK(c.file.empty());
    CHECK(c.index == 2);
    auto r = parse_drive_option("file=x.iso,media=cdrom,readonly=on,snapshot=on");
    CHECK(r.read_only);
    CHECK_FALSE(r.open_options(true).snapshot); // nothing to protect on a read-only drive
    CHECK(parse_drive_option("file=a,cache=writethrough").cache == CacheMode::writethrough());
    CHECK(parse_drive_option("file=a,cache=directsync").cache == CacheMode::directsync());
    CHECK(parse_drive_option("file=a,cache=unsafe").cache == CacheMode::unsafe());
    CHECK(parse_drive_option("file=a,snapshot").snapshot); // bare key = on
    CHECK(parse_drive_option("file=a,snapshot=off,if=none").interface == DriveInterface::None);
    CHECK(parse_drive_option("file=a").open_options(true).snapshot); // global -snapshot
}

TEST_CASE("drive: bad input is a one-line user error") {
    struct Bad {
        const char* text;
        const char* message;
    };
    const Bad bad[] = {
        {"file=a,format=vmdk", "Unknown driver 'vmdk'"},
        {"file=a,if=scsi", "unsupported bus type 'scsi'"},
        {"file=a,media=tape", "'tape' invalid media"},
        {"file=a,cache=sometimes", "invalid cache option"},
        {"file=a,readonly=maybe", "expects 'on' or 'off'"},
        {"file=a,index=-1", "expects a non-negative number"},
        {"file=a,index=1x", "expects a non-negative number"},
        {"file=a,index=99999999999", "expects a non-negative number"},
        {"file=a,bus=2", "bus 2 too big"},
        {"file=a,unit=2", "unit 2 too big"},
        {"file=a,index=4", "index 4 too big"},
        {"file=a,index=1,bus=0", "index cannot be used with bus and unit"},
        {"file=a,colour=blue", "Invalid parameter 'colour'"},
        {"format=raw", "needs file="},
        {"file=", "needs file="},
        {"file=a,readonly=on", "readonly=on is not supported by IDE hard disks"},
        {"file=a.iso,media=cdrom,readonly=off", "cannot be read-write"},
        {"=x", "empty parameter name"},
    };
    for (const Bad& b : bad) {
        CAPTURE(b.text);
        CHECK_THROWS_WITH_AS(parse_drive_option(b.text), doctest::Contains(b.message),
                             hvm::UserError);
        try {
            parse_drive_option(b.text);
        } catch (const hvm::UserError& e) {
            CHECK(std::string(e.what()).find('\n') == std::string::npos);
        }
    }
    // if=none drives are not IDE slots: no range limits.
    CHECK(parse_drive_option("file=a,if=none,readonly=on").read_only);
}

TEST_CASE("drive: IDE slot assignment follows QEMU (index = bus*2 + unit, then first free)") {
    std::vector<DriveOptions> drives = {
        parse_drive_option("file=a"),
        parse_drive_option("file=b,index=0"),
        parse_drive_option("media=cdrom,index=2"),
        parse_drive_option("file=c,bus=1"),
    };
    assign_ide_slots(drives);
    CHECK(drives[1].bus == 0);
    CHECK(drives[1].unit == 0);
    CHECK(drives[2].bus == 1);
    CHECK(drives[2].unit == 0);
    CHECK(drives[0].bus == 0); // first free slot after the explicit ones
    CHECK(drives[0].unit == 1);
    CHECK(drives[3].bus == 1);
    CHECK(drives[3].unit == 1);

    std::vector<DriveOptions> dup = {parse_drive_option("file=a,index=1"),
                                     parse_drive_option("file=b,bus=0,unit=1")};
    CHECK_THROWS_WITH_AS(assign_ide_slots(dup), doctest::Contains("bus=0, unit=1 (index=1) exists"),
                         hvm::UserError);
    std::vector<DriveOptions> many(5, parse_drive_option("file=a"));
    CHECK_THROWS_WITH_AS(assign_ide_slots(many), doctest::Contains("too many IDE drives"),
                         hvm::UserError);
    std::vector<DriveOptions> full_bus = {parse_drive_option("file=a,bus=1"),
                                          parse_drive_option("file=b,bus=1"),
                                          parse_drive_option("file=c,bus=1")};
    CHECK_THROWS_AS(assign_ide_slots(full_bus), hvm::UserError);
}
