#include "criimage/serve_metrics.h"

#include "common/log.h"

namespace criimage {

std::string_view PullResultLabel(const common::Status& outcome) {
  if (outcome) return "success";
  using common::Errc;
  switch (outcome.error().code) {
    case Errc::kNotFound:
      return "not_found";
    case Errc::kUnauthenticated:
      return "unauthenticated";
    case Errc::kUnavailable:
      return "unavailable";
    case Errc::kDataLoss:
      return "data_loss";
    case Errc::kResourceExhausted:
      return "resource_exhausted";
    case Errc::kPermissionDenied:
      return "permission_denied";
    case Errc::kCancelled:
      return "cancelled";
    default:
      return "other";
  }
}

std::string_view GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Counts one RPC when its status goes out (PRE_SEND_STATUS), whatever
// the handler: unary and streaming, every service of the server.
class RpcInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcInterceptor(ServeMetrics* m, const char* method)
      : m_(m), method_(method != nullptr ? method : ""), start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS))
      m_->CountRpc(method_, methods->GetSendStatus().error_code(),
                   std::chrono::steady_clock::now() - start_);
    methods->Proceed();
  }

 private:
  ServeMetrics* m_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
};

class RpcInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcInterceptorFactory(ServeMetrics* m) : m_(m) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcInterceptor(m_, info->method());
  }

 private:
  ServeMetrics* m_;
};

}  // namespace

ServeMetrics::ServeMetrics(metrics::Registry& registry, store::MetadataDb& db) {
  auto& pulls = registry.AddCounter(
      "gantry_pulls_total",
      "Pulls run by the server (CRI PullImage and the registry door's pull-through; callers "
      "that join a pull in flight are not counted again), by result.",
      {"result"});
  // Every result from the start, at 0: a rate over a series that appears
  // only at its first increment misses that increment.
  for (size_t i = 0; i < kResults.size(); ++i) pulls_[i] = &pulls.With({kResults[i]});
  pull_seconds_ = &registry
                       .AddHistogram("gantry_pull_duration_seconds",
                                     "Time a pull took, from its start to its end (not the wait "
                                     "for a pull slot), whatever its result.",
                                     {}, metrics::kPullSecondsBuckets)
                       .With({});
  auto& bytes = registry.AddCounter(
      "gantry_pull_bytes_total",
      "Bytes of the blobs pulls needed: source=upstream downloaded from the registry (by pulls "
      "that succeeded), source=present already in the store.",
      {"source"});
  bytes_upstream_ = &bytes.With({"upstream"});
  bytes_present_ = &bytes.With({"present"});
  rpcs_ = &registry.AddCounter("gantry_cri_requests_total",
                               "gRPC requests served on the CRI socket (and on the snapshotter "
                               "door's), by method and gRPC status code.",
                               {"method", "code"});
  rpc_seconds_ = &registry.AddHistogram("gantry_cri_request_duration_seconds",
                                        "Time gRPC requests took, by method.", {"method"},
                                        metrics::kRequestSecondsBuckets);
  metrics::Gauge& images =
      registry.AddGauge("gantry_images", "Image records in the store.", {}).With({});
  metrics::Gauge& blobs =
      registry.AddGauge("gantry_store_blobs", "Blobs in the store's content.", {}).With({});
  metrics::Gauge& blob_bytes =
      registry
          .AddGauge("gantry_store_content_bytes",
                    "Bytes of the blobs in the store's content (each blob once, however many "
                    "images use it; unpacked snapshots not included).",
                    {})
          .With({});
  // One query per scrape for the three. A failed read (the database
  // locked past its busy timeout) leaves the last values and says so at
  // debug level: a scrape never fails for it.
  registry.OnCollect([&db, &images, &blobs, &blob_bytes] {
    auto t = db.Totals();
    if (!t) {
      LOG(Debug) << "metrics: store totals unavailable" << common::Kv("error", t.error().message);
      return;
    }
    images.Set(static_cast<double>(t->images));
    blobs.Set(static_cast<double>(t->blobs));
    blob_bytes.Set(static_cast<double>(t->blob_bytes));
  });
}

void ServeMetrics::CountPull(const common::Status& outcome,
                             std::chrono::steady_clock::duration took) {
  const std::string_view label = PullResultLabel(outcome);
  for (size_t i = 0; i < kResults.size(); ++i) {
    if (kResults[i] == label) pulls_[i]->Inc();
  }
  pull_seconds_->Observe(Seconds(took));
}

void ServeMetrics::OnPullEvent(const image::PullEvent& e) {
  using Kind = image::PullEvent::Kind;
  if (e.kind == Kind::kLayerDone && e.state == image::LayerState::kExists && e.total > 0)
    bytes_present_->Inc(static_cast<uint64_t>(e.total));
  else if (e.kind == Kind::kDone && e.current > 0)
    bytes_upstream_->Inc(static_cast<uint64_t>(e.current));
}

void ServeMetrics::CountRpc(std::string_view method, grpc::StatusCode code,
                            std::chrono::steady_clock::duration took) {
  if (method.starts_with('/')) method.remove_prefix(1);
  rpcs_->With({method, GrpcCodeName(code)}).Inc();
  rpc_seconds_->With({method}).Observe(Seconds(took));
}

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
ServeMetrics::Interceptors() {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> out;
  out.push_back(std::make_unique<RpcInterceptorFactory>(this));
  return out;
}

}  // namespace criimage
