// containerd pulls through gantry's registry door as a hosts.toml mirror,
// as on a node: Debian's containerd on its own root, state and socket
// (CRI plugin off), `ctr images pull --hosts-dir DIR --plain-http` with
//   DIR/gantry.test/hosts.toml:
//     server = "http://<fault proxy in front of docker-registry>"
//     [host."http://127.0.0.1:<door>"]
//       capabilities = ["pull", "resolve"]
// The fault proxy counts what reaches the upstream.

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/containerd.h"
#include "integration/mirror/mirror_helpers.h"

namespace mirrortest {
namespace {

using namespace std::chrono_literals;

class MirrorContainerd : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT("containerd");
    REQUIRE_TOOLS("containerd", "ctr", "docker-registry", "skopeo");
    ASSERT_NO_FATAL_FAILURE(MirrorStore::Create(&store_));
    // A second image gantry never pulled: the fixture's two base layers
    // (which gantry has) and one of its own (which it has not).
    ASSERT_NO_FATAL_FAILURE(
        pulltest::PushImage(*store_.registry, store_.gantry->dir() / "other-layout",
                            pulltest::SharedBaseSpec("other"), "fixture/other:v1", &other_));
    ASSERT_NO_FATAL_FAILURE(Door::Start(*store_.gantry, &door_));

    auto d = common::TempDir::Create("gantry-ctdm");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    auto started =
        fixtures::Containerd::Start({.dir = dir_.path(), .ns = "gm" + std::to_string(::getpid())});
    ASSERT_TRUE(started) << started.error().message;
    containerd_ = std::move(*started);

    hosts_dir_ = dir_.path() / "hosts";
    ASSERT_TRUE(common::MkdirAll(hosts_dir_ / kHost, 0755));
    ASSERT_TRUE(common::AtomicWriteFile(hosts_dir_ / kHost / "hosts.toml",
                                        "server = \"" + store_.proxy->base_url() +
                                            "\"\n\n[host.\"http://" + door_->host() +
                                            "\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
                                        0644));
  }

  void TearDown() override {
    if (!containerd_) return;
    for (const char* repo : {kRepo, "fixture/other"})
      (void)Ctr({"images", "rm", std::string(kHost) + "/" + repo + ":" + kTag});
    containerd_.reset();
  }

  fixtures::CommandResult Ctr(const std::vector<std::string>& args) {
    return containerd_->Ctr(args);
  }

  fixtures::CommandResult Pull(const std::string& repo) {
    return Ctr({"images", "pull", "--hosts-dir", hosts_dir_.string(), "--plain-http",
                std::string(kHost) + "/" + repo + ":" + kTag});
  }

  std::string ContainerdLog() const { return containerd_->Log(); }

  fs::path ContentBlobs() const {
    return containerd_->root() / "io.containerd.content.v1.content" / "blobs" / "sha256";
  }

  // Destroyed from the last: containerd stops first, then its directory
  // goes, then the door, the proxy and the registry.
  MirrorStore store_;
  fixtures::BuiltImage other_;
  std::unique_ptr<Door> door_;
  common::TempDir dir_;
  fs::path hosts_dir_;
  std::unique_ptr<fixtures::Containerd> containerd_;
};

TEST_F(MirrorContainerd, PullsAGantryImageFromTheDoorWithTheUpstreamStopped) {
  store_.registry->Stop();
  store_.proxy->ClearLog();
  auto r = Pull(kRepo);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << "\ndoor:\n" << door_->LogText();
  // Every blob is in containerd's content store, and verifies.
  ExpectBlobsVerify(ContentBlobs(), pulltest::ImageDigests(store_.image));
  EXPECT_EQ(store_.proxy->Log().size(), 0u) << "the upstream was asked";
  // containerd named the upstream registry to the mirror.
  EXPECT_NE(door_->LogText().find("ns=gantry.test status=200"), std::string::npos)
      << door_->LogText();
}

TEST_F(MirrorContainerd, AnImageGantryLacksFallsThroughToTheUpstream) {
  store_.proxy->ClearLog();
  auto r = Pull("fixture/other");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << "\ndoor:\n" << door_->LogText();
  ExpectBlobsVerify(ContentBlobs(), pulltest::ImageDigests(other_));
  const auto log = store_.proxy->Log();
  EXPECT_GE(store_.proxy->CountRequests("", "/fixture/other/manifests/"), 1)
      << "the tag was not resolved upstream";
  // The door had the two base layers (by digest, whatever the name): only
  // the config and the image's own layer came from the upstream.
  ASSERT_EQ(other_.layers.size(), 3u);
  EXPECT_TRUE(pulltest::BlobGets(log, other_.layers[0].digest).empty());
  EXPECT_TRUE(pulltest::BlobGets(log, other_.layers[1].digest).empty());
  EXPECT_EQ(pulltest::BlobGets(log, other_.layers[2].digest).size(), 1u);
  EXPECT_EQ(pulltest::BlobGets(log, other_.config.digest).size(), 1u);
}

TEST_F(MirrorContainerd, AnImageGantryLacksFailsWhenTheUpstreamIsDown) {
  store_.registry->Stop();
  store_.proxy->Stop();
  auto r = Pull("fixture/other");
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
}

}  // namespace
}  // namespace mirrortest
