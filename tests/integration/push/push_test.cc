// `gantry push` and `gantry tag` against docker-registry, read back with
// skopeo; resume, mount and re-push measured at the fault proxy.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "image/copy.h"
#include "integration/pull/pull_helpers.h"
#include "registry/registry_destination.h"
#include "registry/source.h"

namespace {

using fixtures::RegistryAuth;
using pulltest::Gantry;
namespace fs = std::filesystem;

// skopeo's flags for this registry without a direction (inspect's).
std::vector<std::string> InspectFlags(const fixtures::RegistryFixture& reg) {
  auto flags = reg.SkopeoFlags("src");
  EXPECT_TRUE(flags) << flags.error().message;
  std::vector<std::string> out;
  if (!flags) return out;
  for (std::string f : *flags) out.push_back("--" + f.substr(std::string("--src-").size()));
  return out;
}

// The digest of the manifest skopeo reads at docker://REF.
std::string SkopeoDigest(const fixtures::RegistryFixture& reg, const std::string& ref) {
  std::vector<std::string> argv = {"skopeo", "inspect", "--raw"};
  for (const std::string& f : InspectFlags(reg)) argv.push_back(f);
  argv.push_back("docker://" + ref);
  auto run = fixtures::RunCommand(
      argv, {.env = {}, .cwd = {}, .stdin_data = {}, .timeout = std::chrono::seconds(60)});
  EXPECT_TRUE(run) << run.error().message;
  if (!run) return {};
  EXPECT_EQ(run->exit_code, 0) << run->Describe(argv);
  return common::Digest::Sha256Of(run->out).str();
}

class PushTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_TOOLS("docker-registry", "skopeo");
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
  }

  // A registry holding the fixture image as fixture/app:v1, pulled into
  // the store; `creds_` and `flags_` are what gantry needs for it.
  void StartWithImage(bool tls, RegistryAuth auth) {
    fixtures::RegistryOptions options;
    options.tls = tls;
    options.auth = auth;
    ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry(options, &reg_));
    ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
        *reg_, gantry_->dir() / "layout", fixtures::FixtureImageSpec(), "fixture/app:v1", &image_));
    if (tls) {
      auto certs = reg_->CertsDir(gantry_->registry_config());
      ASSERT_TRUE(certs) << certs.error().message;
    }
    if (auth != RegistryAuth::kNone)
      flags_ = {"--creds", reg_->username() + ":" + reg_->password()};
    // The token server is plain HTTP: credentials go to it only for a
    // registry configured for plain HTTP (docs/registry.md).
    if (auth == RegistryAuth::kToken) flags_.push_back("--plain-http");
    std::vector<std::string> pull = flags_;
    pull.push_back(reg_->host() + "/fixture/app:v1");
    ASSERT_NO_FATAL_FAILURE(pulltest::PullOk(*gantry_, pull));
  }

  fixtures::CommandResult Run(std::vector<std::string> args) {
    auto r = gantry_->Run(args);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : fixtures::CommandResult{};
  }

  // gantry push SRC DEST with flags_, expecting exit 0 and docker's last line.
  void PushOk(const std::string& src, const std::string& dest, const common::Digest& want) {
    std::vector<std::string> args = {"push"};
    args.insert(args.end(), flags_.begin(), flags_.end());
    args.push_back(src);
    args.push_back(dest);
    auto r = Run(args);
    ASSERT_EQ(r.exit_code, 0) << pulltest::Describe(r) << "\n" << reg_->LogTail();
    EXPECT_NE(r.out.find(dest + ": digest: " + want.str() + " size: "), std::string::npos) << r.out;
  }

  void RoundTrip(bool tls, RegistryAuth auth) {
    ASSERT_NO_FATAL_FAILURE(StartWithImage(tls, auth));
    const std::string dest = reg_->host() + "/pushed/app:v2";
    ASSERT_NO_FATAL_FAILURE(PushOk(reg_->host() + "/fixture/app:v1", dest, image_.manifest.digest));
    EXPECT_EQ(SkopeoDigest(*reg_, dest), image_.manifest.digest.str());
  }

  std::unique_ptr<Gantry> gantry_;
  std::unique_ptr<fixtures::RegistryFixture> reg_;
  fixtures::BuiltImage image_;
  std::vector<std::string> flags_;
};

TEST_F(PushTest, PlainRoundTripKeepsTheDigest) { RoundTrip(false, RegistryAuth::kNone); }
TEST_F(PushTest, TlsRoundTripKeepsTheDigest) { RoundTrip(true, RegistryAuth::kNone); }
TEST_F(PushTest, HtpasswdRoundTripKeepsTheDigest) { RoundTrip(false, RegistryAuth::kHtpasswd); }
TEST_F(PushTest, TokenRoundTripKeepsTheDigest) { RoundTrip(false, RegistryAuth::kToken); }

TEST_F(PushTest, MountsFromTheSameRegistryAndRepushMovesOnlyTheManifest) {
  ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
  ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
      *reg_, gantry_->dir() / "layout", fixtures::FixtureImageSpec(), "fixture/app:v1", &image_));
  std::unique_ptr<fixtures::FaultProxy> proxy;
  ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*reg_, &proxy));
  ASSERT_NO_FATAL_FAILURE(pulltest::PullOk(*gantry_, {proxy->host() + "/fixture/app:v1"}));
  proxy->ClearLog();
  const std::string dest = proxy->host() + "/other/app:v2";
  ASSERT_NO_FATAL_FAILURE(PushOk(proxy->host() + "/fixture/app:v1", dest, image_.manifest.digest));
  auto log = proxy->Log();
  const int blobs = 1 + static_cast<int>(image_.layers.size());
  EXPECT_EQ(proxy->CountRequests("POST", "/v2/other/app/blobs/uploads/"), blobs)
      << "one mount per blob";
  EXPECT_EQ(proxy->CountRequests("PATCH", "/blobs/uploads/"), 0) << "mounted blobs send no bytes";
  EXPECT_EQ(proxy->CountRequests("PUT", "/blobs/uploads/"), 0);
  EXPECT_EQ(SkopeoDigest(*reg_, reg_->host() + "/other/app:v2"), image_.manifest.digest.str());

  proxy->ClearLog();
  ASSERT_NO_FATAL_FAILURE(PushOk(proxy->host() + "/fixture/app:v1", dest, image_.manifest.digest));
  log = proxy->Log();
  EXPECT_EQ(proxy->CountRequests("HEAD", "/v2/other/app/blobs/"), blobs);
  EXPECT_EQ(proxy->CountRequests("PUT", "/v2/other/app/manifests/"), 2)
      << "by digest, then the tag";
  EXPECT_EQ(static_cast<int>(log.size()), blobs + 2) << "nothing but HEADs and the manifest";
}

TEST_F(PushTest, ResumesACutUploadFromWhatTheRegistryHolds) {
  ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
  ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
      *reg_, gantry_->dir() / "layout", fixtures::FixtureImageSpec(), "fixture/app:v1", &image_));
  std::unique_ptr<fixtures::FaultProxy> proxy;
  ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*reg_, &proxy));
  const fixtures::BlobInfo& big = pulltest::BiggestLayer(image_);
  const int64_t chunk = big.size / 3 + 1;  // three PATCHes for the biggest layer
  ASSERT_GT(chunk, 1024);

  auto src_ref = registry::ImageRef::Parse(reg_->host() + "/fixture/app:v1");
  auto dst_ref = registry::ImageRef::Parse(proxy->host() + "/resumed/app:v1");
  ASSERT_TRUE(src_ref && dst_ref);
  auto source = registry::OpenRegistrySource(*src_ref, {});
  ASSERT_TRUE(source) << source.error().message;
  registry::ClientOptions dst_options;
  dst_options.upload_chunk_bytes = chunk;
  dst_options.backoff.initial = std::chrono::milliseconds(1);
  auto dest = registry::OpenRegistryDestination(*dst_ref, dst_options);
  ASSERT_TRUE(dest) << dest.error().message;

  // Once the first chunk of the biggest layer is in, the next PATCH fails.
  bool armed = false;
  int64_t resumed_at = -1;
  int64_t last = 0;
  image::CopyOptions options{.max_parallel = 1};
  options.on_event = [&](const image::CopyEvent& e) {
    if (e.kind != image::CopyEvent::Kind::kBlobProgress || e.blob.digest != big.digest) return;
    if (armed && resumed_at < 0 && e.bytes < last) resumed_at = e.bytes;
    last = e.bytes;
    if (!armed && e.bytes > chunk) {
      armed = true;
      proxy->AddRule({.kind = fixtures::FaultRule::Kind::kStatus,
                      .path_contains = "/blobs/uploads/",
                      .method = "PATCH",
                      .status = 503});
    }
  };
  auto copied = image::CopyImage(**source, **dest, options);
  ASSERT_TRUE(copied) << copied.error().message;
  registry::DestinationImage out{.top = copied->top, .names = {}};
  ASSERT_TRUE((*dest)->Commit(std::span(&out, 1), nullptr));
  ASSERT_TRUE(armed);
  EXPECT_EQ(proxy->Stats().faults["status_503"], 1);

  // Every blob larger than a chunk goes in PATCHes of a chunk; one of them
  // was refused and sent again, and nothing else: the upload resumed from
  // the registry's offset, not from the start of the layer.
  int patches = 1;
  for (const fixtures::BlobInfo& l : image_.layers)
    if (l.size > chunk) patches += static_cast<int>((l.size + chunk - 1) / chunk);
  EXPECT_EQ(proxy->CountRequests("PATCH", "/blobs/uploads/"), patches);
  EXPECT_EQ(proxy->CountRequests("GET", "/blobs/uploads/"), 1) << "one upload status";
  // Read again from the registry's offset (a chunk in), not from 0.
  EXPECT_GT(resumed_at, chunk) << "the source was read again from the registry's offset";
  EXPECT_LT(resumed_at, 2 * chunk);
  EXPECT_EQ(SkopeoDigest(*reg_, reg_->host() + "/resumed/app:v1"), image_.manifest.digest.str());
  // The registry checked each blob's digest at its PUT; a pull checks again.
  ASSERT_NO_FATAL_FAILURE(pulltest::PullOk(*gantry_, {reg_->host() + "/resumed/app:v1"}));
  pulltest::ExpectBlobsInStore(gantry_->root(), pulltest::ImageDigests(image_));
}

// Pushes from local files (an OCI layout here; the store and archives
// alike) stream each blob larger than a chunk from its file, a chunk per
// PATCH. These copy the fixture's layout through the proxy with a chunk
// of a third of the biggest layer (the first one) and `rule` in place,
// and return the Content-Range of every PATCH, in order.
class StreamedPushTest : public PushTest {
 protected:
  void SetUp() override {
    PushTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    layout_ = gantry_->dir() / "layout";
    ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
    ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(*reg_, layout_, fixtures::FixtureImageSpec(),
                                                "fixture/app:v1", &image_));
    ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*reg_, &proxy_));
    const fixtures::BlobInfo& big = pulltest::BiggestLayer(image_);
    ASSERT_EQ(big.digest, image_.layers[0].digest) << "the biggest layer goes first";
    chunk_ = big.size / 3 + 1;  // three PATCHes for it
    ASSERT_GT(chunk_, 4096);
  }

  std::vector<std::string> CopyWith(const fixtures::FaultRule& rule) {
    auto dst_ref = registry::ImageRef::Parse(proxy_->host() + "/streamed/app:v1");
    EXPECT_TRUE(dst_ref);
    auto source = registry::OpenLayoutSource(layout_, "push");
    EXPECT_TRUE(source) << source.error().message;
    registry::ClientOptions dst_options;
    dst_options.upload_chunk_bytes = chunk_;
    dst_options.backoff.initial = std::chrono::milliseconds(1);
    auto dest = registry::OpenRegistryDestination(*dst_ref, dst_options);
    EXPECT_TRUE(dest) << dest.error().message;
    if (!dst_ref || !source || !dest) return {};
    proxy_->AddRule(rule);
    auto copied = image::CopyImage(**source, **dest, {.max_parallel = 1});
    EXPECT_TRUE(copied) << copied.error().message;
    if (!copied) return {};
    registry::DestinationImage out{.top = copied->top, .names = {}};
    EXPECT_TRUE((*dest)->Commit(std::span(&out, 1), nullptr));
    EXPECT_EQ(proxy_->Stats().faults["cut_upload"], 1);
    // What the registry holds is whole: skopeo reads the pushed manifest,
    // and a pull verifies every blob.
    EXPECT_EQ(SkopeoDigest(*reg_, reg_->host() + "/streamed/app:v1"), image_.manifest.digest.str());
    pulltest::PullOk(*gantry_, {reg_->host() + "/streamed/app:v1"});
    pulltest::ExpectBlobsInStore(gantry_->root(), pulltest::ImageDigests(image_));
    std::vector<std::string> ranges;
    for (const fixtures::ProxyLogEntry& e : proxy_->Log())
      if (e.method == "PATCH") ranges.push_back(e.content_range);
    return ranges;
  }

  // "A-B" for the PATCH of bytes [from, from + n) of a blob.
  static std::string Range(int64_t from, int64_t n) {
    return std::to_string(from) + "-" + std::to_string(from + n - 1);
  }

  fs::path layout_;
  std::unique_ptr<fixtures::FaultProxy> proxy_;
  int64_t chunk_ = 0;
};

// A PATCH cut before the registry got any of it: the upload resumes from
// the registry's offset (the chunk before), reading the file from there.
TEST_F(StreamedPushTest, ResumesFromTheRegistrysOffsetAfterACut) {
  const int64_t big = image_.layers[0].size;
  auto ranges = CopyWith({.kind = fixtures::FaultRule::Kind::kCutUpload,
                          .path_contains = "/blobs/uploads/",
                          .method = "PATCH",
                          .skip = 1,  // the second PATCH of the biggest layer
                          .bytes = 0});
  ASSERT_GE(ranges.size(), 4u);
  EXPECT_EQ(ranges[0], Range(0, chunk_));
  EXPECT_EQ(ranges[1], Range(chunk_, chunk_)) << "cut";
  EXPECT_EQ(ranges[2], Range(chunk_, chunk_)) << "sent again from the registry's offset";
  EXPECT_EQ(ranges[3], Range(2 * chunk_, big - 2 * chunk_));
}

// A PATCH cut after the registry took part of it: docker-registry then
// cancels the upload (its state no longer matches what it holds), and the
// blob is sent again in a new session, from 0.
TEST_F(StreamedPushTest, StartsOverWhenTheRegistryCancelledACutUpload) {
  const int64_t big = image_.layers[0].size;
  const int64_t blobs = 1 + static_cast<int64_t>(image_.layers.size());
  auto ranges = CopyWith({.kind = fixtures::FaultRule::Kind::kCutUpload,
                          .path_contains = "/blobs/uploads/",
                          .method = "PATCH",
                          .bytes = chunk_ / 2});
  // libcurl may send the cut PATCH once more by itself (its connection
  // was reused): the registry refuses that one, the session being gone.
  ASSERT_GE(ranges.size(), 4u);
  ASSERT_LE(ranges.size(), 5u);
  EXPECT_EQ(ranges[0], Range(0, chunk_)) << "cut, half of it taken";
  const size_t n = ranges.size();
  EXPECT_EQ(ranges[n - 3], Range(0, chunk_)) << "a new session starts at 0";
  EXPECT_EQ(ranges[n - 2], Range(chunk_, chunk_));
  EXPECT_EQ(ranges[n - 1], Range(2 * chunk_, big - 2 * chunk_));
  EXPECT_EQ(proxy_->CountRequests("POST", "/blobs/uploads/"), blobs + 1) << "one more session";
}

TEST_F(PushTest, CopiesAnIndexWholeBetweenRegistries) {
  ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
  const fs::path layout = gantry_->dir() / "multi";
  auto amd = fixtures::WriteImage(layout, fixtures::FixtureImageSpec(), "");
  auto arm = fixtures::WriteImage(
      layout, fixtures::FixtureImageSpec(fixtures::Compression::kGzip, "arm64", "v8"), "");
  ASSERT_TRUE(amd && arm);
  auto index = fixtures::WriteIndex(
      layout, {{*amd, "linux", "amd64", ""}, {*arm, "linux", "arm64", "v8"}}, "multi");
  ASSERT_TRUE(index) << index.error().message;
  ASSERT_NO_FATAL_FAILURE(pulltest::PushLayout(*reg_, layout, "multi", "fixture/multi:v1"));

  auto src_ref = registry::ImageRef::Parse(reg_->host() + "/fixture/multi:v1");
  auto dst_ref = registry::ImageRef::Parse(reg_->host() + "/copied/multi:v1");
  auto source = registry::OpenRegistrySource(*src_ref, {});
  auto dest = registry::OpenRegistryDestination(*dst_ref, {});
  ASSERT_TRUE(source && dest);
  auto copied =
      image::CopyImage(**source, **dest, {.all_platforms = true, .mount_from = "fixture/multi"});
  ASSERT_TRUE(copied) << copied.error().message;
  EXPECT_EQ(copied->top.digest, index->digest);
  registry::DestinationImage out{.top = copied->top, .names = {}};
  ASSERT_TRUE((*dest)->Commit(std::span(&out, 1), nullptr));
  EXPECT_EQ(SkopeoDigest(*reg_, dst_ref->str()), index->digest.str());

  // The CLI: the store holds one platform of the index; that manifest goes.
  ASSERT_NO_FATAL_FAILURE(pulltest::PullOk(*gantry_, {src_ref->str()}));
  auto r = Run({"push", src_ref->str(), reg_->host() + "/one/app:v1"});
  ASSERT_EQ(r.exit_code, 0) << pulltest::Describe(r);
  EXPECT_NE(r.err.find("pushing its manifest " + amd->manifest.digest.str()), std::string::npos)
      << r.err;
  EXPECT_EQ(SkopeoDigest(*reg_, reg_->host() + "/one/app:v1"), amd->manifest.digest.str());
}

TEST_F(PushTest, BadInputFailsInOneLine) {
  ASSERT_NO_FATAL_FAILURE(StartWithImage(false, RegistryAuth::kHtpasswd));
  // One error line (retries before it are logged as warnings, as pull's).
  auto one_line = [](const fixtures::CommandResult& r) {
    int errors = 0;
    for (size_t at = 0; (at = r.err.find("gantry: ", at)) != std::string::npos; ++at)
      errors += at == 0 || r.err[at - 1] == '\n';
    return errors == 1 && r.err.ends_with("\n");
  };
  auto unknown = Run({"push", reg_->host() + "/fixture/nope:v1"});
  EXPECT_EQ(unknown.exit_code, 3) << pulltest::Describe(unknown);
  EXPECT_TRUE(one_line(unknown)) << unknown.err;

  auto wrong = Run({"push", "--creds", reg_->username() + ":wrong",
                    reg_->host() + "/fixture/app:v1", reg_->host() + "/other/app:v1"});
  EXPECT_EQ(wrong.exit_code, 4) << pulltest::Describe(wrong);
  EXPECT_TRUE(one_line(wrong)) << wrong.err;

  // A registry that is down: a port nothing listens on any more.
  auto down = fixtures::RegistryFixture::Start({});
  ASSERT_TRUE(down) << down.error().message;
  const std::string host = down->host();
  down->Stop();
  const auto start = std::chrono::steady_clock::now();
  auto refused = Run({"push", reg_->host() + "/fixture/app:v1", host + "/x/app:v1"});
  EXPECT_EQ(refused.exit_code, 5) << pulltest::Describe(refused);
  EXPECT_TRUE(one_line(refused)) << refused.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(40));
}

TEST_F(PushTest, TagAddsANameForTheSameImage) {
  ASSERT_NO_FATAL_FAILURE(StartWithImage(false, RegistryAuth::kNone));
  const std::string src = reg_->host() + "/fixture/app:v1";
  auto r = Run({"tag", src, "mine:v1"});
  ASSERT_EQ(r.exit_code, 0) << pulltest::Describe(r);
  auto images = gantry_->ImagesJson();
  std::map<std::string, std::string> ids;
  for (const auto& i : images) ids[i.value("name", "")] = i.value("id", "");
  ASSERT_TRUE(ids.contains("localhost/mine:v1")) << images.dump();
  EXPECT_EQ(ids["localhost/mine:v1"], ids[src]);

  // Moving a name that exists, then removing the original.
  EXPECT_EQ(Run({"tag", "mine:v1", "localhost/mine:v1"}).exit_code, 0);
  ASSERT_EQ(Run({"rmi", src}).exit_code, 0);
  auto names = gantry_->ImageNames();
  EXPECT_EQ(names, std::vector<std::string>{"localhost/mine:v1"});
  // The unpacked image keeps its chain: it mounts under the new name.
  auto inspect = Run({"inspect", "localhost/mine:v1"});
  EXPECT_EQ(inspect.exit_code, 0) << pulltest::Describe(inspect);

  auto missing = Run({"tag", "nope:v9", "x:v1"});
  EXPECT_EQ(missing.exit_code, 3) << pulltest::Describe(missing);
  auto bad = Run({"tag", "mine:v1", "UPPER:case"});
  EXPECT_EQ(bad.exit_code, 2) << pulltest::Describe(bad);
}

}  // namespace
