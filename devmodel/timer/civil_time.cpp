#include "devmodel/timer/civil_time.hpp"

namespace hvm {

namespace {

constexpr int64_t kSecondsPerDay = 86400;
constexpr int64_t kDaysPer400Years = 146097;
// Days from 0000-03-01 (start of the shifted year used below) to 1970-01-01.
constexpr int64_t kEpochShift = 719468;

int64_t floor_div(int64_t a, int64_t b) {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// Years are counted from March so that the leap day is the last day of a year; 400 Gregorian
// years are exactly 146097 days.
int64_t days_from_civil(int64_t year, unsigned month, unsigned day) {
    int64_t y = year - (month <= 2 ? 1 : 0);
    int64_t era = floor_div(y, 400);
    int64_t year_of_era = y - era * 400;                       // 0..399
    int64_t shifted_month = month > 2 ? month - 3 : month + 9; // March = 0
    int64_t day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * kDaysPer400Years + day_of_era - kEpochShift;
}

} // namespace

CivilTime civil_from_seconds(int64_t seconds) {
    int64_t days = floor_div(seconds, kSecondsPerDay);
    int64_t of_day = seconds - days * kSecondsPerDay;
    CivilTime t{};
    t.hour = unsigned(of_day / 3600);
    t.minute = unsigned(of_day / 60 % 60);
    t.second = unsigned(of_day % 60);
    t.weekday = unsigned(days - floor_div(days + 4, 7) * 7 + 4) % 7; // 1970-01-01 was a Thursday

    int64_t z = days + kEpochShift;
    int64_t era = floor_div(z, kDaysPer400Years);
    int64_t day_of_era = z - era * kDaysPer400Years; // 0..146096
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t shifted_month = (5 * day_of_year + 2) / 153;
    t.day = unsigned(day_of_year - (153 * shifted_month + 2) / 5 + 1);
    t.month = unsigned(shifted_month < 10 ? shifted_month + 3 : shifted_month - 9);
    t.year = year_of_era + era * 400 + (t.month <= 2 ? 1 : 0);
    return t;
}

int64_t seconds_from_civil(int64_t year, int64_t month, int64_t day, int64_t hour, int64_t minute,
                           int64_t second) {
    int64_t months = year * 12 + (month - 1);
    int64_t y = floor_div(months, 12);
    unsigned m = unsigned(months - y * 12 + 1);
    int64_t days = days_from_civil(y, m, 1) + (day - 1);
    return days * kSecondsPerDay + hour * 3600 + minute * 60 + second;
}

} // namespace hvm
