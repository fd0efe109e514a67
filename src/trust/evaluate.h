#pragma once
// The policy's decision for one image: whether the signatures found for it
// satisfy every requirement that applies (containers/image's
// signature/policy_eval*.go).
//
//   trust::Signatures found{.gpg = {lookaside_signature_1},
//                           .sigstore = {{payload, base64_signature}}};
//   common::Status ok = trust::Evaluate(policy, image, manifest_digest, found);
//
// The requirements are Policy::RequirementsFor(image); each must be
// satisfied, checked in order, the first failure deciding:
//   insecureAcceptAnything  satisfied;
//   reject                  never satisfied;
//   signedBy                one of found.gpg verifies with the
//                           requirement's keys (trust/gpg_verify.h), and
//                           its payload names `manifest_digest` and a
//                           docker-reference that signedIdentity accepts
//                           for `image` (trust/identity.h);
//   sigstoreSigned          the same with found.sigstore and the PEM keys
//                           (trust/sigstore_verify.h);
//   unsupported (Requirement::unsupported) never satisfied.
// One acceptable signature satisfies a signedBy or sigstoreSigned
// requirement, whatever the others are. Key files are read, and a private
// GPG home made, for each signedBy requirement at each call.
//
// Thread-safe: no state is kept between calls.

#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "registry/reference.h"
#include "trust/policy.h"
#include "trust/sigstore_verify.h"

namespace trust {

// The signatures found for one image (fetching them is the caller's).
struct Signatures {
  // GPG simple-signing signatures: lookaside `signature-N` files, as read.
  std::vector<std::string> gpg{};
  // Sigstore signatures: the layers of the image's `.sig` attachment.
  std::vector<SigstoreSignature> sigstore{};
};

// Accepts `image`, whose manifest has `manifest_digest`, or refuses it.
// A refusal is PermissionDenied with one line saying which requirement of
// which scope failed, and why:
//   "policy rejects `docker.io/library/busybox:1.36`: scope
//    transports.docker[\"docker.io\"], requirement 1 (signedBy): no
//    signature (a signature is required)"
// and for a signature that is not accepted, why not: made by another key,
// corrupt, for another digest ("signed for manifest sha256:…, not
// sha256:…"), an identity mismatch ("signed identity `…` does not match
// under signedIdentity matchExact"), or an unusable key file.
[[nodiscard]] common::Status Evaluate(const Policy& policy, const registry::ImageRef& image,
                                      const common::Digest& manifest_digest,
                                      const Signatures& found);

// The same for an image of any source (registry::ImageSource::Identity):
// its scope is looked up by its transport (Policy::MatchScope), and
// `shown` names it in the message ("oci:/srv/app:v1"). A signature's
// identity can only match an image with a docker reference; local sources
// have no signatures (found is empty for them).
[[nodiscard]] common::Status Evaluate(const Policy& policy, const registry::PolicyIdentity& image,
                                      std::string_view shown, const common::Digest& manifest_digest,
                                      const Signatures& found);

// Whether deciding on an image under `requirements` needs its signatures:
// some requirement is signedBy or sigstoreSigned, and none is decided
// without them (a reject, or an unsupported requirement, refuses the image
// whatever is found). Signatures are fetched only then.
[[nodiscard]] bool NeedsSignatures(const Requirements& requirements);

// Every requirement's verdict, for `gantry inspect --signatures`.
struct RequirementVerdict {
  RequirementType type = RequirementType::kReject;
  std::string problem{};  // "" when satisfied, else why not (as Evaluate says it)
  // signedBy: one verdict per found.gpg signature, sigstoreSigned: per
  // found.sigstore signature, in their order: "" when that signature
  // satisfies the requirement, else why not. Empty for the other types,
  // an unsupported requirement or an unusable key.
  std::vector<std::string> signatures{};
};

struct Decision {
  ScopeMatch match{};
  std::vector<RequirementVerdict> requirements{};  // all of them, in order
  std::string refusal{};  // Evaluate's message when refused; "" when accepted
};

// Evaluate, checking every requirement and every signature instead of
// stopping at the first answer.
[[nodiscard]] Decision Explain(const Policy& policy, const registry::PolicyIdentity& image,
                               std::string_view shown, const common::Digest& manifest_digest,
                               const Signatures& found);

}  // namespace trust
