// Garbage collection (upkeep/gc.h) on a real store: two images sharing two
// layers, pulled from an OCI layout and unpacked, under both snapshotters.

#include "upkeep/gc.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include <fstream>

#include "common/fs.h"
#include "gc/gc_store.h"
#include "image/conventions.h"
#include "image/fetch.h"
#include "image/image_record.h"
#include "image/unpacker.h"
#include "registry/source.h"
#include "store/lease_hold.h"

namespace gctest {
namespace {

using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

std::set<common::Digest> BlobSet(const upkeep::GcReport& r) {
  std::set<common::Digest> out;
  for (const auto& b : r.blobs) out.insert(b.digest);
  return out;
}

std::set<std::string> SnapshotSet(const upkeep::GcReport& r) {
  std::set<std::string> out;
  for (const auto& s : r.snapshots) out.insert(s.key);
  return out;
}

std::set<common::Digest> Minus(const std::set<common::Digest>& a,
                               const std::set<common::Digest>& b) {
  std::set<common::Digest> out;
  for (const auto& d : a)
    if (!b.count(d)) out.insert(d);
  return out;
}

class GcPrune : public GcStore {
 protected:
  upkeep::GcReport Prune(upkeep::GcOptions o = {}) {
    auto r = upkeep::Prune(*content_, *db_, *sn_, o);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return {};
    EXPECT_THAT(r->errors, IsEmpty());
    return *r;
  }

  // A blob nothing refers to.
  common::Digest GarbageBlob(const std::string& text) {
    common::Digest d = common::Digest::Sha256Of(text);
    EXPECT_TRUE(content_->WriteBlob(d, text));
    return d;
  }

  // A partial download left by a killed pull.
  std::filesystem::path StalePartial() {
    std::string data(5000, 'p');
    auto ing = content_->BeginIngest(common::Digest::Sha256Of(data), 5000);
    EXPECT_TRUE(ing) << ing.error().message;
    if (ing) {
      EXPECT_TRUE(ing->Write(std::string_view(data).substr(0, 3000)));
    }
    return content_->IngestPath(common::Digest::Sha256Of(data));
  }

  std::string LeftoverExtract(const std::string& parent) {
    std::string key = std::string(image::kExtractKeyPrefix) + "deadbeef-" + parent.substr(7, 12);
    EXPECT_TRUE(sn_->Prepare(key, parent, {{std::string(image::kSnapshotLabelExtract), "1"}}));
    auto dir = sn_->WritableDir(key);
    EXPECT_TRUE(dir);
    if (dir) {
      EXPECT_TRUE(common::AtomicWriteFile(*dir / "half-written", std::string(4096, 'h')));
    }
    return key;
  }
};

TEST_P(GcPrune, SharedLayersAreOneCommittedSnapshotPerChain) {
  std::set<std::string> chains(a_.chains.begin(), a_.chains.end());
  chains.insert(b_.chains.begin(), b_.chains.end());
  EXPECT_EQ(chains.size(), 4u);
  EXPECT_EQ(Committed(), chains);
  EXPECT_EQ(SnapshotNames(), chains) << "no extract snapshot may be left behind";
  std::set<common::Digest> blobs = a_.blobs;
  blobs.insert(b_.blobs.begin(), b_.blobs.end());
  EXPECT_EQ(Blobs(), blobs);
}

TEST_P(GcPrune, NothingToCollectInAFreshStore) {
  auto r = Prune({.ingest_min_age = std::chrono::seconds(0)});
  EXPECT_THAT(r.blobs, IsEmpty());
  EXPECT_THAT(r.snapshots, IsEmpty());
  EXPECT_EQ(r.total_bytes(), 0);
}

TEST_P(GcPrune, RmiThenPruneKeepsSharedChainsAndFreesTheRest) {
  const auto a_only = Minus(a_.blobs, b_.blobs);
  ASSERT_EQ(a_only.size(), 3u);  // manifest, config, the third layer
  const int64_t expected = BlobBytes(a_only) + SnapshotBytes(a_.chains[2]);
  ASSERT_TRUE(db_->DeleteImage(a_.name));

  auto r = Prune();
  EXPECT_EQ(BlobSet(r), a_only);
  EXPECT_EQ(SnapshotSet(r), std::set<std::string>{a_.chains[2]});
  EXPECT_EQ(r.total_bytes(), expected);
  EXPECT_THAT(r.warnings, IsEmpty());

  EXPECT_EQ(Blobs(), b_.blobs);
  EXPECT_EQ(Committed(), (std::set<std::string>{b_.chains.begin(), b_.chains.end()}));
  for (const auto& d : a_only) EXPECT_FALSE(db_->GetBlob(d)) << "metadata row of " << d.str();
  // B is intact: nothing to unpack again.
  auto rec = db_->GetImage(b_.name);
  ASSERT_TRUE(rec);
  auto u = image::Unpack(*content_, UnpackOpts(), *rec);
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->layers_applied, 0);
}

// The snapshotter door (ctrsnap/door.h): what containerd holds is a root
// whatever happens to the image record, until containerd removes it.
TEST_P(GcPrune, ContainerdHoldKeepsTheChainThroughRmiAndPruneAll) {
  const std::string kind(snapshot::KindName(sn_->kind()));
  ASSERT_TRUE(db_->PutContainerdSnapshot({.snapshotter = kind,
                                          .name = "default/7/" + a_.chains[2],
                                          .target = a_.chains[2],
                                          .parent = "default/5/" + a_.chains[1]}));
  ASSERT_TRUE(db_->DeleteImage(a_.name));
  ASSERT_TRUE(db_->DeleteImage(b_.name));

  auto r = Prune({.all = true});
  EXPECT_EQ(SnapshotSet(r), (std::set<std::string>{b_.chains[2]}))
      << "only B's own top layer is free; A's chain is containerd's";
  for (const auto& c : a_.chains) EXPECT_TRUE(Committed().count(c)) << c;

  ASSERT_TRUE(db_->DeleteContainerdSnapshot(kind, "default/7/" + a_.chains[2]));
  r = Prune({.all = true});
  EXPECT_EQ(SnapshotSet(r), (std::set<std::string>{a_.chains.begin(), a_.chains.end()}));
  EXPECT_THAT(Committed(), IsEmpty());
}

TEST_P(GcPrune, RecordWithADamagedLabelWarnsAndKeepsWhatItsTargetReaches) {
  auto rec = db_->GetImage(a_.name);
  ASSERT_TRUE(rec) << rec.error().message;
  rec->labels[std::string(image::kLabelChain)] = "damaged";
  ASSERT_TRUE(db_->PutImage(*rec));
  auto r = Prune();
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_THAT(r.warnings[0], ::testing::HasSubstr(a_.name));
  EXPECT_THAT(r.warnings[0], ::testing::HasSubstr(std::string(image::kLabelChain)));
  EXPECT_THAT(BlobSet(r), ::testing::IsEmpty());
  EXPECT_THAT(SnapshotSet(r), ::testing::IsEmpty());
  EXPECT_EQ(Committed().size(), 4u);
}

TEST_P(GcPrune, PruneIsIdempotent) {
  ASSERT_TRUE(db_->DeleteImage(a_.name));
  auto first = Prune({.ingest_min_age = std::chrono::seconds(0)});
  EXPECT_FALSE(first.blobs.empty());
  auto second = Prune({.ingest_min_age = std::chrono::seconds(0)});
  EXPECT_THAT(second.blobs, IsEmpty());
  EXPECT_THAT(second.snapshots, IsEmpty());
  EXPECT_THAT(second.leases, IsEmpty());
  EXPECT_EQ(second.total_bytes(), 0);
  EXPECT_EQ(Blobs(), b_.blobs);
}

TEST_P(GcPrune, DryRunRemovesNothingAndPredictsTheRealRun) {
  ASSERT_TRUE(db_->DeleteImage(a_.name));
  std::string extract = LeftoverExtract(a_.chains[1]);
  auto partial = StalePartial();
  auto lease = db_->CreateLease(std::chrono::hours(1));  // held, but expired
  ASSERT_TRUE(lease);
  now_ += std::chrono::hours(2);
  const auto blobs_before = Blobs();
  const auto snaps_before = SnapshotNames();

  upkeep::GcOptions o{.dry_run = true, .ingest_min_age = std::chrono::seconds(0)};
  auto dry = Prune(o);
  EXPECT_TRUE(dry.dry_run);
  EXPECT_EQ(BlobSet(dry), Minus(a_.blobs, b_.blobs));
  EXPECT_EQ(SnapshotSet(dry), (std::set<std::string>{a_.chains[2], extract}));
  EXPECT_EQ(dry.leases, std::vector<std::string>{lease->lease()});
  EXPECT_EQ(dry.ingest_files, 1);
  EXPECT_EQ(dry.ingest_bytes, 3000);

  EXPECT_EQ(Blobs(), blobs_before);
  EXPECT_EQ(SnapshotNames(), snaps_before);
  EXPECT_TRUE(std::filesystem::exists(partial));
  auto leases = db_->ListLeases();
  ASSERT_TRUE(leases);
  EXPECT_EQ(leases->size(), 1u);
  for (const auto& d : Minus(a_.blobs, b_.blobs)) EXPECT_TRUE(db_->GetBlob(d));

  o.dry_run = false;
  auto real = Prune(o);
  EXPECT_EQ(BlobSet(real), BlobSet(dry));
  EXPECT_EQ(SnapshotSet(real), SnapshotSet(dry));
  EXPECT_EQ(real.leases, dry.leases);
  EXPECT_EQ(real.total_bytes(), dry.total_bytes());
  EXPECT_FALSE(std::filesystem::exists(partial));
}

TEST_P(GcPrune, LeaseProtectsAPullInProgress) {
  // C shares L1 and brings a layer of its own; a prune runs in the middle of
  // its pull, after the manifest and config are stored but before the
  // image record exists: only the pull's lease protects them.
  auto c = WriteTag("c", {LayersA()[0], Layer({fixtures::File("c.txt", std::string(7000, 'c'))})});
  ASSERT_FALSE(HasFailure());
  const common::Digest garbage = GarbageBlob("nobody refers to this");
  auto db2 = store::MetadataDb::Open(root());
  ASSERT_TRUE(db2) << db2.error().message;

  std::optional<upkeep::GcReport> during;
  auto spec = registry::ParseSourceSpec("oci:" + layout().string() + ":c");
  ASSERT_TRUE(spec);
  image::FetchOptions opts;
  opts.max_concurrent_downloads = 1;
  opts.record = image::RecordOf;
  opts.on_event = [&](const image::PullEvent& e) {
    if (during || e.kind != image::PullEvent::Kind::kLayerDone ||
        e.state != image::LayerState::kDone)
      return;
    auto r = upkeep::Prune(*content_, *db2, *sn_, {.ingest_min_age = std::chrono::seconds(0)});
    EXPECT_TRUE(r) << r.error().message;
    if (r) during = *r;
  };
  auto pulled = image::Fetch(*content_, *db_, *spec, opts);
  ASSERT_TRUE(pulled) << pulled.error().message;
  ASSERT_TRUE(during.has_value()) << "the prune did not run during the pull";
  EXPECT_EQ(BlobSet(*during), std::set<common::Digest>{garbage});
  EXPECT_THAT(during->errors, IsEmpty());
  for (const auto& d : c.blobs) EXPECT_TRUE(content_->Has(d)) << d.str();

  auto rec = db_->GetImage(pulled->name);
  ASSERT_TRUE(rec);
  auto u = image::Unpack(*content_, UnpackOpts(), *rec);
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->layers_applied, 1);  // L1's chain is shared with A and B
  auto after = Prune();
  EXPECT_THAT(after.blobs, IsEmpty());
  EXPECT_THAT(after.snapshots, IsEmpty());
}

TEST_P(GcPrune, ExpiredLeaseReleasesWhatItHeld) {
  const common::Digest d = GarbageBlob("held by a lease");
  auto lease = db_->CreateLease(std::chrono::hours(1));
  ASSERT_TRUE(lease);
  ASSERT_TRUE(db_->AddLeaseResource(lease->lease(), store::kLeaseContent, d.str()));
  auto kept = Prune();
  EXPECT_THAT(kept.blobs, IsEmpty());
  EXPECT_THAT(kept.leases, IsEmpty());
  EXPECT_TRUE(content_->Has(d));

  now_ += std::chrono::hours(2);
  auto freed = Prune();
  EXPECT_EQ(BlobSet(freed), std::set<common::Digest>{d});
  EXPECT_EQ(freed.leases, std::vector<std::string>{lease->lease()});
  EXPECT_FALSE(content_->Has(d));
}

TEST_P(GcPrune, AbandonedLeaseIsDeletedHeldOneKept) {
  const common::Digest dead_blob = GarbageBlob("held by a killed pull");
  const common::Digest live_blob = GarbageBlob("held by a running pull");
  std::string dead;
  {
    auto lease = db_->CreateLease(std::chrono::hours(24));
    ASSERT_TRUE(lease) << lease.error().message;
    dead = lease->lease();
    ASSERT_TRUE(db_->AddLeaseResource(dead, store::kLeaseContent, dead_blob.str()));
  }  // dropped as a killed holder drops it: the hold file stays, unlocked
  auto live = db_->CreateLease(std::chrono::hours(24));
  ASSERT_TRUE(live) << live.error().message;
  ASSERT_TRUE(db_->AddLeaseResource(live->lease(), store::kLeaseContent, live_blob.str()));

  auto r = Prune();
  EXPECT_EQ(r.leases, std::vector<std::string>{dead});
  EXPECT_EQ(BlobSet(r), std::set<common::Digest>{dead_blob});
  EXPECT_TRUE(content_->Has(live_blob));
  EXPECT_FALSE(std::filesystem::exists(store::LeaseHold::Dir(root()) / dead));
  auto leases = db_->ListLeases();
  ASSERT_TRUE(leases);
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0].id, live->lease());
}

TEST_P(GcPrune, LeftoverExtractSnapshotIsRemovedLeasedOneKept) {
  std::string leftover = LeftoverExtract(a_.chains[1]);
  std::string leased = std::string(image::kExtractKeyPrefix) + "cafe-running";
  ASSERT_TRUE(
      sn_->Prepare(leased, a_.chains[1], {{std::string(image::kSnapshotLabelExtract), "1"}}));
  auto lease = db_->CreateLease(std::chrono::hours(1));
  ASSERT_TRUE(lease);
  ASSERT_TRUE(db_->AddLeaseResource(lease->lease(), store::kLeaseSnapshot, leased));

  auto r = Prune();
  EXPECT_EQ(SnapshotSet(r), std::set<std::string>{leftover});
  ASSERT_EQ(r.snapshots.size(), 1u);
  EXPECT_EQ(r.snapshots[0].kind, snapshot::SnapshotKind::kActive);
  EXPECT_EQ(r.snapshots[0].parent, a_.chains[1]);
  EXPECT_FALSE(sn_->Stat(leftover));
  EXPECT_TRUE(sn_->Stat(leased));

  ASSERT_TRUE(db_->DeleteLease(*lease));
  auto r2 = Prune();
  EXPECT_EQ(SnapshotSet(r2), std::set<std::string>{leased});
  EXPECT_EQ(Committed().size(), 4u);
}

TEST_P(GcPrune, ActiveSnapshotKeepsItsChainAfterTheImageIsRemoved) {
  ASSERT_TRUE(sn_->Prepare("bundle-1", a_.chains[2]));  // as a bundle would
  ASSERT_TRUE(db_->DeleteImage(a_.name));
  auto r = Prune();
  EXPECT_THAT(r.snapshots, IsEmpty());
  EXPECT_EQ(BlobSet(r), Minus(a_.blobs, b_.blobs));  // content is the image's, not the bundle's
  EXPECT_TRUE(Committed().count(a_.chains[2]));

  ASSERT_TRUE(sn_->Remove("bundle-1"));
  auto r2 = Prune();
  EXPECT_EQ(SnapshotSet(r2), std::set<std::string>{a_.chains[2]});
}

TEST_P(GcPrune, AllRemovesImagesNoContainerUses) {
  ASSERT_TRUE(sn_->Prepare("bundle-1", a_.chains[2]));
  auto r = Prune({.all = true});
  EXPECT_EQ(r.untagged, std::vector<std::string>{b_.name});
  EXPECT_TRUE(db_->GetImage(a_.name));
  EXPECT_FALSE(db_->GetImage(b_.name));
  EXPECT_EQ(SnapshotSet(r), std::set<std::string>{b_.chains[2]});
  EXPECT_EQ(BlobSet(r), Minus(b_.blobs, a_.blobs));
  EXPECT_EQ(Blobs(), a_.blobs);
}

TEST_P(GcPrune, StaleIngestAndOrphanDirectories) {
  auto partial = StalePartial();
  auto young = Prune();  // default: partials younger than a day stay
  EXPECT_EQ(young.ingest_files, 0);
  EXPECT_TRUE(std::filesystem::exists(partial));

  auto orphan = root() / "snapshots" / "987654";
  ASSERT_TRUE(common::MkdirAll(orphan / "fs"));
  struct utimbuf old {
    .actime = ::time(nullptr) - 3600, .modtime = ::time(nullptr) - 3600
  };
  ASSERT_EQ(::utime(orphan.c_str(), &old), 0);
  auto r = Prune({.ingest_min_age = std::chrono::seconds(0)});
  EXPECT_EQ(r.ingest_files, 1);
  EXPECT_EQ(r.ingest_bytes, 3000);
  EXPECT_EQ(r.orphan_dirs, 1);
  EXPECT_FALSE(std::filesystem::exists(partial));
  EXPECT_FALSE(std::filesystem::exists(orphan));
  EXPECT_EQ(Committed().size(), 4u);
}

TEST_P(GcPrune, CollectsTheOtherSnapshotterKindToo) {
  snapshot::Kind other_kind =
      GetParam() == snapshot::Kind::kOverlay ? snapshot::Kind::kNative : snapshot::Kind::kOverlay;
  auto other = snapshot::Open(root(), {.kind = other_kind, .fallback_to_native = false});
  ASSERT_TRUE(other) << other.error().message;
  ASSERT_TRUE(
      (*other)->Prepare("extract-other-1", "", {{std::string(image::kSnapshotLabelExtract), "1"}}));
  ASSERT_TRUE((*other)->Prepare("bundle-other", ""));
  snapshot::Snapshotter* both[] = {sn_.get(), other->get()};
  auto r = upkeep::Prune(*content_, *db_, std::span<snapshot::Snapshotter* const>(both), {});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->snapshots.size(), 1u);
  EXPECT_EQ(r->snapshots[0].key, "extract-other-1");
  EXPECT_EQ(r->snapshots[0].snapshotter, snapshot::KindName(other_kind));
  EXPECT_TRUE((*other)->Stat("bundle-other"));
  EXPECT_EQ(Committed().size(), 4u);
}

TEST_P(GcPrune, ImageWithAMissingManifestWarnsAndKeepsWhatItNames) {
  ASSERT_TRUE(content_->Delete(a_.built.manifest.digest));
  auto r = Prune();
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_THAT(r.warnings[0], ::testing::HasSubstr(a_.name));
  // Named by the record's labels: the config and the chain (io.gantry.chain).
  EXPECT_TRUE(content_->Has(a_.built.config.digest));
  EXPECT_EQ(Committed().size(), 4u);
  // Only the manifest knew the third layer.
  EXPECT_EQ(BlobSet(r), std::set<common::Digest>{a_.built.layers[2].digest});
  std::set<common::Digest> left = a_.blobs;
  left.insert(b_.blobs.begin(), b_.blobs.end());
  EXPECT_EQ(Blobs(), Minus(left, {a_.built.manifest.digest, a_.built.layers[2].digest}));
}

INSTANTIATE_TEST_SUITE_P(Kinds, GcPrune,
                         ::testing::Values(snapshot::Kind::kOverlay, snapshot::Kind::kNative),
                         KindParamName);

}  // namespace
}  // namespace gctest
