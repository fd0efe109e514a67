// RegistryClient against the real registry (Debian's docker-registry) in
// its anonymous, htpasswd, token and TLS set-ups, with faults injected by
// the loopback FaultProxy in front of it. Images are pushed with skopeo.

#include "registry/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/digest.h"
#include "common/env.h"
#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/fault_proxy.h"
#include "fixtures/http_server.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/registry_fixture.h"
#include "fixtures/require.h"
#include "fixtures/token_server.h"
#include "registry/reference.h"

namespace registry {
namespace {

namespace fs = std::filesystem;
using common::Errc;
using fixtures::FaultProxy;
using fixtures::FaultRule;
using fixtures::RegistryAuth;
using fixtures::RegistryFixture;
using std::chrono::milliseconds;

constexpr char kRepo[] = "fixture/app";

// Time moves only when the client sleeps; sleeps are recorded, not slept.
class FakeEnv : public common::Env {
 public:
  std::chrono::steady_clock::time_point Now() override {
    std::lock_guard lock(mu_);
    return now_;
  }
  std::chrono::system_clock::time_point WallNow() override {
    return std::chrono::system_clock::now();
  }
  void SleepFor(std::chrono::steady_clock::duration d) override {
    std::lock_guard lock(mu_);
    now_ += d;
    slept_ += std::chrono::duration_cast<milliseconds>(d);
  }
  milliseconds slept() {
    std::lock_guard lock(mu_);
    return slept_;
  }

 private:
  std::mutex mu_;
  std::chrono::steady_clock::time_point now_{std::chrono::hours(1)};
  milliseconds slept_{0};
};

// A sink in memory, as the puller's ingest file would be.
class MemorySink : public BlobSink {
 public:
  explicit MemorySink(std::string prefill = {}) : data_(std::move(prefill)) {}
  int64_t offset() const override { return static_cast<int64_t>(data_.size()); }
  common::Status Write(std::span<const std::byte> data) override {
    data_.append(reinterpret_cast<const char*>(data.data()), data.size());
    if (on_write) on_write();
    return {};
  }
  common::Status Restart() override {
    ++restarts;
    data_.clear();
    return {};
  }
  const std::string& data() const { return data_; }
  int restarts = 0;
  std::function<void()> on_write;

 private:
  std::string data_;
};

struct Pushed {
  fixtures::BuiltImage image;
  std::string layout_dir;
};

// Builds the fixture image and pushes it to `reg` as fixture/app:v1.
void Push(const RegistryFixture& reg, const fs::path& work, Pushed* out) {
  const fs::path layout = work / "layout";
  auto built = fixtures::WriteImage(layout, fixtures::FixtureImageSpec(), "v1");
  ASSERT_TRUE(built) << built.error().message;
  auto flags = reg.SkopeoFlags("dest");
  ASSERT_TRUE(flags) << flags.error().message;
  std::vector<std::string> argv = {"skopeo", "--insecure-policy", "copy", "--preserve-digests"};
  argv.insert(argv.end(), flags->begin(), flags->end());
  argv.push_back("oci:" + layout.string() + ":v1");
  argv.push_back("docker://" + reg.host() + "/" + kRepo + ":v1");
  auto run = fixtures::RunCommand(
      argv, {.env = {}, .cwd = work, .stdin_data = {}, .timeout = std::chrono::seconds(120)});
  ASSERT_TRUE(run) << run.error().message;
  ASSERT_EQ(run->exit_code, 0) << run->Describe(argv) << "\n" << reg.LogTail();
  out->image = std::move(*built);
  out->layout_dir = layout.string();
}

ImageRef Ref(const std::string& host) {
  auto r = ImageRef::Parse(host + "/" + kRepo + ":v1");
  EXPECT_TRUE(r) << r.error().message;
  return *r;
}

Credentials UserPass(const std::string& user, const std::string& pass) {
  Credentials c;
  c.username = user;
  c.password = pass;
  return c;
}

std::unique_ptr<RegistryClient> MakeClient(ClientOptions options) {
  auto c = RegistryClient::Create(std::move(options));
  EXPECT_TRUE(c) << c.error().message;
  return c ? std::move(*c) : nullptr;
}

// Options whose config dirs are empty temp dirs (never /etc) and whose
// clock is fake.
ClientOptions BaseOptions(const fs::path& config_dir, common::Env* env) {
  ClientOptions o;
  o.hosts.config_dirs = {config_dir};
  o.env = env;
  return o;
}

void WriteFile(const fs::path& p, const std::string& text) {
  ASSERT_TRUE(common::MkdirAll(p.parent_path()));
  ASSERT_TRUE(common::AtomicWriteFile(p, text));
}

// ---------------------------------------------------------------------------
// One anonymous plain-HTTP registry shared by the read-only tests.

class AnonymousRegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fixtures::FindExecutable("docker-registry") || !fixtures::FindExecutable("skopeo")) return;
    auto work = common::TempDir::Create("rc-anon");
    ASSERT_TRUE(work) << work.error().message;
    work_ = new common::TempDir(std::move(*work));
    auto reg = RegistryFixture::Start();
    ASSERT_TRUE(reg) << reg.error().message;
    reg_ = new RegistryFixture(std::move(*reg));
    pushed_ = new Pushed;
    Push(*reg_, work_->path(), pushed_);
  }
  static void TearDownTestSuite() {
    delete pushed_;
    delete reg_;
    delete work_;
    pushed_ = nullptr;
    reg_ = nullptr;
    work_ = nullptr;
  }

  void SetUp() override {
    REQUIRE_TOOLS("docker-registry", "skopeo");
    ASSERT_NE(reg_, nullptr);
    auto d = common::TempDir::Create("rc-cfg");
    ASSERT_TRUE(d);
    config_ = std::move(*d);
  }

  // A fault proxy in front of the shared registry.
  std::unique_ptr<FaultProxy> Proxy() {
    auto p = FaultProxy::Start(reg_->base_url());
    EXPECT_TRUE(p) << p.error().message;
    return p ? std::move(*p) : nullptr;
  }

  const fixtures::BlobInfo& BigLayer() const {
    const fixtures::BlobInfo* best = &pushed_->image.layers.front();
    for (const auto& l : pushed_->image.layers)
      if (l.size > best->size) best = &l;
    return *best;
  }

  static common::TempDir* work_;
  static RegistryFixture* reg_;
  static Pushed* pushed_;
  common::TempDir config_;
  FakeEnv env_;
};

common::TempDir* AnonymousRegistryTest::work_ = nullptr;
RegistryFixture* AnonymousRegistryTest::reg_ = nullptr;
Pushed* AnonymousRegistryTest::pushed_ = nullptr;

TEST_F(AnonymousRegistryTest, GetManifestByTagAndDigestThenEveryBlob) {
  auto client = MakeClient(BaseOptions(config_.path(), &env_));
  ASSERT_TRUE(client);
  ImageRef ref = Ref(reg_->host());
  auto m = client->GetManifest(ref, "v1");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->digest, pushed_->image.manifest.digest);
  EXPECT_EQ(m->media_type, pushed_->image.manifest.media_type);
  EXPECT_EQ(static_cast<int64_t>(m->body.size()), pushed_->image.manifest.size);

  auto by_digest = client->GetManifest(ref, pushed_->image.manifest.digest.str());
  ASSERT_TRUE(by_digest) << by_digest.error().message;
  EXPECT_EQ(by_digest->body, m->body);

  std::vector<fixtures::BlobInfo> blobs = pushed_->image.layers;
  blobs.push_back(pushed_->image.config);
  for (const auto& b : blobs) {
    MemorySink sink;
    auto st = client->FetchBlob(ref, b.digest, b.size, sink);
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_EQ(static_cast<int64_t>(sink.data().size()), b.size);
    EXPECT_EQ(common::Digest::Sha256Of(sink.data()), b.digest);
    EXPECT_EQ(sink.restarts, 0);
  }
  EXPECT_EQ(env_.slept(), milliseconds(0)) << "no retries against a healthy registry";
}

TEST_F(AnonymousRegistryTest, OneClientServesManyThreads) {
  auto client = MakeClient(BaseOptions(config_.path(), &env_));
  ASSERT_TRUE(client);
  ImageRef ref = Ref(reg_->host());
  std::vector<fixtures::BlobInfo> blobs = pushed_->image.layers;
  blobs.push_back(pushed_->image.config);
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 3; ++round) {
        auto m = client->GetManifest(ref, "v1");
        if (m && m->digest == pushed_->image.manifest.digest) ++good;
        for (const auto& b : blobs) {
          MemorySink sink;
          if (client->FetchBlob(ref, b.digest, b.size, sink) &&
              common::Digest::Sha256Of(sink.data()) == b.digest)
            ++good;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 4 * 3 * static_cast<int>(1 + blobs.size()));
}

TEST_F(AnonymousRegistryTest, UnknownTagIsNotFoundNamingTheFullReference) {
  auto client = MakeClient(BaseOptions(config_.path(), &env_));
  auto m = client->GetManifest(Ref(reg_->host()), "nope");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kNotFound);
  EXPECT_NE(m.error().message.find("manifest unknown: " + reg_->host() + "/fixture/app:nope"),
            std::string::npos)
      << m.error().message;
}

TEST_F(AnonymousRegistryTest, UnknownBlobIsNotFound) {
  auto client = MakeClient(BaseOptions(config_.path(), &env_));
  MemorySink sink;
  auto digest = common::Digest::Sha256Of(std::string_view("not pushed"));
  auto st = client->FetchBlob(Ref(reg_->host()), digest, 10, sink);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kNotFound);
  EXPECT_NE(st.error().message.find(digest.str()), std::string::npos) << st.error().message;
}

TEST_F(AnonymousRegistryTest, ResumesFromSinkOffsetWithRange) {
  auto proxy = Proxy();
  ASSERT_TRUE(proxy);
  auto client = MakeClient(BaseOptions(config_.path(), &env_));
  const auto& layer = BigLayer();
  // The first half, as a previous interrupted download left it.
  MemorySink full;
  ASSERT_TRUE(client->FetchBlob(Ref(reg_->host()), layer.digest, layer.size, full));
  const int64_t half = layer.size / 2;
  MemorySink sink(full.data().substr(0, static_cast<size_t>(half)));

  auto st = client->FetchBlob(Ref(proxy->host()), layer.digest, layer.size, sink);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(sink.restarts, 0) << "the registry honours Range";
  EXPECT_EQ(common::Digest::Sha256Of(sink.data()), layer.digest);
  auto log = proxy->Log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].range, "bytes=" + std::to_string(half) + "-");
  EXPECT_EQ(log[0].status, 206);
  EXPECT_EQ(log[0].body_bytes_sent, layer.size - half);
}

TEST_F(AnonymousRegistryTest, ServerIgnoringRangeRestartsTheSink) {
  auto proxy = Proxy();
  ASSERT_TRUE(proxy);
  const auto& layer = BigLayer();
  proxy->AddRule({.kind = FaultRule::Kind::kIgnoreRange, .path_contains = "/blobs/"});
  auto client = MakeClient(BaseOptions(config_.path(), &env_));
  MemorySink sink(std::string(100, 'x'));
  auto st = client->FetchBlob(Ref(proxy->host()), layer.digest, layer.size, sink);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(sink.restarts, 1);
  EXPECT_EQ(common::Digest::Sha256Of(sink.data()), layer.digest);
}

// Peers (registry/peers.h) named in a fixed order.
class FixedPeers final : public BlobPeers {
 public:
  explicit FixedPeers(std::vector<std::string> peers) : peers_(std::move(peers)) {}
  PeerPlan HomesFor(const common::Digest&) override { return {.peers = peers_}; }

 private:
  std::vector<std::string> peers_;
};

// A memory sink that hashes what it holds as it is written and says so
// (BlobSink::held_digest), as the store's ingest does: FetchBlob then
// judges a peer by this digest instead of hashing the bytes itself.
class DigestKeepingSink final : public MemorySink {
 public:
  common::Status Write(std::span<const std::byte> data) override {
    hash_.Update(data);
    return MemorySink::Write(data);
  }
  common::Status Restart() override {
    hash_ = common::Sha256();
    return MemorySink::Restart();
  }
  std::optional<common::Digest> held_digest() const override { return hash_.Current(); }

 private:
  common::Sha256 hash_;
};

// The first peer sends the blob's length of inverted bytes: it is caught by
// digest before FetchBlob returns, whether the sink keeps a digest (one
// hash per byte) or FetchBlob hashes the bytes itself, and the next peer
// serves the blob.
TEST_F(AnonymousRegistryTest, LyingPeerIsCaughtByDigestAndTheNextPeerServes) {
  const auto& layer = BigLayer();
  for (bool keeps_digest : {true, false}) {
    SCOPED_TRACE(keeps_digest ? "sink keeps a digest" : "sink keeps no digest");
    auto liar = Proxy();
    auto honest = Proxy();
    ASSERT_TRUE(liar && honest);
    liar->AddRule({.kind = FaultRule::Kind::kWrongBytes, .path_contains = "/blobs/", .times = -1});
    ClientOptions o = BaseOptions(config_.path(), &env_);
    o.peers = std::make_shared<FixedPeers>(std::vector<std::string>{liar->host(), honest->host()});
    auto client = MakeClient(std::move(o));
    ASSERT_TRUE(client);
    std::unique_ptr<MemorySink> sink =
        keeps_digest ? std::make_unique<DigestKeepingSink>() : std::make_unique<MemorySink>();
    // The registry itself is never asked: its host is not a peer and the
    // second peer serves the blob.
    auto st = client->FetchBlob(Ref(liar->host()), layer.digest, layer.size, *sink);
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_EQ(common::Digest::Sha256Of(sink->data()), layer.digest);
    EXPECT_EQ(sink->restarts, 1) << "the liar's bytes were dropped";
    auto lied = liar->Log();
    ASSERT_EQ(lied.size(), 1u);
    EXPECT_EQ(lied[0].fault, "wrong_bytes");
    EXPECT_EQ(lied[0].body_bytes_sent, layer.size) << "the right length, wrong bytes";
    auto served = honest->Log();
    ASSERT_EQ(served.size(), 1u);
    EXPECT_EQ(served[0].status, 200);
  }
}

// Every peer lies: FetchBlob never returns their bytes as the blob; it
// goes on to the registry's host, which serves it.
TEST_F(AnonymousRegistryTest, OnlyLyingPeersLeaveTheBlobToTheRegistry) {
  const auto& layer = BigLayer();
  auto liar = Proxy();
  auto registry = Proxy();
  ASSERT_TRUE(liar && registry);
  liar->AddRule({.kind = FaultRule::Kind::kWrongBytes, .path_contains = "/blobs/", .times = -1});
  ClientOptions o = BaseOptions(config_.path(), &env_);
  o.peers = std::make_shared<FixedPeers>(std::vector<std::string>{liar->host()});
  auto client = MakeClient(std::move(o));
  ASSERT_TRUE(client);
  DigestKeepingSink sink;
  auto st = client->FetchBlob(Ref(registry->host()), layer.digest, layer.size, sink);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(common::Digest::Sha256Of(sink.data()), layer.digest);
  EXPECT_EQ(sink.restarts, 1);
  ASSERT_EQ(liar->Log().size(), 1u);
  EXPECT_EQ(liar->Log()[0].fault, "wrong_bytes");
  auto log = registry->Log();
  ASSERT_EQ(log.size(), 1u) << "the registry's host served the blob";
  EXPECT_EQ(log[0].status, 200);
}

TEST_F(AnonymousRegistryTest, CutMidwayResumesWithoutCountingAnAttempt) {
  auto proxy = Proxy();
  ASSERT_TRUE(proxy);
  const auto& layer = BigLayer();
  ASSERT_GT(layer.size, 4000);
  // More cuts than max_attempts: each brings bytes, so none counts.
  proxy->AddRule(
      {.kind = FaultRule::Kind::kCutMidway, .path_contains = "/blobs/", .times = 3, .bytes = 1000});
  ClientOptions o = BaseOptions(config_.path(), &env_);
  o.max_attempts = 2;
  auto client = MakeClient(std::move(o));
  MemorySink sink;
  auto st = client->FetchBlob(Ref(proxy->host()), layer.digest, layer.size, sink);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(common::Digest::Sha256Of(sink.data()), layer.digest);
  EXPECT_EQ(sink.restarts, 0);
  auto log = proxy->Log();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].range, "");
  EXPECT_EQ(log[1].range, "bytes=1000-");
  EXPECT_EQ(log[2].range, "bytes=2000-");
  EXPECT_EQ(log[3].range, "bytes=3000-");
}

TEST_F(AnonymousRegistryTest, ServiceUnavailableIsRetriedHonouringRetryAfter) {
  auto proxy = Proxy();
  ASSERT_TRUE(proxy);
  proxy->AddRule({.kind = FaultRule::Kind::kStatus,
                  .path_contains = "/manifests/",
                  .times = 2,
                  .status = 503,
                  .retry_after = 7});
  auto client = MakeClient(BaseOptions(config_.path(), &env_));
  auto m = client->GetManifest(Ref(proxy->host()), "v1");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->digest, pushed_->image.manifest.digest);
  EXPECT_EQ(proxy->CountRequests("GET", "/manifests/"), 3);
  EXPECT_EQ(env_.slept(), milliseconds(14'000)) << "two waits of Retry-After: 7";
}

TEST_F(AnonymousRegistryTest, PersistentTooManyRequestsGivesUpAfterMaxAttempts) {
  auto proxy = Proxy();
  ASSERT_TRUE(proxy);
  proxy->AddRule(
      {.kind = FaultRule::Kind::kStatus, .path_contains = "/blobs/", .times = -1, .status = 429});
  ClientOptions o = BaseOptions(config_.path(), &env_);
  o.max_attempts = 3;
  auto client = MakeClient(std::move(o));
  MemorySink sink;
  const auto& layer = BigLayer();
  auto st = client->FetchBlob(Ref(proxy->host()), layer.digest, layer.size, sink);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kUnavailable);
  EXPECT_NE(st.error().message.find("429"), std::string::npos) << st.error().message;
  EXPECT_EQ(proxy->CountRequests("GET", "/blobs/"), 3);
  EXPECT_GT(env_.slept(), milliseconds(0));
}

TEST_F(AnonymousRegistryTest, StalledTransferAbortsWithAClearError) {
  auto proxy = Proxy();
  ASSERT_TRUE(proxy);
  const auto& layer = BigLayer();
  proxy->AddRule(
      {.kind = FaultRule::Kind::kStall, .path_contains = "/blobs/", .times = -1, .bytes = 10});
  ClientOptions o = BaseOptions(config_.path(), &env_);
  o.max_attempts = 1;
  o.min_rate_window = std::chrono::seconds(1);
  auto client = MakeClient(std::move(o));
  MemorySink sink;
  auto st = client->FetchBlob(Ref(proxy->host()), layer.digest, layer.size, sink);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kUnavailable);
  EXPECT_NE(st.error().message.find("download of " + layer.digest.str() +
                                    " stalled: under 1024 B/s for 1 s"),
            std::string::npos)
      << st.error().message;
}

TEST_F(AnonymousRegistryTest, TrickleDoesNotKeepATransferAlive) {
  auto proxy = Proxy();
  ASSERT_TRUE(proxy);
  const auto& layer = BigLayer();
  proxy->AddRule({.kind = FaultRule::Kind::kTrickle,
                  .path_contains = "/blobs/",
                  .times = -1,
                  .interval = milliseconds(50)});
  ClientOptions o = BaseOptions(config_.path(), &env_);
  o.max_attempts = 1;
  o.min_rate_window = std::chrono::seconds(1);
  auto client = MakeClient(std::move(o));
  MemorySink sink;
  auto st = client->FetchBlob(Ref(proxy->host()), layer.digest, layer.size, sink);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kUnavailable);
  EXPECT_NE(st.error().message.find("stalled"), std::string::npos) << st.error().message;
  EXPECT_LT(sink.offset(), layer.size);
}

TEST_F(AnonymousRegistryTest, RedirectIsFollowedWithoutRegistryHeaders) {
  auto proxy = Proxy();
  ASSERT_TRUE(proxy);
  const auto& layer = BigLayer();
  proxy->AddRule({.kind = FaultRule::Kind::kRedirect, .path_contains = "/blobs/"});
  WriteFile(config_.path() / proxy->host() / "hosts.toml",
            "[header]\n  x-registry-only = \"yes\"\n");
  auto client = MakeClient(BaseOptions(config_.path(), &env_));
  MemorySink sink;
  auto st = client->FetchBlob(Ref(proxy->host()), layer.digest, layer.size, sink);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(common::Digest::Sha256Of(sink.data()), layer.digest);
  auto log = proxy->Log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].status, 307);
  EXPECT_TRUE(log[1].via_blob_host);
  EXPECT_FALSE(log[1].had_authorization);
}

TEST_F(AnonymousRegistryTest, ManifestWithWrongBytesIsDataLoss) {
  auto proxy = Proxy();
  ASSERT_TRUE(proxy);
  proxy->AddRule(
      {.kind = FaultRule::Kind::kWrongBytes, .path_contains = "/manifests/", .times = -1});
  auto client = MakeClient(BaseOptions(config_.path(), &env_));
  auto m = client->GetManifest(Ref(proxy->host()), pushed_->image.manifest.digest.str());
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kDataLoss) << m.error().message;
}

TEST_F(AnonymousRegistryTest, LongerBlobThanItsSizeIsDataLoss) {
  auto client = MakeClient(BaseOptions(config_.path(), &env_));
  const auto& layer = BigLayer();
  MemorySink sink;
  auto st = client->FetchBlob(Ref(reg_->host()), layer.digest, layer.size - 1, sink);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kDataLoss);
}

TEST_F(AnonymousRegistryTest, CancelAbortsMidTransfer) {
  auto proxy = Proxy();
  ASSERT_TRUE(proxy);
  const auto& layer = BigLayer();
  proxy->AddRule({.kind = FaultRule::Kind::kStall, .path_contains = "/blobs/", .bytes = 10});
  auto client = MakeClient(BaseOptions(config_.path(), &env_));
  std::atomic<bool> cancel{false};
  MemorySink sink;
  sink.on_write = [&] { cancel = true; };
  auto st = client->FetchBlob(Ref(proxy->host()), layer.digest, layer.size, sink, &cancel);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Errc::kCancelled) << st.error().message;
}

TEST_F(AnonymousRegistryTest, ConnectionRefusedNamesTheUrl) {
  auto port = fixtures::FreeLoopbackPort();
  ASSERT_TRUE(port);
  ClientOptions o = BaseOptions(config_.path(), &env_);
  o.max_attempts = 2;
  auto client = MakeClient(std::move(o));
  const std::string host = "127.0.0.1:" + std::to_string(*port);
  auto m = client->GetManifest(Ref(host), "v1");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kUnavailable);
  EXPECT_NE(m.error().message.find("http://" + host + "/v2/fixture/app/manifests/v1"),
            std::string::npos)
      << m.error().message;
}

TEST_F(AnonymousRegistryTest, FailingMirrorsAreSkippedForTheUpstream) {
  auto refused = fixtures::FreeLoopbackPort();
  ASSERT_TRUE(refused);
  auto broken = Proxy();  // answers 503 to everything
  ASSERT_TRUE(broken);
  broken->AddRule({.kind = FaultRule::Kind::kStatus,
                   .path_contains = "",
                   .method = "",
                   .times = -1,
                   .status = 503});
  auto empty = Proxy();  // 404 for the blob
  ASSERT_TRUE(empty);
  empty->AddRule(
      {.kind = FaultRule::Kind::kStatus, .path_contains = "/blobs/", .times = -1, .status = 404});
  WriteFile(config_.path() / reg_->host() / "hosts.toml",
            "[host.\"http://127.0.0.1:" + std::to_string(*refused) + "\"]\n" + "[host.\"" +
                broken->base_url() + "\"]\n" + "[host.\"" + empty->base_url() + "\"]\n");
  ClientOptions o = BaseOptions(config_.path(), &env_);
  o.max_attempts = 2;
  auto client = MakeClient(std::move(o));
  auto hosts = client->HostsFor(reg_->host());
  ASSERT_TRUE(hosts);
  ASSERT_EQ(hosts->size(), 4u);

  const auto& layer = BigLayer();
  MemorySink sink;
  auto st = client->FetchBlob(Ref(reg_->host()), layer.digest, layer.size, sink);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(common::Digest::Sha256Of(sink.data()), layer.digest);
  EXPECT_EQ(broken->CountRequests("GET", "/blobs/"), 2) << "retried, then skipped";
  EXPECT_EQ(empty->CountRequests("GET", "/blobs/"), 1) << "404 skips at once";
}

TEST_F(AnonymousRegistryTest, NotFoundFromEveryHostIsNotFound) {
  auto mirror = Proxy();
  ASSERT_TRUE(mirror);
  WriteFile(config_.path() / reg_->host() / "hosts.toml",
            "[host.\"" + mirror->base_url() + "\"]\n");
  auto client = MakeClient(BaseOptions(config_.path(), &env_));
  auto m = client->GetManifest(Ref(reg_->host()), "nope");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kNotFound);
  EXPECT_EQ(mirror->CountRequests("GET", "/manifests/nope"), 1);
}

// ---------------------------------------------------------------------------
// Auth and TLS: one registry per test.

class RegistryVariantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_TOOLS("docker-registry", "skopeo");
    auto w = common::TempDir::Create("rc-var");
    ASSERT_TRUE(w);
    work_ = std::move(*w);
    config_ = work_.path() / "config";
    ASSERT_TRUE(common::MkdirAll(config_));
  }

  void Start(bool tls, RegistryAuth auth) {
    fixtures::RegistryOptions o;
    o.tls = tls;
    o.auth = auth;
    auto reg = RegistryFixture::Start(o);
    ASSERT_TRUE(reg) << reg.error().message;
    reg_ = std::make_unique<RegistryFixture>(std::move(*reg));
    ASSERT_NO_FATAL_FAILURE(Push(*reg_, work_.path(), &pushed_));
  }

  common::TempDir work_;
  fs::path config_;
  std::unique_ptr<RegistryFixture> reg_;
  Pushed pushed_;
  FakeEnv env_;
};

TEST_F(RegistryVariantTest, BasicAuthWithLookedUpCredentials) {
  ASSERT_NO_FATAL_FAILURE(Start(false, RegistryAuth::kHtpasswd));
  std::vector<std::string> asked;
  ClientOptions o = BaseOptions(config_, &env_);
  o.lookup = [&](std::string_view host) -> common::Result<std::optional<Credentials>> {
    asked.emplace_back(host);
    return UserPass(reg_->username(), reg_->password());
  };
  auto client = MakeClient(std::move(o));
  ImageRef ref = Ref(reg_->host());
  auto m = client->GetManifest(ref, "v1");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->digest, pushed_.image.manifest.digest);
  for (const auto& l : pushed_.image.layers) {
    MemorySink sink;
    ASSERT_TRUE(client->FetchBlob(ref, l.digest, l.size, sink));
    EXPECT_EQ(common::Digest::Sha256Of(sink.data()), l.digest);
  }
  EXPECT_EQ(asked, std::vector<std::string>{reg_->host()}) << "looked up once, lazily";
}

TEST_F(RegistryVariantTest, BasicAuthWrongPasswordIsUnauthenticated) {
  ASSERT_NO_FATAL_FAILURE(Start(false, RegistryAuth::kHtpasswd));
  ClientOptions o = BaseOptions(config_, &env_);
  o.creds = UserPass(reg_->username(), "wrong");
  o.hosts.plain_http = true;  // the password reaches the token server, which refuses it
  auto client = MakeClient(std::move(o));
  auto m = client->GetManifest(Ref(reg_->host()), "v1");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kUnauthenticated);
  EXPECT_NE(m.error().message.find("HTTP 401"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find("authentication required for " + reg_->host() + "/fixture/app"),
            std::string::npos)
      << m.error().message;
}

TEST_F(RegistryVariantTest, BasicAuthWithoutCredentialsIsUnauthenticated) {
  ASSERT_NO_FATAL_FAILURE(Start(false, RegistryAuth::kHtpasswd));
  auto client = MakeClient(BaseOptions(config_, &env_));
  auto m = client->GetManifest(Ref(reg_->host()), "v1");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kUnauthenticated) << m.error().message;
}

TEST_F(RegistryVariantTest, TokenAuthReusesTheTokenAcrossBlobs) {
  ASSERT_NO_FATAL_FAILURE(Start(false, RegistryAuth::kToken));
  fixtures::TokenServer* ts = reg_->token_server();
  ASSERT_NE(ts, nullptr);
  ts->ClearRequests();
  ClientOptions o = BaseOptions(config_, &env_);
  o.creds = UserPass(reg_->username(), reg_->password());
  // The token server is plain http on another loopback port: credentials
  // go there only when the user configured plain http (auth.h).
  o.hosts.plain_http = true;
  auto client = MakeClient(std::move(o));
  ImageRef ref = Ref(reg_->host());
  auto m = client->GetManifest(ref, "v1");
  ASSERT_TRUE(m) << m.error().message;
  std::vector<fixtures::BlobInfo> blobs = pushed_.image.layers;
  blobs.push_back(pushed_.image.config);
  for (const auto& b : blobs) {
    MemorySink sink;
    auto st = client->FetchBlob(ref, b.digest, b.size, sink);
    ASSERT_TRUE(st) << st.error().message;
    EXPECT_EQ(common::Digest::Sha256Of(sink.data()), b.digest);
  }
  auto requests = ts->requests();
  ASSERT_EQ(requests.size(), 1u) << "one token for the manifest and every blob";
  EXPECT_TRUE(requests[0].had_authorization);
  EXPECT_EQ(requests[0].username, reg_->username());
  EXPECT_EQ(requests[0].scopes, std::vector<std::string>{"repository:fixture/app:pull"});
  EXPECT_EQ(requests[0].status, 200);
}

TEST_F(RegistryVariantTest, TokenAuthAnonymousPull) {
  ASSERT_NO_FATAL_FAILURE(Start(false, RegistryAuth::kToken));
  reg_->token_server()->ClearRequests();
  auto client = MakeClient(BaseOptions(config_, &env_));
  auto m = client->GetManifest(Ref(reg_->host()), "v1");
  ASSERT_TRUE(m) << m.error().message;
  auto requests = reg_->token_server()->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_FALSE(requests[0].had_authorization);
}

TEST_F(RegistryVariantTest, TokenAuthWrongPasswordIsUnauthenticated) {
  ASSERT_NO_FATAL_FAILURE(Start(false, RegistryAuth::kToken));
  ClientOptions o = BaseOptions(config_, &env_);
  o.creds = UserPass(reg_->username(), "wrong");
  o.hosts.plain_http = true;  // the password reaches the token server, which refuses it
  auto client = MakeClient(std::move(o));
  auto m = client->GetManifest(Ref(reg_->host()), "v1");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kUnauthenticated);
  EXPECT_NE(m.error().message.find("HTTP 401"), std::string::npos) << m.error().message;
  EXPECT_NE(m.error().message.find("authentication required for " + reg_->host() + "/fixture/app"),
            std::string::npos)
      << m.error().message;
}

TEST_F(RegistryVariantTest, TlsWithTheFixtureCaFromACertsDir) {
  ASSERT_NO_FATAL_FAILURE(Start(true, RegistryAuth::kHtpasswd));
  auto certs = reg_->CertsDir(config_);
  ASSERT_TRUE(certs) << certs.error().message;
  ClientOptions o = BaseOptions(config_, &env_);
  o.creds = UserPass(reg_->username(), reg_->password());
  auto client = MakeClient(std::move(o));
  auto hosts = client->HostsFor(reg_->host());
  ASSERT_TRUE(hosts);
  ASSERT_EQ(hosts->size(), 1u);
  EXPECT_EQ((*hosts)[0].scheme, "https");
  ImageRef ref = Ref(reg_->host());
  auto m = client->GetManifest(ref, "v1");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->digest, pushed_.image.manifest.digest);
  const auto& layer = pushed_.image.layers.front();
  MemorySink sink;
  ASSERT_TRUE(client->FetchBlob(ref, layer.digest, layer.size, sink));
  EXPECT_EQ(common::Digest::Sha256Of(sink.data()), layer.digest);
}

TEST_F(RegistryVariantTest, TlsWithAnUnknownCaNamesTheCasTried) {
  ASSERT_NO_FATAL_FAILURE(Start(true, RegistryAuth::kNone));
  // A CA that did not sign the registry's certificate.
  fixtures::CertificateOptions ca_options;
  ca_options.common_name = "other CA";
  ca_options.is_ca = true;
  auto other = fixtures::MakeCertificate(ca_options);
  ASSERT_TRUE(other) << other.error().message;
  const fs::path ca = config_ / reg_->host() / "other.crt";
  WriteFile(ca, other->cert_pem);
  ClientOptions o = BaseOptions(config_, &env_);
  auto client = MakeClient(std::move(o));
  auto m = client->GetManifest(Ref(reg_->host()), "v1");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kUnavailable);
  const std::string& msg = m.error().message;
  EXPECT_NE(msg.find("TLS handshake with " + reg_->host() + " failed"), std::string::npos) << msg;
  EXPECT_NE(msg.find("CA tried: " + ca.string() + ", system CAs"), std::string::npos) << msg;
}

TEST_F(RegistryVariantTest, TlsVerifyOffAcceptsTheFixtureCertificate) {
  ASSERT_NO_FATAL_FAILURE(Start(true, RegistryAuth::kNone));
  WriteFile(config_ / reg_->host() / "hosts.toml",
            "server = \"https://" + reg_->host() + "\"\nskip_verify = true\n");
  auto client = MakeClient(BaseOptions(config_, &env_));
  auto m = client->GetManifest(Ref(reg_->host()), "v1");
  ASSERT_TRUE(m) << m.error().message;
}

}  // namespace
}  // namespace registry
