// The signature policy cross-checked against skopeo (issue 18, item 5):
// each case (a policy, an image) is run through `skopeo copy --policy P
// --registries.d D docker://… oci:…` and `gantry pull --signature-policy P
// --registries-d D …`, and both must give the expected answer, each
// refusing for the case's reason. GPG keys are made by gpg,
// simple-signing signatures by `skopeo copy --sign-by` into a file://
// lookaside, and sigstore attachments by openssl (Debian's skopeo 1.9
// can neither make nor verify them), all at test time. Registry images are
// pulled through the fault proxy, whose log shows that a refused image had
// no layer blob requested. Local sources (gantry load, pull oci: and
// oci-archive:) are checked against skopeo's docker-archive:, oci: and
// oci-archive: sources.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/fault_proxy.h"
#include "fixtures/http_server.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/registry_fixture.h"
#include "fixtures/require.h"
#include "fixtures/signing.h"
#include "integration/pull/pull_helpers.h"

namespace pulltest {
namespace {

using trust::test_signing::GpgSigner;
using trust::test_signing::ReadBytes;
using trust::test_signing::WriteBytes;

// What both tools must do with an image.
enum class Outcome { kAccept, kReject };

std::string OutcomeName(Outcome o) { return o == Outcome::kAccept ? "accept" : "reject"; }

// Replaces every "$NAME" of `vars` in `text`.
std::string Expand(std::string text, const std::vector<std::pair<std::string, std::string>>& vars) {
  for (const auto& [name, value] : vars) {
    const std::string key = "$" + name;
    for (size_t at = text.find(key); at != std::string::npos;
         at = text.find(key, at + value.size()))
      text.replace(at, key.size(), value);
  }
  return text;
}

// Runs argv expecting exit 0; fails the test otherwise.
void RunOk(const std::vector<std::string>& argv, const fixtures::RunOptions& options = {}) {
  auto r = fixtures::RunCommand(argv, options);
  ASSERT_TRUE(r) << argv[0] << ": " << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << r->Describe(argv);
}

// A one-layer image; `which` makes its digests its own.
fixtures::ImageSpec Spec(const std::string& which) {
  fixtures::ImageSpec spec;
  fixtures::LayerSpec layer;
  layer.entries = {fixtures::File("which.txt", which + "\n")};
  spec.layers.push_back(std::move(layer));
  spec.labels["which"] = which;
  return spec;
}

// The registry behind the fault proxy, holding one small image X in
// several repositories, signed in various ways, plus an image Y; GPG keys
// A (trusted) and B; sigstore keys; a registries.d. Built once per test
// process (ctest runs each test in its own); each repository is made when a
// test first needs it (Need).
//
// Repositories, all under host() (the proxy, so signatures name it):
//   unsigned/app:v1     X, no signature
//   signed/app:v1, :v2  X, signed by A as signed/app:v1 (skopeo copy --sign-by)
//   alt/app:v1          X, signed by A as alt/app:v1
//   moved/app:v1        X, with signed/app's signature copied into place
//   wrongdigest/app:v1  Y, with A's signature of X as wrongdigest/app:v1
//   corrupt/app:v1      X, signed by A, then bytes of the signature flipped
//   cosign/app:v1       X, sigstore attachment by the cosign key
//   down/app:v1         X, lookaside on an http:// port that refuses connections
//   httpsigs/app:v1     X, signed by A, its lookaside an http:// server
//   multi/app:v1        X, signature-1 by B, signature-2 by A
//   corruptfirst/app:v1 X, signature-1 by A corrupted, signature-2 by A
class World {
 public:
  static void Build(std::unique_ptr<World>* out) {
    auto w = std::make_unique<World>();
    ASSERT_NO_FATAL_FAILURE(w->Setup());
    *out = std::move(w);
  }

  std::string host() const { return proxy_->host(); }
  fixtures::FaultProxy& proxy() const { return *proxy_; }
  const fs::path& dir() const { return dir_.path(); }
  const fs::path& registries_d() const { return registries_d_; }
  const fixtures::BuiltImage& image() const { return image_x_; }
  const std::vector<std::pair<std::string, std::string>>& vars() const { return vars_; }

  // Writes `json` (expanded) to a policy file named after `name`.
  fs::path WritePolicy(const std::string& name, const std::string& json) const {
    fs::path path = dir() / "policies" / (name + ".json");
    WriteBytes(path, Expand(json, vars_));
    return path;
  }

  // Makes `repo` (one of the list above, without host and tag) once, with
  // its signatures: each test makes only what its cases pull.
  void Need(const std::string& repo) {
    if (!made_.insert(repo).second) return;
    const common::Digest& x = image_x_.manifest.digest;
    if (repo == "unsigned/app" || repo == "down/app") {
      ASSERT_NO_FATAL_FAILURE(Copy("base/x:v1", repo + ":v1", ""));
    } else if (repo == "httpsigs/app") {
      // Written to a file:// staging that only sig_server_ serves.
      ASSERT_NO_FATAL_FAILURE(Copy("base/x:v1", repo + ":v1", key_a_));
    } else if (repo == "signed/app") {
      ASSERT_NO_FATAL_FAILURE(Copy("base/x:v1", "signed/app:v1", key_a_));
      ASSERT_NO_FATAL_FAILURE(Copy("base/x:v1", "signed/app:v2", ""));
      ASSERT_TRUE(fs::exists(SignaturePath(repo, x)))
          << "skopeo --sign-by wrote no " << SignaturePath(repo, x);
    } else if (repo == "alt/app") {
      ASSERT_NO_FATAL_FAILURE(Copy("base/x:v1", "alt/app:v1", key_a_));
    } else if (repo == "moved/app") {
      ASSERT_NO_FATAL_FAILURE(Need("signed/app"));
      ASSERT_NO_FATAL_FAILURE(Copy("base/x:v1", "moved/app:v1", ""));
      ASSERT_TRUE(common::MkdirAll(SignaturePath(repo, x).parent_path()));
      WriteBytes(SignaturePath(repo, x), ReadBytes(SignaturePath("signed/app", x)));
    } else if (repo == "wrongdigest/app") {
      // A's signature of X's manifest, claiming wrongdigest/app:v1, where
      // Y's signatures are looked for.
      fixtures::BuiltImage y;
      ASSERT_NO_FATAL_FAILURE(PushImage(*reg_, dir() / "layout", Spec("y"), "base/y:v1", &y));
      ASSERT_NO_FATAL_FAILURE(Copy("base/y:v1", "wrongdigest/app:v1", ""));
      const std::string manifest_x = ReadBytes(dir() / "layout" / "blobs" / "sha256" / x.hex());
      ASSERT_TRUE(common::MkdirAll(SignaturePath(repo, y.manifest.digest).parent_path()));
      WriteBytes(SignaturePath(repo, y.manifest.digest),
                 signer_->Sign(manifest_x, host() + "/wrongdigest/app:v1", key_a_));
    } else if (repo == "corrupt/app") {
      ASSERT_NO_FATAL_FAILURE(Copy("base/x:v1", "corrupt/app:v1", key_a_));
      ASSERT_NO_FATAL_FAILURE(Corrupt(SignaturePath(repo, x)));
    } else if (repo == "multi/app" || repo == "corruptfirst/app") {
      const bool multi = repo == "multi/app";
      ASSERT_NO_FATAL_FAILURE(Copy("base/x:v1", repo + ":v1", multi ? key_b_ : key_a_));
      if (!multi) {
        ASSERT_NO_FATAL_FAILURE(Corrupt(SignaturePath(repo, x)));
      }
      const std::string manifest_x = ReadBytes(dir() / "layout" / "blobs" / "sha256" / x.hex());
      fs::path second = SignaturePath(repo, x).parent_path() / "signature-2";
      WriteBytes(second, signer_->Sign(manifest_x, host() + "/" + repo + ":v1", key_a_));
    } else if (repo == "cosign/app") {
      ASSERT_NO_FATAL_FAILURE(Copy("base/x:v1", "cosign/app:v1", ""));
      ASSERT_NO_FATAL_FAILURE(AttachSigstore("cosign/app", "cosign"));
    } else {
      FAIL() << "no repository " << repo << " in the test world";
    }
  }

  // The environment skopeo and gpg run in: a GNUPGHOME of their own.
  fixtures::RunOptions SkopeoOptions() const {
    fixtures::RunOptions options = signer_->Options();
    options.timeout = std::chrono::seconds(60);
    return options;
  }

 private:
  void Setup() {
    REQUIRE_TOOLS("docker-registry", "skopeo", "gpg", "gpgconf", "openssl");
    auto made = common::TempDir::Create("gantry-crosscheck");
    ASSERT_TRUE(made) << made.error().message;
    dir_ = std::move(*made);
    ASSERT_TRUE(common::MkdirAll(dir() / "policies"));
    ASSERT_NO_FATAL_FAILURE(StartRegistry({}, &reg_));
    ASSERT_NO_FATAL_FAILURE(StartProxy(*reg_, &proxy_));

    signer_ = std::make_unique<GpgSigner>();
    key_a_ = signer_->GenerateKey("a@example.com");
    key_b_ = signer_->GenerateKey("b@example.com");
    ASSERT_FALSE(key_a_.empty());
    ASSERT_FALSE(key_b_.empty());
    WriteBytes(dir() / "a.gpg", signer_->ExportPublic(key_a_));
    WriteBytes(dir() / "b.gpg", signer_->ExportPublic(key_b_));
    trust::test_signing::MakeSigstoreKey(dir(), "cosign", "P-256");
    trust::test_signing::MakeSigstoreKey(dir(), "cosign-other", "P-256");

    uint16_t closed = 0;
    ASSERT_NO_FATAL_FAILURE(BindClosedPort(&closed));
    sigs_ = dir() / "sigs";
    registries_d_ = dir() / "registries.d";
    ASSERT_TRUE(common::MkdirAll(sigs_));
    ASSERT_TRUE(common::MkdirAll(registries_d_));
    ASSERT_NO_FATAL_FAILURE(StartSignatureServer());
    WriteBytes(registries_d_ / "crosscheck.yaml",
               Expand(R"(default-docker:
  lookaside: file://$SIGS
  lookaside-staging: file://$SIGS
docker:
  "$HOST/down":
    lookaside: http://127.0.0.1:$CLOSED/sigs
  "$HOST/httpsigs":
    lookaside: $SERVER/sigs
    lookaside-staging: file://$HTTP_SIGS
  "$HOST/cosign":
    use-sigstore-attachments: true
)",
                      {{"SIGS", sigs_.string()},
                       {"HOST", host()},
                       {"CLOSED", std::to_string(closed)},
                       {"SERVER", sig_server_->base_url()},
                       {"HTTP_SIGS", (dir() / "http-sigs").string()}}));

    ASSERT_NO_FATAL_FAILURE(PushImage(*reg_, dir() / "layout", Spec("x"), "base/x:v1", &image_x_));
    vars_ = {{"HOST", host()},
             {"KEY_A", (dir() / "a.gpg").string()},
             {"KEY_B", (dir() / "b.gpg").string()},
             {"DATA_A", trust::test_signing::Base64File(dir() / "a.gpg")},
             {"COSIGN_OTHER", (dir() / "cosign-other.pub").string()},
             {"COSIGN", (dir() / "cosign.pub").string()},
             {"DIGEST_X", image_x_.manifest.digest.str()}};
  }

  // An http:// lookaside: serves GET /sigs/PATH from dir()/http-sigs/PATH,
  // where no file:// lookaside looks.
  void StartSignatureServer() {
    const fs::path sigs = dir() / "http-sigs";
    auto server = fixtures::HttpServer::Start(
        {.handler = fixtures::SimpleHandler([sigs](const fixtures::HttpRequest& r) {
           const std::string prefix = "/sigs/";
           if (r.method != "GET" || !r.path.starts_with(prefix) ||
               r.path.find("..") != std::string::npos)
             return fixtures::HttpResponse{.status = 404, .headers = {}, .body = ""};
           auto bytes = common::ReadFile(sigs / r.path.substr(prefix.size()));
           if (!bytes) return fixtures::HttpResponse{.status = 404, .headers = {}, .body = ""};
           return fixtures::HttpResponse{.status = 200, .headers = {}, .body = *bytes};
         }),
         .port = 0,
         .keep_alive = true});
    ASSERT_TRUE(server) << server.error().message;
    sig_server_ = std::move(*server);
  }

  // Flips bytes in the middle of the signature file `path`.
  static void Corrupt(const fs::path& path) {
    std::string bytes = ReadBytes(path);
    ASSERT_GT(bytes.size(), 64u);
    for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 8; ++i) bytes[i] ^= 0x5a;
    WriteBytes(path, bytes);
  }

  // A 127.0.0.1 port that refuses connections for as long as the world
  // lives: a socket bound to it that never listens (a connect gets RST),
  // so no other server can take the port meanwhile.
  void BindClosedPort(uint16_t* port) {
    closed_port_ = common::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_GE(closed_port_.get(), 0) << "socket: " << std::strerror(errno);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(closed_port_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0)
        << "bind: " << std::strerror(errno);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(closed_port_.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0)
        << "getsockname: " << std::strerror(errno);
    *port = ntohs(addr.sin_port);
  }

  // skopeo copy from the registry to host()/`to` (through the proxy),
  // signing with `key` unless it is empty.
  void Copy(const std::string& from, const std::string& to, const std::string& key) {
    std::vector<std::string> argv = {
        "skopeo", "--insecure-policy",  "--registries.d",         registries_d_.string(),
        "copy",   "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"};
    if (!key.empty()) argv.insert(argv.end(), {"--sign-by", key});
    argv.push_back("docker://" + reg_->host() + "/" + from);
    argv.push_back("docker://" + host() + "/" + to);
    ASSERT_NO_FATAL_FAILURE(RunOk(argv, SkopeoOptions()));
  }

  // Where containers/image keeps the first lookaside signature of `repo`
  // (without the host) at `digest`.
  fs::path SignaturePath(const std::string& repo, const common::Digest& digest) const {
    return sigs_ / (repo + "@sha256=" + digest.hex()) / "signature-1";
  }

  // Pushes a sigstore signature of X as host()/`repo`:v1 by the openssl
  // key `key` to host()/`repo`:sha256-<hex>.sig, laid out as cosign and
  // containers/image write it: an OCI manifest whose one layer is the
  // payload, annotated with the base64 signature.
  void AttachSigstore(const std::string& repo, const std::string& key) {
    const common::Digest& digest = image_x_.manifest.digest;
    const std::string payload = trust::test_signing::Payload(host() + "/" + repo + ":v1", digest);
    const std::string signature =
        trust::test_signing::SigstoreSign(dir(), key, payload, /*ed25519=*/false);
    const common::Digest payload_digest = common::Digest::Sha256Of(payload);
    const std::string config =
        nlohmann::json{{"architecture", ""},
                       {"os", ""},
                       {"config", nlohmann::json::object()},
                       {"rootfs", {{"type", "layers"}, {"diff_ids", {payload_digest.str()}}}}}
            .dump();
    const common::Digest config_digest = common::Digest::Sha256Of(config);
    const std::string manifest =
        nlohmann::json{{"schemaVersion", 2},
                       {"mediaType", fixtures::kMediaTypeManifest},
                       {"config",
                        {{"mediaType", fixtures::kMediaTypeConfig},
                         {"digest", config_digest.str()},
                         {"size", config.size()}}},
                       {"layers",
                        {{{"mediaType", "application/vnd.dev.cosign.simplesigning.v1+json"},
                          {"digest", payload_digest.str()},
                          {"size", payload.size()},
                          {"annotations", {{"dev.cosignproject.cosign/signature", signature}}}}}}}
            .dump();
    const common::Digest manifest_digest = common::Digest::Sha256Of(manifest);
    const fs::path layout = dir() / "sigstore-layout";
    const fs::path blobs = layout / "blobs" / "sha256";
    ASSERT_TRUE(common::MkdirAll(blobs));
    WriteBytes(blobs / payload_digest.hex(), payload);
    WriteBytes(blobs / config_digest.hex(), config);
    WriteBytes(blobs / manifest_digest.hex(), manifest);
    WriteBytes(layout / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    WriteBytes(layout / "index.json",
               nlohmann::json{{"schemaVersion", 2},
                              {"manifests",
                               {{{"mediaType", fixtures::kMediaTypeManifest},
                                 {"digest", manifest_digest.str()},
                                 {"size", manifest.size()},
                                 {"annotations", {{fixtures::kAnnotationRefName, "sig"}}}}}}}
                   .dump());
    ASSERT_NO_FATAL_FAILURE(
        RunOk({"skopeo", "--insecure-policy", "copy", "--preserve-digests",
               "--dest-tls-verify=false", "oci:" + layout.string() + ":sig",
               "docker://" + host() + "/" + repo + ":sha256-" + digest.hex() + ".sig"},
              SkopeoOptions()));
  }

  common::TempDir dir_;
  std::unique_ptr<fixtures::RegistryFixture> reg_;
  std::unique_ptr<fixtures::FaultProxy> proxy_;
  std::unique_ptr<GpgSigner> signer_;
  std::string key_a_, key_b_;
  fs::path sigs_, registries_d_;
  fixtures::BuiltImage image_x_;
  std::set<std::string> made_;
  common::UniqueFd closed_port_;
  std::unique_ptr<fixtures::HttpServer> sig_server_;
  std::vector<std::pair<std::string, std::string>> vars_;
};

// One row of the table: `ref` ("signed/app:v1", "$HOST/" prepended) under
// `policy` (containers-policy.json; $HOST, $KEY_A, $KEY_B, $COSIGN,
// $COSIGN_OTHER and $DIGEST_X are expanded).
// `skopeo_reason`, `gantry_reason`: for a rejection, a part of each tool's
// message that shows it refused for the reason the case is about (and not,
// say, because the signature was missing).
struct Case {
  std::string name;
  std::string policy;
  std::string ref;
  Outcome expected;
  std::string skopeo_reason = {};
  std::string gantry_reason = {};
};

// What Debian's skopeo 1.9 says for any sigstoreSigned requirement: it
// neither makes nor verifies sigstore signatures ("Source image rejected:
// Debian-local change: sigstore disabled"). While it says so, gantry's
// answer in those cases is checked against the expectation alone.
constexpr char kSkopeoSigstoreDisabled[] = "Debian-local change: sigstore disabled";

constexpr char kRejectAll[] = R"({"default":[{"type":"reject"}]})";

// A policy that rejects everything but `transport`'s `scope`.
std::string AcceptingScope(const std::string& transport, const std::string& scope) {
  return R"({"default":[{"type":"reject"}],"transports":{")" + transport + R"(":{")" + scope +
         R"(":[{"type":"insecureAcceptAnything"}]}}})";
}

// A policy whose default is `requirement`.
std::string Default(const std::string& requirement) {
  return R"({"default":[)" + requirement + "]}";
}
std::string SignedBy(const std::string& key, const std::string& identity = "") {
  return R"({"type":"signedBy","keyType":"GPGKeys","keyPath":")" + key + "\"" +
         (identity.empty() ? "" : R"(,"signedIdentity":)" + identity) + "}";
}

class TrustCrosscheck : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { World::Build(&world_); }
  static void TearDownTestSuite() { world_.reset(); }
  void SetUp() override { ASSERT_TRUE(world_) << "the shared set-up failed (see above)"; }

  // What skopeo does with host()/`c.ref` under `c.policy`.
  static Outcome Skopeo(const Case& c, const fs::path& policy, std::string* message) {
    auto out = common::TempDir::Create("gantry-crosscheck-out");
    EXPECT_TRUE(out) << out.error().message;
    if (!out) return Outcome::kAccept;
    std::vector<std::string> argv = {
        "skopeo",
        "--policy",
        policy.string(),
        "--registries.d",
        world_->registries_d().string(),
        "copy",
        "--remove-signatures",
        "--src-tls-verify=false",
        "docker://" + world_->host() + "/" + Expand(c.ref, world_->vars()),
        "oci:" + (out->path() / "out").string() + ":x"};
    auto r = fixtures::RunCommand(argv, world_->SkopeoOptions());
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return Outcome::kAccept;
    *message = r->err;
    return r->exit_code == 0 ? Outcome::kAccept : Outcome::kReject;
  }

  // What `gantry ARGS… --signature-policy POLICY --registries-d D` does,
  // checking what a refusal must leave: one error line naming the policy
  // and holding `reason`, and no image recorded. `took`: how long it ran.
  static Outcome RunGantry(const std::vector<std::string>& args, const fs::path& policy,
                           const std::string& reason, std::chrono::milliseconds* took = nullptr) {
    auto g = Gantry::Create();
    EXPECT_TRUE(g) << g.error().message;
    if (!g) return Outcome::kAccept;
    std::vector<std::string> argv = args;
    argv.insert(argv.begin() + 1, {"--signature-policy", policy.string(), "--registries-d",
                                   world_->registries_d().string()});
    const auto start = std::chrono::steady_clock::now();
    auto r = g->Run(argv);
    if (took)
      *took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return Outcome::kAccept;
    if (r->exit_code == 0) {
      EXPECT_EQ(g->ImageNames().size(), 1u) << Describe(*r);
      return Outcome::kAccept;
    }
    // Retries may be logged (warn) before it; the error is one line.
    int error_lines = 0;
    std::string error;
    std::istringstream lines(r->err);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("gantry: ", 0) == 0) {
        ++error_lines;
        error = line;
      } else {
        EXPECT_NE(line.find(" warn "), std::string::npos) << "not a warning: " << line;
      }
    }
    EXPECT_EQ(error_lines, 1) << Describe(*r);
    EXPECT_NE(error.find("policy rejects"), std::string::npos) << Describe(*r);
    EXPECT_NE(error.find(reason), std::string::npos)
        << "gantry refused for another reason than \"" << reason << "\": " << error;
    EXPECT_TRUE(g->ImageNames().empty()) << "a refused image was recorded";
    return Outcome::kReject;
  }

  // What gantry pull does with host()/`c.ref` under `c.policy`; a refusal
  // must also come after the manifest was fetched and before any layer
  // blob was requested (the proxy's log). Every pulled image has X's
  // layers (wrongdigest/app's Y has its own, never requested either).
  static Outcome GantryPull(const Case& c, const fs::path& policy,
                            std::chrono::milliseconds* took = nullptr) {
    world_->proxy().ClearLog();
    const Outcome o = RunGantry({"pull", world_->host() + "/" + Expand(c.ref, world_->vars())},
                                policy, c.gantry_reason, took);
    const auto log = world_->proxy().Log();
    if (o == Outcome::kAccept) {
      // What makes the check below worth something: pulls do go through
      // the proxy.
      for (const auto& layer : world_->image().layers)
        EXPECT_FALSE(BlobGets(log, layer.digest).empty())
            << "an accepted pull fetched layer " << layer.digest.str() << " past the proxy";
    } else {
      EXPECT_GT(world_->proxy().CountRequests("GET", "/manifests/"), 0)
          << "a refusal must come after the manifest was fetched";
      for (const auto& layer : world_->image().layers)
        EXPECT_TRUE(BlobGets(log, layer.digest).empty())
            << "layer " << layer.digest.str() << " was requested for a refused image";
    }
    return o;
  }

  // Runs `c` through both tools: each must give the expected answer,
  // skopeo for the case's reason. `took`: how long gantry ran.
  static void RunCase(const Case& c, std::chrono::milliseconds* took = nullptr) {
    SCOPED_TRACE(c.name + ": " + c.ref);
    ASSERT_NO_FATAL_FAILURE(world_->Need(c.ref.substr(0, c.ref.find_first_of(":@"))));
    const fs::path policy = world_->WritePolicy(c.name, c.policy);
    std::string message;
    const Outcome skopeo = Skopeo(c, policy, &message);
    if (message.find(kSkopeoSigstoreDisabled) == std::string::npos) {
      EXPECT_EQ(OutcomeName(skopeo), OutcomeName(c.expected)) << "skopeo: " << message;
      if (c.expected == Outcome::kReject) {
        EXPECT_FALSE(c.skopeo_reason.empty()) << "a refusal needs skopeo's reason";
        EXPECT_NE(message.find(c.skopeo_reason), std::string::npos)
            << "skopeo refused for another reason than \"" << c.skopeo_reason << "\": " << message;
      }
    } else {
      EXPECT_NE(c.policy.find("sigstoreSigned"), std::string::npos)
          << "skopeo refused sigstore in a case without it: " << message;
    }
    if (c.expected == Outcome::kReject) {
      EXPECT_FALSE(c.gantry_reason.empty()) << "a refusal needs gantry's reason";
    }
    EXPECT_EQ(OutcomeName(GantryPull(c, policy, took)), OutcomeName(c.expected)) << "gantry";
  }

  static void RunTable(const std::vector<Case>& cases) {
    for (const Case& c : cases) RunCase(c);
  }

  // A local source (skopeo's and gantry's names for it are the same:
  // oci:DIR:TAG, oci-archive:FILE, docker-archive:FILE) under `policy`:
  // skopeo copies `source`, gantry runs `gantry_args`; both give
  // `expected`, a refusal by the default.
  static void RunLocalCase(const std::string& policy, const std::string& source,
                           const std::vector<std::string>& gantry_args, Outcome expected) {
    SCOPED_TRACE(source + " under " + policy);
    const fs::path file = world_->WritePolicy("local-" + std::to_string(local_cases_++), policy);
    auto out = common::TempDir::Create("gantry-crosscheck-out");
    ASSERT_TRUE(out) << out.error().message;
    const std::vector<std::string> argv = {
        "skopeo", "--policy", file.string(),
        "copy",   source,     "oci:" + (out->path() / "out").string() + ":x"};
    auto r = fixtures::RunCommand(argv, world_->SkopeoOptions());
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(OutcomeName(r->exit_code == 0 ? Outcome::kAccept : Outcome::kReject),
              OutcomeName(expected))
        << "skopeo: " << r->Describe(argv);
    if (expected == Outcome::kReject) {
      EXPECT_NE(r->err.find("is rejected by policy"), std::string::npos) << r->err;
    }
    EXPECT_EQ(OutcomeName(RunGantry(gantry_args, file, "scope default, requirement 1 (reject)")),
              OutcomeName(expected))
        << "gantry";
  }

  static inline int local_cases_ = 0;
  static inline std::unique_ptr<World> world_;
};

TEST_F(TrustCrosscheck, GpgSignaturesUnderSignedBy) {
  const std::string a = Default(SignedBy("$KEY_A"));
  // What gpg says of the corrupted signature depends on where the flipped
  // bytes land in it ("No data", "Unexpected GPG signature count 0", …).
  RunTable({
      {"unsigned", a, "unsigned/app:v1", Outcome::kReject,
       "A signature was required, but no signature exists", "no signature"},
      {"trusted-key", a, "signed/app:v1", Outcome::kAccept},
      {"other-key", Default(SignedBy("$KEY_B")), "signed/app:v1", Outcome::kReject,
       "Invalid GPG signature", "which is not a trusted key"},
      {"other-digest", a, "wrongdigest/app:v1", Outcome::kReject,
       "Signature for digest sha256:", "signed for manifest sha256:"},
      {"corrupt", a, "corrupt/app:v1", Outcome::kReject,
       "Source image rejected: ", "(signedBy): signature 1: "},
      {"key-paths",
       Default(R"({"type":"signedBy","keyType":"GPGKeys",)"
               R"("keyPaths":["$KEY_B","$KEY_A"]})"),
       "signed/app:v1", Outcome::kAccept},
      {"key-data", Default(R"({"type":"signedBy","keyType":"GPGKeys","keyData":"$DATA_A"})"),
       "signed/app:v1", Outcome::kAccept},
      {"http-lookaside", a, "httpsigs/app:v1", Outcome::kAccept},
      {"http-lookaside-other-key", Default(SignedBy("$KEY_B")), "httpsigs/app:v1", Outcome::kReject,
       "Invalid GPG signature", "which is not a trusted key"},
      {"key-data-unsigned",
       Default(R"({"type":"signedBy","keyType":"GPGKeys","keyData":"$DATA_A"})"), "unsigned/app:v1",
       Outcome::kReject, "A signature was required, but no signature exists", "no signature"},
  });
}

// Each signedIdentity rule accepts one reference and rejects another. The
// signatures claim: signed/app:v1 (found for signed/app and, copied, for
// moved/app) and alt/app:v1 (for alt/app).
TEST_F(TrustCrosscheck, EverySignedIdentityRuleAcceptsOneAndRejectsAnother) {
  struct Rule {
    std::string type, fields;
  };
  const std::vector<Rule> rules = {
      {"matchRepoDigestOrExact", ""},
      {"matchRepository", ""},
      {"matchExact", ""},
      {"exactReference", R"(,"dockerReference":"$HOST/signed/app:v1")"},
      {"exactRepository", R"(,"dockerRepository":"$HOST/signed/app")"},
      {"remapIdentity", R"(,"prefix":"$HOST/moved","signedPrefix":"$HOST/signed")"},
      {"remapIdentity", R"(,"prefix":"$HOST/moved","signedPrefix":"$HOST/alt")"},
  };
  auto policy = [&](size_t i) {
    return Default(
        SignedBy("$KEY_A", R"({"type":")" + rules[i].type + "\"" + rules[i].fields + "}"));
  };
  auto rejected = [&](size_t i) { return "does not match under signedIdentity " + rules[i].type; };
  const std::string not_accepted = "is not accepted";
  RunTable({
      {"digest-or-exact-other-tag", policy(0), "signed/app:v2", Outcome::kReject, not_accepted,
       rejected(0)},
      {"digest-or-exact-by-digest", policy(0), "signed/app@$DIGEST_X", Outcome::kAccept},
      {"digest-or-exact-other-repo-by-digest", policy(0), "moved/app@$DIGEST_X", Outcome::kReject,
       not_accepted, rejected(0)},
      {"repository-other-repo", policy(1), "moved/app:v1", Outcome::kReject, not_accepted,
       rejected(1)},
      {"repository-other-tag", policy(1), "signed/app:v2", Outcome::kAccept},
      {"exact-other-tag", policy(2), "signed/app:v2", Outcome::kReject, not_accepted, rejected(2)},
      {"exact-same-tag", policy(2), "signed/app:v1", Outcome::kAccept},
      {"exact-reference-match", policy(3), "moved/app:v1", Outcome::kAccept},
      {"exact-reference-other", policy(3), "alt/app:v1", Outcome::kReject, not_accepted,
       rejected(3)},
      {"exact-repository-match", policy(4), "moved/app:v1", Outcome::kAccept},
      {"exact-repository-other", policy(4), "alt/app:v1", Outcome::kReject, not_accepted,
       rejected(4)},
      {"remap-match", policy(5), "moved/app:v1", Outcome::kAccept},
      {"remap-other", policy(6), "moved/app:v1", Outcome::kReject, not_accepted, rejected(6)},
  });
}

TEST_F(TrustCrosscheck, RejectDefaultWithAnInsecureAcceptAnythingScope) {
  const std::string policy = AcceptingScope("docker", "$HOST/unsigned/app");
  RunTable({
      {"scope-accepts", policy, "unsigned/app:v1", Outcome::kAccept},
      {"default-rejects", policy, "alt/app:v1", Outcome::kReject, "is rejected by policy",
       "scope default, requirement 1 (reject)"},
  });
}

// An image passes a signedBy requirement when any one of its signatures
// does (a bad one before it does not matter); every requirement of a list
// must pass.
TEST_F(TrustCrosscheck, SeveralSignaturesAndSeveralRequirements) {
  const std::string a = SignedBy("$KEY_A");
  const std::string b = SignedBy("$KEY_B");
  RunTable({
      {"other-key-then-trusted", Default(a), "multi/app:v1", Outcome::kAccept},
      {"corrupt-then-trusted", Default(a), "corruptfirst/app:v1", Outcome::kAccept},
      {"both-keys-required", Default(a + "," + b), "signed/app:v1", Outcome::kReject,
       "Invalid GPG signature", "requirement 2 (signedBy)"},
      {"both-keys-present", Default(a + "," + b), "multi/app:v1", Outcome::kAccept},
      {"accept-and-reject", Default(R"({"type":"insecureAcceptAnything"},{"type":"reject"})"),
       "unsigned/app:v1", Outcome::kReject, "is rejected by policy", "requirement 2 (reject)"},
  });
}

// The docker transport's scopes, most specific first: the image by tag or
// digest, the repository, its namespace, the host with its port.
TEST_F(TrustCrosscheck, DockerScopesFromImageToHost) {
  auto accepting = [](const std::string& scope) { return AcceptingScope("docker", scope); };
  const std::string rejected = "is rejected by policy";
  const std::string by_default = "scope default, requirement 1 (reject)";
  RunTable({
      {"scope-tag", accepting("$HOST/signed/app:v1"), "signed/app:v1", Outcome::kAccept},
      {"scope-other-tag", accepting("$HOST/signed/app:v1"), "signed/app:v2", Outcome::kReject,
       rejected, by_default},
      {"scope-digest", accepting("$HOST/signed/app@$DIGEST_X"), "signed/app@$DIGEST_X",
       Outcome::kAccept},
      {"scope-digest-by-tag", accepting("$HOST/signed/app@$DIGEST_X"), "signed/app:v1",
       Outcome::kReject, rejected, by_default},
      {"scope-namespace", accepting("$HOST/signed"), "signed/app:v2", Outcome::kAccept},
      {"scope-host", accepting("$HOST"), "alt/app:v1", Outcome::kAccept},
      {"scope-host-without-port", accepting("127.0.0.1"), "alt/app:v1", Outcome::kReject, rejected,
       by_default},
      {"scope-other-namespace", accepting("$HOST/sign"), "signed/app:v1", Outcome::kReject,
       rejected, by_default},
  });
}

TEST_F(TrustCrosscheck, SigstoreAttachments) {
  const std::string cosign = R"({"type":"sigstoreSigned","keyPath":"$COSIGN"})";
  const std::string other = R"({"type":"sigstoreSigned","keyPath":"$COSIGN_OTHER"})";
  RunTable({
      {"sigstore-right-key", Default(cosign), "cosign/app:v1", Outcome::kAccept},
      {"sigstore-other-key", Default(other), "cosign/app:v1", Outcome::kReject, "",
       "(sigstoreSigned): signature 1: the signature is not by a trusted key"},
  });
}

// A lookaside server that is down: both refuse; gantry with one line and
// in bounded time (measured, not asserted: the retry rules decide it).
TEST_F(TrustCrosscheck, LookasideServerDown) {
  const Case c{"lookaside-down",
               Default(SignedBy("$KEY_A")),
               "down/app:v1",
               Outcome::kReject,
               "connect: connection refused",
               "its signatures could not be read: read signature http://127.0.0.1:"};
  std::chrono::milliseconds took{0};
  RunCase(c, &took);
  std::cout << "gantry pull with the lookaside down refused in " << took.count() << " ms\n";
  RecordProperty("lookaside_down_ms", static_cast<int>(took.count()));
}

// gantry load and skopeo's docker-archive: source: no signatures, so the
// docker-archive transport's "" scope, then the default, decide.
TEST_F(TrustCrosscheck, LoadFollowsTheDockerArchiveTransport) {
  ASSERT_NO_FATAL_FAILURE(world_->Need("unsigned/app"));
  const std::string archive = (world_->dir() / "x.tar").string();
  ASSERT_NO_FATAL_FAILURE(
      RunOk({"skopeo", "--insecure-policy", "copy", "--src-tls-verify=false",
             "docker://" + world_->host() + "/unsigned/app:v1",
             "docker-archive:" + archive + ":" + world_->host() + "/unsigned/app:v1"},
            world_->SkopeoOptions()));
  const std::vector<std::string> load = {"load", "-i", archive};
  const std::string source = "docker-archive:" + archive;
  RunLocalCase(kRejectAll, source, load, Outcome::kReject);
  // The docker transport's scopes never apply to an archive.
  RunLocalCase(AcceptingScope("docker", ""), source, load, Outcome::kReject);
  RunLocalCase(AcceptingScope("docker-archive", ""), source, load, Outcome::kAccept);
}

// gantry pull oci:DIR:TAG and oci-archive:FILE against skopeo's sources
// of the same names: no signatures; the transport's scopes (the path with
// symbolic links resolved, then each parent directory), then the default,
// decide.
TEST_F(TrustCrosscheck, OciLayoutsAndArchivesFollowTheirTransportScopes) {
  const fs::path layouts = world_->dir() / "layouts";
  const fs::path layout = layouts / "app";
  auto built = fixtures::WriteImage(layout, Spec("oci"), "v1");
  ASSERT_TRUE(built) << built.error().message;
  std::error_code ec;
  fs::create_directory_symlink(layout, layouts / "link", ec);
  ASSERT_FALSE(ec) << ec.message();
  const std::string dir = layout.string();
  const std::string oci = "oci:" + dir + ":v1";
  const std::vector<std::string> pull = {"pull", oci};
  RunLocalCase(kRejectAll, oci, pull, Outcome::kReject);
  // containers/image leaves the tag out of an oci: image's identity: a
  // DIR:TAG scope loads but never matches.
  RunLocalCase(AcceptingScope("oci", dir + ":v1"), oci, pull, Outcome::kReject);
  RunLocalCase(AcceptingScope("oci", dir), oci, pull, Outcome::kAccept);
  RunLocalCase(AcceptingScope("oci", layouts.string()), oci, pull, Outcome::kAccept);
  RunLocalCase(AcceptingScope("oci", dir + "-other"), oci, pull, Outcome::kReject);
  RunLocalCase(AcceptingScope("docker", ""), oci, pull, Outcome::kReject);
  RunLocalCase(AcceptingScope("oci-archive", dir), oci, pull, Outcome::kReject);
  // Through a symbolic link: the scope is where it leads.
  const std::string link = "oci:" + (layouts / "link").string() + ":v1";
  RunLocalCase(AcceptingScope("oci", dir), link, {"pull", link}, Outcome::kAccept);
  RunLocalCase(AcceptingScope("oci", (layouts / "link").string()), link, {"pull", link},
               Outcome::kReject);

  const std::string file = (layouts / "app.tar").string();
  ASSERT_NO_FATAL_FAILURE(RunOk({"skopeo", "--insecure-policy", "copy", oci, "oci-archive:" + file},
                                world_->SkopeoOptions()));
  const std::string archive = "oci-archive:" + file;
  const std::vector<std::string> pull_archive = {"pull", archive};
  RunLocalCase(kRejectAll, archive, pull_archive, Outcome::kReject);
  RunLocalCase(AcceptingScope("oci-archive", file), archive, pull_archive, Outcome::kAccept);
  RunLocalCase(AcceptingScope("oci-archive", layouts.string()), archive, pull_archive,
               Outcome::kAccept);
  RunLocalCase(AcceptingScope("oci", file), archive, pull_archive, Outcome::kReject);
}

}  // namespace
}  // namespace pulltest
