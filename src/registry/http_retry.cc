#include "registry/http_retry.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <ctime>

namespace registry {
namespace {

using std::chrono::milliseconds;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Consumes a run of digits of length in [min, max]; -1 when absent.
int Number(std::string_view& s, size_t min, size_t max) {
  size_t n = 0;
  int v = 0;
  while (n < s.size() && n < max && s[n] >= '0' && s[n] <= '9') v = v * 10 + (s[n++] - '0');
  if (n < min) return -1;
  s.remove_prefix(n);
  return v;
}

bool Literal(std::string_view& s, std::string_view lit) {
  if (!s.starts_with(lit)) return false;
  s.remove_prefix(lit.size());
  return true;
}

int Month(std::string_view& s) {
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (size_t i = 0; i < kMonths.size(); ++i)
    if (Literal(s, kMonths[i])) return static_cast<int>(i);
  return -1;
}

bool Time(std::string_view& s, int& h, int& m, int& sec) {
  h = Number(s, 2, 2);
  if (h < 0 || !Literal(s, ":")) return false;
  m = Number(s, 2, 2);
  if (m < 0 || !Literal(s, ":")) return false;
  sec = Number(s, 2, 2);
  return sec >= 0 && h < 24 && m < 60 && sec <= 60;
}

bool SkipWeekday(std::string_view& s) {
  size_t i = 0;
  while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
  if (i < 3) return false;
  s.remove_prefix(i);
  return true;
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> ParseHttpDate(std::string_view value) {
  std::string_view s = Trim(value);
  if (!SkipWeekday(s)) return std::nullopt;
  int day = -1, month = -1, year = -1, h = 0, m = 0, sec = 0;
  if (Literal(s, ", ")) {
    day = Number(s, 1, 2);
    if (day < 0) return std::nullopt;
    if (Literal(s, " ")) {  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
      month = Month(s);
      if (month < 0 || !Literal(s, " ")) return std::nullopt;
      year = Number(s, 4, 4);
    } else if (Literal(s, "-")) {  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
      month = Month(s);
      if (month < 0 || !Literal(s, "-")) return std::nullopt;
      year = Number(s, 2, 2);
      if (year < 0) return std::nullopt;
      year += year < 70 ? 2000 : 1900;
    } else {
      return std::nullopt;
    }
    if (year < 0 || !Literal(s, " ") || !Time(s, h, m, sec) || !Literal(s, " GMT") || !s.empty())
      return std::nullopt;
  } else if (Literal(s, " ")) {  // asctime: "Sun Nov  6 08:49:37 1994"
    month = Month(s);
    if (month < 0 || !Literal(s, " ")) return std::nullopt;
    Literal(s, " ");
    day = Number(s, 1, 2);
    if (day < 0 || !Literal(s, " ") || !Time(s, h, m, sec) || !Literal(s, " ")) return std::nullopt;
    year = Number(s, 4, 4);
    if (year < 0 || !s.empty()) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (day < 1 || day > 31) return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month;
  tm.tm_mday = day;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

std::optional<milliseconds> ParseRetryAfter(std::string_view value,
                                            std::chrono::system_clock::time_point now) {
  std::string_view s = Trim(value);
  if (s.empty()) return std::nullopt;
  if (std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Anything past a day is as good as "a day"; avoids overflow.
    if (s.size() > 6) return milliseconds(86'400'000);
    int64_t secs = 0;
    for (char c : s) secs = secs * 10 + (c - '0');
    return milliseconds(std::min<int64_t>(secs, 86'400) * 1000);
  }
  auto when = ParseHttpDate(s);
  if (!when) return std::nullopt;
  if (*when <= now) return milliseconds(0);
  return std::chrono::duration_cast<milliseconds>(*when - now);
}

Backoff::Backoff(BackoffPolicy policy, common::Env* env, uint64_t seed)
    : policy_(policy), env_(env ? env : common::DefaultEnv()), rng_(seed) {}

milliseconds Backoff::Delay(int retry, std::optional<milliseconds> retry_after) {
  if (retry_after) return std::min(*retry_after, policy_.max_retry_after);
  double d = static_cast<double>(policy_.initial.count()) *
             std::pow(policy_.multiplier, std::max(0, retry - 1));
  d = std::min(d, static_cast<double>(policy_.max_delay.count()));
  double jitter = std::clamp(policy_.jitter, 0.0, 1.0);
  std::uniform_real_distribution<double> dist(1.0 - jitter, 1.0);
  return milliseconds(static_cast<int64_t>(d * dist(rng_)));
}

bool Backoff::Wait(int retry, std::optional<milliseconds> retry_after,
                   const std::atomic<bool>* cancel) {
  milliseconds remaining = Delay(retry, retry_after);
  constexpr milliseconds kSlice{100};
  while (remaining > milliseconds(0)) {
    if (cancel && cancel->load(std::memory_order_relaxed)) return false;
    milliseconds step = std::min(remaining, kSlice);
    env_->SleepFor(step);
    remaining -= step;
  }
  return !(cancel && cancel->load(std::memory_order_relaxed));
}

}  // namespace registry
