// RFC 3339 parsing and docker's wording of ages, with a fixed "now".

#include "common/time_text.h"

#include <gtest/gtest.h>

namespace common {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

WallTime At(int y, unsigned m, unsigned d, int hh = 0, int mm = 0, int ss = 0) {
  return time_point_cast<system_clock::duration>(sys_days(year(y) / month(m) / day(d)) + hours(hh) +
                                                 minutes(mm) + seconds(ss));
}

TEST(ParseRfc3339Test, AcceptsUtcFractionsAndOffsets) {
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20Z"), At(2023, 11, 14, 22, 13, 20));
  EXPECT_EQ(ParseRfc3339("2023-11-14t22:13:20z"), At(2023, 11, 14, 22, 13, 20));
  EXPECT_EQ(ParseRfc3339("2023-11-14 22:13:20Z"), At(2023, 11, 14, 22, 13, 20));
  EXPECT_EQ(ParseRfc3339("2023-11-14T23:43:20+01:30"), At(2023, 11, 14, 22, 13, 20));
  EXPECT_EQ(ParseRfc3339("2023-11-14T20:13:20-02:00"), At(2023, 11, 14, 22, 13, 20));
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20.5Z"), At(2023, 11, 14, 22, 13, 20) + 500ms);
  // Go writes nanoseconds; digits past them are dropped.
  EXPECT_EQ(ParseRfc3339("2023-11-14T22:13:20.123456789123Z"),
            At(2023, 11, 14, 22, 13, 20) + duration_cast<system_clock::duration>(123456789ns));
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:00:00Z"), WallTime{});
  EXPECT_EQ(ParseRfc3339("2024-02-29T00:00:00Z"), At(2024, 2, 29));
}

TEST(ParseRfc3339Test, RefusesWhatIsNotOne) {
  for (const char* bad :
       {"", "2023-11-14", "2023-11-14T22:13:20", "2023-11-14T22:13Z", "2023-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z", "2023-11-14T24:00:00Z", "2023-11-14T22:60:00Z",
        "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20Zjunk", "2023-11-14T22:13:20+0100",
        "23-11-14T22:13:20Z", "yesterday", "0001-01-01T00:00:00 +0000 UTC"})
    EXPECT_EQ(ParseRfc3339(bad), std::nullopt) << bad;
}

TEST(HumanDurationTest, UsesDockersThresholds) {
  struct Case {
    system_clock::duration d;
    const char* want;
  } cases[] = {
      {-5s, "Less than a second"},
      {0s, "Less than a second"},
      {999ms, "Less than a second"},
      {1s, "1 second"},
      {59s, "59 seconds"},
      {60s, "About a minute"},
      {119s, "About a minute"},
      {2min, "2 minutes"},
      {59min, "59 minutes"},
      {60min, "About an hour"},
      {89min, "About an hour"},  // hours are rounded
      {90min, "2 hours"},
      {47h, "47 hours"},
      {48h, "2 days"},
      {13 * 24h + 23h, "13 days"},
      {14 * 24h, "2 weeks"},
      {21 * 24h, "3 weeks"},
      {59 * 24h, "8 weeks"},
      {60 * 24h, "2 months"},
      {729 * 24h, "24 months"},
      {730 * 24h, "2 years"},
      {3650 * 24h, "10 years"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(HumanDuration(c.d), c.want) << duration_cast<seconds>(c.d).count() << " s";
}

TEST(TimeAgoTest, CountsFromTheInjectedNow) {
  const WallTime created = At(2023, 11, 14, 22, 13, 20);
  EXPECT_EQ(TimeAgo(created, created + 21 * 24h), "3 weeks ago");
  EXPECT_EQ(TimeAgo(created, created + 3h), "3 hours ago");
  EXPECT_EQ(TimeAgo(created, created - 1h), "Less than a second ago");  // clock skew
  EXPECT_EQ(TimeAgo(std::nullopt, created), "N/A");
}

TEST(FormatUtcTest, PrintsLikeGoTimeString) {
  EXPECT_EQ(FormatUtc(At(2023, 11, 14, 22, 13, 20) + 999ms), "2023-11-14 22:13:20 +0000 UTC");
  EXPECT_EQ(FormatUtc(WallTime{}), "1970-01-01 00:00:00 +0000 UTC");
  EXPECT_EQ(FormatUtc(std::nullopt), "N/A");
}

TEST(ParseDurationTest, WholeUnitsAndSums) {
  EXPECT_EQ(ParseDuration("90s"), 90s);
  EXPECT_EQ(ParseDuration("15m"), 15min);
  EXPECT_EQ(ParseDuration("1h30m"), 90min);
  EXPECT_EQ(ParseDuration("2d"), 48h);
  EXPECT_EQ(ParseDuration("0s"), 0s);
  for (const char* bad : {"", "15", "m", "1.5h", "-1m", "1w", "1h 30m", "99999999999999999d"})
    EXPECT_FALSE(ParseDuration(bad)) << bad;
}

}  // namespace
}  // namespace common
