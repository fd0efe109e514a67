// PullImage under load and faults, through the fault proxy: single-flight
// and parallel pulls (each blob requested from the registry once), the
// rate floor cancelling a trickle and the next pull resuming the partial
// blob, token auth through AuthConfig, and pull progress seen over the
// socket and by `gantry pull --attach` from another process. Against a
// misbehaving registry whose manifest headers trickle: the floor and the
// server's shutdown stop the pull (the manifest request obeys cancel).

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "common/fs.h"
#include "fixtures/misbehaving_registry.h"
#include "integration/cri/cri_helpers.h"

namespace critest {
namespace {

class CriPull : public CriTest {
 protected:
  void StartPlain() {
    ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
    ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
        *reg_, gantry_->dir() / "layout", fixtures::FixtureImageSpec(), "fixture/app:v1", &image_));
    ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*reg_, &proxy_));
  }

  std::unique_ptr<fixtures::RegistryFixture> reg_;
  std::unique_ptr<fixtures::FaultProxy> proxy_;
  fixtures::BuiltImage image_;
  std::unique_ptr<CriServer> srv_;
};

TEST_F(CriPull, TwentyConcurrentPullsOfFourImagesFetchEachBlobOnce) {
  ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
  std::vector<fixtures::BuiltImage> images(4);
  std::vector<std::string> refs;
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string repo = "fixture/img" + std::to_string(i);
    ASSERT_NO_FATAL_FAILURE(
        pulltest::PushImage(*reg_, gantry_->dir() / ("layout-" + std::to_string(i)),
                            pulltest::SharedBaseSpec(repo), repo + ":v1", &images[i]));
  }
  ASSERT_EQ(images[0].layers[0].digest, images[3].layers[0].digest);
  ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*reg_, &proxy_));
  for (size_t i = 0; i < images.size(); ++i)
    refs.push_back(proxy_->host() + "/fixture/img" + std::to_string(i) + ":v1");
  ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry_, {"--max-parallel-pulls", "3"}, &srv_));

  std::vector<grpc::Status> results(20);
  std::vector<std::string> image_refs(20);
  {
    std::vector<std::thread> threads;
    for (size_t c = 0; c < results.size(); ++c)
      threads.emplace_back(
          [&, c] { results[c] = Pull(*srv_, refs[c % refs.size()], &image_refs[c]); });
    for (auto& t : threads) t.join();
  }
  for (size_t c = 0; c < results.size(); ++c) {
    ASSERT_TRUE(results[c].ok()) << refs[c % refs.size()] << ": " << results[c].error_message()
                                 << "\n"
                                 << srv_->LogText();
    EXPECT_EQ(image_refs[c], images[c % refs.size()].config.digest.str());
  }

  std::map<std::string, int> gets;  // blob → successful GETs from the registry
  for (const auto& e : proxy_->Log())
    if (e.method == "GET" && e.path.find("/blobs/") != std::string::npos && e.status / 100 == 2)
      ++gets[e.path.substr(e.path.rfind('/') + 1)];
  std::set<std::string> blobs;
  for (const auto& img : images) {
    blobs.insert(img.config.digest.str());
    for (const auto& l : img.layers) blobs.insert(l.digest.str());
  }
  for (const auto& b : blobs) EXPECT_EQ(gets[b], 1) << b << " requested " << gets[b] << " times";
  EXPECT_EQ(gets.size(), blobs.size());
  EXPECT_EQ(List(*srv_).size(), 4u);
}

TEST_F(CriPull, RateFloorCancelsTrickleAndNextPullResumes) {
  ASSERT_NO_FATAL_FAILURE(StartPlain());
  const auto& big = pulltest::BiggestLayer(image_);
  proxy_->AddRule({.kind = fixtures::FaultRule::Kind::kTrickle,
                   .path_contains = "/blobs/" + big.digest.str(),
                   .interval = std::chrono::milliseconds(100)});
  ASSERT_NO_FATAL_FAILURE(
      CriServer::Start(*gantry_, {"--min-rate", "1024", "--min-rate-window", "2"}, &srv_));
  const std::string ref = proxy_->host() + "/fixture/app:v1";
  const auto start = std::chrono::steady_clock::now();
  auto st = Pull(*srv_, ref, nullptr);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("less than 1024 bytes/s for 2 s"), std::string::npos)
      << st.error_message();
  EXPECT_LT(took, std::chrono::seconds(30));
  const int64_t partial = pulltest::IngestSize(gantry_->root(), big.digest);
  EXPECT_GT(partial, 0) << "the partial blob is kept";
  EXPECT_FALSE(Status(*srv_, ref).has_image());

  std::string image_ref;
  st = Pull(*srv_, ref, &image_ref);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << srv_->LogText();
  EXPECT_EQ(image_ref, image_.config.digest.str());
  auto gets = pulltest::BlobGets(proxy_->Log(), big.digest);
  ASSERT_GE(gets.size(), 2u);
  EXPECT_EQ(gets.front().range, "") << "the first GET starts at 0";
  EXPECT_TRUE(gets.back().range.starts_with("bytes=")) << "the next pull resumes with Range";
  EXPECT_NE(gets.back().range, "bytes=0-");
  pulltest::ExpectNoIngestLeft(gantry_->root());
}

// A CRI pull whose layer waits for another process downloading the same
// blob (slowly) is not cancelled by its own rate floor: the floor is
// suspended while it waits, and the blob comes from the other download.
TEST_F(CriPull, RateFloorWaitsForAnotherProcessDownloadingTheSameBlob) {
  ASSERT_NO_FATAL_FAILURE(StartPlain());
  const auto& big = pulltest::BiggestLayer(image_);
  proxy_->AddRule({.kind = fixtures::FaultRule::Kind::kTrickle,
                   .path_contains = "/blobs/" + big.digest.str(),
                   .interval = std::chrono::milliseconds(50)});
  ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry_, {"--min-rate-window", "1"}, &srv_));
  const std::string ref = proxy_->host() + "/fixture/app:v1";
  // The CLI pull trickles until its own (client) floor of 4 s gives up on
  // the transfer and resumes it, untrickled.
  const fs::path log = gantry_->dir() / "cli.log";
  auto cli = gantry_->Spawn({"pull", "--no-unpack", "--min-rate-window", "4", ref}, log, log);
  ASSERT_TRUE(cli) << cli.error().message;
  ASSERT_TRUE(fixtures::WaitUntil(
      [&] {
        for (const auto& e : proxy_->Log())
          if (e.path.find(big.digest.str()) != std::string::npos && e.fault == "trickle")
            return true;
        return false;
      },
      std::chrono::seconds(30)));
  std::string image_ref;
  auto st = Pull(*srv_, ref, &image_ref);
  EXPECT_TRUE(st.ok()) << st.error_message() << "\n" << srv_->LogText();
  auto rc = cli->WaitFor(fixtures::Clock::now() + std::chrono::seconds(60));
  ASSERT_TRUE(rc && rc->has_value());
  auto out = common::ReadFile(log);
  EXPECT_EQ(**rc, 0) << (out ? *out : "");
  auto gets = pulltest::BlobGets(proxy_->Log(), big.digest);
  for (const auto& g : gets)
    EXPECT_TRUE(g.range.empty() || g.range != "bytes=0-")
        << "the blob was downloaded once, resumed";
  EXPECT_EQ(gets.size(), 2u) << "the CLI's trickled GET and its resume; none from the server";
}

TEST_F(CriPull, TokenAuthThroughAuthConfigAndWrongPassword) {
  fixtures::RegistryOptions options;
  options.auth = fixtures::RegistryAuth::kToken;
  options.anonymous_actions = {};  // no anonymous pulls: credentials are needed
  ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry(options, &reg_));
  ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
      *reg_, gantry_->dir() / "layout", fixtures::FixtureImageSpec(), "fixture/app:v1", &image_));
  // The token server is plain http on another loopback port: credentials
  // go there only with --plain-http (docs/registry.md).
  ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry_, {"--plain-http"}, &srv_));
  const std::string ref = reg_->host() + "/fixture/app:v1";

  auto st = Pull(*srv_, ref, nullptr);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();

  runtime::v1::AuthConfig wrong;
  wrong.set_username(reg_->username());
  wrong.set_password("not-" + reg_->password());
  st = Pull(*srv_, ref, nullptr, &wrong);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << st.error_message();
  EXPECT_NE(st.error_message().find(reg_->host()), std::string::npos)
      << "the error names the registry: " << st.error_message();
  EXPECT_EQ(srv_->LogText().find(wrong.password()), std::string::npos)
      << "the password must never be logged";

  runtime::v1::AuthConfig right;
  right.set_username(reg_->username());
  right.set_password(reg_->password());
  right.set_server_address(reg_->host());
  std::string image_ref;
  st = Pull(*srv_, ref, &image_ref, &right);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(image_ref, image_.config.digest.str());

  // `auth` (base64 of user:password) works as well.
  runtime::v1::RemoveImageRequest rm;
  rm.mutable_image()->set_image(image_ref);
  runtime::v1::RemoveImageResponse rm_resp;
  auto ctx = Ctx();
  ASSERT_TRUE(srv_->images->RemoveImage(ctx.get(), rm, &rm_resp).ok());
  runtime::v1::AuthConfig b64;
  const std::string userpass = reg_->username() + ":" + reg_->password();
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string enc;
  for (size_t i = 0; i < userpass.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(userpass[i]) << 16;
    if (i + 1 < userpass.size()) n |= static_cast<uint8_t>(userpass[i + 1]) << 8;
    if (i + 2 < userpass.size()) n |= static_cast<uint8_t>(userpass[i + 2]);
    enc += kAlphabet[(n >> 18) & 63];
    enc += kAlphabet[(n >> 12) & 63];
    enc += i + 1 < userpass.size() ? kAlphabet[(n >> 6) & 63] : '=';
    enc += i + 2 < userpass.size() ? kAlphabet[n & 63] : '=';
  }
  b64.set_auth(enc);
  st = Pull(*srv_, ref, nullptr, &b64);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(srv_->LogText().find(reg_->password()), std::string::npos)
      << "the password must never be logged";
}

// A registry whose manifest headers trickle one byte a second; the pull
// of its image is the one to stop.
void StartTrickledManifest(std::unique_ptr<fixtures::MisbehavingRegistry>* out, std::string* ref) {
  auto reg = fixtures::MisbehavingRegistry::Start();
  ASSERT_TRUE(reg) << reg.error().message;
  auto img = (*reg)->AddImage("hostile/app", "v1", fixtures::FixtureImageSpec());
  ASSERT_TRUE(img) << img.error().message;
  (*reg)->Script({.path_contains = "/manifests/v1",
                  .answer = fixtures::Answer::SlowHead(std::chrono::seconds(1))});
  *ref = (*reg)->host() + "/hostile/app:v1";
  *out = std::move(*reg);
}

TEST_F(CriPull, RateFloorStopsAPullWhoseManifestHeadersTrickle) {
  std::unique_ptr<fixtures::MisbehavingRegistry> hostile;
  std::string ref;
  ASSERT_NO_FATAL_FAILURE(StartTrickledManifest(&hostile, &ref));
  // The server's floor: 2 s; the registry client's own backstop: 5 s.
  ASSERT_NO_FATAL_FAILURE(
      CriServer::Start(*gantry_, {"--min-rate", "1024", "--min-rate-window", "2"}, &srv_));
  auto st = Pull(*srv_, ref, nullptr);
  ASSERT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("less than 1024 bytes/s for 2 s"), std::string::npos)
      << st.error_message();
  // The floor's cancel ends the manifest request in progress; ignored, the
  // client went on until its own backstop gave up on it five times.
  EXPECT_LE(hostile->Count("GET", "/manifests/v1"), 2) << srv_->LogText();
  EXPECT_FALSE(Status(*srv_, ref).has_image());
}

TEST_F(CriPull, ShutdownStopsAPullWhoseManifestHeadersTrickle) {
  std::unique_ptr<fixtures::MisbehavingRegistry> hostile;
  std::string ref;
  ASSERT_NO_FATAL_FAILURE(StartTrickledManifest(&hostile, &ref));
  // Default floor (60 s): only the shutdown can end the pull soon.
  ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry_, {}, &srv_));
  grpc::Status st;
  std::thread caller([&] { st = Pull(*srv_, ref, nullptr); });
  ASSERT_TRUE(hostile->WaitForRequest("GET", "/manifests/v1",
                                      fixtures::Clock::now() + std::chrono::seconds(20)));
  // SIGTERM, then SIGKILL after 30 s: exit 0 means it stopped by itself,
  // where it used to wait for the manifest request (minutes).
  auto rc = srv_->child().Terminate(std::chrono::seconds(30));
  caller.join();
  ASSERT_TRUE(rc) << rc.error().message;
  EXPECT_EQ(*rc, 0) << srv_->LogText();
  EXPECT_FALSE(st.ok());
}

// The signature policy answers kubelet: a refused image is
// PERMISSION_DENIED with the policy's one line (kubelet shows it as
// ErrImagePull), before any blob is requested, and nothing is listed;
// another scope of the same policy is still pulled.
TEST_F(CriPull, SignaturePolicyRefusalIsPermissionDeniedBeforeAnyBlob) {
  ASSERT_NO_FATAL_FAILURE(StartPlain());
  fixtures::BuiltImage other;
  ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(*reg_, gantry_->dir() / "layout-ok",
                                              pulltest::SharedBaseSpec("fixture/ok"),
                                              "fixture/ok:v1", &other));
  const fs::path policy = gantry_->dir() / "policy.json";
  auto w = common::AtomicWriteFile(policy, R"({"default": [{"type": "insecureAcceptAnything"}],
      "transports": {"docker": {")" + proxy_->host() +
                                               R"(/fixture/app": [{"type": "reject"}]}}})");
  ASSERT_TRUE(w) << w.error().message;
  ASSERT_NO_FATAL_FAILURE(
      CriServer::Start(*gantry_, {"--signature-policy", policy.string()}, &srv_));

  grpc::Status refused = Pull(*srv_, proxy_->host() + "/fixture/app:v1", nullptr);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED) << refused.error_message();
  EXPECT_NE(
      refused.error_message().find("policy rejects `" + proxy_->host() +
                                   "/fixture/app:v1`: scope transports.docker[\"" + proxy_->host() +
                                   "/fixture/app\"], requirement 1 (reject)"),
      std::string::npos)
      << refused.error_message();
  EXPECT_EQ(refused.error_message().find('\n'), std::string::npos);
  EXPECT_TRUE(List(*srv_).empty());
  int manifest_gets = 0;
  for (const auto& e : proxy_->Log()) {
    EXPECT_EQ(e.path.find("/blobs/"), std::string::npos) << "requested " << e.path;
    if (e.method == "GET" && e.path.find("/fixture/app/manifests/") != std::string::npos)
      ++manifest_gets;
  }
  EXPECT_GE(manifest_gets, 1);

  std::string image_ref;
  grpc::Status ok = Pull(*srv_, proxy_->host() + "/fixture/ok:v1", &image_ref);
  EXPECT_TRUE(ok.ok()) << ok.error_message() << "\n" << srv_->LogText();
  EXPECT_EQ(List(*srv_).size(), 1u);
}

}  // namespace
}  // namespace critest
