// `gantry pull` (the CLI binary) against the real registry in its plain,
// TLS, htpasswd and token set-ups: by tag, by digest, from a two-platform
// index, with credentials from --creds and from `gantry login`. After every
// pull the store holds each blob under its verified digest, `gantry images`
// lists the image, and pulling it again transfers no blob.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/fs.h"
#include "fixtures/fault_proxy.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/registry_fixture.h"
#include "integration/pull/pull_helpers.h"

namespace pulltest {
namespace {

using fixtures::RegistryAuth;

constexpr char kLabelManifest[] = "io.gantry.manifest";
constexpr char kLabelConfig[] = "io.gantry.config";
constexpr char kLabelPlatform[] = "io.gantry.platform";

class PullCli : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_TOOLS("docker-registry", "skopeo");
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
  }

  // A registry (plain HTTP unless `tls`) with the fixture image pushed as
  // fixture/app:v1, and, without TLS, a fault proxy in front of it.
  void StartWithImage(bool tls, RegistryAuth auth) {
    fixtures::RegistryOptions o;
    o.tls = tls;
    o.auth = auth;
    ASSERT_NO_FATAL_FAILURE(StartRegistry(o, &reg_));
    ASSERT_NO_FATAL_FAILURE(PushImage(*reg_, gantry_->dir() / "layout",
                                      fixtures::FixtureImageSpec(), "fixture/app:v1", &image_));
    if (!tls) {
      ASSERT_NO_FATAL_FAILURE(StartProxy(*reg_, &proxy_));
    }
  }

  // `gantry inspect NAME`, parsed.
  nlohmann::json Inspect(const std::string& name) const {
    auto r = gantry_->Run({"inspect", name});
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return nullptr;
    EXPECT_EQ(r->exit_code, 0) << Describe(*r);
    auto j = nlohmann::json::parse(r->out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << r->out;
    return j.is_object() ? j : nullptr;
  }

  // The checks that follow every successful pull of `image` as `name`.
  void ExpectPulled(const std::string& name, const fixtures::BuiltImage& image,
                    const std::string& platform = "linux/amd64") const {
    ExpectBlobsInStore(gantry_->root(), ImageDigests(image));
    ExpectNoIngestLeft(gantry_->root());
    nlohmann::json images = gantry_->ImagesJson();
    ASSERT_TRUE(images.is_array());
    auto it = std::find_if(images.begin(), images.end(),
                           [&](const nlohmann::json& i) { return i.value("name", "") == name; });
    ASSERT_NE(it, images.end()) << "`gantry images` does not list " << name << ":\n"
                                << images.dump(2);
    EXPECT_EQ((*it)["config"], image.config.digest.str());
    EXPECT_EQ((*it)["platform"], platform);
  }

  std::string Ref(const std::string& host, const std::string& rest = "fixture/app:v1") const {
    return host + "/" + rest;
  }

  std::unique_ptr<Gantry> gantry_;
  std::unique_ptr<fixtures::RegistryFixture> reg_;
  std::unique_ptr<fixtures::FaultProxy> proxy_;
  fixtures::BuiltImage image_;
};

TEST_F(PullCli, ByTagStoresEveryVerifiedBlobAndRecordsTheImage) {
  ASSERT_NO_FATAL_FAILURE(StartWithImage(false, RegistryAuth::kNone));
  ASSERT_EQ(image_.layers.size(), 4u) << "the fixture image has 4 layers, one of them empty";
  const std::string name = Ref(proxy_->host());
  fixtures::CommandResult r;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name}, &r));
  EXPECT_NE(r.out.find(name + "\n"), std::string::npos) << "prints the name last:\n" << r.out;
  ASSERT_NO_FATAL_FAILURE(ExpectPulled(name, image_));
  // Each blob was fetched once, nothing else.
  for (const auto& d : ImageDigests(image_)) {
    if (d == image_.manifest.digest) continue;
    EXPECT_EQ(BlobGets(proxy_->Log(), d).size(), 1u) << d.str();
  }
  EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/"), 5);

  nlohmann::json info = Inspect(name);
  ASSERT_TRUE(info.is_object());
  EXPECT_EQ(info["target"]["digest"], image_.manifest.digest.str());
  EXPECT_EQ(info["labels"][kLabelManifest], image_.manifest.digest.str());
  EXPECT_EQ(info["labels"][kLabelConfig], image_.config.digest.str());
  EXPECT_EQ(info["labels"][kLabelPlatform], "linux/amd64");
  EXPECT_EQ(info["manifest"]["layers"].size(), 4u);
  EXPECT_FALSE(info.contains("index"));

  ExpectSecondPullFetchesNoBlob(*gantry_, *proxy_, {name});
}

TEST_F(PullCli, ByDigestRecordsTheDigestName) {
  ASSERT_NO_FATAL_FAILURE(StartWithImage(false, RegistryAuth::kNone));
  const std::string name = Ref(proxy_->host(), "fixture/app@" + image_.manifest.digest.str());
  fixtures::CommandResult r;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--quiet", name}, &r));
  EXPECT_EQ(r.out, image_.manifest.digest.str() + "\n");
  ASSERT_NO_FATAL_FAILURE(ExpectPulled(name, image_));
  EXPECT_EQ(proxy_->CountRequests("GET", "/manifests/" + image_.manifest.digest.str()), 1);
  EXPECT_EQ(proxy_->CountRequests("GET", "/manifests/v1"), 0) << "no tag to resolve";
  ExpectSecondPullFetchesNoBlob(*gantry_, *proxy_, {name});

  // The same image by tag then needs no blob either.
  ExpectSecondPullFetchesNoBlob(*gantry_, *proxy_, {Ref(proxy_->host())});
  auto names = gantry_->ImageNames();
  EXPECT_EQ(names.size(), 2u);
}

TEST_F(PullCli, IndexPicksEachPlatformWithThePlatformFlag) {
  fixtures::RegistryOptions o;
  ASSERT_NO_FATAL_FAILURE(StartRegistry(o, &reg_));
  ASSERT_NO_FATAL_FAILURE(StartProxy(*reg_, &proxy_));
  const fs::path layout = gantry_->dir() / "layout";
  auto amd64 = fixtures::WriteImage(layout, fixtures::FixtureImageSpec(), "");
  ASSERT_TRUE(amd64) << amd64.error().message;
  auto arm64 = fixtures::WriteImage(
      layout, fixtures::FixtureImageSpec(fixtures::Compression::kGzip, "arm64", "v8"), "");
  ASSERT_TRUE(arm64) << arm64.error().message;
  auto index = fixtures::WriteIndex(
      layout, {{*amd64, "linux", "amd64", ""}, {*arm64, "linux", "arm64", "v8"}}, "multi");
  ASSERT_TRUE(index) << index.error().message;
  ASSERT_NO_FATAL_FAILURE(PushLayout(*reg_, layout, "multi", "fixture/multi:v1"));

  const std::string name = Ref(proxy_->host(), "fixture/multi:v1");
  struct Case {
    std::string flag, platform;
    const fixtures::BuiltImage* image;
    const fixtures::BuiltImage* other;
  };
  for (const Case& c : {Case{"linux/amd64", "linux/amd64", &*amd64, &*arm64},
                        Case{"linux/arm64", "linux/arm64/v8", &*arm64, &*amd64}}) {
    SCOPED_TRACE(c.flag);
    proxy_->ClearLog();
    ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--platform", c.flag, name}));
    ASSERT_NO_FATAL_FAILURE(ExpectPulled(name, *c.image, c.platform));
    ExpectBlobsInStore(gantry_->root(), {index->digest});
    // Only the chosen platform's manifest and config were fetched.
    EXPECT_EQ(proxy_->CountRequests("GET", "/manifests/" + c.image->manifest.digest.str()), 1);
    EXPECT_EQ(proxy_->CountRequests("GET", "/manifests/" + c.other->manifest.digest.str()), 0);
    EXPECT_EQ(BlobGets(proxy_->Log(), c.image->config.digest).size(), 1u);
    EXPECT_EQ(BlobGets(proxy_->Log(), c.other->config.digest).size(), 0u);
    if (c.image == &*amd64) {
      ExpectBlobAbsent(gantry_->root(), c.other->manifest.digest);
      ExpectBlobAbsent(gantry_->root(), c.other->config.digest);
    }

    nlohmann::json info = Inspect(name);
    ASSERT_TRUE(info.is_object());
    EXPECT_EQ(info["name"], name);
    EXPECT_EQ(info["target"]["digest"], index->digest.str());
    EXPECT_EQ(info["labels"][kLabelManifest], c.image->manifest.digest.str());
    EXPECT_EQ(info["labels"][kLabelConfig], c.image->config.digest.str());
    EXPECT_EQ(info["labels"][kLabelPlatform], c.platform);
    EXPECT_EQ(info["index"]["manifests"].size(), 2u);
    EXPECT_EQ(info["manifest"]["config"]["digest"], c.image->config.digest.str());
    EXPECT_EQ(info["config"]["architecture"], c.image == &*amd64 ? "amd64" : "arm64");
  }
  // Both platforms share their layers: the arm64 pull, after the amd64
  // one, fetched its config only (checked above: the log had one blob).
  EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/"), 1);

  ExpectSecondPullFetchesNoBlob(*gantry_, *proxy_, {"--platform", "linux/arm64", name});
  EXPECT_EQ(proxy_->CountRequests("GET", "/manifests/"), 2) << "the index, then the manifest";
}

// Counts the GETs of `what` ("blobs", "manifests") of fixture/app in the
// registry's access log (a TLS registry cannot sit behind the plain-HTTP
// fault proxy).
int RegistryGets(const fixtures::RegistryFixture& reg, const std::string& what) {
  auto log = common::ReadFile(reg.log_path());
  EXPECT_TRUE(log) << log.error().message;
  if (!log) return -1;
  const std::string needle = "\"GET /v2/fixture/app/" + what + "/";
  int n = 0;
  for (size_t pos = 0; (pos = log->find(needle, pos)) != std::string::npos; ++pos) ++n;
  return n;
}

TEST_F(PullCli, TlsWithTheFixtureCaFromRegistryConfig) {
  ASSERT_NO_FATAL_FAILURE(StartWithImage(true, RegistryAuth::kNone));
  auto certs = reg_->CertsDir(gantry_->registry_config());
  ASSERT_TRUE(certs) << certs.error().message;
  ASSERT_TRUE(fs::exists(gantry_->registry_config() / reg_->host() / "ca.crt"));
  const std::string name = Ref(reg_->host());
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name}));
  ASSERT_NO_FATAL_FAILURE(ExpectPulled(name, image_));

  // The registry logs a request after answering it: wait for the lines.
  ASSERT_TRUE(fixtures::WaitUntil([&] { return RegistryGets(*reg_, "blobs") == 5; },
                                  std::chrono::seconds(10)))
      << "config and 4 layers, each fetched once:\n"
      << reg_->LogTail();
  const int manifests = RegistryGets(*reg_, "manifests");
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name}));
  ASSERT_TRUE(fixtures::WaitUntil([&] { return RegistryGets(*reg_, "manifests") > manifests; },
                                  std::chrono::seconds(10)));
  EXPECT_EQ(RegistryGets(*reg_, "blobs"), 5) << "the second pull fetched blobs again";
}

TEST_F(PullCli, BasicAuthWithTheCredsFlag) {
  ASSERT_NO_FATAL_FAILURE(StartWithImage(false, RegistryAuth::kHtpasswd));
  const std::string name = Ref(proxy_->host());
  const std::string creds = reg_->username() + ":" + reg_->password();
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--creds", creds, name}));
  ASSERT_NO_FATAL_FAILURE(ExpectPulled(name, image_));
  for (const auto& e : proxy_->Log()) {
    if (e.status == 200) {
      EXPECT_TRUE(e.had_authorization) << e.path;
    }
  }
  ExpectSecondPullFetchesNoBlob(*gantry_, *proxy_, {"--plain-http", "--creds", creds, name});
}

TEST_F(PullCli, BasicAuthFromGantryLogin) {
  ASSERT_NO_FATAL_FAILURE(StartWithImage(false, RegistryAuth::kHtpasswd));
  const std::string name = Ref(proxy_->host());
  // Without credentials the registry refuses.
  auto refused = gantry_->Run({"pull", name});
  ASSERT_TRUE(refused) << refused.error().message;
  EXPECT_EQ(refused->exit_code, 4) << Describe(*refused);

  auto login =
      gantry_->Run({"login", proxy_->host(), "--username", reg_->username(), "--password-stdin"},
                   reg_->password() + "\n");
  ASSERT_TRUE(login) << login.error().message;
  ASSERT_EQ(login->exit_code, 0) << Describe(*login);
  auto config = common::ReadFile(gantry_->docker_config() / "config.json");
  ASSERT_TRUE(config) << config.error().message;
  auto j = nlohmann::json::parse(*config, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << *config;
  EXPECT_TRUE(j["auths"][proxy_->host()].contains("auth")) << *config;

  proxy_->ClearLog();
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {name}));
  ASSERT_NO_FATAL_FAILURE(ExpectPulled(name, image_));
  EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/"), 5);
  ExpectSecondPullFetchesNoBlob(*gantry_, *proxy_, {name});
}

TEST_F(PullCli, BearerTokenIsFetchedOnceAndReusedAcrossBlobs) {
  ASSERT_NO_FATAL_FAILURE(StartWithImage(false, RegistryAuth::kToken));
  fixtures::TokenServer* ts = reg_->token_server();
  ASSERT_NE(ts, nullptr);
  ts->ClearRequests();
  const std::string name = Ref(proxy_->host());
  const std::string creds = reg_->username() + ":" + reg_->password();
  // The token server is plain http on another loopback port: credentials
  // go there only with --plain-http (docs/registry.md).
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--plain-http", "--creds", creds, name}));
  ASSERT_NO_FATAL_FAILURE(ExpectPulled(name, image_));

  auto requests = ts->requests();
  ASSERT_EQ(requests.size(), 1u) << "one token for the manifest and every blob";
  EXPECT_TRUE(requests[0].had_authorization);
  EXPECT_EQ(requests[0].username, reg_->username());
  EXPECT_EQ(requests[0].scopes, std::vector<std::string>{"repository:fixture/app:pull"});
  EXPECT_EQ(requests[0].status, 200);
  // Every blob went out with the token, each on its first try.
  int blob_gets = 0;
  for (const auto& e : proxy_->Log()) {
    if (e.path.find("/blobs/") == std::string::npos) continue;
    ++blob_gets;
    EXPECT_TRUE(e.had_authorization) << e.path;
    EXPECT_EQ(e.status, 200) << e.path;
  }
  EXPECT_EQ(blob_gets, 5);

  ts->ClearRequests();
  ExpectSecondPullFetchesNoBlob(*gantry_, *proxy_, {"--plain-http", "--creds", creds, name});
  EXPECT_EQ(ts->request_count(), 1u) << "a new process fetches one new token";
}

// --max-layers (pull and serve) takes a whole number of 1 or more and is
// in --help with its default; anything else is a usage error before any
// work starts.
TEST(PullCliFlags, MaxLayersTakesAWholeNumberOfOneOrMore) {
  auto g = Gantry::Create();
  ASSERT_TRUE(g) << g.error().message;
  const std::string socket = "unix://" + (g->dir() / "s.sock").string();
  for (const std::string value : {"0", "-1", "many", "2.5"}) {
    for (const auto& args :
         {std::vector<std::string>{"pull", "--max-layers", value, "127.0.0.1:9/a:b"},
          std::vector<std::string>{"serve", "--max-layers", value, "--listen", socket}}) {
      auto r = g->Run(args);
      ASSERT_TRUE(r) << r.error().message;
      EXPECT_EQ(r->exit_code, 2) << Describe(*r);
      EXPECT_NE(r->err.find("--max-layers"), std::string::npos) << Describe(*r);
    }
  }
  EXPECT_FALSE(fs::exists(g->dir() / "s.sock")) << "serve started";
  for (const std::string cmd : {"pull", "serve"}) {
    auto help = g->Run({cmd, "--help"});
    ASSERT_TRUE(help) << help.error().message;
    EXPECT_EQ(help->exit_code, 0) << Describe(*help);
    const auto at = help->out.find("--max-layers");
    ASSERT_NE(at, std::string::npos) << help->out;
    EXPECT_NE(help->out.find("500", at), std::string::npos) << help->out;
  }
}

}  // namespace
}  // namespace pulltest
