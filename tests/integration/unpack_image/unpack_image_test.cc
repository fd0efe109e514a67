// An image pulled and unpacked by gantry, mounted from its top snapshot,
// must equal entry by entry the tree the real `umoci unpack` makes of the
// same OCI layout, under both snapshotters.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/require.h"
#include "fixtures/tree_walk.h"
#include "image/conventions.h"
#include "image/fetch.h"
#include "image/image_record.h"
#include "image/pull_flights.h"
#include "image/unpacker.h"
#include "registry/source.h"
#include "snapshot/mount.h"

namespace image {
namespace {

namespace fs = std::filesystem;

struct Case {
  snapshot::Kind kind;
  fixtures::Compression compression;
};

std::string CaseName(const Case& c) {
  std::string k = c.kind == snapshot::Kind::kOverlay ? "overlay_" : "native_";
  switch (c.compression) {
    case fixtures::Compression::kGzip:
      return k + "gzip";
    case fixtures::Compression::kZstd:
      return k + "zstd";
    case fixtures::Compression::kNone:
      return k + "none";
  }
  return k;
}

class UnpackImageTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    REQUIRE_ROOT("mounts, device nodes, ownership");
    REQUIRE_TOOLS("umoci");
    auto d = common::TempDir::Create("unpack-image");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
  }
  void TearDown() override { mounts_.clear(); }

  common::TempDir dir_;
  std::vector<common::MountGuard> mounts_;
};

TEST_P(UnpackImageTest, RootfsEqualsUmociUnpack) {
  const Case& c = GetParam();
  fs::path layout = dir_.path() / "layout";
  auto built = fixtures::WriteImage(layout, fixtures::FixtureImageSpec(c.compression), "v1");
  ASSERT_TRUE(built) << built.error().message;

  // The peer's tree. umoci 0.4.7 cannot read zstd layers: the same image in
  // gzip has the same diffIDs and tree, so it stands in for the reference.
  fs::path peer_layout = layout;
  if (c.compression == fixtures::Compression::kZstd) {
    peer_layout = dir_.path() / "layout-gzip";
    ASSERT_TRUE(fixtures::WriteImage(peer_layout, fixtures::FixtureImageSpec(), "v1"));
  }
  fs::path bundle = dir_.path() / "umoci-bundle";
  auto umoci = fixtures::RunCommand(
      {"umoci", "unpack", "--image", peer_layout.string() + ":v1", bundle.string()});
  ASSERT_TRUE(umoci) << umoci.error().message;
  ASSERT_EQ(umoci->exit_code, 0) << umoci->err;

  fs::path root = dir_.path() / "store";
  auto content = store::ContentStore::Open(root);
  ASSERT_TRUE(content) << content.error().message;
  auto meta = store::MetadataDb::Open(root);
  ASSERT_TRUE(meta) << meta.error().message;
  auto src = registry::OpenLayoutSource(layout, "v1");
  ASSERT_TRUE(src) << src.error().message;
  image::FetchOptions opts;
  opts.record = image::RecordOf;
  auto pulled = image::FetchFrom(*content, *meta, **src, "localhost/fixture:v1", opts);
  ASSERT_TRUE(pulled) << pulled.error().message;
  auto sn = snapshot::Open(root, {.kind = c.kind, .fallback_to_native = false});
  ASSERT_TRUE(sn) << sn.error().message;
  auto rec = meta->GetImage("localhost/fixture:v1");
  ASSERT_TRUE(rec);
  auto r = Unpack(*content, {.snapshotter = sn->get(), .metadata = &*meta}, *rec);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->layers_applied, 4);
  ASSERT_EQ(r->chain_ids.size(), 4u);

  // Every chain is committed under its chainID; nothing else is left.
  auto list = (*sn)->List();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 4u);
  std::map<std::string, snapshot::Info> by_name;
  for (const auto& info : *list) by_name[info.name] = info;
  for (size_t i = 0; i < 4; ++i) {
    auto it = by_name.find(r->chain_ids[i].str());
    ASSERT_NE(it, by_name.end()) << "no snapshot for chain " << i;
    EXPECT_EQ(it->second.kind, snapshot::SnapshotKind::kCommitted);
    EXPECT_EQ(it->second.parent, i == 0 ? "" : r->chain_ids[i - 1].str());
    EXPECT_EQ(it->second.labels.count(std::string(kSnapshotLabelExtract)), 0u);
  }
  auto again = meta->GetImage("localhost/fixture:v1");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->labels.at(std::string(kLabelChain)), r->chain_ids.back().str());

  auto view = (*sn)->View("check", r->chain_ids.back().str());
  ASSERT_TRUE(view) << view.error().message;
  ASSERT_EQ(view->size(), 1u);
  fs::path mnt = dir_.path() / "mnt";
  ASSERT_TRUE(common::MkdirAll(mnt));
  auto guard = snapshot::MountAt(*view, mnt);
  ASSERT_TRUE(guard) << guard.error().message;
  mounts_.push_back(std::move(*guard));

  auto ours = fixtures::WalkTree(mnt);
  ASSERT_TRUE(ours) << ours.error().message;
  auto theirs = fixtures::WalkTree(bundle / "rootfs");
  ASSERT_TRUE(theirs) << theirs.error().message;
  ASSERT_GT(theirs->size(), 20u);
  for (const auto& d : fixtures::DiffTrees(*theirs, *ours))
    ADD_FAILURE() << "umoci vs gantry: " << d;
  for (const auto& [path, e] : *ours) EXPECT_EQ(path.find(".wh."), std::string::npos) << path;

  // A second unpack finds every chain and applies nothing.
  auto second = Unpack(*content, {.snapshotter = sn->get(), .metadata = &*meta}, *again);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->layers_applied, 0);
}

// Found by bench/soak.sh: an unpack wrote back the record it had read, so
// an rmi that landed during the unpack was undone, and a name another pull
// had moved meanwhile went back to the old image.
TEST(UnpackRecordRaceTest, UnpackKeepsANameRemovedOrMovedMeanwhile) {
  REQUIRE_ROOT("ownership of unpacked files");
  auto d = common::TempDir::Create("unpack-race");
  ASSERT_TRUE(d) << d.error().message;
  fs::path layout = d->path() / "layout";
  ASSERT_TRUE(fixtures::WriteImage(layout, fixtures::FixtureImageSpec(), "v1"));
  ASSERT_TRUE(fixtures::WriteImage(
      layout, fixtures::FixtureImageSpec(fixtures::Compression::kGzip, "arm64"), "v2"));
  fs::path root = d->path() / "store";
  auto content = store::ContentStore::Open(root);
  ASSERT_TRUE(content) << content.error().message;
  auto meta = store::MetadataDb::Open(root);
  ASSERT_TRUE(meta) << meta.error().message;
  auto sn = snapshot::Open(root, {.kind = snapshot::Kind::kNative});
  ASSERT_TRUE(sn) << sn.error().message;
  const std::string name = "localhost/fixture:v1";
  auto pull = [&](const std::string& tag) {
    auto src = registry::OpenLayoutSource(layout, tag);
    ASSERT_TRUE(src) << src.error().message;
    image::FetchOptions opts;
    opts.record = image::RecordOf;
    auto pulled = image::FetchFrom(*content, *meta, **src, name, opts);
    ASSERT_TRUE(pulled) << pulled.error().message;
  };

  ASSERT_NO_FATAL_FAILURE(pull("v1"));
  auto read = meta->GetImage(name);
  ASSERT_TRUE(read);
  ASSERT_TRUE(meta->DeleteImage(name));  // the rmi, after the unpack read the record
  auto r = Unpack(*content, {.snapshotter = sn->get(), .metadata = &*meta}, *read);
  ASSERT_TRUE(r) << r.error().message;
  auto gone = meta->GetImage(name);
  ASSERT_FALSE(gone) << "the removed name came back";
  EXPECT_EQ(gone.error().code, common::Errc::kNotFound);
  // What a pull unpacks after recording the image: the removal is a clear
  // Aborted, not a NotFound that reads as if the registry lacked the image.
  auto recorded = UnpackRecorded(*content, {.snapshotter = sn->get(), .metadata = &*meta}, name);
  ASSERT_FALSE(recorded);
  EXPECT_EQ(recorded.error().code, common::Errc::kAborted) << recorded.error().message;
  EXPECT_NE(recorded.error().message.find("was removed"), std::string::npos)
      << recorded.error().message;

  ASSERT_NO_FATAL_FAILURE(pull("v1"));
  read = meta->GetImage(name);
  ASSERT_TRUE(read);
  ASSERT_NO_FATAL_FAILURE(pull("v2"));  // another pull moves the name
  auto moved = meta->GetImage(name);
  ASSERT_TRUE(moved);
  ASSERT_NE(moved->target, read->target);
  r = Unpack(*content, {.snapshotter = sn->get(), .metadata = &*meta}, *read);
  ASSERT_TRUE(r) << r.error().message;
  auto now = meta->GetImage(name);
  ASSERT_TRUE(now);
  EXPECT_EQ(now->target, moved->target) << "the name went back to the old image";
  EXPECT_EQ(now->labels.count(std::string(kLabelChain)), 0u);
}

// A pull from local files (a layout, an archive) applies each layer from
// the source's file while the store takes the same bytes
// (UnpackOptions::open_local): the layer is applied first, and its chain
// committed only after wait_for_blob says the store holds the verified
// blob. Wrong bytes in the file fail the layer; a blob the store never
// gets leaves no chain.
class UnpackFromLocalFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT("ownership of unpacked files");
    auto d = common::TempDir::Create("unpack-local");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    layout_ = dir_.path() / "layout";
    ASSERT_TRUE(fixtures::WriteImage(layout_, fixtures::FixtureImageSpec(), "v1"));
    // Store A has every blob (it gives the parts); store B, the one
    // unpacked into, only gets a layer's blob from wait_for_blob.
    auto a = store::ContentStore::Open(dir_.path() / "a");
    auto meta_a = store::MetadataDb::Open(dir_.path() / "a");
    ASSERT_TRUE(a && meta_a);
    auto src = registry::OpenLayoutSource(layout_, "v1");
    ASSERT_TRUE(src) << src.error().message;
    image::FetchOptions fetch;
    fetch.record = image::RecordOf;
    auto pulled = image::FetchFrom(*a, *meta_a, **src, "localhost/fixture:v1", fetch);
    ASSERT_TRUE(pulled) << pulled.error().message;
    parts_ = PartsOf(*pulled);
    ASSERT_EQ(parts_.manifest.layers.size(), 4u);
    content_a_.emplace(std::move(*a));
    auto b = store::ContentStore::Open(dir_.path() / "b");
    auto meta_b = store::MetadataDb::Open(dir_.path() / "b");
    ASSERT_TRUE(b && meta_b);
    content_b_.emplace(std::move(*b));
    meta_b_.emplace(std::move(*meta_b));
    auto sn = snapshot::Open(dir_.path() / "b", {.kind = snapshot::Kind::kNative});
    ASSERT_TRUE(sn) << sn.error().message;
    sn_ = std::move(*sn);
  }

  // The layout's file of `blob`.
  std::optional<registry::LocalBlob> LayoutFile(const common::Digest& blob) const {
    auto fd = common::Open((layout_ / "blobs" / "sha256" / blob.hex()).string(), O_RDONLY);
    if (!fd) return std::nullopt;
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return std::nullopt;
    return registry::LocalBlob{.fd = std::move(*fd), .offset = 0, .size = st.st_size};
  }

  // Store B's blob `d`, copied from store A, as a pull's fetch would commit it.
  common::Status StoreInB(const common::Digest& d) {
    ASSIGN_OR_RETURN(std::string body, content_a_->ReadBlob(d, 64 << 20));
    return content_b_->WriteBlob(d, body);
  }

  std::set<std::string> CommittedChains() const {
    std::set<std::string> out;
    auto list = sn_->List();
    EXPECT_TRUE(list) << list.error().message;
    if (!list) return out;
    for (const auto& info : *list) {
      EXPECT_EQ(info.kind, snapshot::SnapshotKind::kCommitted) << info.name << " left behind";
      out.insert(info.name);
    }
    return out;
  }

  UnpackOptions Options() {
    return {.snapshotter = sn_.get(), .metadata = &*meta_b_, .max_parallel = 1};
  }

  common::TempDir dir_;
  fs::path layout_;
  ImageParts parts_;
  std::optional<store::ContentStore> content_a_, content_b_;
  std::optional<store::MetadataDb> meta_b_;
  std::unique_ptr<snapshot::Snapshotter> sn_;
};

TEST_F(UnpackFromLocalFilesTest, AppliesFromTheFileAndCommitsOnceTheStoreHasTheBlob) {
  std::mutex mu;
  std::vector<std::string> calls;
  UnpackOptions opts = Options();
  opts.open_local = [&](const common::Digest& d) {
    std::lock_guard l(mu);
    calls.push_back("open " + d.str());
    return LayoutFile(d);
  };
  opts.wait_for_blob = [&](const common::Digest& d) {
    {
      std::lock_guard l(mu);
      calls.push_back("wait " + d.str());
    }
    // Applied already, from the file: the store does not have it yet.
    EXPECT_FALSE(content_b_->Has(d));
    return StoreInB(d);
  };
  auto r = UnpackLayers(*content_b_, opts, parts_);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->layers_applied, 4);
  std::vector<std::string> want;
  for (const auto& l : parts_.manifest.layers) {
    want.push_back("open " + l.digest.str());
    want.push_back("wait " + l.digest.str());
  }
  EXPECT_EQ(calls, want);
  std::set<std::string> chains;
  for (const auto& c : parts_.chain_ids) chains.insert(c.str());
  EXPECT_EQ(CommittedChains(), chains);
}

TEST_F(UnpackFromLocalFilesTest, ABlobTheStoreNeverGetsLeavesNoChain) {
  const common::Digest last = parts_.manifest.layers.back().digest;
  UnpackOptions opts = Options();
  opts.open_local = [&](const common::Digest& d) { return LayoutFile(d); };
  opts.wait_for_blob = [&](const common::Digest& d) -> common::Status {
    if (d == last) return common::MakeError(common::Errc::kCancelled, "the pull stopped");
    return StoreInB(d);
  };
  auto r = UnpackLayers(*content_b_, opts, parts_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, common::Errc::kCancelled) << r.error().message;
  EXPECT_EQ(CommittedChains().count(parts_.chain_ids.back().str()), 0u);
}

TEST_F(UnpackFromLocalFilesTest, WrongBytesInTheFileFailTheLayer) {
  const auto& layers = parts_.manifest.layers;
  std::set<std::string> waited;
  UnpackOptions opts = Options();
  // The second layer's file holds the third layer's bytes.
  opts.open_local = [&](const common::Digest& d) {
    return LayoutFile(d == layers[1].digest ? layers[2].digest : d);
  };
  opts.wait_for_blob = [&](const common::Digest& d) {
    waited.insert(d.str());
    return StoreInB(d);
  };
  auto r = UnpackLayers(*content_b_, opts, parts_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, common::Errc::kDataLoss) << r.error().message;
  EXPECT_EQ(waited.count(layers[1].digest.str()), 0u) << "a wrong layer is not committed";
  auto committed = CommittedChains();
  for (size_t i = 1; i < parts_.chain_ids.size(); ++i)
    EXPECT_EQ(committed.count(parts_.chain_ids[i].str()), 0u) << "chain " << i;
}

// A layer in flight (UnpackOptions::flights) is applied as a follower of
// its download. Here the test is the download: it publishes a file as the
// layer's ingest and decides what happens to it.
class UnpackFollowingDownloadsTest : public UnpackFromLocalFilesTest {
 protected:
  // A file of the layer's size holding `body`, published as the download
  // of `layer` with every byte written.
  void PublishDownload(PullFlights::Publisher& pub, const oci::Descriptor& layer,
                       const std::string& body) {
    const fs::path file = dir_.path() / ("ingest-" + layer.digest.hex());
    ASSERT_TRUE(common::AtomicWriteFile(file, body));
    auto fd = common::Open(file.string(), O_RDONLY);
    ASSERT_TRUE(fd) << fd.error().message;
    pub.Expect(layer);
    pub.Writing(layer.digest, std::move(*fd), static_cast<int64_t>(body.size()));
  }

  // The "unpacking" counts of `layer` only grow, and it ends "unpacked".
  void ExpectProgressOf(const oci::Descriptor& layer, const std::vector<PullEvent>& events) {
    int64_t last = -1;
    int ends = 0;
    for (const PullEvent& e : events) {
      if (e.digest != layer.digest) continue;
      if (e.state == LayerState::kUnpacked) {
        ++ends;
        EXPECT_EQ(e.current, layer.size);
        continue;
      }
      EXPECT_GT(e.current, last) << "the count went back";
      last = e.current;
    }
    EXPECT_EQ(ends, 1);
  }

  PullFlights flights_;
};

// The bytes followed are not the blob the store verified (a resume the
// server answered from 0 over a partial whose bytes differed): the apply
// fails on them, and the layer is applied again from the store.
TEST_F(UnpackFollowingDownloadsTest,
       BytesThatDifferFromTheVerifiedBlobAreAppliedAgainFromTheStore) {
  const oci::Descriptor& layer = parts_.manifest.layers[1];
  PullFlights::Publisher pub(&flights_, "localhost/fixture:v1");
  auto right = content_a_->ReadBlob(layer.digest, 64 << 20);
  ASSERT_TRUE(right) << right.error().message;
  std::string wrong = *right;
  for (size_t i = 0; i < std::min<size_t>(wrong.size(), 4096); ++i) wrong[i] = ~wrong[i];
  ASSERT_NO_FATAL_FAILURE(PublishDownload(pub, layer, wrong));
  std::vector<PullEvent> events;
  std::vector<std::string> calls;  // "wait D" and "apply D" (an apply starts)
  UnpackOptions opts = Options();
  opts.flights = &flights_;
  opts.on_event = [&](const PullEvent& e) {
    events.push_back(e);
    if (e.state == LayerState::kUnpacking && e.current == 0)
      calls.push_back("apply " + e.digest->str());
  };
  opts.wait_for_blob = [&](const common::Digest& d) {
    calls.push_back("wait " + d.str());
    return StoreInB(d);
  };
  auto r = UnpackLayers(*content_b_, opts, parts_);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->layers_applied, 4);
  // Layer 1 is applied from its download first, then (its blob waited for
  // once) from the store, with no second "unpacking" 0; every other layer
  // is waited for, then applied.
  std::vector<std::string> want;
  for (const auto& l : parts_.manifest.layers) {
    if (l.digest == layer.digest) {
      want.push_back("apply " + l.digest.str());
      want.push_back("wait " + l.digest.str());
    } else {
      want.push_back("wait " + l.digest.str());
      want.push_back("apply " + l.digest.str());
    }
  }
  EXPECT_EQ(calls, want);
  std::set<std::string> chains;
  for (const auto& c : parts_.chain_ids) chains.insert(c.str());
  EXPECT_EQ(CommittedChains(), chains);
  ExpectProgressOf(layer, events);
}

// The download fails while the layer is applied from it: the layer fails
// with the download's error, and neither it nor a layer above is committed.
TEST_F(UnpackFollowingDownloadsTest, ADownloadThatFailsFailsTheLayerAndCommitsNothingAbove) {
  const oci::Descriptor& layer = parts_.manifest.layers[2];
  PullFlights::Publisher pub(&flights_, "localhost/fixture:v1");
  auto right = content_a_->ReadBlob(layer.digest, 64 << 20);
  ASSERT_TRUE(right) << right.error().message;
  ASSERT_NO_FATAL_FAILURE(PublishDownload(pub, layer, *right));
  UnpackOptions opts = Options();
  opts.flights = &flights_;
  // The layer's apply has started: its download fails now (the follower
  // holds its last byte back until then).
  opts.on_event = [&](const PullEvent& e) {
    if (e.digest == layer.digest && e.state == LayerState::kUnpacking && e.current == 0)
      pub.Done(layer.digest,
               common::MakeError(common::Errc::kDataLoss, "commit: content has another digest"));
  };
  opts.wait_for_blob = [&](const common::Digest& d) -> common::Status {
    if (d == layer.digest) return common::MakeError(common::Errc::kCancelled, "the pull stopped");
    return StoreInB(d);
  };
  auto r = UnpackLayers(*content_b_, opts, parts_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, common::Errc::kDataLoss) << r.error().message;
  EXPECT_NE(r.error().message.find("another digest"), std::string::npos) << r.error().message;
  auto committed = CommittedChains();
  EXPECT_EQ(committed.size(), 2u);
  for (size_t i = 2; i < parts_.chain_ids.size(); ++i)
    EXPECT_EQ(committed.count(parts_.chain_ids[i].str()), 0u) << "chain " << i;
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, UnpackImageTest,
    ::testing::Values(Case{snapshot::Kind::kOverlay, fixtures::Compression::kGzip},
                      Case{snapshot::Kind::kOverlay, fixtures::Compression::kZstd},
                      Case{snapshot::Kind::kOverlay, fixtures::Compression::kNone},
                      Case{snapshot::Kind::kNative, fixtures::Compression::kGzip},
                      Case{snapshot::Kind::kNative, fixtures::Compression::kZstd},
                      Case{snapshot::Kind::kNative, fixtures::Compression::kNone}),
    [](const auto& p) { return CaseName(p.param); });

}  // namespace
}  // namespace image
