#include "metrics/metrics.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace metrics {

namespace internal {

void Die(const std::string& what) {
  std::fprintf(stderr, "metrics: %s\n", what.c_str());
  std::abort();
}

}  // namespace internal

namespace {

bool ValidMetricName(std::string_view n) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool ValidLabelName(std::string_view n) {
  if (n.empty() || n.starts_with("__")) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::vector<std::pair<std::string, std::string>> Labels(const std::vector<std::string>& names,
                                                        const std::vector<std::string>& values) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(names.size() + 1);
  for (size_t i = 0; i < names.size(); ++i) out.emplace_back(names[i], values[i]);
  return out;
}

}  // namespace

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::Observe(double v) {
  // The first bound >= v: `le` is inclusive. NaN compares false with every
  // bound and lands in +Inf.
  const size_t i = static_cast<size_t>(
      std::find_if(bounds_.begin(), bounds_.end(), [v](double b) { return v <= b; }) -
      bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

struct Registry::Entry {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  // Exactly one of these is set.
  std::unique_ptr<Family<Counter>> counters;
  std::unique_ptr<Family<Gauge>> gauges;
  std::unique_ptr<Family<Histogram>> histograms;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Entry& Registry::Add(std::string name, std::string help, MetricType type,
                               const std::vector<std::string>& label_names) {
  if (!ValidMetricName(name)) internal::Die("`" + name + "` is not a valid metric name");
  for (const std::string& l : label_names) {
    if (!ValidLabelName(l)) internal::Die(name + ": `" + l + "` is not a valid label name");
    if (type == MetricType::kHistogram && l == "le")
      internal::Die(name + ": a histogram cannot have a label `le`");
    if (std::count(label_names.begin(), label_names.end(), l) > 1)
      internal::Die(name + ": label `" + l + "` given twice");
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : entries_)
    if (e->name == name) internal::Die("`" + name + "` registered twice");
  auto e = std::make_unique<Entry>();
  e->name = std::move(name);
  e->help = std::move(help);
  e->type = type;
  entries_.push_back(std::move(e));
  return *entries_.back();
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  Entry& e = Add(name, std::move(help), MetricType::kCounter, label_names);
  e.counters.reset(new Family<Counter>(std::move(name), std::move(label_names), {}));
  return *e.counters;
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> label_names) {
  Entry& e = Add(name, std::move(help), MetricType::kGauge, label_names);
  e.gauges.reset(new Family<Gauge>(std::move(name), std::move(label_names), {}));
  return *e.gauges;
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> label_names,
                                          std::span<const double> bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i])))
      internal::Die(name + ": bucket bounds must be finite and strictly increasing");
  }
  Entry& e = Add(name, std::move(help), MetricType::kHistogram, label_names);
  e.histograms.reset(new Family<Histogram>(std::move(name), std::move(label_names),
                                           std::vector<double>(bounds.begin(), bounds.end())));
  return *e.histograms;
}

Family<Counter>* Registry::FindCounter(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : entries_)
    if (e->name == name) return e->counters.get();
  return nullptr;
}

void Registry::OnCollect(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  hooks_.push_back(std::move(fn));
}

std::vector<FamilySnapshot> Registry::Collect() const {
  std::vector<const Entry*> entries;
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : entries_) entries.push_back(e.get());
    hooks = hooks_;
  }
  for (const auto& hook : hooks) hook();
  std::vector<FamilySnapshot> out;
  out.reserve(entries.size());
  for (const Entry* e : entries) {
    FamilySnapshot f{.name = e->name, .help = e->help, .type = e->type, .samples = {}};
    if (e->counters) {
      e->counters->ForEach([&](const std::vector<std::string>& values, const Counter& c) {
        f.samples.push_back({.suffix = "",
                             .labels = Labels(e->counters->label_names(), values),
                             .value = static_cast<double>(c.value())});
      });
    } else if (e->gauges) {
      e->gauges->ForEach([&](const std::vector<std::string>& values, const Gauge& g) {
        f.samples.push_back(
            {.suffix = "", .labels = Labels(e->gauges->label_names(), values), .value = g.value()});
      });
    } else if (e->histograms) {
      e->histograms->ForEach([&](const std::vector<std::string>& values, const Histogram& h) {
        const auto labels = Labels(e->histograms->label_names(), values);
        const std::vector<uint64_t> counts = h.CumulativeCounts();
        const auto bounds = h.bounds();
        for (size_t i = 0; i < counts.size(); ++i) {
          auto with_le = labels;
          with_le.emplace_back("le", i < bounds.size() ? FormatValue(bounds[i]) : "+Inf");
          f.samples.push_back({.suffix = "_bucket",
                               .labels = std::move(with_le),
                               .value = static_cast<double>(counts[i])});
        }
        f.samples.push_back({.suffix = "_sum", .labels = labels, .value = h.sum()});
        f.samples.push_back(
            {.suffix = "_count", .labels = labels, .value = static_cast<double>(counts.back())});
      });
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::string Registry::Text() const { return FormatText(Collect()); }

double UnixSecondsNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace metrics
