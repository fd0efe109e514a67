// What needs root: ownership, device nodes, trusted.* and security.*
// xattrs, overlay whiteouts and opaque directories as overlayfs reads them,
// and an overlay mount of the fixture layers compared with the native
// rootfs. Every test skips with a reason when not root.

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/fd.h"
#include "fixtures/require.h"
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
using oci::Compression;
using testing::GetXattr;
using testing::IsOverlayWhiteout;
using testing::Lstat;
using testing::ReadAll;
using testing::Sandbox;
using testing::Tar;

ApplyOptions Privileged(WhiteoutMode mode = WhiteoutMode::kOverlay) {
  ApplyOptions o;
  o.compression = Compression::kNone;
  o.whiteouts = mode;
  o.privileged = true;
  return o;
}

TarEntry Owned(TarEntry e, uid_t uid, gid_t gid) {
  e.uid = uid;
  e.gid = gid;
  return e;
}

TarEntry Node(TarEntry::Type type, std::string path, unsigned major, unsigned minor, mode_t mode) {
  TarEntry e;
  e.type = type;
  e.path = std::move(path);
  e.mode = mode;
  e.dev_major = major;
  e.dev_minor = minor;
  return e;
}

// struct vfs_cap_data revision 2: cap_net_bind_service effective+permitted.
std::string CapNetBindService() {
  const uint32_t words[5] = {0x02000001, 1u << 10, 0, 0, 0};
  std::string out;
  for (uint32_t w : words)
    for (int shift = 0; shift < 32; shift += 8)
      out.push_back(static_cast<char>((w >> shift) & 0xff));
  return out;
}

class UnpackRootTest : public ::testing::Test {
 protected:
  void SetUp() override { REQUIRE_ROOT("chown, mknod, trusted.* xattrs, mounts"); }

  void MustApply(const std::vector<TarEntry>& entries, ApplyOptions o = Privileged()) {
    auto r = box_.Apply(Tar(entries), o);
    ASSERT_TRUE(r) << r.error().message;
  }

  Sandbox box_;
};

TEST_F(UnpackRootTest, OwnershipIsAppliedWithoutFollowingSymlinks) {
  struct stat passwd {};
  ASSERT_EQ(::stat("/etc/passwd", &passwd), 0);
  TarEntry fifo = Node(TarEntry::Type::kFifo, "fifo", 0, 0, 0640);
  MustApply({Owned(File("f", "x", 0640), 1000, 1001), Owned(Dir("d", 0750), 1002, 1003),
             Owned(Symlink("s", "/etc/passwd"), 1234, 1235), Owned(fifo, 7, 8)});
  EXPECT_EQ(Lstat(box_.root() / "f")->st_uid, 1000u);
  EXPECT_EQ(Lstat(box_.root() / "f")->st_gid, 1001u);
  EXPECT_EQ(Lstat(box_.root() / "d")->st_uid, 1002u);
  EXPECT_EQ(Lstat(box_.root() / "d")->st_mode & 07777, 0750u);
  EXPECT_EQ(Lstat(box_.root() / "s")->st_uid, 1234u);
  EXPECT_EQ(Lstat(box_.root() / "fifo")->st_gid, 8u);
  struct stat after {};
  ASSERT_EQ(::stat("/etc/passwd", &after), 0);
  EXPECT_EQ(after.st_uid, passwd.st_uid);
  EXPECT_EQ(after.st_ctim.tv_sec, passwd.st_ctim.tv_sec);
}

TEST_F(UnpackRootTest, SetuidAndSetgidSurviveChown) {
  MustApply({Owned(File("suid", "x", 04755), 1000, 1000), Owned(File("sgid", "x", 02755), 0, 50),
             Owned(Dir("sgid-dir", 02775), 1000, 50)});
  EXPECT_EQ(Lstat(box_.root() / "suid")->st_mode & 07777, 04755u);
  EXPECT_EQ(Lstat(box_.root() / "suid")->st_uid, 1000u);
  EXPECT_EQ(Lstat(box_.root() / "sgid")->st_mode & 07777, 02755u);
  EXPECT_EQ(Lstat(box_.root() / "sgid-dir")->st_mode & 07777, 02775u);
}

// Files are created with their entry's permission bits and chowned or
// chmodded only when that changes something: what the umask took, another
// owner or group, setuid, small files (file thread) and large ones alike.
TEST_F(UnpackRootTest, NewFilesGetTheirModesAndOwnersWhateverTheUmask) {
  const mode_t old_umask = ::umask(027);
  const std::string big(3 << 20, 'b');  // beyond kSmallFileBytes: written by the applier
  auto r = box_.Apply(
      Tar({File("all", "x", 0777), File("none", "x", 0), File("plain", "x", 0644),
           Owned(File("group", "x", 0664), 0, 50), Owned(File("user", "x", 0600), 1000, 0),
           Owned(File("suid-root", "x", 04711), 0, 0),
           Owned(File("big-all", big, 0777), 1000, 1001), File("big-plain", big, 0644)}),
      Privileged());
  ::umask(old_umask);
  ASSERT_TRUE(r) << r.error().message;
  const struct {
    const char* name;
    mode_t mode;
    uid_t uid;
    gid_t gid;
  } want[] = {{"all", 0777, 0, 0},           {"none", 0, 0, 0},        {"plain", 0644, 0, 0},
              {"group", 0664, 0, 50},        {"user", 0600, 1000, 0},  {"suid-root", 04711, 0, 0},
              {"big-all", 0777, 1000, 1001}, {"big-plain", 0644, 0, 0}};
  for (const auto& w : want) {
    auto st = Lstat(box_.root() / w.name);
    ASSERT_TRUE(st) << w.name;
    EXPECT_EQ(st->st_mode & 07777, w.mode) << w.name;
    EXPECT_EQ(st->st_uid, w.uid) << w.name;
    EXPECT_EQ(st->st_gid, w.gid) << w.name;
  }
  EXPECT_EQ(ReadAll(box_.root() / "big-all"), big);
}

TEST_F(UnpackRootTest, DeviceNodesAreCreated) {
  MustApply({Node(TarEntry::Type::kCharDev, "dev/null", 1, 3, 0666),
             Owned(Node(TarEntry::Type::kBlockDev, "dev/loop0", 7, 0, 0660), 0, 6)});
  auto null = Lstat(box_.root() / "dev/null");
  ASSERT_TRUE(null);
  EXPECT_TRUE(S_ISCHR(null->st_mode));
  EXPECT_EQ(null->st_rdev, makedev(1, 3));
  EXPECT_EQ(null->st_mode & 07777, 0666u);
  auto loop = Lstat(box_.root() / "dev/loop0");
  ASSERT_TRUE(loop);
  EXPECT_TRUE(S_ISBLK(loop->st_mode));
  EXPECT_EQ(loop->st_rdev, makedev(7, 0));
  EXPECT_EQ(loop->st_gid, 6u);
}

TEST_F(UnpackRootTest, CapabilitiesAndTrustedXattrsSurviveChownAndData) {
  TarEntry f = Owned(File("ping", std::string(100000, 'p'), 04755), 1000, 1000);
  f.xattrs = {{"security.capability", CapNetBindService()}, {"trusted.note", "t"}, {"user.u", "u"}};
  MustApply({f});
  EXPECT_EQ(GetXattr(box_.root() / "ping", "security.capability"), CapNetBindService());
  EXPECT_EQ(GetXattr(box_.root() / "ping", "trusted.note"), "t");
  EXPECT_EQ(GetXattr(box_.root() / "ping", "user.u"), "u");
  EXPECT_EQ(Lstat(box_.root() / "ping")->st_mode & 07777, 04755u);
}

TEST_F(UnpackRootTest, OverlayAttributesAreNeverTakenFromTheLayer) {
  TarEntry d = Dir("d");
  d.xattrs = {{"trusted.overlay.opaque", "y"}, {"trusted.overlay.redirect", "/etc"}};
  TarEntry f = File("f", "x");
  f.xattrs = {{"trusted.overlay.metacopy", ""}, {"trusted.overlay.origin", "x"}};
  MustApply({d, f});
  EXPECT_FALSE(GetXattr(box_.root() / "d", "trusted.overlay.opaque"));
  EXPECT_FALSE(GetXattr(box_.root() / "d", "trusted.overlay.redirect"));
  EXPECT_FALSE(GetXattr(box_.root() / "f", "trusted.overlay.metacopy"));
  EXPECT_FALSE(GetXattr(box_.root() / "f", "trusted.overlay.origin"));
}

TEST_F(UnpackRootTest, OverlayWhiteoutsAndOpaqueDirectories) {
  MustApply({Whiteout("gone"), Dir("d"), File("d/early", "e"), OpaqueMarker("d"),
             File("d/late", "l"), Whiteout("b"), Dir("b"), File("b/new", "n")});
  EXPECT_TRUE(IsOverlayWhiteout(box_.root() / "gone"));
  EXPECT_EQ(Lstat(box_.root() / "gone")->st_uid, 0u);
  EXPECT_EQ(GetXattr(box_.root() / "d", "trusted.overlay.opaque"), "y");
  EXPECT_EQ(ReadAll(box_.root() / "d/early"), "e");
  EXPECT_EQ(GetXattr(box_.root() / "b", "trusted.overlay.opaque"), "y")
      << "a directory replacing a whiteout hides the lower one";
  EXPECT_FALSE(Lstat(box_.root() / "d/.wh..wh..opq"));
}

class UnpackFixtureRootTest : public UnpackRootTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(UnpackRootTest::SetUp());
    REQUIRE_BUSYBOX();
    auto layout = common::TempDir::Create("unpack-layout");
    ASSERT_TRUE(layout) << layout.error().message;
    layout_ = std::move(*layout);
    auto image = fixtures::WriteImage(layout_.path(), fixtures::FixtureImageSpec(), "t");
    ASSERT_TRUE(image) << image.error().message;
    image_ = std::move(*image);
  }

  void ApplyAll(const Sandbox& box, WhiteoutMode mode) {
    for (size_t i = 0; i < image_.layers.size(); ++i) {
      auto r = testing::ApplyLayoutBlob(layout_.path(), image_.layers[i], image_.diff_ids[i],
                                        box.root_fd(), Privileged(mode));
      ASSERT_TRUE(r) << "layer " << i + 1 << ": " << r.error().message;
      EXPECT_EQ(r->skipped, 0);
    }
  }

  common::TempDir layout_;
  fixtures::BuiltImage image_;
};

TEST_F(UnpackFixtureRootTest, NativeRootfsHasDevicesOwnersAndCapabilities) {
  ApplyAll(box_, WhiteoutMode::kNative);
  const fs::path root = box_.root();
  auto null = Lstat(root / "dev/null-copy");
  ASSERT_TRUE(null);
  EXPECT_TRUE(S_ISCHR(null->st_mode));
  EXPECT_EQ(null->st_rdev, makedev(1, 3));
  EXPECT_EQ(null->st_mode & 07777, 0666u);
  EXPECT_EQ(GetXattr(root / "usr/bin/cap-test", "security.capability")->size(), 20u);
  EXPECT_EQ(GetXattr(root / "usr/bin/cap-test", "user.fixture"), "1");
  EXPECT_EQ(Lstat(root / "home/app")->st_uid, 1000u);
  EXPECT_EQ(Lstat(root / "home/app/.profile")->st_gid, 1000u);
  EXPECT_EQ(Lstat(root / "usr/bin/su-test")->st_mode & 07777, 04755u);
  EXPECT_TRUE(fs::is_empty(root / "etc/old"));
  EXPECT_TRUE(fs::is_empty(root / "etc/conf"));
  EXPECT_EQ(Lstat(root / "usr/lib/lib-a")->st_ino, Lstat(root / "usr/lib/lib-b")->st_ino);
}

// The overlay layer directories, mounted the way the snapshotter will,
// must show exactly the native rootfs.
TEST_F(UnpackFixtureRootTest, OverlayMountOfTheLayersEqualsTheNativeRootfs) {
  ApplyAll(box_, WhiteoutMode::kNative);
  std::vector<std::unique_ptr<Sandbox>> layers;
  std::string lowerdir;
  for (size_t i = 0; i < image_.layers.size(); ++i) {
    layers.push_back(std::make_unique<Sandbox>());
    auto r = testing::ApplyLayoutBlob(layout_.path(), image_.layers[i], image_.diff_ids[i],
                                      layers.back()->root_fd(), Privileged(WhiteoutMode::kOverlay));
    ASSERT_TRUE(r) << "layer " << i + 1 << ": " << r.error().message;
    lowerdir = layers.back()->root().string() + (lowerdir.empty() ? "" : ":") + lowerdir;
  }
  auto mnt = common::TempDir::Create("unpack-mnt");
  ASSERT_TRUE(mnt);
  auto guard =
      common::Mount("overlay", mnt->path().string(), "overlay", MS_RDONLY, "lowerdir=" + lowerdir);
  REQUIRE_OVERLAYFS(guard, (guard ? "" : guard.error().message));
  const std::vector<std::string> xattrs = {"user.fixture", "security.capability"};
  auto merged = testing::Tree(mnt->path(), xattrs);
  auto native = testing::Tree(box_.root(), xattrs);
  EXPECT_EQ(merged, native);
  EXPECT_GT(native.size(), 50u);
  ASSERT_TRUE(guard->Unmount());
}

}  // namespace
}  // namespace unpack
