// Name normalisation and in-root resolution (both the openat2 path and the
// portable walk).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "common/fd.h"
#include "unit/unpack/test_util.h"
#include "unpack/path_internal.h"

namespace unpack::internal {
namespace {

namespace fs = std::filesystem;
using common::Errc;

TEST(UnpackNormalizePathTest, Table) {
  const Limits limits;
  struct Case {
    std::string raw;
    std::string want;  // "!" + message fragment for an error
  };
  const std::vector<Case> cases = {
      {"a", "a"},
      {"./a", "a"},
      {"././a/./b/", "a/b"},
      {"a//b///c", "a/b/c"},
      {"./", ""},
      {".", ""},
      {"a/", "a"},
      {"..a/b..", "..a/b.."},
      {"", "!empty name"},
      {"/", "!absolute path"},
      {"/etc/passwd", "!absolute path"},
      {"..", "!path escapes the root"},
      {"../x", "!path escapes the root"},
      {"a/..", "!path escapes the root"},
      {"a/../b", "!path escapes the root"},
      {"./../x", "!path escapes the root"},
      {std::string("a\0b", 3), "!NUL"},
      {std::string(255, 'n'), std::string(255, 'n')},
      {std::string(256, 'n'), "!name too long (256 bytes, limit 255)"},
  };
  for (const auto& c : cases) {
    auto r = NormalizePath(c.raw, limits);
    if (c.want.starts_with("!")) {
      ASSERT_FALSE(r) << c.raw;
      EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
      EXPECT_NE(r.error().message.find(c.want.substr(1)), std::string::npos) << r.error().message;
    } else {
      ASSERT_TRUE(r) << c.raw << ": " << r.error().message;
      EXPECT_EQ(*r, c.want);
    }
  }
  Limits tight;
  tight.max_path_length = 5;
  EXPECT_TRUE(NormalizePath("./ab/cd/", tight));
  EXPECT_FALSE(NormalizePath("ab/cde", tight));
}

TEST(UnpackSplitLastTest, SplitsAtTheLastSlash) {
  EXPECT_EQ(SplitLast("a/b/c"), (std::pair<std::string_view, std::string_view>{"a/b", "c"}));
  EXPECT_EQ(SplitLast("c"), (std::pair<std::string_view, std::string_view>{"", "c"}));
}

TEST(UnpackDisplayPathTest, EscapesControlBytesAndShortensLongNames) {
  EXPECT_EQ(DisplayPath("a\nb`c\\d\x7f"), "a\\x0ab\\x60c\\x5cd\\x7f");
  EXPECT_EQ(DisplayPath("naïve"), "naïve");
  std::string shown = DisplayPath(std::string(1000, 'x'));
  EXPECT_LT(shown.size(), 250u);
  EXPECT_NE(shown.find("..."), std::string::npos);
}

class UnpackResolverTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    fs::create_directories(box_.root() / "usr/lib");
    fs::create_directory_symlink("usr/lib", box_.root() / "lib");
    fs::create_directory_symlink("/", box_.root() / "to-root");
    fs::create_directory_symlink("../../../..", box_.root() / "usr/up");
    fs::create_directory_symlink("/usr/../usr/./lib", box_.root() / "abs-lib");
    fs::create_symlink("a", box_.root() / "loop-b");
    fs::create_symlink("loop-b", box_.root() / "a");
    std::ofstream(box_.root() / "file") << "x";
    fs::create_symlink("file", box_.root() / "to-file");
    fs::create_directory_symlink("missing/dir", box_.root() / "dangling");
    ASSERT_TRUE(resolver_.Init());
  }

  // The resolved directory's path relative to the root, or the error.
  std::string Resolve(const std::string& dir, bool create = false) {
    auto fd = resolver_.OpenDir(dir, create);
    if (!fd) return "error: " + fd.error().message;
    std::error_code ec;
    fs::path real = fs::read_symlink("/proc/self/fd/" + std::to_string(fd->get()), ec);
    fs::path rel = fs::relative(real, fs::canonical(box_.root()), ec);
    return rel.string();
  }

  testing::Sandbox box_;
  Resolver resolver_{box_.root_fd(), GetParam()};
};

TEST_P(UnpackResolverTest, FollowsSymlinksInsideTheRoot) {
  EXPECT_EQ(Resolve(""), ".");
  EXPECT_EQ(Resolve("usr/lib"), "usr/lib");
  EXPECT_EQ(Resolve("lib"), "usr/lib");
  EXPECT_EQ(Resolve("abs-lib"), "usr/lib");
  EXPECT_EQ(Resolve("to-root"), ".");
  EXPECT_EQ(Resolve("to-root/to-root/usr"), "usr");
  EXPECT_EQ(Resolve("usr/up"), ".");
  EXPECT_EQ(Resolve("lib/../up/usr/lib"), "usr/lib") << "'..' after a symlink is physical";
}

TEST_P(UnpackResolverTest, ReportsErrors) {
  EXPECT_NE(Resolve("a").find("Too many levels of symbolic links"), std::string::npos);
  EXPECT_NE(Resolve("file").find("Not a directory"), std::string::npos);
  EXPECT_NE(Resolve("to-file").find("Not a directory"), std::string::npos);
  auto missing = resolver_.OpenDir("nope/x", false);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
}

TEST_P(UnpackResolverTest, CreatesMissingDirectoriesInsideTheRoot) {
  EXPECT_EQ(Resolve("new/a/b", true), "new/a/b");
  EXPECT_EQ(fs::status(box_.root() / "new/a").permissions() & fs::perms::all, fs::perms(0755));
  EXPECT_EQ(Resolve("to-root/made", true), "made");
  EXPECT_EQ(Resolve("usr/up/up-made", true), "up-made");
  EXPECT_EQ(Resolve("dangling/x", true), "missing/dir/x");
  EXPECT_TRUE(box_.Untouched());
}

TEST_P(UnpackResolverTest, ParentFdCachesUntilInvalidated) {
  auto a = resolver_.ParentFd("usr/lib", false);
  ASSERT_TRUE(a);
  auto b = resolver_.ParentFd("usr/lib", false);
  ASSERT_TRUE(b);
  EXPECT_EQ(*a, *b);
  resolver_.Invalidate();
  auto c = resolver_.ParentFd("usr", false);
  ASSERT_TRUE(c);
}

INSTANTIATE_TEST_SUITE_P(Resolvers, UnpackResolverTest, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "openat2" : "walk"; });

TEST(UnpackRemoveAllAtTest, RemovesTreesWithoutFollowingSymlinks) {
  testing::Sandbox box;
  fs::create_directories(box.root() / "t/a/b");
  std::ofstream(box.root() / "t/a/b/f") << "x";
  fs::create_directory_symlink(box.dir(), box.root() / "t/out");
  fs::permissions(box.root() / "t/a", fs::perms(0500));
  struct stat st {};
  ASSERT_EQ(::stat(box.root().c_str(), &st), 0);
  ASSERT_TRUE(RemoveAllAt(box.root_fd(), "t", st.st_dev));
  EXPECT_FALSE(fs::exists(box.root() / "t"));
  EXPECT_TRUE(box.Untouched());
  EXPECT_TRUE(RemoveAllAt(box.root_fd(), "never-existed", st.st_dev));
}

}  // namespace
}  // namespace unpack::internal
