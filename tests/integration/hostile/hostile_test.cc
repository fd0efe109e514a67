// The hostile-layer corpus against the real `gantry pull oci:DIR:TAG`
// (which unpacks): every layer that tries to reach outside its snapshot is
// rejected with one error line naming the entry, or (writes through
// symlinks, which the unpacker resolves inside the root; see
// unpack/apply.h) lands inside the layer. Either way the canaries outside
// the store are unchanged, a rejected layer leaves no committed snapshot
// and no extract snapshot, and the store still pulls a good image.
//
// The small tars are the committed files testdata/hostile/*.tar (checked
// against their generator, fixtures/hostile_corpus.h) and the same corpus
// generated again aimed at this process's canary /tmp/gantry-canary-<pid>.
// The bombs (a 10 GB sparse file, a million empty files) are generated at
// test time.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/fs.h"
#include "fixtures/hostile_corpus.h"
#include "fixtures/image_builder.h"
#include "fixtures/require.h"
#include "integration/pull/pull_helpers.h"

namespace hostiletest {
namespace {

namespace fs = std::filesystem;
using fixtures::HostileLayer;
using pulltest::Describe;
using pulltest::Gantry;

const fs::path kTestdata = fs::path(GANTRY_SOURCE_DIR) / "testdata" / "hostile";
constexpr size_t kMaxCommittedTar = 64 * 1024;

// What a canary file looks like; compared before and after each pull.
struct FileState {
  bool exists = false;
  std::string sha256;
  nlink_t nlink = 0;
  mode_t mode = 0;
  friend bool operator==(const FileState&, const FileState&) = default;
};

std::ostream& operator<<(std::ostream& os, const FileState& s) {
  if (!s.exists) return os << "(absent)";
  return os << s.sha256.substr(0, 19) << " nlink=" << s.nlink << " mode=" << std::oct << s.mode
            << std::dec;
}

FileState Probe(const fs::path& p) {
  FileState s;
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return s;
  s.exists = true;
  s.nlink = st.st_nlink;
  s.mode = st.st_mode;
  if (S_ISREG(st.st_mode)) {
    auto data = common::ReadFile(p, 16u << 20);
    s.sha256 = data ? common::Digest::Sha256Of(*data).str() : "unreadable";
  }
  return s;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream is(text);
  for (std::string line; std::getline(is, line);) out.push_back(line);
  return out;
}

// Whether an error line names `entry` as "entry `NAME`", where a long
// NAME may be shortened to "head...tail".
bool NamesEntry(const std::string& line, const std::string& entry) {
  if (line.find("entry `" + entry + "`") != std::string::npos) return true;
  const size_t start = line.find("entry `");
  if (start == std::string::npos) return false;
  const size_t from = start + 7;
  const size_t end = line.find("`:", from);
  if (end == std::string::npos) return false;
  const std::string shown = line.substr(from, end - from);
  const size_t dots = shown.find("...");
  if (dots == std::string::npos) return false;
  const std::string head = shown.substr(0, dots), tail = shown.substr(dots + 3);
  return head.size() + tail.size() < entry.size() && entry.starts_with(head) &&
         entry.ends_with(tail);
}

// The canaries one pull must leave alone: a file in the test's temp dir
// (what the relative targets aim at), this process's /tmp canary, the
// fixed /tmp canary of the committed tars (normally absent), /etc/passwd.
class Canaries {
 public:
  void Plant(const fs::path& temp_dir) {
    paths_ = {temp_dir / "gantry-canary", PidCanary(), "/tmp/gantry-canary", "/etc/passwd"};
    ASSERT_TRUE(common::AtomicWriteFile(paths_[0], "canary in the test dir\n", 0644));
    ASSERT_TRUE(common::AtomicWriteFile(paths_[1], "canary of this process\n", 0644));
    for (const auto& p : paths_) before_.push_back(Probe(p));
  }
  void ExpectUnchanged() const {
    for (size_t i = 0; i < paths_.size(); ++i)
      EXPECT_EQ(Probe(paths_[i]), before_[i]) << paths_[i] << " changed";
  }
  ~Canaries() {
    if (!paths_.empty()) ::unlink(paths_[1].c_str());
  }
  static fs::path PidCanary() { return "/tmp/gantry-canary-" + std::to_string(::getpid()); }

 private:
  std::vector<fs::path> paths_;
  std::vector<FileState> before_;
};

// One image of one layer (the given tar, gzip'd) in an OCI layout.
fixtures::BuiltImage WriteLayerImage(const fs::path& layout, const std::string& tag,
                                     fixtures::LayerSpec layer) {
  fixtures::ImageSpec spec;
  spec.layers.push_back(std::move(layer));
  auto built = fixtures::WriteImage(layout, spec, tag);
  EXPECT_TRUE(built) << built.error().message;
  return built ? *built : fixtures::BuiltImage{};
}

fixtures::LayerSpec RawLayer(std::string tar) {
  fixtures::LayerSpec l;
  l.raw_tar = std::move(tar);
  return l;
}

class HostileBase : public ::testing::Test {
 protected:
  void SetUp() override {
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
    ASSERT_EQ(gantry_->root(), gantry_->dir() / "root")
        << "the relative canary targets assume <tmp>/root";
    ASSERT_NO_FATAL_FAILURE(canaries_.Plant(gantry_->dir()));
  }

  fs::path Layout() const { return gantry_->dir() / "layout"; }
  std::string Ref(const std::string& tag) const { return "oci:" + Layout().string() + ":" + tag; }

  std::map<std::string, std::string> Snapshots() const { return pulltest::SnapshotKinds(*gantry_); }

  // The rejected layer left nothing committed and no extract snapshot.
  void ExpectNoSnapshotOf(const common::Digest& chain) const {
    for (const auto& [key, kind] : Snapshots()) {
      EXPECT_NE(key, chain.str()) << "the hostile layer's chain was committed (" << kind << ")";
      EXPECT_FALSE(key.starts_with("extract-")) << "extract snapshot left: " << key << " " << kind;
    }
  }

  fs::path SnapshotDir(const std::string& key) const {
    return pulltest::CommittedSnapshotDir(*gantry_, key);
  }

  // A good image still pulls and unpacks into the same store.
  void ExpectStoreUsable() const {
    fixtures::LayerSpec layer;
    layer.entries = {fixtures::File("ok.txt", "fine\n")};
    auto good = WriteLayerImage(Layout(), "good", std::move(layer));
    ASSERT_FALSE(good.diff_ids.empty());
    auto r = gantry_->Run({"pull", Ref("good")});
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->exit_code, 0) << "the store is not usable after the hostile layer\n"
                               << Describe(*r);
    EXPECT_EQ(Snapshots().count(good.diff_ids[0].str()), 1u);
  }

  // Runs `gantry pull REF` expecting a rejection whose one error line names
  // `entry` and contains `message`; with `nofile`, under that
  // RLIMIT_NOFILE (soft and hard).
  void ExpectRejected(const std::string& ref, const std::string& entry, const std::string& message,
                      std::chrono::seconds timeout = std::chrono::seconds(60),
                      uint64_t nofile = 0) const {
    std::vector<std::string> argv = gantry_->Argv({"pull", ref});
    if (nofile != 0) argv = pulltest::WithOpenFileLimit(nofile, argv);
    auto r = fixtures::RunCommand(
        argv, {.env = gantry_->Env(), .cwd = gantry_->dir(), .stdin_data = {}, .timeout = timeout});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_NE(r->exit_code, 0) << "a hostile layer was accepted\n" << Describe(*r);
    std::vector<std::string> errors;
    for (const auto& line : Lines(r->err))
      if (line.starts_with("gantry: ")) errors.push_back(line);
    ASSERT_EQ(errors.size(), 1u) << "want one error line\n" << Describe(*r);
    EXPECT_TRUE(NamesEntry(errors[0], entry))
        << "the error does not name the entry `" << entry.substr(0, 80) << "`:\n"
        << errors[0];
    EXPECT_NE(errors[0].find(message), std::string::npos) << "want `" << message << "` in:\n"
                                                          << errors[0];
  }

  std::unique_ptr<Gantry> gantry_;
  Canaries canaries_;
};

// ---- the small corpus -------------------------------------------------------

struct CorpusCase {
  std::string name;
  bool committed;  // testdata/hostile/<name>.tar, else generated for the pid canary
};

void PrintTo(const CorpusCase& c, std::ostream* os) {
  *os << c.name << (c.committed ? " (committed)" : " (pid canary)");
}

std::vector<CorpusCase> CorpusCases() {
  std::vector<CorpusCase> out;
  auto corpus = fixtures::HostileCorpus();
  if (!corpus) return out;  // CorpusFiles.MatchTheGenerator reports it
  for (const auto& h : *corpus) {
    out.push_back({h.name, true});
    out.push_back({h.name, false});
  }
  return out;
}

class HostileCorpus : public HostileBase, public ::testing::WithParamInterface<CorpusCase> {};

TEST_P(HostileCorpus, StaysInsideTheStore) {
  const CorpusCase& c = GetParam();
  fixtures::CanaryTargets targets;
  if (!c.committed) targets.absolute = Canaries::PidCanary().string();
  auto corpus = fixtures::HostileCorpus(targets);
  ASSERT_TRUE(corpus) << corpus.error().message;
  auto it = std::find_if(corpus->begin(), corpus->end(),
                         [&](const HostileLayer& h) { return h.name == c.name; });
  ASSERT_NE(it, corpus->end());
  const HostileLayer& h = *it;
  if (h.privileged)
    REQUIRE_ROOT("device nodes; unprivileged, devices are skipped (unpack/apply.h)");
  SCOPED_TRACE(h.name + ": " + h.what);

  std::string tar = h.tar;
  if (c.committed) {
    auto data = common::ReadFile(kTestdata / (h.name + ".tar"), kMaxCommittedTar);
    ASSERT_TRUE(data) << data.error().message << " (GANTRY_UPDATE_TESTDATA=1 writes the corpus)";
    tar = std::move(*data);
  }
  auto img = WriteLayerImage(Layout(), "hostile", RawLayer(tar));
  ASSERT_EQ(img.diff_ids.size(), 1u);
  const common::Digest chain = img.diff_ids[0];  // the chainID of a bottom layer

  if (h.outcome == HostileLayer::Outcome::kRejected) {
    ASSERT_NO_FATAL_FAILURE(ExpectRejected(Ref("hostile"), h.entry, h.message));
    ExpectNoSnapshotOf(chain);
  } else {
    auto r = gantry_->Run({"pull", Ref("hostile")});
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->exit_code, 0) << Describe(*r);
    fs::path dir = SnapshotDir(chain.str());
    ASSERT_FALSE(dir.empty());
    struct stat st {};
    const fs::path landed = dir / h.landed;
    ASSERT_EQ(::lstat(landed.c_str(), &st), 0) << "the write did not land inside: " << landed;
    EXPECT_TRUE(S_ISREG(st.st_mode)) << landed << " mode " << std::oct << st.st_mode;
    auto data = common::ReadFile(landed);
    ASSERT_TRUE(data) << data.error().message;
    EXPECT_EQ(*data, h.landed_content);
    for (const auto& [key, kind] : Snapshots())
      EXPECT_FALSE(key.starts_with("extract-")) << "extract snapshot left: " << key;
  }
  canaries_.ExpectUnchanged();
  ASSERT_NO_FATAL_FAILURE(ExpectStoreUsable());
  canaries_.ExpectUnchanged();
}

INSTANTIATE_TEST_SUITE_P(Hostile, HostileCorpus, ::testing::ValuesIn(CorpusCases()),
                         [](const auto& p) {
                           return p.param.name + (p.param.committed ? "_committed" : "_pid");
                         });

// The committed tars are what the generator makes, and small.
TEST(HostileCorpusFiles, MatchTheGenerator) {
  auto corpus = fixtures::HostileCorpus();
  ASSERT_TRUE(corpus) << corpus.error().message;
  const char* update = std::getenv("GANTRY_UPDATE_TESTDATA");
  const bool write = update != nullptr && std::string(update) == "1";
  if (write) {
    ASSERT_TRUE(common::MkdirAll(kTestdata));
  }
  for (const auto& h : *corpus) {
    const fs::path p = kTestdata / (h.name + ".tar");
    EXPECT_LT(h.tar.size(), kMaxCommittedTar) << p;
    if (write) {
      ASSERT_TRUE(common::AtomicWriteFile(p, h.tar, 0644)) << p;
    }
    auto data = common::ReadFile(p, kMaxCommittedTar);
    ASSERT_TRUE(data) << data.error().message
                      << " (GANTRY_UPDATE_TESTDATA=1 rewrites testdata/hostile)";
    EXPECT_TRUE(*data == h.tar) << p << " differs from its generator ("
                                << "GANTRY_UPDATE_TESTDATA=1 rewrites it)";
  }
  std::error_code ec;
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(kTestdata, ec)) {
    if (e.path().extension() != ".tar") continue;
    ++files;
    EXPECT_TRUE(
        std::any_of(corpus->begin(), corpus->end(),
                    [&](const HostileLayer& h) { return h.name + ".tar" == e.path().filename(); }))
        << e.path() << " has no generator";
  }
  EXPECT_EQ(files, corpus->size());
}

// ---- devices without privileges ---------------------------------------------

// Where device nodes are not permitted (an unprivileged gantry), a layer's
// device is not created: like rootless containerd, the unpacker skips it
// with a warning naming the entry and applies the rest (unpack/apply.h),
// rather than failing the image. As root the same layer creates the node
// inside the snapshot, and HostileCorpus's device cases check that it
// cannot be written through. The unprivileged run is `setpriv` to nobody
// when the test is root, gantry itself otherwise.
TEST_F(HostileBase, UnprivilegedDeviceIsSkippedNotCreated) {
  const bool root = ::geteuid() == 0;
  if (root) REQUIRE_TOOLS("setpriv");
  fixtures::TarEntry dev;
  dev.type = fixtures::TarEntry::Type::kBlockDev;
  dev.path = "dev/disk";
  dev.mode = 0660;
  dev.dev_major = 8;
  dev.dev_minor = 0;
  fixtures::LayerSpec layer;
  layer.entries = {fixtures::Dir("dev/"), dev, fixtures::File("after", "applied\n")};
  auto img = WriteLayerImage(Layout(), "device", std::move(layer));
  ASSERT_EQ(img.diff_ids.size(), 1u);

  std::vector<std::string> argv;
  if (root) {
    constexpr uid_t kNobody = 65534;
    std::error_code ec;
    ASSERT_EQ(::lchown(gantry_->dir().c_str(), kNobody, kNobody), 0);
    for (const auto& e : fs::recursive_directory_iterator(gantry_->dir(), ec))
      ASSERT_EQ(::lchown(e.path().c_str(), kNobody, kNobody), 0) << e.path();
    ASSERT_FALSE(ec) << ec.message();
    argv = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
  }
  // The native snapshotter: what an unprivileged gantry falls back to.
  for (const auto& a : gantry_->Argv({"--snapshotter", "native", "pull", Ref("device")}))
    argv.push_back(a);
  auto r = fixtures::RunCommand(argv, {.env = gantry_->Env(),
                                       .cwd = gantry_->dir(),
                                       .stdin_data = {},
                                       .timeout = std::chrono::seconds(60)});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << Describe(*r);
  EXPECT_NE(r->err.find("skipping device node"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("dev/disk"), std::string::npos) << "the warning names the entry\n"
                                                        << r->err;
  auto info = gantry_->Run({"--snapshotter", "native", "snapshot", "info", img.diff_ids[0].str()});
  ASSERT_TRUE(info) << info.error().message;
  ASSERT_EQ(info->exit_code, 0) << Describe(*info);
  auto j = nlohmann::json::parse(info->out, nullptr, false);
  const fs::path dir = gantry_->root() / "snapshots" / std::to_string(j.value("id", -1)) / "fs";
  struct stat st {};
  EXPECT_NE(::lstat((dir / "dev/disk").c_str(), &st), 0) << "a device node was created";
  auto after = common::ReadFile(dir / "after");
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_EQ(*after, "applied\n");
  canaries_.ExpectUnchanged();
}

// ---- corrupt layers -----------------------------------------------------------

// A layer whose bytes are not what its media type says is corrupt content:
// exit 6 (DataLoss) with one line naming the layer, whichever stage found
// it (the magic check, the decoder or the tar reader), from `gantry pull`
// and from `gantry unpack` of an image pulled with --no-unpack (issue 13,
// 6a: random bytes declared gzip exited 2, a gzip of a non-tar 6).
struct CorruptLayerCase {
  std::string name;
  fixtures::Compression declared;
  bool compress;        // the bytes are compressed with `declared` (else taken as the blob)
  std::string message;  // in the error line
};

void PrintTo(const CorruptLayerCase& c, std::ostream* os) { *os << c.name; }

class HostileCorrupt : public HostileBase, public ::testing::WithParamInterface<CorruptLayerCase> {
 protected:
  // One image of one layer holding `bytes` as CorruptLayerCase says.
  fixtures::BuiltImage WriteCorrupt(const std::string& tag, const std::string& bytes) {
    const CorruptLayerCase& c = GetParam();
    fixtures::LayerSpec layer;
    layer.compression = c.declared;
    if (c.compress) {
      layer.raw_tar = bytes;
    } else {
      const fs::path blob = gantry_->dir() / ("blob-" + tag);
      EXPECT_TRUE(common::AtomicWriteFile(blob, bytes, 0644));
      layer.blob_from = blob;
      layer.blob_diff_id = common::Digest::Sha256Of(bytes);
    }
    return WriteLayerImage(Layout(), tag, std::move(layer));
  }

  void ExpectDataLoss(const std::vector<std::string>& args, const fixtures::BuiltImage& img) {
    auto r = gantry_->Run(args);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->exit_code, 6) << Describe(*r);
    std::vector<std::string> errors;
    for (const auto& line : Lines(r->err))
      if (line.starts_with("gantry: ")) errors.push_back(line);
    ASSERT_EQ(errors.size(), 1u) << "want one error line\n" << Describe(*r);
    ASSERT_EQ(img.layers.size(), 1u);
    EXPECT_NE(errors[0].find("apply layer " + img.layers[0].digest.str() + ": "), std::string::npos)
        << "the error does not name the layer:\n"
        << errors[0];
    EXPECT_NE(errors[0].find(GetParam().message), std::string::npos)
        << "want `" << GetParam().message << "` in:\n"
        << errors[0];
  }
};

TEST_P(HostileCorrupt, ExitsDataLossFromPullAndUnpack) {
  const std::string noise = fixtures::NoiseBytes(64 * 1024);
  auto img = WriteCorrupt("corrupt", noise);
  ASSERT_EQ(img.diff_ids.size(), 1u);
  ASSERT_NO_FATAL_FAILURE(ExpectDataLoss({"pull", Ref("corrupt")}, img));
  ExpectNoSnapshotOf(img.diff_ids[0]);

  auto fetched = gantry_->Run({"pull", "--no-unpack", Ref("corrupt")});
  ASSERT_TRUE(fetched) << fetched.error().message;
  ASSERT_EQ(fetched->exit_code, 0) << Describe(*fetched);
  // The name a layout pull records (registry/source.h).
  ASSERT_NO_FATAL_FAILURE(ExpectDataLoss({"unpack", "localhost/layout:corrupt"}, img));
  ExpectNoSnapshotOf(img.diff_ids[0]);
  ASSERT_NO_FATAL_FAILURE(ExpectStoreUsable());
}

INSTANTIATE_TEST_SUITE_P(
    Corrupt, HostileCorrupt,
    ::testing::Values(
        CorruptLayerCase{"random_bytes_as_gzip", fixtures::Compression::kGzip, false,
                         "declared gzip but starts with no known magic"},
        CorruptLayerCase{"gzip_of_non_tar", fixtures::Compression::kGzip, true, "read tar: "},
        CorruptLayerCase{"random_bytes_as_zstd", fixtures::Compression::kZstd, false,
                         "declared zstd but starts with no known magic"},
        CorruptLayerCase{"zstd_of_non_tar", fixtures::Compression::kZstd, true, "read tar: "},
        CorruptLayerCase{"random_bytes_as_tar", fixtures::Compression::kNone, false, "read tar: "}),
    [](const auto& p) { return p.param.name; });

// ---- bombs ------------------------------------------------------------------

class HostileBomb : public HostileBase {};

// The name of entry `limit` + 1 (the first one over the limit) in
// WriteManyFilesLayer's stream: each directory entry is followed by
// its `per_dir` files.
std::string FirstEntryOverLimit(int64_t limit, int per_dir) {
  const int64_t block = per_dir + 1;
  const int64_t dir = limit / block, pos = limit % block;
  char name[64];
  if (pos == 0)
    std::snprintf(name, sizeof name, "d%05lld/", static_cast<long long>(dir));
  else
    std::snprintf(name, sizeof name, "d%05lld/f%08lld", static_cast<long long>(dir),
                  static_cast<long long>(dir * per_dir + pos - 1));
  return name;
}

// 10 GB of apparent size in a 12 KiB tar: rejected by the size limit (8 GiB
// by default) before anything is written, not by the disk filling up.
TEST_F(HostileBomb, SparseTenGigabyteFile) {
  constexpr int64_t kTenGB = 10'000'000'000;
  auto tar = fixtures::SparseFileTar("bomb/sparse.img", kTenGB);
  ASSERT_TRUE(tar) << tar.error().message;
  ASSERT_LT(tar->size(), 64u * 1024);
  auto img = WriteLayerImage(Layout(), "sparse", RawLayer(*tar));
  ASSERT_EQ(img.diff_ids.size(), 1u);
  // The message names the size limit: the header's size stopped it, not a
  // full disk after writing 10 GB.
  ASSERT_NO_FATAL_FAILURE(ExpectRejected(Ref("sparse"), "bomb/sparse.img", "size limit"));
  ExpectNoSnapshotOf(img.diff_ids[0]);
  canaries_.ExpectUnchanged();
  ASSERT_NO_FATAL_FAILURE(ExpectStoreUsable());
}

// A million empty files (and 1,000 directories), generated as a gzip'd
// stream at test time: the entry limit (500,000 by default) stops it, the
// half-million files already written go with the extract snapshot. The
// pull runs with RLIMIT_NOFILE 1024, soft and hard, the soft limit of a
// fresh Debian machine (CI) and of the nodes: empty files weigh nothing in
// the file thread's byte bound, and once held open by the thousand they
// failed the pull with "create file: Too many open files" before the
// entry limit was reached (issue 13). The
// store is on a tmpfs of its own: on this machine's journal-less ext4,
// creating and removing 500,000 inodes takes 20-250 s depending on how
// many recently deleted inodes the file system holds (another run of this
// test, minutes before); on tmpfs a few seconds. The limit and the clean-up
// under test do not depend on the file system.
TEST_F(HostileBomb, MillionEmptyFiles) {
  REQUIRE_ROOT("the store's tmpfs mount");
  REQUIRE_TOOLS("prlimit");
  ASSERT_TRUE(common::MkdirAll(gantry_->root(), 0700));
  auto tmpfs = common::Mount("tmpfs", gantry_->root().string(), "tmpfs", 0,
                             "size=2g,nr_inodes=2000000,mode=0700");
  ASSERT_TRUE(tmpfs) << tmpfs.error().message;
  const fs::path blob = gantry_->dir() / "million.tar.gz";
  auto t0 = std::chrono::steady_clock::now();
  auto diff_id = fixtures::WriteManyFilesLayer(blob, 1000, 1000);
  ASSERT_TRUE(diff_id) << diff_id.error().message;
  fixtures::LayerSpec layer;
  layer.blob_from = blob;
  layer.blob_diff_id = *diff_id;
  auto img = WriteLayerImage(Layout(), "million", std::move(layer));
  ASSERT_EQ(img.diff_ids.size(), 1u);
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_NO_FATAL_FAILURE(ExpectRejected(Ref("million"), FirstEntryOverLimit(500'000, 1000),
                                         "too many entries", std::chrono::seconds(240),
                                         /*nofile=*/1024));
  auto t2 = std::chrono::steady_clock::now();
  std::printf("generate %.1f s (blob %lld bytes), rejected pull %.1f s\n",
              std::chrono::duration<double>(t1 - t0).count(),
              static_cast<long long>(img.layers[0].size),
              std::chrono::duration<double>(t2 - t1).count());
  ExpectNoSnapshotOf(img.diff_ids[0]);
  // The store holds no half-million-file directory any more.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(gantry_->root() / "snapshots", ec))
    EXPECT_FALSE(fs::exists(e.path() / "fs" / "d00000")) << e.path() << " left behind";
  canaries_.ExpectUnchanged();
  ASSERT_NO_FATAL_FAILURE(ExpectStoreUsable());
}

}  // namespace
}  // namespace hostiletest
