#include "criimage/serve_metrics.h"

#include "common/log.h"
#include "upkeep/usage.h"

namespace criimage {

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

namespace {
// How often a scrape recomputes the disk usage (upkeep::ComputeUsage
// walks every snapshot's directory); scrapes in between report the last.
constexpr auto kUsageInterval = std::chrono::minutes(1);
}  // namespace

ServeMetrics::ServeMetrics(metrics::Registry& registry, MetricsSources sources)
    : registry_(registry), sources_(std::move(sources)) {
  // Every label value known in advance is exported from the start, at 0:
  // a rate over a series that appears only at its first increment misses
  // that increment.
  auto& pulls = registry.AddCounter(
      std::string(image::kPullsTotalMetric),
      "Pulls by result: run by the server (CRI PullImage, the registry door's pull-through; "
      "callers that join a pull in flight are not counted again) and by gantry pull on the "
      "same store.",
      {"result"});
  for (std::string_view r : image::kPullResults) pulls.With({r});
  pull_seconds_ = &registry
                       .AddHistogram("gantry_pull_duration_seconds",
                                     "Time a pull run by the server took, from its start to its "
                                     "end (not the wait for a pull slot), whatever its result.",
                                     {}, metrics::kPullSecondsBuckets)
                       .With({});
  auto& bytes = registry.AddCounter(
      std::string(image::kPullBytesMetric),
      "Bytes of the blobs pulls that succeeded needed, by where they came from: upstream (the "
      "registry), mirror, peer (another gantry node), present (already in the store).",
      {"source"});
  for (std::string_view s : image::kByteSources) bytes.With({s});
  registry
      .AddCounter(std::string(image::kFetchRetriesMetric),
                  "Blob downloads attempted again after a failed attempt (a cut, a stall, "
                  "429/5xx).",
                  {})
      .With({});
  registry
      .AddCounter(std::string(image::kFetchStallsMetric),
                  "Blob transfers ended by the rate floor (--min-rate over --min-rate-window).", {})
      .With({});
  registry
      .AddCounter(std::string(image::kUnpackBytesMetric),
                  "Uncompressed layer bytes applied to snapshots by pulls.", {})
      .With({});
  registry
      .AddCounter(std::string(image::kUnpackLayersMetric),
                  "Layers unpacked into new snapshots by pulls.", {})
      .With({});
  unpack_seconds_ = &registry
                         .AddHistogram("gantry_unpack_duration_seconds",
                                       "Time a layer's unpack took in a pull run by the server, "
                                       "from its start to its snapshot (a layer unpacked as it "
                                       "downloads includes the wait for its bytes).",
                                       {}, metrics::kRequestSecondsBuckets)
                         .With({});
  auto& gc_runs = registry.AddCounter(std::string(upkeep::kGcRunsMetric),
                                      "Garbage collections of the store, by trigger: prune (gantry "
                                      "prune) or reclaimer (the server, after CRI RemoveImage).",
                                      {"trigger"});
  for (std::string_view t : upkeep::kGcTriggers) gc_runs.With({t});
  auto& gc_bytes = registry.AddCounter(
      std::string(upkeep::kGcFreedBytesMetric),
      "Bytes garbage collections freed, by kind: content (blobs), snapshots, ingest (partial "
      "downloads).",
      {"kind"});
  for (std::string_view k : upkeep::kGcFreedKinds) gc_bytes.With({k});
  rpcs_ = &registry.AddCounter("gantry_cri_requests_total",
                               "gRPC requests served on the CRI socket (and on the snapshotter "
                               "door's), by method and gRPC status code.",
                               {"method", "code"});
  rpc_seconds_ = &registry.AddHistogram("gantry_cri_request_duration_seconds",
                                        "Time gRPC requests took, by method.", {"method"},
                                        metrics::kRequestSecondsBuckets);
  images_ = &registry.AddGauge("gantry_images", "Image records in the store.", {}).With({});
  blobs_ = &registry.AddGauge("gantry_store_blobs", "Blobs in the store's content.", {}).With({});
  blob_bytes_ = &registry
                     .AddGauge("gantry_store_content_bytes",
                               "Bytes of the blobs in the store's content (each blob once, "
                               "however many images use it; unpacked snapshots not included).",
                               {})
                     .With({});
  snapshots_ = &registry.AddGauge("gantry_snapshots",
                                  "Snapshots in the store, by snapshotter and kind (committed "
                                  "layers, active and view snapshots of containers).",
                                  {"snapshotter", "kind"});
  store_bytes_ = &registry.AddGauge(
      "gantry_store_bytes",
      "Disk space the store uses, by part: content (blob files), snapshots (each once), ingest "
      "(partial downloads). Recomputed at most once a minute.",
      {"part"});
  reclaimable_ = &registry
                      .AddGauge("gantry_store_reclaimable_bytes",
                                "Bytes gantry prune would free now (unused blobs and snapshots, "
                                "stale partial downloads). Recomputed at most once a minute.",
                                {})
                      .With({});
  registry.OnCollect([this] { Collect(); });
}

void ServeMetrics::Collect() {
  std::lock_guard<std::mutex> lock(collect_mu_);
  // A failed read (the database locked past its busy timeout) leaves the
  // last values and says so at debug level: a scrape never fails for it.
  auto failed = [](std::string_view what, const common::Error& e) {
    LOG(Debug) << "metrics: store figures unavailable" << common::Kv("what", what)
               << common::Kv("error", e.message);
  };
  if (auto t = sources_.db->Totals(); t) {
    images_->Set(static_cast<double>(t->images));
    blobs_->Set(static_cast<double>(t->blobs));
    blob_bytes_->Set(static_cast<double>(t->blob_bytes));
  } else {
    failed("totals", t.error());
  }
  if (auto rows = sources_.db->ListCounters(); rows) {
    for (const store::CounterDelta& row : *rows) {
      metrics::Family<metrics::Counter>* family = registry_.FindCounter(row.name);
      // A name or label set this gantry does not know (a newer CLI's).
      if (family == nullptr || family->label_names().size() != row.labels.size() || row.value < 0)
        continue;
      std::vector<std::string_view> values(row.labels.begin(), row.labels.end());
      family->With(values).SetExternal(static_cast<uint64_t>(row.value));
    }
  } else {
    failed("counters", rows.error());
  }
  for (snapshot::Snapshotter* sn : sources_.snapshotters) {
    auto list = sn->List();
    if (!list) {
      failed("snapshots", list.error());
      continue;
    }
    std::map<snapshot::SnapshotKind, int> by_kind{{snapshot::SnapshotKind::kCommitted, 0},
                                                  {snapshot::SnapshotKind::kActive, 0},
                                                  {snapshot::SnapshotKind::kView, 0}};
    for (const snapshot::Info& info : *list) ++by_kind[info.kind];
    for (const auto& [kind, n] : by_kind)
      snapshots_->With({snapshot::KindName(sn->kind()), snapshot::SnapshotKindName(kind)}).Set(n);
  }
  const auto now = std::chrono::steady_clock::now();
  if (usage_at_ == std::chrono::steady_clock::time_point{} || now - usage_at_ >= kUsageInterval) {
    usage_at_ = now;
    auto u = upkeep::ComputeUsage(*sources_.content, *sources_.db, sources_.snapshotters);
    if (u) {
      store_bytes_->With({"content"}).Set(static_cast<double>(u->content_total.bytes));
      store_bytes_->With({"snapshots"}).Set(static_cast<double>(u->snapshots_total.bytes));
      store_bytes_->With({"ingest"}).Set(static_cast<double>(u->ingest_total.bytes));
      reclaimable_->Set(static_cast<double>(u->reclaimable));
    } else {
      failed("usage", u.error());
    }
  }
}

void ServeMetrics::Add(std::span<const store::CounterDelta> deltas) {
  for (const store::CounterDelta& d : deltas) {
    metrics::Family<metrics::Counter>* family = registry_.FindCounter(d.name);
    if (family == nullptr || d.value <= 0) continue;
    std::vector<std::string_view> values(d.labels.begin(), d.labels.end());
    family->With(values).Inc(static_cast<uint64_t>(d.value));
  }
}

void ServeMetrics::CountPull(const image::PullTally& tally,
                             std::chrono::steady_clock::duration took) {
  Add(image::CounterDeltas(tally));
  pull_seconds_->Observe(Seconds(took));
}

void ServeMetrics::OnPullEvent(const image::PullEvent& e) {
  if (e.kind != image::PullEvent::Kind::kLayerUnpack || !e.digest) return;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(unpack_mu_);
  if (e.state == image::LayerState::kUnpacking) {
    // The unpacker's first event of a layer has no bytes yet; it starts
    // the clock (again, if an earlier unpack of the layer failed).
    if (e.current == 0)
      unpack_start_[*e.digest] = now;
    else
      unpack_start_.emplace(*e.digest, now);
  } else if (e.state == image::LayerState::kUnpacked) {
    auto it = unpack_start_.find(*e.digest);
    if (it == unpack_start_.end()) return;  // already there: nothing was unpacked
    unpack_seconds_->Observe(Seconds(now - it->second));
    unpack_start_.erase(it);
  }
}

void ServeMetrics::CountGc(const upkeep::GcReport& report) {
  Add(upkeep::GcCounterDeltas(report, "reclaimer"));
}
void ServeMetrics::CountRpc(std::string_view method, grpc::StatusCode code,
                            std::chrono::steady_clock::duration took) {
  if (method.starts_with('/')) method.remove_prefix(1);
  MethodSeries* series = nullptr;
  {
    std::shared_lock<std::shared_mutex> lock(methods_mu_);
    if (auto it = methods_.find(method); it != methods_.end()) series = it->second.get();
  }
  if (series == nullptr) {
    std::unique_lock<std::shared_mutex> lock(methods_mu_);
    auto [it, added] = methods_.try_emplace(std::string(method));
    if (added) {
      it->second = std::make_unique<MethodSeries>();
      it->second->seconds = &rpc_seconds_->With({method});
    }
    series = it->second.get();
  }
  // gRPC's codes are 0 to 16; another value is counted as UNKNOWN.
  const auto index = static_cast<size_t>(code);
  std::atomic<metrics::Counter*>& slot =
      series->by_code[index < series->by_code.size()
                          ? index
                          : static_cast<size_t>(grpc::StatusCode::UNKNOWN)];
  metrics::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Two first callers find the same child; either may store it.
    counter = &rpcs_->With({method, GrpcCodeName(code)});
    slot.store(counter, std::memory_order_release);
  }
  counter->Inc();
  series->seconds->Observe(Seconds(took));
}

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
ServeMetrics::Interceptors() {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> out;
  out.push_back(std::make_unique<RpcInterceptorFactory>(this));
  return out;
}

}  // namespace criimage
