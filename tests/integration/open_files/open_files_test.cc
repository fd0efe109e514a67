// `gantry pull` of a layer of many small files (the shape of node_modules or
// site-packages) under a low RLIMIT_NOFILE, as a login shell, a service
// manager or `ulimit -n` in bash gives it (soft and hard: gantry raises its
// soft limit to the hard one at start-up, so only a low hard limit tests
// the unpacker's own bound). Issue 13: the file thread's queue was bounded
// in bytes only, so a pull held 7,000-10,000 files open and failed with
// "create file: Too many open files".
//
// The image (one gzip layer, 1,000 directories of 100 files of 1-100
// bytes) is generated at test time and pushed to the registry fixture;
// every store is on a tmpfs of its own, so that creating and removing
// 100,000 inodes takes seconds on any disk.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/hostile_corpus.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/registry_fixture.h"
#include "fixtures/require.h"
#include "integration/pull/pull_helpers.h"

namespace openfiles {
namespace {

namespace fs = std::filesystem;
using pulltest::Describe;
using pulltest::Gantry;

constexpr int kDirs = 1000;
constexpr int kFilesPerDir = 100;
constexpr int kMaxFileBytes = 100;
constexpr int kFiles = kDirs * kFilesPerDir;

// "gantry: …" lines of a run's stderr.
std::vector<std::string> ErrorLines(const std::string& err) {
  std::vector<std::string> out;
  std::istringstream is(err);
  for (std::string line; std::getline(is, line);)
    if (line.starts_with("gantry: ")) out.push_back(line);
  return out;
}

// A store of its own on a tmpfs; the tmpfs goes before the temp dir.
struct TmpfsStore {
  std::unique_ptr<Gantry> gantry;
  common::MountGuard mount;
  ~TmpfsStore() { mount.reset(); }
};

void MakeTmpfsStore(TmpfsStore* out) {
  auto g = Gantry::Create();
  ASSERT_TRUE(g) << g.error().message;
  out->gantry = std::make_unique<Gantry>(std::move(*g));
  ASSERT_TRUE(common::MkdirAll(out->gantry->root(), 0700));
  auto m = common::Mount("tmpfs", out->gantry->root().string(), "tmpfs", 0,
                         "size=2g,nr_inodes=1000000,mode=0700");
  ASSERT_TRUE(m) << m.error().message;
  out->mount = std::move(*m);
}

// The layer's snapshot holds every directory and file, each file with its
// content (all of them read: a file the unpacker left unfinished would be
// empty or short).
void ExpectCompleteLayer(const fs::path& dir) {
  ASSERT_FALSE(dir.empty());
  int64_t files = 0, dirs = 0, wrong = 0;
  std::string first_wrong;
  for (int d = 0; d < kDirs; ++d) {
    char name[32];
    std::snprintf(name, sizeof name, "d%05d", d);
    const fs::path sub = dir / name;
    struct stat st {};
    if (::lstat(sub.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) ++dirs;
    for (int f = 0; f < kFilesPerDir; ++f) {
      const int64_t i = static_cast<int64_t>(d) * kFilesPerDir + f;
      std::snprintf(name, sizeof name, "f%08lld", static_cast<long long>(i));
      auto got = common::ReadFile(sub / name, 1024);
      if (!got) continue;
      ++files;
      if (*got != fixtures::FileBytes(i, kMaxFileBytes) && wrong++ == 0) first_wrong = sub / name;
    }
  }
  EXPECT_EQ(dirs, kDirs);
  EXPECT_EQ(files, kFiles);
  EXPECT_EQ(wrong, 0) << "files with the wrong content, first " << first_wrong;
}

class OpenFilesPull : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT("the stores' tmpfs mounts");
    REQUIRE_TOOLS("docker-registry", "skopeo", "prlimit");
    auto tmp = common::TempDir::Create("open-files");
    ASSERT_TRUE(tmp) << tmp.error().message;
    tmp_ = std::move(*tmp);
    ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
    const fs::path blob = tmp_.path() / "small-files.tar.gz";
    auto diff_id = fixtures::WriteManyFilesLayer(blob, kDirs, kFilesPerDir, kMaxFileBytes);
    ASSERT_TRUE(diff_id) << diff_id.error().message;
    fixtures::ImageSpec spec;
    fixtures::LayerSpec layer;
    layer.blob_from = blob;
    layer.blob_diff_id = *diff_id;
    spec.layers.push_back(std::move(layer));
    ASSERT_NO_FATAL_FAILURE(
        pulltest::PushImage(*reg_, tmp_.path() / "layout", spec, "many/small:v1", &image_));
    ASSERT_EQ(image_.diff_ids.size(), 1u);
    ref_ = reg_->host() + "/many/small:v1";
  }

  // `gantry pull -q REF` into `g` under RLIMIT_NOFILE `limit`.
  fixtures::CommandResult PullUnder(const Gantry& g, uint64_t limit) const {
    const std::vector<std::string> argv =
        pulltest::WithOpenFileLimit(limit, g.Argv({"pull", "-q", ref_}));
    auto r = fixtures::RunCommand(
        argv,
        {.env = g.Env(), .cwd = g.dir(), .stdin_data = {}, .timeout = std::chrono::seconds(180)});
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : fixtures::CommandResult{};
  }

  common::TempDir tmp_;
  std::unique_ptr<fixtures::RegistryFixture> reg_;
  fixtures::BuiltImage image_;
  std::string ref_;
};

// `bash -c 'ulimit -n 1024; gantry pull -q REF'` failed 5 of 5 with
// "apply layer …: entry …: create file: Too many open files" (exit 7);
// here the limit is a quarter of that, ten times over, each into a fresh
// store.
TEST_F(OpenFilesPull, ManySmallFilesPullUnderLimit256TenOfTen) {
  constexpr int kPulls = 10;
  int ok = 0;
  for (int i = 0; i < kPulls; ++i) {
    TmpfsStore store;
    ASSERT_NO_FATAL_FAILURE(MakeTmpfsStore(&store));
    const fixtures::CommandResult r = PullUnder(*store.gantry, 256);
    EXPECT_EQ(r.exit_code, 0) << "pull " << i + 1 << " of " << kPulls << " under ulimit -n 256\n"
                              << Describe(r);
    if (r.exit_code != 0) continue;
    ++ok;
    // Every pull unpacks all of it; the first one is checked file by file.
    const std::string chain = image_.diff_ids[0].str();
    if (i == 0)
      ExpectCompleteLayer(pulltest::CommittedSnapshotDir(*store.gantry, chain));
    else
      EXPECT_EQ(pulltest::SnapshotKinds(*store.gantry).count(chain), 1u);
  }
  std::printf("%d of %d pulls of %d files under ulimit -n 256 succeeded\n", ok, kPulls, kFiles);
}

// With 64 descriptors in all there may be too few for the rest of the
// pull (database, downloads, the layer itself): the pull either succeeds
// with the whole layer, or fails with one error line and leaves no
// half-applied snapshot, no image, and a store that fsck finds clean.
TEST_F(OpenFilesPull, HundredThousandFilesUnderLimit64SucceedOrFailCleanly) {
  TmpfsStore store;
  ASSERT_NO_FATAL_FAILURE(MakeTmpfsStore(&store));
  const Gantry& g = *store.gantry;
  const fixtures::CommandResult r = PullUnder(g, 64);
  const std::string chain = image_.diff_ids[0].str();
  if (r.exit_code == 0) {
    std::printf("the pull under ulimit -n 64 succeeded\n");
    ExpectCompleteLayer(pulltest::CommittedSnapshotDir(g, chain));
  } else {
    std::printf("the pull under ulimit -n 64 failed: %s", r.err.c_str());
    EXPECT_EQ(ErrorLines(r.err).size(), 1u) << "want one error line\n" << Describe(r);
    const auto snapshots = pulltest::SnapshotKinds(g);
    for (const auto& [key, kind] : snapshots)
      EXPECT_FALSE(key.starts_with("extract-"))
          << "half-applied snapshot left: " << key << " " << kind;
    if (snapshots.count(chain) != 0) ExpectCompleteLayer(pulltest::CommittedSnapshotDir(g, chain));
    EXPECT_TRUE(g.ImageNames().empty()) << "the image was recorded";
  }
  auto fsck = g.Run({"fsck"});
  ASSERT_TRUE(fsck) << fsck.error().message;
  EXPECT_EQ(fsck->exit_code, 0) << Describe(*fsck) << fsck->out;
}

// gantry raises its soft RLIMIT_NOFILE to the hard limit at start-up, as Go
// programs (containerd) do: observed on a running `gantry serve` started
// with soft 128 and hard 4096.
TEST(OpenFilesLimit, GantryRaisesItsSoftLimitToTheHardLimit) {
  REQUIRE_TOOLS("prlimit");
  auto g = Gantry::Create();
  ASSERT_TRUE(g) << g.error().message;
  const fs::path sock = g->dir() / "s.sock";
  std::vector<std::string> argv = {"prlimit", "--nofile=128:4096", "--"};
  for (const auto& a : g->Argv({"serve", "--listen", "unix://" + sock.string()})) argv.push_back(a);
  const fs::path log = g->dir() / "serve.log";
  auto child = fixtures::Child::Spawn({.argv = argv,
                                       .env = g->Env(),
                                       .stdout_path = log,
                                       .stderr_path = log,
                                       .cwd = g->dir(),
                                       .kill_grace = std::chrono::milliseconds(5000),
                                       .die_with_parent = true});
  ASSERT_TRUE(child) << child.error().message;
  // The limit is raised before any command runs: once the socket is there.
  const bool up = fixtures::WaitUntil([&] { return fs::exists(sock) || child->Exited(); },
                                      std::chrono::seconds(30));
  auto text = [&] {
    auto l = common::ReadFile(log);
    return l ? *l : l.error().message;
  };
  ASSERT_TRUE(up && fs::exists(sock)) << "gantry serve did not start\n" << text();
  std::ifstream limits("/proc/" + std::to_string(child->pid()) + "/limits");
  std::string line, found;
  while (std::getline(limits, line))
    if (line.starts_with("Max open files")) found = line;
  std::istringstream fields(found.substr(std::string("Max open files").size()));
  std::string soft, hard;
  fields >> soft >> hard;
  EXPECT_EQ(soft, "4096") << found;
  EXPECT_EQ(hard, "4096") << found;
  auto rc = child->Terminate(std::chrono::seconds(5));
  ASSERT_TRUE(rc) << rc.error().message;
  EXPECT_EQ(*rc, 0) << text();
}

}  // namespace
}  // namespace openfiles
