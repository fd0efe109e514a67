#pragma once
// Metrics for Prometheus: counters, gauges and histograms in families
// with a fixed set of label names, kept in a Registry that writes them in
// the text exposition format 0.0.4 (metrics/text_format.h) when scraped.
//
//   metrics::Registry reg;
//   auto& pulls = reg.AddCounter("gantry_pulls_total", "Pulls by result.", {"result"});
//   metrics::Counter& ok = pulls.With({"success"});  // look up once, keep
//   ok.Inc();                                        // an atomic add
//   auto& took = reg.AddHistogram("gantry_pull_duration_seconds", "…", {},
//                                 metrics::kPullSecondsBuckets);
//   took.With({}).Observe(2.5);
//   auto& images = reg.AddGauge("gantry_images", "…", {}).With({});
//   reg.OnCollect([&] { images.Set(CountImages()); });  // at each scrape
//   std::string body = reg.Text();
//
// Costs: Inc/Add/Set/Observe are lock-free atomics (a histogram
// observation is one bucket search over a handful of bounds and two
// atomic adds). Family::With takes the family's mutex and looks the label
// values up, so hot paths look a child up once and keep the reference;
// children live as long as the registry and never move.
//
// Names follow Prometheus's rules: a metric name matches
// [a-zA-Z_:][a-zA-Z0-9_:]*, a label name [a-zA-Z_][a-zA-Z0-9_]* without a
// leading "__" (and not "le" in a histogram). A name that breaks them, a
// metric registered twice, or With() given the wrong number of label
// values is a programming error: it aborts with a message naming it.
//
// Thread-safety: every member may be called from any thread, including
// while Text() runs; Add* is meant for start-up, before the hot paths run.

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "metrics/text_format.h"

namespace metrics {

// A monotonically increasing count (events, bytes).
class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  // What this process counted plus the external part.
  uint64_t value() const {
    return value_.load(std::memory_order_relaxed) + external_.load(std::memory_order_relaxed);
  }
  // Replaces the external part: what other processes counted, read at
  // each scrape (the CLI's counts in the store, docs/metrics.md). Callers
  // keep it monotonic for the sum to stay a counter.
  void SetExternal(uint64_t n) { external_.store(n, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
  std::atomic<uint64_t> external_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into buckets with fixed upper bounds (`le`), plus
// their sum. REQUIRES (checked by the family): bounds strictly increasing
// and finite; +Inf is implied.
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);
  // A NaN is counted in +Inf and added to the sum, as Prometheus's clients do.
  void Observe(double v);

  // Cumulative counts per bound, then +Inf (the total count); the sum.
  // Counts and sum are read one after the other, not as one snapshot: a
  // scrape during an observation may see one without the other.
  std::vector<uint64_t> CumulativeCounts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  std::span<const double> bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  // One slot per bound and one for +Inf; not cumulative.
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// Bucket bounds in seconds for whole pulls: 0.1 s to 20 min.
inline constexpr double kPullSecondsBuckets[] = {0.1, 0.25, 0.5, 1,   2.5, 5,   10,
                                                 30,  60,   120, 300, 600, 1200};
// Bucket bounds in seconds for RPCs and HTTP requests: 1 ms to 5 min.
inline constexpr double kRequestSecondsBuckets[] = {0.001, 0.005, 0.025, 0.1, 0.25, 1,
                                                    2.5,   10,    30,    60,  300};

// The children of one metric name, one per combination of label values.
template <class T>
class Family {
 public:
  // The child for `values` (as many as the family has label names, in
  // their order), created on first use. The reference stays valid as long
  // as the registry. Aborts on a wrong number of values.
  T& With(std::initializer_list<std::string_view> values) {
    return With(std::span<const std::string_view>(values.begin(), values.size()));
  }
  T& With(std::span<const std::string_view> values);

 private:
  friend class Registry;
  Family(std::string name, std::vector<std::string> label_names, std::vector<double> bounds)
      : name_(std::move(name)), label_names_(std::move(label_names)), bounds_(std::move(bounds)) {}

  std::string name_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;       // guards children_ (not the children's values)
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;

 public:
  // Calls `fn(label_values, child)` for each child, in label-value order,
  // under the family's mutex (Text() uses it).
  template <class Fn>
  void ForEach(Fn&& fn) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [values, child] : children_) fn(values, *child);
  }
  const std::vector<std::string>& label_names() const { return label_names_; }
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // A counter family; its name should end in `_total`. Families are
  // written in the order they were added.
  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names);
  Family<Gauge>& AddGauge(std::string name, std::string help, std::vector<std::string> label_names);
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> label_names,
                                  std::span<const double> bounds);
  // The counter family added under `name`; null when there is none.
  Family<Counter>* FindCounter(std::string_view name) const;

  // Calls `fn` at the start of every Collect, before any family is read
  // (on the scraping thread; keep it cheap): to set several gauges from
  // one reading, such as one database query.
  void OnCollect(std::function<void()> fn);

  // Every family's current values, in the order they were added.
  std::vector<FamilySnapshot> Collect() const;
  // Collect() in the text exposition format (metrics/text_format.h).
  std::string Text() const;

 private:
  struct Entry;
  Entry& Add(std::string name, std::string help, MetricType type,
             const std::vector<std::string>& label_names);

  mutable std::mutex mu_;  // guards entries_ (the list, not the families) and hooks_
  std::vector<std::unique_ptr<Entry>> entries_;
  std::vector<std::function<void()>> hooks_;
};

// Seconds since the Unix epoch, now (for gantry_process_start_time_seconds).
double UnixSecondsNow();

namespace internal {
// Prints "metrics: <what>" to stderr and aborts (a programming error).
[[noreturn]] void Die(const std::string& what);
template <class T>
std::unique_ptr<T> MakeChild(std::span<const double> bounds) {
  if constexpr (std::is_same_v<T, Histogram>)
    return std::make_unique<Histogram>(bounds);
  else
    return std::make_unique<T>();
}
}  // namespace internal

template <class T>
T& Family<T>::With(std::span<const std::string_view> values) {
  if (values.size() != label_names_.size())
    internal::Die(name_ + ": " + std::to_string(values.size()) + " label values for " +
                  std::to_string(label_names_.size()) + " label names");
  std::vector<std::string> key(values.begin(), values.end());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = children_.find(key);
  if (it == children_.end())
    it = children_.emplace(std::move(key), internal::MakeChild<T>(bounds_)).first;
  return *it->second;
}

}  // namespace metrics
