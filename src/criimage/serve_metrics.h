#pragma once
// The CRI server's metrics (docs/metrics.md lists them). Internal to
// criimage: the Server adds them to the registry it is given
// (ServeOptions::metrics), the pull manager counts each pull (CountPull)
// and feeds its unpack events (OnPullEvent), the reclaimer counts its
// collections (CountGc), and a gRPC interceptor counts every RPC of the
// server's services (Interceptors()). At each scrape it reads the store:
// image and blob totals, snapshots, disk usage (at most once a minute),
// and the counters CLI commands added (store::MetadataDb::ListCounters),
// which it adds to its own (metrics::Counter::SetExternal).
//
// Thread-safety: every member may be called from any thread.

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/digest.h"
#include "image/fetch.h"
#include "image/pull_metrics.h"
#include "metrics/metrics.h"
#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"
#include "upkeep/gc.h"

namespace criimage {

// The `code` label of gantry_cri_requests_total: the gRPC code's name
// ("OK", "NOT_FOUND", …).
std::string_view GrpcCodeName(grpc::StatusCode code);

// What the scrape-time figures read. REQUIRES: all outlive the ServeMetrics.
struct MetricsSources {
  store::MetadataDb* db = nullptr;  // a connection of its own
  const store::ContentStore* content = nullptr;
  std::vector<snapshot::Snapshotter*> snapshotters;
};

class ServeMetrics {
 public:
  // Adds the server's families to `registry`. REQUIRES: `registry`
  // outlives this object, and it outlives every scrape of `registry`.
  ServeMetrics(metrics::Registry& registry, MetricsSources sources);

  // One pull run by the pull manager (joined callers are not pulls),
  // `took` from its start to its end, excluding the wait for a slot.
  void CountPull(const image::PullTally& tally, std::chrono::steady_clock::duration took);
  // Times each layer's unpack from its first kLayerUnpack event
  // (kUnpacking) to its kUnpacked one; other events are ignored.
  void OnPullEvent(const image::PullEvent& e);
  // One collection by the reclaimer (upkeep::GcCounterDeltas, trigger
  // "reclaimer").
  void CountGc(const upkeep::GcReport& report);
  // One RPC that ended with `code`; `method` is gRPC's "/pkg.Service/Method".
  void CountRpc(std::string_view method, grpc::StatusCode code,
                std::chrono::steady_clock::duration took);

  // The interceptor factories to give grpc::ServerBuilder (one, which
  // calls CountRpc for each RPC).
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
  Interceptors();

 private:
  // Adds each delta to this process's counter of that name and labels.
  void Add(std::span<const store::CounterDelta> deltas);
  // The scrape-time reading (Registry::OnCollect).
  void Collect();

  metrics::Registry& registry_;
  MetricsSources sources_;
  metrics::Histogram* pull_seconds_ = nullptr;
  metrics::Histogram* unpack_seconds_ = nullptr;
  metrics::Family<metrics::Counter>* rpcs_ = nullptr;
  metrics::Family<metrics::Histogram>* rpc_seconds_ = nullptr;
  // A method's series, looked up once: an RPC then takes a shared lock
  // and no allocation, where Family::With takes the family's mutex and
  // builds its key.
  struct MethodSeries {
    metrics::Histogram* seconds = nullptr;
    std::array<std::atomic<metrics::Counter*>, 17> by_code{};  // by grpc::StatusCode
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::shared_mutex methods_mu_;  // guards methods_ (the map, not the series)
  std::unordered_map<std::string, std::unique_ptr<MethodSeries>, StringHash, std::equal_to<>>
      methods_;
  metrics::Gauge* images_ = nullptr;
  metrics::Gauge* blobs_ = nullptr;
  metrics::Gauge* blob_bytes_ = nullptr;
  metrics::Family<metrics::Gauge>* snapshots_ = nullptr;
  metrics::Family<metrics::Gauge>* store_bytes_ = nullptr;
  metrics::Gauge* reclaimable_ = nullptr;

  std::mutex unpack_mu_;  // guards unpack_start_
  std::map<common::Digest, std::chrono::steady_clock::time_point> unpack_start_;
  // Collect() runs on one scrape at a time; guards usage_at_.
  std::mutex collect_mu_;
  std::chrono::steady_clock::time_point usage_at_{};
};

}  // namespace criimage
