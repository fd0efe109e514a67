#pragma once
// signedIdentity of containers-policy.json(5): which docker-reference a
// signature may claim for the image being pulled.
//
// `image` is the reference the user asked for, normalised
// (registry::ImageRef: "busybox" is docker.io/library/busybox:latest); it
// may carry a tag, a digest or both. `signed_docker_reference` is the
// `critical.identity.docker-reference` string of a signature payload, read
// with Docker's normalisation ("busybox:1" means
// docker.io/library/busybox:1). The rules follow containers/image's
// signature/policy_reference_match.go:
//
//   matchExact             the signed reference equals the image's, tag and
//                          digest included; a signed name without a tag or
//                          digest never matches.
//   matchRepoDigestOrExact image with a tag: as matchExact; image by digest
//   (the default)          only: the signed reference names the same
//                          repository (any tag; the digest itself is
//                          checked against the manifest elsewhere). A
//                          signed name without a tag or digest never matches.
//   matchRepository        the same repository, whatever tag or digest.
//   exactReference         the signed reference equals `docker_reference`
//                          (both with a tag or digest), whatever the image.
//   exactRepository        the signed reference is in `docker_repository`.
//   remapIdentity          when the image's repository is `prefix` or under
//                          it ("prefix/…"), `prefix` is replaced by
//                          `signed_prefix` in the image reference, which
//                          must then be canonical (fully expanded) or
//                          nothing matches; then matchRepoDigestOrExact.
//                          An image outside `prefix` is matched unchanged.
// A signed reference that does not parse matches nothing.
//
// Pure functions; thread-safe.

#include <string>
#include <string_view>

#include "common/error.h"
#include "registry/reference.h"

namespace trust {

enum class IdentityType {
  kMatchRepoDigestOrExact,
  kMatchRepository,
  kMatchExact,
  kExactReference,
  kExactRepository,
  kRemapIdentity,
};

// The policy's spelling: "matchRepoDigestOrExact", "exactReference", …
[[nodiscard]] std::string_view IdentityTypeName(IdentityType type);

struct SignedIdentity {
  IdentityType type = IdentityType::kMatchRepoDigestOrExact;
  // exactReference: the normalised reference with its tag and/or digest
  // ("docker.io/library/busybox:1.36").
  std::string docker_reference{};
  // exactRepository: the normalised repository ("docker.io/library/busybox").
  std::string docker_repository{};
  // remapIdentity: a host[:port], namespace or repository in the fully
  // expanded form, without tag or digest ("private-mirror:5000/vendor").
  std::string prefix{};
  std::string signed_prefix{};

  friend bool operator==(const SignedIdentity&, const SignedIdentity&) = default;
};

// Whether a signature claiming `signed_docker_reference` satisfies
// `identity` for a pull of `image` (the table above).
[[nodiscard]] bool IdentityMatches(const SignedIdentity& identity, const registry::ImageRef& image,
                                   std::string_view signed_docker_reference);

// A docker reference as containers/image's ParseNormalizedNamed reads it,
// and whether it carried a tag or digest (ImageRef::Parse adds ":latest"
// to a bare name; policy identities must tell the two apart).
struct NormalizedReference {
  registry::ImageRef ref;
  bool name_only = false;
};
// Errors: InvalidArgument from ImageRef::Parse.
[[nodiscard]] common::Result<NormalizedReference> ParseNormalizedReference(std::string_view text);

}  // namespace trust
