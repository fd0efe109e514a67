// The text exposition format 0.0.4: escaping, value forms, and the exact
// text of families written by hand.

#include "metrics/text_format.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace metrics {
namespace {

TEST(MetricsTextFormat, EscapesBackslashQuoteAndNewlineInLabelValues) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeLabelValue("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(EscapeLabelValue("two\nlines"), "two\\nlines");
  EXPECT_EQ(EscapeLabelValue("tab\tstays"), "tab\tstays");
  EXPECT_EQ(EscapeLabelValue("é"), "é");
}

TEST(MetricsTextFormat, HelpEscapesBackslashAndNewlineButNotQuotes) {
  EXPECT_EQ(EscapeHelp("a \"quoted\" word"), "a \"quoted\" word");
  EXPECT_EQ(EscapeHelp("back\\slash\nnext"), "back\\\\slash\\nnext");
}

TEST(MetricsTextFormat, ValuesAreShortestExactSpecialsSpelledAsPrometheusReadsThem) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(-2), "-2");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1234567890123.0), "1234567890123");
  EXPECT_EQ(FormatValue(200010000000.0), "200010000000");
  EXPECT_EQ(FormatValue(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(-0.0), "0");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(MetricsTextFormat, FamiliesWrittenExactly) {
  std::vector<FamilySnapshot> fams = {
      {.name = "x_total",
       .help = "Things.\nTwo lines.",
       .type = MetricType::kCounter,
       .samples = {{.suffix = "", .labels = {{"a", "1"}, {"b", "q\"\\\n"}}, .value = 7}}},
      {.name = "g",
       .help = "",
       .type = MetricType::kGauge,
       .samples = {{.suffix = "", .labels = {}, .value = 0.5}}},
      {.name = "empty", .help = "None yet.", .type = MetricType::kGauge, .samples = {}},
  };
  EXPECT_EQ(FormatText(fams),
            "# HELP x_total Things.\\nTwo lines.\n"
            "# TYPE x_total counter\n"
            "x_total{a=\"1\",b=\"q\\\"\\\\\\n\"} 7\n"
            "# HELP g \n"
            "# TYPE g gauge\n"
            "g 0.5\n"
            "# HELP empty None yet.\n"
            "# TYPE empty gauge\n");
}

}  // namespace
}  // namespace metrics
