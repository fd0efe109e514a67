#include "common/log.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>

namespace common {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};

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

// A JSON string, escaped as RFC 8259 requires (bytes of 0x80 and above
// are passed through: the text is UTF-8 or the caller's bytes).
void AppendJsonString(std::string& out, std::string_view v) {
  out += '"';
  for (char c : v) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char esc[8];
          snprintf(esc, sizeof esc, "\\u%04x",
                   static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += esc;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string Timestamp() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char stamp[64];
  snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900,
           t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000);
  return stamp;
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }
bool LogEnabled(LogLevel level) {
  return level != LogLevel::Off &&
         static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void SetLogFormat(LogFormat format) { g_format.store(static_cast<int>(format)); }
LogFormat GetLogFormat() { return static_cast<LogFormat>(g_format.load()); }

std::optional<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

std::string FormatLogLine(LogLevel level, std::string_view message,
                          const std::vector<std::pair<std::string, std::string>>& fields) {
  const std::string_view level_name = kNames[static_cast<int>(level)];
  if (GetLogFormat() == LogFormat::kJson) {
    std::string out =
        "{\"time\":\"" + Timestamp() + "\",\"level\":\"" + std::string(level_name) + "\",\"msg\":";
    AppendJsonString(out, message);
    for (const auto& [key, value] : fields) {
      out += ',';
      const bool reserved = key == "time" || key == "level" || key == "msg";
      AppendJsonString(out, reserved ? "fields." + key : key);
      out += ':';
      AppendJsonString(out, value);
    }
    out += "}\n";
    return out;
  }
  std::ostringstream os;
  os << Timestamp() << ' ' << level_name << ' ' << message;
  for (const auto& [key, value] : fields) {
    os << ' ' << key << '=';
    AppendValue(os, value);
  }
  os << '\n';
  return os.str();
}

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  for (int i = 0; i < 5; ++i)
    if (kNames[i] == name) return static_cast<LogLevel>(i);
  if (name == "warning") return LogLevel::Warn;
  return std::nullopt;
}

LogLine::LogLine(LogLevel level) : level_(level) {}

LogLine& LogLine::operator<<(const Kv& kv) {
  fields_.emplace_back(std::string(kv.key), kv.value);
  return *this;
}

LogLine::~LogLine() {
  std::string s = FormatLogLine(level_, message_.str(), fields_);
  // One write so concurrent lines do not interleave; a short write to a
  // broken stderr is not worth more than this.
  ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
  (void)n;
}

}  // namespace common
