// signedIdentity rules, table-driven, with the cases of containers/image's
// signature/policy_reference_match.go behaviour: exact, repository-or-digest,
// repository, fixed reference, fixed repository and prefix remapping.

#include "trust/identity.h"

#include <gtest/gtest.h>

#include <string>

namespace trust {
namespace {

const std::string kDigest =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kOtherDigest =
    "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

struct Case {
  const char* name;
  SignedIdentity identity;
  std::string image;
  std::string signed_ref;
  bool matches;
};

SignedIdentity Of(IdentityType t) { return SignedIdentity{.type = t}; }
SignedIdentity ExactReference(std::string r) {
  return SignedIdentity{.type = IdentityType::kExactReference, .docker_reference = std::move(r)};
}
SignedIdentity ExactRepository(std::string r) {
  return SignedIdentity{.type = IdentityType::kExactRepository, .docker_repository = std::move(r)};
}
SignedIdentity Remap(std::string prefix, std::string signed_prefix) {
  return SignedIdentity{.type = IdentityType::kRemapIdentity,
                        .prefix = std::move(prefix),
                        .signed_prefix = std::move(signed_prefix)};
}

TEST(IdentityMatches, Table) {
  const auto exact = Of(IdentityType::kMatchExact);
  const auto digest_or_exact = Of(IdentityType::kMatchRepoDigestOrExact);
  const auto repository = Of(IdentityType::kMatchRepository);
  const Case cases[] = {
      // matchExact: the same reference, tag included, after normalisation.
      {"exact same tag", exact, "busybox:1.36", "docker.io/library/busybox:1.36", true},
      {"exact short signed form", exact, "docker.io/library/busybox:1.36", "busybox:1.36", true},
      {"exact other tag", exact, "busybox:1.36", "busybox:1.35", false},
      {"exact signed name only", exact, "busybox:latest", "busybox", false},
      {"exact image by digest, signed tag", exact, "busybox@" + kDigest, "busybox:1.36", false},
      {"exact same digest", exact, "busybox@" + kDigest, "busybox@" + kDigest, true},
      {"exact other repository", exact, "busybox:1", "docker.io/library/alpine:1", false},
      {"exact unparsable signed", exact, "busybox:1", "Not A Reference", false},
      // matchRepoDigestOrExact: tag → exact; digest only → same repository.
      {"rdoe tag exact", digest_or_exact, "quay.io/a/b:v1", "quay.io/a/b:v1", true},
      {"rdoe tag differs", digest_or_exact, "quay.io/a/b:v1", "quay.io/a/b:v2", false},
      {"rdoe digest any tag", digest_or_exact, "quay.io/a/b@" + kDigest, "quay.io/a/b:v2", true},
      {"rdoe digest signed digest", digest_or_exact, "quay.io/a/b@" + kDigest,
       "quay.io/a/b@" + kOtherDigest, true},
      {"rdoe digest other repo", digest_or_exact, "quay.io/a/b@" + kDigest, "quay.io/a/c:v1",
       false},
      {"rdoe digest signed name only", digest_or_exact, "quay.io/a/b@" + kDigest, "quay.io/a/b",
       false},
      {"rdoe tag and digest need both", digest_or_exact, "quay.io/a/b:v1@" + kDigest,
       "quay.io/a/b:v1", false},
      {"rdoe tag and digest exact", digest_or_exact, "quay.io/a/b:v1@" + kDigest,
       "quay.io/a/b:v1@" + kDigest, true},
      // matchRepository: the repository, whatever tag or digest.
      {"repo other tag", repository, "busybox:latest", "busybox:1.36", true},
      {"repo name only", repository, "busybox:latest", "docker.io/library/busybox", true},
      {"repo by digest", repository, "busybox@" + kDigest, "busybox:1", true},
      {"repo other repo", repository, "busybox:latest", "docker.io/other/busybox:latest", false},
      {"repo other host", repository, "busybox:latest", "quay.io/library/busybox:latest", false},
      // exactReference: the signature must claim the configured reference.
      {"exactReference same", ExactReference("docker.io/library/busybox:1.36"),
       "mirror.local/busybox:whatever", "busybox:1.36", true},
      {"exactReference other tag", ExactReference("docker.io/library/busybox:1.36"), "busybox:1.36",
       "busybox:1.35", false},
      {"exactReference signed name only", ExactReference("docker.io/library/busybox:latest"),
       "busybox:latest", "busybox", false},
      // exactRepository: the signature must be in the configured repository.
      {"exactRepository any tag", ExactRepository("docker.io/library/busybox"), "mirror.local/x:1",
       "busybox:9", true},
      {"exactRepository name only", ExactRepository("docker.io/library/busybox"),
       "mirror.local/x:1", "busybox", true},
      {"exactRepository other", ExactRepository("docker.io/library/busybox"), "busybox:1",
       "alpine:1", false},
      // remapIdentity (containers-policy.json(5)'s example): images under
      // the prefix are matched as if pulled from signedPrefix.
      {"remap namespace", Remap("private-mirror:5000/vendor-mirror", "vendor.example.com"),
       "private-mirror:5000/vendor-mirror/producta/image1:latest",
       "vendor.example.com/producta/image1:latest", true},
      {"remap keeps tag rule", Remap("private-mirror:5000/vendor-mirror", "vendor.example.com"),
       "private-mirror:5000/vendor-mirror/producta/image1:latest",
       "vendor.example.com/producta/image1:v2", false},
      {"remap digest any tag", Remap("private-mirror:5000/vendor-mirror", "vendor.example.com"),
       "private-mirror:5000/vendor-mirror/producta/image1@" + kDigest,
       "vendor.example.com/producta/image1:v2", true},
      {"remap unmapped signed name fails",
       Remap("private-mirror:5000/vendor-mirror", "vendor.example.com"),
       "private-mirror:5000/vendor-mirror/producta/image1:latest",
       "private-mirror:5000/vendor-mirror/producta/image1:latest", false},
      {"remap outside prefix unchanged",
       Remap("private-mirror:5000/vendor-mirror", "vendor.example.com"), "quay.io/a/b:1",
       "quay.io/a/b:1", true},
      {"remap prefix is a component boundary", Remap("example.com/a", "other.com/a"),
       "example.com/ab:1", "example.com/ab:1", true},
      {"remap prefix component not rewritten", Remap("example.com/a", "other.com/a"),
       "example.com/ab:1", "other.com/ab:1", false},
      {"remap whole repository", Remap("example.com/a", "other.com/b"), "example.com/a:1",
       "other.com/b:1", true},
      {"remap host only", Remap("mirror.local:5000", "docker.io"),
       "mirror.local:5000/library/busybox:1", "busybox:1", true},
      {"remap port must match exactly", Remap("mirror.local", "docker.io"),
       "mirror.local:5000/library/busybox:1", "busybox:1", false},
      // docker.io/busybox is not canonical (docker.io/library/busybox is);
      // containers/image's ParseNamed refuses it, so nothing matches.
      {"remap to non-canonical matches nothing", Remap("mirror.local", "docker.io"),
       "mirror.local/busybox:1", "docker.io/library/busybox:1", false},
  };
  for (const Case& c : cases) {
    auto image = registry::ImageRef::Parse(c.image);
    ASSERT_TRUE(image) << c.name << ": " << image.error().message;
    EXPECT_EQ(IdentityMatches(c.identity, *image, c.signed_ref), c.matches) << c.name;
  }
}

TEST(IdentityMatches, ParseNormalizedReferenceTellsNameOnlyApart) {
  struct {
    const char* text;
    const char* str;
    bool name_only;
  } cases[] = {
      {"busybox", "docker.io/library/busybox:latest", true},
      {"busybox:latest", "docker.io/library/busybox:latest", false},
      {"localhost:5000/latest", "localhost:5000/latest:latest", true},
      {"localhost:5000/x:5000", "localhost:5000/x:5000", false},
  };
  for (const auto& c : cases) {
    auto r = ParseNormalizedReference(c.text);
    ASSERT_TRUE(r) << c.text;
    EXPECT_EQ(r->ref.str(), c.str) << c.text;
    EXPECT_EQ(r->name_only, c.name_only) << c.text;
  }
  auto d = ParseNormalizedReference("busybox@" + kDigest);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->name_only);
  EXPECT_FALSE(ParseNormalizedReference("a//b"));
}

TEST(IdentityMatches, TypeNamesAreThePolicySpelling) {
  EXPECT_EQ(IdentityTypeName(IdentityType::kMatchRepoDigestOrExact), "matchRepoDigestOrExact");
  EXPECT_EQ(IdentityTypeName(IdentityType::kRemapIdentity), "remapIdentity");
}

}  // namespace
}  // namespace trust
