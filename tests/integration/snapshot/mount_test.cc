// snapshot::MountAt on overlay chains up to overlayfs's limit (500 lower
// layers, OVL_MAX_STACK) and one beyond it, built with the snapshotter
// directly (no image, no unpack: fast at any depth).

#include "snapshot/mount.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/mountinfo.h"
#include "fixtures/require.h"
#include "snapshot/snapshotter.h"

namespace snapshot {
namespace {

namespace fs = std::filesystem;
using common::Errc;

bool ReadOnly(const fs::path& dir) {
  struct statvfs st {};
  return ::statvfs(dir.c_str(), &st) == 0 && (st.f_flag & ST_RDONLY) != 0;
}

std::string Read(const fs::path& p) {
  auto r = common::ReadFile(p);
  return r ? *r : "<missing>";
}

// One store per test program, holding committed layers l0, l1, …, each
// l<i> holding layers/<i> on l<i-1>, so that a view of l<i> has i + 1
// layers. Tests extend it as deep as they need (500 layers take a while
// to commit, and a program that runs several tests builds them once).
struct Chain {
  common::TempDir dir;
  std::unique_ptr<Snapshotter> sn;
  int layers = 0;
};
Chain* g_chain = nullptr;

class ChainCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    delete g_chain;
    g_chain = nullptr;
  }
};
const auto* const g_cleanup = ::testing::AddGlobalTestEnvironment(new ChainCleanup);

// Commits layers up to l<n-1> (layers are independent directories, so each
// is prepared without a parent and given one at commit).
common::Status ExtendChain(Chain& c, int n) {
  for (; c.layers < n; ++c.layers) {
    const std::string key = "extract-" + std::to_string(c.layers);
    TRY(c.sn->Prepare(key, ""));
    ASSIGN_OR_RETURN(fs::path dir, c.sn->WritableDir(key));
    TRY(common::MkdirAll(dir / "layers"));
    // No fsync: nothing here needs to outlive the machine.
    std::ofstream(dir / "layers" / std::to_string(c.layers)) << c.layers;
    TRY(c.sn->Commit("l" + std::to_string(c.layers), key, {},
                     c.layers == 0 ? "" : "l" + std::to_string(c.layers - 1)));
  }
  return {};
}

class MountAtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT("overlay mounts");
    if (g_chain == nullptr) {
      auto dir = common::TempDir::Create("mount-at");
      ASSERT_TRUE(dir) << dir.error().message;
      REQUIRE_OVERLAYFS(OverlaySupported(dir->path()), dir->path());
      auto sn = Open(dir->path(), {.kind = Kind::kOverlay, .fallback_to_native = false});
      ASSERT_TRUE(sn) << sn.error().message;
      g_chain = new Chain{.dir = std::move(*dir), .sn = std::move(*sn)};
    }
    sn_ = g_chain->sn.get();
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    target_ = g_chain->dir.path() / ("mnt-" + name);
    ASSERT_TRUE(common::MkdirAll(target_));
  }

  void TearDown() override {
    if (!target_.empty()) (void)::umount2(target_.c_str(), MNT_DETACH);
  }

  // The top layer of a chain of `n` layers, committed first if need be.
  static std::string Top(int n) {
    auto st = ExtendChain(*g_chain, n);
    EXPECT_TRUE(st) << st.error().message;
    return "l" + std::to_string(n - 1);
  }

  size_t CountLayerFiles() const {
    size_t n = 0;
    std::error_code ec;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(target_ / "layers", ec)) ++n;
    return n;
  }

  Snapshotter* sn_ = nullptr;
  fs::path target_;
};

TEST_F(MountAtTest, OptionsWithinOnePageGoThroughMountTwo) {
  auto mounts = sn_->View("v2", Top(2));
  ASSERT_TRUE(mounts) << mounts.error().message;
  ASSERT_EQ(mounts->front().type, "overlay");
  auto g = MountAt(*mounts, target_);
  ASSERT_TRUE(g) << g.error().message;
  auto info = fixtures::MountInfoAt(target_);
  ASSERT_TRUE(info);
  const std::string& opts = info->super_options;
  EXPECT_NE(opts.find("lowerdir="), std::string::npos) << opts;
  EXPECT_EQ(opts.find("lowerdir+"), std::string::npos) << "fits a page, yet not mount(2): " << opts;
  EXPECT_EQ(Read(target_ / "layers" / "0"), "0");
  EXPECT_EQ(Read(target_ / "layers" / "1"), "1");
}

TEST_F(MountAtTest, ViewOfFiveHundredLayersMountsReadOnly) {
  auto mounts = sn_->View("v500", Top(500));
  ASSERT_TRUE(mounts) << mounts.error().message;
  ASSERT_GT(mounts->front().Data().size(), static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
  auto g = MountAt(*mounts, target_);
  ASSERT_TRUE(g) << g.error().message;
  auto info = fixtures::MountInfoAt(target_);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->fstype, "overlay");
  EXPECT_NE(info->super_options.find("lowerdir+="), std::string::npos) << info->super_options;
  EXPECT_TRUE(ReadOnly(target_));
  EXPECT_EQ(CountLayerFiles(), 500u);
  EXPECT_EQ(Read(target_ / "layers" / "0"), "0");
  EXPECT_EQ(Read(target_ / "layers" / "499"), "499");
  std::ofstream(target_ / "new") << "x";
  EXPECT_FALSE(fs::exists(target_ / "new")) << "a view must be read-only";
  ASSERT_TRUE(g->Unmount());
  EXPECT_FALSE(fixtures::MountInfoAt(target_));
}

// The upper layer of an active snapshot is not one of the 500.
TEST_F(MountAtTest, ActiveSnapshotOnFiveHundredLayersIsWritable) {
  auto mounts = sn_->Prepare("ctr500", Top(500));
  ASSERT_TRUE(mounts) << mounts.error().message;
  auto g = MountAt(*mounts, target_);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(CountLayerFiles(), 500u);
  EXPECT_FALSE(ReadOnly(target_));
  std::ofstream(target_ / "layers" / "new") << "new";
  auto upper = sn_->WritableDir("ctr500");
  ASSERT_TRUE(upper);
  EXPECT_EQ(Read(*upper / "layers" / "new"), "new");
  EXPECT_EQ(Read(target_ / "layers" / "0"), "0");
}

TEST_F(MountAtTest, ReadOnlyOptionMountsAnActiveSnapshotReadOnly) {
  auto mounts = sn_->Prepare("ctr200", Top(200));
  ASSERT_TRUE(mounts) << mounts.error().message;
  ASSERT_GT(mounts->front().Data().size(), static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
  auto g = MountAt(*mounts, target_, {.readonly = true});
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_TRUE(ReadOnly(target_));
  EXPECT_EQ(Read(target_ / "layers" / "199"), "199");
  std::ofstream(target_ / "new") << "x";
  EXPECT_FALSE(fs::exists(target_ / "new"));
}

TEST_F(MountAtTest, FiveHundredOneLayersFailWithTheKernelsLimitAndMountNothing) {
  auto mounts = sn_->View("v501", Top(501));
  ASSERT_TRUE(mounts) << mounts.error().message;
  auto g = MountAt(*mounts, target_);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, Errc::kFailedPrecondition) << g.error().message;
  EXPECT_EQ(g.error().sys_errno, EINVAL);
  const std::string& msg = g.error().message;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_NE(msg.find("501 layers on `" + target_.string() + "`"), std::string::npos) << msg;
  EXPECT_NE(msg.find("limit is 500"), std::string::npos) << msg;
  EXPECT_FALSE(fixtures::MountInfoAt(target_)) << "nothing mounted";
}

TEST_F(MountAtTest, SingleLayerViewIsAReadOnlyBindMount) {
  auto mounts = sn_->View("v1", Top(1));
  ASSERT_TRUE(mounts) << mounts.error().message;
  ASSERT_EQ(mounts->front().type, "bind");
  auto g = MountAt(*mounts, target_);
  ASSERT_TRUE(g) << g.error().message;
  EXPECT_EQ(Read(target_ / "layers" / "0"), "0");
  EXPECT_TRUE(ReadOnly(target_));
  std::ofstream(target_ / "new") << "x";
  EXPECT_FALSE(fs::exists(target_ / "new")) << "a view must be read-only";
}

TEST_F(MountAtTest, AnythingButOneOverlayOrBindIsRefused) {
  auto none = MountAt({}, target_);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::kInvalidArgument);
  auto tmpfs = MountAt({{"tmpfs", "tmpfs", {}}}, target_);
  ASSERT_FALSE(tmpfs);
  EXPECT_EQ(tmpfs.error().code, Errc::kInvalidArgument);
  EXPECT_NE(tmpfs.error().message.find("`tmpfs`"), std::string::npos) << tmpfs.error().message;
  EXPECT_FALSE(fixtures::MountInfoAt(target_));
}

// The overlay probe's success is kept in the store (<root>/overlay-supported)
// so that later processes do not fork a child to mount: a stale answer is
// probed again and replaced; a root on the same file system given a valid
// answer is not probed at all (a probe makes and removes a scratch
// directory in the root, which would change the root's mtime).
TEST(OverlayProbeCache, KeepsASuccessAndProbesAgainWhenTheAnswerIsStale) {
  REQUIRE_ROOT("overlay mounts");
  auto a = common::TempDir::Create("overlay-cache-a");
  ASSERT_TRUE(a) << a.error().message;
  const fs::path cache = a->path() / "overlay-supported";
  std::ofstream(cache) << "overlay supported\nkernel 0.0.0\n";
  REQUIRE_OVERLAYFS(OverlaySupported(a->path()), a->path());
  struct utsname u {};
  ASSERT_EQ(::uname(&u), 0);
  const std::string answer = Read(cache);
  EXPECT_TRUE(answer.starts_with(std::string("overlay supported\nkernel ") + u.release + "\n"))
      << answer;

  auto b = common::TempDir::Create("overlay-cache-b");
  ASSERT_TRUE(b) << b.error().message;
  std::ofstream(b->path() / "overlay-supported") << answer;
  const struct timespec old[2] = {{.tv_sec = 1'000'000'000, .tv_nsec = 0},
                                  {.tv_sec = 1'000'000'000, .tv_nsec = 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, b->path().c_str(), old, 0), 0);
  EXPECT_TRUE(OverlaySupported(b->path()));
  struct stat st {};
  ASSERT_EQ(::stat(b->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'000'000'000) << "the root was probed";
}

}  // namespace
}  // namespace snapshot
