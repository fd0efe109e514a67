// `gantry save` and `gantry copy` against the real readers: skopeo loads
// what gantry writes (docker-archive, oci-archive, oci:), umoci unpacks it
// to the tree `gantry mount` shows, digests stay what the registry served,
// two saves are byte-identical, images share their layers, bad input
// leaves nothing behind.

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "fixtures/tree_walk.h"
#include "integration/pull/pull_helpers.h"

namespace pulltest {
namespace {

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

fixtures::CommandResult Tool(const std::vector<std::string>& argv) {
  auto r = fixtures::RunCommand(argv);
  EXPECT_TRUE(r) << r.error().message;
  if (!r) return {};
  EXPECT_EQ(r->exit_code, 0) << r->Describe(argv);
  return *r;
}

class SaveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT("gantry mount");
    REQUIRE_TOOLS("skopeo", "umoci", "tar");
    ASSERT_NO_FATAL_FAILURE(StartRegistry({}, &reg_));
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    g_ = std::make_unique<pulltest::Gantry>(std::move(*g));
    ASSERT_NO_FATAL_FAILURE(
        PushImage(*reg_, g_->dir() / "src", fixtures::FixtureImageSpec(), "fixture/app:v1", &img_));
    ref_ = reg_->host() + "/fixture/app:v1";
    ASSERT_NO_FATAL_FAILURE(PullOk(*g_, {ref_}));
  }

  fixtures::CommandResult Cli(const std::vector<std::string>& args, int want = 0) {
    auto r = g_->Run(args);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return {};
    EXPECT_EQ(r->exit_code, want) << Describe(*r);
    return *r;
  }

  // umoci's tree of `layout_ref` (DIR:TAG) equals `gantry mount` of ref_.
  void ExpectSameTree(const std::string& layout_ref) {
    const fs::path bundle = g_->dir() / ("bundle-" + std::to_string(++n_));
    Tool({"umoci", "unpack", "--image", layout_ref, bundle.string()});
    const fs::path mnt = g_->dir() / "mnt";
    fs::create_directories(mnt);
    Cli({"mount", ref_, mnt.string()});
    auto ours = fixtures::WalkTree(mnt);
    auto theirs = fixtures::WalkTree(bundle / "rootfs");
    Cli({"umount", mnt.string()});
    ASSERT_TRUE(ours) << ours.error().message;
    ASSERT_TRUE(theirs) << theirs.error().message;
    ASSERT_GT(theirs->size(), 20u);
    for (const auto& d : fixtures::DiffTrees(*theirs, *ours))
      ADD_FAILURE() << "umoci vs gantry mount: " << d;
  }

  // The config digest skopeo reads from `transport_ref`.
  std::string SkopeoConfigDigest(const std::string& transport_ref) {
    fixtures::CommandResult r = Tool({"skopeo", "inspect", "--raw", transport_ref});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.contains("config")) {
      ADD_FAILURE() << "skopeo inspect --raw " << transport_ref << ": " << r.out;
      return "";
    }
    return j["config"].value("digest", "");
  }

  // The fixture image for amd64 and arm64 in `layout`, and an index of
  // both tagged "multi".
  static void WriteTwoPlatforms(const fs::path& layout, fixtures::BuiltImage* amd,
                                fixtures::BuiltImage* arm) {
    auto a = fixtures::WriteImage(layout, fixtures::FixtureImageSpec(), "");
    ASSERT_TRUE(a) << a.error().message;
    auto b = fixtures::WriteImage(
        layout, fixtures::FixtureImageSpec(fixtures::Compression::kGzip, "arm64"), "");
    ASSERT_TRUE(b) << b.error().message;
    ASSERT_TRUE(fixtures::WriteIndex(
        layout, {{*a, "linux", "amd64", ""}, {*b, "linux", "arm64", ""}}, "multi"));
    *amd = *a;
    *arm = *b;
  }

  std::unique_ptr<fixtures::RegistryFixture> reg_;
  std::unique_ptr<pulltest::Gantry> g_;
  fixtures::BuiltImage img_;
  std::string ref_;
  int n_ = 0;
};

TEST_F(SaveTest, DockerArchiveLoadsInSkopeoAndUnpacksToTheSameTree) {
  const fs::path tar = g_->dir() / "app.tar";
  Cli({"save", "-o", tar.string(), ref_});
  EXPECT_EQ(SkopeoConfigDigest("docker-archive:" + tar.string()), img_.config.digest.str());
  const fs::path oci = g_->dir() / "from-docker-archive";
  Tool({"skopeo", "copy", "docker-archive:" + tar.string(), "oci:" + oci.string() + ":tag"});
  ASSERT_NO_FATAL_FAILURE(ExpectSameTree(oci.string() + ":tag"));

  // RepoTags keep the store name; each layer is a plain tar named by diffID.
  fixtures::CommandResult list = Tool({"tar", "-tf", tar.string()});
  for (const common::Digest& d : img_.diff_ids)
    EXPECT_NE(list.out.find(d.hex() + ".tar\n"), std::string::npos) << list.out;
  Tool({"tar", "-xf", tar.string(), "-C", g_->dir().string(), "manifest.json"});
  auto manifest = nlohmann::json::parse(Slurp(g_->dir() / "manifest.json"), nullptr, false);
  ASSERT_TRUE(manifest.is_array() && manifest.size() == 1) << manifest;
  EXPECT_EQ(manifest[0]["RepoTags"], nlohmann::json::array({ref_}));
  EXPECT_EQ(manifest[0]["Config"], img_.config.digest.hex() + ".json");

  // Deterministic: a second save is the same bytes.
  const fs::path again = g_->dir() / "again.tar";
  Cli({"save", "-o", again.string(), ref_});
  EXPECT_TRUE(Slurp(tar) == Slurp(again)) << "two saves differ";
  // And to standard output too.
  auto out = g_->Run({"save", ref_});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->exit_code, 0) << Describe(*out);
  EXPECT_TRUE(out->out == Slurp(tar)) << "save to stdout differs from save -o";
}

TEST_F(SaveTest, OciArchiveLoadsInSkopeoAndUnpacksToTheSameTree) {
  const fs::path tar = g_->dir() / "app-oci.tar";
  Cli({"save", "--format", "oci-archive", "-o", tar.string(), ref_});
  // The ref name is the store name (DIR ends at the first ':').
  const std::string src = "oci-archive:" + tar.string() + ":" + ref_;
  EXPECT_EQ(SkopeoConfigDigest(src), img_.config.digest.str());
  const fs::path oci = g_->dir() / "from-oci-archive";
  Tool({"skopeo", "copy", src, "oci:" + oci.string() + ":tag"});
  ASSERT_NO_FATAL_FAILURE(ExpectSameTree(oci.string() + ":tag"));
  const fs::path again = g_->dir() / "again.tar";
  Cli({"save", "--format", "oci-archive", "-o", again.string(), ref_});
  EXPECT_TRUE(Slurp(tar) == Slurp(again)) << "two saves differ";
}

TEST_F(SaveTest, OciDirKeepsTheRegistryManifestDigest) {
  const fs::path dir = g_->dir() / "layout";
  Cli({"save", "--format", "oci-dir", "-o", dir.string(), ref_});
  auto index = nlohmann::json::parse(Slurp(dir / "index.json"), nullptr, false);
  ASSERT_TRUE(index.is_object()) << Slurp(dir / "index.json");
  ASSERT_EQ(index["manifests"].size(), 1u) << index;
  EXPECT_EQ(index["manifests"][0]["digest"], img_.manifest.digest.str());
  EXPECT_EQ(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], ref_);
  EXPECT_EQ(SkopeoConfigDigest("oci:" + dir.string() + ":" + ref_), img_.config.digest.str());
  // Saving again into the layout replaces the entry, keeps one.
  Cli({"save", "--format", "oci-dir", "-o", dir.string(), ref_});
  index = nlohmann::json::parse(Slurp(dir / "index.json"), nullptr, false);
  EXPECT_EQ(index["manifests"].size(), 1u) << index;
}

TEST_F(SaveTest, AnImagePulledByIndexIsSavedAsItsPlatformManifest) {
  // An index of arm64 and amd64, pulled for arm64: the store holds that
  // manifest whole, whatever this host is.
  const fs::path layout = g_->dir() / "multi";
  fixtures::BuiltImage amd, arm;
  ASSERT_NO_FATAL_FAILURE(WriteTwoPlatforms(layout, &amd, &arm));
  ASSERT_NO_FATAL_FAILURE(PushLayout(*reg_, layout, "multi", "fixture/multi:v1"));
  const std::string ref = reg_->host() + "/fixture/multi:v1";
  ASSERT_NO_FATAL_FAILURE(PullOk(*g_, {"--no-unpack", "--platform", "linux/arm64", ref}));
  const fs::path dir = g_->dir() / "saved";
  Cli({"save", "--format", "oci-dir", "-o", dir.string(), ref});
  auto index = nlohmann::json::parse(Slurp(dir / "index.json"), nullptr, false);
  ASSERT_TRUE(index.is_object());
  ASSERT_EQ(index["manifests"].size(), 1u) << index;
  EXPECT_EQ(index["manifests"][0]["digest"], arm.manifest.digest.str());
  EXPECT_EQ(SkopeoConfigDigest("oci:" + dir.string() + ":" + ref), arm.config.digest.str());
}

TEST_F(SaveTest, CopyIntoTheStorePullsAndOutOfItReads) {
  const fs::path dir = g_->dir() / "l";
  Cli({"copy", "docker://" + ref_, "oci:" + dir.string() + ":v1"});
  fixtures::CommandResult r =
      Cli({"copy", "oci:" + dir.string() + ":v1", "gantry:localhost/copied:v1"});
  EXPECT_EQ(r.out, "localhost/copied:v1\n");
  const std::vector<std::string> names = g_->ImageNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "localhost/copied:v1"), names.end());
  // By its short name, out again.
  const fs::path out = g_->dir() / "out.tar";
  Cli({"copy", "gantry:copied:v1", "docker-archive:" + out.string()});
  EXPECT_EQ(SkopeoConfigDigest("docker-archive:" + out.string()), img_.config.digest.str());
}

TEST_F(SaveTest, ImagesSharingLayersWriteEachLayerOnce) {
  fixtures::BuiltImage a, b;
  ASSERT_NO_FATAL_FAILURE(
      PushImage(*reg_, g_->dir() / "a", SharedBaseSpec("a"), "shared/a:v1", &a));
  ASSERT_NO_FATAL_FAILURE(
      PushImage(*reg_, g_->dir() / "b", SharedBaseSpec("b"), "shared/b:v1", &b));
  const std::string ra = reg_->host() + "/shared/a:v1", rb = reg_->host() + "/shared/b:v1";
  ASSERT_NO_FATAL_FAILURE(PullOk(*g_, {ra}));
  ASSERT_NO_FATAL_FAILURE(PullOk(*g_, {rb}));
  const fs::path tar = g_->dir() / "two.tar";
  Cli({"save", "-o", tar.string(), ra, rb});
  fixtures::CommandResult list = Tool({"tar", "-tf", tar.string()});
  std::set<common::Digest> want(a.diff_ids.begin(), a.diff_ids.end());
  want.insert(b.diff_ids.begin(), b.diff_ids.end());
  int tars = 0;
  for (size_t p = 0; (p = list.out.find(".tar\n", p)) != std::string::npos; ++p) ++tars;
  EXPECT_EQ(tars, static_cast<int>(want.size())) << list.out;
  EXPECT_EQ(SkopeoConfigDigest("docker-archive:" + tar.string() + ":" + ra), a.config.digest.str());
  EXPECT_EQ(SkopeoConfigDigest("docker-archive:" + tar.string() + ":" + rb), b.config.digest.str());
}

TEST_F(SaveTest, OneLayerInTwoCompressionsIsWrittenOnce) {
  // The same image with zstd layers: other blobs, the same diffIDs.
  fixtures::BuiltImage z;
  ASSERT_NO_FATAL_FAILURE(PushImage(*reg_, g_->dir() / "z",
                                    fixtures::FixtureImageSpec(fixtures::Compression::kZstd),
                                    "fixture/app:zstd", &z));
  ASSERT_EQ(z.diff_ids, img_.diff_ids);
  const std::string rz = reg_->host() + "/fixture/app:zstd";
  ASSERT_NO_FATAL_FAILURE(PullOk(*g_, {rz}));
  const fs::path tar = g_->dir() / "both.tar";
  Cli({"save", "-o", tar.string(), ref_, rz});
  fixtures::CommandResult list = Tool({"tar", "-tf", tar.string()});
  const std::set<common::Digest> want(img_.diff_ids.begin(), img_.diff_ids.end());
  int tars = 0;
  for (size_t p = 0; (p = list.out.find(".tar\n", p)) != std::string::npos; ++p) ++tars;
  EXPECT_EQ(tars, static_cast<int>(want.size())) << list.out;
  EXPECT_EQ(SkopeoConfigDigest("docker-archive:" + tar.string() + ":" + rz), z.config.digest.str());
}

TEST_F(SaveTest, CopyRegistryToLayoutToArchivesReadsInSkopeo) {
  const fs::path dir = g_->dir() / "copy-layout";
  Cli({"copy", "docker://" + ref_, "oci:" + dir.string() + ":v1"});
  EXPECT_EQ(SkopeoConfigDigest("oci:" + dir.string() + ":v1"), img_.config.digest.str());
  auto index = nlohmann::json::parse(Slurp(dir / "index.json"), nullptr, false);
  ASSERT_TRUE(index.is_object());
  EXPECT_EQ(index["manifests"][0]["digest"], img_.manifest.digest.str());

  const fs::path oa = g_->dir() / "copy.oci.tar";
  Cli({"copy", "oci:" + dir.string() + ":v1", "oci-archive:" + oa.string() + ":v1"});
  EXPECT_EQ(SkopeoConfigDigest("oci-archive:" + oa.string() + ":v1"), img_.config.digest.str());

  const fs::path da = g_->dir() / "copy.docker.tar";
  Cli({"copy", "oci:" + dir.string() + ":v1", "docker-archive:" + da.string() + ":app:v1"});
  EXPECT_EQ(SkopeoConfigDigest("docker-archive:" + da.string()), img_.config.digest.str());
  const fs::path back = g_->dir() / "back";
  Tool({"skopeo", "copy", "docker-archive:" + da.string(), "oci:" + back.string() + ":tag"});
  ASSERT_NO_FATAL_FAILURE(ExpectSameTree(back.string() + ":tag"));

  // gantry: as a source reads the store.
  const fs::path fromstore = g_->dir() / "from-store";
  Cli({"copy", "gantry:" + ref_, "oci:" + fromstore.string() + ":s"});
  EXPECT_EQ(SkopeoConfigDigest("oci:" + fromstore.string() + ":s"), img_.config.digest.str());
}

TEST_F(SaveTest, BadInputFailsAndLeavesNothing) {
  const fs::path out = g_->dir() / "out";
  fs::create_directories(out);
  // An unknown image: nothing written.
  fixtures::CommandResult r = Cli({"save", "-o", (out / "x.tar").string(), "no/such:image"}, 3);
  EXPECT_NE(r.err.find("no/such"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_empty(out));
  // An unwritable path (its parent is a file): one line, nothing left.
  std::ofstream(out / "file") << "x";
  r = Cli({"save", "-o", (out / "file" / "x.tar").string(), ref_}, 1);
  EXPECT_NE(r.err.find("x.tar"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(std::distance(fs::directory_iterator(out), fs::directory_iterator()), 1);
  // Standard output a terminal (script(1) gives it a pty): refused.
  {
    std::string cmd;
    for (const std::string& a : g_->Argv({"save", ref_})) cmd += "'" + a + "' ";
    fixtures::RunOptions opts;
    opts.env = g_->Env();
    auto t = fixtures::RunCommand({"script", "-qec", cmd, "/dev/null"}, opts);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->exit_code, 2) << t->out << t->err;
    EXPECT_NE(t->out.find("refusing to write an archive to a terminal"), std::string::npos)
        << t->out;
  }
  // Transports of other tools are refused by name.
  r = Cli({"copy", "containers-storage:x", "oci:" + (out / "l").string()}, 2);
  EXPECT_NE(r.err.find("containers-storage"), std::string::npos) << r.err;

  // An index to a docker-archive: choose a platform.
  const fs::path layout = g_->dir() / "multi";
  fixtures::BuiltImage amd, a64;
  ASSERT_NO_FATAL_FAILURE(WriteTwoPlatforms(layout, &amd, &a64));
  r = Cli({"copy", "--all", "oci:" + layout.string() + ":multi",
           "docker-archive:" + (out / "multi.tar").string()},
          2);
  EXPECT_NE(r.err.find("--platform"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out / "multi.tar"));
  EXPECT_EQ(std::distance(fs::directory_iterator(out), fs::directory_iterator()), 1);
  // With a platform it works.
  Cli({"copy", "--platform", "linux/arm64", "oci:" + layout.string() + ":multi",
       "docker-archive:" + (out / "multi.tar").string()});
  EXPECT_EQ(SkopeoConfigDigest("docker-archive:" + (out / "multi.tar").string()),
            a64.config.digest.str());
}

}  // namespace
}  // namespace pulltest
