#pragma once
// The payload of a containers signature: the JSON document that a GPG
// "simple signing" signature (skopeo --sign-by, standalone-sign) or a
// sigstore signature (skopeo --sign-by-sigstore-private-key, cosign) signs.
//
//   {"critical": {"identity": {"docker-reference": "registry.example.com/app:1"},
//                 "image": {"docker-manifest-digest": "sha256:…"},
//                 "type": "atomic container signature"},
//    "optional": {"creator": "…", "timestamp": 1700000000}}
//
// Read as strictly as containers/image reads it (signature/simple.go and
// signature/internal/sigstore_payload.go):
//   - the top level has exactly `critical` and `optional`; `critical` has
//     exactly `type`, `image` and `identity`; `image` exactly
//     `docker-manifest-digest`; `identity` exactly `docker-reference`.
//     A missing, unknown or repeated key is an error;
//   - `type` is "atomic container signature" for GPG signatures and
//     "cosign container image signature" for sigstore ones;
//   - `optional` is an object whose `creator`, when present, is a string
//     and whose `timestamp` is an integer; its other keys are ignored.
//     A sigstore payload may have `"optional": null` (cosign writes it);
//   - the digest is a valid sha256 or sha512 digest.
// Nothing in the payload is trusted before its signature is verified;
// callers parse it only after that.
//
// Pure functions; thread-safe.

#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/error.h"

namespace trust {

enum class PayloadType {
  kSimpleSigning,  // "atomic container signature" (GPG)
  kSigstore,       // "cosign container image signature"
};

// The value of critical.type for `type`.
[[nodiscard]] std::string_view PayloadTypeName(PayloadType type);

// What a signature claims.
struct SignedClaim {
  // critical.identity.docker-reference, as written (not normalised).
  std::string docker_reference;
  // critical.image.docker-manifest-digest.
  common::Digest manifest_digest;
};

// Parses a payload of `type`. Errors: DataLoss, one line saying what is
// wrong and where ("invalid signature payload: at $.critical: unknown key
// \"extra\"").
[[nodiscard]] common::Result<SignedClaim> ParseSignedPayload(std::string_view json,
                                                             PayloadType type);

}  // namespace trust
