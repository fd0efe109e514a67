// The snapshotter conformance suite: every implementation runs it.

#include "snapshot/snapshotter.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/require.h"
#include "fixtures/sqlite_syncs.h"
#include "snapshot/mount.h"
#include "store/sqlite.h"

namespace snapshot {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& p, const std::string& s) {
  ASSERT_TRUE(common::AtomicWriteFile(p, s)) << p;
}

std::string Read(const fs::path& p) {
  auto r = common::ReadFile(p);
  return r ? *r : "<missing>";
}

class SnapshotterSuite : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    REQUIRE_ROOT("overlay mounts, ownership");
    auto dir = common::TempDir::Create("snap-test");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    auto sn = Open(dir_.path(), {.kind = GetParam(), .fallback_to_native = false});
    ASSERT_TRUE(sn) << sn.error().message;
    sn_ = std::move(*sn);
  }

  // Prepares `key` on `parent`, writes files, commits as `name`.
  void Layer(const std::string& name, const std::string& parent,
             const std::map<std::string, std::string>& files) {
    std::string key = "extract-" + name;
    ASSERT_TRUE(sn_->Prepare(key, parent));
    auto dir = sn_->WritableDir(key);
    ASSERT_TRUE(dir) << dir.error().message;
    for (const auto& [f, c] : files) Write(*dir / f, c);
    auto st = sn_->Commit(name, key);
    ASSERT_TRUE(st) << st.error().message;
  }

  // Mounts `mounts` at a fresh dir and returns it (unmounted at TearDown).
  fs::path MountAll(const std::vector<MountSpec>& mounts) {
    fs::path target = dir_.path() / ("mnt" + std::to_string(guards_.size()));
    EXPECT_TRUE(common::MkdirAll(target));
    auto g = MountAt(mounts, target);
    EXPECT_TRUE(g) << g.error().message;
    if (g) guards_.push_back(std::move(*g));
    return target;
  }

  void TearDown() override { guards_.clear(); }

  common::TempDir dir_;
  std::unique_ptr<Snapshotter> sn_;
  std::vector<common::MountGuard> guards_;
};

TEST_P(SnapshotterSuite, PrepareCommitViewLifecycle) {
  Layer("base", "", {{"a", "1"}, {"b", "2"}});
  Layer("top", "base", {{"b", "22"}, {"c", "3"}});
  auto info = sn_->Stat("top");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->parent, "base");
  EXPECT_EQ(info->kind, SnapshotKind::kCommitted);

  auto mounts = sn_->View("v", "top");
  ASSERT_TRUE(mounts) << mounts.error().message;
  fs::path m = MountAll(*mounts);
  EXPECT_EQ(Read(m / "a"), "1");
  EXPECT_EQ(Read(m / "b"), "22");
  EXPECT_EQ(Read(m / "c"), "3");
  std::ofstream(m / "new") << "x";
  EXPECT_FALSE(fs::exists(m / "new")) << "a view must be read-only";

  auto active = sn_->Prepare("ctr", "top");
  ASSERT_TRUE(active);
  fs::path a = MountAll(*active);
  Write(a / "d", "4");
  EXPECT_EQ(Read(a / "b"), "22");
  auto wd = sn_->WritableDir("ctr");
  ASSERT_TRUE(wd);
  EXPECT_EQ(Read(*wd / "d"), "4");
}

TEST_P(SnapshotterSuite, NamesAreUniqueAndParentsMustBeCommitted) {
  Layer("base", "", {{"a", "1"}});
  auto dup = sn_->Prepare("base", "");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, common::Errc::kAlreadyExists);
  ASSERT_TRUE(sn_->Prepare("active", "base"));
  auto on_active = sn_->Prepare("child", "active");
  ASSERT_FALSE(on_active);
  EXPECT_EQ(on_active.error().code, common::Errc::kFailedPrecondition);
  auto missing = sn_->Prepare("x", "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, common::Errc::kNotFound);
  auto commit_committed = sn_->Commit("again", "base");
  ASSERT_FALSE(commit_committed);
  EXPECT_EQ(commit_committed.error().code, common::Errc::kFailedPrecondition);
}

TEST_P(SnapshotterSuite, RemoveRefusesParentsAndIdsAreNeverReused) {
  Layer("base", "", {{"a", "1"}});
  ASSERT_TRUE(sn_->Prepare("ctr", "base"));
  auto r = sn_->Remove("base");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, common::Errc::kFailedPrecondition);
  auto ctr = sn_->Stat("ctr");
  ASSERT_TRUE(ctr);
  int64_t old_id = ctr->id;
  ASSERT_TRUE(sn_->Remove("ctr"));
  EXPECT_FALSE(fs::exists(dir_.path() / "snapshots" / std::to_string(old_id)));
  ASSERT_TRUE(sn_->Remove("base"));
  ASSERT_TRUE(sn_->Prepare("ctr", ""));
  auto again = sn_->Stat("ctr");
  ASSERT_TRUE(again);
  EXPECT_GT(again->id, old_id);
  auto gone = sn_->Stat("base");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, common::Errc::kNotFound);
}

TEST_P(SnapshotterSuite, PrepareStartsAfreshOverWhatAKilledPrepareLeft) {
  Layer("base", "", {{"a", "1"}});
  auto base = sn_->Stat("base");
  ASSERT_TRUE(base);
  // A Prepare killed before its COMMIT: the next id's directory with files,
  // as a partial copy of another parent would leave it.
  fs::path leftover = dir_.path() / "snapshots" / std::to_string(base->id + 1);
  ASSERT_TRUE(common::MkdirAll(leftover / "fs"));
  Write(leftover / "fs" / "stale", "from a killed prepare");
  ASSERT_TRUE(sn_->Prepare("ctr", "base"));
  auto ctr = sn_->Stat("ctr");
  ASSERT_TRUE(ctr);
  ASSERT_EQ(ctr->id, base->id + 1) << "the test must reuse the leftover's id";
  auto wd = sn_->WritableDir("ctr");
  ASSERT_TRUE(wd) << wd.error().message;
  EXPECT_FALSE(fs::exists(*wd / "stale"));
}

TEST_P(SnapshotterSuite, UsageCountsOwnFilesOnly) {
  Layer("base", "", {{"big", std::string(1 << 20, 'x')}});
  Layer("top", "base", {{"small", "y"}});
  auto base = sn_->GetUsage("base");
  ASSERT_TRUE(base);
  EXPECT_GE(base->bytes, 1 << 20);
  EXPECT_GE(base->inodes, 1);
  auto top = sn_->GetUsage("top");
  ASSERT_TRUE(top);
  if (GetParam() == Kind::kOverlay)
    EXPECT_LT(top->bytes, 1 << 20);
  else
    EXPECT_GE(top->bytes, 1 << 20);  // native: a full copy
}

TEST_P(SnapshotterSuite, CleanupRemovesOrphansButNotLiveSnapshots) {
  Layer("base", "", {{"a", "1"}});
  fs::path orphan = dir_.path() / "snapshots" / "junk-from-crash";
  ASSERT_TRUE(common::MkdirAll(orphan / "fs"));
  auto n = sn_->Cleanup();
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, 1);
  EXPECT_FALSE(fs::exists(orphan));
  auto fsdir = sn_->FsDir("base");
  ASSERT_TRUE(fsdir);
  EXPECT_EQ(Read(*fsdir / "a"), "1");
}

TEST_P(SnapshotterSuite, ListShowsEverySnapshot) {
  Layer("base", "", {{"a", "1"}});
  ASSERT_TRUE(sn_->Prepare("ctr", "base", {{"owner", "test"}}));
  auto all = sn_->List();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[1].name, "ctr");
  EXPECT_EQ((*all)[1].parent, "base");
  EXPECT_EQ((*all)[1].labels.at("owner"), "test");
}

TEST_P(SnapshotterSuite, ReparentOnCommitOnlyWhereLayersAreIndependent) {
  Layer("base", "", {{"a", "1"}});
  ASSERT_TRUE(sn_->Prepare("loose", ""));
  auto st = sn_->Commit("top", "loose", {}, std::string("base"));
  if (GetParam() == Kind::kOverlay) {
    ASSERT_TRUE(st) << st.error().message;
    auto info = sn_->Stat("top");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->parent, "base");
  } else {
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, common::Errc::kFailedPrecondition);
  }
}

// Opens the same root again as another process would, in boot `boot_id`.
std::unique_ptr<Snapshotter> Reopen(
    const fs::path& root, Kind kind, const std::string& boot_id,
    std::chrono::nanoseconds settle_age = std::chrono::seconds(30)) {
  auto sn = Open(root, {.kind = kind,
                        .fallback_to_native = false,
                        .settle = false,
                        .settle_age = settle_age,
                        .boot_id = boot_id});
  EXPECT_TRUE(sn) << sn.error().message;
  return sn ? std::move(*sn) : nullptr;
}

TEST_P(SnapshotterSuite, CommittedSnapshotsStayUnsyncedUntilSettled) {
  auto sn = Reopen(dir_.path(), GetParam(), "boot-a");
  ASSERT_TRUE(sn);
  ASSERT_TRUE(sn->Prepare("k", ""));
  auto active = sn->Stat("k");
  ASSERT_TRUE(active);
  EXPECT_TRUE(active->synced) << "only committed snapshots wait for a sync";
  ASSERT_TRUE(sn->Commit("base", "k"));
  auto info = sn->Stat("base");
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->synced);

  // Younger than settle_age: left for later, nothing synced.
  auto settled = sn->Settle();
  ASSERT_TRUE(settled) << settled.error().message;
  EXPECT_EQ(settled->synced, 0);
  EXPECT_FALSE(sn->Stat("base")->synced);

  // Old enough (age 0): one syncfs, the mark goes, the snapshot stays.
  auto now = Reopen(dir_.path(), GetParam(), "boot-a", std::chrono::nanoseconds(0));
  ASSERT_TRUE(now);
  settled = now->Settle();
  ASSERT_TRUE(settled) << settled.error().message;
  EXPECT_EQ(settled->synced, 1);
  EXPECT_EQ(settled->removed, 0);
  info = now->Stat("base");
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->synced);

  // A synced snapshot survives a reboot.
  auto after = Reopen(dir_.path(), GetParam(), "boot-b");
  ASSERT_TRUE(after);
  settled = after->Settle();
  ASSERT_TRUE(settled);
  EXPECT_EQ(settled->removed, 0);
  EXPECT_TRUE(after->Stat("base"));
}

// A commit's row waits for no sync (the snapshot is unsynced until Settle
// anyway), nor does an extract snapshot's Prepare (its process is gone
// after a crash); any other Prepare's does (a container's writable
// snapshot must outlive a crash of the machine), before and after those.
TEST_P(SnapshotterSuite, CommitWaitsForNoSyncWhilePrepareStillDoes) {
  fixtures::CountSqliteSyncs();
  auto sn = Reopen(dir_.path(), GetParam(), "boot-a");  // a connection that counts
  ASSERT_TRUE(sn);
  // The first write to a fresh log also syncs its header, whatever the
  // transaction; from here on the log only grows.
  ASSERT_TRUE(sn->Prepare("warm", ""));

  int64_t before = fixtures::SqliteWalSyncs();
  ASSERT_TRUE(sn->Prepare("k", ""));
  EXPECT_GE(fixtures::SqliteWalSyncs() - before, 1) << "Prepare";

  before = fixtures::SqliteWalSyncs();
  auto st = sn->Commit("base", "k");
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(fixtures::SqliteWalSyncs() - before, 0) << "Commit";

  before = fixtures::SqliteWalSyncs();
  ASSERT_TRUE(sn->Prepare("k2", "base"));
  EXPECT_GE(fixtures::SqliteWalSyncs() - before, 1) << "Prepare after a Commit";

  before = fixtures::SqliteWalSyncs();
  ASSERT_TRUE(sn->Prepare("extract-1", "base", {{std::string(kLabelExtract), "1"}}));
  EXPECT_EQ(fixtures::SqliteWalSyncs() - before, 0) << "Prepare of an extract snapshot";
  before = fixtures::SqliteWalSyncs();
  ASSERT_TRUE(sn->View("v", "base", {{std::string(kLabelExtract), "1"}}));
  EXPECT_GE(fixtures::SqliteWalSyncs() - before, 1) << "a View, whatever its labels";
  before = fixtures::SqliteWalSyncs();
  ASSERT_TRUE(sn->Prepare("k3", "base"));
  EXPECT_GE(fixtures::SqliteWalSyncs() - before, 1) << "Prepare after an extract's";
  // And what was committed is there for another connection.
  auto other = Reopen(dir_.path(), GetParam(), "boot-a");
  ASSERT_TRUE(other);
  auto info = other->Stat("base");
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(info->kind, SnapshotKind::kCommitted);
}

TEST_P(SnapshotterSuite, SettleAfterARebootRemovesUnsyncedSnapshotsAndWhatIsBuiltOnThem) {
  auto sn = Reopen(dir_.path(), GetParam(), "boot-a", std::chrono::nanoseconds(0));
  ASSERT_TRUE(sn);
  // base is synced before the "crash"; mid and top, and a container on
  // top, are not.
  ASSERT_TRUE(sn->Prepare("k1", ""));
  ASSERT_TRUE(sn->Commit("base", "k1"));
  ASSERT_TRUE(sn->Settle());
  ASSERT_TRUE(sn->Prepare("k2", "base"));
  ASSERT_TRUE(sn->Commit("mid", "k2"));
  ASSERT_TRUE(sn->Prepare("k3", "mid"));
  ASSERT_TRUE(sn->Commit("top", "k3"));
  ASSERT_TRUE(sn->Prepare("ctr", "top"));
  ASSERT_TRUE(sn->Prepare("other", "base"));
  auto mid_dir = sn->FsDir("mid");
  ASSERT_TRUE(mid_dir);
  fs::path mid_snapshot_dir = mid_dir->parent_path();
  ASSERT_TRUE(fs::exists(mid_snapshot_dir));
  sn.reset();

  // Open (which settles) in another boot.
  auto opened =
      Open(dir_.path(), {.kind = GetParam(), .fallback_to_native = false, .boot_id = "boot-b"});
  ASSERT_TRUE(opened) << opened.error().message;
  auto& after = *opened;
  for (const char* gone : {"mid", "top", "ctr"}) {
    auto st = after->Stat(gone);
    ASSERT_FALSE(st) << gone << " survived a reboot without a sync";
    EXPECT_EQ(st.error().code, common::Errc::kNotFound);
  }
  EXPECT_FALSE(fs::exists(mid_snapshot_dir));
  EXPECT_TRUE(after->Stat("base"));
  EXPECT_TRUE(after->Stat("other"));
  // The chain can be built again under the same names.
  ASSERT_TRUE(after->Prepare("k2", "base"));
  ASSERT_TRUE(after->Commit("mid", "k2"));
  // Nothing left to remove: settling again is a no-op.
  auto again = after->Settle();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->removed, 0);
}

// Opening a store that has the snapshot tables writes nothing, so it needs
// no write lock: it opens while another connection holds one (a write
// would wait out the 10 s busy timeout and fail).
TEST(SnapshotterSchema, AStoreWithTheTablesOpensWhileAnotherConnectionWrites) {
  REQUIRE_ROOT("snapshot ownership");
  auto dir = common::TempDir::Create("snap-schema");
  ASSERT_TRUE(dir) << dir.error().message;
  ASSERT_TRUE(Open(dir->path(), {.kind = Kind::kNative}));
  auto writer = store::SqliteDb::Open(dir->path() / "metadata.db");
  ASSERT_TRUE(writer) << writer.error().message;
  ASSERT_TRUE(writer->Exec("BEGIN IMMEDIATE", "hold the write lock"));
  const auto start = std::chrono::steady_clock::now();
  auto sn = Open(dir->path(), {.kind = Kind::kNative});
  ASSERT_TRUE(sn) << sn.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_TRUE(writer->Exec("ROLLBACK", "release the write lock"));
}

// A store that lacks one of the tables (the others present) gets it on
// open, and the snapshotter works on it.
TEST(SnapshotterSchema, CreatesATableTheStoreLacks) {
  REQUIRE_ROOT("snapshot ownership");
  auto dir = common::TempDir::Create("snap-schema");
  ASSERT_TRUE(dir) << dir.error().message;
  ASSERT_TRUE(Open(dir->path(), {.kind = Kind::kNative}));
  {
    auto db = store::SqliteDb::Open(dir->path() / "metadata.db");
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(db->Exec("DROP TABLE snapshot_unsynced", "drop a table"));
  }
  auto sn = Open(dir->path(), {.kind = Kind::kNative});
  ASSERT_TRUE(sn) << sn.error().message;
  ASSERT_TRUE((*sn)->Prepare("k", ""));
  auto committed = (*sn)->Commit("layer", "k");
  ASSERT_TRUE(committed) << committed.error().message;
  auto info = (*sn)->Stat("layer");
  ASSERT_TRUE(info) << info.error().message;
  auto db = store::SqliteDb::Open(dir->path() / "metadata.db");
  ASSERT_TRUE(db) << db.error().message;
  auto q = db->Prepare("SELECT count(*) FROM snapshot_unsynced", "count unsynced");
  ASSERT_TRUE(q) << q.error().message;
  auto row = q->Step();
  ASSERT_TRUE(row && *row);
  EXPECT_EQ(q->ColumnInt(0), 1);
}

INSTANTIATE_TEST_SUITE_P(Kinds, SnapshotterSuite, ::testing::Values(Kind::kOverlay, Kind::kNative),
                         [](const auto& p) {
                           return p.param == Kind::kOverlay ? "overlay" : "native";
                         });

}  // namespace
}  // namespace snapshot
