// The real `gantry pull` against a misbehaving registry
// (fixtures/misbehaving_registry.h): answers whose headers or bodies
// trickle, never end or lie about their length, oversize token answers,
// token realms and redirects the registry chooses, configs whose JSON
// costs far more than its size. Whatever the registry does, the pull ends
// (at once on SIGINT/SIGTERM, else within the rate floor's window or at
// once), with one error line, bounded memory (the child's peak RSS, from
// wait4), nothing recorded and a store `gantry fsck` finds clean. Suites
// are named HostileRegistry*.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "fixtures/misbehaving_registry.h"
#include "fixtures/process.h"
#include "fixtures/registry_fixture.h"
#include "fixtures/require.h"
#include "integration/hostile/config_helpers.h"
#include "integration/pull/pull_helpers.h"
#include "oci/manifest.h"

namespace hostiletest {
namespace {

namespace fs = std::filesystem;
using fixtures::Answer;
using fixtures::CommandResult;
using fixtures::MisbehavingRegistry;
using pulltest::Describe;
using pulltest::Gantry;
using std::chrono::seconds;

// What a pull may use at its peak, whatever the registry sends. A clean
// pull of the fixture image peaks near 25 MiB (about 150 MiB under ASan,
// 167 for the TLS case); what these cases send is 4 MiB, 100 MB, 4 GB or
// endless, so a pull that held it (or much of it) would show.
#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kMaxPeakRss = 224 << 20;
#else
constexpr int64_t kMaxPeakRss = 64 << 20;
#endif

// A hang before the fixes lasted minutes (the rate floor's 60 s window
// times five attempts, or 34 minutes for a trickled 4 GB body); a pull
// that ends does so in seconds.
constexpr seconds kExitDeadline{30};

constexpr char kUser[] = "u";
constexpr char kPassword[] = "secret";

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream is(text);
  for (std::string line; std::getline(is, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

class HostileRegistry : public ::testing::Test {
 protected:
  void SetUp() override {
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
    auto reg = MisbehavingRegistry::Start();
    ASSERT_TRUE(reg) << reg.error().message;
    reg_ = std::move(*reg);
    auto img = reg_->AddImage("hostile/app", "v1", fixtures::FixtureImageSpec());
    ASSERT_TRUE(img) << img.error().message;
    image_ = std::move(*img);
  }

  std::string Ref() const { return reg_->host() + "/hostile/app:v1"; }
  std::string BlobPath(const common::Digest& d) const { return "/blobs/" + d.str(); }

  // A second misbehaving server on another port: a token realm or a
  // redirect target that records what it receives.
  void StartOther() {
    auto other = MisbehavingRegistry::Start();
    ASSERT_TRUE(other) << other.error().message;
    other_ = std::move(*other);
  }

  std::vector<std::pair<std::string, std::string>> Env(
      std::vector<std::pair<std::string, std::string>> replace = {}) const {
    auto env = gantry_->Env();
    for (auto& [k, v] : replace) {
      std::erase_if(env, [&](const auto& e) { return e.first == k; });
      env.emplace_back(k, v);
    }
    return env;
  }

  // `gantry <args…>` to completion, with its peak RSS; fails the test when
  // it runs past `deadline`.
  CommandResult Measure(const std::vector<std::string>& args,
                        std::vector<std::pair<std::string, std::string>> env = {},
                        seconds deadline = kExitDeadline) {
    auto r = fixtures::RunCommand(gantry_->Argv(args), {.env = Env(std::move(env)),
                                                        .cwd = gantry_->dir(),
                                                        .stdin_data = {},
                                                        .timeout = deadline,
                                                        .measure_peak_rss = true});
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : CommandResult{};
  }

  // `gantry pull --no-unpack <args…>`, as Measure.
  CommandResult Pull(const std::vector<std::string>& args,
                     std::vector<std::pair<std::string, std::string>> env = {},
                     seconds deadline = kExitDeadline) {
    std::vector<std::string> a = {"pull", "--no-unpack"};
    a.insert(a.end(), args.begin(), args.end());
    return Measure(a, std::move(env), deadline);
  }

  // Starts `gantry pull --no-unpack <args…>`, waits until the registry
  // (or `seen`, when given) received a request for `path` (answered in
  // full with `answered`), sends `sig`, and waits for the exit.
  CommandResult PullAndSignal(int sig, const std::string& path, bool answered = false,
                              const MisbehavingRegistry* seen = nullptr) {
    const fs::path err = gantry_->dir() / "pull.err";
    auto child = fixtures::Child::Spawn({.argv = gantry_->Argv({"pull", "--no-unpack", Ref()}),
                                         .env = Env(),
                                         .stdout_path = gantry_->dir() / "pull.out",
                                         .stderr_path = err,
                                         .cwd = gantry_->dir(),
                                         .kill_grace = std::chrono::milliseconds(2000),
                                         .measure_peak_rss = true});
    EXPECT_TRUE(child) << child.error().message;
    if (!child) return {};
    const MisbehavingRegistry& watched = seen ? *seen : *reg_;
    EXPECT_TRUE(watched.WaitForRequest("GET", path, fixtures::Clock::now() + seconds(20), answered))
        << "the pull never reached " << path;
    EXPECT_EQ(::kill(child->pid(), sig), 0);
    auto rc = child->WaitFor(fixtures::Clock::now() + kExitDeadline);
    EXPECT_TRUE(rc) << rc.error().message;
    CommandResult out;
    if (rc && *rc) out.exit_code = **rc;
    EXPECT_TRUE(rc && rc->has_value()) << "signal " << sig << " did not end the pull";
    out.peak_rss_bytes = child->peak_rss_bytes().value_or(-1);
    auto text = common::ReadFile(err);
    out.err = text ? *text : "";
    return out;
  }

  // The end of every failing case: the exit code, one error line holding
  // `message`, bounded memory, no image recorded, a clean store.
  void ExpectFailedClosed(const CommandResult& r, int exit_code, const std::string& message) {
    ExpectOneErrorLine(r, exit_code, message);
    ExpectBoundedMemory(r);
    ExpectCleanStore();
  }

  static void ExpectOneErrorLine(const CommandResult& r, int exit_code,
                                 const std::string& message) {
    EXPECT_EQ(r.exit_code, exit_code) << r.err;
    std::vector<std::string> errors;
    for (const std::string& line : Lines(r.err))
      if (line.starts_with("gantry: ")) errors.push_back(line);
    ASSERT_EQ(errors.size(), 1u) << "one error line: " << r.err;
    EXPECT_NE(errors[0].find(message), std::string::npos) << errors[0];
  }

  static void ExpectBoundedMemory(const CommandResult& r, int64_t bound = kMaxPeakRss) {
    ASSERT_GT(r.peak_rss_bytes, 0) << "no rusage for the child";
    EXPECT_LT(r.peak_rss_bytes, bound) << "peak RSS " << (r.peak_rss_bytes >> 20) << " MiB";
  }

  void ExpectCleanStore() {
    EXPECT_TRUE(gantry_->ImageNames().empty()) << "a failed pull records no image";
    if (!fs::exists(gantry_->root())) return;  // it failed before making one
    auto fsck = gantry_->Run({"fsck"});
    ASSERT_TRUE(fsck) << fsck.error().message;
    EXPECT_EQ(fsck->exit_code, 0) << Describe(*fsck);
  }

  // Serves the fixture image with `config` as its config under `tag`;
  // returns the config's digest.
  common::Digest ServeWithConfig(const std::string& tag, const std::string& config) {
    const common::Digest d = reg_->AddBlob(config);
    auto manifest = nlohmann::json::parse(reg_->Content(image_.manifest.digest));
    manifest["config"]["digest"] = d.str();
    manifest["config"]["size"] = config.size();
    reg_->AddManifest(tag, fixtures::kMediaTypeManifest, manifest.dump());
    return d;
  }

  // The token flow: the registry challenges with a realm on `realm`
  // (another port of 127.0.0.1 unless given), which answers a token.
  void RequireTokenFrom(const std::string& realm_url) { reg_->RequireBearer(realm_url); }

  void Login() {
    auto login = gantry_->Run({"login", reg_->host(), "--username", kUser, "--password-stdin"},
                              std::string(kPassword) + "\n");
    ASSERT_TRUE(login) << login.error().message;
    ASSERT_EQ(login->exit_code, 0) << Describe(*login);
  }

  // Requests `server` received that carried an Authorization header.
  static int WithAuthorization(const MisbehavingRegistry& server) {
    int n = 0;
    for (const auto& r : server.Requests()) n += r.authorization.has_value();
    return n;
  }

  // Serves under `tag` a hand-made image of `n` distinct ten-byte layers,
  // uncompressed (each digest is its own diff_id), and returns its
  // reference. 28,000 of them make a 4.1 MB manifest, just under the 4 MiB cap.
  std::string AddManyLayerImage(const std::string& tag, int n) {
    auto layers = nlohmann::json::array();
    auto diff_ids = nlohmann::json::array();
    for (int i = 0; i < n; ++i) {
      char data[16];
      std::snprintf(data, sizeof data, "l%08d\n", i);
      const common::Digest d = reg_->AddBlob(data);
      layers.push_back(
          {{"mediaType", fixtures::kMediaTypeLayerTar}, {"digest", d.str()}, {"size", 10}});
      diff_ids.push_back(d.str());
    }
    const std::string config =
        nlohmann::json{{"architecture", "amd64"},
                       {"os", "linux"},
                       {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}}
            .dump();
    const common::Digest config_digest = reg_->AddBlob(config);
    nlohmann::json manifest = {{"schemaVersion", 2},
                               {"mediaType", fixtures::kMediaTypeManifest},
                               {"config",
                                {{"mediaType", fixtures::kMediaTypeConfig},
                                 {"digest", config_digest.str()},
                                 {"size", config.size()}}},
                               {"layers", layers}};
    reg_->AddManifest(tag, fixtures::kMediaTypeManifest, manifest.dump());
    return reg_->host() + "/hostile/app:" + tag;
  }

  std::unique_ptr<Gantry> gantry_;
  std::unique_ptr<MisbehavingRegistry> reg_;
  std::unique_ptr<MisbehavingRegistry> other_;
  fixtures::BuiltImage image_;
};

// --- a clean pull, for scale -------------------------------------------------

TEST_F(HostileRegistry, HonestAnswersPullWithinTheMemoryBound) {
  auto r = Pull({Ref()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  ExpectBoundedMemory(r);
  std::cout << "peak RSS of a clean pull: " << (r.peak_rss_bytes >> 10) << " KiB\n";
  EXPECT_EQ(gantry_->ImageNames(), std::vector<std::string>{Ref()});
}

// --- 1. every request and every wait obeys cancel ----------------------------

TEST_F(HostileRegistry, SigintWhileManifestHeadersTrickleExits130) {
  reg_->Script({.path_contains = "/manifests/v1", .answer = Answer::SlowHead(seconds(1))});
  ExpectFailedClosed(PullAndSignal(SIGINT, "/manifests/v1"), 130, "cancelled");
}

TEST_F(HostileRegistry, SigtermWhileManifestHeadersTrickleExits130) {
  reg_->Script({.path_contains = "/manifests/v1", .answer = Answer::SlowHead(seconds(1))});
  ExpectFailedClosed(PullAndSignal(SIGTERM, "/manifests/v1"), 130, "cancelled");
}

TEST_F(HostileRegistry, SigintWhileTokenHeadersTrickleExits130) {
  RequireTokenFrom(reg_->base_url() + "/token");
  reg_->Script({.path_contains = "/token", .answer = Answer::SlowHead(seconds(1))});
  ExpectFailedClosed(PullAndSignal(SIGINT, "/token"), 130, "cancelled");
}

TEST_F(HostileRegistry, SigintWhileManifestBodyTricklesAboveTheFloorExits130) {
  // 2 KiB/s, chunked: above the 1 KiB/s floor and no length to refuse; the
  // 4 MiB cap would take half an hour.
  reg_->Script({.path_contains = "/manifests/v1", .answer = Answer::EndlessChunked(2048)});
  ExpectFailedClosed(PullAndSignal(SIGINT, "/manifests/v1"), 130, "cancelled");
}

TEST_F(HostileRegistry, SigintDuringTheManifestRetryBackoffExits130) {
  reg_->Script({.path_contains = "/manifests/v1", .answer = Answer::Status(503, 60)});
  ExpectFailedClosed(PullAndSignal(SIGINT, "/manifests/v1", /*answered=*/true), 130, "cancelled");
  EXPECT_EQ(reg_->Count("GET", "/manifests/v1"), 1) << "no retry after the signal";
}

TEST_F(HostileRegistry, SigintDuringTheTokenRetryBackoffExits130) {
  RequireTokenFrom(reg_->base_url() + "/token");
  reg_->Script({.path_contains = "/token", .answer = Answer::Status(503, 60)});
  ExpectFailedClosed(PullAndSignal(SIGINT, "/token", /*answered=*/true), 130, "cancelled");
  EXPECT_EQ(reg_->Count("GET", "/token"), 1) << "no retry after the signal";
}

TEST_F(HostileRegistry, ManifestContentLengthOverTheCapIsRefusedAtTheHeaders) {
  // 4 GB announced, 2 KiB/s sent: above the floor, 34 minutes to the cap.
  reg_->Script({.path_contains = "/manifests/v1", .answer = Answer::SlowBody(4'000'000'000, 2048)});
  ExpectFailedClosed(Pull({Ref()}), 7,
                     "exceeds 4 MiB: response body exceeds 4194304 bytes "
                     "(Content-Length: 4000000000)");
}

TEST_F(HostileRegistry, PlatformManifestContentLengthOverTheCapIsRefusedAtTheHeaders) {
  // The tag is an honest index; the manifest it lists is the liar.
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", fixtures::kMediaTypeIndex},
                          {"manifests",
                           {{{"mediaType", fixtures::kMediaTypeManifest},
                             {"digest", image_.manifest.digest.str()},
                             {"size", image_.manifest.size},
                             {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}}}};
  reg_->AddManifest("multi", fixtures::kMediaTypeIndex, index.dump());
  reg_->Script({.path_contains = "/manifests/" + image_.manifest.digest.str(),
                .answer = Answer::SlowBody(4'000'000'000, 2048)});
  ExpectFailedClosed(Pull({"--platform", "linux/amd64", reg_->host() + "/hostile/app:multi"}), 7,
                     "Content-Length: 4000000000");
}

TEST_F(HostileRegistry, ConfigContentLengthOverItsSizeIsRefusedAtTheHeaders) {
  // The manifest says the config is 16 MiB (the cap); the server announces
  // 4 GB and sends 2 KiB/s: reading up to the size would take two hours.
  auto manifest = nlohmann::json::parse(reg_->Content(image_.manifest.digest));
  manifest["config"]["size"] = 16 << 20;
  reg_->AddManifest("bigconfig", fixtures::kMediaTypeManifest, manifest.dump());
  reg_->Script({.path_contains = BlobPath(image_.config.digest),
                .answer = Answer::SlowBody(4'000'000'000, 2048)});
  ExpectFailedClosed(Pull({reg_->host() + "/hostile/app:bigconfig"}), 6,
                     "is longer than its size 16777216 (Content-Length: 4000000000)");
}

// --- 2. an oversize token answer says why -------------------------------------

Answer HundredMegabyteToken(bool announce_length) {
  Answer a = Answer::Json("{\"token\":\"");
  a.filler = 'a';
  a.body_size = 100'000'000;
  if (!announce_length) a.chunked = true;
  return a;
}

TEST_F(HostileRegistry, OversizeTokenAnswerIsResourceExhaustedNamingTheCause) {
  RequireTokenFrom(reg_->base_url() + "/token");
  reg_->Script({.path_contains = "/token", .answer = HundredMegabyteToken(false)});
  ExpectFailedClosed(Pull({Ref()}), 7,
                     "get token from `" + reg_->host() + "`: response body exceeds 1048576 bytes");
}

TEST_F(HostileRegistry, OversizeTokenContentLengthIsRefusedAtTheHeaders) {
  RequireTokenFrom(reg_->base_url() + "/token");
  reg_->Script({.path_contains = "/token", .answer = HundredMegabyteToken(true)});
  ExpectFailedClosed(Pull({Ref()}), 7,
                     "response body exceeds 1048576 bytes (Content-Length: 100000000)");
}

// --- 3. work bounded in the number of layers ----------------------------------

TEST_F(HostileRegistry, ManifestOfTwentyEightThousandLayersIsRefusedBeforeAnyBlob) {
  // Without a limit this pull ran for minutes: every layer's start and end
  // rewrote a progress record of all 28,000 layers.
  const std::string ref = AddManyLayerImage("many", 28000);
  reg_->ClearRequests();
  auto refused = Pull({ref});
  std::cout << "peak RSS of the refusal: " << (refused.peak_rss_bytes >> 10) << " KiB\n";
  ExpectFailedClosed(
      refused, 7,
      "gantry: pull " + ref + ": manifest has 28000 layers, over the limit of 500 (--max-layers)");
  EXPECT_EQ(reg_->Count("", "/blobs/"), 0) << "a blob was requested";
}

TEST_F(HostileRegistry, MaxLayersLowerThanTheImageRefusesIt) {
  const size_t n = image_.layers.size();
  ASSERT_GE(n, 2u);
  ExpectFailedClosed(Pull({"--max-layers", std::to_string(n - 1), Ref()}), 7,
                     "manifest has " + std::to_string(n) + " layers, over the limit of " +
                         std::to_string(n - 1) + " (--max-layers)");
  EXPECT_EQ(reg_->Count("", "/blobs/"), 0) << "a blob was requested";
  auto r = Pull({"--max-layers", std::to_string(n), Ref()});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
}

// A pull of thousands of layers allocates and frees per layer; under ASan
// the freed blocks wait in its quarantine (256 MiB by default), so its peak
// there says little. Measured: 27 MiB plain, 321 MiB under ASan.
#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kMaxPeakRssManyLayers = 512 << 20;
#else
constexpr int64_t kMaxPeakRssManyLayers = kMaxPeakRss;
#endif

TEST_F(HostileRegistry, ThreeThousandLayersPullWithMaxLayersRaised) {
  const std::string ref = AddManyLayerImage("many", 3000);
  // A guard against a hang only: the pull takes seconds.
  auto r = Pull({"--max-layers", "5000", ref}, {}, seconds(300));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  ExpectBoundedMemory(r, kMaxPeakRssManyLayers);
  std::cout << "peak RSS of a pull of 3,000 layers: " << (r.peak_rss_bytes >> 10) << " KiB\n";
  EXPECT_EQ(reg_->Count("GET", "/blobs/"), 3001) << "each layer and the config once";
  EXPECT_EQ(gantry_->ImageNames(), std::vector<std::string>{ref});
  // The progress record ends complete.
  auto text = common::ReadFile(gantry_->root() / "progress" /
                               (common::Digest::Sha256Of(ref).hex() + ".json"));
  ASSERT_TRUE(text) << text.error().message;
  auto record = nlohmann::json::parse(*text, nullptr, false);
  ASSERT_TRUE(record.is_object());
  EXPECT_EQ(record["phase"], "done");
  ASSERT_EQ(record["layers"].size(), 3000u);
  for (const auto& l : record["layers"]) {
    EXPECT_EQ(l["state"], "done") << l.dump();
    EXPECT_EQ(l["current"], 10) << l.dump();
  }
  auto fsck = gantry_->Run({"fsck"});
  ASSERT_TRUE(fsck) << fsck.error().message;
  EXPECT_EQ(fsck->exit_code, 0) << Describe(*fsck);
}

// --- 5. credentials and redirects ------------------------------------------------

TEST_F(HostileRegistry, LoginCredentialsDoNotGoToAPlainHttpRealmOnAnotherPort) {
  ASSERT_NO_FATAL_FAILURE(StartOther());
  other_->ServeToken();
  RequireTokenFrom(other_->base_url() + "/token");
  ASSERT_NO_FATAL_FAILURE(Login());
  ExpectFailedClosed(Pull({Ref()}), 4,
                     "credentials not sent to token realm `" + other_->base_url() + "/token`");
  EXPECT_EQ(WithAuthorization(*other_), 0) << "u:secret reached the realm";
}

TEST_F(HostileRegistry, PlainHttpFlagLetsCredentialsGoToALoopbackRealm) {
  ASSERT_NO_FATAL_FAILURE(StartOther());
  other_->ServeToken();
  RequireTokenFrom(other_->base_url() + "/token");
  ASSERT_NO_FATAL_FAILURE(Login());
  auto r = Pull({"--plain-http", Ref()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto requests = other_->Requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests[0].authorization.value_or(""), "Basic dTpzZWNyZXQ=")
      << "the user configured plain http: the credentials go to the loopback realm";
}

TEST_F(HostileRegistry, WithoutCredentialsAPlainHttpRealmStillIssuesTokens) {
  ASSERT_NO_FATAL_FAILURE(StartOther());
  other_->ServeToken();
  RequireTokenFrom(other_->base_url() + "/token");
  auto r = Pull({Ref()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_GE(other_->Count("GET", "/token"), 1);
  EXPECT_EQ(WithAuthorization(*other_), 0);
}

TEST_F(HostileRegistry, CredentialsDoNotGoOverPlainHttpToANonLoopbackRealm) {
  // The realm names a host on the network; http_proxy points at a recording
  // server, so a request for it (and its Authorization) would show there.
  ASSERT_NO_FATAL_FAILURE(StartOther());
  other_->ServeToken();
  RequireTokenFrom("http://realm.gantry.invalid/token");
  ASSERT_NO_FATAL_FAILURE(Login());
  ExpectFailedClosed(
      Pull({"--plain-http", Ref()}, {{"NO_PROXY", ""}, {"http_proxy", other_->base_url()}}), 4,
      "credentials not sent to token realm `http://realm.gantry.invalid/token`");
  EXPECT_EQ(WithAuthorization(*other_), 0) << "u:secret went to the realm through the proxy";
}

TEST_F(HostileRegistry, HttpRealmOfAnHttpsRegistryGetsNoCredentials) {
  REQUIRE_TOOLS("docker-registry", "skopeo");
  // The real registry over TLS with its token server on plain http.
  std::unique_ptr<fixtures::RegistryFixture> tls;
  fixtures::RegistryOptions options;
  options.tls = true;
  options.auth = fixtures::RegistryAuth::kToken;
  options.anonymous_actions = {};  // credentials are needed
  ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry(options, &tls));
  fixtures::BuiltImage pushed;
  ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
      *tls, gantry_->dir() / "layout", fixtures::FixtureImageSpec(), "fixture/app:v1", &pushed));
  ASSERT_TRUE(tls->CertsDir(gantry_->registry_config()));
  tls->token_server()->ClearRequests();
  auto r =
      Pull({"--creds", tls->username() + ":" + tls->password(), tls->host() + "/fixture/app:v1"});
  ExpectFailedClosed(r, 4, "plain http realm for a registry reached over https");
  for (const auto& req : tls->token_server()->requests())
    EXPECT_FALSE(req.had_authorization) << "the password went to " << tls->token_server()->realm();
}

TEST_F(HostileRegistry, BlobRedirectToTheMetadataAddressIsRefused) {
  reg_->Script({.path_contains = BlobPath(image_.layers[0].digest),
                .answer = Answer::Redirect("http://169.254.169.254/latest/meta-data/")});
  ExpectFailedClosed(Pull({Ref()}), 4,
                     "redirect to http://169.254.169.254/latest/meta-data/ refused: it leads to "
                     "169.254.169.254, a link-local or cloud metadata address");
}

TEST_F(HostileRegistry, BlobRedirectToAMappedLinkLocalAddressIsRefused) {
  // Not 169.254… as text: the check is on the address connected to.
  reg_->Script({.path_contains = BlobPath(image_.layers[0].digest),
                .answer = Answer::Redirect("http://[::ffff:169.254.1.1]/x")});
  ExpectFailedClosed(Pull({Ref()}), 4, "a link-local or cloud metadata address");
}

TEST_F(HostileRegistry, BlobRedirectToLinkLocalIsTriedWithTheFlag) {
  reg_->Script({.path_contains = BlobPath(image_.layers[0].digest),
                .answer = Answer::Redirect("http://[fe80::1]:9/x")});
  auto refused = Pull({Ref()});
  ExpectFailedClosed(refused, 4, "leads to fe80::1");
  // Allowed, the connection is tried (and fails: no such host here).
  auto tried = Pull({"--allow-link-local-redirects", Ref()});
  EXPECT_EQ(tried.exit_code, 5) << Describe(tried);
  EXPECT_EQ(tried.err.find("link-local"), std::string::npos) << tried.err;
}

TEST_F(HostileRegistry, TokenRealmAtTheMetadataAddressIsRefused) {
  // A realm is a URL the registry names, like a redirect target.
  RequireTokenFrom("http://169.254.169.254/latest/meta-data/token");
  ExpectFailedClosed(Pull({Ref()}), 4,
                     "token realm http://169.254.169.254/latest/meta-data/token?");
}

TEST_F(HostileRegistry, BlobRedirectToAnotherHostCarriesNoCredentials) {
  ASSERT_NO_FATAL_FAILURE(StartOther());
  RequireTokenFrom(reg_->base_url() + "/token");
  reg_->ServeToken();
  const auto& layer = image_.layers[0];
  other_->AddBlob(reg_->Content(layer.digest));
  reg_->Script(
      {.path_contains = BlobPath(layer.digest),
       .answer = Answer::Redirect(other_->base_url() + "/v2/cdn/blobs/" + layer.digest.str())});
  ASSERT_NO_FATAL_FAILURE(Login());
  auto r = Pull({"--plain-http", Ref()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(other_->Count("GET", "/blobs/" + layer.digest.str()), 1);
  EXPECT_EQ(WithAuthorization(*other_), 0) << "the registry's token followed the redirect";
}

// --- 4. configs that cost far more than their size ---------------------------------

// What a command that reads one config at the limits may use at its peak:
// its own (a clean pull peaks near 25 MiB, 37 when it unpacks) and about
// 65 MiB for the config's bytes, its tree and the strings copied out of
// it; a pull that unpacks reads the config twice, at once for an image
// this small (docs/resources.md, "Memory per image config"). Measured: 61
// to 88 MiB, 165 for the pull that unpacks.
#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kMaxPeakRssConfigAtLimits = 512 << 20;
constexpr int64_t kMaxPeakRssConfigAtLimitsUnpacking = 1024 << 20;
#else
constexpr int64_t kMaxPeakRssConfigAtLimits = 128 << 20;
constexpr int64_t kMaxPeakRssConfigAtLimitsUnpacking = 256 << 20;
#endif

// Commands that move a 16 MiB config: its download and fsync took over
// 30 s on a loaded machine. A guard against hangs, not a measure of speed.
constexpr seconds kConfigExitDeadline{120};

TEST_F(HostileRegistry, ConfigOfMillionsOfEmptyStringsIsRefusedInBoundedMemory) {
  const std::string config = EmptyEnvConfig(reg_->Content(image_.config.digest));
  ASSERT_LE(static_cast<int64_t>(config.size()), oci::kMaxConfigSize);
  const common::Digest d = ServeWithConfig("emptyenv", config);
  auto r = Measure({"pull", "--no-unpack", reg_->host() + "/hostile/app:emptyenv"}, {},
                   kConfigExitDeadline);
  ExpectFailedClosed(r, 2,
                     "config " + d.str() + ": parse image config: more than 100000 JSON values");
  std::cout << "peak RSS refusing a " << config.size()
            << "-byte config of empty strings: " << (r.peak_rss_bytes >> 10) << " KiB\n";
}

TEST_F(HostileRegistry, ConfigAtTheLimitsIsPulledInspectedAndCheckedWithinItsBound) {
  const std::string config = ConfigAtTheLimits(reg_->Content(image_.config.digest));
  ASSERT_EQ(CountValues(nlohmann::json::parse(config)), oci::kMaxConfigValues);
  ASSERT_GT(static_cast<int64_t>(config.size()), oci::kMaxConfigSize - (1 << 20));
  ASSERT_LE(static_cast<int64_t>(config.size()), oci::kMaxConfigSize);
  ServeWithConfig("atlimits", config);
  const std::string ref = reg_->host() + "/hostile/app:atlimits";
  std::vector<std::pair<std::vector<std::string>, int64_t>> commands = {
      {{"pull", "--no-unpack", ref}, kMaxPeakRssConfigAtLimits},
      {{"inspect", ref}, kMaxPeakRssConfigAtLimits},
      {{"fsck"}, kMaxPeakRssConfigAtLimits}};
  // A pull that unpacks reads the config twice at once; unpacking needs
  // root here.
  if (::geteuid() == 0) commands.push_back({{"pull", ref}, kMaxPeakRssConfigAtLimitsUnpacking});
  for (const auto& [args, bound] : commands) {
    auto r = Measure(args, {}, kConfigExitDeadline);
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
    ExpectBoundedMemory(r, bound);
    std::cout << "peak RSS of `gantry " << args[0]
              << (args.size() > 1 && args[1] == "--no-unpack" ? " --no-unpack" : "")
              << "` with a config at the limits: " << (r.peak_rss_bytes >> 10) << " KiB\n";
  }
}

TEST_F(HostileRegistry, StoredConfigOverTheLimitsFailsItsReadersInBoundedMemory) {
  // As an older gantry would have left it: pulled and recorded.
  auto pulled = Pull({Ref()});
  ASSERT_EQ(pulled.exit_code, 0) << Describe(pulled);
  const std::string name = reg_->host() + "/hostile/app:stored";
  common::Digest d;
  ASSERT_NO_FATAL_FAILURE(RecordWithConfig(
      *gantry_, Ref(), name, EmptyEnvConfig(reg_->Content(image_.config.digest)), &d));
  const std::string refused =
      "config " + d.str() + ": parse image config: more than 100000 JSON values";
  const std::string bundle = (gantry_->dir() / "bundle").string();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"inspect", name}, {"bundle", "--no-mount", name, bundle}}) {
    auto r = Measure(args, {}, kConfigExitDeadline);
    ExpectOneErrorLine(r, 2, refused);
    ExpectBoundedMemory(r);
  }
  auto fsck = Measure({"fsck"}, {}, kConfigExitDeadline);
  EXPECT_EQ(fsck.exit_code, 1) << Describe(fsck);
  EXPECT_NE(fsck.out.find("problem: image " + name + ": " + refused), std::string::npos)
      << fsck.out;
  ExpectBoundedMemory(fsck);
  auto images = gantry_->ImageNames();
  EXPECT_NE(std::find(images.begin(), images.end(), name), images.end())
      << "the listing still shows it";
}

// --- what already failed closed: one short case each ------------------------------

TEST_F(HostileRegistry, EndlessChunkedManifestIsCutAtTheCap) {
  reg_->Script({.path_contains = "/manifests/v1", .answer = Answer::EndlessChunked(0)});
  ExpectFailedClosed(Pull({Ref()}), 7, "exceeds 4 MiB");
}

TEST_F(HostileRegistry, BlobLongerThanItsSizeIsDataLoss) {
  const auto& layer = image_.layers[0];
  Answer a;
  a.body = reg_->Content(layer.digest);
  a.body_size = static_cast<int64_t>(a.body.size()) + (8 << 20);
  a.chunked = true;  // no length to refuse up front
  reg_->Script({.path_contains = BlobPath(layer.digest), .answer = a});
  ExpectFailedClosed(Pull({Ref()}), 6, "is longer than its size " + std::to_string(layer.size));
}

TEST_F(HostileRegistry, RedirectLoopEndsWithTooManyRedirects) {
  reg_->Script({.path_contains = "/manifests/v1",
                .answer = Answer::Redirect(reg_->base_url() + "/v2/hostile/app/manifests/v1")});
  ExpectFailedClosed(Pull({Ref()}), 5, "too many redirects");
}

TEST_F(HostileRegistry, ManifestServedAsAnIndexIsRefused) {
  // Type confusion: an image manifest with an index's Content-Type.
  reg_->AddManifest("confused", fixtures::kMediaTypeIndex, reg_->Content(image_.manifest.digest));
  ExpectFailedClosed(Pull({reg_->host() + "/hostile/app:confused"}), 2, "index");
}

TEST_F(HostileRegistry, IndexListingAnIndexIsRefused) {
  // A document cannot list its own digest; the nearest thing to a
  // self-referencing index is one whose platform entry is an index again.
  auto entry = [](const std::string& type, const common::Digest& d, size_t size) {
    return nlohmann::json{{"mediaType", type},
                          {"digest", d.str()},
                          {"size", size},
                          {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}};
  };
  nlohmann::json inner = {{"schemaVersion", 2},
                          {"mediaType", fixtures::kMediaTypeIndex},
                          {"manifests",
                           {entry(fixtures::kMediaTypeManifest, image_.manifest.digest,
                                  static_cast<size_t>(image_.manifest.size))}}};
  const std::string inner_body = inner.dump();
  const common::Digest inner_digest = reg_->AddManifest("", fixtures::kMediaTypeIndex, inner_body);
  nlohmann::json outer = {
      {"schemaVersion", 2},
      {"mediaType", fixtures::kMediaTypeIndex},
      {"manifests", {entry(fixtures::kMediaTypeManifest, inner_digest, inner_body.size())}}};
  reg_->AddManifest("nested", fixtures::kMediaTypeIndex, outer.dump());
  ExpectFailedClosed(Pull({"--platform", "linux/amd64", reg_->host() + "/hostile/app:nested"}), 2,
                     "manifest");
}

TEST_F(HostileRegistry, TransportGzipOnAGzipLayerFailsClosed) {
  const auto& layer = image_.layers[0];
  auto gz = fixtures::Compress(reg_->Content(layer.digest), fixtures::Compression::kGzip);
  ASSERT_TRUE(gz) << gz.error().message;
  Answer a;
  a.headers = {{"Content-Encoding", "gzip"}, {"Content-Type", "application/octet-stream"}};
  a.body = *gz;
  a.chunked = true;
  reg_->Script({.path_contains = BlobPath(layer.digest), .answer = a});
  ExpectFailedClosed(Pull({Ref()}), 6, layer.digest.str());
}

}  // namespace
}  // namespace hostiletest
