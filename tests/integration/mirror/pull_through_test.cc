// The registry door's pull-through (`gantry serve --registry-listen …
// --registry-pull-through`), end to end: a store that lacks the fixture
// image, the registry fixture behind the counting fault proxy as its
// upstream (gantry.test → the proxy, through a hosts.toml), the real
// gantry-serve, skopeo and a raw HTTP client as the door's clients.
// Suite MirrorPullThrough.

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "common/fs.h"
#include "fixtures/require.h"
#include "integration/mirror/mirror_helpers.h"
#include "registry/peers.h"

namespace mirrortest {
namespace {

using namespace std::chrono_literals;

class MirrorPullThrough : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_TOOLS("docker-registry", "skopeo");
    auto g = pulltest::Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<pulltest::Gantry>(std::move(*g));
    ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &registry_));
    ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*registry_, &proxy_));
    layout_ = gantry_->dir() / "layout";
    ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(*registry_, layout_, fixtures::FixtureImageSpec(),
                                                std::string(kRepo) + ":" + kTag, &image_));
    // gantry pulls gantry.test/… from the proxy; nothing is pulled yet.
    ASSERT_NO_FATAL_FAILURE(PointHostAt(*gantry_, kHost, proxy_->base_url()));
    proxy_->ClearLog();
  }

  void TearDown() override {
    if (door_ == nullptr) return;
    // Stopped before the fsck: no pull may still be writing.
    auto stopped = door_->child().Terminate(20s);
    EXPECT_TRUE(stopped && *stopped == 0) << door_->LogText();
    auto fsck = gantry_->Run({"fsck"});
    ASSERT_TRUE(fsck) << fsck.error().message;
    EXPECT_EQ(fsck->exit_code, 0) << pulltest::Describe(*fsck);
  }

  void StartDoor(bool pull_through) {
    std::vector<std::string> extra;
    if (pull_through) extra.push_back("--registry-pull-through");
    ASSERT_NO_FATAL_FAILURE(Door::Start(*gantry_, &door_, extra));
  }

  HttpReply Get(const std::string& path) {
    auto r = Http(door_->port(), "GET", path);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : HttpReply{};
  }
  std::string ManifestPath(const std::string& repo = kRepo) const {
    return "/v2/" + repo + "/manifests/" + kTag + "?ns=" + kHost;
  }
  std::string BlobPath(const common::Digest& d) const {
    return std::string("/v2/") + kRepo + "/blobs/" + d.str() + "?ns=" + kHost;
  }
  std::string BlobBytes(const common::Digest& d) const {
    auto data = common::ReadFile(layout_ / "blobs" / "sha256" / d.hex(), 256u << 20);
    EXPECT_TRUE(data) << data.error().message;
    return data ? *data : std::string();
  }
  bool Listed() const {
    auto names = gantry_->ImageNames();
    return std::find(names.begin(), names.end(), std::string(kHost) + "/" + kRepo + ":" + kTag) !=
           names.end();
  }

  std::unique_ptr<pulltest::Gantry> gantry_;
  std::unique_ptr<fixtures::RegistryFixture> registry_;
  std::unique_ptr<fixtures::FaultProxy> proxy_;
  fs::path layout_;
  fixtures::BuiltImage image_;
  std::unique_ptr<Door> door_;
};

TEST_F(MirrorPullThrough, SkopeoCopiesAnImageTheStoreLacksAndGantryKeepsIt) {
  ASSERT_NO_FATAL_FAILURE(StartDoor(true));
  const fs::path out = gantry_->dir() / "copied";
  auto copy = fixtures::RunCommand(
      {"skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", "--src-no-creds",
       "docker://" + door_->host() + "/" + kHost + "/" + kRepo + ":" + kTag,
       "oci:" + out.string() + ":copied"},
      {.env = {},
       .cwd = gantry_->dir(),
       .stdin_data = {},
       .timeout = 60s,
       .measure_peak_rss = false});
  ASSERT_TRUE(copy) << copy.error().message;
  ASSERT_EQ(copy->exit_code, 0) << copy->err << "\n" << door_->LogText();
  ASSERT_NO_FATAL_FAILURE(
      ExpectBlobsVerify(out / "blobs" / "sha256", pulltest::ImageDigests(image_)));
  // Each blob came from the upstream once: the door's clients followed the
  // pull's downloads.
  for (const auto& layer : image_.layers)
    EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/" + layer.digest.str()), 1)
        << layer.digest.str();
  // The pull goes on to its end (unpack, record) after the last byte went out.
  EXPECT_TRUE(fixtures::WaitUntil([&] { return Listed(); }, 60s, 50ms)) << door_->LogText();
  ASSERT_NO_FATAL_FAILURE(
      pulltest::ExpectBlobsInStore(gantry_->root(), pulltest::ImageDigests(image_)));
}

TEST_F(MirrorPullThrough, TwoClientsOfABlobInFlightCauseOneUpstreamGet) {
  ASSERT_NO_FATAL_FAILURE(StartDoor(true));
  // The smallest layer, one byte at a time, over about two seconds: the
  // clients below arrive while it downloads.
  const fixtures::BlobInfo slow = *std::min_element(
      image_.layers.begin(), image_.layers.end(),
      [](const fixtures::BlobInfo& a, const fixtures::BlobInfo& b) { return a.size < b.size; });
  const auto interval =
      std::max<std::chrono::milliseconds>(1ms, 2000ms / std::max<int64_t>(slow.size, 1));
  proxy_->AddRule({.kind = fixtures::FaultRule::Kind::kTrickle,
                   .path_contains = "/blobs/" + slow.digest.str(),
                   .interval = interval});
  HttpReply manifest = Get(ManifestPath());
  ASSERT_EQ(manifest.status, 200) << manifest.body << "\n" << door_->LogText();
  EXPECT_EQ(manifest.Header("docker-content-digest"), image_.manifest.digest.str());
  EXPECT_EQ(manifest.body, BlobBytes(image_.manifest.digest));
  // The pull's GET of the slow layer has started upstream.
  ASSERT_TRUE(fixtures::WaitUntil(
      [&] { return proxy_->CountRequests("GET", "/blobs/" + slow.digest.str()) >= 1; }, 30s, 5ms))
      << door_->LogText();
  HttpReply first, second;
  std::thread a([&] { first = Get(BlobPath(slow.digest)); });
  std::thread b([&] { second = Get(BlobPath(slow.digest)); });
  a.join();
  b.join();
  const std::string want = BlobBytes(slow.digest);
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(second.status, 200) << second.body;
  EXPECT_TRUE(first.body == want) << first.body.size() << " bytes, want " << want.size();
  EXPECT_TRUE(second.body == want) << second.body.size() << " bytes, want " << want.size();
  EXPECT_EQ(first.Header("content-length"), std::to_string(want.size()));
  EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/" + slow.digest.str()), 1);
  // Both followed the download (the door logs it), neither read the store.
  const std::string log = door_->LogText();
  size_t followed = 0;
  for (size_t at = log.find("in_flight=yes"); at != std::string::npos;
       at = log.find("in_flight=yes", at + 1))
    ++followed;
  EXPECT_GE(followed, 2u) << log;
  EXPECT_TRUE(fixtures::WaitUntil([&] { return Listed(); }, 60s, 50ms)) << door_->LogText();
}

TEST_F(MirrorPullThrough, WithoutTheFlagAnImageTheStoreLacksIs404AndTheUpstreamHearsNothing) {
  ASSERT_NO_FATAL_FAILURE(StartDoor(false));
  HttpReply manifest = Get(ManifestPath());
  EXPECT_EQ(manifest.status, 404);
  EXPECT_EQ(ErrorCode(manifest), "MANIFEST_UNKNOWN");
  HttpReply blob = Get(BlobPath(image_.layers.front().digest));
  EXPECT_EQ(blob.status, 404);
  EXPECT_EQ(ErrorCode(blob), "BLOB_UNKNOWN");
  EXPECT_TRUE(proxy_->Log().empty()) << proxy_->Log().size() << " upstream requests";
  EXPECT_FALSE(Listed());
}

// A peer's manifest request (Gantry-Peer-Stored-Only: 1, docs/fleet.md)
// is answered from the store alone: no pull through, by tag or by digest.
TEST_F(MirrorPullThrough, APeersStoredOnlyManifestRequestIsNotPulledThrough) {
  ASSERT_NO_FATAL_FAILURE(StartDoor(true));
  const std::vector<std::pair<std::string, std::string>> peer = {
      {registry::kPeerStoredOnlyHeader, "1"}};
  for (const std::string& path :
       {ManifestPath(), "/v2/" + std::string(kRepo) + "/manifests/" + image_.manifest.digest.str() +
                            "?ns=" + kHost}) {
    auto r = Http(door_->port(), "GET", path, peer);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, 404) << path << ": " << r->body;
    EXPECT_EQ(ErrorCode(*r), "MANIFEST_UNKNOWN") << r->body;
  }
  EXPECT_TRUE(proxy_->Log().empty()) << proxy_->Log().size() << " upstream requests";
  EXPECT_FALSE(Listed());
}

TEST_F(MirrorPullThrough, AnImageTheUpstreamLacksIs404WithTheOciError) {
  ASSERT_NO_FATAL_FAILURE(StartDoor(true));
  HttpReply r = Get(ManifestPath("fixture/absent"));
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(ErrorCode(r), "MANIFEST_UNKNOWN") << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/json");
  // The upstream was asked, and the door said why it answers 404.
  EXPECT_GE(proxy_->CountRequests("", "/fixture/absent/manifests/"), 1);
  EXPECT_NE(door_->LogText().find("pull-through"), std::string::npos) << door_->LogText();
  EXPECT_FALSE(Listed());
}

TEST_F(MirrorPullThrough, AnUnreachableUpstreamIs404) {
  ASSERT_NO_FATAL_FAILURE(StartDoor(true));
  // The proxy (gantry's upstream for gantry.test) goes away: connections
  // to its port are refused.
  proxy_->Stop();
  HttpReply r = Get(ManifestPath());
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(ErrorCode(r), "MANIFEST_UNKNOWN") << r.body;
  EXPECT_FALSE(Listed());
}

}  // namespace
}  // namespace mirrortest
