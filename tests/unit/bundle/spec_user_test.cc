// Users of a spec: runc's resolution of "user[:group]" through the image's
// /etc/passwd and /etc/group, and reading those files from a hostile
// rootfs without ever leaving it.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bundle/spec.h"
#include "bundle/spec_internal.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/userdb.h"

namespace bundle {
namespace {

namespace fs = std::filesystem;
using common::Errc;

constexpr char kPasswd[] =
    "# comment\n"
    "root:x:0:0:root:/root:/bin/sh\n"
    "\n"
    "daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
    "app:x:1000:1000:app:/home/app:/bin/sh\n"
    "broken-line-without-ids\n"
    "bad:x:notanumber:1::/:/bin/sh\n"
    "+nis\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    "crlf:x:2000:2000::/:/bin/sh\r\n";
constexpr char kGroup[] =
    "root:x:0:\n"
    "adm:x:4:root,daemon\n"
    "wheel:x:10:app,root\n"
    "app:x:1000:\n"
    "audio:x:29:app,app\n"
    "staff:x:50:nobody\n"
    "junk:x:oops:app\n"
    "nogroup:x:65534:\n";

class SpecUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("gantry-spec-user");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    rootfs_ = dir_.path() / "rootfs";
    outside_ = dir_.path() / "outside";
    ASSERT_TRUE(common::MkdirAll(rootfs_ / "etc"));
    ASSERT_TRUE(common::MkdirAll(outside_));
    // What a breakout would read: a user "evil" that exists only outside.
    ASSERT_TRUE(common::AtomicWriteFile(outside_ / "passwd", "evil:x:4242:4242::/:/bin/sh\n"));
    ASSERT_TRUE(common::AtomicWriteFile(outside_ / "group", "evilgrp:x:4343:app\n"));
  }

  void WriteDefaults() {
    ASSERT_TRUE(common::AtomicWriteFile(rootfs_ / "etc/passwd", kPasswd));
    ASSERT_TRUE(common::AtomicWriteFile(rootfs_ / "etc/group", kGroup));
  }

  common::TempDir dir_;
  fs::path rootfs_, outside_;
};

struct UserCase {
  const char* name;
  const char* user;
  uint32_t uid, gid;
  std::vector<uint32_t> additional;
};

class SpecUserTable : public SpecUserTest, public ::testing::WithParamInterface<UserCase> {};

TEST_P(SpecUserTable, ResolvesLikeRunc) {
  ASSERT_NO_FATAL_FAILURE(WriteDefaults());
  const UserCase& c = GetParam();
  auto u = ResolveUser(c.user, rootfs_);
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->uid, c.uid);
  EXPECT_EQ(u->gid, c.gid);
  EXPECT_EQ(u->additional_gids, c.additional);
}

INSTANTIATE_TEST_SUITE_P(
    SpecTable, SpecUserTable,
    ::testing::Values(UserCase{"EmptyIsRootWithItsGroups", "", 0, 0, {4, 10}},
                      UserCase{"RootByName", "root", 0, 0, {4, 10}},
                      UserCase{"Name", "app", 1000, 1000, {10, 29}},
                      UserCase{"UidWithEntry", "1000", 1000, 1000, {10, 29}},
                      UserCase{"UidWithoutEntry", "4242", 4242, 0, {}},
                      UserCase{"UidGid", "1000:1000", 1000, 1000, {}},
                      UserCase{"UidGidWithoutEntries", "4242:4343", 4242, 4343, {}},
                      UserCase{"NameGroup", "app:wheel", 1000, 10, {}},
                      UserCase{"UidGroup", "1000:wheel", 1000, 10, {}},
                      UserCase{"NameGid", "app:50", 1000, 50, {}},
                      UserCase{"GroupOnly", ":wheel", 0, 10, {}},
                      UserCase{"EmptyGroupIsNoGroup", "app:", 1000, 1000, {10, 29}},
                      UserCase{"NobodyInStaff", "nobody", 65534, 65534, {50}},
                      UserCase{"CrlfLine", "crlf", 2000, 2000, {}},
                      UserCase{"MaxId", "2147483647:2147483647", 2147483647u, 2147483647u, {}},
                      UserCase{"DaemonInAdm", "daemon", 1, 1, {4}}),
    [](const auto& p) { return std::string(p.param.name); });

struct BadUserCase {
  const char* name;
  const char* user;
  std::vector<std::string> message_has;
};

class SpecUserErrors : public SpecUserTest, public ::testing::WithParamInterface<BadUserCase> {};

TEST_P(SpecUserErrors, InvalidArgumentNamingWhatIsWrong) {
  ASSERT_NO_FATAL_FAILURE(WriteDefaults());
  const BadUserCase& c = GetParam();
  auto u = ResolveUser(c.user, rootfs_);
  ASSERT_FALSE(u) << c.user << " resolved to " << u->uid;
  EXPECT_EQ(u.error().code, Errc::kInvalidArgument) << u.error().message;
  for (const auto& s : c.message_has)
    EXPECT_NE(u.error().message.find(s), std::string::npos) << u.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    SpecTable, SpecUserErrors,
    ::testing::Values(BadUserCase{"UnknownName", "ghost", {"`ghost`", "/etc/passwd"}},
                      BadUserCase{"UnknownGroup", "app:ghosts", {"`ghosts`", "/etc/group"}},
                      BadUserCase{"UnknownNameWithGid", "ghost:10", {"`ghost`", "/etc/passwd"}},
                      BadUserCase{"NameOfBrokenLine", "bad", {"`bad`", "/etc/passwd"}},
                      BadUserCase{"UidOutOfRange", "2147483648", {"out of range"}},
                      BadUserCase{"HugeUid", "99999999999999999999", {"out of range"}},
                      BadUserCase{"GidOutOfRange", "0:4294967296", {"out of range"}},
                      BadUserCase{"NegativeLooksLikeAName", "-1", {"`-1`", "/etc/passwd"}}),
    [](const auto& p) { return std::string(p.param.name); });

TEST_F(SpecUserTest, WithoutPasswdOnlyNumericUsersResolve) {
  auto root = ResolveUser("", rootfs_);
  ASSERT_TRUE(root) << root.error().message;
  EXPECT_EQ(root->uid, 0u);
  auto num = ResolveUser("1000:1000", rootfs_);
  ASSERT_TRUE(num) << num.error().message;
  EXPECT_EQ(num->gid, 1000u);
  auto name = ResolveUser("app", rootfs_);
  ASSERT_FALSE(name);
  EXPECT_EQ(name.error().code, Errc::kInvalidArgument);
  EXPECT_NE(name.error().message.find("has no /etc/passwd"), std::string::npos)
      << name.error().message;
}

// --- hostile rootfs --------------------------------------------------------------

// Every hostile layout is read by both resolvers: openat2(RESOLVE_IN_ROOT)
// and the component walk used where openat2 is unavailable.
class SpecHostileRootfs : public SpecUserTest, public ::testing::WithParamInterface<bool> {
 protected:
  common::Result<std::optional<std::string>> Read(const std::string& rel = "etc/passwd") {
    return internal::ReadRootfsFile(rootfs_, rel, /*use_openat2=*/GetParam());
  }
  void Link(const std::string& target, const fs::path& at) {
    std::error_code ec;
    fs::create_symlink(target, rootfs_ / at, ec);
    ASSERT_FALSE(ec) << ec.message();
  }
};

TEST_P(SpecHostileRootfs, AbsoluteSymlinkToHostShadowIsResolvedInsideTheRootfs) {
  ASSERT_NO_FATAL_FAILURE(Link("/etc/shadow", "etc/passwd"));
  // The rootfs has no etc/shadow: nothing is read, the host's never.
  auto r = Read();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->has_value()) << **r;
  // With an etc/shadow of its own, that one is what is read.
  ASSERT_TRUE(common::AtomicWriteFile(rootfs_ / "etc/shadow", "app:x:1234:1234::/:/bin/sh\n"));
  r = Read();
  ASSERT_TRUE(r && r->has_value());
  EXPECT_EQ(**r, "app:x:1234:1234::/:/bin/sh\n");
}

TEST_P(SpecHostileRootfs, AbsoluteSymlinkOutsideDoesNotEscape) {
  ASSERT_NO_FATAL_FAILURE(Link((outside_ / "passwd").string(), "etc/passwd"));
  auto r = Read();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->has_value()) << **r;
}

TEST_P(SpecHostileRootfs, DotDotSymlinkIsClampedAtTheRoot) {
  // ../../../../../<outside>/passwd from etc/: the ".."s stop at the rootfs.
  std::string up;
  for (int i = 0; i < 20; ++i) up += "../";
  ASSERT_NO_FATAL_FAILURE(Link(up + (outside_ / "passwd").relative_path().string(), "etc/passwd"));
  auto r = Read();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->has_value()) << **r;
}

TEST_P(SpecHostileRootfs, SymlinkedEtcDirectoryDoesNotEscape) {
  ASSERT_TRUE(fs::remove(rootfs_ / "etc"));
  ASSERT_NO_FATAL_FAILURE(Link(outside_.string(), "etc"));
  auto r = Read();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->has_value()) << **r;
}

TEST_P(SpecHostileRootfs, SymlinksInsideTheRootfsAreFollowed) {
  ASSERT_TRUE(common::MkdirAll(rootfs_ / "usr/lib"));
  ASSERT_TRUE(common::AtomicWriteFile(rootfs_ / "usr/lib/passwd", "x:x:7:7::/:/bin/sh\n"));
  for (const char* target : {"/usr/lib/passwd", "../usr/lib/passwd", "../../../../usr/lib/passwd",
                             "/usr/../usr/lib/./passwd"}) {
    fs::remove(rootfs_ / "etc/passwd");
    ASSERT_NO_FATAL_FAILURE(Link(target, "etc/passwd"));
    auto r = Read();
    ASSERT_TRUE(r) << target << ": " << r.error().message;
    ASSERT_TRUE(r->has_value()) << target;
    EXPECT_EQ(**r, "x:x:7:7::/:/bin/sh\n") << target;
  }
}

TEST_P(SpecHostileRootfs, FifoIsRefusedWithoutBlocking) {
  ASSERT_EQ(::mkfifo((rootfs_ / "etc/passwd").c_str(), 0644), 0);
  auto r = Read();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find("not a regular file"), std::string::npos) << r.error().message;
}

TEST_P(SpecHostileRootfs, DirectoryIsRefused) {
  ASSERT_TRUE(common::MkdirAll(rootfs_ / "etc/passwd"));
  auto r = Read();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
}

TEST_P(SpecHostileRootfs, OversizedFileIsRefused) {
  {
    auto fd = common::Open((rootfs_ / "etc/passwd").string(), O_WRONLY | O_CREAT, 0644);
    ASSERT_TRUE(fd);
    ASSERT_EQ(::ftruncate(fd->get(), common::kMaxUserFileSize + 1), 0);  // sparse
  }
  auto r = Read();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find("larger than"), std::string::npos) << r.error().message;
}

TEST_P(SpecHostileRootfs, SymlinkLoopIsRefused) {
  ASSERT_NO_FATAL_FAILURE(Link("loop2", "etc/passwd"));
  ASSERT_NO_FATAL_FAILURE(Link("passwd", "etc/loop2"));
  auto r = Read();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << r.error().message;
}

TEST_P(SpecHostileRootfs, FileUsedAsDirectoryIsRefused) {
  ASSERT_TRUE(fs::remove(rootfs_ / "etc"));
  ASSERT_TRUE(common::AtomicWriteFile(rootfs_ / "etc", "not a dir\n"));
  auto r = Read();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << r.error().message;
}

TEST_P(SpecHostileRootfs, MissingFileIsAbsent) {
  auto r = Read("etc/nothing-here");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->has_value());
}

INSTANTIATE_TEST_SUITE_P(SpecResolvers, SpecHostileRootfs, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "Openat2" : "Walk"; });

TEST_F(SpecUserTest, HostilePasswdSymlinkNeverResolvesAHostUser) {
  // End to end through ResolveUser: a user that exists only outside.
  fs::create_symlink(outside_ / "passwd", rootfs_ / "etc/passwd");
  fs::create_symlink("../../../../../../../../" + (outside_ / "group").relative_path().string(),
                     rootfs_ / "etc/group");
  auto u = ResolveUser("evil", rootfs_);
  ASSERT_FALSE(u) << "read the host's file: uid " << u->uid;
  EXPECT_EQ(u.error().code, Errc::kInvalidArgument);
  auto g = ResolveUser("0:evilgrp", rootfs_);
  ASSERT_FALSE(g) << "read the host's file: gid " << g->gid;
  EXPECT_EQ(g.error().code, Errc::kInvalidArgument);
}

TEST(SpecUserFormats, ParsePasswdSkipsWhatLibcSkips) {
  auto p = common::ParsePasswd(kPasswd);
  std::vector<std::string> names;
  for (const auto& e : p) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"root", "daemon", "app", "nobody", "crlf"}));
  EXPECT_EQ(p[2].home, "/home/app");
}

TEST(SpecUserFormats, ParseGroupMembers) {
  auto g = common::ParseGroup(kGroup);
  ASSERT_EQ(g.size(), 7u);  // "junk" has no numeric gid
  EXPECT_EQ(g[1].name, "adm");
  EXPECT_EQ(g[1].members, (std::vector<std::string>{"root", "daemon"}));
  EXPECT_TRUE(g[0].members.empty());
}

TEST(SpecUserFormats, ParseIdRange) {
  EXPECT_EQ(common::ParseUserId("0"), 0u);
  EXPECT_EQ(common::ParseUserId("2147483647"), 2147483647u);
  EXPECT_FALSE(common::ParseUserId("2147483648"));
  EXPECT_FALSE(common::ParseUserId(""));
  EXPECT_FALSE(common::ParseUserId("-1"));
  EXPECT_FALSE(common::ParseUserId("1x"));
}

}  // namespace
}  // namespace bundle
