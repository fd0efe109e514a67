// The standard 4-layer fixture image, applied unprivileged: natively into
// one directory (the rootfs), and as overlay layer directories.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "fixtures/require.h"
#include "unit/unpack/test_util.h"

namespace unpack {
namespace {

namespace fs = std::filesystem;
using testing::GetXattr;
using testing::Lstat;
using testing::ReadAll;
using testing::Sandbox;

class UnpackFixtureImageTest : public ::testing::TestWithParam<fixtures::Compression> {
 protected:
  void SetUp() override {
    REQUIRE_BUSYBOX();
    auto layout = common::TempDir::Create("unpack-layout");
    ASSERT_TRUE(layout) << layout.error().message;
    layout_ = std::move(*layout);
    auto image = fixtures::WriteImage(layout_.path(), fixtures::FixtureImageSpec(GetParam()), "t");
    ASSERT_TRUE(image) << image.error().message;
    image_ = std::move(*image);
    ASSERT_EQ(image_.layers.size(), 4u);
  }

  common::TempDir layout_;
  fixtures::BuiltImage image_;
};

TEST_P(UnpackFixtureImageTest, NativeRootfsHasEveryLayerApplied) {
  Sandbox box;
  int64_t skipped = 0;
  for (size_t i = 0; i < image_.layers.size(); ++i) {
    auto r = testing::ApplyLayoutBlob(layout_.path(), image_.layers[i], image_.diff_ids[i],
                                      box.root_fd(), testing::Unprivileged(WhiteoutMode::kNative));
    ASSERT_TRUE(r) << "layer " << i + 1 << ": " << r.error().message;
    EXPECT_EQ(r->diff_id, image_.diff_ids[i]);
    EXPECT_EQ(r->blob_digest, image_.layers[i].digest);
    EXPECT_EQ(r->compressed_size, image_.layers[i].size);
    skipped += r->skipped;
  }
  EXPECT_EQ(skipped, 1) << "the char device of layer 4";
  const fs::path root = box.root();

  EXPECT_EQ(ReadAll(root / "bin/busybox"), ReadAll("/bin/busybox"));
  EXPECT_EQ(Lstat(root / "bin/busybox")->st_mode & 07777, 0755u);
  EXPECT_EQ(fs::read_symlink(root / "bin/sh"), "busybox");
  EXPECT_EQ(fs::read_symlink(root / "usr/bin/env"), "/bin/busybox");
  EXPECT_EQ(fs::read_symlink(root / "usr/bin/sh"), "/bin/busybox");
  EXPECT_EQ(fs::read_symlink(root / "usr/local/bin/bb"), "../../../bin/busybox");
  EXPECT_EQ(Lstat(root / "usr/bin/su-test")->st_mode & 07777, 04755u);
  EXPECT_EQ(Lstat(root / "tmp")->st_mode & 07777, 01777u);
  EXPECT_EQ(Lstat(root / "root")->st_mode & 07777, 0700u);
  EXPECT_EQ(ReadAll(root / "hello.txt"), "hello from gantry\n");
  EXPECT_TRUE(S_ISFIFO(Lstat(root / "run/fifo")->st_mode));
  EXPECT_EQ(Lstat(root / "run/fifo")->st_mode & 07777, 0600u);
  EXPECT_FALSE(Lstat(root / "dev/null-copy")) << "devices are skipped unprivileged";

  // Whiteouts (layers 2 and 4) and the opaque var/cache (layer 2).
  EXPECT_TRUE(fs::is_empty(root / "etc/old"));
  EXPECT_TRUE(S_ISDIR(Lstat(root / "etc/conf")->st_mode));
  EXPECT_TRUE(fs::is_empty(root / "etc/conf"));
  std::vector<std::string> cache;
  for (const auto& e : fs::directory_iterator(root / "var/cache"))
    cache.push_back(e.path().filename());
  EXPECT_EQ(cache, std::vector<std::string>{"new"});

  // Hardlinks of layer 2 share their inode.
  EXPECT_EQ(Lstat(root / "usr/lib/lib-a")->st_ino, Lstat(root / "usr/lib/lib-b")->st_ino);
  EXPECT_EQ(Lstat(root / "etc/shared.txt")->st_ino, Lstat(root / "etc/shared-link")->st_ino);
  EXPECT_EQ(Lstat(root / "usr/lib/lib-a")->st_nlink, 2u);

  if (testing::UserXattrsSupported(box.dir())) {
    EXPECT_EQ(GetXattr(root / "usr/bin/cap-test", "user.fixture"), "1");
  }
  EXPECT_FALSE(GetXattr(root / "usr/bin/cap-test", "security.capability"))
      << "security.* needs privileges";

  for (const auto& [path, desc] : testing::Tree(root))
    EXPECT_NE(fs::path(path).filename().string().rfind(".wh.", 0), 0u) << path;
  EXPECT_TRUE(box.Untouched());
}

TEST_P(UnpackFixtureImageTest, OverlayLayersAreIndependentDirectories) {
  std::vector<std::unique_ptr<Sandbox>> dirs;
  if (!testing::CanCreateWhiteouts(layout_.path()))
    GTEST_SKIP() << "the kernel (before 5.8) lets only root create whiteouts (0/0 char devices)";
  for (size_t i = 0; i < image_.layers.size(); ++i) {
    dirs.push_back(std::make_unique<Sandbox>());
    ApplyOptions o = testing::Unprivileged(WhiteoutMode::kOverlay);
    auto r = testing::ApplyLayoutBlob(layout_.path(), image_.layers[i], image_.diff_ids[i],
                                      dirs.back()->root_fd(), o);
    ASSERT_TRUE(r) << "layer " << i + 1 << ": " << r.error().message;
  }
  const fs::path l2 = dirs[1]->root(), l3 = dirs[2]->root(), l4 = dirs[3]->root();
  auto is_whiteout = testing::IsOverlayWhiteout;
  EXPECT_TRUE(is_whiteout(l2 / "etc/old/a"));
  EXPECT_TRUE(is_whiteout(l4 / "etc/old/b"));
  EXPECT_TRUE(is_whiteout(l4 / "etc/conf/main.conf"));
  if (testing::UserXattrsSupported(dirs[1]->dir())) {
    EXPECT_EQ(GetXattr(l2 / "var/cache", "user.overlay.opaque"), "y");
  }
  EXPECT_EQ(ReadAll(l2 / "var/cache/new"), "new\n");
  EXPECT_TRUE(fs::is_empty(l3)) << "the empty layer";
  EXPECT_EQ(ReadAll(l4 / "hello.txt"), "hello from gantry\n");
}

INSTANTIATE_TEST_SUITE_P(Compressions, UnpackFixtureImageTest,
                         ::testing::Values(fixtures::Compression::kGzip,
                                           fixtures::Compression::kZstd,
                                           fixtures::Compression::kNone),
                         [](const auto& p) {
                           switch (p.param) {
                             case fixtures::Compression::kGzip:
                               return "gzip";
                             case fixtures::Compression::kZstd:
                               return "zstd";
                             case fixtures::Compression::kNone:
                               return "none";
                           }
                           return "unknown";
                         });

}  // namespace
}  // namespace unpack
