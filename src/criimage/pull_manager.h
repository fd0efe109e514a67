#pragma once
// Pulls on behalf of CRI callers. Internal to criimage.
//
// Single flight: callers asking for the same reference with the same
// credentials at once share one pull, and every one of them gets its
// result. Different pulls run in parallel, at most `max_parallel` at a
// time (the others queue). A blob shared by two pulls is downloaded once:
// the content store's ingest lock makes the second wait for the first.
//
// The pull itself is the one pipeline's (image/pull.h): the shared store
// lock, the space and layer-count checks, the progress record
// (gantry.v1.PullProgress and `gantry pull --attach` follow it), each
// layer applied into `snapshotter` as soon as its blob is verified, and
// the image recorded only once every layer is committed.
//
// Rate floor: kubelet sets no deadline on PullImage, so a pull whose
// download stays under `min_rate_bytes_per_sec` over any `min_rate_window`
// is cancelled with Unavailable (image::RateFloor). Its partial blobs stay
// in the ingest area and the next pull resumes them.
//
// Thread-safety: Pull may be called from many threads at once.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/error.h"
#include "image/fetch.h"
#include "registry/client.h"
#include "registry/reference.h"
#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace criimage {

class ServeMetrics;

struct PullManagerOptions {
  std::filesystem::path root;
  registry::ClientOptions client;  // hosts, credential lookup; creds are per call
  int max_parallel = 3;
  int max_concurrent_downloads = 3;
  int max_layers = image::kDefaultMaxLayers;  // FetchOptions::max_layers
  int64_t min_rate_bytes_per_sec = 1024;
  std::chrono::milliseconds min_rate_window = std::chrono::seconds(60);
  // Unpacks each pulled image into this snapshotter's chainID snapshots
  // (image::Unpack), as `gantry pull` does; null: content only.
  snapshot::Snapshotter* snapshotter = nullptr;
  bool check_space = true;
  // Where pulls publish what they bring in (image/pull_flights.h), for the
  // registry door's pull-through; null: nowhere.
  image::PullFlights* flights = nullptr;
  // The signature policy every pull obeys (PullImageOptions::trust); null
  // accepts every image.
  std::shared_ptr<const image::TrustPolicy> trust{};
  // Counts each pull, its duration and bytes (criimage/serve_metrics.h);
  // null: not counted. REQUIRES: outlives the manager.
  ServeMetrics* metrics = nullptr;
};

class PullManager {
 public:
  // REQUIRES: `content` and `db` outlive the manager.
  PullManager(store::ContentStore& content, store::MetadataDb& db, PullManagerOptions options);
  ~PullManager();  // cancels pulls in flight and waits for them

  // Pulls `ref` (or joins a pull of it with the same `creds` and
  // `platform` in progress) and returns the result; `platform` unset: the
  // host's. `cancelled` (may be empty) is polled while
  // waiting: a caller that goes away stops waiting (Cancelled), but a pull
  // others wait for is not stopped by it. Errors: Pull's; Unavailable for
  // the rate floor; Cancelled at shutdown.
  [[nodiscard]] common::Result<image::FetchResult> Pull(
      const registry::ImageRef& ref, const std::optional<registry::Credentials>& creds,
      const std::function<bool()>& cancelled,
      const std::optional<oci::Platform>& platform = std::nullopt);

  // Cancels every pull in flight (shutdown). Idempotent.
  void CancelAll();

 private:
  struct Flight;
  void Run(const std::shared_ptr<Flight>& f, const registry::ImageRef& ref,
           const std::optional<registry::Credentials>& creds,
           const std::optional<oci::Platform>& platform);
  // One pull through the pipeline (image/pull.h), with the rate floor.
  common::Result<image::FetchResult> PullOne(const std::shared_ptr<Flight>& f,
                                             const registry::ImageRef& ref,
                                             const std::optional<registry::Credentials>& creds,
                                             const std::optional<oci::Platform>& platform);

  store::ContentStore& content_;
  store::MetadataDb& db_;
  PullManagerOptions options_;
  std::mutex mu_;  // guards flights_, running_, shutdown_
  std::condition_variable slot_cv_;
  std::map<std::string, std::shared_ptr<Flight>> flights_;
  int running_ = 0;
  bool shutdown_ = false;
  int active_runs_ = 0;  // guarded by mu_: Run calls not returned yet
  std::condition_variable idle_cv_;
};

}  // namespace criimage
