#include "common/log.h"

#include <time.h>
#include <unistd.h>

namespace common {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};

constexpr std::string_view kNames[] = {"debug", "info", "warn", "error", "off"};

// Values with spaces or quotes are quoted so lines stay machine-splittable.
void AppendValue(std::ostringstream& os, const std::string& v) {
  bool plain = !v.empty();
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t') plain = false;
  if (plain) {
    os << v;
    return;
  }
  os << '"';
  for (char c : v) {
    if (c == '"' || c == '\\')
      os << '\\' << c;
    else if (c == '\n')
      os << "\\n";
    else
      os << c;
  }
  os << '"';
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }
bool LogEnabled(LogLevel level) {
  return level != LogLevel::Off &&
         static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  for (int i = 0; i < 5; ++i)
    if (kNames[i] == name) return static_cast<LogLevel>(i);
  if (name == "warning") return LogLevel::Warn;
  return std::nullopt;
}

LogLine::LogLine(LogLevel level) : level_(level) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char stamp[64];
  snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900,
           t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000);
  buf_ << stamp << ' ' << kNames[static_cast<int>(level_)] << ' ';
}

LogLine& LogLine::operator<<(const Kv& kv) {
  buf_ << ' ' << kv.key << '=';
  AppendValue(buf_, kv.value);
  return *this;
}

LogLine::~LogLine() {
  buf_ << '\n';
  std::string s = buf_.str();
  // One write so concurrent lines do not interleave; a short write to a
  // broken stderr is not worth more than this.
  ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
  (void)n;
}

}  // namespace common
