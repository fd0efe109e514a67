// image/pull_metrics.h: one pull's tally and the store counters it
// becomes; upkeep's GC deltas are checked in the same terms.
#include "image/pull_metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace image {
namespace {

using Deltas = std::map<std::pair<std::string, std::vector<std::string>>, int64_t>;

Deltas AsMap(const std::vector<store::CounterDelta>& v) {
  Deltas out;
  for (const auto& d : v) out[{d.name, d.labels}] += d.value;
  return out;
}

PulledImage Pulled(int64_t downloaded, int64_t present) {
  PulledImage p;
  p.pull.bytes_downloaded = downloaded;
  p.pull.bytes_present = present;
  p.unpack = UnpackResult{.chain_ids = {}, .layers_applied = 2, .bytes_unpacked = 900};
  return p;
}

TEST(PullMetrics, EveryErrorClassHasItsResultAndEveryResultIsListed) {
  using common::Errc;
  const std::pair<Errc, std::string_view> cases[] = {
      {Errc::kNotFound, "not_found"},
      {Errc::kUnauthenticated, "unauthenticated"},
      {Errc::kUnavailable, "unavailable"},
      {Errc::kDataLoss, "data_loss"},
      {Errc::kResourceExhausted, "resource_exhausted"},
      {Errc::kPermissionDenied, "permission_denied"},
      {Errc::kCancelled, "cancelled"},
      {Errc::kInternal, "other"},
      {Errc::kInvalidArgument, "other"}};
  for (const auto& [code, want] : cases) {
    const std::string_view got = PullResultLabel(common::MakeError(code, "x"));
    EXPECT_EQ(got, want);
    EXPECT_NE(std::find(kPullResults.begin(), kPullResults.end(), got), kPullResults.end());
  }
  EXPECT_EQ(PullResultLabel(common::Status{}), "success");
}

TEST(PullMetrics, NewBytesAreSplitByTheHostsThatSentThem) {
  registry::FetchCounters c;
  c.mirror_bytes = 300;
  c.peer_bytes = 200;
  c.retries = 2;
  c.stalls = 1;
  common::Result<PulledImage> ok = Pulled(1000, 50);
  const PullTally t = TallyPull(ok, c);
  EXPECT_EQ(t.result, "success");
  EXPECT_EQ(t.bytes[static_cast<size_t>(ByteSource::kMirror)], 300);
  EXPECT_EQ(t.bytes[static_cast<size_t>(ByteSource::kPeer)], 200);
  EXPECT_EQ(t.bytes[static_cast<size_t>(ByteSource::kUpstream)], 500);
  EXPECT_EQ(t.bytes[static_cast<size_t>(ByteSource::kPresent)], 50);
  const Deltas d = AsMap(CounterDeltas(t));
  EXPECT_EQ(d, (Deltas{{{"gantry_pulls_total", {"success"}}, 1},
                       {{"gantry_pull_bytes_total", {"upstream"}}, 500},
                       {{"gantry_pull_bytes_total", {"mirror"}}, 300},
                       {{"gantry_pull_bytes_total", {"peer"}}, 200},
                       {{"gantry_pull_bytes_total", {"present"}}, 50},
                       {{"gantry_blob_fetch_retries_total", {}}, 2},
                       {{"gantry_blob_fetch_stalls_total", {}}, 1},
                       {{"gantry_unpack_bytes_total", {}}, 900},
                       {{"gantry_unpack_layers_total", {}}, 2}}));

  // Bytes a restart threw away can make the hosts' sum exceed the new
  // bytes: the split never goes over them.
  c.mirror_bytes = 5000;
  const PullTally capped = TallyPull(ok, c);
  EXPECT_EQ(capped.bytes[static_cast<size_t>(ByteSource::kMirror)], 1000);
  EXPECT_EQ(capped.bytes[static_cast<size_t>(ByteSource::kPeer)], 0);
  EXPECT_EQ(capped.bytes[static_cast<size_t>(ByteSource::kUpstream)], 0);
}

TEST(PullMetrics, AFailedPullCountsItsResultAndRetriesButNoBytes) {
  registry::FetchCounters c;
  c.upstream_bytes = 700;
  c.retries = 4;
  common::Result<PulledImage> failed = common::MakeError(common::Errc::kDataLoss, "digest");
  const Deltas d = AsMap(CounterDeltas(TallyPull(failed, c)));
  EXPECT_EQ(d, (Deltas{{{"gantry_pulls_total", {"data_loss"}}, 1},
                       {{"gantry_blob_fetch_retries_total", {}}, 4}}));
}

}  // namespace
}  // namespace image
