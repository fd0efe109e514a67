// The snapshotter conformance suite: every implementation runs it.

#include "snapshot/snapshotter.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <algorithm>
#include <fstream>

#include "common/fd.h"
#include "common/fs.h"

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
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (overlay mounts, ownership)";
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
    EXPECT_EQ(mounts.size(), 1u);
    const auto& m = mounts[0];
    bool ro = std::find(m.options.begin(), m.options.end(), "ro") != m.options.end();
    if (m.type == "bind") {
      auto g = common::Mount(m.source, target.string(), "", MS_BIND | MS_REC);
      EXPECT_TRUE(g) << g.error().message;
      if (ro) {
        EXPECT_EQ(::mount("", target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr), 0);
      }
      if (g) guards_.push_back(std::move(*g));
    } else {
      auto g = common::Mount("overlay", target.string(), "overlay", ro ? MS_RDONLY : 0, m.Data());
      EXPECT_TRUE(g) << g.error().message << " data=" << m.Data();
      if (g) guards_.push_back(std::move(*g));
    }
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

TEST_P(SnapshotterSuite, UsageCountsOwnFilesOnly) {
  Layer("base", "", {{"big", std::string(1 << 20, 'x')}});
  Layer("top", "base", {{"small", "y"}});
  auto base = sn_->GetUsage("base");
  ASSERT_TRUE(base);
  EXPECT_GE(base->bytes, 1 << 20);
  EXPECT_GE(base->inodes, 1);
  auto top = sn_->GetUsage("top");
  ASSERT_TRUE(top);
  if (GetParam() == Kind::kOverlay) EXPECT_LT(top->bytes, 1 << 20);
  else EXPECT_GE(top->bytes, 1 << 20);  // native: a full copy
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

INSTANTIATE_TEST_SUITE_P(Kinds, SnapshotterSuite,
                         ::testing::Values(Kind::kOverlay, Kind::kNative),
                         [](const auto& info) {
                           return info.param == Kind::kOverlay ? "overlay" : "native";
                         });

}  // namespace
}  // namespace snapshot
