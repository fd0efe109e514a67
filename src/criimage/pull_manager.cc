#include "criimage/pull_manager.h"

#include "common/digest.h"
#include "common/log.h"
#include "criimage/serve_metrics.h"
#include "image/pull.h"

namespace criimage {
namespace {

// Pulls with different credentials do not share a flight: kubelet tries
// one PullImage per candidate credential, and a wrong one must not answer
// for a right one.
std::string FlightKey(const registry::ImageRef& ref, const std::optional<registry::Credentials>& c,
                      const std::optional<oci::Platform>& platform) {
  std::string key = ref.str();
  if (platform) key += "\n" + platform->str();
  if (c) {
    key += "\n" + common::Digest::Sha256Of(c->username + '\0' + c->password + '\0' +
                                           c->identity_token + '\0' + c->registry_token)
                      .hex();
  }
  return key;
}

}  // namespace

struct PullManager::Flight {
  std::string key;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // guarded by mu, as result
  std::optional<common::Result<image::FetchResult>> result;
  std::atomic<bool> cancel{false};
};

PullManager::PullManager(store::ContentStore& content, store::MetadataDb& db,
                         PullManagerOptions options)
    : content_(content), db_(db), options_(std::move(options)) {}

PullManager::~PullManager() {
  CancelAll();
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return active_runs_ == 0; });
}

void PullManager::CancelAll() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  for (auto& [key, f] : flights_) f->cancel = true;
  slot_cv_.notify_all();
}

common::Result<image::FetchResult> PullManager::Pull(
    const registry::ImageRef& ref, const std::optional<registry::Credentials>& creds,
    const std::function<bool()>& cancelled, const std::optional<oci::Platform>& platform) {
  const std::string key = FlightKey(ref, creds, platform);
  std::shared_ptr<Flight> f;
  bool runner = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_)
      return common::MakeError(common::Errc::kCancelled, "pull `" + ref.str() + "`: shutting down");
    auto it = flights_.find(key);
    if (it != flights_.end()) {
      f = it->second;
    } else {
      f = std::make_shared<Flight>();
      f->key = key;
      flights_[key] = f;
      runner = true;
      ++active_runs_;
    }
  }
  if (runner) {
    // The pull runs on this caller's thread; callers that join it wait for
    // its result below. It is not stopped when this caller goes away:
    // others may be waiting, and kubelet retries a cancelled pull anyway.
    Run(f, ref, creds, platform);
  } else {
    LOG(Debug) << "pull joined" << common::Kv("ref", ref.str());
  }
  std::unique_lock<std::mutex> lock(f->mu);
  while (!f->done) {
    f->cv.wait_for(lock, std::chrono::milliseconds(200));
    if (!f->done && cancelled && cancelled())
      return common::MakeError(common::Errc::kCancelled,
                               "pull `" + ref.str() + "`: the caller went away");
  }
  return *f->result;
}

void PullManager::Run(const std::shared_ptr<Flight>& f, const registry::ImageRef& ref,
                      const std::optional<registry::Credentials>& creds,
                      const std::optional<oci::Platform>& platform) {
  common::Result<image::FetchResult> r =
      common::MakeError(common::Errc::kCancelled, "pull `" + ref.str() + "`: shutting down");
  bool got_slot = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    slot_cv_.wait(lock, [&] { return running_ < options_.max_parallel || shutdown_; });
    if (!shutdown_) {
      ++running_;
      got_slot = true;
    }
  }
  if (got_slot) {
    r = PullOne(f, ref, creds, platform);
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
    slot_cv_.notify_one();
  }
  {
    // Out of the map before the result is published: a caller arriving
    // from now on starts a new pull (which finds the content in the store).
    std::lock_guard<std::mutex> lock(mu_);
    flights_.erase(f->key);
  }
  {
    std::lock_guard<std::mutex> lock(f->mu);
    f->result = std::move(r);
    f->done = true;
  }
  f->cv.notify_all();
  std::lock_guard<std::mutex> lock(mu_);
  --active_runs_;
  idle_cv_.notify_all();
}

common::Result<image::FetchResult> PullManager::PullOne(
    const std::shared_ptr<Flight>& f, const registry::ImageRef& ref,
    const std::optional<registry::Credentials>& creds,
    const std::optional<oci::Platform>& platform) {
  image::PullImageOptions opts;
  opts.platform = platform;
  opts.source.kind = registry::SourceSpec::Kind::kRegistry;
  opts.source.ref = ref;
  opts.client = options_.client;
  opts.client.creds = creds;
  opts.max_concurrent_downloads = options_.max_concurrent_downloads;
  opts.max_layers = options_.max_layers;
  opts.snapshotter = options_.snapshotter;
  opts.check_space = options_.check_space;
  opts.rate_floor = image::RateFloor{.bytes_per_sec = options_.min_rate_bytes_per_sec,
                                     .window = options_.min_rate_window};
  opts.cancel = &f->cancel;
  opts.flights = options_.flights;
  opts.trust = options_.trust;
  registry::FetchCounters fetched;
  opts.client.counters = &fetched;
  if (options_.metrics != nullptr) {
    ServeMetrics* m = options_.metrics;
    opts.on_event = [m](const image::PullEvent& e) { m->OnPullEvent(e); };
  }
  const auto start = std::chrono::steady_clock::now();
  common::Result<image::PulledImage> pulled =
      image::PullImage({.root = options_.root, .content = &content_, .metadata = &db_}, opts);
  if (options_.metrics != nullptr)
    options_.metrics->CountPull(image::TallyPull(pulled, fetched),
                                std::chrono::steady_clock::now() - start);
  if (!pulled) return std::unexpected(std::move(pulled.error()));
  return std::move(pulled->pull);
}

}  // namespace criimage
