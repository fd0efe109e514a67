#include "gc/gc_store.h"

#include <unistd.h>

#include "fixtures/require.h"
#include "image/fetch.h"
#include "image/image_record.h"
#include "image/unpacker.h"
#include "oci/manifest.h"
#include "registry/source.h"

namespace gctest {

using fixtures::Dir;
using fixtures::File;

namespace {

fixtures::LayerSpec L1() {
  return Layer({Dir("bin/"), Dir("etc/"), File("etc/base.txt", std::string(20000, 'b')),
                File("bin/tool", std::string(9000, 't'), 0755)});
}
fixtures::LayerSpec L2() {
  return Layer({Dir("etc/"), File("etc/shared.txt", std::string(12000, 's'))});
}

}  // namespace

fixtures::LayerSpec Layer(std::vector<fixtures::TarEntry> entries) {
  fixtures::LayerSpec l;
  l.entries = std::move(entries);
  return l;
}

std::vector<fixtures::LayerSpec> LayersA() {
  return {L1(), L2(), Layer({File("a.txt", std::string(30000, 'a'))})};
}

std::vector<fixtures::LayerSpec> LayersB() {
  return {L1(), L2(), Layer({File("b.txt", std::string(40000, 'x')), Dir("var/")})};
}

std::string KindParamName(const ::testing::TestParamInfo<snapshot::Kind>& info) {
  return info.param == snapshot::Kind::kOverlay ? "Overlay" : "Native";
}

void GcStore::SetUp() {
  REQUIRE_ROOT("snapshots keep uid/gid; overlay mounts");
  if (GetParam() == snapshot::Kind::kOverlay) {
    auto probe = common::TempDir::Create("gc-probe");
    ASSERT_TRUE(probe);
    REQUIRE_OVERLAYFS(snapshot::OverlaySupported(probe->path()), probe->path());
  }
  auto dir = common::TempDir::Create("gc-test");
  ASSERT_TRUE(dir) << dir.error().message;
  dir_ = std::move(*dir);
  auto content = store::ContentStore::Open(root());
  ASSERT_TRUE(content) << content.error().message;
  content_ = std::make_unique<store::ContentStore>(std::move(*content));
  auto db = store::MetadataDb::Open(root(), {.now = [this] { return now_; }});
  ASSERT_TRUE(db) << db.error().message;
  db_ = std::make_unique<store::MetadataDb>(std::move(*db));
  auto sn = snapshot::Open(root(), {.kind = GetParam(), .fallback_to_native = false});
  ASSERT_TRUE(sn) << sn.error().message;
  sn_ = std::move(*sn);

  a_ = WriteTag("a", LayersA());
  b_ = WriteTag("b", LayersB());
  ASSERT_FALSE(HasFailure());
  shared_chains_ = {a_.chains[0], a_.chains[1]};
  shared_blobs_ = {a_.built.layers[0].digest, a_.built.layers[1].digest};
  ASSERT_EQ(b_.chains[1], a_.chains[1]);
  PullTag("a");
  PullTag("b");
}

ImageFacts GcStore::WriteTag(const std::string& tag,
                             const std::vector<fixtures::LayerSpec>& layers) {
  ImageFacts f;
  fixtures::ImageSpec spec;
  spec.layers = layers;
  auto built = fixtures::WriteImage(layout(), spec, tag);
  EXPECT_TRUE(built) << built.error().message;
  if (!built) return f;
  f.built = *built;
  f.name = "localhost/layout:" + tag;
  for (const auto& c : oci::ChainIds(built->diff_ids)) f.chains.push_back(c.str());
  f.blobs = {built->manifest.digest, built->config.digest};
  for (const auto& l : built->layers) f.blobs.insert(l.digest);
  return f;
}

void GcStore::PullTag(const std::string& tag, bool unpack) {
  auto spec = registry::ParseSourceSpec("oci:" + layout().string() + ":" + tag);
  ASSERT_TRUE(spec) << spec.error().message;
  image::FetchOptions opts;
  opts.max_concurrent_downloads = 1;
  opts.record = image::RecordOf;
  auto r = image::Fetch(*content_, *db_, *spec, opts);
  ASSERT_TRUE(r) << r.error().message;
  if (!unpack) return;
  auto rec = db_->GetImage(r->name);
  ASSERT_TRUE(rec) << rec.error().message;
  auto u = image::Unpack(*content_, UnpackOpts(), *rec);
  ASSERT_TRUE(u) << u.error().message;
}

image::UnpackOptions GcStore::UnpackOpts() const {
  image::UnpackOptions uo;
  uo.snapshotter = sn_.get();
  uo.metadata = db_.get();
  return uo;
}

std::set<common::Digest> GcStore::Blobs() const {
  auto l = content_->List();
  EXPECT_TRUE(l) << l.error().message;
  return l ? std::set<common::Digest>(l->begin(), l->end()) : std::set<common::Digest>{};
}

std::set<std::string> GcStore::Committed() const {
  std::set<std::string> out;
  auto l = sn_->List();
  EXPECT_TRUE(l) << l.error().message;
  if (l)
    for (const auto& i : *l)
      if (i.kind == snapshot::SnapshotKind::kCommitted) out.insert(i.name);
  return out;
}

std::set<std::string> GcStore::SnapshotNames() const {
  std::set<std::string> out;
  auto l = sn_->List();
  EXPECT_TRUE(l) << l.error().message;
  if (l)
    for (const auto& i : *l) out.insert(i.name);
  return out;
}

int64_t GcStore::SnapshotBytes(const std::string& name) const {
  auto u = sn_->GetUsage(name);
  return u ? u->bytes : 0;
}

int64_t GcStore::BlobBytes(const std::set<common::Digest>& blobs) const {
  int64_t n = 0;
  for (const auto& d : blobs) {
    auto s = content_->Size(d);
    EXPECT_TRUE(s) << d.str();
    if (s) n += *s;
  }
  return n;
}

}  // namespace gctest
