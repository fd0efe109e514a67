#include "criimage/pull_manager.h"

#include <algorithm>
#include <deque>
#include <sstream>
#include <thread>

#include "common/digest.h"
#include "common/log.h"
#include "image/pull_progress.h"
#include "image/unpacker.h"
#include "store/store_lock.h"

namespace criimage {
namespace {

// Pulls with different credentials do not share a flight: kubelet tries
// one PullImage per candidate credential, and a wrong one must not answer
// for a right one.
std::string FlightKey(const registry::ImageRef& ref,
                      const std::optional<registry::Credentials>& c) {
  std::string key = ref.str();
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
  std::optional<common::Result<registry::PullResult>> result;
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
  cancel_all_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  for (auto& [key, f] : flights_) f->cancel = true;
  slot_cv_.notify_all();
}

common::Result<registry::PullResult> PullManager::Pull(
    const registry::ImageRef& ref, const std::optional<registry::Credentials>& creds,
    const std::function<bool()>& cancelled) {
  const std::string key = FlightKey(ref, creds);
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
    Run(f, ref, creds);
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
                      const std::optional<registry::Credentials>& creds) {
  common::Result<registry::PullResult> r =
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
    r = PullWithFloor(f, ref, creds);
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

common::Result<registry::PullResult> PullManager::PullWithFloor(
    const std::shared_ptr<Flight>& f, const registry::ImageRef& ref,
    const std::optional<registry::Credentials>& creds) {
  const auto window = options_.min_rate_window;
  const int64_t rate = options_.min_rate_bytes_per_sec;
  registry::PullOptions opts;
  opts.client = options_.client;
  opts.client.creds = creds;
  // The registry client's own floor (per transfer, retried) stays as a
  // backstop for one layer trickling while others flow; it gets twice the
  // window so that the pull-wide floor below decides first.
  opts.client.min_rate_bytes_per_sec = rate;
  opts.client.min_rate_window = std::max(
      std::chrono::seconds(1),
      std::chrono::duration_cast<std::chrono::seconds>(2 * window + std::chrono::seconds(1)));
  opts.max_concurrent_downloads = options_.max_concurrent_downloads;
  opts.max_layers = options_.max_layers;
  opts.cancel = &f->cancel;
  opts.space.enabled = options_.check_space;
  if (options_.check_space && options_.snapshotter != nullptr) {
    auto space = image::UnpackSpaceCheck(*options_.snapshotter, options_.root);
    if (!space) return std::unexpected(space.error().Wrap("pull " + ref.str()));
    opts.space = std::move(*space);
  }

  image::ProgressRecorder recorder(options_.root, ref.str());
  std::map<std::string, int64_t> held;  // per blob; events are serialised
  std::map<std::string, bool> waiting;  // per blob: waiting for another writer's ingest lock
  std::atomic<int64_t> held_total{0};
  std::atomic<int> waiting_total{0};
  std::atomic<bool> unpacking{false};
  if (options_.snapshotter != nullptr) {
    // Unpacked before the record is written, so that a failed unpack
    // leaves no image behind; the later image::Unpack only labels it.
    opts.before_record = [&](const registry::PullResult& pulled) -> common::Status {
      unpacking = true;
      recorder.SetPhase("unpacking");
      // The unpack's progress goes to the record like the download's; the
      // unpacker serialises its events, and no download event comes while
      // before_record runs (every blob is in).
      image::UnpackOptions uo{.snapshotter = options_.snapshotter,
                              .metadata = &db_,
                              .cancel = &f->cancel,
                              .on_event = [&](const registry::PullEvent& e) { recorder.OnEvent(e); }};
      // Its errors name the layer ("apply layer sha256:…: …").
      auto r = image::UnpackLayers(content_, uo, image::PartsOf(pulled));
      if (!r) return std::unexpected(r.error());
      return {};
    };
  }
  opts.on_event = [&](const registry::PullEvent& e) {
    recorder.OnEvent(e);
    if (e.digest && (e.kind == registry::PullEvent::Kind::kLayerProgress ||
                     e.kind == registry::PullEvent::Kind::kLayerDone ||
                     e.kind == registry::PullEvent::Kind::kLayerStart)) {
      const std::string key = e.digest->str();
      int64_t& h = held[key];
      held_total += e.current - h;
      h = e.current;
      bool& w = waiting[key];
      const bool now_waiting = e.state == "waiting";
      if (now_waiting != w) waiting_total += now_waiting ? 1 : -1;
      w = now_waiting;
    }
  };

  auto lock = store::StoreLock::Shared(options_.root, &f->cancel);
  if (!lock) {
    auto err = lock.error().Wrap("pull " + ref.str());
    recorder.Finish(std::unexpected(err));
    return std::unexpected(err);
  }

  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  std::optional<common::Result<registry::PullResult>> r;
  std::thread worker([&] {
    registry::SourceSpec spec;
    spec.kind = registry::SourceSpec::Kind::kRegistry;
    spec.ref = ref;
    auto pulled = registry::Pull(content_, db_, spec, opts);
    std::lock_guard<std::mutex> l(done_mu);
    r = std::move(pulled);
    done = true;
    done_cv.notify_all();
  });

  // The floor: bytes held now against bytes held one window ago.
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto tick = std::clamp<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(window / 8),
      std::chrono::milliseconds(50), std::chrono::milliseconds(1000));
  std::deque<std::pair<Clock::time_point, int64_t>> samples{{start, 0}};
  bool too_slow = false;
  {
    std::unique_lock<std::mutex> l(done_mu);
    while (!done) {
      done_cv.wait_for(l, tick);
      if (done) break;
      if (cancel_all_) f->cancel = true;
      const auto now = Clock::now();
      const int64_t bytes = held_total.load();
      if (waiting_total.load() > 0 || unpacking.load()) {
        // A layer waits for another pull (this server's or another
        // process's) downloading the same blob; that pull has its own
        // floor; and no bytes flow while the layers unpack. The window
        // restarts once nothing waits.
        samples.assign({{now, bytes}});
        continue;
      }
      samples.emplace_back(now, bytes);
      while (samples.size() > 1 && samples[1].first <= now - window) samples.pop_front();
      if (rate > 0 && samples.front().first <= now - window) {
        const double secs = std::chrono::duration<double>(now - samples.front().first).count();
        if (static_cast<double>(bytes - samples.front().second) < static_cast<double>(rate) * secs) {
          too_slow = true;
          f->cancel = true;
          // Keep waiting: the worker stops at its next cancel check.
        }
      }
    }
  }
  worker.join();
  common::Result<registry::PullResult> result = std::move(*r);
  if (!result && too_slow) {
    const auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(window).count() / 1000.0;
    std::ostringstream msg;
    msg << "pull " << ref.str() << ": cancelled: downloaded less than " << rate
        << " bytes/s for " << secs << " s (partial downloads are kept; the next pull resumes them)";
    result = common::MakeError(common::Errc::kUnavailable, msg.str());
  }
  if (result && options_.snapshotter != nullptr) {
    auto unpacked = [&]() -> common::Status {
      image::UnpackOptions uo{.snapshotter = options_.snapshotter,
                              .metadata = &db_,
                              .cancel = &f->cancel};
      TRY(image::UnpackRecorded(content_, uo, result->name));
      return {};
    }();
    if (!unpacked) result = std::unexpected(unpacked.error().Wrap("unpack " + ref.str()));
  }
  recorder.Finish(result ? common::Status{} : std::unexpected(result.error()));
  return result;
}

}  // namespace criimage
