// `gantry pull` through the fault proxy in front of a real registry: cut
// transfers resume with Range, 503/429 are retried, a server ignoring
// Range restarts the blob, stalls and trickles fail within the rate floor
// and leave a partial that the next pull resumes, SIGINT ends even a
// stalled pull at once, corrupt bytes never reach the store, and
// redirects do not carry the registry's credentials.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/fs.h"
#include "fixtures/fault_proxy.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/registry_fixture.h"
#include "integration/pull/pull_helpers.h"

namespace pulltest {
namespace {

using fixtures::FaultRule;
using fixtures::RegistryAuth;
using std::chrono::steady_clock;

class PullFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_TOOLS("docker-registry", "skopeo");
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
  }

  // A registry with the fixture image as fixture/app:v1, behind the proxy.
  void Start(RegistryAuth auth = RegistryAuth::kNone) {
    fixtures::RegistryOptions o;
    o.auth = auth;
    ASSERT_NO_FATAL_FAILURE(StartRegistry(o, &reg_));
    ASSERT_NO_FATAL_FAILURE(PushImage(*reg_, gantry_->dir() / "layout",
                                      fixtures::FixtureImageSpec(), "fixture/app:v1", &image_));
    ASSERT_NO_FATAL_FAILURE(StartProxy(*reg_, &proxy_));
    layer_ = BiggestLayer(image_);
    ASSERT_GT(layer_.size, 64 * 1024) << "the busybox layer is the one to break";
    name_ = proxy_->host() + "/fixture/app:v1";
  }

  std::string LayerPath() const { return "/blobs/" + layer_.digest.str(); }

  void ExpectPulledIntact() const {
    ExpectBlobsInStore(gantry_->root(), ImageDigests(image_));
    ExpectNoIngestLeft(gantry_->root());
    EXPECT_EQ(gantry_->ImageNames(), std::vector<std::string>{name_});
  }

  // The stall and trickle scenario: the pull fails with a clear error
  // within the rate floor, records nothing, and leaves a partial that a
  // second pull (without faults) resumes with Range.
  void FailsWithinTheRateFloorThenResumes(FaultRule rule) {
    proxy_->AddRule(rule);
    const auto start = steady_clock::now();
    auto r = gantry_->Run({"pull", "--min-rate", "1024", "--min-rate-window", "2", name_});
    const auto elapsed = steady_clock::now() - start;
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->exit_code, 5) << Describe(*r);
    EXPECT_NE(r->err.find("stalled"), std::string::npos) << r->err;
    EXPECT_NE(r->err.find("under 1024 B/s for 2 s"), std::string::npos) << r->err;
    EXPECT_NE(r->err.find(layer_.digest.str()), std::string::npos) << r->err;
    // Five attempts of a 2 s window plus the backoff between them; far from
    // the default 60 s window or a hang.
    EXPECT_GE(elapsed, std::chrono::seconds(2));
    EXPECT_LT(elapsed, std::chrono::seconds(30));
    EXPECT_TRUE(gantry_->ImageNames().empty()) << "a failed pull records no image";
    EXPECT_FALSE(fs::exists(gantry_->root() / "content/blobs/sha256" / layer_.digest.hex()));
    const int64_t partial = IngestSize(gantry_->root(), layer_.digest);
    ASSERT_GT(partial, 0) << "the bytes that arrived stay for the next pull";
    ASSERT_LT(partial, layer_.size);

    proxy_->ClearRules();
    proxy_->ClearLog();
    fixtures::CommandResult second;
    ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--json", name_}, &second));
    auto gets = BlobGets(proxy_->Log(), layer_.digest);
    ASSERT_EQ(gets.size(), 1u);
    EXPECT_EQ(gets[0].range, "bytes=" + std::to_string(partial) + "-");
    EXPECT_EQ(gets[0].status, 206);
    EXPECT_EQ(gets[0].body_bytes_sent, layer_.size - partial);
    ExpectResumedAt(JsonEvents(second.out), partial);
    ExpectPulledIntact();
  }

  // The --json events of a pull that resumed the layer at `offset`.
  void ExpectResumedAt(const std::vector<nlohmann::json>& events, int64_t offset) const {
    bool resumed = false;
    for (const auto& e : events)
      resumed |= e.value("event", "") == "layer-progress" &&
                 e.value("digest", "") == layer_.digest.str() &&
                 e.value("state", "") == "resumed" && e.value("current", int64_t{-1}) == offset;
    EXPECT_TRUE(resumed) << "no resumed event at " << offset;
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().value("event", ""), "done");
    // The resumed bytes came from the earlier pull, not this one.
    EXPECT_EQ(events.back().value("bytes_downloaded", int64_t{-1}),
              FetchedBlobBytes(events) - ResumedBlobBytes(events));
  }

  // Starts `gantry pull --json` with the layer stalling after
  // kStalledBytes (the default 60 s rate window keeps it stalled), and
  // waits until those bytes are in the partial.
  void StartStalledPull(fixtures::Child* out) {
    proxy_->AddRule(
        {.kind = FaultRule::Kind::kStall, .path_contains = LayerPath(), .bytes = kStalledBytes});
    const fs::path log = gantry_->dir() / "stalled.log";
    auto child = gantry_->Spawn({"pull", "--json", name_}, gantry_->dir() / "stalled.out", log);
    ASSERT_TRUE(child) << child.error().message;
    *out = std::move(*child);
    ASSERT_TRUE(fixtures::WaitUntil(
        [&] { return IngestSize(gantry_->root(), layer_.digest) == kStalledBytes; },
        std::chrono::seconds(20)))
        << "the stalled layer's first bytes never reached the partial";
  }

  static constexpr int64_t kStalledBytes = 1000;

  std::unique_ptr<Gantry> gantry_;
  std::unique_ptr<fixtures::RegistryFixture> reg_;
  std::unique_ptr<fixtures::FaultProxy> proxy_;
  fixtures::BuiltImage image_;
  fixtures::BlobInfo layer_{};
  std::string name_;
};

TEST_F(PullFaults, LayerCutHalfwayIsResumedWithRange) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const int64_t half = layer_.size / 2;
  proxy_->AddRule(
      {.kind = FaultRule::Kind::kCutMidway, .path_contains = LayerPath(), .bytes = half});
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name_}));
  auto gets = BlobGets(proxy_->Log(), layer_.digest);
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0].fault, "cut_midway");
  EXPECT_EQ(gets[0].range, "");
  EXPECT_EQ(gets[1].range, "bytes=" + std::to_string(half) + "-");
  EXPECT_EQ(gets[1].status, 206);
  EXPECT_EQ(gets[1].body_bytes_sent, layer_.size - half);
  ExpectPulledIntact();
}

TEST_F(PullFaults, ServiceUnavailableWithRetryAfterIsRetried) {
  ASSERT_NO_FATAL_FAILURE(Start());
  proxy_->AddRule({.kind = FaultRule::Kind::kStatus,
                   .path_contains = LayerPath(),
                   .status = 503,
                   .retry_after = 1});
  const auto start = steady_clock::now();
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name_}));
  EXPECT_GE(steady_clock::now() - start, std::chrono::seconds(1)) << "Retry-After: 1 honoured";
  auto gets = BlobGets(proxy_->Log(), layer_.digest);
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0].status, 503);
  EXPECT_EQ(gets[1].status, 200);
  ExpectPulledIntact();
}

TEST_F(PullFaults, TooManyRequestsIsRetried) {
  ASSERT_NO_FATAL_FAILURE(Start());
  proxy_->AddRule({.kind = FaultRule::Kind::kStatus,
                   .path_contains = "/manifests/",
                   .times = 2,
                   .status = 429});
  proxy_->AddRule({.kind = FaultRule::Kind::kStatus, .path_contains = LayerPath(), .status = 429});
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name_}));
  std::vector<int> manifest_statuses;
  for (const auto& e : proxy_->Log())
    if (e.path.find("/manifests/") != std::string::npos) manifest_statuses.push_back(e.status);
  EXPECT_EQ(manifest_statuses, (std::vector<int>{429, 429, 200}));
  auto gets = BlobGets(proxy_->Log(), layer_.digest);
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0].status, 429);
  EXPECT_EQ(gets[1].status, 200);
  ExpectPulledIntact();
}

TEST_F(PullFaults, RangeIgnoredAfterACutRestartsTheBlob) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const int64_t half = layer_.size / 2;
  proxy_->AddRule(
      {.kind = FaultRule::Kind::kCutMidway, .path_contains = LayerPath(), .bytes = half});
  proxy_->AddRule({.kind = FaultRule::Kind::kIgnoreRange, .path_contains = LayerPath()});
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name_}));
  auto gets = BlobGets(proxy_->Log(), layer_.digest);
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[1].range, "bytes=" + std::to_string(half) + "-");
  EXPECT_EQ(gets[1].fault, "ignore_range");
  EXPECT_EQ(gets[1].status, 200);
  EXPECT_EQ(gets[1].body_bytes_sent, layer_.size);
  // The blob is whole and right: the digest is checked on commit and by
  // ExpectBlobsInStore, so half a blob appended to the first half fails.
  ExpectPulledIntact();
}

TEST_F(PullFaults, StalledLayerFailsWithinTheRateFloorThenResumes) {
  ASSERT_NO_FATAL_FAILURE(Start());
  FailsWithinTheRateFloorThenResumes(
      {.kind = FaultRule::Kind::kStall, .path_contains = LayerPath(), .times = -1, .bytes = 1000});
}

TEST_F(PullFaults, TrickledLayerFailsWithinTheRateFloorThenResumes) {
  ASSERT_NO_FATAL_FAILURE(Start());
  FailsWithinTheRateFloorThenResumes({.kind = FaultRule::Kind::kTrickle,
                                      .path_contains = LayerPath(),
                                      .times = -1,
                                      .interval = std::chrono::milliseconds(100)});
}

TEST_F(PullFaults, InterruptDuringAStalledTransferExitsAtOnce) {
  ASSERT_NO_FATAL_FAILURE(Start());
  fixtures::Child pull;
  ASSERT_NO_FATAL_FAILURE(StartStalledPull(&pull));
  const auto start = steady_clock::now();
  ASSERT_EQ(::kill(pull.pid(), SIGINT), 0);
  auto rc = pull.WaitFor(fixtures::Clock::now() + std::chrono::seconds(10));
  ASSERT_TRUE(rc) << rc.error().message;
  ASSERT_TRUE(rc->has_value()) << "SIGINT did not end a pull whose transfer stalled";
  // The transfer notices the flag within curl's progress tick (about 1 s).
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  auto err = common::ReadFile(gantry_->dir() / "stalled.log");
  ASSERT_TRUE(err) << err.error().message;
  EXPECT_EQ(**rc, 130) << *err;
  EXPECT_NE(err->find("cancelled"), std::string::npos) << *err;
  EXPECT_TRUE(gantry_->ImageNames().empty()) << "a cancelled pull records no image";
  EXPECT_EQ(IngestSize(gantry_->root(), layer_.digest), kStalledBytes) << "the partial stays";

  proxy_->ClearLog();
  fixtures::CommandResult second;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--json", name_}, &second));
  auto gets = BlobGets(proxy_->Log(), layer_.digest);
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0].range, "bytes=" + std::to_string(kStalledBytes) + "-");
  EXPECT_EQ(gets[0].status, 206);
  ExpectResumedAt(JsonEvents(second.out), kStalledBytes);
  ExpectPulledIntact();
}

TEST_F(PullFaults, RangeIgnoredOnResumeCountsEveryDownloadedByte) {
  ASSERT_NO_FATAL_FAILURE(Start());
  {
    // A pull killed mid-transfer leaves its partial behind.
    fixtures::Child pull;
    ASSERT_NO_FATAL_FAILURE(StartStalledPull(&pull));
    ASSERT_EQ(::kill(pull.pid(), SIGKILL), 0);
    auto rc = pull.Wait();
    ASSERT_TRUE(rc) << rc.error().message;
    EXPECT_EQ(*rc, 128 + SIGKILL);
  }
  ASSERT_EQ(IngestSize(gantry_->root(), layer_.digest), kStalledBytes);
  proxy_->ClearLog();
  proxy_->AddRule({.kind = FaultRule::Kind::kIgnoreRange, .path_contains = LayerPath()});
  fixtures::CommandResult second;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--json", name_}, &second));
  auto gets = BlobGets(proxy_->Log(), layer_.digest);
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0].range, "bytes=" + std::to_string(kStalledBytes) + "-");
  EXPECT_EQ(gets[0].fault, "ignore_range");
  EXPECT_EQ(gets[0].body_bytes_sent, layer_.size);
  // The whole layer came again and counts in full; its dropped partial was
  // never this pull's to subtract. (Other blobs the killed pull had begun
  // resume as usual.)
  auto events = JsonEvents(second.out);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().value("bytes_downloaded", int64_t{-1}),
            FetchedBlobBytes(events) - ResumedBlobBytes(events, layer_.digest.str()));
  ExpectPulledIntact();
}

TEST_F(PullFaults, WrongBytesFailWithDataLossAndNeverReachTheStore) {
  ASSERT_NO_FATAL_FAILURE(Start());
  proxy_->AddRule(
      {.kind = FaultRule::Kind::kWrongBytes, .path_contains = LayerPath(), .times = -1});
  auto r = gantry_->Run({"pull", name_});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 6) << Describe(*r);
  EXPECT_NE(r->err.find(layer_.digest.str()), std::string::npos) << r->err;
  ExpectBlobAbsent(gantry_->root(), layer_.digest);
  EXPECT_TRUE(gantry_->ImageNames().empty()) << "a failed pull records no image";
  ASSERT_GE(BlobGets(proxy_->Log(), layer_.digest).size(), 1u);
  EXPECT_EQ(BlobGets(proxy_->Log(), layer_.digest)[0].fault, "wrong_bytes");
}

// A layer the registry does not have (404): the pull fails naming it and
// leaves no partial download (its fetch got no byte, there is nothing to
// resume), so `gantry df` counts none. What it did store (the manifest)
// stays unreferenced, and fsck's note on it does not claim a killed pull.
TEST_F(PullFaults, MissingLayerLeavesNoEmptyPartialDownload) {
  ASSERT_NO_FATAL_FAILURE(Start());
  proxy_->AddRule(
      {.kind = FaultRule::Kind::kStatus, .path_contains = LayerPath(), .times = -1, .status = 404});
  // One download at a time, the biggest (this layer) first: no other
  // download is under way when it fails.
  auto r = gantry_->Run({"pull", "--max-concurrent-downloads", "1", name_});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 3) << Describe(*r);
  EXPECT_NE(r->err.find(layer_.digest.str()), std::string::npos) << r->err;
  EXPECT_TRUE(gantry_->ImageNames().empty()) << "a failed pull records no image";
  ExpectNoIngestLeft(gantry_->root());

  auto df = gantry_->Run({"df", "--json"});
  ASSERT_TRUE(df) << df.error().message;
  ASSERT_EQ(df->exit_code, 0) << Describe(*df);
  auto usage = nlohmann::json::parse(df->out, nullptr, false);
  ASSERT_TRUE(usage.is_object()) << df->out;
  EXPECT_EQ(usage["totals"]["ingest"].value("count", -1), 0) << df->out;

  auto fsck = gantry_->Run({"fsck", "--json"});
  ASSERT_TRUE(fsck) << fsck.error().message;
  EXPECT_EQ(fsck->exit_code, 0) << Describe(*fsck) << fsck->out;
  auto report = nlohmann::json::parse(fsck->out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << fsck->out;
  std::string unused;
  for (const auto& n : report["info"])
    if (n.value("what", "").starts_with("blobs no image or pull uses"))
      unused = n.value("what", "");
  ASSERT_FALSE(unused.empty()) << "no note on the failed pull's manifest\n" << fsck->out;
  EXPECT_NE(unused.find("failed"), std::string::npos) << unused;
}

TEST_F(PullFaults, RedirectedLayerIsFetchedWithoutTheRegistryCredentials) {
  ASSERT_NO_FATAL_FAILURE(Start(RegistryAuth::kHtpasswd));
  proxy_->AddRule({.kind = FaultRule::Kind::kRedirect, .path_contains = LayerPath(), .times = -1});
  ASSERT_NO_FATAL_FAILURE(
      PullOk(*gantry_, {"--creds", reg_->username() + ":" + reg_->password(), name_}));
  auto gets = BlobGets(proxy_->Log(), layer_.digest);
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_FALSE(gets[0].via_blob_host);
  EXPECT_TRUE(gets[0].had_authorization);
  EXPECT_EQ(gets[0].status, 307);
  EXPECT_TRUE(gets[1].via_blob_host);
  EXPECT_FALSE(gets[1].had_authorization) << "credentials must not follow a redirect";
  EXPECT_EQ(gets[1].status, 200);
  ExpectPulledIntact();
}

}  // namespace
}  // namespace pulltest
