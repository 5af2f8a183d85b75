// Proleptic Gregorian calendar <-> seconds since 1970-01-01 00:00:00, for the RTC's registers.
// Total over the whole int64 day range (no libc time_t/timezone involvement, no UB for any
// input), so hostile register contents can be converted without checks.
#pragma once
#include <cstdint>

namespace hvm {

struct CivilTime {
    int64_t year;
    unsigned month;   // 1..12
    unsigned day;     // 1..31
    unsigned hour;    // 0..23
    unsigned minute;  // 0..59
    unsigned second;  // 0..59
    unsigned weekday; // 0 = Sunday
};

CivilTime civil_from_seconds(int64_t seconds);

// Any field values are accepted and normalised the way mktime does: month 0 is December of the
// year before, day 0 the last day of the previous month, hour 25 one o'clock the next day.
int64_t seconds_from_civil(int64_t year, int64_t month, int64_t day, int64_t hour, int64_t minute,
                           int64_t second);

} // namespace hvm
