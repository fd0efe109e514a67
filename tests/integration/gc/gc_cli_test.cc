// The real `gantry` binary: pull (from an OCI layout), snapshot ls/info/
// mounts/rm/usage, df, mount/umount and prune, under both snapshotters.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/require.h"
#include "gc/gc_store.h"
#include "oci/manifest.h"
#include "snapshot/snapshotter.h"

#ifndef GANTRY_BIN
#error "GANTRY_BIN must name the gantry executable"
#endif

namespace gctest {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

struct Row {
  std::string key, kind, parent;
};

class GcCli : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    REQUIRE_ROOT("mount(2), snapshots keep ownership");
    auto dir = common::TempDir::Create("gc-cli");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    if (GetParam() == "overlayfs")
      REQUIRE_OVERLAYFS(snapshot::OverlaySupported(dir_.path()), dir_.path());
    for (auto [tag, layers] : {std::pair{"a", LayersA()}, std::pair{"b", LayersB()}}) {
      fixtures::ImageSpec spec;
      spec.layers = layers;
      auto built = fixtures::WriteImage(dir_.path() / "layout", spec, tag);
      ASSERT_TRUE(built) << built.error().message;
      std::vector<std::string> chains;
      for (const auto& c : oci::ChainIds(built->diff_ids)) chains.push_back(c.str());
      chains_[tag] = chains;
    }
  }

  // A failed test may leave its mount behind; the TempDir cannot go then.
  void TearDown() override {
    if (!dir_.path().empty()) (void)::umount2((dir_.path() / "mnt").c_str(), MNT_DETACH);
  }

  fixtures::CommandResult Gantry(std::vector<std::string> args) {
    std::vector<std::string> argv = {GANTRY_BIN, "--root", (dir_.path() / "root").string(),
                                     "--snapshotter", GetParam()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = fixtures::RunCommand(argv);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : fixtures::CommandResult{};
  }

  // Runs and expects exit 0; returns stdout.
  std::string Ok(std::vector<std::string> args) {
    auto r = Gantry(args);
    EXPECT_EQ(r.exit_code, 0) << r.Describe(args) << "\n" << r.out;
    return r.out;
  }

  std::vector<Row> Ls() {
    std::istringstream in(Ok({"snapshot", "ls"}));
    std::string line;
    std::vector<Row> rows;
    std::getline(in, line);
    EXPECT_THAT(line, HasSubstr("KEY"));
    while (std::getline(in, line)) {
      std::istringstream f(line);
      Row r;
      f >> r.key >> r.kind >> r.parent;
      rows.push_back(r);
    }
    return rows;
  }

  std::set<std::string> Committed() {
    std::set<std::string> out;
    for (const auto& r : Ls())
      if (r.kind == "committed") out.insert(r.key);
    return out;
  }

  std::set<std::string> Chains(std::initializer_list<std::pair<std::string, size_t>> picks) {
    std::set<std::string> out;
    for (const auto& [tag, n] : picks)
      for (size_t i = 0; i < n; ++i) out.insert(chains_[tag][i]);
    return out;
  }

  std::string Name(const std::string& tag) { return "localhost/layout:" + tag; }
  std::string Layout(const std::string& tag) {
    return "oci:" + (dir_.path() / "layout").string() + ":" + tag;
  }

  common::TempDir dir_;
  std::map<std::string, std::vector<std::string>> chains_;
};

TEST_P(GcCli, PruneDfSnapshotAndMountWorkTogether) {
  Ok({"pull", Layout("a")});
  Ok({"pull", Layout("b")});
  Ok({"unpack", Name("a")});  // already unpacked by pull: a no-op
  Ok({"unpack", Name("b")});

  // One committed snapshot per chainID, the shared ones once.
  auto rows = Ls();
  EXPECT_EQ(rows.size(), 4u);
  EXPECT_EQ(Committed(), Chains({{"a", 3}, {"b", 3}}));

  // df: shared layers counted once.
  auto df = nlohmann::json::parse(Ok({"df", "--json"}), nullptr, false);
  ASSERT_FALSE(df.is_discarded());
  ASSERT_EQ(df["images"].size(), 2u);
  int64_t shared = df["images"][0]["shared_size"].get<int64_t>();
  EXPECT_GT(shared, 0);
  EXPECT_EQ(df["images"][1]["shared_size"].get<int64_t>(), shared);
  EXPECT_EQ(
      df["totals"]["images"]["size"].get<int64_t>(),
      df["images"][0]["size"].get<int64_t>() + df["images"][1]["size"].get<int64_t>() - shared);
  EXPECT_EQ(df["reclaimable"].get<int64_t>(), 0);
  EXPECT_THAT(Ok({"df"}), HasSubstr("Images space usage"));

  // snapshot rm refuses a parent; info and usage answer.
  auto rm = Gantry({"snapshot", "rm", chains_["a"][0]});
  EXPECT_EQ(rm.exit_code, 8) << rm.err;
  EXPECT_THAT(rm.err, HasSubstr("depends on it"));
  auto info = nlohmann::json::parse(Ok({"snapshot", "info", chains_["b"][2]}), nullptr, false);
  EXPECT_EQ(info["parent"], chains_["b"][1]);
  EXPECT_EQ(info["kind"], "committed");
  EXPECT_THAT(Ok({"snapshot", "usage"}), HasSubstr("TOTAL"));

  // mount B read-only.
  fs::path mnt = dir_.path() / "mnt";
  ASSERT_TRUE(common::MkdirAll(mnt));
  Ok({"mount", Name("b"), mnt.string()});
  EXPECT_EQ(fs::file_size(mnt / "b.txt"), 40000u);
  EXPECT_TRUE(fs::exists(mnt / "etc/shared.txt"));
  EXPECT_FALSE(std::ofstream(mnt / "new-file").good()) << "the mount must be read-only";
  std::string view;
  for (const auto& r : Ls())
    if (r.key.starts_with("mount-")) view = r.key;
  ASSERT_FALSE(view.empty());
  auto vinfo = nlohmann::json::parse(Ok({"snapshot", "info", view}), nullptr, false);
  EXPECT_EQ(vinfo["kind"], "view");
  EXPECT_EQ(vinfo["labels"]["io.gantry.mount"], fs::canonical(mnt).string());
  auto mounts = nlohmann::json::parse(Ok({"snapshot", "mounts", view}), nullptr, false);
  ASSERT_TRUE(mounts.is_array());
  EXPECT_THAT(Ok({"snapshot", "mounts", view, "/target"}), HasSubstr("mount "));
  // A second mount on the same directory is refused.
  EXPECT_EQ(Gantry({"mount", Name("a"), mnt.string()}).exit_code, 8);

  // rmi both, prune: the mount keeps B's chain; A's own layer goes.
  Ok({"rmi", Name("a"), Name("b")});
  std::string out = Ok({"prune"});
  EXPECT_THAT(out, HasSubstr("Total reclaimed space:"));
  EXPECT_THAT(out, HasSubstr(chains_["a"][2]));
  EXPECT_EQ(Committed(), Chains({{"b", 3}}));
  EXPECT_EQ(fs::file_size(mnt / "b.txt"), 40000u);

  Ok({"umount", mnt.string()});
  EXPECT_FALSE(fs::exists(mnt / "b.txt"));
  for (const auto& r : Ls()) EXPECT_FALSE(r.key.starts_with("mount-")) << r.key;
  EXPECT_EQ(Gantry({"umount", mnt.string()}).exit_code, 3);

  // Dry run first, then the real thing, then nothing is left.
  EXPECT_THAT(Ok({"prune", "--dry-run"}), HasSubstr("dry run"));
  EXPECT_EQ(Committed().size(), 3u);
  auto report = nlohmann::json::parse(Ok({"prune", "--json"}), nullptr, false);
  EXPECT_EQ(report["snapshots"].size(), 3u);
  EXPECT_GT(report["reclaimed_bytes"].get<int64_t>(), 0);
  EXPECT_TRUE(Ls().empty());
  EXPECT_THAT(Ok({"prune"}), HasSubstr("Total reclaimed space: 0 B"));
  auto empty = nlohmann::json::parse(Ok({"df", "--json"}), nullptr, false);
  EXPECT_EQ(empty["totals"]["content"]["size"].get<int64_t>(), 0);
  EXPECT_EQ(empty["totals"]["snapshots"]["count"].get<int64_t>(), 0);
}

TEST_P(GcCli, MountUnpacksAndPruneAllKeepsMountedImages) {
  Ok({"pull", "--no-unpack", Layout("a")});
  Ok({"pull", Layout("b")});
  EXPECT_EQ(Committed(), Chains({{"b", 3}}));
  fs::path mnt = dir_.path() / "mnt";
  ASSERT_TRUE(common::MkdirAll(mnt));
  Ok({"mount", Name("a"), mnt.string()});  // unpacks A first
  EXPECT_EQ(fs::file_size(mnt / "a.txt"), 30000u);
  std::string out = Ok({"prune", "--all"});
  EXPECT_THAT(out, HasSubstr("Untagged: " + Name("b")));
  EXPECT_EQ(Committed(), Chains({{"a", 3}}));
  EXPECT_EQ(Ok({"images", "--format", "{{.Repository}}:{{.Tag}}"}), Name("a") + "\n");
  Ok({"umount", mnt.string()});
}

TEST_P(GcCli, PruneRacingPullsNeverBreaksThem) {
  Ok({"pull", Layout("b")});
  for (int i = 0; i < 5; ++i) {
    fixtures::SpawnOptions so;
    so.argv = {GANTRY_BIN, "--root",   (dir_.path() / "root").string(), "--snapshotter", GetParam(),
               "pull",     Layout("a")};
    auto pull = fixtures::Child::Spawn(so);
    ASSERT_TRUE(pull) << pull.error().message;
    // Either order is fine; neither may break the other.
    Ok({"prune"});
    auto rc = pull->Wait();
    ASSERT_TRUE(rc);
    EXPECT_EQ(*rc, 0) << "pull " << i;
    Ok({"prune"});
    EXPECT_EQ(Committed(), Chains({{"a", 3}, {"b", 3}})) << "round " << i;
    EXPECT_THAT(Ok({"unpack", Name("a")}), HasSubstr("already unpacked"));
    Ok({"rmi", Name("a")});
  }
  Ok({"prune"});
  EXPECT_EQ(Committed(), Chains({{"b", 3}}));
}

INSTANTIATE_TEST_SUITE_P(Snapshotters, GcCli, ::testing::Values("overlayfs", "native"),
                         [](const auto& p) { return std::string(p.param); });

}  // namespace
}  // namespace gctest
