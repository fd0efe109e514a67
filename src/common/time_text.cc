#include "common/time_text.h"

#include <cmath>
#include <cstdint>
#include <cstdio>

namespace common {
namespace {

// Reads exactly `n` digits at `*pos`.
std::optional<int> Digits(std::string_view s, size_t* pos, size_t n) {
  if (*pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[*pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  return v;
}

bool Expect(std::string_view s, size_t* pos, std::string_view one_of) {
  if (*pos >= s.size() || one_of.find(s[*pos]) == std::string_view::npos) return false;
  ++*pos;
  return true;
}

std::string Plural(long long n, const char* unit) {
  return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
}

}  // namespace

std::optional<WallTime> ParseRfc3339(std::string_view s) {
  using namespace std::chrono;
  size_t pos = 0;
  auto year = Digits(s, &pos, 4);
  if (!year || !Expect(s, &pos, "-")) return std::nullopt;
  auto month = Digits(s, &pos, 2);
  if (!month || !Expect(s, &pos, "-")) return std::nullopt;
  auto day = Digits(s, &pos, 2);
  if (!day || !Expect(s, &pos, "Tt ")) return std::nullopt;
  auto hour = Digits(s, &pos, 2);
  if (!hour || !Expect(s, &pos, ":")) return std::nullopt;
  auto minute = Digits(s, &pos, 2);
  if (!minute || !Expect(s, &pos, ":")) return std::nullopt;
  auto second = Digits(s, &pos, 2);
  if (!second) return std::nullopt;
  const year_month_day ymd{std::chrono::year(*year), std::chrono::month(*month),
                           std::chrono::day(*day)};
  // 60: a leap second, which RFC 3339 allows.
  if (!ymd.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;

  nanoseconds frac{0};
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const size_t start = pos;
    int64_t ns = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (pos - start < 9) ns = ns * 10 + (s[pos] - '0');
      ++pos;
    }
    if (pos == start) return std::nullopt;
    for (size_t n = pos - start; n < 9; ++n) ns *= 10;
    frac = nanoseconds(ns);
  }
  minutes offset{0};
  if (Expect(s, &pos, "Zz")) {
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    const int sign = s[pos] == '-' ? -1 : 1;
    ++pos;
    auto oh = Digits(s, &pos, 2);
    if (!oh || !Expect(s, &pos, ":")) return std::nullopt;
    auto om = Digits(s, &pos, 2);
    if (!om || *oh > 23 || *om > 59) return std::nullopt;
    offset = minutes(sign * (*oh * 60 + *om));
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const auto t = sys_days(ymd) + hours(*hour) + minutes(*minute) + seconds(*second) + frac - offset;
  return time_point_cast<system_clock::duration>(t);
}

std::string HumanDuration(std::chrono::system_clock::duration d) {
  using namespace std::chrono;
  const long long secs = duration_cast<seconds>(d).count();
  if (secs < 1) return "Less than a second";
  if (secs == 1) return "1 second";
  if (secs < 60) return Plural(secs, "second");
  const long long mins = secs / 60;
  if (mins == 1) return "About a minute";
  if (mins < 60) return Plural(mins, "minute");
  // Hours are rounded, the longer units count whole days of them (as
  // go-units does).
  const double exact_hours = duration<double, std::ratio<3600>>(d).count();
  const long long hrs = std::llround(exact_hours);
  if (hrs == 1) return "About an hour";
  if (hrs < 48) return Plural(hrs, "hour");
  if (hrs < 24 * 7 * 2) return Plural(hrs / 24, "day");
  if (hrs < 24 * 30 * 2) return Plural(hrs / 24 / 7, "week");
  if (hrs < 24 * 365 * 2) return Plural(hrs / 24 / 30, "month");
  return Plural(static_cast<long long>(exact_hours) / 24 / 365, "year");
}

std::string TimeAgo(const std::optional<WallTime>& t, WallTime now) {
  if (!t) return "N/A";
  return HumanDuration(now - *t) + " ago";
}

std::string FormatUtc(const std::optional<WallTime>& t) {
  if (!t) return "N/A";
  using namespace std::chrono;
  const auto day = floor<days>(*t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{floor<seconds>(*t - day)};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02lld:%02lld:%02lld +0000 UTC",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<long long>(hms.hours().count()),
                static_cast<long long>(hms.minutes().count()),
                static_cast<long long>(hms.seconds().count()));
  return buf;
}

std::optional<std::chrono::seconds> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    int64_t n = 0;
    const size_t start = i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      if (n > (int64_t{1} << 40)) return std::nullopt;
      n = n * 10 + (text[i] - '0');
    }
    if (i == start || i == text.size()) return std::nullopt;
    int64_t unit = 0;
    switch (text[i++]) {
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      default:
        return std::nullopt;
    }
    total += n * unit;
    if (total > (int64_t{1} << 50)) return std::nullopt;
  }
  return std::chrono::seconds(total);
}

}  // namespace common
