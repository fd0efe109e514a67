// `gantry load` and `gantry pull docker-archive:…|oci-archive:…` against
// archives skopeo writes from the registry fixture: the loaded image equals
// the registry pull (config digest = image ID, unpacked layer trees); and
// hostile archives: one-line errors, nothing recorded, fsck clean.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "archive/tar_index.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "fixtures/tree_walk.h"
#include "integration/pull/pull_helpers.h"

namespace pulltest {
namespace {

// The regular files of a tar, in order, with their bytes.
std::vector<std::pair<std::string, std::string>> ReadArchive(const fs::path& file) {
  std::vector<std::pair<std::string, std::string>> out;
  auto fd = common::Open(file.string(), O_RDONLY);
  EXPECT_TRUE(fd) << fd.error().message;
  if (!fd) return out;
  auto st = archives::WalkTar(fd->get(), file.string(),
                              [&](const archives::TarEntry& e, const archives::BodyReader& read) {
                                if (e.type != '0') return common::Status{};
                                std::string body(static_cast<size_t>(e.size), '\0');
                                size_t got = 0;
                                while (got < body.size()) {
                                  auto n = read(body.data() + got, body.size() - got);
                                  if (!n) return common::Status(std::unexpected(n.error()));
                                  if (*n == 0) break;
                                  got += *n;
                                }
                                out.emplace_back(e.name, std::move(body));
                                return common::Status{};
                              });
  EXPECT_TRUE(st) << st.error().message;
  return out;
}

void WriteArchive(const fs::path& file,
                  const std::vector<std::pair<std::string, std::string>>& entries) {
  std::vector<fixtures::TarEntry> tar;
  for (const auto& [name, body] : entries) tar.push_back(fixtures::File(name, body));
  auto bytes = fixtures::BuildTar(tar);
  ASSERT_TRUE(bytes) << bytes.error().message;
  auto w = common::AtomicWriteFile(file, *bytes);
  ASSERT_TRUE(w) << w.error().message;
}

std::string& Entry(std::vector<std::pair<std::string, std::string>>& entries,
                   const std::string& name) {
  for (auto& [n, body] : entries)
    if (n == name) return body;
  ADD_FAILURE() << "no entry " << name;
  static std::string none;
  return none;
}

// Gives the archive's first image a config whose first diffID is wrong;
// returns the name of the layer it no longer matches.
std::string BreakFirstDiffId(std::vector<std::pair<std::string, std::string>>& entries) {
  auto m = nlohmann::json::parse(Entry(entries, "manifest.json"));
  std::string config_name = m[0]["Config"];
  auto config = nlohmann::json::parse(Entry(entries, config_name));
  config["rootfs"]["diff_ids"][0] = common::Digest::Sha256Of("not the layer").str();
  std::string body = config.dump();
  std::string new_name = common::Digest::Sha256Of(body).hex() + ".json";
  entries.emplace_back(new_name, body);
  m[0]["Config"] = new_name;
  Entry(entries, "manifest.json") = m.dump();
  return m[0]["Layers"][0];
}

class LoadTest : public ::testing::Test {
 protected:
  // One registry, image and pair of archives for the whole suite: skopeo
  // takes seconds per copy.
  static void SetUpTestSuite() {
    auto dir = common::TempDir::Create("gantry-load-");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = new common::TempDir(std::move(*dir));
    reg_ = new std::unique_ptr<fixtures::RegistryFixture>;
    ASSERT_NO_FATAL_FAILURE(StartRegistry({}, reg_));
    image_ = new fixtures::BuiltImage;
    layout_ = dir_->path() / "layout";
    ASSERT_NO_FATAL_FAILURE(
        PushImage(**reg_, layout_, fixtures::FixtureImageSpec(), "fixture/app:v1", image_));
    ref_ = (*reg_)->host() + "/fixture/app:v1";
    docker_ = dir_->path() / "app-docker.tar";
    oci_ = dir_->path() / "app-oci.tar";
    ASSERT_NO_FATAL_FAILURE(Skopeo("docker-archive:" + docker_.string() + ":fixture/app:v1"));
    ASSERT_NO_FATAL_FAILURE(Skopeo("oci-archive:" + oci_.string() + ":v1"));
  }
  static void TearDownTestSuite() {
    delete image_;
    delete reg_;
    delete dir_;
  }

  static void Skopeo(const std::string& dest) {
    auto flags = (*reg_)->SkopeoFlags("src");
    ASSERT_TRUE(flags) << flags.error().message;
    std::vector<std::string> argv = {"skopeo", "--insecure-policy", "copy"};
    argv.insert(argv.end(), flags->begin(), flags->end());
    argv.push_back("docker://" + ref_);
    argv.push_back(dest);
    auto run = fixtures::RunCommand(
        argv,
        {.env = {}, .cwd = dir_->path(), .stdin_data = {}, .timeout = std::chrono::seconds(60)});
    ASSERT_TRUE(run) << run.error().message;
    ASSERT_EQ(run->exit_code, 0) << run->Describe(argv);
  }

  void SetUp() override {
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    g_ = std::make_unique<Gantry>(std::move(*g));
  }

  fixtures::CommandResult Run(const Gantry& g, const std::vector<std::string>& args) {
    auto r = g.Run(args);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : fixtures::CommandResult{};
  }

  // The loaded image `name` of `g_` has the registry image's config (its
  // ID) and, layer by layer, the same unpacked trees as a registry pull.
  void ExpectSameAsRegistryPull(const std::string& name) {
    nlohmann::json images = g_->ImagesJson();
    ASSERT_TRUE(images.is_array());
    const nlohmann::json* mine = nullptr;
    for (const auto& i : images)
      if (i["name"] == name) mine = &i;
    ASSERT_NE(mine, nullptr) << name << " not in " << images.dump(2);
    EXPECT_EQ((*mine)["config"], image_->config.digest.str());

    auto pulled = Gantry::Create();
    ASSERT_TRUE(pulled) << pulled.error().message;
    ASSERT_NO_FATAL_FAILURE(PullOk(*pulled, {ref_}));
    auto want = SnapshotKinds(*pulled);
    auto got = SnapshotKinds(*g_);
    ASSERT_EQ(want.size(), image_->layers.size());
    for (const auto& [key, kind] : want) {
      ASSERT_EQ(got.count(key), 1u) << "no snapshot " << key << " after the load";
      auto a = fixtures::WalkTree(CommittedSnapshotDir(*pulled, key));
      auto b = fixtures::WalkTree(CommittedSnapshotDir(*g_, key));
      ASSERT_TRUE(a && b);
      for (const auto& d : fixtures::DiffTrees(*a, *b)) ADD_FAILURE() << key << ": " << d;
    }
  }

  // A load that must fail: one line on stderr naming `file` and `entry`,
  // nothing recorded, fsck clean.
  void ExpectRefused(const fs::path& file, const std::string& entry, int exit_code) {
    auto r = Run(*g_, {"load", "-i", file.string()});
    EXPECT_EQ(r.exit_code, exit_code) << r.out << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(file.string()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(entry), std::string::npos) << r.err;
    EXPECT_TRUE(g_->ImageNames().empty());
    auto fsck = Run(*g_, {"fsck"});
    EXPECT_EQ(fsck.exit_code, 0) << r.err << "\n" << fsck.out << fsck.err;
  }

  static common::TempDir* dir_;
  static std::unique_ptr<fixtures::RegistryFixture>* reg_;
  static fixtures::BuiltImage* image_;
  static fs::path layout_, docker_, oci_;
  static std::string ref_;
  std::unique_ptr<Gantry> g_;
};

common::TempDir* LoadTest::dir_ = nullptr;
std::unique_ptr<fixtures::RegistryFixture>* LoadTest::reg_ = nullptr;
fixtures::BuiltImage* LoadTest::image_ = nullptr;
fs::path LoadTest::layout_, LoadTest::docker_, LoadTest::oci_;
std::string LoadTest::ref_;

TEST_F(LoadTest, DockerArchiveEqualsTheRegistryPull) {
  auto r = Run(*g_, {"load", "-i", docker_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Loaded image: docker.io/fixture/app:v1\n");
  ExpectSameAsRegistryPull("docker.io/fixture/app:v1");
  ExpectNoIngestLeft(g_->root());
}

TEST_F(LoadTest, LoadingTwiceRecordsTheSameManifest) {
  ASSERT_EQ(Run(*g_, {"load", "-i", docker_.string()}).exit_code, 0);
  auto first = g_->ImagesJson();
  ASSERT_EQ(Run(*g_, {"load", "-i", docker_.string()}).exit_code, 0);
  auto second = g_->ImagesJson();
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(first[0]["target"]["digest"], second[0]["target"]["digest"]);
}

TEST_F(LoadTest, OciArchiveEqualsTheRegistryPull) {
  auto r = Run(*g_, {"load", "-i", oci_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Loaded image: localhost/app-oci-tar:v1\n");
  ExpectSameAsRegistryPull("localhost/app-oci-tar:v1");
}

TEST_F(LoadTest, OciLayoutDirectory) {
  auto r = Run(*g_, {"load", "-i", layout_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Loaded image: localhost/layout:push\n");
  ExpectSameAsRegistryPull("localhost/layout:push");
}

TEST_F(LoadTest, PullDockerArchive) {
  auto r = Run(*g_, {"pull", "docker-archive:" + docker_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("docker.io/fixture/app:v1\n"), std::string::npos) << r.out;
  ExpectSameAsRegistryPull("docker.io/fixture/app:v1");
}

TEST_F(LoadTest, PullOciArchiveByTag) {
  auto r = Run(*g_, {"pull", "--name", "app:v1", "oci-archive:" + oci_.string() + ":v1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSameAsRegistryPull("localhost/app:v1");
}

TEST_F(LoadTest, EveryTagOfEveryImageIsRecorded) {
  auto entries = ReadArchive(docker_);
  auto m = nlohmann::json::parse(Entry(entries, "manifest.json"));
  m[0]["RepoTags"] = {"fixture/app:v1", "quay.io/org/app:v2"};
  m.push_back(m[0]);
  m[1]["RepoTags"] = {"fixture/other:v3"};
  Entry(entries, "manifest.json") = m.dump();
  auto file = g_->dir() / "multi.tar";
  ASSERT_NO_FATAL_FAILURE(WriteArchive(file, entries));
  auto r = Run(*g_, {"load", "-i", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Loaded image: docker.io/fixture/app:v1\nLoaded image: quay.io/org/app:v2\n"
            "Loaded image: docker.io/fixture/other:v3\n");
  EXPECT_EQ(g_->ImageNames().size(), 3u);

  // The same archive as a pull source: an image by one of its RepoTags,
  // or by position.
  auto other = Gantry::Create();
  ASSERT_TRUE(other) << other.error().message;
  ASSERT_NO_FATAL_FAILURE(
      PullOk(*other, {"docker-archive:" + file.string() + ":quay.io/org/app:v2"}));
  ASSERT_NO_FATAL_FAILURE(
      PullOk(*other, {"--name", "picked:1", "docker-archive:" + file.string() + ":@1"}));
  auto several = other->Run({"pull", "docker-archive:" + file.string()});
  ASSERT_TRUE(several);
  EXPECT_EQ(several->exit_code, 2) << several->err;
  EXPECT_NE(several->err.find("holds 2 images"), std::string::npos) << several->err;
  auto names = other->ImageNames();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"localhost/picked:1", "quay.io/org/app:v2"}));
}

TEST_F(LoadTest, AnImageWithoutNameGetsOneFromTheFileAndItsIdIsPrinted) {
  auto entries = ReadArchive(docker_);
  auto m = nlohmann::json::parse(Entry(entries, "manifest.json"));
  m[0].erase("RepoTags");
  Entry(entries, "manifest.json") = m.dump();
  auto file = g_->dir() / "No_Tags.tar";
  ASSERT_NO_FATAL_FAILURE(WriteArchive(file, entries));
  auto r = Run(*g_, {"load", "-i", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Loaded image: localhost/no-tags-tar:latest\nLoaded image ID: " +
                       image_->config.digest.str() + "\n");
}

TEST_F(LoadTest, TruncatedArchiveIsRefused) {
  std::string bytes = *common::ReadFile(docker_, 1 << 30);
  auto file = g_->dir() / "cut.tar";
  ASSERT_TRUE(common::AtomicWriteFile(file, bytes.substr(0, bytes.size() / 2)));
  ExpectRefused(file, "truncated", 6);
}

TEST_F(LoadTest, MissingLayerIsRefused) {
  auto entries = ReadArchive(docker_);
  auto m = nlohmann::json::parse(Entry(entries, "manifest.json"));
  m[0]["Layers"][0] = "nope/layer.tar";
  Entry(entries, "manifest.json") = m.dump();
  auto file = g_->dir() / "missing.tar";
  ASSERT_NO_FATAL_FAILURE(WriteArchive(file, entries));
  ExpectRefused(file, "nope/layer.tar", 3);
}

TEST_F(LoadTest, EscapingEntryNameIsRefused) {
  for (std::string evil : {"../evil", "/evil", "a/../../evil"}) {
    auto entries = ReadArchive(docker_);
    entries.emplace_back(evil, "x");
    auto file = g_->dir() / "escape.tar";
    ASSERT_NO_FATAL_FAILURE(WriteArchive(file, entries));
    ExpectRefused(file, evil, 2);
    EXPECT_FALSE(fs::exists(g_->dir() / "evil"));
    EXPECT_FALSE(fs::exists(g_->root().parent_path() / "evil"));
  }
}

TEST_F(LoadTest, DuplicateTagsAreRefused) {
  auto entries = ReadArchive(docker_);
  auto m = nlohmann::json::parse(Entry(entries, "manifest.json"));
  m.push_back(m[0]);
  Entry(entries, "manifest.json") = m.dump();
  auto file = g_->dir() / "dup.tar";
  ASSERT_NO_FATAL_FAILURE(WriteArchive(file, entries));
  ExpectRefused(file, "docker.io/fixture/app:v1", 2);
}

TEST_F(LoadTest, DiffIdMismatchIsRefused) {
  auto entries = ReadArchive(docker_);
  std::string layer = BreakFirstDiffId(entries);
  auto file = g_->dir() / "diffid.tar";
  ASSERT_NO_FATAL_FAILURE(WriteArchive(file, entries));
  ExpectRefused(file, layer, 6);
}

// --- the archive on standard input ----------------------------------------

// The files under content/blobs and content/ingest of `root`.
std::vector<std::string> StoreFiles(const fs::path& root) {
  std::vector<std::string> out;
  for (const char* dir : {"content/blobs", "content/ingest"}) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root / dir, ec);
         it != fs::recursive_directory_iterator(); ++it)
      if (it->is_regular_file()) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// What `gantry images --json` says of each image: name, config, target.
std::vector<std::string> Records(const Gantry& g) {
  std::vector<std::string> out;
  for (const auto& i : g.ImagesJson())
    out.push_back(i["name"].get<std::string>() + " " + i["config"].get<std::string>() + " " +
                  i["target"]["digest"].get<std::string>());
  std::sort(out.begin(), out.end());
  return out;
}

class LoadStdinTest : public LoadTest {
 protected:
  // `gantry load` with `bytes` written into its standard input (a pipe).
  fixtures::CommandResult Pipe(const std::string& bytes, std::vector<std::string> args = {}) {
    args.insert(args.begin(), "load");
    return Run(*g_, args, bytes);
  }
  fixtures::CommandResult Run(const Gantry& g, const std::vector<std::string>& args,
                              const std::string& bytes = {}) {
    auto r = g.Run(args, bytes);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : fixtures::CommandResult{};
  }

  // A streamed load that must fail: one line naming standard input and
  // `entry`, the store as it was (no image, no file under content/blobs or
  // content/ingest), fsck clean.
  void ExpectStreamRefused(const std::string& bytes, const std::string& entry, int exit_code) {
    auto before = StoreFiles(g_->root());
    auto r = Pipe(bytes);
    EXPECT_EQ(r.exit_code, exit_code) << r.out << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("standard input"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(entry), std::string::npos) << r.err;
    EXPECT_TRUE(g_->ImageNames().empty());
    EXPECT_EQ(StoreFiles(g_->root()), before);
    auto fsck = LoadTest::Run(*g_, {"fsck"});
    EXPECT_EQ(fsck.exit_code, 0) << r.err << "\n" << fsck.out << fsck.err;
  }

  // `gantry load ARGS < FILE`, or with `script` `cat "$0" | "$@"`, through sh.
  common::Result<fixtures::CommandResult> LoadFrom(
      const fs::path& file, const std::vector<std::string>& args = {},
      const std::string& script = "exec \"$@\" < \"$0\"") {
    std::vector<std::string> argv = {"sh", "-c", script, file.string()};
    std::vector<std::string> load = {"load"};
    load.insert(load.end(), args.begin(), args.end());
    auto g = g_->Argv(load);
    argv.insert(argv.end(), g.begin(), g.end());
    return fixtures::RunCommand(argv, {.env = g_->Env(),
                                       .cwd = g_->dir(),
                                       .stdin_data = {},
                                       .timeout = std::chrono::seconds(60)});
  }

  // Pipes `bytes` into `gantry load`, which must record `name` as the
  // registry pull does; `file` loaded with -i into a fresh store (`*out`)
  // must record the same config and target, and the same layers.
  void ExpectPipedLikeFile(const std::string& bytes, const fs::path& file, const std::string& name,
                           std::unique_ptr<Gantry>* out) {
    auto r = Pipe(bytes);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "Loaded image: " + name + "\n");
    ExpectSameAsRegistryPull(name);
    ExpectNoIngestLeft(g_->root());
    auto other = Gantry::Create();
    ASSERT_TRUE(other) << other.error().message;
    *out = std::make_unique<Gantry>(std::move(*other));
    ASSERT_EQ(Run(**out, {"load", "-i", file.string()}).exit_code, 0);
    auto mine = g_->ImagesJson(), theirs = (*out)->ImagesJson();
    ASSERT_EQ(mine.size(), 1u);
    ASSERT_EQ(theirs.size(), 1u);
    EXPECT_EQ(mine[0]["config"], theirs[0]["config"]);
    EXPECT_EQ(mine[0]["target"], theirs[0]["target"]);
    EXPECT_EQ(SnapshotKinds(*g_), SnapshotKinds(**out));
  }

  static std::string Bytes(const fs::path& file) { return *common::ReadFile(file, 1 << 30); }

  // `entries` as a tar, in memory.
  static std::string Tar(const std::vector<std::pair<std::string, std::string>>& entries) {
    std::vector<fixtures::TarEntry> tar;
    for (const auto& [name, body] : entries) tar.push_back(fixtures::File(name, body));
    auto bytes = fixtures::BuildTar(tar);
    EXPECT_TRUE(bytes) << bytes.error().message;
    return bytes ? *bytes : std::string();
  }
};

TEST_F(LoadStdinTest, PipedDockerArchiveEqualsTheFileLoad) {
  std::unique_ptr<Gantry> file;
  ASSERT_NO_FATAL_FAILURE(
      ExpectPipedLikeFile(Bytes(docker_), docker_, "docker.io/fixture/app:v1", &file));
  EXPECT_EQ(Records(*g_), Records(*file));

  // `-i -` is the same, and a second load finds everything present.
  auto again = Pipe(Bytes(docker_), {"-i", "-"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "Loaded image: docker.io/fixture/app:v1\n");
  EXPECT_EQ(Records(*g_), Records(*file));
  ExpectNoIngestLeft(g_->root());
}

TEST_F(LoadStdinTest, PipedOciArchiveEqualsTheFileLoad) {
  // An oci-archive's ref names are named after the file; stdin has none.
  std::unique_ptr<Gantry> file;
  ASSERT_NO_FATAL_FAILURE(ExpectPipedLikeFile(Bytes(oci_), oci_, "localhost/stdin:v1", &file));
  EXPECT_EQ(file->ImageNames(), std::vector<std::string>{"localhost/app-oci-tar:v1"});
  EXPECT_EQ(StoreFiles(g_->root()).size(), StoreFiles(file->root()).size());
}

TEST_F(LoadStdinTest, RedirectedFileIsReadInPlace) {
  // `gantry load < FILE`: standard input is the file itself.
  auto r = LoadFrom(docker_);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out, "Loaded image: docker.io/fixture/app:v1\n");
  ExpectSameAsRegistryPull("docker.io/fixture/app:v1");
}

// `gantry load -i <(docker save app)` in bash: FILE is a pipe.
TEST_F(LoadStdinTest, AFileThatIsAPipeIsStreamed) {
  auto r = LoadFrom(docker_, {"-i", "/dev/stdin"}, "cat \"$0\" | \"$@\"");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out, "Loaded image: docker.io/fixture/app:v1\n");
  ExpectSameAsRegistryPull("docker.io/fixture/app:v1");
  ExpectNoIngestLeft(g_->root());
}

TEST_F(LoadStdinTest, TerminalIsRefused) {
  int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  common::UniqueFd pty(master);
  ASSERT_EQ(::grantpt(master), 0);
  ASSERT_EQ(::unlockpt(master), 0);
  std::string tty = ::ptsname(master);
  auto r = LoadFrom(tty);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_EQ(r->err,
            "gantry: load: standard input is a terminal; give the archive with -i FILE or through "
            "a pipe (docker save IMAGE | gantry load)\n");
}

// `docker save app | gzip | gantry load`, as docker load accepts it, and
// the same as a FILE: inflated on the way, the same records.
TEST_F(LoadStdinTest, GzipArchiveOnAPipeAndAsAFile) {
  auto gz = fixtures::Compress(Bytes(docker_), fixtures::Compression::kGzip);
  ASSERT_TRUE(gz) << gz.error().message;
  auto path = g_->dir() / "app.tar.gz";
  ASSERT_TRUE(common::AtomicWriteFile(path, *gz));
  std::unique_ptr<Gantry> file;
  ASSERT_NO_FATAL_FAILURE(ExpectPipedLikeFile(*gz, path, "docker.io/fixture/app:v1", &file));
  EXPECT_EQ(Records(*g_), Records(*file));
  ExpectNoIngestLeft(file->root());
}

TEST_F(LoadStdinTest, CorruptGzipLeavesTheStoreAsItWas) {
  auto gz = fixtures::Compress(Bytes(docker_), fixtures::Compression::kGzip);
  ASSERT_TRUE(gz) << gz.error().message;
  std::string bad = *gz;
  for (size_t i = bad.size() / 3; i < bad.size() / 3 + 64; ++i) bad[i] = static_cast<char>(~bad[i]);
  ExpectStreamRefused(bad, "gzip", 6);
  ExpectStreamRefused(gz->substr(0, gz->size() / 2), "truncated", 6);
}

TEST_F(LoadStdinTest, UntaggedImageIsNamedAfterStdin) {
  auto entries = ReadArchive(docker_);
  auto m = nlohmann::json::parse(Entry(entries, "manifest.json"));
  m[0].erase("RepoTags");
  Entry(entries, "manifest.json") = m.dump();
  auto r = Pipe(Tar(entries));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Loaded image: localhost/stdin:latest\nLoaded image ID: " +
                       image_->config.digest.str() + "\n");
}

TEST_F(LoadStdinTest, TruncatedStreamLeavesTheStoreAsItWas) {
  std::string bytes = Bytes(docker_);
  ExpectStreamRefused(bytes.substr(0, bytes.size() / 2), "truncated", 6);
}

TEST_F(LoadStdinTest, MissingLayerLeavesTheStoreAsItWas) {
  auto entries = ReadArchive(docker_);
  auto m = nlohmann::json::parse(Entry(entries, "manifest.json"));
  m[0]["Layers"][0] = "nope/layer.tar";
  Entry(entries, "manifest.json") = m.dump();
  ExpectStreamRefused(Tar(entries), "nope/layer.tar", 3);
}

TEST_F(LoadStdinTest, EscapingEntryNameLeavesTheStoreAsItWas) {
  auto entries = ReadArchive(docker_);
  entries.emplace_back("../evil", "x");
  ExpectStreamRefused(Tar(entries), "../evil", 2);
  EXPECT_FALSE(fs::exists(g_->dir() / "evil"));
  EXPECT_FALSE(fs::exists(g_->root().parent_path() / "evil"));
}

TEST_F(LoadStdinTest, DuplicateTagsLeaveTheStoreAsItWas) {
  auto entries = ReadArchive(docker_);
  auto m = nlohmann::json::parse(Entry(entries, "manifest.json"));
  m.push_back(m[0]);
  Entry(entries, "manifest.json") = m.dump();
  ExpectStreamRefused(Tar(entries), "docker.io/fixture/app:v1", 2);
}

// The fixture's layers are plain tars, whose digest is their diffID: the
// mismatch is found as the source opens, before any blob is committed, so
// that here too the store is as it was (no blob, no image).
TEST_F(LoadStdinTest, DiffIdMismatchLeavesTheStoreAsItWas) {
  auto entries = ReadArchive(docker_);
  std::string layer = BreakFirstDiffId(entries);
  ExpectStreamRefused(Tar(entries), layer, 6);
}

}  // namespace
}  // namespace pulltest
