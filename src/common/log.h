#pragma once
// A small leveled logger to stderr with key=value fields:
//   LOG(Info) << "pulled" << Kv("ref", ref.str()) << Kv("layers", 3);
// prints "2026-11-27T00:40:01.123Z info pulled ref=… layers=3", or with
// LogFormat::kJson one JSON object:
//   {"time":"2026-11-27T00:40:01.123Z","level":"info","msg":"pulled","ref":"…","layers":"3"}
// (field values are strings, as written in the text form; a field named
// time, level or msg is written as "fields.<name>"). What is streamed that
// is not a Kv makes the message, in order; the fields follow it. One line
// per statement, written with a single write(2) so lines from threads and
// processes do not interleave. The threshold and the format are
// process-wide and set once at start-up (SetLogLevel, SetLogFormat); they
// are read atomically.

#include <atomic>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace common {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// "debug" | "info" | "warn" | "error" | "off"; nullopt for anything else.
std::optional<LogLevel> ParseLogLevel(std::string_view name);
bool LogEnabled(LogLevel level);

enum class LogFormat { kText, kJson };
void SetLogFormat(LogFormat format);
LogFormat GetLogFormat();
// "text" | "json"; nullopt for anything else.
std::optional<LogFormat> ParseLogFormat(std::string_view name);

// One log line's text in the current format, ending in '\n' (what
// LogLine writes; also for callers that print an error as a log line).
std::string FormatLogLine(LogLevel level, std::string_view message,
                          const std::vector<std::pair<std::string, std::string>>& fields);

struct Kv {
  template <class V>
  Kv(std::string_view k, const V& v) : key(k) {
    std::ostringstream os;
    os << v;
    value = os.str();
  }
  std::string_view key;
  std::string value;
};

class LogLine {
 public:
  explicit LogLine(LogLevel level);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& operator<<(const Kv& kv);
  template <class V>
  LogLine& operator<<(const V& v) {
    message_ << v;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream message_;
  std::vector<std::pair<std::string, std::string>> fields_;
};

}  // namespace common

// The for-loop form (rather than if/else) keeps LOG safe inside an
// unbraced if without dangling-else warnings.
#define LOG(level)                                                                  \
  for (bool log_once_ = ::common::LogEnabled(::common::LogLevel::level); log_once_; \
       log_once_ = false)                                                           \
  ::common::LogLine(::common::LogLevel::level)
