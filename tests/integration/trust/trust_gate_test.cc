// The signature policy on every way an image comes in, through the real
// CLI: `gantry pull` from a registry (decided after the manifest, before
// any blob is requested: the fault proxy's log says so), `pull oci:` and
// `load` (local sources looked up in their own transports), `copy`, and
// `inspect --signatures`. A refusal: one line, exit 4, nothing recorded,
// nothing stored. The signature cases themselves (GPG, sigstore, each
// identity rule, with skopeo agreeing) are in trust_crosscheck_test.

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "integration/pull/pull_helpers.h"

namespace pulltest {
namespace {

class TrustGate : public ::testing::Test {
 protected:
  // One registry, image and archive for the suite: skopeo takes seconds.
  static void SetUpTestSuite() {
    auto dir = common::TempDir::Create("gantry-trustgate-");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = new common::TempDir(std::move(*dir));
    reg_ = new std::unique_ptr<fixtures::RegistryFixture>;
    ASSERT_NO_FATAL_FAILURE(StartRegistry({}, reg_));
    image_ = new fixtures::BuiltImage;
    ASSERT_NO_FATAL_FAILURE(PushImage(**reg_, dir_->path() / "layout", fixtures::FixtureImageSpec(),
                                      "fixture/app:v1", image_));
    archive_ = dir_->path() / "app-docker.tar";
    auto flags = (*reg_)->SkopeoFlags("src");
    ASSERT_TRUE(flags) << flags.error().message;
    std::vector<std::string> argv = {"skopeo", "--insecure-policy", "copy"};
    argv.insert(argv.end(), flags->begin(), flags->end());
    argv.push_back("docker://" + (*reg_)->host() + "/fixture/app:v1");
    argv.push_back("docker-archive:" + archive_.string() + ":fixture/app:v1");
    auto run = fixtures::RunCommand(
        argv,
        {.env = {}, .cwd = dir_->path(), .stdin_data = {}, .timeout = std::chrono::seconds(60)});
    ASSERT_TRUE(run) << run.error().message;
    ASSERT_EQ(run->exit_code, 0) << run->Describe(argv);
  }
  static void TearDownTestSuite() {
    delete image_;
    delete reg_;
    delete dir_;
  }

  void SetUp() override {
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    g_ = std::make_unique<Gantry>(std::move(*g));
  }

  // A policy file of this test.
  fs::path Policy(const std::string& json) {
    fs::path p = g_->dir() / ("policy-" + std::to_string(++policies_) + ".json");
    auto w = common::AtomicWriteFile(p, json);
    EXPECT_TRUE(w) << w.error().message;
    return p;
  }

  // Runs gantry with `policy`; returns the result.
  fixtures::CommandResult Run(const fs::path& policy, std::vector<std::string> args,
                              const std::string& stdin_data = {}) {
    args.insert(args.begin(), {"--signature-policy", policy.string()});
    auto r = g_->Run(args, stdin_data);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : fixtures::CommandResult{};
  }

  // A refusal: exit 4 (permission denied), one line naming the policy's
  // reason, nothing recorded and no blob stored.
  void ExpectRefused(const fixtures::CommandResult& r, const std::string& reason) {
    EXPECT_EQ(r.exit_code, 4) << Describe(r);
    EXPECT_NE(r.err.find(reason), std::string::npos) << Describe(r);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(g_->ImageNames().empty());
    std::error_code ec;
    fs::path blobs = g_->root() / "content" / "blobs" / "sha256";
    EXPECT_TRUE(!fs::exists(blobs, ec) || fs::is_empty(blobs, ec)) << "blobs were stored";
  }

  static std::string Host() { return (*reg_)->host(); }

  static common::TempDir* dir_;
  static std::unique_ptr<fixtures::RegistryFixture>* reg_;
  static fixtures::BuiltImage* image_;
  static fs::path archive_;
  std::unique_ptr<Gantry> g_;
  int policies_ = 0;
};

common::TempDir* TrustGate::dir_ = nullptr;
std::unique_ptr<fixtures::RegistryFixture>* TrustGate::reg_ = nullptr;
fixtures::BuiltImage* TrustGate::image_ = nullptr;
fs::path TrustGate::archive_;

const char* kRejectAll = R"({"default": [{"type": "reject"}]})";

TEST_F(TrustGate, RegistryPullIsRefusedAfterTheManifestBeforeAnyBlob) {
  std::unique_ptr<fixtures::FaultProxy> proxy;
  ASSERT_NO_FATAL_FAILURE(StartProxy(**reg_, &proxy));
  const std::string ref = proxy->host() + "/fixture/app:v1";
  fs::path policy = Policy(R"({"default": [{"type": "insecureAcceptAnything"}],
      "transports": {"docker": {")" +
                           proxy->host() + R"(": [{"type": "reject"}]}}})");
  auto r = Run(policy, {"pull", ref});
  ExpectRefused(r, "policy rejects `" + ref + "`: scope transports.docker[\"" + proxy->host() +
                       "\"], requirement 1 (reject): the policy rejects every image here");
  int manifests = 0;
  for (const auto& e : proxy->Log()) {
    EXPECT_EQ(e.path.find("/blobs/"), std::string::npos) << "requested " << e.path;
    if (e.path.find("/manifests/") != std::string::npos) ++manifests;
  }
  EXPECT_GE(manifests, 1);

  // The same pull under a policy that accepts it.
  auto ok = Run(Policy(R"({"default": [{"type": "insecureAcceptAnything"}]})"), {"pull", ref});
  EXPECT_EQ(ok.exit_code, 0) << Describe(ok);
  EXPECT_EQ(g_->ImageNames(), std::vector<std::string>{ref});
}

TEST_F(TrustGate, UnsignedImageUnderSignedByIsRefused) {
  // The key file is never read: no signature exists to check with it.
  const std::string ref = Host() + "/fixture/app:v1";
  fs::path policy = Policy(R"({"default": [{"type": "signedBy", "keyType": "GPGKeys",
      "keyPath": "/nonexistent/key.gpg"}]})");
  fs::path sigs = g_->dir() / "no-signatures";
  fs::path registries_d = g_->dir() / "registries.d";
  fs::create_directories(registries_d);
  auto w = common::AtomicWriteFile(registries_d / "default.yaml",
                                   "default-docker:\n  lookaside: file://" + sigs.string() + "\n");
  ASSERT_TRUE(w) << w.error().message;
  auto r = Run(policy, {"--registries-d", registries_d.string(), "pull", ref});
  ExpectRefused(r, "requirement 1 (signedBy): no signature (a signature is required)");
}

TEST_F(TrustGate, LayoutsAreLookedUpInTheOciTransport) {
  const fs::path layout = dir_->path() / "layout";
  const std::string src = "oci:" + layout.string() + ":push";
  auto refused = Run(Policy(kRejectAll), {"pull", src});
  ExpectRefused(refused, "policy rejects `" + src +
                             "`: scope default, requirement 1 (reject): the policy rejects every "
                             "image here");
  // A parent directory of the layout as the scope.
  auto ok = Run(Policy(R"({"default": [{"type": "reject"}],
      "transports": {"oci": {")" +
                       dir_->path().string() + R"(": [{"type": "insecureAcceptAnything"}]}}})"),
                {"pull", src});
  EXPECT_EQ(ok.exit_code, 0) << Describe(ok);
  EXPECT_EQ(g_->ImageNames().size(), 1u);
}

TEST_F(TrustGate, LoadIsLookedUpInTheDockerArchiveTransport) {
  auto refused = Run(Policy(kRejectAll), {"load", "-i", archive_.string()});
  ExpectRefused(refused, "policy rejects `docker-archive:" + archive_.string() + "");
  const fs::path accept_archives = Policy(R"({"default": [{"type": "reject"}],
      "transports": {"docker-archive": {"": [{"type": "insecureAcceptAnything"}]}}})");
  auto ok = Run(accept_archives, {"load", "-i", archive_.string()});
  EXPECT_EQ(ok.exit_code, 0) << Describe(ok);
  EXPECT_EQ(g_->ImageNames(), std::vector<std::string>{"docker.io/fixture/app:v1"});
}

TEST_F(TrustGate, PipedLoadIsRefusedBeforeAnythingIsStored) {
  auto bytes = common::ReadFile(archive_, 64 << 20);
  ASSERT_TRUE(bytes) << bytes.error().message;
  auto refused = Run(Policy(kRejectAll), {"load"}, *bytes);
  ExpectRefused(refused, "requirement 1 (reject)");
  std::error_code ec;
  fs::path ingest = g_->root() / "content" / "ingest";
  EXPECT_TRUE(!fs::exists(ingest, ec) || fs::is_empty(ingest, ec));
}

TEST_F(TrustGate, CopyObeysThePolicyForItsSource) {
  const std::string src = "docker://" + Host() + "/fixture/app:v1";
  const std::string dst = "oci:" + (g_->dir() / "copied").string() + ":v1";
  auto flags = std::vector<std::string>{"copy", "--plain-http", src, dst};
  auto refused = Run(Policy(kRejectAll), flags);
  EXPECT_EQ(refused.exit_code, 4) << Describe(refused);
  EXPECT_NE(refused.err.find("requirement 1 (reject)"), std::string::npos) << Describe(refused);
  EXPECT_FALSE(fs::exists(g_->dir() / "copied" / "index.json"));
  auto ok = Run(Policy(R"({"default": [{"type": "insecureAcceptAnything"}]})"), flags);
  EXPECT_EQ(ok.exit_code, 0) << Describe(ok);
}

TEST_F(TrustGate, NamedPolicyFileMustExistAndParse) {
  auto missing = Run(g_->dir() / "nope.json", {"pull", Host() + "/fixture/app:v1"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("signature policy: "), std::string::npos) << Describe(missing);
  EXPECT_NE(missing.err.find("nope.json"), std::string::npos) << Describe(missing);
  auto broken =
      Run(Policy(R"({"default": [{"type": "sometimes"}]})"), {"pull", Host() + "/fixture/app:v1"});
  EXPECT_EQ(broken.exit_code, 2) << Describe(broken);
  EXPECT_NE(broken.err.find("unknown"), std::string::npos) << Describe(broken);
  EXPECT_TRUE(g_->ImageNames().empty());
}

TEST_F(TrustGate, InspectSignaturesReportsEachRequirement) {
  const std::string ref = Host() + "/fixture/app:v1";
  fs::path policy = Policy(R"({"default": [{"type": "insecureAcceptAnything"},
      {"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/nonexistent/key.gpg"}]})");
  fs::path registries_d = g_->dir() / "registries.d";
  fs::create_directories(registries_d);
  auto w = common::AtomicWriteFile(
      registries_d / "default.yaml",
      "default-docker:\n  lookaside: file://" + (g_->dir() / "sigs").string() + "\n");
  ASSERT_TRUE(w) << w.error().message;
  auto r = Run(policy, {"--registries-d", registries_d.string(), "inspect", "--signatures", ref});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["image"], ref);
  EXPECT_EQ(j["manifest"], image_->manifest.digest.str());
  EXPECT_EQ(j["accepted"], false);
  EXPECT_EQ(j["scope"], "default");
  ASSERT_EQ(j["requirements"].size(), 2u) << j.dump();
  EXPECT_EQ(j["requirements"][0]["type"], "insecureAcceptAnything");
  EXPECT_EQ(j["requirements"][0]["satisfied"], true);
  EXPECT_EQ(j["requirements"][1]["type"], "signedBy");
  EXPECT_EQ(j["requirements"][1]["satisfied"], false);
  EXPECT_EQ(j["requirements"][1]["problem"], "no signature (a signature is required)");
  EXPECT_TRUE(j["signatures"].empty());
  // Nothing is stored by an inspection.
  EXPECT_TRUE(g_->ImageNames().empty());
}

}  // namespace
}  // namespace pulltest
