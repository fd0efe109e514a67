#include "registry/reference.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <utility>

namespace registry {
namespace {

constexpr const char* kHex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string D() { return std::string("sha256:") + kHex; }

struct Valid {
  std::string input;
  std::string domain;
  std::string path;
  std::string tag;  // "" for none
  bool has_digest;
  std::string normalised;
};

void PrintTo(const Valid& v, std::ostream* os) { *os << "`" << v.input << "`"; }

class ReferenceValid : public ::testing::TestWithParam<Valid> {};

TEST_P(ReferenceValid, Normalises) {
  const Valid& c = GetParam();
  auto r = ImageRef::Parse(c.input);
  ASSERT_TRUE(r) << c.input << ": " << r.error().message;
  EXPECT_EQ(r->domain(), c.domain);
  EXPECT_EQ(r->path(), c.path);
  EXPECT_EQ(r->tag().value_or(""), c.tag);
  EXPECT_EQ(r->digest().has_value(), c.has_digest);
  EXPECT_EQ(r->str(), c.normalised);
  // Normalisation is idempotent.
  auto again = ImageRef::Parse(r->str());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, *r);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ReferenceValid,
    ::testing::Values(
        Valid{"busybox", "docker.io", "library/busybox", "latest", false,
              "docker.io/library/busybox:latest"},
        Valid{"busybox:1.36", "docker.io", "library/busybox", "1.36", false,
              "docker.io/library/busybox:1.36"},
        Valid{"library/busybox", "docker.io", "library/busybox", "latest", false,
              "docker.io/library/busybox:latest"},
        Valid{"docker.io/busybox", "docker.io", "library/busybox", "latest", false,
              "docker.io/library/busybox:latest"},
        Valid{"index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", false,
              "docker.io/library/busybox:latest"},
        Valid{"user/app", "docker.io", "user/app", "latest", false, "docker.io/user/app:latest"},
        Valid{"user/app:v2", "docker.io", "user/app", "v2", false, "docker.io/user/app:v2"},
        Valid{"ghcr.io/org/app:v1", "ghcr.io", "org/app", "v1", false, "ghcr.io/org/app:v1"},
        Valid{"quay.io/a/b/c/d", "quay.io", "a/b/c/d", "latest", false, "quay.io/a/b/c/d:latest"},
        Valid{"localhost/x", "localhost", "x", "latest", false, "localhost/x:latest"},
        Valid{"localhost:5000/x:t", "localhost:5000", "x", "t", false, "localhost:5000/x:t"},
        Valid{"127.0.0.1:5000/ns/name:tag", "127.0.0.1:5000", "ns/name", "tag", false,
              "127.0.0.1:5000/ns/name:tag"},
        Valid{"[::1]:5000/foo", "[::1]:5000", "foo", "latest", false, "[::1]:5000/foo:latest"},
        Valid{"[fe80::1]/foo:bar", "[fe80::1]", "foo", "bar", false, "[fe80::1]/foo:bar"},
        Valid{"host:5000/ns/name:tag@" + D(), "host:5000", "ns/name", "tag", true,
              "host:5000/ns/name:tag@" + D()},
        Valid{"busybox@" + D(), "docker.io", "library/busybox", "", true,
              "docker.io/library/busybox@" + D()},
        Valid{"registry.example.com/a@" + D(), "registry.example.com", "a", "", true,
              "registry.example.com/a@" + D()},
        Valid{"a.b.c/d-e/f_g/h__i/j.k:tag", "a.b.c", "d-e/f_g/h__i/j.k", "tag", false,
              "a.b.c/d-e/f_g/h__i/j.k:tag"},
        Valid{"foo---bar", "docker.io", "library/foo---bar", "latest", false,
              "docker.io/library/foo---bar:latest"},
        Valid{"x:_tag", "docker.io", "library/x", "_tag", false, "docker.io/library/x:_tag"},
        Valid{"x:A.b-C_d", "docker.io", "library/x", "A.b-C_d", false,
              "docker.io/library/x:A.b-C_d"},
        Valid{"x:" + std::string(128, 't'), "docker.io", "library/x", std::string(128, 't'), false,
              "docker.io/library/x:" + std::string(128, 't')},
        Valid{"Example.COM/app", "Example.COM", "app", "latest", false, "Example.COM/app:latest"},
        Valid{"my-registry.local:443/team/app:2024.01", "my-registry.local:443", "team/app",
              "2024.01", false, "my-registry.local:443/team/app:2024.01"},
        Valid{"0/1", "docker.io", "0/1", "latest", false, "docker.io/0/1:latest"},
        Valid{"a" + std::string(200, 'b'), "docker.io", "library/a" + std::string(200, 'b'),
              "latest", false, "docker.io/library/a" + std::string(200, 'b') + ":latest"},
        Valid{"k8s.gcr.io/pause:3.9", "k8s.gcr.io", "pause", "3.9", false,
              "k8s.gcr.io/pause:3.9"}));

struct Invalid {
  std::string input;
  std::string why;  // substring of the error message
};

void PrintTo(const Invalid& v, std::ostream* os) { *os << "`" << v.input << "`"; }

class ReferenceInvalid : public ::testing::TestWithParam<Invalid> {};

TEST_P(ReferenceInvalid, RejectedWithReason) {
  const Invalid& c = GetParam();
  auto r = ImageRef::Parse(c.input);
  ASSERT_FALSE(r) << c.input << " parsed as " << r->str();
  EXPECT_EQ(r.error().code, common::Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find(c.why), std::string::npos)
      << "input `" << c.input << "` gave: " << r.error().message;
  // The message names the input it refused.
  EXPECT_NE(r.error().message.find(c.input.substr(0, 20)), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ReferenceInvalid,
    ::testing::Values(
        Invalid{"", "empty reference"}, Invalid{"Busybox", "lower-case"},
        Invalid{"library/BusyBox", "lower-case"}, Invalid{"ghcr.io/Org/app", "lower-case"},
        Invalid{"docker.io/" + std::string(250, 'a'), "the limit is 255"},
        Invalid{"x:" + std::string(129, 't'), "the limit is 128"}, Invalid{"x:", "empty tag"},
        Invalid{"x:-tag", "must start with"}, Invalid{"x:ta/g", "must be numeric"},
        Invalid{"x:t@g", "invalid digest"}, Invalid{"x@sha256:abc", "needs 64 hex"},
        Invalid{"x@md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm"},
        Invalid{"-x", "must start and end"}, Invalid{"x-", "must start and end"},
        Invalid{"a//b", "empty path component"}, Invalid{"a/b/", "empty path component"},
        Invalid{"a..b", "invalid separator"}, Invalid{"a___b", "invalid separator"},
        Invalid{"a b", "whitespace"}, Invalid{"ex ample.com/a", "whitespace"},
        Invalid{"host:port/x", "must be numeric"}, Invalid{"host:99999/x", "out of range"},
        Invalid{"host:/x", "empty port"}, Invalid{"-bad.com/x", "must start and end with a letter"},
        Invalid{"bad_host.com/x", "invalid character"}, Invalid{"[::1/x", "unterminated IPv6"},
        Invalid{kHex, "image id"}, Invalid{"localhost/", "empty repository path"},
        Invalid{"x!y", "invalid character"}));

TEST(ReferenceTest, FamiliarFormDropsDefaults) {
  auto r = ImageRef::Parse("busybox");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->familiar(), "busybox:latest");
  EXPECT_EQ(r->registry_host(), "registry-1.docker.io");
  auto g = ImageRef::Parse("ghcr.io/org/app:v1");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->familiar(), "ghcr.io/org/app:v1");
  EXPECT_EQ(g->registry_host(), "ghcr.io");
}

// Found by fuzz_reference: the familiar form of these read back as another
// reference (a dotted namespace as a domain, a nested library path, an
// image id).
TEST(ReferenceTest, FamiliarFormKeepsWhatItNeedsToParseBack) {
  const std::pair<std::string, std::string> cases[] = {
      {"docker.io/library/alpine:3", "alpine:3"},
      {"docker.io/user/app:1", "user/app:1"},
      {"docker.io/er.iary/alpine:latest", "docker.io/er.iary/alpine:latest"},
      {"docker.io/localhost/x", "docker.io/localhost/x:latest"},
      {"docker.io/library/a/b:1", "library/a/b:1"},
      {"docker.io/library/" + std::string(64, 'a'), "library/" + std::string(64, 'a') + ":latest"},
      {"docker.io/library/foo.bar", "foo.bar:latest"},
  };
  for (const auto& [text, familiar] : cases) {
    auto r = ImageRef::Parse(text);
    ASSERT_TRUE(r) << text;
    EXPECT_EQ(r->familiar(), familiar) << text;
    auto again = ImageRef::Parse(r->familiar());
    ASSERT_TRUE(again) << r->familiar();
    EXPECT_EQ(*again, *r) << text;
  }
}

TEST(ReferenceTest, DigestWinsAsManifestReference) {
  auto r = ImageRef::Parse("host:5000/a:tag@" + D());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->manifest_reference(), D());
  auto t = ImageRef::Parse("host:5000/a:tag");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->manifest_reference(), "tag");
  EXPECT_EQ(t->WithDigest(*common::Digest::Parse(D())).str(), "host:5000/a:tag@" + D());
  EXPECT_EQ(r->WithTag("other").str(), "host:5000/a:other");
}

}  // namespace
}  // namespace registry
