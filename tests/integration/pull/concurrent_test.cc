// Three `gantry pull` processes at once into one store, for three images
// that share their base layers: every pull succeeds, each shared blob is
// downloaded from the registry exactly once (the ingest lock makes the
// others wait and then find it committed), and all three are recorded.

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
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

class PullConcurrent : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_TOOLS("docker-registry", "skopeo");
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
  }

  std::unique_ptr<Gantry> gantry_;
};

TEST_F(PullConcurrent, ThreeProcessesShareBaseLayersDownloadedOnce) {
  std::unique_ptr<fixtures::RegistryFixture> reg;
  ASSERT_NO_FATAL_FAILURE(StartRegistry({}, &reg));
  const std::vector<std::string> repos = {"fixture/one", "fixture/two", "fixture/three"};
  std::vector<fixtures::BuiltImage> images(repos.size());
  for (size_t i = 0; i < repos.size(); ++i)
    ASSERT_NO_FATAL_FAILURE(PushImage(*reg, gantry_->dir() / ("layout-" + std::to_string(i)),
                                      SharedBaseSpec(repos[i]), repos[i] + ":v1", &images[i]));
  ASSERT_EQ(images[0].layers[0].digest, images[1].layers[0].digest);
  ASSERT_EQ(images[0].layers[1].digest, images[2].layers[1].digest);
  ASSERT_NE(images[0].layers[2].digest, images[1].layers[2].digest);
  std::unique_ptr<fixtures::FaultProxy> proxy;
  ASSERT_NO_FATAL_FAILURE(StartProxy(*reg, &proxy));

  std::vector<std::string> names;
  std::vector<fixtures::Child> children;
  for (size_t i = 0; i < repos.size(); ++i) {
    names.push_back(proxy->host() + "/" + repos[i] + ":v1");
    const fs::path log = gantry_->dir() / ("pull-" + std::to_string(i) + ".log");
    auto child = gantry_->Spawn({"pull", names.back()}, log, log);
    ASSERT_TRUE(child) << child.error().message;
    children.push_back(std::move(*child));
  }
  for (size_t i = 0; i < children.size(); ++i) {
    auto rc = children[i].WaitFor(fixtures::Clock::now() + std::chrono::seconds(60));
    ASSERT_TRUE(rc) << rc.error().message;
    ASSERT_TRUE(rc->has_value()) << names[i] << " still runs after 60 s";
    auto log = common::ReadFile(gantry_->dir() / ("pull-" + std::to_string(i) + ".log"));
    EXPECT_EQ(**rc, 0) << names[i] << ":\n" << (log ? *log : log.error().message);
  }

  const auto log = proxy->Log();
  for (size_t l = 0; l < 2; ++l) {
    const common::Digest& shared = images[0].layers[l].digest;
    int downloads = 0;
    for (const auto& e : BlobGets(log, shared)) downloads += e.status == 200 || e.status == 206;
    EXPECT_EQ(downloads, 1) << "shared layer " << l << " (" << shared.str()
                            << ") must be downloaded once";
  }
  for (const auto& image : images) {
    EXPECT_EQ(BlobGets(log, image.layers[2].digest).size(), 1u);
    EXPECT_EQ(BlobGets(log, image.config.digest).size(), 1u);
    ExpectBlobsInStore(gantry_->root(), ImageDigests(image));
  }
  ExpectNoIngestLeft(gantry_->root());
  auto listed = gantry_->ImageNames();
  std::sort(listed.begin(), listed.end());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(listed, names);
}

// --max-concurrent-downloads N: never more than N blob GETs at once, and
// N when there is enough to do. Every blob is trickled (about a second
// each) so that transfers last long enough to overlap if they may.
TEST_F(PullConcurrent, MaxConcurrentDownloadsIsHonoured) {
  std::unique_ptr<fixtures::RegistryFixture> reg;
  ASSERT_NO_FATAL_FAILURE(StartRegistry({}, &reg));
  fixtures::ImageSpec spec;
  for (int i = 0; i < 5; ++i) {
    fixtures::LayerSpec l;
    l.entries = {
        fixtures::File("layer" + std::to_string(i) + ".txt", "layer " + std::to_string(i) + "\n")};
    spec.layers.push_back(std::move(l));
  }
  fixtures::BuiltImage img;
  ASSERT_NO_FATAL_FAILURE(
      PushImage(*reg, gantry_->dir() / "layout", spec, "fixture/many:v1", &img));
  std::unique_ptr<fixtures::FaultProxy> proxy;
  ASSERT_NO_FATAL_FAILURE(StartProxy(*reg, &proxy));
  for (int n : {1, 2}) {
    SCOPED_TRACE("--max-concurrent-downloads " + std::to_string(n));
    auto g = Gantry::Create();  // a fresh store: every blob is downloaded
    ASSERT_TRUE(g) << g.error().message;
    proxy->ClearRules();
    proxy->ClearLog();
    proxy->AddRule({.kind = fixtures::FaultRule::Kind::kTrickle,
                    .path_contains = "/blobs/",
                    .times = -1,
                    .interval = std::chrono::milliseconds(4)});
    ASSERT_NO_FATAL_FAILURE(PullOk(*g, {"--no-unpack", "--max-concurrent-downloads",
                                        std::to_string(n), proxy->host() + "/fixture/many:v1"}));
    EXPECT_EQ(proxy->CountRequests("GET", "/blobs/"), 6);  // config and 5 layers
    EXPECT_EQ(proxy->MaxConcurrent("GET", "/blobs/"), n);
    ExpectBlobsInStore(g->root(), ImageDigests(img));
  }
}

}  // namespace
}  // namespace pulltest
