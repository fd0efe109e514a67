// metrics::Registry: what counters, gauges, histograms and scrape-time
// gauges write, to the byte; histogram buckets (inclusive bounds,
// cumulative, +Inf, NaN); concurrent increments lose nothing; misuse
// aborts.

#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

#include "metrics/metrics.h"

namespace metrics {
namespace {

TEST(MetricsRegistry, SmallRegistryTextExactly) {
  Registry reg;
  auto& pulls = reg.AddCounter("t_pulls_total", "Pulls by result.", {"result"});
  pulls.With({"success"}).Inc(3);
  pulls.With({"not_found"}).Inc();
  reg.AddGauge("t_up", "Up.", {}).With({}).Set(1);
  const double bounds[] = {0.5, 1, 2.5};
  auto& h = reg.AddHistogram("t_seconds", "Durations.", {"method"}, bounds).With({"Get"});
  for (double v : {0.1, 0.5, 0.7, 3.0}) h.Observe(v);
  reg.AddGauge("t_empty", "No children.", {"kind"});

  EXPECT_EQ(reg.Text(),
            "# HELP t_pulls_total Pulls by result.\n"
            "# TYPE t_pulls_total counter\n"
            "t_pulls_total{result=\"not_found\"} 1\n"
            "t_pulls_total{result=\"success\"} 3\n"
            "# HELP t_up Up.\n"
            "# TYPE t_up gauge\n"
            "t_up 1\n"
            "# HELP t_seconds Durations.\n"
            "# TYPE t_seconds histogram\n"
            "t_seconds_bucket{method=\"Get\",le=\"0.5\"} 2\n"
            "t_seconds_bucket{method=\"Get\",le=\"1\"} 3\n"
            "t_seconds_bucket{method=\"Get\",le=\"2.5\"} 3\n"
            "t_seconds_bucket{method=\"Get\",le=\"+Inf\"} 4\n"
            "t_seconds_sum{method=\"Get\"} 4.3\n"
            "t_seconds_count{method=\"Get\"} 4\n"
            "# HELP t_empty No children.\n"
            "# TYPE t_empty gauge\n");
}

TEST(MetricsRegistry, ExternalCountsAddToTheProcessOwnAndAreReplacedEachTime) {
  Registry reg;
  auto& pulls = reg.AddCounter("t_pulls_total", "Pulls.", {"result"});
  Counter& ok = pulls.With({"success"});
  ok.Inc(2);
  ASSERT_EQ(reg.FindCounter("t_pulls_total"), &pulls);
  EXPECT_EQ(reg.FindCounter("t_missing_total"), nullptr);
  reg.AddGauge("t_gauge", "G.", {});
  EXPECT_EQ(reg.FindCounter("t_gauge"), nullptr) << "a gauge is not a counter";
  reg.FindCounter("t_pulls_total")->With({"success"}).SetExternal(5);
  EXPECT_EQ(ok.value(), 7u);
  ok.SetExternal(6);
  ok.Inc();
  EXPECT_EQ(ok.value(), 9u);
  EXPECT_EQ(reg.Text(),
            "# HELP t_pulls_total Pulls.\n# TYPE t_pulls_total counter\n"
            "t_pulls_total{result=\"success\"} 9\n"
            "# HELP t_gauge G.\n# TYPE t_gauge gauge\n");
}

TEST(MetricsRegistry, OnCollectRunsBeforeTheFamiliesAreReadAtEveryScrape) {
  Registry reg;
  Gauge& a = reg.AddGauge("t_a", "A.", {}).With({});
  Gauge& b = reg.AddGauge("t_b", "B.", {}).With({});
  int reads = 0;
  reg.OnCollect([&] {
    ++reads;
    a.Set(reads);
    b.Set(reads * 10);
  });
  EXPECT_EQ(reg.Text(),
            "# HELP t_a A.\n# TYPE t_a gauge\nt_a 1\n# HELP t_b B.\n# TYPE t_b gauge\nt_b 10\n");
  EXPECT_EQ(reg.Text(),
            "# HELP t_a A.\n# TYPE t_a gauge\nt_a 2\n# HELP t_b B.\n# TYPE t_b gauge\nt_b 20\n");
}

TEST(MetricsRegistry, HistogramBoundsAreInclusiveAndNaNGoesToInf) {
  const double bounds[] = {1, 2};
  Histogram h(bounds);
  h.Observe(1);    // le="1" is inclusive
  h.Observe(1.5);  // le="2"
  h.Observe(2);    // le="2"
  h.Observe(-5);   // le="1"
  h.Observe(std::nan(""));
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<uint64_t>{2, 4, 5}));
  EXPECT_TRUE(std::isnan(h.sum()));
}

TEST(MetricsRegistry, AHistogramWithoutObservationsWritesZeros) {
  Registry reg;
  const double bounds[] = {1};
  reg.AddHistogram("t_h_seconds", "H.", {}, bounds).With({});
  EXPECT_EQ(reg.Text(),
            "# HELP t_h_seconds H.\n"
            "# TYPE t_h_seconds histogram\n"
            "t_h_seconds_bucket{le=\"1\"} 0\n"
            "t_h_seconds_bucket{le=\"+Inf\"} 0\n"
            "t_h_seconds_sum 0\n"
            "t_h_seconds_count 0\n");
}

TEST(MetricsRegistry, WithReturnsTheSameChildForTheSameValues) {
  Registry reg;
  auto& f = reg.AddCounter("t_total", "T.", {"a", "b"});
  Counter& c1 = f.With({"x", "y"});
  Counter& c2 = f.With({"x", "y"});
  EXPECT_EQ(&c1, &c2);
  EXPECT_NE(&c1, &f.With({"y", "x"}));
}

TEST(MetricsRegistry, ConcurrentIncrementsAndObservationsLoseNothing) {
  Registry reg;
  Counter& c = reg.AddCounter("t_total", "T.", {}).With({});
  const double bounds[] = {0.5};
  Histogram& h = reg.AddHistogram("t_seconds", "T.", {}, bounds).With({});
  Gauge& g = reg.AddGauge("t_g", "T.", {}).With({});
  constexpr int kThreads = 4, kEach = 100000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        c.Inc();
        h.Observe(1);
        g.Add(1);
        if (i % 1000 == 0) (void)reg.Text();  // scrapes meanwhile
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.value(), uint64_t{kThreads} * kEach);
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<uint64_t>{0, uint64_t{kThreads} * kEach}));
  EXPECT_EQ(h.sum(), double{kThreads} * kEach);
  EXPECT_EQ(g.value(), double{kThreads} * kEach);
}

void AddHistogramWithLe() {
  Registry reg;
  const double b[] = {1};
  reg.AddHistogram("t_seconds", "T.", {"le"}, b);
}

void AddHistogramWithDecreasingBounds() {
  Registry reg;
  const double b[] = {2, 1};
  reg.AddHistogram("t_seconds", "T.", {}, b);
}

void AddTwice() {
  Registry reg;
  reg.AddGauge("t_g", "T.", {});
  reg.AddGauge("t_g", "T.", {});
}

void WithTooManyValues() {
  Registry reg;
  reg.AddCounter("t_total", "T.", {"a"}).With({"x", "y"});
}

TEST(MetricsRegistryDeath, MisuseAbortsNamingIt) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(Registry().AddCounter("0bad", "B.", {}), "`0bad` is not a valid metric name");
  EXPECT_DEATH(Registry().AddCounter("t_total", "T.", {"__x"}), "`__x` is not a valid label name");
  EXPECT_DEATH(AddHistogramWithLe(), "cannot have a label `le`");
  EXPECT_DEATH(AddHistogramWithDecreasingBounds(), "strictly increasing");
  EXPECT_DEATH(AddTwice(), "registered twice");
  EXPECT_DEATH(WithTooManyValues(), "2 label values for 1 label names");
}

}  // namespace
}  // namespace metrics
