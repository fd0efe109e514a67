#include "common/fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/fd.h"

namespace common {
namespace {

namespace fs = std::filesystem;

TEST(FsTest, AtomicWriteReplacesContentAndLeavesNoTemp) {
  auto dir = TempDir::Create("fs-test");
  ASSERT_TRUE(dir) << dir.error().message;
  fs::path p = dir->path() / "file.json";
  ASSERT_TRUE(AtomicWriteFile(p, "first", 0600));
  ASSERT_TRUE(AtomicWriteFile(p, "second", 0640));
  auto got = ReadFile(p);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, "second");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  size_t entries = 0;
  for (auto& e : fs::directory_iterator(dir->path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
}

TEST(FsTest, AtomicWriteIntoMissingDirFailsWithNotFound) {
  auto dir = TempDir::Create("fs-test");
  ASSERT_TRUE(dir);
  auto st = AtomicWriteFile(dir->path() / "no/such/dir/f", "x");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kNotFound);
}

TEST(FsTest, ReadFileEnforcesLimit) {
  auto dir = TempDir::Create("fs-test");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(AtomicWriteFile(dir->path() / "big", std::string(100, 'x')));
  auto r = ReadFile(dir->path() / "big", 10);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kResourceExhausted);
}

TEST(FsTest, MkdirAllCreatesNestedAndRefusesFile) {
  auto dir = TempDir::Create("fs-test");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(MkdirAll(dir->path() / "a/b/c"));
  EXPECT_TRUE(fs::is_directory(dir->path() / "a/b/c"));
  ASSERT_TRUE(AtomicWriteFile(dir->path() / "f", "x"));
  auto st = MkdirAll(dir->path() / "f/g");
  ASSERT_FALSE(st);
}

TEST(FsTest, TempDirRemovedOnDestruction) {
  fs::path p;
  {
    auto dir = TempDir::Create("fs-test");
    ASSERT_TRUE(dir);
    p = dir->path();
    ASSERT_TRUE(AtomicWriteFile(p / "x", "y"));
    ASSERT_TRUE(fs::exists(p));
  }
  EXPECT_FALSE(fs::exists(p));
}

TEST(FsTest, UniqueFdClosesOnDestruction) {
  int raw;
  {
    auto fd = Open("/dev/null", O_RDONLY);
    ASSERT_TRUE(fd);
    raw = fd->get();
    EXPECT_GE(fcntl(raw, F_GETFD), 0);
  }
  EXPECT_EQ(fcntl(raw, F_GETFD), -1);
}

}  // namespace
}  // namespace common
