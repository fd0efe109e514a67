// `gantry mount` of images with many layers, pulled from an OCI layout into
// an overlayfs store: 200 layers (whose overlay options no longer fit the
// one page mount(2) copies), 500 (overlayfs's own limit, OVL_MAX_STACK) and
// 501 (beyond it: one clear error line, nothing left behind).
//
// Every image has the same shape, so that one check covers the lowest
// layer, the top layer and whiteouts reaching across layers:
//   layer 0:     layers/0, doomed.txt, olddir/a, gone/x
//   layer i:     layers/i                      (0 < i < n - 1)
//   layer n/2:   also whiteouts of doomed.txt and gone/, olddir/ opaque
//                with the new file olddir/b
//   layer n - 1: layers/<n-1>, top.txt, a whiteout of layers/1
//
// Needs root (mounts) and a kernel with overlayfs; skips with the reason
// otherwise.

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "fixtures/mountinfo.h"
#include "fixtures/process.h"
#include "fixtures/require.h"
#include "snapshot/snapshotter.h"

#ifndef GANTRY_BIN
#error "GANTRY_BIN must name the gantry executable"
#endif

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Read(const fs::path& p) {
  auto r = common::ReadFile(p);
  return r ? *r : "<missing: " + r.error().message + ">";
}

fixtures::ImageSpec ManyLayers(int n) {
  fixtures::ImageSpec spec;
  spec.cmd = {};
  for (int i = 0; i < n; ++i) {
    fixtures::LayerSpec l;
    l.compression = fixtures::Compression::kNone;  // 500 tiny layers: no need to gzip them
    if (i == 0) {
      l.entries = {fixtures::Dir("layers/"), fixtures::File("doomed.txt", "doomed\n"),
                   fixtures::Dir("olddir/"), fixtures::File("olddir/a", "a\n"),
                   fixtures::Dir("gone/"),   fixtures::File("gone/x", "x\n")};
    }
    l.entries.push_back(fixtures::File("layers/" + std::to_string(i), std::to_string(i) + "\n"));
    if (i == n / 2) {
      l.entries.push_back(fixtures::Whiteout("doomed.txt"));
      l.entries.push_back(fixtures::Whiteout("gone"));
      l.entries.push_back(fixtures::Dir("olddir/"));
      l.entries.push_back(fixtures::OpaqueMarker("olddir"));
      l.entries.push_back(fixtures::File("olddir/b", "b\n"));
    }
    if (i == n - 1) {
      l.entries.push_back(fixtures::File("top.txt", "top\n"));
      l.entries.push_back(fixtures::Whiteout("layers/1"));
    }
    spec.layers.push_back(std::move(l));
  }
  return spec;
}

class MountLayers : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT("overlay mounts");
    auto dir = common::TempDir::Create("mount-layers");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    REQUIRE_OVERLAYFS(snapshot::OverlaySupported(dir_.path()), dir_.path());
    target_ = dir_.path() / "mnt";
    ASSERT_TRUE(common::MkdirAll(target_));
  }

  // A failed test may leave its mount behind; the TempDir cannot go then.
  void TearDown() override {
    if (!target_.empty()) (void)::umount2(target_.c_str(), MNT_DETACH);
  }

  fixtures::CommandResult Gantry(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {GANTRY_BIN, "--root", (dir_.path() / "root").string(),
                                     "--snapshotter", "overlayfs"};
    argv.insert(argv.end(), args.begin(), args.end());
    fixtures::RunOptions o;
    o.timeout = std::chrono::seconds(300);
    auto r = fixtures::RunCommand(argv, o);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : fixtures::CommandResult{};
  }

  // Writes the n-layer image and pulls it (which unpacks it); returns its
  // name. The pull's own layer limit (--max-layers, 500 by default) is
  // raised to n: what is tested here is the mount's limit, which a user who
  // raised the pull's meets.
  std::string PullImage(int n) {
    const std::string tag = "l" + std::to_string(n);
    auto img = fixtures::WriteImage(dir_.path() / "layout", ManyLayers(n), tag);
    EXPECT_TRUE(img) << img.error().message;
    auto pull = Gantry({"pull", "--max-layers", std::to_string(n),
                        "oci:" + (dir_.path() / "layout").string() + ":" + tag});
    EXPECT_EQ(pull.exit_code, 0) << pull.err;
    return "localhost/layout:" + tag;
  }

  // The view snapshot `gantry mount` makes for target_ (cmd_mount.cc's key).
  std::string ViewKey() const {
    return "mount-" + common::Digest::Sha256Of(target_.string()).hex().substr(0, 16);
  }

  std::vector<std::string> SnapshotKeys() {
    auto r = Gantry({"snapshot", "ls", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> keys;
    auto j = json::parse(r.out, nullptr, false);
    if (!j.is_array()) return keys;
    for (const auto& s : j) keys.push_back(s.value("key", ""));
    return keys;
  }

  // Mounts the n-layer image, checks what it shows, unmounts it.
  void MountsAndShowsEveryLayer(int n) {
    const std::string ref = PullImage(n);
    auto m = Gantry({"mount", ref, target_.string()});
    ASSERT_EQ(m.exit_code, 0) << m.err;

    // Not a bind mount or anything else that would make this test moot:
    // the overlay, with more options than mount(2) could take.
    auto entry = fixtures::MountInfoAt(target_);
    ASSERT_TRUE(entry) << target_ << " is not mounted";
    EXPECT_EQ(entry->fstype, "overlay");
    auto mounts = Gantry({"snapshot", "mounts", ViewKey()});
    ASSERT_EQ(mounts.exit_code, 0) << mounts.err;
    auto mj = json::parse(mounts.out, nullptr, false);
    ASSERT_TRUE(mj.is_array() && mj.size() == 1) << mounts.out;
    size_t option_bytes = 0;
    for (const auto& o : mj[0]["options"]) option_bytes += o.get<std::string>().size() + 1;
    EXPECT_GT(option_bytes, static_cast<size_t>(::sysconf(_SC_PAGESIZE)))
        << "the options fit one page: this tests nothing";

    EXPECT_EQ(Read(target_ / "layers" / "0"), "0\n");  // the lowest layer
    EXPECT_EQ(Read(target_ / "layers" / std::to_string(n - 1)), std::to_string(n - 1) + "\n");
    EXPECT_EQ(Read(target_ / "top.txt"), "top\n");
    // Every layer's file, except the one the top layer whites out.
    size_t files = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(target_ / "layers")) ++files;
    EXPECT_EQ(files, static_cast<size_t>(n - 1));
    EXPECT_FALSE(fs::exists(target_ / "layers" / "1")) << "whited out by the top layer";
    EXPECT_EQ(Read(target_ / "layers" / "2"), "2\n");
    EXPECT_FALSE(fs::exists(target_ / "doomed.txt")) << "whited out in layer " << n / 2;
    EXPECT_FALSE(fs::exists(target_ / "gone")) << "whited out in layer " << n / 2;
    EXPECT_FALSE(fs::exists(target_ / "olddir" / "a")) << "olddir is opaque from layer " << n / 2;
    EXPECT_EQ(Read(target_ / "olddir" / "b"), "b\n");
    // No whiteout devices or markers show through.
    for (const auto& e : fs::recursive_directory_iterator(target_)) {
      EXPECT_FALSE(e.path().filename().string().starts_with(".wh.")) << e.path();
      EXPECT_FALSE(fs::is_character_file(e.symlink_status())) << e.path();
    }
    // fsck knows the mount for one that uses the store's snapshots.
    auto fsck = Gantry({"fsck", "--json"});
    EXPECT_EQ(fsck.exit_code, 0) << fsck.err << fsck.out;
    auto fj = json::parse(fsck.out, nullptr, false);
    ASSERT_TRUE(fj.is_object()) << fsck.out;
    EXPECT_EQ(fj["checked"].value("mounts", -1), 1) << fsck.out;
    // Read-only, as `gantry mount` promises.
    std::ofstream(target_ / "new") << "x";
    EXPECT_FALSE(fs::exists(target_ / "new"));

    auto u = Gantry({"umount", target_.string()});
    EXPECT_EQ(u.exit_code, 0) << u.err;
    EXPECT_FALSE(fixtures::MountInfoAt(target_));
  }

  common::TempDir dir_;
  fs::path target_;
};

// Issue 13: 200 layers failed with "mount overlay … No such file or
// directory" (exit 3): mount(2) had cut the lowerdir list at one page.
TEST_F(MountLayers, TwoHundredLayersBeyondOnePageOfOptionsMount) { MountsAndShowsEveryLayer(200); }

// OVL_MAX_STACK (fs/overlayfs/params.h): overlayfs takes at most 500 lower
// layers, and gantry sets no lower limit of its own.
TEST_F(MountLayers, FiveHundredLayersTheKernelLimitMount) { MountsAndShowsEveryLayer(500); }

TEST_F(MountLayers, FiveHundredOneLayersFailWithOneLineAndLeaveNothing) {
  const std::string ref = PullImage(501);
  ASSERT_EQ(SnapshotKeys().size(), 501u);
  auto m = Gantry({"mount", ref, target_.string()});
  EXPECT_EQ(m.exit_code, 8) << m.err;  // failed precondition: this kernel cannot stack it
  EXPECT_EQ(std::count(m.err.begin(), m.err.end(), '\n'), 1) << m.err;
  EXPECT_NE(m.err.find("`" + target_.string() + "`"), std::string::npos) << m.err;
  EXPECT_NE(m.err.find("501 layers"), std::string::npos) << m.err;
  EXPECT_NE(m.err.find("limit is 500"), std::string::npos) << m.err;
  EXPECT_FALSE(fixtures::MountInfoAt(target_)) << "nothing mounted";
  const auto after = SnapshotKeys();
  EXPECT_EQ(after.size(), 501u);
  EXPECT_EQ(std::count(after.begin(), after.end(), ViewKey()), 0) << "the view is removed again";
}

}  // namespace
