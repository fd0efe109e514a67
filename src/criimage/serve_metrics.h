#pragma once
// The CRI server's metrics (docs/metrics.md lists them). Internal to
// criimage: the Server adds them to the registry it is given
// (ServeOptions::metrics), the pull manager counts pulls and their bytes
// through CountPull and OnPullEvent, and a gRPC interceptor counts every
// RPC of the server's services (Interceptors()).
//
// Thread-safety: every member may be called from any thread.

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <chrono>
#include <memory>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "image/fetch.h"
#include "metrics/metrics.h"
#include "store/metadata.h"

namespace criimage {

// The `result` label of gantry_pulls_total for a pull's outcome:
// "success", or the error class ("not_found", "unauthenticated",
// "unavailable", "data_loss", "resource_exhausted", "permission_denied",
// "cancelled"), "other" for the rest.
std::string_view PullResultLabel(const common::Status& outcome);

// The `code` label of gantry_cri_requests_total: the gRPC code's name
// ("OK", "NOT_FOUND", …).
std::string_view GrpcCodeName(grpc::StatusCode code);

class ServeMetrics {
 public:
  // Adds the pull, RPC and store families to `registry`; the store
  // gauges read `db` at each scrape (one query, MetadataDb::Totals).
  // REQUIRES: `registry` and `db` outlive this object, and it outlives
  // every scrape of `registry`.
  ServeMetrics(metrics::Registry& registry, store::MetadataDb& db);

  // One pull run by the pull manager (joined callers are not pulls),
  // `took` from its start to its end, excluding the wait for a slot.
  void CountPull(const common::Status& outcome, std::chrono::steady_clock::duration took);
  // Counts the bytes of a pull's events: a blob found in the store
  // (source="present"), the new bytes of the finished pull
  // (source="upstream").
  void OnPullEvent(const image::PullEvent& e);
  // One RPC that ended with `code`; `method` is gRPC's "/pkg.Service/Method".
  void CountRpc(std::string_view method, grpc::StatusCode code,
                std::chrono::steady_clock::duration took);

  // The interceptor factories to give grpc::ServerBuilder (one, which
  // calls CountRpc for each RPC).
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
  Interceptors();

 private:
  static constexpr std::array<std::string_view, 9> kResults = {
      "success",           "not_found", "unauthenticated",
      "unavailable",       "data_loss", "resource_exhausted",
      "permission_denied", "cancelled", "other"};
  // Set by the constructor, never null after it.
  std::array<metrics::Counter*, kResults.size()> pulls_{};
  metrics::Histogram* pull_seconds_ = nullptr;
  metrics::Counter* bytes_upstream_ = nullptr;
  metrics::Counter* bytes_present_ = nullptr;
  metrics::Family<metrics::Counter>* rpcs_ = nullptr;
  metrics::Family<metrics::Histogram>* rpc_seconds_ = nullptr;
};

}  // namespace criimage
