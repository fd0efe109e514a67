#include "registry/hosts.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <ostream>
#include <string>

#include "common/fd.h"
#include "common/fs.h"

namespace registry {
namespace {

namespace fs = std::filesystem;

class HostsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("hosts-test");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    options_.config_dirs = {dir_.path() / "first", dir_.path() / "second"};
  }

  void Write(const fs::path& rel, const std::string& text) {
    fs::path p = dir_.path() / rel;
    ASSERT_TRUE(common::MkdirAll(p.parent_path()));
    ASSERT_TRUE(common::AtomicWriteFile(p, text));
  }

  std::vector<RegistryHost> Resolve(std::string_view domain) {
    auto r = ResolveHosts(domain, options_);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : std::vector<RegistryHost>{};
  }

  std::string P(const fs::path& rel) const { return (dir_.path() / rel).string(); }

  common::TempDir dir_;
  HostsOptions options_;
};

TEST_F(HostsTest, NoConfigGivesHttpsUpstream) {
  auto hosts = Resolve("ghcr.io");
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts[0].base_url(), "https://ghcr.io/v2");
  EXPECT_FALSE(hosts[0].is_mirror);
  EXPECT_TRUE(hosts[0].can_pull);
  EXPECT_TRUE(hosts[0].can_resolve);
  EXPECT_TRUE(hosts[0].tls.verify);
  EXPECT_TRUE(hosts[0].tls.ca_files.empty());
}

TEST_F(HostsTest, DockerHubMapsToRegistry1) {
  auto hosts = Resolve("docker.io");
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts[0].base_url(), "https://registry-1.docker.io/v2");
}

TEST_F(HostsTest, LoopbackDefaultsToPlainHttp) {
  for (const char* d :
       {"localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "localhost"}) {
    auto hosts = Resolve(d);
    ASSERT_EQ(hosts.size(), 1u) << d;
    EXPECT_EQ(hosts[0].scheme, "http") << d;
    EXPECT_EQ(hosts[0].host, d);
  }
  EXPECT_EQ(Resolve("10.0.0.1:5000")[0].scheme, "https");
  EXPECT_EQ(Resolve("localhost.example.com")[0].scheme, "https");
}

TEST_F(HostsTest, PlainHttpOptionAndTlsVerifyOption) {
  options_.plain_http = true;
  options_.tls_verify = false;
  auto hosts = Resolve("registry.example.com");
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts[0].scheme, "http");
  EXPECT_FALSE(hosts[0].tls.verify);
}

TEST_F(HostsTest, CertsDirMakesLoopbackHttpsWithCaAndClientPair) {
  Write("first/127.0.0.1:5443/ca.crt", "x");
  Write("first/127.0.0.1:5443/b.crt", "x");
  Write("first/127.0.0.1:5443/client.cert", "x");
  Write("first/127.0.0.1:5443/client.key", "x");
  auto hosts = Resolve("127.0.0.1:5443");
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts[0].scheme, "https");
  EXPECT_EQ(hosts[0].tls.ca_files, (std::vector<std::string>{P("first/127.0.0.1:5443/b.crt"),
                                                             P("first/127.0.0.1:5443/ca.crt")}));
  EXPECT_EQ(hosts[0].tls.client_cert, P("first/127.0.0.1:5443/client.cert"));
  EXPECT_EQ(hosts[0].tls.client_key, P("first/127.0.0.1:5443/client.key"));
}

TEST_F(HostsTest, CertWithoutKeyIsAnError) {
  Write("first/r.example/client.cert", "x");
  auto r = ResolveHosts("r.example", options_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, common::Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find("client.key"), std::string::npos) << r.error().message;
}

TEST_F(HostsTest, KeyWithoutCertIsAnError) {
  Write("first/r.example/client.key", "x");
  EXPECT_FALSE(ResolveHosts("r.example", options_));
}

TEST_F(HostsTest, FirstConfigDirWithTheHostWins) {
  Write("second/r.example/hosts.toml", "server = \"https://second.example\"\n");
  EXPECT_EQ(Resolve("r.example")[0].host, "second.example");
  Write("first/r.example/hosts.toml", "server = \"https://first.example\"\n");
  EXPECT_EQ(Resolve("r.example")[0].host, "first.example");
}

TEST_F(HostsTest, MirrorsInFileOrderThenUpstream) {
  Write("first/docker.io/hosts.toml", R"(
server = "https://registry-1.docker.io"

[host."https://zz-mirror.example.com"]
  capabilities = ["pull", "resolve"]

[host."http://aa-mirror.example.com:5000"]
  capabilities = ["pull"]

[host."https://mm-mirror.example.com/base"]
)");
  auto hosts = Resolve("docker.io");
  ASSERT_EQ(hosts.size(), 4u);
  EXPECT_EQ(hosts[0].base_url(), "https://zz-mirror.example.com/v2");
  EXPECT_TRUE(hosts[0].is_mirror);
  EXPECT_TRUE(hosts[0].can_pull);
  EXPECT_TRUE(hosts[0].can_resolve);
  EXPECT_FALSE(hosts[0].can_push);
  EXPECT_EQ(hosts[1].base_url(), "http://aa-mirror.example.com:5000/v2");
  EXPECT_TRUE(hosts[1].can_pull);
  EXPECT_FALSE(hosts[1].can_resolve);
  EXPECT_EQ(hosts[2].base_url(), "https://mm-mirror.example.com/base/v2");
  EXPECT_TRUE(hosts[2].can_push) << "unspecified capabilities: all";
  EXPECT_EQ(hosts[3].base_url(), "https://registry-1.docker.io/v2");
  EXPECT_FALSE(hosts[3].is_mirror);
}

TEST_F(HostsTest, TlsSettingsCaStringArraySkipVerifyClient) {
  Write("first/r.example/hosts.toml", R"(
server = "https://r.example"
ca = "/up/ca.pem"
client = [["/up/c.pem", "/up/k.pem"]]

[host."https://m1.example"]
  ca = ["/m1/a.pem", "/m1/b.pem"]
  skip_verify = true
  client = "/m1/both.pem"

[host."https://m2.example"]
  client = ["/m2/c.pem", "/m2/k.pem"]
  skip_verify = false
)");
  auto hosts = Resolve("r.example");
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts[0].tls.ca_files, (std::vector<std::string>{"/m1/a.pem", "/m1/b.pem"}));
  EXPECT_FALSE(hosts[0].tls.verify);
  EXPECT_EQ(hosts[0].tls.client_cert, "/m1/both.pem");
  EXPECT_EQ(hosts[0].tls.client_key, "");
  EXPECT_TRUE(hosts[1].tls.verify);
  EXPECT_EQ(hosts[1].tls.client_cert, "/m2/c.pem");
  EXPECT_EQ(hosts[1].tls.client_key, "/m2/k.pem");
  EXPECT_EQ(hosts[2].tls.ca_files, (std::vector<std::string>{"/up/ca.pem"}));
  EXPECT_EQ(hosts[2].tls.client_cert, "/up/c.pem");
  EXPECT_EQ(hosts[2].tls.client_key, "/up/k.pem");
}

TEST_F(HostsTest, OverridePath) {
  Write("first/r.example/hosts.toml", R"(
[host."https://m.example/custom/api"]
  override_path = true
[host."https://n.example/prefix/v2"]
[host."https://o.example/"]
)");
  auto hosts = Resolve("r.example");
  ASSERT_EQ(hosts.size(), 4u);
  EXPECT_EQ(hosts[0].base_url(), "https://m.example/custom/api");
  EXPECT_EQ(hosts[1].base_url(), "https://n.example/prefix/v2");
  EXPECT_EQ(hosts[2].base_url(), "https://o.example/v2");
  EXPECT_EQ(hosts[3].base_url(), "https://r.example/v2");
}

TEST_F(HostsTest, Headers) {
  Write("first/r.example/hosts.toml", R"(
[header]
  x-top = "up"
[host."https://m.example"]
  [host."https://m.example".header]
    x-one = "1"
    x-many = ["a", "b"]
)");
  auto hosts = Resolve("r.example");
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].headers.at("x-one"), (std::vector<std::string>{"1"}));
  EXPECT_EQ(hosts[0].headers.at("x-many"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(hosts[0].headers.count("x-top"), 0u);
  EXPECT_EQ(hosts[1].headers.at("x-top"), (std::vector<std::string>{"up"}));
}

TEST_F(HostsTest, HttpMirrorForHttpsUpstream) {
  Write("first/r.example/hosts.toml", "[host.\"http://127.0.0.1:5001\"]\n");
  auto hosts = Resolve("r.example");
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].scheme, "http");
  EXPECT_TRUE(hosts[0].is_mirror);
  EXPECT_EQ(hosts[1].scheme, "https");
}

TEST_F(HostsTest, UpstreamListedAsHostKeepsItsPlace) {
  Write("first/r.example/hosts.toml", R"(
server = "https://r.example"
[host."https://r.example"]
  capabilities = ["resolve"]
[host."https://m.example"]
)");
  auto hosts = Resolve("r.example");
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].host, "r.example");
  EXPECT_FALSE(hosts[0].is_mirror);
  EXPECT_FALSE(hosts[0].can_pull);
  EXPECT_TRUE(hosts[1].is_mirror);
}

TEST_F(HostsTest, TopLevelCaMakesLoopbackHttps) {
  Write("first/localhost:5000/hosts.toml", "ca = \"/x/ca.pem\"\n");
  auto hosts = Resolve("localhost:5000");
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts[0].scheme, "https");
  EXPECT_EQ(hosts[0].tls.ca_files, (std::vector<std::string>{"/x/ca.pem"}));
}

TEST_F(HostsTest, HostsTomlAndCertsDirCombine) {
  Write("first/r.example/hosts.toml", "ca = \"/x/ca.pem\"\n[host.\"https://m.example\"]\n");
  Write("first/r.example/extra.crt", "x");
  auto hosts = Resolve("r.example");
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_TRUE(hosts[0].tls.ca_files.empty()) << "certs.d applies to the upstream";
  EXPECT_EQ(hosts[1].tls.ca_files,
            (std::vector<std::string>{"/x/ca.pem", P("first/r.example/extra.crt")}));
}

TEST_F(HostsTest, DefaultDirectoryIsTheFallback) {
  Write("second/_default/hosts.toml", R"(
server = "https://ignored.example"
skip_verify = true
[host."https://mirror.example"]
)");
  auto hosts = Resolve("r.example");
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0].host, "mirror.example");
  EXPECT_EQ(hosts[1].host, "r.example") << "server is ignored in _default";
  EXPECT_FALSE(hosts[1].tls.verify);
  // A host directory wins over _default.
  Write("second/r.example/ca.crt", "x");
  hosts = Resolve("r.example");
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_TRUE(hosts[0].tls.verify);
}

struct BadToml {
  const char* name;
  const char* text;
};

void PrintTo(const BadToml& b, std::ostream* os) { *os << b.name; }

class HostsBadTomlTest : public HostsTest, public ::testing::WithParamInterface<BadToml> {};

TEST_P(HostsBadTomlTest, IsInvalidArgumentNamingTheFile) {
  Write("first/r.example/hosts.toml", GetParam().text);
  auto r = ResolveHosts("r.example", options_);
  ASSERT_FALSE(r) << GetParam().name;
  EXPECT_EQ(r.error().code, common::Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find("hosts.toml"), std::string::npos) << r.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, HostsBadTomlTest,
    ::testing::Values(BadToml{"Syntax", "server = \n"}, BadToml{"ServerNotString", "server = 5\n"},
                      BadToml{"ServerNoScheme", "server = \"r.example\"\n"},
                      BadToml{"FtpMirror", "[host.\"ftp://m\"]\n"},
                      BadToml{"UnknownCapability",
                              "[host.\"https://m\"]\ncapabilities = [\"fly\"]\n"},
                      BadToml{"CaNotString", "ca = 1\n"},
                      BadToml{"SkipVerifyNotBool", "skip_verify = \"yes\"\n"},
                      BadToml{"ClientTriple", "client = [[\"a\", \"b\", \"c\"]]\n"},
                      BadToml{"HeaderWithNewline", "[header]\nx = \"a\\nb\"\n"},
                      BadToml{"HostNotTable", "host = 1\n"}),
    [](const ::testing::TestParamInfo<BadToml>& p) { return std::string(p.param.name); });

TEST(IsLoopbackHostTest, Table) {
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("localhost:5000"));
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.255.0.9:80"));
  EXPECT_TRUE(IsLoopbackHost("[::1]:5000"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_FALSE(IsLoopbackHost("128.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("localhost.evil.com"));
  EXPECT_FALSE(IsLoopbackHost("[::2]:5000"));
  EXPECT_FALSE(IsLoopbackHost("docker.io"));
}

}  // namespace
}  // namespace registry
