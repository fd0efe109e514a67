// Disk space and `gantry pull` (the real binary), with the store on a
// small tmpfs: the space check refuses a pull that cannot fit before any
// blob is requested; a disk that fills anyway, while downloading or while
// unpacking, fails the pull with a clear error, records nothing and frees
// what it wrote; once the tmpfs grows the same pull succeeds and the image
// mounts. Suites are named Space*. Needs root (tmpfs and overlay mounts).

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "fixtures/require.h"
#include "integration/cri/cri_helpers.h"
#include "integration/pull/pull_helpers.h"
#include "snapshot/snapshotter.h"

namespace pulltest {
namespace {

constexpr int kExitNoSpace = 7;
constexpr int64_t kMiB = 1 << 20;
constexpr int kLayers = 3;
constexpr size_t kLayerFile = 3 << 20;  // random bytes: the gzip blob is as big

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Three layers of 3 MiB that do not compress: about 9 MiB to download and
// 9 MiB unpacked.
fixtures::ImageSpec BigSpec() {
  fixtures::ImageSpec spec;
  for (int i = 0; i < kLayers; ++i) {
    fixtures::LayerSpec l;
    l.entries = {fixtures::File("data" + std::to_string(i), RandomBytes(kLayerFile, 100 + i))};
    spec.layers.push_back(std::move(l));
  }
  return spec;
}

// The error line `gantry` printed last (log lines may come before it).
std::string ErrorLine(const std::string& err) {
  std::string s = err;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

int64_t UsedBytes(const fs::path& p) {
  struct statvfs v {};
  if (::statvfs(p.c_str(), &v) != 0) return -1;
  return static_cast<int64_t>(v.f_blocks - v.f_bfree) * static_cast<int64_t>(v.f_frsize);
}

class SpaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT("mounts a tmpfs as the store");
    REQUIRE_TOOLS("docker-registry", "skopeo");
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
    ASSERT_NO_FATAL_FAILURE(StartRegistry({}, &reg_));
    ASSERT_NO_FATAL_FAILURE(
        PushImage(*reg_, gantry_->dir() / "layout", BigSpec(), "space/big:v1", &img_));
    ASSERT_NO_FATAL_FAILURE(PushLayout(*reg_, gantry_->dir() / "layout", "push", "space/big:v2"));
    ASSERT_NO_FATAL_FAILURE(StartProxy(*reg_, &proxy_));
    ASSERT_TRUE(common::MkdirAll(gantry_->root(), 0700));
  }

  void TearDown() override {
    // Views left by a failed test, then the tmpfs, before the temp dir goes.
    if (!view_.target().empty()) view_.reset();
    store_.reset();
  }

  void MountStore(const std::string& size) {
    auto m =
        common::Mount("tmpfs", gantry_->root().string(), "tmpfs", 0, "size=" + size + ",mode=0700");
    ASSERT_TRUE(m) << m.error().message;
    store_ = std::move(*m);
  }
  void ResizeStore(const std::string& size) {
    ASSERT_EQ(
        ::mount("tmpfs", gantry_->root().c_str(), "tmpfs", MS_REMOUNT, ("size=" + size).c_str()), 0)
        << "remount size=" << size << ": " << std::strerror(errno);
  }

  std::string Ref(const std::string& tag) const { return proxy_->host() + "/space/big:" + tag; }

  fixtures::CommandResult Run(const std::vector<std::string>& args) {
    auto r = gantry_->Run(args);
    EXPECT_TRUE(r) << r.error().message;
    return r ? std::move(*r) : fixtures::CommandResult{};
  }

  // Nothing half-made: no ingest file, and no snapshot but committed ones
  // (extract snapshots of a failed unpack are gone).
  void ExpectNoLeftovers() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(gantry_->root() / "content" / "ingest", ec))
      ADD_FAILURE() << "partial download left behind: " << e.path();
    auto sn = snapshot::Open(gantry_->root(), {.settle = false});
    ASSERT_TRUE(sn) << sn.error().message;
    auto all = (*sn)->List();
    ASSERT_TRUE(all) << all.error().message;
    for (const auto& i : *all)
      EXPECT_EQ(i.kind, snapshot::SnapshotKind::kCommitted) << "snapshot left behind: " << i.name;
  }

  int CommittedSnapshots() {
    auto sn = snapshot::Open(gantry_->root(), {.settle = false});
    if (!sn) return -1;
    auto all = (*sn)->List();
    if (!all) return -1;
    return static_cast<int>(std::count_if(all->begin(), all->end(), [](const snapshot::Info& i) {
      return i.kind == snapshot::SnapshotKind::kCommitted;
    }));
  }

  // The other commands still work on the store.
  void ExpectStoreUsable() {
    auto images = Run({"images"});
    EXPECT_EQ(images.exit_code, 0) << images.err;
    auto df = Run({"df"});
    EXPECT_EQ(df.exit_code, 0) << df.err;
  }

  // The image mounts and shows every layer's file.
  void ExpectMounts(const std::string& ref) {
    const fs::path dir = gantry_->dir() / "mnt";
    ASSERT_TRUE(common::MkdirAll(dir, 0755));
    auto m = Run({"mount", ref, dir.string()});
    ASSERT_EQ(m.exit_code, 0) << m.err;
    view_ = common::MountGuard(dir.string());
    for (int i = 0; i < kLayers; ++i) {
      auto data = common::ReadFile(dir / ("data" + std::to_string(i)), 8 * kMiB);
      ASSERT_TRUE(data) << data.error().message;
      EXPECT_TRUE(*data == RandomBytes(kLayerFile, 100 + i)) << "data" << i;
    }
    (void)view_.release();
    auto u = Run({"umount", dir.string()});
    EXPECT_EQ(u.exit_code, 0) << u.err;
  }

  std::unique_ptr<pulltest::Gantry> gantry_;
  std::unique_ptr<fixtures::RegistryFixture> reg_;
  std::unique_ptr<fixtures::FaultProxy> proxy_;
  fixtures::BuiltImage img_;
  common::MountGuard store_;  // the tmpfs at gantry_->root()
  common::MountGuard view_;   // `gantry mount`, until `gantry umount`
};

TEST_F(SpaceTest, PrecheckRefusesBeforeAnyBlobIsRequested) {
  ASSERT_NO_FATAL_FAILURE(MountStore("8m"));
  auto r = Run({"pull", Ref("v1")});
  std::cout << "refused pull on an 8 MiB store: " << r.err;
  EXPECT_EQ(r.exit_code, kExitNoSpace) << r.err;
  const std::string line = ErrorLine(r.err);
  EXPECT_EQ(line.rfind("gantry: pull " + Ref("v1") + ": not enough space in `" +
                           (gantry_->root() / "content").string() + "`: need ",
                       0),
            0u)
      << r.err;
  EXPECT_NE(line.find(" free "), std::string::npos) << r.err;
  EXPECT_TRUE(line.ends_with(" (--ignore-space-check to pull anyway)")) << r.err;
  EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/"), 0) << "a blob was requested";
  EXPECT_GE(proxy_->CountRequests("GET", "/manifests/"), 1);
  EXPECT_TRUE(gantry_->ImageNames().empty());
  ExpectNoLeftovers();
  ExpectStoreUsable();

  ASSERT_NO_FATAL_FAILURE(ResizeStore("64m"));
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {Ref("v1")}));
  EXPECT_EQ(gantry_->ImageNames(), std::vector<std::string>{Ref("v1")});
  ExpectBlobsInStore(gantry_->root(), ImageDigests(img_));
}

TEST_F(SpaceTest, DiskFullWhileDownloadingRecordsNothingAndFreesItsPartials) {
  ASSERT_NO_FATAL_FAILURE(MountStore("6m"));
  auto r = Run({"pull", "--ignore-space-check", Ref("v1")});
  std::cout << "pull on a 6 MiB store: " << r.err;
  EXPECT_EQ(r.exit_code, kExitNoSpace) << r.err;
  const std::string line = ErrorLine(r.err);
  EXPECT_EQ(line.rfind("gantry: pull " + Ref("v1") + ": fetch blob sha256:", 0), 0u) << r.err;
  EXPECT_NE(line.find(": write `" + (gantry_->root() / "content" / "ingest").string()),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(line.ends_with(": No space left on device")) << r.err;
  EXPECT_TRUE(gantry_->ImageNames().empty());
  ExpectNoLeftovers();
  EXPECT_EQ(CommittedSnapshots(), 0);
  ExpectStoreUsable();
  // At most one layer blob was committed before the disk filled (it stays:
  // it is valid content); the partials of the others are gone.
  EXPECT_LT(UsedBytes(gantry_->root()), 5 * kMiB) << "the failed pull did not free its partials";

  ASSERT_NO_FATAL_FAILURE(ResizeStore("64m"));
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {Ref("v1")}));
  EXPECT_EQ(gantry_->ImageNames(), std::vector<std::string>{Ref("v1")});
  ExpectBlobsInStore(gantry_->root(), ImageDigests(img_));
  ExpectNoIngestLeft(gantry_->root());
  ExpectNoLeftovers();
  ExpectMounts(Ref("v1"));
}

TEST_F(SpaceTest, DiskFullWhileUnpackingRecordsNoImageAndNoSnapshot) {
  ASSERT_NO_FATAL_FAILURE(MountStore("64m"));
  // The content first, then a store where it fits but its unpacked copy
  // does not.
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--no-unpack", Ref("v1")}));
  const int64_t used = UsedBytes(gantry_->root());
  ASSERT_GT(used, kLayers * static_cast<int64_t>(kLayerFile));
  ASSERT_NO_FATAL_FAILURE(ResizeStore(std::to_string((used + 4 * kMiB) >> 10) + "k"));
  proxy_->ClearLog();
  auto r = Run({"pull", "--ignore-space-check", Ref("v2")});
  std::cout << "pull with " << (used >> 10) << " KiB used of " << ((used + 4 * kMiB) >> 10)
            << " KiB: " << r.err;
  EXPECT_EQ(r.exit_code, kExitNoSpace) << r.err;
  const std::string line = ErrorLine(r.err);
  EXPECT_EQ(line.rfind("gantry: pull " + Ref("v2") + ": unpack into `" +
                           (gantry_->root() / "snapshots").string(),
                       0),
            0u)
      << r.err;
  EXPECT_TRUE(line.ends_with(": No space left on device")) << r.err;
  EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/"), 0) << "the content was in the store";
  EXPECT_EQ(gantry_->ImageNames(), std::vector<std::string>{Ref("v1")})
      << "v2 must not be recorded";
  ExpectNoLeftovers();
  EXPECT_EQ(CommittedSnapshots(), 0) << "overlay layers are committed only once all are applied";
  ExpectStoreUsable();
  EXPECT_LT(UsedBytes(gantry_->root()), used + 1 * kMiB)
      << "the failed unpack did not free its layers";

  ASSERT_NO_FATAL_FAILURE(ResizeStore("64m"));
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {Ref("v2")}));
  auto names = gantry_->ImageNames();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{Ref("v1"), Ref("v2")}));
  EXPECT_EQ(CommittedSnapshots(), kLayers);
  ExpectNoLeftovers();
  ExpectMounts(Ref("v2"));
}

// The CRI PullImage path runs the same check: RESOURCE_EXHAUSTED before
// any blob is requested, then a pull that succeeds once the store grew.
TEST_F(SpaceTest, CriPullImageIsRefusedTooAndSucceedsOnceTheStoreGrew) {
  ASSERT_NO_FATAL_FAILURE(MountStore("8m"));
  std::unique_ptr<critest::CriServer> srv;
  ASSERT_NO_FATAL_FAILURE(critest::CriServer::Start(*gantry_, {}, &srv));
  std::string image_ref;
  grpc::Status st = critest::Pull(*srv, Ref("v1"), &image_ref);
  std::cout << "CRI PullImage on an 8 MiB store: " << st.error_message() << "\n";
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_NE(
      st.error_message().find("not enough space in `" + (gantry_->root() / "content").string()),
      std::string::npos)
      << st.error_message();
  EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/"), 0) << "a blob was requested";
  EXPECT_TRUE(critest::List(*srv).empty());

  ASSERT_NO_FATAL_FAILURE(ResizeStore("64m"));
  st = critest::Pull(*srv, Ref("v1"), &image_ref);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(image_ref, img_.config.digest.str());
  EXPECT_EQ(critest::List(*srv).size(), 1u);
  EXPECT_EQ(CommittedSnapshots(), kLayers);
  srv.reset();
  ExpectNoLeftovers();
}

}  // namespace
}  // namespace pulltest
