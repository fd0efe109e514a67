// Whiteouts and opaque directories in both modes, unprivileged.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "unit/unpack/test_util.h"

namespace unpack {
namespace {

namespace fs = std::filesystem;
using fixtures::Dir;
using fixtures::File;
using fixtures::OpaqueMarker;
using fixtures::Symlink;
using fixtures::TarEntry;
using fixtures::Whiteout;
using testing::CanCreateWhiteouts;
using testing::GetXattr;
using testing::IsOverlayWhiteout;
using testing::Lstat;
using testing::ReadAll;
using testing::Sandbox;
using testing::Tar;
using testing::Unprivileged;

void MustApply(const Sandbox& box, const std::vector<TarEntry>& entries, WhiteoutMode mode) {
  auto r = box.Apply(Tar(entries), Unprivileged(mode));
  ASSERT_TRUE(r) << r.error().message;
}

// Sorted relative paths below `dir`.
std::vector<std::string> Paths(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& [path, desc] : testing::Tree(dir)) out.push_back(path);
  return out;
}

void ExpectNoWhiteoutNames(const fs::path& dir) {
  for (const auto& p : Paths(dir))
    EXPECT_EQ(fs::path(p).filename().string().rfind(".wh.", 0), std::string::npos) << p;
}

std::vector<TarEntry> LowerLayer() {
  return {File("keep", "keep"),
          File("a", "a"),
          Dir("b"),
          File("b/c", "c"),
          Dir("b/d"),
          File("b/d/e", "e"),
          Dir("t"),
          File("t/x", "x"),
          Symlink("l", "t"),
          Dir("usr"),
          Dir("usr/lib"),
          File("usr/lib/old", "old"),
          Symlink("lib", "usr/lib"),
          Dir("d"),
          File("d/old1", "1"),
          Dir("d/sub"),
          File("d/sub/old2", "2"),
          Dir("d/x"),
          Dir("d/x/y"),
          File("d/x/y/old3", "3"),
          File("d/x/old4", "4")};
}

TEST(UnpackNativeWhiteoutTest, WhiteoutsDeleteLowerEntries) {
  Sandbox box;
  MustApply(box, LowerLayer(), WhiteoutMode::kNative);
  MustApply(box,
            {Whiteout("a"), Whiteout("b"), Whiteout("l"), Whiteout("missing"),
             Whiteout("no/such/dir/x"), Whiteout("keep/x"), Whiteout("lib/old")},
            WhiteoutMode::kNative);
  EXPECT_FALSE(Lstat(box.root() / "a"));
  EXPECT_FALSE(Lstat(box.root() / "b"));
  EXPECT_FALSE(Lstat(box.root() / "l"));
  EXPECT_EQ(ReadAll(box.root() / "t/x"), "x") << "a whiteout of a symlink removes the link only";
  EXPECT_EQ(ReadAll(box.root() / "keep"), "keep");
  EXPECT_FALSE(Lstat(box.root() / "usr/lib/old")) << "through a symlinked parent";
  EXPECT_FALSE(Lstat(box.root() / "no")) << "whiteouts create nothing in native mode";
  ExpectNoWhiteoutNames(box.root());
  EXPECT_TRUE(box.Untouched());
}

TEST(UnpackNativeWhiteoutTest, OpaqueMarkerInOrderEmptiesTheDirectory) {
  Sandbox box;
  MustApply(box, LowerLayer(), WhiteoutMode::kNative);
  MustApply(box, {Dir("d"), OpaqueMarker("d"), File("d/new", "n")}, WhiteoutMode::kNative);
  EXPECT_EQ(Paths(box.root() / "d"), std::vector<std::string>{"new"});
  ExpectNoWhiteoutNames(box.root());
}

TEST(UnpackNativeWhiteoutTest, OpaqueMarkerAfterSiblingsKeepsThisLayersEntries) {
  Sandbox box;
  MustApply(box, LowerLayer(), WhiteoutMode::kNative);
  MustApply(box,
            {Dir("d"), File("d/early", "e"), Dir("d/sub"), File("d/sub/early2", "e2"),
             File("d/x/y/new", "implicit parents"), File("d/old1", "rewritten"), OpaqueMarker("d"),
             File("d/late", "l")},
            WhiteoutMode::kNative);
  EXPECT_EQ(Paths(box.root() / "d"),
            (std::vector<std::string>{"early", "late", "old1", "sub", "sub/early2", "x", "x/y",
                                      "x/y/new"}));
  EXPECT_EQ(ReadAll(box.root() / "d/old1"), "rewritten");
  EXPECT_EQ(ReadAll(box.root() / "keep"), "keep") << "outside the opaque dir";
  ExpectNoWhiteoutNames(box.root());
}

TEST(UnpackNativeWhiteoutTest, OpaqueRootKeepsOnlyThisLayer) {
  Sandbox box;
  MustApply(box, LowerLayer(), WhiteoutMode::kNative);
  MustApply(box, {File("z", "z"), File("./.wh..wh..opq", ""), Dir("usr"), File("usr/after", "a")},
            WhiteoutMode::kNative);
  EXPECT_EQ(Paths(box.root()), (std::vector<std::string>{"usr", "usr/after", "z"}));
}

TEST(UnpackNativeWhiteoutTest, WhiteoutThenRecreateReplacesTheDirectory) {
  Sandbox box;
  MustApply(box, LowerLayer(), WhiteoutMode::kNative);
  MustApply(box, {Whiteout("b"), Dir("b"), File("b/new", "n")}, WhiteoutMode::kNative);
  EXPECT_EQ(Paths(box.root() / "b"), std::vector<std::string>{"new"});
}

TEST(UnpackOverlayWhiteoutTest, WhiteoutsBecomeCharacterDevices) {
  Sandbox box;
  if (!CanCreateWhiteouts(box.dir()))
    GTEST_SKIP() << "the kernel (before 5.8) lets only root create whiteouts (0/0 char devices)";
  MustApply(box,
            {File("a", "layer content"), Whiteout("a"), Whiteout("gone/deep"), Dir("b"),
             File("b/x", "x"), Whiteout("b")},
            WhiteoutMode::kOverlay);
  EXPECT_TRUE(IsOverlayWhiteout(box.root() / "a"));
  EXPECT_TRUE(IsOverlayWhiteout(box.root() / "gone/deep"));
  EXPECT_TRUE(S_ISDIR(Lstat(box.root() / "gone")->st_mode));
  EXPECT_TRUE(IsOverlayWhiteout(box.root() / "b"));
  ExpectNoWhiteoutNames(box.root());
}

TEST(UnpackOverlayWhiteoutTest, OpaqueDirectoriesGetTheUserXattrWhenUnprivileged) {
  Sandbox box;
  if (!testing::UserXattrsSupported(box.dir()))
    GTEST_SKIP() << "the file system under $TMPDIR has no user xattrs";
  MustApply(box,
            {Dir("d"), File("d/early", "e"), OpaqueMarker("d"), File("d/late", "l"),
             OpaqueMarker("implicit/dir")},
            WhiteoutMode::kOverlay);
  EXPECT_EQ(GetXattr(box.root() / "d", "user.overlay.opaque"), "y");
  EXPECT_FALSE(GetXattr(box.root() / "d", "trusted.overlay.opaque"));
  EXPECT_EQ(Paths(box.root() / "d"), (std::vector<std::string>{"early", "late"}));
  EXPECT_EQ(GetXattr(box.root() / "implicit/dir", "user.overlay.opaque"), "y");
  ExpectNoWhiteoutNames(box.root());
}

TEST(UnpackOverlayWhiteoutTest, DirectoryReplacingAWhiteoutIsOpaque) {
  Sandbox box;
  if (!CanCreateWhiteouts(box.dir()))
    GTEST_SKIP() << "the kernel (before 5.8) lets only root create whiteouts (0/0 char devices)";
  if (!testing::UserXattrsSupported(box.dir()))
    GTEST_SKIP() << "the file system under $TMPDIR has no user xattrs";
  MustApply(box, {Whiteout("b"), Dir("b"), File("b/new", "n"), Dir("plain")},
            WhiteoutMode::kOverlay);
  EXPECT_TRUE(S_ISDIR(Lstat(box.root() / "b")->st_mode));
  EXPECT_EQ(GetXattr(box.root() / "b", "user.overlay.opaque"), "y");
  EXPECT_FALSE(GetXattr(box.root() / "plain", "user.overlay.opaque"));
}

}  // namespace
}  // namespace unpack
