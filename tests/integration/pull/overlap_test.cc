// `gantry pull` applies a layer while it downloads (issue 21): the
// unpacker follows the download through image::PullFlights instead of
// waiting for the whole blob. Through the fault proxy in front of a real
// registry, a layer cut mid-stream and resumed, a partial left by an
// earlier pull and resumed, a resume the server answers from byte 0, and
// a partial whose bytes are wrong, all end with every layer equal, entry
// by entry, to the reference unpack (a pull with --no-unpack then `gantry
// unpack`, which reads the verified blob from the store); wrong bytes at
// the end of a layer (also after a resumed partial) fail the pull with
// nothing recorded, no chain committed for that layer and a clean fsck, as
// does a layout file that decodes to the right tar but is not the blob
// (the applier leaves the compressed digest to the store); and the --json
// events show the layer being unpacked before its download is done.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/fault_proxy.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/registry_fixture.h"
#include "fixtures/tree_walk.h"
#include "integration/pull/pull_helpers.h"
#include "oci/manifest.h"
#include "snapshot/snapshotter.h"

namespace pulltest {
namespace {

using fixtures::FaultRule;
constexpr int64_t kMiB = 1 << 20;

// The fixture image plus a layer of 16 MiB of incompressible bytes and 300
// small files (gzip): many unpack progress steps, and room to cut it
// anywhere.
fixtures::ImageSpec OverlapImageSpec() {
  fixtures::ImageSpec spec = fixtures::FixtureImageSpec();
  std::mt19937_64 rng(21);  // fixed: the same image in every run
  std::string random(16 * kMiB, '\0');
  for (size_t i = 0; i + 8 <= random.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(random.data() + i, &v, 8);
  }
  fixtures::LayerSpec big;
  big.entries = {fixtures::Dir("opt/"), fixtures::File("opt/random.bin", std::move(random))};
  for (int d = 0; d < 10; ++d) {
    const std::string dir = "opt/d" + std::to_string(d) + "/";
    big.entries.push_back(fixtures::Dir(dir));
    for (int f = 0; f < 30; ++f) {
      std::string body(512 + rng() % 2048, '\0');
      for (char& c : body) c = static_cast<char>('a' + rng() % 26);
      big.entries.push_back(fixtures::File(dir + "f" + std::to_string(f), std::move(body)));
    }
  }
  spec.layers.push_back(std::move(big));
  return spec;
}

class PullOverlap : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_TOOLS("docker-registry", "skopeo");
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
    ASSERT_NO_FATAL_FAILURE(StartRegistry({}, &reg_));
    ASSERT_NO_FATAL_FAILURE(
        PushImage(*reg_, gantry_->dir() / "layout", OverlapImageSpec(), "overlap/app:v1", &image_));
    ASSERT_NO_FATAL_FAILURE(StartProxy(*reg_, &proxy_));
    layer_ = BiggestLayer(image_);
    ASSERT_GT(layer_.size, 16 * kMiB);
    cut_ = layer_.size / 2;
    name_ = proxy_->host() + "/overlap/app:v1";
    chains_ = oci::ChainIds(image_.diff_ids);
    ASSERT_EQ(image_.layers.back().digest, layer_.digest) << "the big layer is the top one";
  }

  std::string LayerPath() const { return "/blobs/" + layer_.digest.str(); }

  // The big layer was requested `count` times, the last one resumed at
  // cut_ with Range.
  void ExpectLastGetResumedAtTheCut(size_t count) const {
    auto gets = BlobGets(proxy_->Log(), layer_.digest);
    ASSERT_EQ(gets.size(), count);
    EXPECT_EQ(gets.back().range, "bytes=" + std::to_string(cut_) + "-");
    EXPECT_EQ(gets.back().status, 206);
  }

  // Each layer's own directory (overlay: the layer alone) in `g`'s store.
  std::vector<fixtures::Tree> Layers(const Gantry& g) const {
    std::vector<fixtures::Tree> out;
    auto sn =
        snapshot::Open(g.root(), {.kind = snapshot::Kind::kOverlay, .fallback_to_native = false});
    EXPECT_TRUE(sn) << sn.error().message;
    if (!sn) return out;
    for (const auto& c : chains_) {
      auto dir = (*sn)->FsDir(c.str());
      EXPECT_TRUE(dir) << "layer " << out.size() << ": " << dir.error().message;
      auto t = dir ? fixtures::WalkTree(*dir, {.skip_mechanics_xattrs = false})
                   : common::Result<fixtures::Tree>(fixtures::Tree{});
      EXPECT_TRUE(t) << t.error().message;
      out.push_back(t ? std::move(*t) : fixtures::Tree{});
    }
    return out;
  }

  // The pull under test left every layer as the reference unpack does: a
  // store of its own pulled with --no-unpack (through the proxy, no rule
  // set), then `gantry unpack`, which applies each blob from the store.
  void ExpectSameLayersAsTheReference() const {
    auto ref = Gantry::Create();
    ASSERT_TRUE(ref) << ref.error().message;
    ASSERT_NO_FATAL_FAILURE(PullOk(*ref, {"--no-unpack", name_}));
    auto u = ref->Run({"unpack", name_});
    ASSERT_TRUE(u) << u.error().message;
    ASSERT_EQ(u->exit_code, 0) << Describe(*u);
    const std::vector<fixtures::Tree> want = Layers(*ref), got = Layers(*gantry_);
    ASSERT_EQ(want.size(), chains_.size());
    ASSERT_EQ(got.size(), chains_.size());
    ASSERT_GT(want.back().size(), 300u);
    for (size_t i = 0; i < want.size(); ++i)
      for (const auto& d : fixtures::DiffTrees(want[i], got[i]))
        ADD_FAILURE() << "layer " << i << ": " << d;
    EXPECT_EQ(gantry_->ImageNames(), std::vector<std::string>{name_});
    ExpectNoIngestLeft(gantry_->root());
    ExpectFsckClean();
  }

  // A pull whose big layer comes with wrong bytes fails naming the layer,
  // records no image, stores no blob of it, commits no chain of it, leaves
  // no extract snapshot, and fsck finds the store clean.
  void ExpectPullFailsKeepingNothingOfTheLayer() const {
    auto r = gantry_->Run({"pull", name_});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_NE(r->exit_code, 0) << Describe(*r);
    EXPECT_NE(r->err.find(layer_.digest.str()), std::string::npos) << r->err;
    EXPECT_TRUE(gantry_->ImageNames().empty()) << "a failed pull records no image";
    EXPECT_FALSE(fs::exists(gantry_->root() / "content/blobs/sha256" / layer_.digest.hex()));
    for (const auto& [key, kind] : SnapshotKinds(*gantry_)) {
      EXPECT_NE(key, chains_.back().str()) << "the wrong layer's chain was committed";
      EXPECT_EQ(kind, "committed") << key << " left behind";
    }
    ExpectFsckClean();
  }

  void ExpectFsckClean() const {
    auto fsck = gantry_->Run({"fsck"});
    ASSERT_TRUE(fsck) << fsck.error().message;
    EXPECT_EQ(fsck->exit_code, 0) << Describe(*fsck) << fsck->out;
  }

  // A pull of the image stalled after `cut_` bytes of the big layer,
  // interrupted with SIGINT: it leaves the partial and nothing else.
  void LeavePartial() {
    proxy_->AddRule({.kind = FaultRule::Kind::kStall, .path_contains = LayerPath(), .bytes = cut_});
    auto child =
        gantry_->Spawn({"pull", name_}, gantry_->dir() / "first.out", gantry_->dir() / "first.err");
    ASSERT_TRUE(child) << child.error().message;
    ASSERT_TRUE(
        fixtures::WaitUntil([&] { return IngestSize(gantry_->root(), layer_.digest) == cut_; },
                            std::chrono::seconds(60)))
        << "the stalled layer's bytes never reached the partial";
    ASSERT_EQ(::kill(child->pid(), SIGINT), 0);
    auto rc = child->Wait();
    ASSERT_TRUE(rc) << rc.error().message;
    EXPECT_EQ(*rc, 130);
    proxy_->EndStalls();
    proxy_->ClearRules();
    EXPECT_TRUE(gantry_->ImageNames().empty());
    ASSERT_EQ(IngestSize(gantry_->root(), layer_.digest), cut_) << "the partial stays";
    for (const auto& [key, kind] : SnapshotKinds(*gantry_))
      EXPECT_NE(key, chains_.back().str()) << "the interrupted layer was committed";
    proxy_->ClearLog();
  }

  std::unique_ptr<Gantry> gantry_;
  std::unique_ptr<fixtures::RegistryFixture> reg_;
  std::unique_ptr<fixtures::FaultProxy> proxy_;
  fixtures::BuiltImage image_;
  fixtures::BlobInfo layer_{};
  int64_t cut_ = 0;
  std::string name_;
  std::vector<common::Digest> chains_;
};

TEST_F(PullOverlap, LayerCutMidStreamIsResumedAndUnpacksTheSameTree) {
  proxy_->AddRule(
      {.kind = FaultRule::Kind::kCutMidway, .path_contains = LayerPath(), .bytes = cut_});
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name_}));
  ASSERT_NO_FATAL_FAILURE(ExpectLastGetResumedAtTheCut(2));
  ExpectSameLayersAsTheReference();
}

TEST_F(PullOverlap, PartialOfAnEarlierPullIsResumedAndUnpacksTheSameTree) {
  ASSERT_NO_FATAL_FAILURE(LeavePartial());
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name_}));
  ASSERT_NO_FATAL_FAILURE(ExpectLastGetResumedAtTheCut(1));
  ExpectSameLayersAsTheReference();
}

// The server ignores Range: the download starts again from byte 0 over the
// partial the unpacker may already have read.
TEST_F(PullOverlap, ResumeAnsweredFromByteZeroUnpacksTheSameTree) {
  ASSERT_NO_FATAL_FAILURE(LeavePartial());
  proxy_->AddRule({.kind = FaultRule::Kind::kIgnoreRange, .path_contains = LayerPath()});
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name_}));
  auto gets = BlobGets(proxy_->Log(), layer_.digest);
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0].status, 200);
  EXPECT_EQ(gets[0].body_bytes_sent, layer_.size);
  ExpectSameLayersAsTheReference();
}

// A partial whose bytes are wrong (its start overwritten), then a server
// that ignores Range: the download restarts from 0 and the blob is right,
// but the unpacker may have read the wrong bytes before the restart. It
// must end with the right tree (applied again from the verified blob).
TEST_F(PullOverlap, WrongPartialThenRestartFromZeroUnpacksTheSameTree) {
  ASSERT_NO_FATAL_FAILURE(LeavePartial());
  {
    const fs::path partial =
        gantry_->root() / "content" / "ingest" / ("sha256-" + layer_.digest.hex());
    auto fd = common::Open(partial.string(), O_WRONLY);
    ASSERT_TRUE(fd) << fd.error().message;
    const std::string junk(64 * 1024, 'x');
    ASSERT_EQ(::pwrite(fd->get(), junk.data(), junk.size(), 0), static_cast<ssize_t>(junk.size()));
  }
  proxy_->AddRule({.kind = FaultRule::Kind::kIgnoreRange, .path_contains = LayerPath()});
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name_}));
  ExpectSameLayersAsTheReference();
}

// The first half of the layer arrives right, the rest (after a cut, on the
// resume) inverted: the blob's digest is wrong at the end.
TEST_F(PullOverlap, WrongBytesAtTheEndFailThePullAndCommitNothingOfThatLayer) {
  proxy_->AddRule(
      {.kind = FaultRule::Kind::kCutMidway, .path_contains = LayerPath(), .bytes = cut_});
  proxy_->AddRule({.kind = FaultRule::Kind::kWrongBytes, .path_contains = LayerPath()});
  ASSERT_NO_FATAL_FAILURE(ExpectPullFailsKeepingNothingOfTheLayer());
  auto gets = BlobGets(proxy_->Log(), layer_.digest);
  ASSERT_GE(gets.size(), 2u);
  EXPECT_EQ(gets[1].fault, "wrong_bytes");
}

// A partial left by an earlier pull is resumed (the store's hash of it is
// seeded from the file once), and the rest arrives inverted: the blob's
// digest is wrong, which only the store's check sees (the applier leaves
// the compressed digest to it). The pull fails, nothing of the layer is
// committed, and the wrong partial is gone.
TEST_F(PullOverlap, ResumedPartialThenWrongBytesFailThePullAndCommitNothingOfThatLayer) {
  ASSERT_NO_FATAL_FAILURE(LeavePartial());
  proxy_->AddRule({.kind = FaultRule::Kind::kWrongBytes, .path_contains = LayerPath()});
  ASSERT_NO_FATAL_FAILURE(ExpectPullFailsKeepingNothingOfTheLayer());
  auto gets = BlobGets(proxy_->Log(), layer_.digest);
  ASSERT_EQ(gets.size(), 1u);
  EXPECT_EQ(gets[0].range, "bytes=" + std::to_string(cut_) + "-");
  EXPECT_EQ(gets[0].fault, "wrong_bytes");
  EXPECT_EQ(IngestSize(gantry_->root(), layer_.digest), -1) << "the wrong partial was kept";
}

// The evidence of the overlap: the big layer's download stalls halfway
// (until the test ends the stall), and its unpack reports more than a
// quarter of the blob read before the download is done. The test ends the
// stall only once it has seen that event, so the order does not depend on
// timing.
TEST_F(PullOverlap, LayerIsUnpackingBeforeItsDownloadIsDone) {
  proxy_->AddRule({.kind = FaultRule::Kind::kStall, .path_contains = LayerPath(), .bytes = cut_});
  const fs::path out = gantry_->dir() / "pull.out";
  auto child = gantry_->Spawn({"pull", "--json", name_}, out, gantry_->dir() / "pull.err");
  ASSERT_TRUE(child) << child.error().message;
  const std::string digest = layer_.digest.str();
  auto unpacked_so_far = [&]() -> int64_t {
    auto text = common::ReadFile(out);
    if (!text) return 0;
    int64_t most = 0;
    size_t start = 0;
    for (size_t nl; (nl = text->find('\n', start)) != std::string::npos; start = nl + 1) {
      auto e = nlohmann::json::parse(text->substr(start, nl - start), nullptr, false);
      if (e.is_object() && e.value("event", "") == "layer-unpack" &&
          e.value("digest", "") == digest)
        most = std::max(most, e.value("current", int64_t{0}));
    }
    return most;
  };
  const bool seen =
      fixtures::WaitUntil([&] { return unpacked_so_far() >= cut_ / 2; }, std::chrono::seconds(60));
  proxy_->EndStalls();
  ASSERT_TRUE(seen) << "no unpack progress past " << cut_ / 2 << " bytes while the layer stalled";
  auto rc = child->Wait();
  ASSERT_TRUE(rc) << rc.error().message;
  auto text = common::ReadFile(out);
  ASSERT_TRUE(text) << text.error().message;
  ASSERT_EQ(*rc, 0) << *text;

  std::vector<nlohmann::json> events = JsonEvents(*text);
  int first_unpacking = -1, done = -1, unpacked = -1;
  for (int i = 0; i < static_cast<int>(events.size()); ++i) {
    const auto& e = events[i];
    if (e.value("digest", "") != digest) continue;
    const std::string kind = e.value("event", "");
    if (kind == "layer-unpack" && e.value("state", "") == "unpacking" &&
        e.value("current", int64_t{0}) > 0 && first_unpacking < 0)
      first_unpacking = i;
    if (kind == "layer-unpack" && e.value("state", "") == "unpacked") unpacked = i;
    if (kind == "layer-done") done = i;
  }
  ASSERT_GE(first_unpacking, 0) << *text;
  ASSERT_GE(done, 0) << *text;
  EXPECT_LT(first_unpacking, done) << "unpacked bytes only after the download:\n" << *text;
  EXPECT_GT(unpacked, done) << "a layer is unpacked only once its blob is verified";
  // The stalled transfer was cut and resumed once.
  ASSERT_NO_FATAL_FAILURE(ExpectLastGetResumedAtTheCut(2));
  ExpectSameLayersAsTheReference();
}

// A layer file of an oci: layout that is not its blob but decodes to the
// same tar: the gzip header's OS byte changed (same length, same diffID,
// another digest). The applier, reading the file while the store copies
// it, leaves the compressed digest to the store, whose ingest refuses the
// bytes: the pull fails, nothing is recorded, the blob is not stored, and
// no chain of that layer is committed.
TEST(PullOverlapLayout, AFileThatDecodesToTheRightTarButIsNotTheBlobIsNeverCommitted) {
  auto g = Gantry::Create();
  ASSERT_TRUE(g) << g.error().message;
  const fs::path layout = g->dir() / "layout";
  auto image = fixtures::WriteImage(layout, fixtures::FixtureImageSpec(), "v1");
  ASSERT_TRUE(image) << image.error().message;
  const fixtures::BlobInfo& top = image->layers.back();
  {
    const fs::path blob = layout / "blobs" / "sha256" / top.digest.hex();
    fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
    auto fd = common::Open(blob.string(), O_RDWR);
    ASSERT_TRUE(fd) << fd.error().message;
    unsigned char head[10] = {};
    ASSERT_EQ(::pread(fd->get(), head, sizeof head, 0), 10);
    ASSERT_EQ(head[0], 0x1f) << "a gzip layer";
    ASSERT_EQ(head[1], 0x8b) << "a gzip layer";
    const unsigned char os = head[9] == 3 ? 11 : 3;  // another OS: Unix or NTFS
    ASSERT_EQ(::pwrite(fd->get(), &os, 1, 9), 1);
  }
  auto r = g->Run({"pull", "oci:" + layout.string() + ":v1"});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_NE(r->exit_code, 0) << Describe(*r);
  EXPECT_NE(r->err.find(top.digest.str()), std::string::npos) << r->err;
  EXPECT_TRUE(g->ImageNames().empty()) << "a failed pull records no image";
  EXPECT_FALSE(fs::exists(g->root() / "content/blobs/sha256" / top.digest.hex()));
  const std::vector<common::Digest> chains = oci::ChainIds(image->diff_ids);
  for (const auto& [key, kind] : SnapshotKinds(*g)) {
    EXPECT_NE(key, chains.back().str()) << "the wrong layer's chain was committed";
    EXPECT_EQ(kind, "committed") << key << " left behind";
  }
}

}  // namespace
}  // namespace pulltest
