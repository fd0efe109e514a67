#pragma once
// Prometheus's text exposition format, version 0.0.4 (what Prometheus
// scrapes with `Content-Type: text/plain; version=0.0.4`): for each
// family a `# HELP` and a `# TYPE` line, then one line per sample,
//
//   # HELP gantry_pulls_total Pulls run, by result.
//   # TYPE gantry_pulls_total counter
//   gantry_pulls_total{result="success"} 3
//
// a histogram as its cumulative `NAME_bucket{…,le="B"}` samples ending
// with le="+Inf", then `NAME_sum` and `NAME_count`. Label values escape
// `\`, `"` and newline (\\ \" \n); HELP text escapes `\` and newline.
// Values are written as integers when whole and up to 2^53
// ("200010000000"), else in the shortest form that reads back exactly
// ("0.25", "1e+21"); "+Inf", "-Inf" and "NaN".
//
// The writer checks nothing: names come from metrics::Registry, which
// validates them when they are added.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// "counter" "gauge" "histogram"
std::string_view MetricTypeName(MetricType t);

// One line of a family: `name` + `suffix` ("", "_bucket", "_sum",
// "_count"), its labels in order, its value.
struct Sample {
  std::string suffix;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

struct FamilySnapshot {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<Sample> samples;
};

// The Content-Type of the text format.
inline constexpr char kTextContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// `families` in the text format, one after the other, each line ended by
// "\n".
std::string FormatText(const std::vector<FamilySnapshot>& families);

// A sample value as the format writes it ("3", "0.25", "1e+21", "+Inf", "NaN").
std::string FormatValue(double v);

// `s` escaped for a label value (\\, \", \n).
std::string EscapeLabelValue(std::string_view s);

// `s` escaped for a HELP line (\\, \n).
std::string EscapeHelp(std::string_view s);

}  // namespace metrics
