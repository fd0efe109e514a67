#include "image/pull.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "image/image_record.h"
#include "image/pull_progress.h"
#include "store/store_lock.h"

namespace image {
namespace {

using common::Errc;
using common::MakeError;
using Kind = PullEvent::Kind;

// Applies each layer while it downloads, as a follower of its download
// (UnpackOptions::flights), or, for a blob that is not in flight, as soon
// as it is verified in the content store. Fed the pull's events: the
// resolution gives the layers and the config, each kLayerDone a verified
// blob. A worker thread runs image::UnpackLayers, whose wait_for_blob
// waits here.
class LayerFeed {
 public:
  // `source` (may be null; must outlive the feed): layers it holds in
  // local files are applied from them while the pull stores the same bytes
  // (UnpackOptions::open_local). `flights` (must outlive the feed): the
  // table the pull publishes its downloads in.
  LayerFeed(const PullStore& store, snapshot::Snapshotter& sn, registry::ImageSource* source,
            PullFlights& flights, const std::atomic<bool>* cancel,
            std::function<void(const PullEvent&)> on_event)
      : store_(store),
        sn_(sn),
        source_(source),
        flights_(flights),
        cancel_(cancel),
        on_event_(std::move(on_event)) {
    worker_ = std::thread([this] { Work(); });
  }
  ~LayerFeed() {
    StopWaiting();
    if (worker_.joinable()) worker_.join();
  }
  LayerFeed(const LayerFeed&) = delete;
  LayerFeed& operator=(const LayerFeed&) = delete;

  // The pull's events (from its threads, serialised by the caller).
  void OnEvent(const PullEvent& e) {
    {
      std::lock_guard l(mu_);
      if (e.kind == Kind::kResolved && !resolved_ && e.config) {
        resolved_ = true;
        layers_ = e.layers;
        config_ = *e.config;
      } else if (e.kind == Kind::kLayerDone && e.digest) {
        ready_.insert(e.digest->str());
      } else {
        return;
      }
    }
    cv_.notify_all();
  }

  // Once every blob is in the store: waits for the layers being applied
  // and returns their error, or the chainIDs of the image's layers, every
  // one of them committed; nullopt when the worker did not apply them
  // (Finish then does).
  common::Result<std::optional<std::vector<common::Digest>>> WaitForLayers() {
    // Every blob has had its kLayerDone: the worker waits for no more.
    if (worker_.joinable()) worker_.join();
    if (early_error_) return std::unexpected(*early_error_);
    if (!early_ || !early_complete_) return std::optional<std::vector<common::Digest>>();
    return std::optional<std::vector<common::Digest>>(early_->chain_ids);
  }

  // Once the pull returned and recorded `name`: waits for the worker, then
  // unpacks the record (applying what is still missing, labelling its
  // chain), unless the record was written labelled with the chain the
  // worker committed (`labelled`): then there is nothing left to do. What
  // the worker applied counts in the result.
  common::Result<UnpackResult> Finish(const std::string& name, bool labelled) {
    StopWaiting();
    if (worker_.joinable()) worker_.join();
    int applied = 0;
    int64_t bytes = 0;
    if (early_error_) return std::unexpected(*early_error_);
    if (labelled && early_ && early_complete_) return *early_;
    if (early_) {
      applied = early_->layers_applied;
      bytes = early_->bytes_unpacked;
    }
    UnpackOptions opts{.snapshotter = &sn_, .metadata = store_.metadata, .cancel = cancel_};
    ASSIGN_OR_RETURN(UnpackResult r, UnpackRecorded(*store_.content, opts, name));
    r.layers_applied += applied;
    r.bytes_unpacked += bytes;
    return r;
  }

 private:
  void StopWaiting() {
    {
      std::lock_guard l(mu_);
      pull_over_ = true;
    }
    cv_.notify_all();
  }

  common::Status WaitForBlob(const common::Digest& blob) {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return ready_.contains(blob.str()) || pull_over_; });
    if (ready_.contains(blob.str())) return {};
    return MakeError(Errc::kCancelled,
                     "the pull stopped before blob " + blob.str() + " was fetched");
  }

  void Work() {
    std::vector<oci::Descriptor> layers;
    oci::Descriptor config;
    {
      std::unique_lock l(mu_);
      cv_.wait(l, [&] { return resolved_ || pull_over_; });
      if (!resolved_) return;  // Finish unpacks it all
      layers = layers_;
      config = *config_;
    }
    auto r = UnpackEarly(std::move(layers), std::move(config));
    if (r)
      early_ = std::move(*r);
    else
      early_error_ = std::move(r.error());
  }

  common::Result<UnpackResult> UnpackEarly(std::vector<oci::Descriptor> layers,
                                           oci::Descriptor config) {
    TRY(WaitForBlob(config.digest));
    ImageParts parts;
    {
      // The config's bytes (up to 16 MiB) are not kept for the unpack.
      ASSIGN_OR_RETURN(std::string body, store_.content->ReadBlob(config.digest));
      ASSIGN_OR_RETURN(parts.config,
                       common::Wrap(oci::ParseImageConfig(body), "config " + config.digest.str()));
    }
    parts.manifest.config = std::move(config);
    parts.manifest.layers = std::move(layers);
    // A config that does not match the manifest fails the pull itself.
    if (parts.config.diff_ids.size() != parts.manifest.layers.size()) return UnpackResult{};
    parts.chain_ids = oci::ChainIds(parts.config.diff_ids);
    UnpackOptions opts{.snapshotter = &sn_,
                       .metadata = store_.metadata,
                       .cancel = cancel_,
                       .wait_for_blob = [this](const common::Digest& d) { return WaitForBlob(d); },
                       .open_local = nullptr,
                       .flights = &flights_,
                       .on_event = on_event_};
    if (source_ != nullptr)
      opts.open_local = [this](const common::Digest& d) { return source_->OpenLocalBlob(d); };
    ASSIGN_OR_RETURN(UnpackResult r, UnpackLayers(*store_.content, opts, parts));
    early_complete_ = true;  // read once the worker is joined
    return r;
  }

  const PullStore& store_;
  snapshot::Snapshotter& sn_;
  registry::ImageSource* source_;
  PullFlights& flights_;
  const std::atomic<bool>* cancel_;
  std::function<void(const PullEvent&)> on_event_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool resolved_ = false;  // guarded by mu_, as the next four
  bool pull_over_ = false;
  std::vector<oci::Descriptor> layers_;
  std::optional<oci::Descriptor> config_;
  std::set<std::string> ready_;  // blobs verified in the store
  // The worker's result, read once it is joined.
  std::optional<UnpackResult> early_;
  bool early_complete_ = false;  // early_ applied every layer (all committed)
  std::optional<common::Error> early_error_;
  std::thread worker_;  // last: started once the rest is set up
};

// The pull-wide rate floor's measure: bytes held by the pull, and whether
// it should be measured now. Fed the pull's events (serialised).
class RateMeter {
 public:
  void OnEvent(const PullEvent& e) {
    if (!e.digest || (e.kind != Kind::kLayerProgress && e.kind != Kind::kLayerDone &&
                      e.kind != Kind::kLayerStart))
      return;
    const std::string key = e.digest->str();
    int64_t& h = held_[key];
    held_total_ += e.current - h;
    h = e.current;
    bool& w = waiting_[key];
    const bool now_waiting = e.state == LayerState::kWaiting;
    if (now_waiting != w) waiting_total_ += now_waiting ? 1 : -1;
    w = now_waiting;
  }
  void AllBlobsIn() { all_in_ = true; }

  int64_t held() const { return held_total_.load(); }
  // A layer waits for another writer of its blob (which has its own floor),
  // or no bytes flow any more.
  bool suspended() const { return waiting_total_.load() > 0 || all_in_.load(); }

 private:
  std::map<std::string, int64_t> held_;  // per blob
  std::map<std::string, bool> waiting_;  // per blob: waiting for another writer's ingest lock
  std::atomic<int64_t> held_total_{0};
  std::atomic<int> waiting_total_{0};
  std::atomic<bool> all_in_{false};
};

// Runs `pull` on a thread while this one watches the floor and the
// caller's cancel (copied into `stop`, the flag the pull obeys). Returns
// the pull's result, or the floor's Unavailable when it cancelled it.
common::Result<FetchResult> PullWithFloor(
    const std::string& name, const RateFloor& floor, const RateMeter& meter,
    const std::atomic<bool>* cancel, std::atomic<bool>& stop,
    const std::function<common::Result<FetchResult>()>& pull) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::optional<common::Result<FetchResult>> r;
  std::thread worker([&] {
    auto pulled = pull();
    std::lock_guard l(mu);
    r = std::move(pulled);
    done = true;
    cv.notify_all();
  });

  // Bytes held now against bytes held one window ago, sampled every tick;
  // the caller's cancel is looked at more often.
  using Clock = std::chrono::steady_clock;
  const auto window = floor.window;
  const auto tick = std::clamp<std::chrono::milliseconds>(
      std::chrono::duration_cast<std::chrono::milliseconds>(window / 8),
      std::chrono::milliseconds(50), std::chrono::milliseconds(1000));
  constexpr std::chrono::milliseconds kWaitPoll{50};
  auto last_sample = Clock::now();
  std::deque<std::pair<Clock::time_point, int64_t>> samples{{last_sample, 0}};
  bool too_slow = false;
  {
    std::unique_lock l(mu);
    while (!done) {
      cv.wait_for(l, std::min(tick, kWaitPoll));
      if (done) break;
      if (cancel != nullptr && cancel->load()) stop = true;
      const auto now = Clock::now();
      if (now - last_sample < tick) continue;
      last_sample = now;
      const int64_t bytes = meter.held();
      if (meter.suspended()) {
        // The window restarts once the pull is measured again.
        samples.assign({{now, bytes}});
        continue;
      }
      samples.emplace_back(now, bytes);
      while (samples.size() > 1 && samples[1].first <= now - window) samples.pop_front();
      if (floor.bytes_per_sec > 0 && samples.front().first <= now - window) {
        const double secs = std::chrono::duration<double>(now - samples.front().first).count();
        if (static_cast<double>(bytes - samples.front().second) <
            static_cast<double>(floor.bytes_per_sec) * secs) {
          too_slow = true;
          stop = true;
          // Keep waiting: the pull stops at its next cancel check.
        }
      }
    }
  }
  worker.join();
  if (!*r && too_slow) {
    const auto secs =
        std::chrono::duration_cast<std::chrono::milliseconds>(window).count() / 1000.0;
    std::ostringstream msg;
    msg << "pull " << name << ": cancelled: downloaded less than " << floor.bytes_per_sec
        << " bytes/s for " << secs << " s (partial downloads are kept; the next pull resumes them)";
    return MakeError(Errc::kUnavailable, msg.str());
  }
  return std::move(*r);
}

common::Result<PulledImage> Run(const PullStore& store, const PullImageOptions& options,
                                const std::string& name, ProgressRecorder& recorder) {
  auto lock = store::StoreLock::Shared(store.root, options.cancel);
  if (!lock) return std::unexpected(lock.error().Wrap("pull " + name));

  // With a floor the pull obeys its own flag, which the watching thread
  // sets on the caller's cancel or the floor's.
  std::atomic<bool> stop{false};
  const std::atomic<bool>* cancel = options.rate_floor ? &stop : options.cancel;

  FetchOptions po;
  po.platform = options.platform;
  po.client = options.client;
  po.max_concurrent_downloads = options.max_concurrent_downloads;
  po.max_layers = options.max_layers;
  po.cancel = cancel;
  // The unpack follows the downloads through the flights: the caller's,
  // or the pull's own.
  PullFlights own_flights;
  // A pull that unpacks nothing has no follower: no table, no per-write
  // publishing.
  po.flights = options.flights != nullptr       ? options.flights
               : options.snapshotter != nullptr ? &own_flights
                                                : nullptr;
  po.trust = options.trust;
  if (options.rate_floor) {
    // The client's own floor (per transfer, retried) stays as a backstop
    // for one layer trickling while others flow, with twice the window so
    // that the pull-wide floor decides first.
    po.client.min_rate_bytes_per_sec = options.rate_floor->bytes_per_sec;
    po.client.min_rate_window = std::max(
        std::chrono::seconds(1), std::chrono::duration_cast<std::chrono::seconds>(
                                     2 * options.rate_floor->window + std::chrono::seconds(1)));
  }
  if (!options.check_space) {
    po.space.enabled = false;
  } else if (options.snapshotter != nullptr) {
    auto space = UnpackSpaceCheck(*options.snapshotter, store.root);
    if (!space) return std::unexpected(space.error().Wrap("pull " + name));
    po.space = std::move(*space);
  }

  // The recorder, the caller and the floor get the pull's events (from the
  // download threads) and the unpack's (from the unpack threads): one at a
  // time.
  std::shared_ptr<registry::ImageSource> source = options.opened_source;
  if (!source) {
    ASSIGN_OR_RETURN(std::unique_ptr<registry::ImageSource> opened,
                     OpenSource(options.source, po.client));
    source = std::move(opened);
  }

  std::mutex events_mu;
  RateMeter meter;
  std::unique_ptr<LayerFeed> feed;
  if (options.snapshotter != nullptr) {
    feed = std::make_unique<LayerFeed>(store, *options.snapshotter, source.get(), *po.flights,
                                       cancel, [&](const PullEvent& e) {
                                         PullEvent named = e;
                                         named.ref = name;
                                         std::lock_guard l(events_mu);
                                         recorder.OnEvent(named);
                                         if (options.on_event) options.on_event(named);
                                       });
  }
  bool labelled = false;  // the record says unpacked, with the chain the feed committed
  po.record = [&](const FetchResult& pulled) -> common::Result<store::ImageRecord> {
    Image img = ImageOf(pulled);
    if (feed) {
      // The layers are committed before the image is recorded: an image
      // whose layers could not be applied (a full disk) is not listed.
      {
        // Every blob is in; what is left is unpacking.
        std::lock_guard l(events_mu);
        recorder.SetPhase(PullPhase::kUnpacking);
        meter.AllBlobsIn();
      }
      ASSIGN_OR_RETURN(std::optional<std::vector<common::Digest>> chains, feed->WaitForLayers());
      // Every layer committed: the record says so itself (no second
      // transaction to label it, and a re-pull finds it as it would write it).
      if (chains && *chains == oci::ChainIds(pulled.image_config.diff_ids)) {
        img.unpacked = true;
        if (!chains->empty()) img.top_chain = chains->back();
        labelled = true;
      }
    }
    return ToRecord(img);
  };
  po.on_event = [&](const PullEvent& e) {
    std::lock_guard l(events_mu);
    recorder.OnEvent(e);
    if (options.on_event) options.on_event(e);
    meter.OnEvent(e);
    if (feed) feed->OnEvent(e);
  };

  auto pull = [&] { return FetchFrom(*store.content, *store.metadata, *source, name, po); };
  auto pulled = options.rate_floor
                    ? PullWithFloor(name, *options.rate_floor, meter, options.cancel, stop, pull)
                    : pull();
  if (!pulled) return std::unexpected(pulled.error());
  PulledImage out{.pull = std::move(*pulled), .unpack = std::nullopt};
  if (feed) {
    auto u = feed->Finish(out.pull.name, labelled);
    if (!u) return std::unexpected(u.error().Wrap("unpack " + out.pull.name));
    out.unpack = std::move(*u);
  }
  return out;
}

}  // namespace

common::Result<PulledImage> PullImage(const PullStore& store, const PullImageOptions& options) {
  const std::string name = options.source.ref.str();
  ProgressRecorder recorder(store.root, name);
  auto r = Run(store, options, name, recorder);
  recorder.Finish(r ? common::Status{} : std::unexpected(r.error()));
  return r;
}

common::Result<UnpackResult> UnpackStoredImage(const PullStore& store, snapshot::Snapshotter& sn,
                                               const std::string& name,
                                               const std::atomic<bool>* cancel) {
  // Shared, as a pull holds it: a prune must not collect the layers or the
  // extract snapshots while they are being applied.
  ASSIGN_OR_RETURN(auto lock,
                   common::Wrap(store::StoreLock::Shared(store.root, cancel), "unpack " + name));
  ASSIGN_OR_RETURN(store::ImageRecord rec, store.metadata->GetImage(name));
  UnpackOptions opts{.snapshotter = &sn, .metadata = store.metadata, .cancel = cancel};
  return Unpack(*store.content, opts, rec);
}

}  // namespace image
