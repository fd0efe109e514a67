// Failed pulls a user can understand: each names what went wrong (the full
// normalised reference, the URL or host, the CA), exits with the code
// `gantry help` documents for it, and records no image.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/registry_fixture.h"
#include "integration/pull/pull_helpers.h"

namespace pulltest {
namespace {

using fixtures::RegistryAuth;

// The line of `err` that starts with "gantry: " (what ReportError prints);
// "" when there is none or more than one.
std::string ErrorLine(const std::string& err) {
  std::string found;
  int n = 0;
  for (size_t pos = 0; pos < err.size();) {
    size_t end = err.find('\n', pos);
    if (end == std::string::npos) end = err.size();
    std::string line = err.substr(pos, end - pos);
    if (line.starts_with("gantry: ")) {
      found = line;
      ++n;
    }
    pos = end + 1;
  }
  return n == 1 ? found : std::string();
}

class PullErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
  }

  // Runs `gantry pull args…`, expects `exit_code` and a message on stderr
  // holding every one of `needles`, and no image record afterwards.
  void ExpectPullFails(const std::vector<std::string>& args, int exit_code,
                       const std::vector<std::string>& needles) const {
    std::vector<std::string> argv = {"pull"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = gantry_->Run(argv);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->exit_code, exit_code) << Describe(*r);
    // Retries may be logged (warn) before it; the error is one line.
    const std::string error = ErrorLine(r->err);
    ASSERT_FALSE(error.empty()) << "no `gantry: ` error line on stderr:\n" << r->err;
    for (const std::string& n : needles)
      EXPECT_NE(error.find(n), std::string::npos) << "the error lacks `" << n << "`:\n" << r->err;
    EXPECT_TRUE(gantry_->ImageNames().empty()) << "a failed pull records no image";
  }

  std::unique_ptr<Gantry> gantry_;
};

TEST_F(PullErrors, UnknownTagNamesTheFullReference) {
  REQUIRE_TOOLS("docker-registry", "skopeo");
  std::unique_ptr<fixtures::RegistryFixture> reg;
  ASSERT_NO_FATAL_FAILURE(StartRegistry({}, &reg));
  fixtures::BuiltImage image;
  ASSERT_NO_FATAL_FAILURE(PushImage(*reg, gantry_->dir() / "layout", fixtures::FixtureImageSpec(),
                                    "fixture/app:v1", &image));
  ExpectPullFails({reg->host() + "/fixture/app:nope"}, 3,
                  {"manifest unknown: " + reg->host() + "/fixture/app:nope"});
}

TEST_F(PullErrors, UnknownRepositoryNamesTheFullReference) {
  REQUIRE_TOOLS("docker-registry", "skopeo");
  std::unique_ptr<fixtures::RegistryFixture> reg;
  ASSERT_NO_FATAL_FAILURE(StartRegistry({}, &reg));
  ExpectPullFails({reg->host() + "/fixture/missing"}, 3, {reg->host() + "/fixture/missing:latest"});
}

TEST_F(PullErrors, ConnectionRefusedNamesTheUrl) {
  auto port = fixtures::FreeLoopbackPort();
  ASSERT_TRUE(port) << port.error().message;
  const std::string host = "127.0.0.1:" + std::to_string(*port);
  ExpectPullFails({host + "/fixture/app:v1"}, 5,
                  {"http://" + host + "/v2/fixture/app/manifests/v1"});
}

TEST_F(PullErrors, WrongCredentialsAreUnauthenticated) {
  REQUIRE_TOOLS("docker-registry", "skopeo");
  fixtures::RegistryOptions o;
  o.auth = RegistryAuth::kHtpasswd;
  std::unique_ptr<fixtures::RegistryFixture> reg;
  ASSERT_NO_FATAL_FAILURE(StartRegistry(o, &reg));
  ExpectPullFails({"--creds", reg->username() + ":wrong", reg->host() + "/fixture/app:v1"}, 4,
                  {"authentication required for " + reg->host() + "/fixture/app"});
}

TEST_F(PullErrors, TlsWithoutTheCaNamesTheHostAndTheCa) {
  REQUIRE_TOOLS("docker-registry", "skopeo");
  fixtures::RegistryOptions o;
  o.tls = true;
  std::unique_ptr<fixtures::RegistryFixture> reg;
  ASSERT_NO_FATAL_FAILURE(StartRegistry(o, &reg));
  // HTTPS is configured for the host, but not the fixture's CA.
  const fs::path hosts = gantry_->registry_config() / reg->host() / "hosts.toml";
  ASSERT_TRUE(common::MkdirAll(hosts.parent_path()));
  ASSERT_TRUE(common::AtomicWriteFile(hosts, "server = \"https://" + reg->host() + "\"\n"));
  ExpectPullFails({reg->host() + "/fixture/app:v1"}, 5,
                  {"TLS handshake with " + reg->host() + " failed", "CA tried:"});
}

TEST_F(PullErrors, MalformedReferenceIsAUsageError) {
  for (const std::string ref :
       {"Fixture/App:v1", "fixture//app", "fixture/app:bad tag", "fixture/app@sha256:nothex", ""}) {
    SCOPED_TRACE(ref);
    ExpectPullFails({ref}, 2, {"parse reference `" + ref + "`"});
  }
}

}  // namespace
}  // namespace pulltest
