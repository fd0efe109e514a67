// Disk usage (upkeep/usage.h): shared layers are counted once, and what it
// calls reclaimable is what prune then frees.

#include <gtest/gtest.h>

#include "gc/gc_store.h"
#include "upkeep/gc.h"
#include "upkeep/usage.h"

namespace gctest {
namespace {

class GcUsage : public GcStore {
 protected:
  upkeep::DiskUsage Usage() {
    auto u = upkeep::ComputeUsage(*content_, *db_, *sn_);
    EXPECT_TRUE(u) << u.error().message;
    return u ? *u : upkeep::DiskUsage{};
  }

  int64_t ChainBytes(const std::vector<std::string>& chains) {
    int64_t n = 0;
    for (const auto& c : chains) n += SnapshotBytes(c);
    return n;
  }

  const upkeep::ImageUsage* Find(const upkeep::DiskUsage& u, const std::string& name) {
    for (const auto& i : u.images)
      if (i.name == name) return &i;
    ADD_FAILURE() << "no usage row for " << name;
    return nullptr;
  }
};

TEST_P(GcUsage, SharedLayersAreCountedOnce) {
  auto u = Usage();
  const int64_t shared = BlobBytes(shared_blobs_) + ChainBytes({a_.chains[0], a_.chains[1]});
  const int64_t a_size = BlobBytes(a_.blobs) + ChainBytes(a_.chains);
  const int64_t b_size = BlobBytes(b_.blobs) + ChainBytes(b_.chains);
  ASSERT_GT(shared, 0);

  const auto* a = Find(u, a_.name);
  const auto* b = Find(u, b_.name);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size, a_size);
  EXPECT_EQ(a->shared, shared);
  EXPECT_EQ(a->unique, a_size - shared);
  EXPECT_EQ(b->size, b_size);
  EXPECT_EQ(b->shared, shared);
  EXPECT_EQ(a->id, a_.built.config.digest.str());
  EXPECT_TRUE(a->unpacked);
  EXPECT_EQ(a->containers, 0);

  EXPECT_EQ(u.images_total.count, 2);
  EXPECT_EQ(u.images_total.bytes, a_size + b_size - shared);
  EXPECT_EQ(u.images_shared, shared);
  EXPECT_EQ(u.images_unique, a_size + b_size - 2 * shared);

  std::set<common::Digest> all = a_.blobs;
  all.insert(b_.blobs.begin(), b_.blobs.end());
  EXPECT_EQ(u.content_total.count, 8);  // 2 x (manifest, config, 3 layers) - 2 shared
  EXPECT_EQ(all.size(), 8u);
  EXPECT_EQ(u.content_total.bytes, BlobBytes(all));
  EXPECT_EQ(u.snapshots_total.count, 4);
  for (const auto& s : u.snapshots)
    EXPECT_EQ(s.images, shared_chains_.count(s.info.name) ? 2 : 1) << s.info.name;

  EXPECT_EQ(u.reclaimable, 0);
  // No container uses either image: prune --all frees everything.
  EXPECT_EQ(u.reclaimable_all, u.content_total.bytes + u.snapshots_total.bytes);
}

TEST_P(GcUsage, ReclaimableIsWhatPruneFrees) {
  ASSERT_TRUE(db_->DeleteImage(a_.name));
  auto u = Usage();
  std::set<common::Digest> a_only;
  for (const auto& d : a_.blobs)
    if (!b_.blobs.count(d)) a_only.insert(d);
  EXPECT_EQ(u.reclaimable, BlobBytes(a_only) + SnapshotBytes(a_.chains[2]));
  EXPECT_EQ(u.content_total.reclaimable, BlobBytes(a_only));
  EXPECT_EQ(u.snapshots_total.reclaimable, SnapshotBytes(a_.chains[2]));
  EXPECT_EQ(u.images_total.count, 1);
  // B alone: nothing of it is shared any more.
  EXPECT_EQ(u.images_shared, 0);

  auto r = upkeep::Prune(*content_, *db_, *sn_, {});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->total_bytes(), u.reclaimable);
  EXPECT_EQ(Usage().reclaimable, 0);
}

TEST_P(GcUsage, ContainersMakeAnImageActive) {
  ASSERT_TRUE(sn_->Prepare("bundle-1", b_.chains[2]));
  auto u = Usage();
  EXPECT_EQ(u.images_total.active, 1);
  EXPECT_EQ(Find(u, b_.name)->containers, 1);
  EXPECT_EQ(Find(u, a_.name)->containers, 0);
  // prune --all would drop A: its own blobs and its top snapshot.
  std::set<common::Digest> a_only;
  for (const auto& d : a_.blobs)
    if (!b_.blobs.count(d)) a_only.insert(d);
  EXPECT_EQ(u.images_total.reclaimable, BlobBytes(a_only) + SnapshotBytes(a_.chains[2]));
}

INSTANTIATE_TEST_SUITE_P(Kinds, GcUsage,
                         ::testing::Values(snapshot::Kind::kOverlay, snapshot::Kind::kNative),
                         KindParamName);

}  // namespace
}  // namespace gctest
