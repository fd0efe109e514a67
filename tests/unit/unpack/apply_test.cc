// Entry kinds and metadata, unprivileged.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <clocale>
#include <csignal>

#include "common/digest.h"
#include "common/fd.h"
#include "unit/unpack/test_util.h"

namespace unpack {
namespace {

namespace fs = std::filesystem;
using common::Errc;
using fixtures::Dir;
using fixtures::File;
using fixtures::Hardlink;
using fixtures::Symlink;
using fixtures::TarEntry;
using testing::GetXattr;
using testing::Lstat;
using testing::ReadAll;
using testing::Sandbox;
using testing::Tar;
using testing::Unprivileged;

TarEntry WithMtime(TarEntry e, int64_t mtime) {
  e.mtime = mtime;
  return e;
}

TarEntry Special(TarEntry::Type type, std::string path, unsigned major, unsigned minor,
                 mode_t mode) {
  TarEntry e;
  e.type = type;
  e.path = std::move(path);
  e.mode = mode;
  e.dev_major = major;
  e.dev_minor = minor;
  return e;
}

class ScopedCtype {
 public:
  explicit ScopedCtype(const char* name) : old_(std::setlocale(LC_CTYPE, nullptr)) {
    if (std::setlocale(LC_CTYPE, name) == nullptr) ADD_FAILURE() << "no locale " << name;
  }
  ~ScopedCtype() { std::setlocale(LC_CTYPE, old_.c_str()); }

 private:
  std::string old_;
};

// Applies `entries` as an uncompressed layer; fails the test on error.
void MustApply(const Sandbox& box, const std::vector<TarEntry>& entries,
               ApplyOptions o = Unprivileged()) {
  auto r = box.Apply(Tar(entries), o);
  ASSERT_TRUE(r) << r.error().message;
}

TEST(UnpackApplyTest, FilesDirsSymlinksAndFifos) {
  Sandbox box;
  MustApply(box,
            {Dir("etc/", 0750), File("etc/hosts", "127.0.0.1 localhost\n", 0640),
             File("./bin/tool", "#!/bin/sh\n", 0755), Symlink("etc/link", "hosts"),
             Symlink("abs", "/etc/hosts"), Special(TarEntry::Type::kFifo, "run/fifo", 0, 0, 0620)});
  EXPECT_EQ(ReadAll(box.root() / "etc/hosts"), "127.0.0.1 localhost\n");
  EXPECT_EQ(Lstat(box.root() / "etc/hosts")->st_mode & 07777, 0640u);
  EXPECT_EQ(Lstat(box.root() / "etc")->st_mode & 07777, 0750u);
  EXPECT_EQ(Lstat(box.root() / "bin/tool")->st_mode & 07777, 0755u);
  EXPECT_EQ(Lstat(box.root() / "bin")->st_mode & 07777, 0755u) << "implicit parent";
  EXPECT_EQ(fs::read_symlink(box.root() / "etc/link"), "hosts");
  EXPECT_EQ(fs::read_symlink(box.root() / "abs"), "/etc/hosts");
  auto fifo = Lstat(box.root() / "run/fifo");
  ASSERT_TRUE(fifo);
  EXPECT_TRUE(S_ISFIFO(fifo->st_mode));
  EXPECT_EQ(fifo->st_mode & 07777, 0620u);
  EXPECT_TRUE(box.Untouched());
}

TEST(UnpackApplyTest, HardlinksShareTheInode) {
  Sandbox box;
  MustApply(box, {File("a", "data", 0700), Hardlink("b", "a"), Dir("d"), Hardlink("d/c", "./a"),
                  Symlink("s", "a"), Hardlink("s2", "s")});
  auto a = Lstat(box.root() / "a"), b = Lstat(box.root() / "b"), c = Lstat(box.root() / "d/c");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->st_ino, b->st_ino);
  EXPECT_EQ(a->st_ino, c->st_ino);
  EXPECT_EQ(a->st_nlink, 3u);
  auto s = Lstat(box.root() / "s"), s2 = Lstat(box.root() / "s2");
  ASSERT_TRUE(s && s2);
  EXPECT_TRUE(S_ISLNK(s2->st_mode)) << "a hardlink to a symlink links the symlink itself";
  EXPECT_EQ(s->st_ino, s2->st_ino);
}

TEST(UnpackApplyTest, HardlinkReplacesAnExistingEntryAndToleratesItself) {
  Sandbox box;
  MustApply(box, {File("a", "new"), File("b", "old"), Hardlink("b", "a"), Hardlink("a", "a")});
  EXPECT_EQ(ReadAll(box.root() / "b"), "new");
  EXPECT_EQ(Lstat(box.root() / "a")->st_ino, Lstat(box.root() / "b")->st_ino);
}

TEST(UnpackApplyTest, SetuidSetgidAndStickyBitsArePreserved) {
  Sandbox box;
  MustApply(box, {File("suid", "x", 04755), File("sgid", "x", 02711), Dir("tmp", 01777),
                  Dir("shared", 02775), File("shared/f", "x")});
  EXPECT_EQ(Lstat(box.root() / "suid")->st_mode & 07777, 04755u);
  EXPECT_EQ(Lstat(box.root() / "sgid")->st_mode & 07777, 02711u);
  EXPECT_EQ(Lstat(box.root() / "tmp")->st_mode & 07777, 01777u);
  EXPECT_EQ(Lstat(box.root() / "shared")->st_mode & 07777, 02775u);
}

TEST(UnpackApplyTest, DirectoryTimesAndModesAreAppliedAfterTheirChildren) {
  Sandbox box;
  MustApply(box, {WithMtime(Dir("./", 0751), 1111), WithMtime(Dir("a", 0555), 1000),
                  WithMtime(Dir("a/b", 0700), 2000), WithMtime(File("a/b/f", "x"), 3000),
                  WithMtime(File("a/g", "y"), 4000), WithMtime(Symlink("a/l", "g"), 5000)});
  EXPECT_EQ(Lstat(box.root() / "a")->st_mtime, 1000);
  EXPECT_EQ(Lstat(box.root() / "a")->st_mode & 07777, 0555u);
  EXPECT_EQ(Lstat(box.root() / "a/b")->st_mtime, 2000);
  EXPECT_EQ(Lstat(box.root() / "a/b/f")->st_mtime, 3000);
  EXPECT_EQ(Lstat(box.root() / "a/g")->st_mtime, 4000);
  EXPECT_EQ(Lstat(box.root() / "a/l")->st_mtime, 5000);
  EXPECT_EQ(Lstat(box.root())->st_mtime, 1111);
  EXPECT_EQ(Lstat(box.root())->st_mode & 07777, 0751u);
  fs::permissions(box.root() / "a", fs::perms::owner_all);  // let TempDir clean up
}

TEST(UnpackApplyTest, ALaterEntryForTheSameDirectoryWins) {
  Sandbox box;
  MustApply(box,
            {WithMtime(Dir("d", 0700), 1000), File("d/f", "x"), WithMtime(Dir("d", 0755), 2000)});
  EXPECT_EQ(Lstat(box.root() / "d")->st_mtime, 2000);
  EXPECT_EQ(Lstat(box.root() / "d")->st_mode & 07777, 0755u);
  EXPECT_EQ(ReadAll(box.root() / "d/f"), "x") << "a directory over a directory keeps its content";
}

TEST(UnpackApplyTest, UnprivilegedSetsUserXattrsOnlyAndNeverOverlayOnes) {
  Sandbox box;
  if (!testing::UserXattrsSupported(box.dir()))
    GTEST_SKIP() << "the file system under $TMPDIR has no user xattrs";
  TarEntry f = File("f", "x");
  f.xattrs = {{"user.mime", "text/plain"},
              {"trusted.secret", "1"},
              {"security.capability", std::string("\x01\x00\x00\x02", 4)},
              {"user.overlay.opaque", "y"}};
  TarEntry d = Dir("d");
  d.xattrs = {{"user.overlay.opaque", "y"}, {"user.tag", "dir"}};
  MustApply(box, {f, d});
  EXPECT_EQ(GetXattr(box.root() / "f", "user.mime"), "text/plain");
  EXPECT_FALSE(GetXattr(box.root() / "f", "trusted.secret"));
  EXPECT_FALSE(GetXattr(box.root() / "f", "security.capability"));
  EXPECT_FALSE(GetXattr(box.root() / "f", "user.overlay.opaque"));
  EXPECT_FALSE(GetXattr(box.root() / "d", "user.overlay.opaque"));
  EXPECT_EQ(GetXattr(box.root() / "d", "user.tag"), "dir");
}

TEST(UnpackApplyTest, UnprivilegedSkipsDevicesAndOwnership) {
  Sandbox box;
  TarEntry owned = File("owned", "x");
  owned.uid = 4242;
  owned.gid = 4343;
  auto r = box.Apply(Tar({Special(TarEntry::Type::kCharDev, "dev/null", 1, 3, 0666),
                          Special(TarEntry::Type::kBlockDev, "dev/loop0", 7, 0, 0660), owned}),
                     Unprivileged());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->skipped, 2);
  EXPECT_EQ(r->entries, 3);
  EXPECT_FALSE(Lstat(box.root() / "dev/null"));
  EXPECT_FALSE(Lstat(box.root() / "dev/loop0"));
  EXPECT_EQ(Lstat(box.root() / "owned")->st_uid, ::geteuid());
}

TEST(UnpackApplyTest, SparseFileKeepsItsHoles) {
  Sandbox box;
  const int64_t size = 64 << 20;
  const std::string a(4096, 'A'), b(5000, 'B');
  std::string tar = testing::SparseTar({Dir("d")}, "d/sparse", size, {{0, a}, {32 << 20, b}});
  auto r = box.Apply(tar, Unprivileged());
  ASSERT_TRUE(r) << r.error().message;
  auto st = Lstat(box.root() / "d/sparse");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->st_size, size);
  EXPECT_LT(st->st_blocks * 512, 4 << 20) << "holes were written out";
  auto fd = common::Open((box.root() / "d/sparse").string(), O_RDONLY);
  ASSERT_TRUE(fd);
  std::string buf(5000, '\0');
  ASSERT_EQ(::pread(fd->get(), buf.data(), 4096, 0), 4096);
  EXPECT_EQ(buf.substr(0, 4096), a);
  ASSERT_EQ(::pread(fd->get(), buf.data(), 5000, 32 << 20), 5000);
  EXPECT_EQ(buf, b);
  ASSERT_EQ(::pread(fd->get(), buf.data(), 100, 16 << 20), 100);
  EXPECT_EQ(buf.substr(0, 100), std::string(100, '\0'));
  ASSERT_EQ(::pread(fd->get(), buf.data(), 100, size - 100), 100);
  EXPECT_EQ(buf.substr(0, 100), std::string(100, '\0')) << "trailing hole";
}

TEST(UnpackApplyTest, SparseFileWithHugeApparentSizeHitsTheTotalLimit) {
  Sandbox box;
  std::string tar = testing::SparseTar({}, "huge", 64LL << 30, {{0, "tiny"}});
  auto r = box.Apply(tar, Unprivileged());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kResourceExhausted);
  EXPECT_NE(r.error().message.find("entry `huge`: files of the layer exceed the size limit"),
            std::string::npos)
      << r.error().message;
  EXPECT_FALSE(Lstat(box.root() / "huge"));
}

TEST(UnpackApplyTest, ReplacingEntriesOfAnotherType) {
  Sandbox box;
  MustApply(box, {File("file-then-dir", "x"), Dir("file-then-dir", 0711),
                  File("file-then-dir/inner", "in"), Dir("dir-then-file"),
                  File("dir-then-file/a/b", "deep"), File("dir-then-file", "flat"),
                  Symlink("link-then-dir", "/"), Dir("link-then-dir"), File("file-then-link", "x"),
                  Symlink("file-then-link", "target"), Dir("dir-then-link"),
                  File("dir-then-link/x", "x"), Symlink("dir-then-link", "/tmp")});
  EXPECT_TRUE(S_ISDIR(Lstat(box.root() / "file-then-dir")->st_mode));
  EXPECT_EQ(Lstat(box.root() / "file-then-dir")->st_mode & 07777, 0711u);
  EXPECT_EQ(ReadAll(box.root() / "file-then-dir/inner"), "in");
  EXPECT_EQ(ReadAll(box.root() / "dir-then-file"), "flat");
  EXPECT_TRUE(S_ISDIR(Lstat(box.root() / "link-then-dir")->st_mode));
  EXPECT_EQ(fs::read_symlink(box.root() / "file-then-link"), "target");
  EXPECT_EQ(fs::read_symlink(box.root() / "dir-then-link"), "/tmp");
  EXPECT_TRUE(box.Untouched());
}

TEST(UnpackApplyTest, OddButValidNamesKeepTheirBytes) {
  Sandbox box;
  const std::string long_name(255, 'n');
  std::string long_path;
  while (long_path.size() < 3800) long_path += std::string(200, 'p') + "/";
  long_path += "leaf";
  std::string tar;
  {
    // The fixture writer converts names from the locale to UTF-8; the
    // applier runs in the C locale, as gantry does (no setlocale anywhere),
    // where libarchive keeps the raw bytes.
    ScopedCtype utf8("C.UTF-8");
    tar = Tar({File("naïve-ü.txt", "utf8"), File("with space", "s"), File("back\\slash", "b"),
               File("new\nline", "nl"), File(long_name, "long"), File(long_path, "deep"),
               File(".hidden", "h"), File("..dots", "d"), File("a.wh.b", "not a whiteout"),
               Symlink("link-ü", "ziel-ß")});
  }
  auto r = box.Apply(tar, Unprivileged());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(ReadAll(box.root() / "naïve-ü.txt"), "utf8");
  EXPECT_EQ(ReadAll(box.root() / "with space"), "s");
  EXPECT_EQ(ReadAll(box.root() / "back\\slash"), "b");
  EXPECT_EQ(ReadAll(box.root() / "new\nline"), "nl");
  EXPECT_EQ(ReadAll(box.root() / long_name), "long");
  EXPECT_EQ(ReadAll(box.root() / long_path), "deep");
  EXPECT_EQ(ReadAll(box.root() / "..dots"), "d");
  EXPECT_EQ(ReadAll(box.root() / "a.wh.b"), "not a whiteout");
  EXPECT_EQ(fs::read_symlink(box.root() / "link-ü"), "ziel-ß");
}

class UnpackSymlinkedParentTest : public ::testing::TestWithParam<bool> {};

// Debian's usrmerge: lib -> usr/lib in a lower layer, a later layer
// writing lib/x86_64-linux-gnu/... must land in usr/lib, inside the root.
TEST_P(UnpackSymlinkedParentTest, IsFollowedInsideTheRoot) {
  Sandbox box;
  ApplyOptions o = Unprivileged(WhiteoutMode::kNative);
  o.use_openat2 = GetParam();
  MustApply(box,
            {Dir("usr"), Dir("usr/lib"), Symlink("lib", "usr/lib"), Symlink("lib64", "/usr/lib"),
             Symlink("usr/lib/up", "../../../../..")},
            o);
  MustApply(box,
            {File("lib/x86_64-linux-gnu/libc.so.6", "libc"), File("lib64/ld.so", "ld"),
             File("lib/up/usr/escaped", "kept inside"), Symlink("dangling", "usr/made/by/link"),
             File("dangling/f", "through a dangling link")},
            o);
  EXPECT_EQ(ReadAll(box.root() / "usr/lib/x86_64-linux-gnu/libc.so.6"), "libc");
  EXPECT_EQ(ReadAll(box.root() / "usr/lib/ld.so"), "ld");
  EXPECT_EQ(ReadAll(box.root() / "usr/escaped"), "kept inside");
  EXPECT_EQ(ReadAll(box.root() / "usr/made/by/link/f"), "through a dangling link");
  EXPECT_TRUE(S_ISLNK(Lstat(box.root() / "lib")->st_mode));
  EXPECT_TRUE(box.Untouched());
}

INSTANTIATE_TEST_SUITE_P(Resolvers, UnpackSymlinkedParentTest, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "openat2" : "walk"; });

// Small files are finished on a helper thread (ApplyOptions::file_thread):
// the tree is the same as when everything happens on the caller's thread,
// including the entries that act on a file still being finished (a hardlink
// to it, a replacement of its name, a whiteout of it), a file above the
// helper's size bound, and user xattrs.
TEST(UnpackApplyTest, FileThreadGivesTheSameTree) {
  std::vector<TarEntry> entries = {Dir("d/"),
                                   File("d/a", "alpha", 04755),
                                   File("d/b", "beta", 0600),
                                   Hardlink("d/a-link", "d/a"),
                                   File("d/b", "beta replaced", 0640),
                                   File("d/gone", "x"),
                                   File("d/.wh.gone", ""),
                                   File("big", std::string((1 << 20) + 17, 'z'))};
  for (int i = 0; i < 300; ++i)
    entries.push_back(WithMtime(
        File("many/f" + std::to_string(i), std::string(i * 7, 'q'), 0644 + (i % 2) * 0111),
        1700000000 + i));
  entries.insert(entries.begin() + 1, Dir("many/"));
  TarEntry x = File("d/x", "with xattr");
  x.xattrs["user.gantry.test"] = "v1";
  entries.push_back(x);

  std::map<std::string, std::string> trees[2];
  for (bool threaded : {false, true}) {
    Sandbox box;
    ApplyOptions o = Unprivileged(WhiteoutMode::kNative);
    o.file_thread = threaded;
    auto r = box.Apply(Tar(entries), o);
    ASSERT_TRUE(r) << r.error().message;
    const bool xattrs = testing::UserXattrsSupported(box.dir());
    trees[threaded] =
        testing::Tree(box.root(), xattrs ? std::vector<std::string>{"user.gantry.test"}
                                         : std::vector<std::string>{});
    auto a = Lstat(box.root() / "d/a"), link = Lstat(box.root() / "d/a-link");
    ASSERT_TRUE(a && link);
    EXPECT_EQ(a->st_ino, link->st_ino);
    EXPECT_EQ(ReadAll(box.root() / "d/b"), "beta replaced");
    EXPECT_FALSE(Lstat(box.root() / "d/gone"));
    auto f9 = Lstat(box.root() / "many/f9");
    ASSERT_TRUE(f9);
    EXPECT_EQ(f9->st_mtim.tv_sec, 1700000009);
    EXPECT_EQ(f9->st_mode & 07777, 0755u);
  }
  EXPECT_EQ(trees[0], trees[1]);
  EXPECT_EQ(trees[1].size(), 307u) << "d, 5 files in d (with the link), big, many, 300 files";
}

// With several file helpers (ApplyOptions::file_threads) small files are
// created on them too. Held until the applier waits for them
// (hold_file_helpers), every file is created as late as the bounds allow:
// an entry that acts on a name a helper has yet to create must wait for
// it, or the tree differs from the one the caller's thread alone makes.
struct OrderCase {
  const char* name;
  std::vector<TarEntry> entries;
};

void PrintTo(const OrderCase& c, std::ostream* os) { *os << c.name; }

TarEntry Fifo(std::string path) {
  TarEntry e;
  e.type = TarEntry::Type::kFifo;
  e.path = std::move(path);
  return e;
}

std::vector<OrderCase> OrderCases() {
  std::vector<OrderCase> cases = {
      {"HardlinkToAFileStillToBeWritten",
       {Dir("d/"), File("d/a", "alpha", 0755), Hardlink("d/a-link", "d/a"), File("d/z", "z")}},
      // The target named through a symlinked directory: the same file.
      {"HardlinkThroughASymlinkedDirectory",
       {Dir("a/"), Dir("a/b/"), Symlink("l", "a/b"), File("l/f", "eff"), Hardlink("h", "a/b/f")}},
      {"TheSameFileTwice", {File("b", "one", 0600), File("b", "two", 0644)}},
      {"AFileThenADirectoryOfTheSameName",
       {File("x", "file first"), Dir("x/"), File("x/y", "inside")}},
      {"AFileThenASymlinkOfTheSameName", {File("s", "file first"), Symlink("s", "target")}},
      {"AFileThenAFifoOfTheSameName", {File("p", "file first"), Fifo("p")}},
      {"AWhiteoutOfAFileOfThisLayer",
       {Dir("d/"), File("d/gone", "x"), fixtures::Whiteout("d/gone"), File("d/kept", "k")}},
  };
  OrderCase deep{"DeepDirectories", {}};
  std::string path;
  for (int i = 0; i < 40; ++i) {
    path += "d" + std::to_string(i) + "/";
    deep.entries.push_back(Dir(path));
    deep.entries.push_back(File(path + "f", "level " + std::to_string(i)));
    deep.entries.push_back(File(path + "g", std::string(i * 100, 'g'), 0600));
  }
  deep.entries.push_back(Hardlink("top-link", path + "f"));
  deep.entries.push_back(File("d0/f", "replaced at the top"));
  cases.push_back(std::move(deep));
  return cases;
}

class FileHelpersOrderTest : public ::testing::TestWithParam<OrderCase> {};

TEST_P(FileHelpersOrderTest, SameTreeAsOneThread) {
  const OrderCase& c = GetParam();
  std::map<std::string, std::string> want;
  {
    Sandbox box;
    // Every machine the suite runs on (root, or Linux >= 5.8) can make the
    // 0/0 character device of a whiteout: a failure here is a finding.
    const bool has_whiteout =
        std::any_of(c.entries.begin(), c.entries.end(),
                    [](const TarEntry& e) { return e.path.find(".wh.") != std::string::npos; });
    if (has_whiteout) {
      ASSERT_TRUE(testing::CanCreateWhiteouts(box.dir()))
          << "mknod of a whiteout (0/0 character device) refused in " << box.dir();
    }
    ApplyOptions o = Unprivileged();
    o.file_thread = false;
    auto r = box.Apply(Tar(c.entries), o);
    ASSERT_TRUE(r) << r.error().message;
    want = testing::Tree(box.root());
  }
  ASSERT_FALSE(want.empty());
  for (int threads : {2, 3}) {
    for (bool hold : {true, false}) {
      Sandbox box;
      ApplyOptions o = Unprivileged();
      o.file_threads = threads;
      o.hold_file_helpers = hold;
      auto r = box.Apply(Tar(c.entries), o);
      ASSERT_TRUE(r) << "threads=" << threads << " hold=" << hold << ": " << r.error().message;
      EXPECT_EQ(testing::Tree(box.root()), want) << "threads=" << threads << " hold=" << hold;
      EXPECT_TRUE(box.Untouched());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, FileHelpersOrderTest, ::testing::ValuesIn(OrderCases()),
                         [](const auto& p) { return std::string(p.param.name); });

// The helpers create many files across directories, with their modes and
// times, as the caller's thread does.
TEST(UnpackApplyTest, FileHelpersCreateTheSameFiles) {
  std::vector<TarEntry> entries;
  for (int d = 0; d < 20; ++d) {
    entries.push_back(Dir("dir" + std::to_string(d) + "/"));
    for (int i = 0; i < 60; ++i)
      entries.push_back(
          WithMtime(File("dir" + std::to_string(d) + "/f" + std::to_string(i),
                         std::string((d * 60 + i) % 5000, 'a' + i % 26), 0600 + (i % 3) * 0044),
                    1700000000 + i));
  }
  std::map<std::string, std::string> trees[2];
  for (bool helpers : {false, true}) {
    Sandbox box;
    ApplyOptions o = Unprivileged();
    o.file_threads = helpers ? 3 : 1;
    auto r = box.Apply(Tar(entries), o);
    ASSERT_TRUE(r) << r.error().message;
    trees[helpers] = testing::Tree(box.root());
  }
  EXPECT_EQ(trees[0], trees[1]);
  EXPECT_EQ(trees[1].size(), 20u * 61);
}

// An error while a file is finished on the helper thread fails the apply
// with that file's name, not the name of the entry being read meanwhile.
TEST(UnpackApplyTest, FileThreadErrorNamesItsFile) {
  // Writes beyond RLIMIT_FSIZE fail with EFBIG (SIGXFSZ ignored).
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  for (bool threaded : {false, true}) {
    Sandbox box;
    std::string tar = Tar(
        {File("small", "ok"), File("toobig", std::string(64 * 1024, 'x')), File("after", "fine")});
    ApplyOptions o = Unprivileged();
    o.file_thread = threaded;
    struct rlimit lim = old;
    lim.rlim_cur = 16 * 1024;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
    auto r = box.Apply(tar, o);
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
    ASSERT_FALSE(r) << "threaded=" << threaded;
    EXPECT_NE(r.error().message.find("entry `toobig`: write"), std::string::npos)
        << "threaded=" << threaded << ": " << r.error().message;
    EXPECT_EQ(r.error().message.find("`after`"), std::string::npos) << r.error().message;
    EXPECT_TRUE(box.Untouched());
  }
  std::signal(SIGXFSZ, old_handler);
}

TEST(UnpackApplyTest, RootMayBeAnODirectoryFd) {
  Sandbox box;
  auto fd = common::Open(box.root().string(), O_RDONLY | O_DIRECTORY);
  ASSERT_TRUE(fd);
  testing::ChunkedSource src(Tar({File("f", "x")}));
  auto r = ApplyLayer(src, fd->get(), Unprivileged());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(ReadAll(box.root() / "f"), "x");
}

TEST(UnpackApplyTest, RootThatIsNotADirectoryIsRefused) {
  Sandbox box;
  auto fd = common::Open(box.canary().string(), O_RDONLY);
  ASSERT_TRUE(fd);
  testing::ChunkedSource src(Tar({File("f", "x")}));
  auto r = ApplyLayer(src, fd->get(), Unprivileged());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
}

}  // namespace
}  // namespace unpack
