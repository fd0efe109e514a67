#include "metrics/text_format.h"

#include <charconv>
#include <cmath>
#include <cstdint>

namespace metrics {

std::string_view MetricTypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Whole numbers up to 2^53 (counts, bytes) as integers: to_chars's
  // shortest form would write 200010000000 as 2.0001e+11.
  if (std::fabs(v) <= 9007199254740992.0 && v == std::trunc(v)) {
    char ibuf[32];
    auto [iend, iec] = std::to_chars(ibuf, ibuf + sizeof ibuf, static_cast<int64_t>(v));
    if (iec == std::errc()) return std::string(ibuf, iend);
  }
  // Otherwise the shortest text that parses back to the same double (Go's
  // strconv.ParseFloat, which Prometheus uses, reads every form to_chars
  // writes).
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "NaN";  // cannot happen: 64 bytes hold any double
  return std::string(buf, end);
}

namespace {

// `s` with `\` and newline escaped, and `"` too when `quote`.
std::string Escape(std::string_view s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (quote && c == '"')
      out += "\\\"";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string EscapeLabelValue(std::string_view s) { return Escape(s, /*quote=*/true); }

std::string EscapeHelp(std::string_view s) { return Escape(s, /*quote=*/false); }

std::string FormatText(const std::vector<FamilySnapshot>& families) {
  std::string out;
  for (const FamilySnapshot& f : families) {
    out += "# HELP " + f.name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + f.name + " ";
    out += MetricTypeName(f.type);
    out += "\n";
    for (const Sample& s : f.samples) {
      out += f.name;
      out += s.suffix;
      if (!s.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < s.labels.size(); ++i) {
          if (i > 0) out += ',';
          out += s.labels[i].first + "=\"" + EscapeLabelValue(s.labels[i].second) + "\"";
        }
        out += '}';
      }
      out += ' ';
      out += FormatValue(s.value);
      out += '\n';
    }
  }
  return out;
}

}  // namespace metrics
