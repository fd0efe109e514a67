#include "image/pull_metrics.h"

#include <algorithm>
#include <string>

namespace image {

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

PullTally TallyPull(const common::Result<PulledImage>& pulled,
                    const registry::FetchCounters& counters) {
  PullTally t{.result = pulled ? PullResultLabel(common::Status{})
                               : PullResultLabel(std::unexpected(pulled.error())),
              .bytes = {},
              .retries = counters.retries.load(std::memory_order_relaxed),
              .stalls = counters.stalls.load(std::memory_order_relaxed),
              .unpack_bytes = 0,
              .unpack_layers = 0};
  if (!pulled) return t;
  auto at = [&t](ByteSource s) -> int64_t& { return t.bytes[static_cast<size_t>(s)]; };
  int64_t left = std::max<int64_t>(pulled->pull.bytes_downloaded, 0);
  at(ByteSource::kMirror) =
      std::clamp<int64_t>(counters.mirror_bytes.load(std::memory_order_relaxed), 0, left);
  left -= at(ByteSource::kMirror);
  at(ByteSource::kPeer) =
      std::clamp<int64_t>(counters.peer_bytes.load(std::memory_order_relaxed), 0, left);
  left -= at(ByteSource::kPeer);
  at(ByteSource::kUpstream) = left;
  at(ByteSource::kPresent) = pulled->pull.bytes_present;
  if (pulled->unpack) {
    t.unpack_bytes = pulled->unpack->bytes_unpacked;
    t.unpack_layers = pulled->unpack->layers_applied;
  }
  return t;
}

std::vector<store::CounterDelta> CounterDeltas(const PullTally& tally) {
  std::vector<store::CounterDelta> out;
  out.push_back(
      {.name = std::string(kPullsTotalMetric), .labels = {std::string(tally.result)}, .value = 1});
  auto add = [&out](std::string_view name, std::vector<std::string> labels, int64_t v) {
    if (v > 0) out.push_back({.name = std::string(name), .labels = std::move(labels), .value = v});
  };
  for (size_t i = 0; i < kByteSources.size(); ++i)
    add(kPullBytesMetric, {std::string(kByteSources[i])}, tally.bytes[i]);
  add(kFetchRetriesMetric, {}, tally.retries);
  add(kFetchStallsMetric, {}, tally.stalls);
  add(kUnpackBytesMetric, {}, tally.unpack_bytes);
  add(kUnpackLayersMetric, {}, tally.unpack_layers);
  return out;
}

}  // namespace image
