#include "trust/identity.h"

namespace trust {
namespace {

// containers/image's matchRepoDigestOrExactReferenceValues.
bool RepoDigestOrExact(const registry::ImageRef& image, const NormalizedReference& signed_ref) {
  if (signed_ref.name_only) return false;
  // An image with a tag (with or without a digest) needs the exact
  // reference; one by digest only needs the repository, because the
  // digest is checked against the manifest before any signature is.
  if (image.tag()) return signed_ref.ref.str() == image.str();
  return signed_ref.ref.name() == image.name();
}

bool UnderPrefix(std::string_view name, std::string_view prefix) {
  // Only '/' separates components of a name; a ':' in the prefix belongs
  // to a port and must match exactly.
  return name == prefix || (name.starts_with(prefix) && name[prefix.size()] == '/');
}

}  // namespace

std::string_view IdentityTypeName(IdentityType type) {
  switch (type) {
    case IdentityType::kMatchRepoDigestOrExact:
      return "matchRepoDigestOrExact";
    case IdentityType::kMatchRepository:
      return "matchRepository";
    case IdentityType::kMatchExact:
      return "matchExact";
    case IdentityType::kExactReference:
      return "exactReference";
    case IdentityType::kExactRepository:
      return "exactRepository";
    case IdentityType::kRemapIdentity:
      return "remapIdentity";
  }
  return "unknown";
}

common::Result<NormalizedReference> ParseNormalizedReference(std::string_view text) {
  auto ref = registry::ImageRef::Parse(text);
  if (!ref) return std::unexpected(std::move(ref.error()));
  // Parse adds ":latest" when there is neither tag nor digest; the text
  // had a tag only when it ends with it.
  bool name_only = !ref->digest() && !text.ends_with(":" + ref->tag().value_or(""));
  return NormalizedReference{.ref = std::move(*ref), .name_only = name_only};
}

bool IdentityMatches(const SignedIdentity& identity, const registry::ImageRef& image,
                     std::string_view signed_docker_reference) {
  auto signed_ref = ParseNormalizedReference(signed_docker_reference);
  if (!signed_ref) return false;
  switch (identity.type) {
    case IdentityType::kMatchExact:
      return !signed_ref->name_only && signed_ref->ref.str() == image.str();
    case IdentityType::kMatchRepoDigestOrExact:
      return RepoDigestOrExact(image, *signed_ref);
    case IdentityType::kMatchRepository:
      return signed_ref->ref.name() == image.name();
    case IdentityType::kExactReference:
      return !signed_ref->name_only && signed_ref->ref.str() == identity.docker_reference;
    case IdentityType::kExactRepository:
      return signed_ref->ref.name() == identity.docker_repository;
    case IdentityType::kRemapIdentity: {
      if (!UnderPrefix(image.name(), identity.prefix)) return RepoDigestOrExact(image, *signed_ref);
      std::string remapped = identity.signed_prefix + image.str().substr(identity.prefix.size());
      // containers/image reparses without normalisation (reference.ParseNamed):
      // a rewrite that is not canonical ("docker.io/busybox") matches nothing.
      auto parsed = registry::ImageRef::Parse(remapped);
      if (!parsed || parsed->str() != remapped) return false;
      return RepoDigestOrExact(*parsed, *signed_ref);
    }
  }
  return false;
}

}  // namespace trust
