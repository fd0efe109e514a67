// image::FetchSignatures against real peers: lookaside storage in file://
// directories and behind a loopback HTTP server (fixtures::HttpServer), and
// sigstore attachments pushed to Debian's docker-registry by the project's
// own upload code.

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/fault_proxy.h"
#include "fixtures/http_server.h"
#include "fixtures/image_builder.h"
#include "fixtures/registry_fixture.h"
#include "fixtures/require.h"
#include "fixtures/signing.h"
#include "image/signatures.h"
#include "registry/client.h"
#include "registry/source.h"
#include "trust/evaluate.h"
#include "trust/policy.h"
#include "trust/registries_d.h"

namespace image {
namespace {

namespace fs = std::filesystem;
using common::Errc;

constexpr char kRepo[] = "team/app";

// A digest to sign for lookaside tests (no registry involved).
common::Digest SomeDigest() { return common::Digest::Sha256Of(std::string("manifest")); }

registry::ImageRef Ref(const std::string& text) {
  auto r = registry::ImageRef::Parse(text);
  EXPECT_TRUE(r) << text;
  return r ? *r : registry::ImageRef();
}

fixtures::HttpResponse Reply(int status, std::string body = {},
                             fixtures::HttpHeaders headers = {}) {
  fixtures::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Client options with an empty hosts config dir, plain HTTP, few attempts
// and a tiny backoff, so that failing retries are quick.
registry::ClientOptions Options(const fs::path& config_dir) {
  registry::ClientOptions o;
  o.hosts.config_dirs = {config_dir};
  o.hosts.plain_http = true;
  o.max_attempts = 3;
  o.backoff.initial = std::chrono::milliseconds(1);
  o.backoff.max_delay = std::chrono::milliseconds(5);
  o.backoff.max_retry_after = std::chrono::milliseconds(5);
  return o;
}

class SignatureFetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = common::TempDir::Create("sigfetch");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    ASSERT_TRUE(common::MkdirAll(dir_.path() / "hosts"));
  }

  // A registry source for `host`/team/app:v1; nothing is contacted until
  // something is read.
  std::unique_ptr<registry::ImageSource> Source(const std::string& host) {
    auto src = registry::OpenRegistrySource(Ref(host + "/" + kRepo + ":v1"),
                                            Options(dir_.path() / "hosts"));
    EXPECT_TRUE(src) << src.error().message;
    return src ? std::move(*src) : nullptr;
  }

  // Writes signature-1.. of SomeDigest() under `base_dir` (the lookaside
  // directory) for team/app.
  void WriteSignatures(const fs::path& base_dir, const std::vector<std::string>& sigs) {
    fs::path dir = base_dir / (std::string(kRepo) + "@sha256=" + SomeDigest().hex());
    ASSERT_TRUE(common::MkdirAll(dir));
    for (size_t i = 0; i < sigs.size(); ++i)
      ASSERT_TRUE(common::AtomicWriteFile(dir / ("signature-" + std::to_string(i + 1)), sigs[i]));
  }

  common::Result<trust::Signatures> FetchLookaside(const std::string& base,
                                                   const std::atomic<bool>* cancel = nullptr) {
    auto src = Source("127.0.0.1:1");  // never contacted: only the lookaside is read
    return FetchSignatures(*src, SomeDigest(), {.lookaside = base}, cancel);
  }

  common::TempDir dir_;
};

// --- LocateSignatures

TEST_F(SignatureFetchTest, DefaultLookasideFollowsContainersImage) {
  EXPECT_EQ(DefaultLookaside(0, "/root"), "file:///var/lib/containers/sigstore");
  EXPECT_EQ(DefaultLookaside(1000, "/home/al"), "file:///home/al/.local/share/containers/sigstore");
  EXPECT_EQ(DefaultLookaside(1000, "/home/a b%/"),
            "file:///home/a%20b%25/.local/share/containers/sigstore");
  EXPECT_EQ(DefaultLookaside(1000, ""), std::nullopt);
  EXPECT_EQ(DefaultLookaside(1000, "relative"), std::nullopt);
}

TEST_F(SignatureFetchTest, LocateSignaturesReadsRegistriesD) {
  auto config = trust::ParseRegistriesFile(R"(
default-docker:
  lookaside: https://sigs.example.com/default
docker:
  registry.example.com/team:
    lookaside: file:///srv/sigs
    use-sigstore-attachments: true
)",
                                           "test.yaml");
  ASSERT_TRUE(config) << config.error().message;
  SignatureLocations team = LocateSignatures(*config, Ref("registry.example.com/team/app:1"));
  EXPECT_EQ(team.lookaside, "file:///srv/sigs");
  EXPECT_TRUE(team.sigstore_attachments);
  SignatureLocations other = LocateSignatures(*config, Ref("quay.io/x/y:1"));
  EXPECT_EQ(other.lookaside, "https://sigs.example.com/default");
  EXPECT_FALSE(other.sigstore_attachments);
  // Nothing configured: the default directory (tests run as root).
  SignatureLocations none = LocateSignatures(trust::RegistriesD{}, Ref("quay.io/x/y:1"));
  EXPECT_EQ(none.lookaside, DefaultLookaside(::geteuid(), getenv("HOME") ? getenv("HOME") : ""));
  EXPECT_FALSE(none.sigstore_attachments);
}

// --- Lookaside, file://

TEST_F(SignatureFetchTest, FileLookasideMissingDirectoryIsNoSignature) {
  auto sigs = FetchLookaside("file://" + (dir_.path() / "nowhere").string());
  ASSERT_TRUE(sigs) << sigs.error().message;
  EXPECT_TRUE(sigs->gpg.empty());
  EXPECT_TRUE(sigs->sigstore.empty());
}

TEST_F(SignatureFetchTest, FileLookasideZeroOneAndThreeSignatures) {
  fs::path base = dir_.path() / "sigs";
  WriteSignatures(base, {});
  auto zero = FetchLookaside("file://" + base.string());
  ASSERT_TRUE(zero) << zero.error().message;
  EXPECT_TRUE(zero->gpg.empty());

  WriteSignatures(base, {std::string("one\0bytes", 9)});
  auto one = FetchLookaside("file://" + base.string());
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->gpg, std::vector<std::string>{std::string("one\0bytes", 9)});

  WriteSignatures(base, {"first", "second", "third"});
  // signature-5 after a gap is not read: the first missing one ends the list.
  ASSERT_TRUE(common::AtomicWriteFile(
      base / (std::string(kRepo) + "@sha256=" + SomeDigest().hex()) / "signature-5", "fifth"));
  auto three = FetchLookaside("file://" + base.string() + "/");  // "//" as containers/image
  ASSERT_TRUE(three) << three.error().message;
  EXPECT_EQ(three->gpg, (std::vector<std::string>{"first", "second", "third"}));
}

TEST_F(SignatureFetchTest, FileLookasidePathIsPercentDecoded) {
  fs::path base = dir_.path() / "with space";
  WriteSignatures(base, {"sig"});
  auto sigs = FetchLookaside("file://" + (dir_.path()).string() + "/with%20space");
  ASSERT_TRUE(sigs) << sigs.error().message;
  EXPECT_EQ(sigs->gpg, std::vector<std::string>{"sig"});
}

TEST_F(SignatureFetchTest, FileLookasideTooLargeSignatureIsRefused) {
  fs::path base = dir_.path() / "sigs";
  WriteSignatures(base, {"ok", std::string(kMaxSignatureSize + 1, 'x')});
  auto sigs = FetchLookaside("file://" + base.string());
  ASSERT_FALSE(sigs);
  EXPECT_EQ(sigs.error().code, Errc::kResourceExhausted);
  EXPECT_TRUE(Contains(sigs.error().message, "read signature file://" + base.string() + "/" +
                                                 kRepo + "@sha256=" + SomeDigest().hex() +
                                                 "/signature-2"))
      << sigs.error().message;
}

TEST_F(SignatureFetchTest, FileLookasideUnreadableSignatureIsAnError) {
  fs::path base = dir_.path() / "sigs";
  WriteSignatures(base, {"ok"});
  // A directory where signature-2 should be: reading it fails (EISDIR),
  // which is not "no more signatures".
  ASSERT_TRUE(common::MkdirAll(base / (std::string(kRepo) + "@sha256=" + SomeDigest().hex()) /
                               "signature-2"));
  auto sigs = FetchLookaside("file://" + base.string());
  ASSERT_FALSE(sigs);
  EXPECT_TRUE(Contains(sigs.error().message, "read signature file://")) << sigs.error().message;
  EXPECT_TRUE(Contains(sigs.error().message, "/signature-2")) << sigs.error().message;
}

TEST_F(SignatureFetchTest, FileLookasideWithAHostIsRefused) {
  auto sigs = FetchLookaside("file://server/share");
  ASSERT_FALSE(sigs);
  EXPECT_EQ(sigs.error().code, Errc::kInvalidArgument) << sigs.error().message;
}

// --- Lookaside, http://

// A lookaside server: `answer(n, path)` says what the n-th request (from 1)
// gets; every request is counted.
class LookasideServer {
 public:
  using Answer = std::function<fixtures::HttpResponse(int n, const std::string& path)>;
  explicit LookasideServer(Answer answer) : answer_(std::move(answer)) {
    auto s = fixtures::HttpServer::Start(
        {.handler = fixtures::SimpleHandler([this](const fixtures::HttpRequest& r) {
           int n;
           {
             std::lock_guard lock(mu_);
             n = ++requests_;
             paths_.push_back(r.path);
             if (r.Header("Authorization")) ++with_authorization_;
           }
           return answer_(n, r.path);
         })});
    EXPECT_TRUE(s) << s.error().message;
    if (s) server_ = std::move(*s);
  }
  std::string base_url() const { return server_->base_url(); }
  int requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::vector<std::string> paths() {
    std::lock_guard lock(mu_);
    return paths_;
  }
  int with_authorization() {
    std::lock_guard lock(mu_);
    return with_authorization_;
  }
  std::string host() const { return server_->host(); }
  // The path of signature `i` (from 1) of SomeDigest() under "/sigs".
  static std::string SigPath(int i) {
    return "/sigs/" + std::string(kRepo) + "@sha256=" + SomeDigest().hex() + "/signature-" +
           std::to_string(i);
  }

 private:
  Answer answer_;
  std::mutex mu_;
  int requests_ = 0;
  int with_authorization_ = 0;
  std::vector<std::string> paths_;
  std::unique_ptr<fixtures::HttpServer> server_;
};

TEST_F(SignatureFetchTest, HttpLookasideReadsUntilNotFound) {
  LookasideServer server([](int, const std::string& path) {
    if (path == LookasideServer::SigPath(1)) return Reply(200, "sig one");
    if (path == LookasideServer::SigPath(2)) return Reply(200, "sig two");
    return Reply(404, "no");
  });
  auto sigs = FetchLookaside(server.base_url() + "/sigs");
  ASSERT_TRUE(sigs) << sigs.error().message;
  EXPECT_EQ(sigs->gpg, (std::vector<std::string>{"sig one", "sig two"}));
  EXPECT_EQ(server.paths(),
            (std::vector<std::string>{LookasideServer::SigPath(1), LookasideServer::SigPath(2),
                                      LookasideServer::SigPath(3)}));
}

TEST_F(SignatureFetchTest, HttpLookasideNoneIsEmpty) {
  LookasideServer server([](int, const std::string&) { return Reply(404); });
  auto sigs = FetchLookaside(server.base_url() + "/sigs");
  ASSERT_TRUE(sigs) << sigs.error().message;
  EXPECT_TRUE(sigs->gpg.empty());
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(SignatureFetchTest, HttpLookaside500And429AreRetried) {
  for (const fixtures::HttpResponse& first :
       {Reply(500, "busy"), Reply(429, "slow down", {{"Retry-After", "1"}})}) {
    SCOPED_TRACE(first.status);
    LookasideServer server([&first](int n, const std::string& path) {
      if (n == 1) return first;
      if (path == LookasideServer::SigPath(1)) return Reply(200, "sig");
      return Reply(404);
    });
    auto sigs = FetchLookaside(server.base_url() + "/sigs");
    ASSERT_TRUE(sigs) << sigs.error().message;
    EXPECT_EQ(sigs->gpg, std::vector<std::string>{"sig"});
    EXPECT_EQ(server.requests(), 3);  // the failure, 200, 404
  }
}

TEST_F(SignatureFetchTest, HttpLookaside500EveryTimeFailsAfterMaxAttempts) {
  LookasideServer server([](int, const std::string&) { return Reply(503); });
  auto sigs = FetchLookaside(server.base_url() + "/sigs");
  ASSERT_FALSE(sigs);
  EXPECT_EQ(sigs.error().code, Errc::kUnavailable);
  EXPECT_EQ(sigs.error().message, "read signature " + server.base_url() +
                                      LookasideServer::SigPath(1) +
                                      ": HTTP 503 (gave up after 3 attempts)");
  EXPECT_EQ(server.requests(), 3);
}

TEST_F(SignatureFetchTest, HttpLookaside403IsAnErrorNamingTheUrl) {
  LookasideServer server([](int, const std::string& path) {
    if (path == LookasideServer::SigPath(1)) return Reply(200, "sig");
    return Reply(403);
  });
  auto sigs = FetchLookaside(server.base_url() + "/sigs");
  ASSERT_FALSE(sigs);
  EXPECT_EQ(sigs.error().code, Errc::kPermissionDenied);
  EXPECT_EQ(sigs.error().message,
            "read signature " + server.base_url() + LookasideServer::SigPath(2) + ": HTTP 403");
  EXPECT_EQ(server.requests(), 2);  // a 403 is not retried
}

TEST_F(SignatureFetchTest, HttpLookasideServerDownIsAnErrorNotAHang) {
  std::string url;
  {
    LookasideServer server([](int, const std::string&) { return Reply(404); });
    url = server.base_url();
  }  // stopped: its port is closed
  auto start = std::chrono::steady_clock::now();
  auto sigs = FetchLookaside(url + "/sigs");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(sigs);
  EXPECT_EQ(sigs.error().code, Errc::kUnavailable);
  EXPECT_TRUE(sigs.error().message.starts_with("read signature " + url +
                                               LookasideServer::SigPath(1) + ": "))
      << sigs.error().message;
  EXPECT_TRUE(Contains(sigs.error().message, "(gave up after 3 attempts)")) << sigs.error().message;
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST_F(SignatureFetchTest, HttpLookasideTooLargeSignatureIsRefused) {
  LookasideServer server([](int, const std::string& path) {
    if (path == LookasideServer::SigPath(1))
      return Reply(200, std::string(kMaxSignatureSize + 1, 's'));
    return Reply(404);
  });
  auto sigs = FetchLookaside(server.base_url() + "/sigs");
  ASSERT_FALSE(sigs);
  EXPECT_EQ(sigs.error().code, Errc::kResourceExhausted);
  EXPECT_TRUE(sigs.error().message.starts_with("read signature " + server.base_url() +
                                               LookasideServer::SigPath(1) + ": "))
      << sigs.error().message;
  EXPECT_EQ(server.requests(), 1);  // refused, not retried
}

TEST_F(SignatureFetchTest, HttpLookasideFollowsRedirects) {
  LookasideServer server([](int, const std::string& path) {
    if (path == LookasideServer::SigPath(1))
      return Reply(302, "", {{"Location", "/elsewhere/one"}});
    if (path == "/elsewhere/one") return Reply(200, "moved sig");
    return Reply(404);
  });
  auto sigs = FetchLookaside(server.base_url() + "/sigs");
  ASSERT_TRUE(sigs) << sigs.error().message;
  EXPECT_EQ(sigs->gpg, std::vector<std::string>{"moved sig"});
}

TEST_F(SignatureFetchTest, HttpLookasideRedirectToMetadataAddressIsRefused) {
  LookasideServer server([](int, const std::string&) {
    return Reply(302, "", {{"Location", "http://169.254.169.254/latest/meta-data/"}});
  });
  auto sigs = FetchLookaside(server.base_url() + "/sigs");
  ASSERT_FALSE(sigs);
  EXPECT_EQ(sigs.error().code, Errc::kPermissionDenied);
  EXPECT_TRUE(Contains(sigs.error().message, "169.254.169.254")) << sigs.error().message;
  EXPECT_TRUE(sigs.error().message.starts_with("read signature " + server.base_url()))
      << sigs.error().message;
  EXPECT_EQ(server.requests(), 1);  // refused, not retried
}

TEST_F(SignatureFetchTest, HttpLookasideGetsNoCredentials) {
  LookasideServer server([](int, const std::string& path) {
    if (path == LookasideServer::SigPath(1)) return Reply(200, "sig");
    return Reply(404);
  });
  // The registry on the lookaside's own host, with credentials for it: the
  // lookaside requests still carry none.
  registry::ClientOptions options = Options(dir_.path() / "hosts");
  registry::Credentials creds;
  creds.username = "user";
  creds.password = "secret";
  options.creds = creds;
  auto src =
      registry::OpenRegistrySource(Ref(server.host() + "/" + kRepo + ":v1"), std::move(options));
  ASSERT_TRUE(src) << src.error().message;
  auto sigs =
      FetchSignatures(**src, SomeDigest(), {.lookaside = server.base_url() + "/sigs"}, nullptr);
  ASSERT_TRUE(sigs) << sigs.error().message;
  EXPECT_EQ(sigs->gpg, std::vector<std::string>{"sig"});
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(server.with_authorization(), 0);
}

TEST_F(SignatureFetchTest, HttpLookasideEndlessSignaturesAreRefused) {
  LookasideServer server([](int, const std::string&) { return Reply(200, "sig"); });
  auto sigs = FetchLookaside(server.base_url() + "/sigs");
  ASSERT_FALSE(sigs);
  EXPECT_EQ(sigs.error().code, Errc::kResourceExhausted);
  EXPECT_TRUE(Contains(sigs.error().message, "more than 128 signatures")) << sigs.error().message;
  EXPECT_EQ(server.requests(), static_cast<int>(kMaxSignatures));
}

TEST_F(SignatureFetchTest, CancelledBeforeReading) {
  LookasideServer server([](int, const std::string&) { return Reply(200, "sig"); });
  std::atomic<bool> cancel{true};
  auto sigs = FetchLookaside(server.base_url() + "/sigs", &cancel);
  ASSERT_FALSE(sigs);
  EXPECT_EQ(sigs.error().code, Errc::kCancelled);
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(SignatureFetchTest, LayoutSourceHasNoSignaturesAndReadsNothing) {
  auto built = fixtures::WriteImage(dir_.path() / "layout", fixtures::FixtureImageSpec(), "v1");
  ASSERT_TRUE(built) << built.error().message;
  auto src = registry::OpenLayoutSource(dir_.path() / "layout", "v1");
  ASSERT_TRUE(src) << src.error().message;
  LookasideServer server([](int, const std::string&) { return Reply(200, "sig"); });
  auto sigs = FetchSignatures(
      **src, SomeDigest(), {.lookaside = server.base_url(), .sigstore_attachments = true}, nullptr);
  ASSERT_TRUE(sigs) << sigs.error().message;
  EXPECT_TRUE(sigs->gpg.empty());
  EXPECT_TRUE(sigs->sigstore.empty());
  EXPECT_EQ(server.requests(), 0);
}

// --- Sigstore attachments in a real registry

// One attachment layer to push.
struct Layer {
  std::string media_type{};
  std::string bytes{};
  std::optional<std::string> signature{};  // the cosign annotation
};

class SigstoreAttachmentTest : public SignatureFetchTest {
 protected:
  static void SetUpTestSuite() {
    auto reg = fixtures::RegistryFixture::Start();
    ASSERT_TRUE(reg) << reg.error().message;
    reg_ = new fixtures::RegistryFixture(std::move(*reg));
  }
  static void TearDownTestSuite() {
    delete reg_;
    reg_ = nullptr;
  }
  void SetUp() override {
    REQUIRE_TOOLS("docker-registry", "openssl");
    ASSERT_NE(reg_, nullptr);
    SignatureFetchTest::SetUp();
    auto client = registry::RegistryClient::Create(Options(dir_.path() / "hosts"));
    ASSERT_TRUE(client) << client.error().message;
    client_ = std::move(*client);
  }

  // A repository of its own for each test.
  registry::ImageRef RepoRef(const std::string& host) const {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info->name();
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return Ref(host + "/sig/" + name + ":v1");
  }

  void PushBlob(const registry::ImageRef& repo, const std::string& bytes) {
    common::Digest digest = common::Digest::Sha256Of(bytes);
    auto session = client_->StartUpload(repo, digest, "");
    ASSERT_TRUE(session) << session.error().message;
    ASSERT_TRUE(*session);
    auto done = client_->FinishUpload(repo, **session, digest, bytes);
    ASSERT_TRUE(done) << done.error().message;
  }

  void PushManifest(const registry::ImageRef& repo, const std::string& tag,
                    const std::string& media_type, const std::string& body) {
    auto put = client_->PutManifest(repo, tag, media_type, body);
    ASSERT_TRUE(put) << put.error().message;
  }

  // A manifest of type `type` (OCI by default) over a config "{}" of type
  // `config_type` and `layers` (all pushed first).
  std::string ManifestOver(
      const registry::ImageRef& repo, const std::vector<Layer>& layers,
      const std::string& type = "application/vnd.oci.image.manifest.v1+json",
      const std::string& config_type = "application/vnd.oci.image.config.v1+json") {
    const std::string config = "{}";
    PushBlob(repo, config);
    nlohmann::json j = {{"schemaVersion", 2},
                        {"mediaType", type},
                        {"config",
                         {{"mediaType", config_type},
                          {"digest", common::Digest::Sha256Of(config).str()},
                          {"size", config.size()}}},
                        {"layers", nlohmann::json::array()}};
    for (const Layer& l : layers) {
      PushBlob(repo, l.bytes);
      nlohmann::json d = {{"mediaType", l.media_type},
                          {"digest", common::Digest::Sha256Of(l.bytes).str()},
                          {"size", l.bytes.size()}};
      if (l.signature)
        d["annotations"] = {{std::string(trust::kSigstoreSignatureAnnotation), *l.signature}};
      j["layers"].push_back(d);
    }
    return j.dump();
  }

  // Pushes the image repo:v1 (an OCI manifest with one layer) and returns
  // its manifest digest.
  common::Digest PushImage(const registry::ImageRef& repo) {
    std::string body = ManifestOver(
        repo, {{.media_type = "application/vnd.oci.image.layer.v1.tar", .bytes = "tar"}});
    PushManifest(repo, "v1", "application/vnd.oci.image.manifest.v1+json", body);
    return common::Digest::Sha256Of(body);
  }

  // Attaches `layers` to the image `digest` of repo (tag sha256-HEX.sig).
  void Attach(const registry::ImageRef& repo, const common::Digest& digest,
              const std::vector<Layer>& layers) {
    PushManifest(repo, "sha256-" + digest.hex() + ".sig",
                 "application/vnd.oci.image.manifest.v1+json", ManifestOver(repo, layers));
  }

  std::unique_ptr<registry::ImageSource> SourceFor(const registry::ImageRef& ref) {
    auto src = registry::OpenRegistrySource(ref, Options(dir_.path() / "hosts"));
    EXPECT_TRUE(src) << src.error().message;
    return src ? std::move(*src) : nullptr;
  }

  static inline fixtures::RegistryFixture* reg_ = nullptr;
  std::unique_ptr<registry::RegistryClient> client_;
};

const std::string kPayloadType(trust::kSigstorePayloadMediaType);

TEST_F(SigstoreAttachmentTest, PayloadsAndAnnotationsComeBack) {
  registry::ImageRef repo = RepoRef(reg_->host());
  common::Digest image = PushImage(repo);
  Attach(repo, image,
         {{.media_type = kPayloadType, .bytes = "payload one", .signature = "c2lnIG9uZQ=="},
          {.media_type = "application/vnd.oci.image.layer.v1.tar", .bytes = "not a signature"},
          {.media_type = kPayloadType, .bytes = "no annotation"},
          {.media_type = kPayloadType, .bytes = "payload two", .signature = "c2lnIHR3bw=="}});
  auto src = SourceFor(repo);
  auto sigs = FetchSignatures(*src, image, {.sigstore_attachments = true}, nullptr);
  ASSERT_TRUE(sigs) << sigs.error().message;
  EXPECT_TRUE(sigs->gpg.empty());
  ASSERT_EQ(sigs->sigstore.size(), 2u);
  EXPECT_EQ(sigs->sigstore[0].payload, "payload one");
  EXPECT_EQ(sigs->sigstore[0].base64_signature, "c2lnIG9uZQ==");
  EXPECT_EQ(sigs->sigstore[1].payload, "payload two");
  EXPECT_EQ(sigs->sigstore[1].base64_signature, "c2lnIHR3bw==");
}

TEST_F(SigstoreAttachmentTest, NotReadUnlessAsked) {
  registry::ImageRef repo = RepoRef(reg_->host());
  common::Digest image = PushImage(repo);
  Attach(repo, image, {{.media_type = kPayloadType, .bytes = "p", .signature = "cw=="}});
  auto sigs = FetchSignatures(*SourceFor(repo), image, {}, nullptr);
  ASSERT_TRUE(sigs) << sigs.error().message;
  EXPECT_TRUE(sigs->sigstore.empty());
}

TEST_F(SigstoreAttachmentTest, CancelledAttachmentReadIsCancelled) {
  registry::ImageRef repo = RepoRef(reg_->host());
  common::Digest image = PushImage(repo);
  Attach(repo, image, {{.media_type = kPayloadType, .bytes = "p", .signature = "cw=="}});
  std::atomic<bool> cancel{true};
  auto sigs = FetchSignatures(*SourceFor(repo), image,
                              {.lookaside = std::nullopt, .sigstore_attachments = true}, &cancel);
  ASSERT_FALSE(sigs);
  EXPECT_EQ(sigs.error().code, Errc::kCancelled) << sigs.error().message;
}

TEST_F(SigstoreAttachmentTest, NoAttachmentIsNoSignature) {
  registry::ImageRef repo = RepoRef(reg_->host());
  common::Digest image = PushImage(repo);
  auto sigs = FetchSignatures(*SourceFor(repo), image, {.sigstore_attachments = true}, nullptr);
  ASSERT_TRUE(sigs) << sigs.error().message;
  EXPECT_TRUE(sigs->sigstore.empty());
}

TEST_F(SigstoreAttachmentTest, AttachmentThatIsNotAnOciManifestIsAnError) {
  registry::ImageRef repo = RepoRef(reg_->host());
  common::Digest image = PushImage(repo);
  const std::string docker_type = "application/vnd.docker.distribution.manifest.v2+json";
  const std::string docker =
      ManifestOver(repo, {}, docker_type, "application/vnd.docker.container.image.v1+json");
  const std::string tag = "sha256-" + image.hex() + ".sig";
  PushManifest(repo, tag, docker_type, docker);
  auto sigs = FetchSignatures(*SourceFor(repo), image, {.sigstore_attachments = true}, nullptr);
  ASSERT_FALSE(sigs);
  EXPECT_EQ(sigs.error().code, Errc::kInvalidArgument);
  EXPECT_TRUE(Contains(sigs.error().message, repo.name() + ":" + tag)) << sigs.error().message;
  EXPECT_TRUE(Contains(sigs.error().message, "not an OCI image manifest")) << sigs.error().message;
}

TEST_F(SigstoreAttachmentTest, PayloadWithWrongBytesIsAnError) {
  registry::ImageRef upstream_repo = RepoRef(reg_->host());
  common::Digest image = PushImage(upstream_repo);
  const std::string payload = "payload bytes";
  Attach(upstream_repo, image,
         {{.media_type = kPayloadType, .bytes = payload, .signature = "cw=="}});
  auto proxy = fixtures::FaultProxy::Start(reg_->base_url());
  ASSERT_TRUE(proxy) << proxy.error().message;
  // Every answer for the payload blob inverted: right length, wrong bytes.
  (*proxy)->AddRule({.kind = fixtures::FaultRule::Kind::kWrongBytes,
                     .path_contains = "/blobs/" + common::Digest::Sha256Of(payload).str(),
                     .times = -1});
  registry::ImageRef repo = RepoRef((*proxy)->host());
  auto sigs = FetchSignatures(*SourceFor(repo), image, {.sigstore_attachments = true}, nullptr);
  ASSERT_FALSE(sigs);
  EXPECT_EQ(sigs.error().code, Errc::kDataLoss) << sigs.error().message;
  EXPECT_TRUE(Contains(sigs.error().message, common::Digest::Sha256Of(payload).str()))
      << sigs.error().message;
  EXPECT_GE((*proxy)->CountRequests("GET", "/blobs/"), 1);
}

TEST_F(SigstoreAttachmentTest, SignedByOpensslKeyIsAcceptedByThePolicy) {
  registry::ImageRef repo = RepoRef(reg_->host());
  common::Digest image = PushImage(repo);
  const fs::path keys = dir_.path() / "keys";
  ASSERT_TRUE(common::MkdirAll(keys));
  fs::path pub = trust::test_signing::MakeSigstoreKey(keys, "cosign", "P-256");
  const std::string payload = trust::test_signing::Payload(repo.str(), image);
  const std::string signature =
      trust::test_signing::SigstoreSign(keys, "cosign", payload, /*ed25519=*/false);
  ASSERT_FALSE(signature.empty());
  Attach(repo, image, {{.media_type = kPayloadType, .bytes = payload, .signature = signature}});

  auto sigs = FetchSignatures(*SourceFor(repo), image, {.sigstore_attachments = true}, nullptr);
  ASSERT_TRUE(sigs) << sigs.error().message;
  ASSERT_EQ(sigs->sigstore.size(), 1u);
  auto policy = trust::ParsePolicy(R"({"default": [{"type": "reject"}],
      "transports": {"docker": {")" + reg_->host() +
                                       R"(": [{"type": "sigstoreSigned", "keyPath": ")" +
                                       pub.string() + R"("}]}}})",
                                   "test policy");
  ASSERT_TRUE(policy) << policy.error().message;
  auto accepted = trust::Evaluate(*policy, repo, image, *sigs);
  EXPECT_TRUE(accepted) << accepted.error().message;
  // Another image's digest: the same signature does not do.
  auto other = trust::Evaluate(*policy, repo, common::Digest::Sha256Of(std::string("x")), *sigs);
  EXPECT_FALSE(other);
  // No signatures at all: rejected.
  auto none = trust::Evaluate(*policy, repo, image, trust::Signatures{});
  EXPECT_FALSE(none);
}

}  // namespace
}  // namespace image
