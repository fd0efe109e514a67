// The table of hostile tars: every case runs with openat2 and with the
// portable walk, and must leave everything outside the root unchanged.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <functional>
#include <optional>

#include "common/digest.h"
#include "unit/unpack/test_util.h"

namespace unpack {
namespace {

namespace fs = std::filesystem;
using common::Errc;
using fixtures::Dir;
using fixtures::File;
using fixtures::Hardlink;
using fixtures::OpaqueMarker;
using fixtures::Symlink;
using fixtures::TarEntry;
using fixtures::Whiteout;
using testing::Lstat;
using testing::ReadAll;
using testing::Sandbox;
using testing::Tar;

// Outside every sandbox; no case may create it.
constexpr char kEscapePath[] = "/tmp/gantry-unpack-escape";

TarEntry RawWhiteout(std::string path) { return File(std::move(path), ""); }

TarEntry CharDev(std::string path) {
  TarEntry e;
  e.type = TarEntry::Type::kCharDev;
  e.path = std::move(path);
  e.mode = 0666;
  e.dev_major = 1;
  e.dev_minor = 3;
  return e;
}

struct HostileCase {
  std::string name;
  std::vector<TarEntry> entries;
  // Expected error code and a substring of the message (or, starting with
  // '=', the exact message); no code means the apply succeeds.
  std::optional<Errc> code;
  std::string message;
  std::function<void(const fs::path& root)> check;
  WhiteoutMode mode = WhiteoutMode::kOverlay;
  Limits limits;
};

// Parameter names in failure messages instead of a byte dump.
void PrintTo(const HostileCase& c, std::ostream* os) { *os << c.name; }

HostileCase Fails(std::string name, std::vector<TarEntry> entries, Errc code, std::string message) {
  HostileCase c;
  c.name = std::move(name);
  c.entries = std::move(entries);
  c.code = code;
  c.message = std::move(message);
  return c;
}

HostileCase Succeeds(std::string name, std::vector<TarEntry> entries,
                     std::function<void(const fs::path&)> check,
                     WhiteoutMode mode = WhiteoutMode::kOverlay) {
  HostileCase c;
  c.name = std::move(name);
  c.entries = std::move(entries);
  c.check = std::move(check);
  c.mode = mode;
  return c;
}

HostileCase WithLimits(HostileCase c, Limits l) {
  c.limits = l;
  return c;
}

HostileCase Native(HostileCase c) {
  c.mode = WhiteoutMode::kNative;
  c.name += "_native";
  return c;
}

std::vector<HostileCase> Cases() {
  const std::string long_name(256, 'x');
  std::string long_path;
  while (long_path.size() <= 4096) long_path += std::string(250, 'p') + "/";
  long_path += "f";
  Limits few_entries;
  few_entries.max_entries = 3;
  Limits small_total;
  small_total.max_total_bytes = 1000;
  Limits short_paths;
  short_paths.max_path_length = 100;

  std::vector<HostileCase> v = {
      // Names.
      Fails("absolute", {File(kEscapePath, "x")}, Errc::kInvalidArgument,
            std::string("=apply layer: entry `") + kEscapePath + "`: absolute path"),
      Fails("dotdot_prefix", {File("../../etc/passwd", "x")}, Errc::kInvalidArgument,
            "=apply layer: entry `../../etc/passwd`: path escapes the root"),
      Fails("dotdot_deep", {File("../../../../../../../../../tmp/gantry-unpack-escape", "x")},
            Errc::kInvalidArgument, "path escapes the root"),
      Fails("dotdot_inside", {Dir("a"), File("a/../../x", "x")}, Errc::kInvalidArgument,
            "entry `a/../../x`: path escapes the root"),
      Fails("dotdot_harmless_still_rejected", {File("a/b/../c", "x")}, Errc::kInvalidArgument,
            "path escapes the root"),
      Fails("dot_slash_dotdot", {File("./../x", "x")}, Errc::kInvalidArgument,
            "path escapes the root"),
      Fails("dotdot_with_newline_stays_one_line", {File("../a\nb`c", "x")}, Errc::kInvalidArgument,
            "=apply layer: entry `../a\\x0ab\\x60c`: path escapes the root"),
      Fails("root_as_file", {File(".", "x")}, Errc::kInvalidArgument,
            "the root can only be a directory"),
      Fails("root_as_symlink", {Symlink(".", "/etc")}, Errc::kInvalidArgument,
            "the root can only be a directory"),
      Fails("name_too_long", {File(long_name, "x")}, Errc::kInvalidArgument,
            "name too long (256 bytes, limit 255)"),
      Fails("path_too_long", {File(long_path, "x")}, Errc::kInvalidArgument, "path too long"),

      // Writing through symlinks lands inside the root.
      Succeeds("symlink_to_root_then_write",
               {Symlink("evil", "/"), File("evil/etc/passwd", "pwned")},
               [](const fs::path& root) {
                 EXPECT_EQ(ReadAll(root / "etc/passwd"), "pwned");
                 EXPECT_TRUE(S_ISLNK(Lstat(root / "evil")->st_mode));
               }),
      Succeeds("symlink_dotdot_then_write", {Symlink("up", "../../.."), File("up/canary", "pwned")},
               [](const fs::path& root) { EXPECT_EQ(ReadAll(root / "canary"), "pwned"); }),
      Succeeds("symlink_parent_then_write", {Symlink("d", ".."), File("d/canary", "pwned")},
               [](const fs::path& root) { EXPECT_EQ(ReadAll(root / "canary"), "pwned"); }),
      Succeeds(
          "absolute_symlink_chain",
          {Symlink("a", "/b"), Symlink("b", "/../../../tmp"), File("a/gantry-unpack-escape", "x")},
          [](const fs::path& root) { EXPECT_EQ(ReadAll(root / "tmp/gantry-unpack-escape"), "x"); }),
      Succeeds("file_over_symlink_replaces_the_link",
               {Symlink("c", "../canary"), File("c", "pwned")},
               [](const fs::path& root) {
                 EXPECT_TRUE(S_ISREG(Lstat(root / "c")->st_mode));
                 EXPECT_EQ(ReadAll(root / "c"), "pwned");
               }),
      Succeeds("dir_over_symlink_replaces_the_link",
               {Symlink("d", ".."), Dir("d"), File("d/canary", "pwned")},
               [](const fs::path& root) {
                 EXPECT_TRUE(S_ISDIR(Lstat(root / "d")->st_mode));
                 EXPECT_EQ(ReadAll(root / "d/canary"), "pwned");
               }),
      Succeeds("fifo_over_symlink_replaces_the_link",
               {Symlink("p", "../canary"),
                [] {
                  TarEntry e;
                  e.type = TarEntry::Type::kFifo;
                  e.path = "p";
                  return e;
                }()},
               [](const fs::path& root) { EXPECT_TRUE(S_ISFIFO(Lstat(root / "p")->st_mode)); }),
      Fails("symlink_loop", {Symlink("a", "b"), Symlink("b", "a"), File("a/x", "x")},
            Errc::kInvalidArgument, "Too many levels of symbolic links"),
      Fails("symlink_to_file_as_parent", {File("f", "x"), Symlink("s", "f"), File("s/x", "x")},
            Errc::kInvalidArgument, "Not a directory"),
      Fails("file_as_parent", {File("f", "x"), File("f/x", "x")}, Errc::kInvalidArgument,
            "Not a directory"),
      WithLimits(Fails("symlink_target_too_long", {Symlink("s", std::string(200, 't'))},
                       Errc::kInvalidArgument, "symlink target too long"),
                 short_paths),
      Fails("symlink_empty_target", {Symlink("s", "")}, Errc::kInvalidArgument,
            "symlink with an empty target"),

      // Hardlinks.
      Fails("hardlink_absolute", {Hardlink("h", "/etc/passwd")}, Errc::kInvalidArgument,
            "=apply layer: entry `h`: hardlink target `/etc/passwd`: absolute path"),
      Fails("hardlink_dotdot", {Hardlink("h", "../canary")}, Errc::kInvalidArgument,
            "entry `h`: hardlink target `../canary`: path escapes the root"),
      Fails("hardlink_through_symlink_to_root", {Symlink("s", "/"), Hardlink("h", "s/etc/passwd")},
            Errc::kInvalidArgument,
            "entry `h`: hardlink target `s/etc/passwd` not found in this layer"),
      Fails("hardlink_through_symlink_dotdot", {Symlink("s", "../.."), Hardlink("h", "s/canary")},
            Errc::kInvalidArgument, "hardlink target `s/canary` not found in this layer"),
      Fails("hardlink_missing", {Hardlink("h", "nowhere")}, Errc::kInvalidArgument,
            "=apply layer: entry `h`: hardlink target `nowhere` not found in this layer"),
      Fails("hardlink_to_dir", {Dir("d"), Hardlink("h", "d")}, Errc::kInvalidArgument,
            "hardlink target `d` is not a regular file or symlink"),
      Fails("hardlink_to_root", {Hardlink("h", "./")}, Errc::kInvalidArgument,
            "hardlink target `./` is the root"),
      Fails("hardlink_to_aufs", {Hardlink("h", ".wh..wh.plnk/1.2")}, Errc::kInvalidArgument,
            "is a whiteout or aufs metadata"),
      Succeeds("hardlink_to_escaping_symlink_links_the_symlink",
               {Symlink("s", "../canary"), Hardlink("h", "s")},
               [](const fs::path& root) {
                 EXPECT_TRUE(S_ISLNK(Lstat(root / "h")->st_mode));
                 EXPECT_EQ(Lstat(root / "h")->st_ino, Lstat(root / "s")->st_ino);
               }),
      Succeeds("hardlink_through_inner_symlink",
               {Dir("real"), File("real/f", "x"), Symlink("s", "/real"), Hardlink("h", "s/f")},
               [](const fs::path& root) {
                 EXPECT_EQ(Lstat(root / "h")->st_ino, Lstat(root / "real/f")->st_ino);
               }),

      // Whiteouts.
      Fails("whiteout_of_dotdot", {RawWhiteout(".wh...")}, Errc::kInvalidArgument,
            "=apply layer: entry `.wh...`: invalid whiteout of `..`"),
      Native(Fails("whiteout_of_dotdot", {RawWhiteout("a/.wh...")}, Errc::kInvalidArgument,
                   "invalid whiteout of `..`")),
      Fails("whiteout_of_dot", {RawWhiteout("a/.wh..")}, Errc::kInvalidArgument,
            "invalid whiteout of `.`"),
      Fails("whiteout_of_nothing", {RawWhiteout(".wh.")}, Errc::kInvalidArgument,
            "invalid whiteout of ``"),
      Native(Fails("whiteout_escaping", {RawWhiteout("../.wh.canary")}, Errc::kInvalidArgument,
                   "path escapes the root")),
      Fails("whiteout_as_directory", {File(".wh.x/y", "x")}, Errc::kInvalidArgument,
            "a whiteout name is used as a directory"),
      Native(Succeeds("whiteout_through_symlink", {Symlink("up", "../.."), Whiteout("up/canary")},
                      [](const fs::path& root) { EXPECT_FALSE(Lstat(root / "canary")); })),
      Native(Succeeds("opaque_through_symlink",
                      {File("mine", "x"), Symlink("up", ".."), OpaqueMarker("up")},
                      [](const fs::path& root) {
                        EXPECT_EQ(ReadAll(root / "mine"), "x");
                        EXPECT_TRUE(S_ISLNK(Lstat(root / "up")->st_mode));
                      })),
      Succeeds("aufs_metadata_is_skipped",
               {Dir(".wh..wh.plnk"), File(".wh..wh.plnk/1.2", "x"), File("a/.wh..wh.aufs", "")},
               [](const fs::path& root) {
                 EXPECT_FALSE(Lstat(root / ".wh..wh.plnk"));
                 EXPECT_FALSE(Lstat(root / "a/.wh..wh.aufs"));
               }),
      Succeeds("odd_names_near_whiteouts", {File("..wh..", "x"), File("a.wh.b", "y")},
               [](const fs::path& root) {
                 EXPECT_EQ(ReadAll(root / "..wh.."), "x");
                 EXPECT_EQ(ReadAll(root / "a.wh.b"), "y");
               }),

      // Devices and limits.
      Succeeds("device_when_unprivileged_is_skipped", {CharDev("dev/null"), File("after", "x")},
               [](const fs::path& root) {
                 EXPECT_FALSE(Lstat(root / "dev/null"));
                 EXPECT_EQ(ReadAll(root / "after"), "x");
               }),
      WithLimits(Fails("too_many_entries",
                       {File("1", ""), File("2", ""), File("3", ""), File("4", ""), File("5", "")},
                       Errc::kResourceExhausted, "entry `4`: too many entries (limit 3)"),
                 few_entries),
      WithLimits(
          Fails("total_size", {File("a", std::string(600, 'a')), File("b", std::string(600, 'b'))},
                Errc::kResourceExhausted,
                "entry `b`: files of the layer exceed the size limit (1000 bytes)"),
          small_total),
  };
  // Every escape attempt through symlinks again, applied to a native
  // snapshot (lower layers present).
  for (const char* n : {"symlink_to_root_then_write", "symlink_dotdot_then_write",
                        "file_over_symlink_replaces_the_link", "hardlink_absolute",
                        "hardlink_through_symlink_to_root"}) {
    for (const auto& c : std::vector<HostileCase>(v))
      if (c.name == n) v.push_back(Native(c));
  }
  return v;
}

class UnpackHostileTest : public ::testing::TestWithParam<std::tuple<HostileCase, bool>> {};

std::string PasswdDigest() {
  auto p = ReadAll("/etc/passwd");
  return p ? common::Digest::Sha256Of(*p).str() : "";
}

TEST_P(UnpackHostileTest, StaysInsideTheRoot) {
  const auto& [c, use_openat2] = GetParam();
  ASSERT_FALSE(Lstat(kEscapePath)) << kEscapePath << " exists before the test";
  const std::string passwd = PasswdDigest();
  Sandbox box;
  ApplyOptions o = testing::Unprivileged(c.mode);
  o.limits = c.limits;
  o.use_openat2 = use_openat2;
  const std::string tar = Tar(c.entries);
  ASSERT_FALSE(tar.empty());
  auto r = box.Apply(tar, o);
  if (c.code) {
    ASSERT_FALSE(r) << "applied a hostile layer";
    EXPECT_EQ(r.error().code, *c.code) << r.error().message;
    if (!c.message.empty() && c.message[0] == '=')
      EXPECT_EQ(r.error().message, c.message.substr(1));
    else
      EXPECT_NE(r.error().message.find(c.message), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "error spans lines";
  } else {
    ASSERT_TRUE(r) << r.error().message;
  }
  if (c.check) c.check(box.root());
  EXPECT_TRUE(box.Untouched()) << "something outside the root changed";
  EXPECT_EQ(PasswdDigest(), passwd);
  EXPECT_FALSE(Lstat(kEscapePath)) << "escaped to " << kEscapePath;
  ::unlink(kEscapePath);
}

INSTANTIATE_TEST_SUITE_P(Table, UnpackHostileTest,
                         ::testing::Combine(::testing::ValuesIn(Cases()), ::testing::Bool()),
                         [](const auto& p) {
                           return std::get<0>(p.param).name +
                                  (std::get<1>(p.param) ? "_openat2" : "_walk");
                         });

}  // namespace
}  // namespace unpack
