// The registry door's request parsing: routes, repository names with and
// without ?ns=, ranges, Accept, error bodies. Pure functions, no store.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mirror/distribution_internal.h"
#include "mirror/registry_server.h"

namespace mirror {
namespace {

using Kind = RangeRequest::Kind;

constexpr char kDigest[] =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

Route R(Endpoint e, std::string name, std::string ref) {
  return Route{.endpoint = e, .name = std::move(name), .reference = std::move(ref)};
}

TEST(MirrorRoute, ParsesTheEndpointsOfThePullSide) {
  EXPECT_EQ(ParseRoute("/v2/"), R(Endpoint::kBase, "", ""));
  EXPECT_EQ(ParseRoute("/v2"), R(Endpoint::kBase, "", ""));
  EXPECT_EQ(ParseRoute("/v2/library/alpine/manifests/3.19"),
            R(Endpoint::kManifest, "library/alpine", "3.19"));
  EXPECT_EQ(ParseRoute(std::string("/v2/a/b/c/blobs/") + kDigest),
            R(Endpoint::kBlob, "a/b/c", kDigest));
  EXPECT_EQ(ParseRoute("/v2/docker.io/library/alpine/tags/list"),
            R(Endpoint::kTagsList, "docker.io/library/alpine", ""));
  // The reference is the last segment; a repository may end in "manifests".
  EXPECT_EQ(ParseRoute("/v2/a/manifests/manifests/latest"),
            R(Endpoint::kManifest, "a/manifests", "latest"));
}

TEST(MirrorRoute, AnythingElseIs404Unsupported) {
  for (const char* path : {"/", "", "/v3/", "/v2/_catalog", "/v2/x/manifests/",
                           "/v2/manifests/latest", "/v2//manifests/latest", "/v2/x/blobs/uploads/",
                           "/v2/x/blobs/uploads/1234", "/v2/x/referrers/sha256:00", "/v2/tags/list",
                           "/v2x/a/manifests/b", "/etc/passwd", "/v2/../../etc/passwd"}) {
    auto r = ParseRoute(path);
    ASSERT_FALSE(r) << path;
    EXPECT_EQ(r.error().status, 404) << path;
    EXPECT_EQ(r.error().code, "UNSUPPORTED") << path;
  }
}

TEST(MirrorNames, ComponentsFollowDistributionsGrammar) {
  for (const char* ok : {"a", "alpine", "a.b", "a_b", "a__b", "a-b", "a---b", "0", "x1.y2"})
    EXPECT_TRUE(IsValidComponent(ok)) << ok;
  for (const char* bad : {"", ".", "..", "a..b", "a___b", "-a", "a-", "a.", "_a", "A", "a/b", "a:b",
                          "a%2e", "a b", "a\nb", "\xc3\xa9"})
    EXPECT_FALSE(IsValidComponent(bad)) << bad;
}

TEST(MirrorNames, TagsFollowTheTagGrammar) {
  for (const char* ok : {"latest", "3.19", "v1.0-rc_1", "_x", "A"})
    EXPECT_TRUE(IsValidTag(ok)) << ok;
  for (const char* bad : {"", ".x", "-x", "a:b", "a/b", "a@b", "a b"})
    EXPECT_FALSE(IsValidTag(bad)) << bad;
  EXPECT_TRUE(IsValidTag(std::string(128, 'a')));
  EXPECT_FALSE(IsValidTag(std::string(129, 'a')));
}

struct NameCase {
  const char* name;
  std::optional<std::string> ns;
  std::optional<std::string> repository;  // nullopt: valid but unqualified
};

TEST(MirrorNames, ResolvesToTheNameGantryRecords) {
  const std::vector<NameCase> cases = {
      // containerd's mirror requests: ns is the upstream registry host.
      {"library/alpine", "docker.io", "docker.io/library/alpine"},
      {"alpine", "docker.io", "docker.io/library/alpine"},
      {"alpine", "index.docker.io", "docker.io/library/alpine"},
      {"org/app", "docker.io", "docker.io/org/app"},
      {"fixture/app", "127.0.0.1:5000", "127.0.0.1:5000/fixture/app"},
      {"x/y/z", "ghcr.io", "ghcr.io/x/y/z"},
      {"app", "localhost", "localhost/app"},
      // Without ns: the first component must be a registry host.
      {"docker.io/library/alpine", std::nullopt, "docker.io/library/alpine"},
      {"docker.io/alpine", std::nullopt, "docker.io/library/alpine"},
      {"gantry.test/fixture/app", std::nullopt, "gantry.test/fixture/app"},
      {"localhost/app", std::nullopt, "localhost/app"},
      {"library/alpine", std::nullopt, std::nullopt},
      {"alpine", std::nullopt, std::nullopt},
      // An ns gantry would not read as a registry host cannot have been
      // pulled from under that name.
      {"app", "myregistry", std::nullopt},
  };
  for (const auto& c : cases) {
    auto r = ResolveRepository(c.name, c.ns);
    ASSERT_TRUE(r) << c.name << " ns=" << c.ns.value_or("-") << ": " << r.error().message;
    EXPECT_EQ(*r, c.repository) << c.name << " ns=" << c.ns.value_or("-");
  }
}

TEST(MirrorNames, InvalidNamesAre400NameInvalid) {
  const std::vector<std::pair<std::string, std::optional<std::string>>> cases = {
      {"../etc", "docker.io"},
      {"a/../b", std::nullopt},
      {"docker.io/../../x", std::nullopt},
      {"Library/alpine", "docker.io"},
      {"a//b", "docker.io"},
      {"a/", "docker.io"},
      {"alpine:3", "docker.io"},
      {"alpine@sha256", "docker.io"},
      {"a b", std::nullopt},
      {"alpine", ""},
      {"alpine", "docker.io/x"},
      {"alpine", "docker.io@x"},
      {std::string(300, 'a'), "docker.io"},
      {"x/" + std::string(250, 'a'), "docker.io"},
      {"docker.io/" + std::string(250, 'a'), std::nullopt},
  };
  for (const auto& [name, ns] : cases) {
    auto r = ResolveRepository(name, ns);
    ASSERT_FALSE(r) << name << " ns=" << ns.value_or("-");
    EXPECT_EQ(r.error().status, 400) << name;
    EXPECT_EQ(r.error().code, "NAME_INVALID") << name;
  }
}

struct RangeCase {
  std::optional<std::string> header;
  int64_t size;
  RangeRequest want;
};

RangeRequest Whole() { return RangeRequest{.kind = Kind::kWhole, .first = 0, .length = 0}; }
RangeRequest Part(int64_t first, int64_t length) {
  return RangeRequest{.kind = Kind::kPartial, .first = first, .length = length};
}
RangeRequest Unsatisfiable() {
  return RangeRequest{.kind = Kind::kUnsatisfiable, .first = 0, .length = 0};
}

TEST(MirrorRange, ParsesOneByteRange) {
  const std::vector<RangeCase> cases = {
      {std::nullopt, 100, Whole()},
      {"bytes=0-9", 100, Part(0, 10)},
      {"bytes=10-99", 100, Part(10, 90)},
      {"bytes=10-1000", 100, Part(10, 90)},  // clamped to the end
      {"bytes=99-", 100, Part(99, 1)},
      {"bytes=0-", 100, Part(0, 100)},
      {"bytes=-10", 100, Part(90, 10)},
      {"bytes=-1000", 100, Part(0, 100)},
      {"Bytes=5-5", 100, Part(5, 1)},
      {" bytes= 1-2 ", 100, Part(1, 2)},
      // Unsatisfiable: 416.
      {"bytes=100-", 100, Unsatisfiable()},
      {"bytes=100-200", 100, Unsatisfiable()},
      {"bytes=-0", 100, Unsatisfiable()},
      {"bytes=0-", 0, Unsatisfiable()},
      {"bytes=-5", 0, Unsatisfiable()},
      // Ignored (RFC 9110 lets a server ignore Range): the whole blob.
      {"bytes=5-4", 100, Whole()},
      {"bytes=0-1,5-6", 100, Whole()},
      {"items=0-1", 100, Whole()},
      {"bytes=a-b", 100, Whole()},
      {"bytes=-", 100, Whole()},
      {"bytes=1", 100, Whole()},
      {"bytes=+1-2", 100, Whole()},
      {"bytes=99999999999999999999-", 100, Whole()},
      {"", 100, Whole()},
  };
  for (const auto& c : cases) {
    RangeRequest got = ParseRange(c.header, c.size);
    EXPECT_EQ(got, c.want) << c.header.value_or("(none)") << " of " << c.size << ": kind "
                           << static_cast<int>(got.kind) << " first " << got.first << " length "
                           << got.length;
  }
}

TEST(MirrorAccept, MatchesExactTypesAndWildcards) {
  const std::string oci = "application/vnd.oci.image.manifest.v1+json";
  const std::string docker = "application/vnd.docker.distribution.manifest.v2+json";
  EXPECT_TRUE(Accepts({}, oci));
  EXPECT_TRUE(Accepts({""}, oci));
  EXPECT_TRUE(Accepts({oci}, oci));
  EXPECT_TRUE(Accepts({docker + ", " + oci}, oci));  // containerd: one header, a list
  EXPECT_TRUE(Accepts({docker, oci}, oci));          // skopeo: one header per type
  EXPECT_TRUE(Accepts({"*/*"}, oci));
  EXPECT_TRUE(Accepts({docker + ", */*"}, oci));
  EXPECT_TRUE(Accepts({"application/*"}, oci));
  EXPECT_TRUE(Accepts({"Application/VND.OCI.image.manifest.v1+JSON; q=0.5"}, oci));
  EXPECT_FALSE(Accepts({docker}, oci));
  EXPECT_FALSE(Accepts({"text/*"}, oci));
  EXPECT_FALSE(Accepts({oci + ";q=0"}, oci));
  EXPECT_FALSE(Accepts({oci + "; q=0.0, " + docker}, oci));
}

TEST(MirrorErrors, BodyIsOciErrorJson) {
  std::string body = ErrorBody({404, "MANIFEST_UNKNOWN", "no \"such\" thing"});
  auto j = nlohmann::json::parse(body);
  ASSERT_TRUE(j["errors"].is_array());
  ASSERT_EQ(j["errors"].size(), 1u);
  EXPECT_EQ(j["errors"][0]["code"], "MANIFEST_UNKNOWN");
  EXPECT_EQ(j["errors"][0]["message"], "no \"such\" thing");
  // A hostile name echoed in a message is not valid UTF-8: still JSON.
  std::string bad = ErrorBody({400, "NAME_INVALID", std::string("bad \xff\xfe name")});
  EXPECT_TRUE(nlohmann::json::accept(bad)) << bad;
}

TEST(MirrorListen, ParsesAddressesAndTellsLoopback) {
  auto a = ParseListenAddress("127.0.0.1:5050");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 5050);
  EXPECT_TRUE(a->loopback);
  EXPECT_EQ(a->str(), "127.0.0.1:5050");
  a = ParseListenAddress("localhost:0");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 0);
  a = ParseListenAddress("127.8.9.10:1");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->loopback);
  a = ParseListenAddress("[::1]:65535");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_TRUE(a->ipv6);
  EXPECT_TRUE(a->loopback);
  EXPECT_EQ(a->str(), "[::1]:65535");
  for (const char* remote : {"0.0.0.0:5050", "10.1.2.3:80", "[::]:5050", "[fe80::1]:1"}) {
    a = ParseListenAddress(remote);
    ASSERT_TRUE(a) << remote << ": " << a.error().message;
    EXPECT_FALSE(a->loopback) << remote;
  }
  for (const char* bad :
       {"", "5050", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:5x",
        "example.com:80", "::1:5050", "[::1]5050", "[::1:5050", "[nothing]:1", "1.2.3.4.5:1"}) {
    a = ParseListenAddress(bad);
    ASSERT_FALSE(a) << bad;
    EXPECT_EQ(a.error().code, common::Errc::kInvalidArgument) << bad;
  }
}

TEST(MirrorListen, NonLoopbackIsRefusedUnlessAllowed) {
  auto s = RegistryServer::Start({.root = "/nonexistent-never-opened",
                                  .listen = "0.0.0.0:0",
                                  .allow_remote = false,
                                  .max_connections = 1,
                                  .idle_timeout = std::chrono::seconds(1)});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, common::Errc::kFailedPrecondition) << s.error().message;
  EXPECT_NE(s.error().message.find("loopback"), std::string::npos) << s.error().message;
}

}  // namespace
}  // namespace mirror
