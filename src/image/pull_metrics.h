#pragma once
// What one pull did, in the terms of gantry's metrics (docs/metrics.md),
// for both places that count pulls: `gantry serve` adds a tally to its
// metrics::Registry (criimage/serve_metrics.h), and the CLI adds it to the
// store's counters (store::MetadataDb::AddCounters, CounterDeltas below),
// which the server adds to its own at each scrape. The metric names and
// label values are defined here once for both.
//
//   registry::FetchCounters fc;
//   opts.client.counters = &fc;
//   auto r = image::PullImage(store, opts);
//   image::PullTally t = image::TallyPull(r, fc);
//   (void)db.AddCounters(image::CounterDeltas(t));
//
// Thread-safety: pure functions.

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "image/pull.h"
#include "registry/client.h"
#include "store/metadata.h"

namespace image {

// Counter names written by both the server and the CLI.
inline constexpr std::string_view kPullsTotalMetric = "gantry_pulls_total";
inline constexpr std::string_view kPullBytesMetric = "gantry_pull_bytes_total";
inline constexpr std::string_view kFetchRetriesMetric = "gantry_blob_fetch_retries_total";
inline constexpr std::string_view kFetchStallsMetric = "gantry_blob_fetch_stalls_total";
inline constexpr std::string_view kUnpackBytesMetric = "gantry_unpack_bytes_total";
inline constexpr std::string_view kUnpackLayersMetric = "gantry_unpack_layers_total";

// The `result` label of gantry_pulls_total: "success", then one per error
// class; every value is exported from the start.
inline constexpr std::array<std::string_view, 9> kPullResults = {
    "success",           "not_found", "unauthenticated",
    "unavailable",       "data_loss", "resource_exhausted",
    "permission_denied", "cancelled", "other"};

// The `result` label for a pull's outcome: "success", the error class
// ("not_found", "unauthenticated", "unavailable", "data_loss",
// "resource_exhausted", "permission_denied", "cancelled"), "other" for the
// rest. Always one of kPullResults.
std::string_view PullResultLabel(const common::Status& outcome);

// Where the bytes a pull needed came from: the `source` label of
// gantry_pull_bytes_total, kByteSources[static_cast<size_t>(source)].
enum class ByteSource { kUpstream, kMirror, kPeer, kPresent };
inline constexpr std::array<std::string_view, 4> kByteSources = {"upstream", "mirror", "peer",
                                                                 "present"};

// One finished pull's figures.
struct PullTally {
  std::string_view result = "success";  // PullResultLabel
  // By ByteSource; only a pull that succeeded counts bytes.
  std::array<int64_t, kByteSources.size()> bytes{};
  int64_t retries = 0;        // registry::FetchCounters::retries
  int64_t stalls = 0;         // registry::FetchCounters::stalls
  int64_t unpack_bytes = 0;   // UnpackResult::bytes_unpacked (uncompressed)
  int64_t unpack_layers = 0;  // UnpackResult::layers_applied
};

// The tally of a pull that returned `pulled`; `counters` are its client's.
// The new bytes (FetchResult::bytes_downloaded) are split by where the
// client took them: a mirror's and a peer's as the counters say (capped
// by the new bytes), the rest upstream (also what a source other than a
// registry, an oci: layout or an archive, brought in).
[[nodiscard]] PullTally TallyPull(const common::Result<PulledImage>& pulled,
                                  const registry::FetchCounters& counters);

// The tally as deltas of the store's counters (store/metadata.h): one for
// gantry_pulls_total{result}, and one per other counter that is not 0.
[[nodiscard]] std::vector<store::CounterDelta> CounterDeltas(const PullTally& tally);

}  // namespace image
