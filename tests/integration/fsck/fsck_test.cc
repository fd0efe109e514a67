// upkeep::Check and upkeep::Repair (gantry fsck) on a real store: two images
// sharing two layers, pulled from an OCI layout and unpacked (gc/gc_store.h).
// Each test damages exactly one thing, expects exactly that problem, repairs
// it, expects a clean second check and the rest of the store untouched.

#include "upkeep/fsck.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "common/fs.h"
#include "gc/gc_store.h"
#include "image/conventions.h"
#include "image/image_record.h"
#include "image/unpacker.h"
#include "snapshot/inventory.h"
#include "snapshot/mount.h"
#include "store/lease_hold.h"
#include "store/sqlite.h"
#include "upkeep/gc.h"

namespace gctest {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

// kind + subject of every problem.
std::set<std::pair<std::string, std::string>> Kinds(const std::vector<upkeep::FsckProblem>& ps) {
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& p : ps) out.emplace(p.kind, p.subject);
  return out;
}

std::string Describe(const upkeep::FsckReport& r) {
  std::string s;
  for (const auto& p : r.problems)
    s += "problem: " + p.kind + " " + p.subject + ": " + p.detail + "\n";
  for (const auto& a : r.repairs) s += "repaired: " + a.action + " " + a.subject + "\n";
  for (const auto& e : r.errors) s += "error: " + e + "\n";
  return s;
}

class Fsck : public GcStore {
 protected:
  upkeep::FsckReport Check() {
    auto r = upkeep::Check(*content_, *db_);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : upkeep::FsckReport{};
  }

  upkeep::FsckReport Repair() {
    auto r = upkeep::Repair(*content_, *db_);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return {};
    EXPECT_THAT(r->errors, IsEmpty()) << Describe(*r);
    EXPECT_THAT(r->remaining, IsEmpty()) << Describe(*r);
    return *r;
  }

  // Repairs, and expects the problems `want`, then a clean check.
  upkeep::FsckReport RepairExpecting(const std::set<std::pair<std::string, std::string>>& want) {
    upkeep::FsckReport r = Repair();
    EXPECT_EQ(Kinds(r.problems), want) << Describe(r);
    upkeep::FsckReport again = Check();
    EXPECT_THAT(again.problems, IsEmpty()) << Describe(again);
    return r;
  }

  void ExpectRepaired(const upkeep::FsckReport& r, const std::string& action,
                      const std::string& subject) {
    bool found = false;
    for (const auto& a : r.repairs) found |= a.action == action && a.subject == subject;
    EXPECT_TRUE(found) << "no `" << action << " " << subject << "` in\n" << Describe(r);
  }

  // Image b and everything it uses are as the pull and unpack left them.
  void ExpectImageBIntact() {
    auto rec = db_->GetImage(b_.name);
    ASSERT_TRUE(rec) << rec.error().message;
    for (const auto& d : b_.blobs) {
      EXPECT_TRUE(content_->Has(d)) << d.str();
      EXPECT_TRUE(db_->GetBlob(d)) << d.str();
    }
    auto parts = image::LoadImage(*content_, *rec);
    EXPECT_TRUE(parts) << parts.error().message;
    for (const auto& c : b_.chains) {
      auto info = sn_->Stat(c);
      ASSERT_TRUE(info) << c;
      EXPECT_EQ(info->kind, snapshot::SnapshotKind::kCommitted);
      auto dir = sn_->FsDir(c);
      ASSERT_TRUE(dir);
      EXPECT_TRUE(fs::is_directory(*dir));
    }
    // Its top layer's file is still there, byte for byte.
    auto top = sn_->FsDir(b_.chains.back());
    ASSERT_TRUE(top);
    auto body = common::ReadFile(*top / "b.txt");
    ASSERT_TRUE(body) << body.error().message;
    EXPECT_EQ(*body, std::string(40000, 'x'));
  }

  void Sql(const std::string& sql) {
    auto db = store::SqliteDb::Open(root() / "metadata.db");
    ASSERT_TRUE(db) << db.error().message;
    db->SetBusyTimeout(10000);
    ASSERT_TRUE(db->Exec(sql, "test")) << sql;
  }

  int64_t SnapshotId(const std::string& name) {
    auto info = sn_->Stat(name);
    EXPECT_TRUE(info) << name;
    return info ? info->id : 0;
  }

  int64_t LastSnapshotId() {
    auto inv = snapshot::ReadInventory(root());
    EXPECT_TRUE(inv);
    return inv ? inv->last_id : 0;
  }

  common::Digest LayerA3() const { return a_.built.layers[2].digest; }
};

TEST_P(Fsck, CleanStoreAfterPullAndUnpackHasNoProblem) {
  upkeep::FsckReport r = Check();
  EXPECT_THAT(r.problems, IsEmpty()) << Describe(r);
  EXPECT_THAT(r.remaining, IsEmpty());
  std::set<common::Digest> all = a_.blobs;
  all.insert(b_.blobs.begin(), b_.blobs.end());
  EXPECT_EQ(r.checked.blobs, static_cast<int>(all.size()));
  EXPECT_EQ(r.checked.images, 2);
  EXPECT_EQ(r.checked.snapshots, 4);  // c1, c2, ca, cb
  // And a repair of a clean store does nothing.
  upkeep::FsckReport fixed = Repair();
  EXPECT_THAT(fixed.problems, IsEmpty());
  EXPECT_THAT(fixed.repairs, IsEmpty());
  ExpectImageBIntact();
}

// What a kill -9 leaves and the store handles itself is information, not a
// problem: a partial download nobody holds, a committed blob of a pull that
// never wrote its record, an extract snapshot of a killed unpack, the
// directory of a Prepare killed before its commit, a lease whose holder
// died, an expired lease, snapshots committed in this boot and not synced.
TEST_P(Fsck, StateLeftByKilledProcessesIsNotAProblem) {
  {
    std::string data(5000, 'p');
    auto ing = content_->BeginIngest(common::Digest::Sha256Of(data), 5000);
    ASSERT_TRUE(ing) << ing.error().message;
    ASSERT_TRUE(ing->Write(std::string_view(data).substr(0, 3000)));
  }  // released: its writer is gone
  ASSERT_TRUE(content_->WriteBlob(common::Digest::Sha256Of("orphan"), "orphan"));
  std::string key =
      std::string(image::kExtractKeyPrefix) + "deadbeef-" + a_.chains[2].substr(7, 12);
  ASSERT_TRUE(sn_->Prepare(key, a_.chains[1], {{std::string(image::kSnapshotLabelExtract), "1"}}));
  ASSERT_TRUE(common::MkdirAll(snapshot::SnapshotDir(root(), LastSnapshotId() + 1) / "fs"));
  {
    auto lease = db_->CreateLease(std::chrono::hours(24));
    ASSERT_TRUE(lease);
    ASSERT_TRUE(db_->AddLeaseResource(lease->lease(), store::kLeaseSnapshot, key));
  }  // its hold file stays, nobody locks it: as if the holder was killed
  ASSERT_TRUE(db_->CreateLease(std::chrono::seconds(1)));
  now_ += std::chrono::seconds(2);  // that one has expired

  upkeep::FsckReport r = Check();
  EXPECT_THAT(r.problems, IsEmpty()) << Describe(r);
  std::set<std::string> notes;
  for (const auto& n : r.notes) notes.insert(n.what);
  EXPECT_GE(notes.size(), 5u);
  EXPECT_EQ(r.checked.ingest, 1);
  EXPECT_EQ(r.checked.leases, 2);
  // Snapshots just committed are unsynced until Settle syncs them.
  bool unsynced = false;
  for (const auto& n : r.notes) unsynced |= n.what.find("not yet synced") != std::string::npos;
  EXPECT_TRUE(unsynced);
}

// A lease without a live holder that prune would not free: a row with no
// hold file (gantry takes the hold before it inserts the row, so an older
// gantry or a hand edit made it). Prune keeps what it protects until it
// expires; fsck reports it and --repair deletes it. A lease whose holder
// runs is no problem.
TEST_P(Fsck, LeaseNobodyHoldsIsReportedAndDeleted) {
  const std::string body = "held by a lease nobody holds";
  const common::Digest d = common::Digest::Sha256Of(body);
  ASSERT_TRUE(content_->WriteBlob(d, body));
  const std::string id = "0123456789abcdef0123456789abcdef";
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now_.time_since_epoch()).count();
  const int64_t day_ns = int64_t{24} * 3600 * 1000 * 1000 * 1000;
  Sql("INSERT INTO leases (id, created_ns, expires_ns) VALUES ('" + id + "', " +
      std::to_string(now_ns) + ", " + std::to_string(now_ns + day_ns) + ")");
  Sql("INSERT INTO lease_resources (lease, kind, id) VALUES ('" + id + "', 'content', '" + d.str() +
      "')");
  auto running = db_->CreateLease(std::chrono::hours(24));
  ASSERT_TRUE(running) << running.error().message;

  auto kept = upkeep::Prune(*content_, *db_, *sn_, {});
  ASSERT_TRUE(kept) << kept.error().message;
  EXPECT_TRUE(content_->Has(d)) << "prune freed an unexpired lease without a hold file";

  upkeep::FsckReport r = Check();
  std::set<std::pair<std::string, std::string>> want = {{"lease", id}};
  EXPECT_EQ(Kinds(r.problems), want) << Describe(r);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_THAT(r.problems[0].detail, ::testing::HasSubstr("no process holds it"));
  EXPECT_THAT(r.problems[0].detail, ::testing::HasSubstr("expires in 24 h"));

  upkeep::FsckReport fixed = RepairExpecting(want);
  ExpectRepaired(fixed, "deleted lease nobody holds", id);
  auto leases = db_->ListLeases();
  ASSERT_TRUE(leases);
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0].id, running->lease());
  auto freed = upkeep::Prune(*content_, *db_, *sn_, {});
  ASSERT_TRUE(freed) << freed.error().message;
  EXPECT_FALSE(content_->Has(d));
  ExpectImageBIntact();
}

TEST_P(Fsck, CorruptBlobIsReportedDeletedAndItsImageUntagged) {
  fs::path p = content_->BlobPath(LayerA3());
  ASSERT_EQ(::chmod(p.c_str(), 0644), 0);
  {
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    char c = 0;
    f.seekg(100);
    f.read(&c, 1);
    c ^= 0x5a;
    f.seekp(100);
    f.write(&c, 1);
  }
  upkeep::FsckReport r = Check();
  std::set<std::pair<std::string, std::string>> want = {{"blob-corrupt", LayerA3().str()},
                                                        {"image", a_.name}};
  EXPECT_EQ(Kinds(r.problems), want) << Describe(r);

  upkeep::FsckReport fixed = RepairExpecting(want);
  ExpectRepaired(fixed, "deleted corrupt blob", LayerA3().str());
  ExpectRepaired(fixed, "untagged image", a_.name);
  EXPECT_FALSE(content_->Has(LayerA3()));
  EXPECT_FALSE(db_->GetImage(a_.name));
  ExpectImageBIntact();
  // The shared layers stay: image b uses them.
  for (const auto& d : shared_blobs_) EXPECT_TRUE(content_->Has(d));
}

TEST_P(Fsck, MissingLayerBlobIsReportedAndItsImageUntagged) {
  ASSERT_EQ(::unlink(content_->BlobPath(LayerA3()).c_str()), 0);
  upkeep::FsckReport r = Check();
  std::set<std::pair<std::string, std::string>> want = {{"blob-missing", LayerA3().str()},
                                                        {"image", a_.name}};
  EXPECT_EQ(Kinds(r.problems), want) << Describe(r);
  upkeep::FsckReport fixed = RepairExpecting(want);
  ExpectRepaired(fixed, "deleted the record of missing blob", LayerA3().str());
  ExpectRepaired(fixed, "untagged image", a_.name);
  EXPECT_FALSE(db_->GetBlob(LayerA3()));
  ExpectImageBIntact();
  // A pull restores the image.
  PullTag("a");
  EXPECT_THAT(Check().problems, IsEmpty());
}

TEST_P(Fsck, RecordWithADamagedLabelIsReportedNamingItAndUntagged) {
  auto rec = db_->GetImage(a_.name);
  ASSERT_TRUE(rec) << rec.error().message;
  rec->labels[std::string(image::kLabelConfig)] = "sha256:damaged";
  ASSERT_TRUE(db_->PutImage(*rec));
  upkeep::FsckReport r = Check();
  std::set<std::pair<std::string, std::string>> want = {{"image", a_.name}};
  EXPECT_EQ(Kinds(r.problems), want) << Describe(r);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_THAT(r.problems[0].detail, HasSubstr(std::string(image::kLabelConfig)));
  EXPECT_THAT(r.problems[0].detail, HasSubstr("sha256:damaged"));
  upkeep::FsckReport fixed = RepairExpecting(want);
  ExpectRepaired(fixed, "untagged image", a_.name);
  ExpectImageBIntact();
  // A pull restores the image.
  PullTag("a");
  EXPECT_THAT(Check().problems, IsEmpty());
}

TEST_P(Fsck, WrongRecordedSizeIsCorrected) {
  Sql("UPDATE blobs SET size = size + 7 WHERE digest = '" + LayerA3().str() + "'");
  upkeep::FsckReport r = Check();
  EXPECT_EQ(Kinds(r.problems),
            (std::set<std::pair<std::string, std::string>>{{"blob-size", LayerA3().str()}}))
      << Describe(r);
  upkeep::FsckReport fixed = RepairExpecting(Kinds(r.problems));
  ExpectRepaired(fixed, "corrected the recorded size of blob", LayerA3().str());
  auto row = db_->GetBlob(LayerA3());
  ASSERT_TRUE(row);
  EXPECT_EQ(row->size, a_.built.layers[2].size);
  EXPECT_TRUE(db_->GetImage(a_.name));
  ExpectImageBIntact();
}

TEST_P(Fsck, BlobAnImageUsesWithoutARowIsRecorded) {
  const common::Digest config = a_.built.config.digest;
  ASSERT_TRUE(db_->DeleteBlob(config));
  upkeep::FsckReport r = Check();
  EXPECT_EQ(Kinds(r.problems),
            (std::set<std::pair<std::string, std::string>>{{"blob-unrecorded", config.str()}}))
      << Describe(r);
  upkeep::FsckReport fixed = RepairExpecting(Kinds(r.problems));
  ExpectRepaired(fixed, "recorded blob", config.str());
  auto row = db_->GetBlob(config);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->size, a_.built.config.size);
  EXPECT_EQ(row->media_type, a_.built.config.media_type);
  EXPECT_TRUE(db_->GetImage(a_.name));
}

TEST_P(Fsck, MissingSnapshotDirectoryRemovesItAndWhatIsBuiltOnIt) {
  // c2 is shared: ca and cb are built on it.
  const int64_t id = SnapshotId(a_.chains[1]);
  std::filesystem::remove_all(snapshot::SnapshotDir(root(), id) / "fs");
  ASSERT_FALSE(fs::exists(snapshot::SnapshotDir(root(), id) / "fs"));
  upkeep::FsckReport r = Check();
  std::set<std::pair<std::string, std::string>> want = {
      {"snapshot-dir", "snapshots/" + std::to_string(id)}};
  EXPECT_EQ(Kinds(r.problems), want) << Describe(r);
  upkeep::FsckReport fixed = RepairExpecting(want);
  EXPECT_EQ(fixed.repairs.size(), 3u) << Describe(fixed);  // cb, ca, then c2
  EXPECT_EQ(Committed(), std::set<std::string>{a_.chains[0]});
  // Both images are still tagged and unpack again.
  for (const auto* img : {&a_, &b_}) {
    auto rec = db_->GetImage(img->name);
    ASSERT_TRUE(rec);
    auto u = image::Unpack(*content_, UnpackOpts(), *rec);
    ASSERT_TRUE(u) << u.error().message;
  }
  ExpectImageBIntact();
  EXPECT_THAT(Check().problems, IsEmpty());
}

TEST_P(Fsck, DanglingParentRemovesTheSnapshot) {
  const int64_t id = SnapshotId(a_.chains[2]);
  // A parent that does not exist (foreign keys are off on this connection).
  Sql("UPDATE snapshots SET parent_id = 999999 WHERE id = " + std::to_string(id));
  upkeep::FsckReport r = Check();
  std::set<std::pair<std::string, std::string>> want = {
      {"snapshot-parent", "snapshots/" + std::to_string(id)}};
  EXPECT_EQ(Kinds(r.problems), want) << Describe(r);
  upkeep::FsckReport fixed = RepairExpecting(want);
  EXPECT_FALSE(sn_->Stat(a_.chains[2]));
  EXPECT_FALSE(fs::exists(snapshot::SnapshotDir(root(), id)));
  ExpectImageBIntact();
}

TEST_P(Fsck, StraySnapshotDirectoriesAreRemovedButNotCrashLeftovers) {
  const int64_t last = LastSnapshotId();
  ASSERT_TRUE(common::MkdirAll(root() / "snapshots" / "stray" / "fs"));
  ASSERT_TRUE(common::MkdirAll(snapshot::SnapshotDir(root(), last + 50) / "fs"));
  ASSERT_TRUE(common::MkdirAll(snapshot::SnapshotDir(root(), last + 1) / "fs"));  // killed Prepare
  upkeep::FsckReport r = Check();
  std::set<std::pair<std::string, std::string>> want = {
      {"stray", "snapshots/stray"}, {"stray", "snapshots/" + std::to_string(last + 50)}};
  EXPECT_EQ(Kinds(r.problems), want) << Describe(r);
  RepairExpecting(want);
  EXPECT_FALSE(fs::exists(root() / "snapshots" / "stray"));
  EXPECT_TRUE(fs::exists(snapshot::SnapshotDir(root(), last + 1)));  // prune's job
  ExpectImageBIntact();
}

TEST_P(Fsck, StrayFilesInContentAndLeasesAreRemoved) {
  std::ofstream(root() / "content" / "ingest" / "junk") << "x";
  std::ofstream(root() / "content" / "blobs" / "sha256" / "not-a-digest") << "x";
  ASSERT_TRUE(common::MkdirAll(store::LeaseHold::Dir(root())));
  std::ofstream(store::LeaseHold::Dir(root()) / "Junk") << "x";
  upkeep::FsckReport r = Check();
  std::set<std::pair<std::string, std::string>> want = {
      {"stray", "content/ingest/junk"},
      {"stray", "content/blobs/sha256/not-a-digest"},
      {"stray", "leases/Junk"}};
  EXPECT_EQ(Kinds(r.problems), want) << Describe(r);
  RepairExpecting(want);
  EXPECT_FALSE(fs::exists(root() / "content" / "ingest" / "junk"));
  ExpectImageBIntact();
}

// A killed pull of image c left its manifest and a partial of its new layer;
// the partial is longer than the layer (oversize) or full-size with other
// bytes (corrupt).
class FsckIngest : public Fsck {
 protected:
  // Returns c's new layer and the path of its partial.
  std::pair<fixtures::BlobInfo, fs::path> KilledPullOfC() {
    auto layers = LayersA();
    layers.push_back(Layer({fixtures::File("c.txt", std::string(5000, 'c'))}));
    ImageFacts c = WriteTag("c", layers);
    auto body = common::ReadFile(layout() / "blobs" / "sha256" / c.built.manifest.digest.hex());
    EXPECT_TRUE(body);
    if (body) {
      EXPECT_TRUE(content_->WriteBlob(c.built.manifest.digest, *body));
    }
    fixtures::BlobInfo layer = c.built.layers.back();
    return {layer, content_->IngestPath(layer.digest)};
  }
};

TEST_P(FsckIngest, PartialLongerThanItsBlobIsRemoved) {
  auto [layer, path] = KilledPullOfC();
  std::ofstream(path, std::ios::binary) << std::string(layer.size + 10, 'z');
  upkeep::FsckReport r = Check();
  const std::string subject = "content/ingest/" + path.filename().string();
  std::set<std::pair<std::string, std::string>> want = {{"ingest-oversize", subject}};
  EXPECT_EQ(Kinds(r.problems), want) << Describe(r);
  upkeep::FsckReport fixed = RepairExpecting(want);
  ExpectRepaired(fixed, "removed partial download", subject);
  EXPECT_FALSE(fs::exists(path));
  ExpectImageBIntact();
}

TEST_P(FsckIngest, CompletePartialWithWrongBytesIsRemovedButAGoodPrefixStays) {
  auto [layer, path] = KilledPullOfC();
  std::ofstream(path, std::ios::binary) << std::string(layer.size, 'z');
  upkeep::FsckReport r = Check();
  const std::string subject = "content/ingest/" + path.filename().string();
  EXPECT_EQ(Kinds(r.problems),
            (std::set<std::pair<std::string, std::string>>{{"ingest-corrupt", subject}}))
      << Describe(r);
  RepairExpecting(Kinds(r.problems));
  EXPECT_FALSE(fs::exists(path));
  // A shorter partial is a resumable download, whatever its bytes.
  std::ofstream(path, std::ios::binary) << std::string(layer.size - 1, 'z');
  EXPECT_THAT(Check().problems, IsEmpty());
}

// A partial download being written (its writer holds the lock) is neither
// a problem nor touched by a repair.
TEST_P(FsckIngest, PartialBeingWrittenIsLeftAlone) {
  auto [layer, path] = KilledPullOfC();
  ASSERT_TRUE(common::MkdirAll(path.parent_path()));
  std::ofstream(path, std::ios::binary) << std::string(layer.size + 10, 'z');
  auto fd = common::Open(path.string(), O_RDONLY);
  ASSERT_TRUE(fd);
  ASSERT_EQ(::flock(fd->get(), LOCK_EX), 0);
  upkeep::FsckReport r = Check();
  EXPECT_THAT(r.problems, IsEmpty()) << Describe(r);
  EXPECT_TRUE(fs::exists(path));
}

TEST_P(Fsck, MountUnderTheStoreIsUnmounted) {
  fs::path mnt = root() / "stray-mount";
  ASSERT_TRUE(common::MkdirAll(mnt));
  ASSERT_EQ(::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m"), 0) << strerror(errno);
  struct Unmount {
    fs::path p;
    ~Unmount() { (void)::umount2(p.c_str(), MNT_DETACH); }
  } guard{mnt};
  upkeep::FsckReport r = Check();
  std::set<std::pair<std::string, std::string>> want = {{"mount", fs::canonical(mnt).string()}};
  EXPECT_EQ(Kinds(r.problems), want) << Describe(r);
  EXPECT_EQ(r.checked.mounts, 1);
  upkeep::FsckReport fixed = RepairExpecting(want);
  ExpectRepaired(fixed, "unmounted", fs::canonical(mnt).string());
  ExpectImageBIntact();
}

// Overlay only: a view there is an overlay whose data names the snapshot
// directories (a native view is a bind mount, whose source the mount table
// does not name).
class FsckOverlay : public Fsck {};

TEST_P(FsckOverlay, MountOfARemovedSnapshotIsReported) {
  // A view mounted, then its row deleted behind gantry's back.
  auto mounts = sn_->View("view-x", a_.chains[2]);
  ASSERT_TRUE(mounts) << mounts.error().message;
  const int64_t id = SnapshotId("view-x");
  fs::path mnt = dir_.path() / "mnt";
  ASSERT_TRUE(common::MkdirAll(mnt));
  ASSERT_EQ(mounts->front().type, "overlay");
  auto guard = snapshot::MountAt(*mounts, mnt);
  ASSERT_TRUE(guard) << guard.error().message;
  EXPECT_THAT(Check().problems, IsEmpty());
  // An overlay view names its parents' directories; remove the parent's row.
  const int64_t parent = SnapshotId(a_.chains[1]);
  Sql("DELETE FROM snapshots WHERE id = " + std::to_string(id));
  Sql("UPDATE snapshots SET parent_id = NULL WHERE parent_id = " + std::to_string(parent));
  Sql("DELETE FROM snapshots WHERE id = " + std::to_string(parent));
  upkeep::FsckReport r = Check();
  EXPECT_THAT(Kinds(r.problems),
              Contains(std::pair<std::string, std::string>{"mount", fs::canonical(mnt).string()}))
      << Describe(r);
}

// An overlay mounted through fsconfig (snapshot::MountAt beyond one page of
// options) shows one lowerdir+= option per layer in the mount table, not a
// lowerdir= list. Read from a substitute table: what matters is the parsing.
TEST_P(FsckOverlay, LowerdirPlusMountOfARemovedSnapshotIsReported) {
  auto top = sn_->FsDir(a_.chains[2]);
  auto parent = sn_->FsDir(a_.chains[1]);
  ASSERT_TRUE(top && parent);
  const fs::path table = dir_.path() / "mountinfo";
  const std::string line =
      "4242 1 0:99 / /mnt/deep ro,relatime - overlay overlay ro,lowerdir+=" + top->string() +
      ",lowerdir+=" + parent->string() + "\n";
  ASSERT_TRUE(common::AtomicWriteFile(table, line));
  auto clean = upkeep::Check(*content_, *db_, {.mountinfo = table});
  ASSERT_TRUE(clean) << clean.error().message;
  EXPECT_THAT(clean->problems, IsEmpty()) << Describe(*clean);
  EXPECT_EQ(clean->checked.mounts, 1) << "the mount names the store's snapshots";

  const int64_t id = SnapshotId(a_.chains[1]);
  Sql("UPDATE snapshots SET parent_id = NULL WHERE parent_id = " + std::to_string(id));
  Sql("DELETE FROM snapshots WHERE id = " + std::to_string(id));
  auto r = upkeep::Check(*content_, *db_, {.mountinfo = table});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_THAT(Kinds(r->problems),
              Contains(std::pair<std::string, std::string>{"mount", "/mnt/deep"}))
      << Describe(*r);
}

INSTANTIATE_TEST_SUITE_P(Snapshotters, Fsck,
                         ::testing::Values(snapshot::Kind::kOverlay, snapshot::Kind::kNative),
                         KindParamName);
INSTANTIATE_TEST_SUITE_P(Snapshotters, FsckOverlay, ::testing::Values(snapshot::Kind::kOverlay),
                         KindParamName);
INSTANTIATE_TEST_SUITE_P(Snapshotters, FsckIngest, ::testing::Values(snapshot::Kind::kNative),
                         KindParamName);

}  // namespace
}  // namespace gctest
