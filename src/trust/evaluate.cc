#include "trust/evaluate.h"

#include <functional>

#include "trust/config_internal.h"
#include "trust/gpg_verify.h"
#include "trust/identity.h"
#include "trust/keys.h"

namespace trust {

namespace {

// Why `claim` does not fit the image, or "" when it does. The digest is
// checked first, as containers/image does.
std::string ClaimProblem(const SignedClaim& claim, const Requirement& requirement,
                         const registry::PolicyIdentity& image,
                         const common::Digest& manifest_digest) {
  if (claim.manifest_digest != manifest_digest) {
    return "signed for manifest " + claim.manifest_digest.str() + ", not " + manifest_digest.str();
  }
  if (!image.reference)
    return "the image has no docker reference to match the signed identity " +
           internal::Quoted(claim.docker_reference) + " against";
  if (!IdentityMatches(requirement.signed_identity, *image.reference, claim.docker_reference)) {
    return "signed identity " + internal::Quoted(claim.docker_reference) +
           " does not match under signedIdentity " +
           std::string(IdentityTypeName(requirement.signed_identity.type));
  }
  return {};
}

// Verifies one signature: its claim, or why it is refused.
using VerifyOne = std::function<common::Result<SignedClaim>(size_t index)>;

// Whether one of `count` signatures is acceptable: "" when one is, else
// why none is. With `each`, every signature is checked and its own verdict
// ("" or why not) appended there; without, the first acceptable one ends
// the search.
std::string NoneAccepted(size_t count, const VerifyOne& verify, const Requirement& requirement,
                         const registry::PolicyIdentity& image,
                         const common::Digest& manifest_digest, std::vector<std::string>* each) {
  if (count == 0) return "no signature (a signature is required)";
  std::vector<std::string> reasons;
  bool accepted = false;
  for (size_t i = 0; i < count; ++i) {
    auto claim = verify(i);
    std::string problem =
        claim ? ClaimProblem(*claim, requirement, image, manifest_digest) : claim.error().message;
    if (each != nullptr) each->push_back(problem);
    if (problem.empty()) {
      accepted = true;
      if (each == nullptr) break;
      continue;
    }
    reasons.push_back("signature " + std::to_string(i + 1) + ": " + problem);
  }
  if (accepted) return {};
  if (reasons.size() == 1) return reasons.front();
  std::string all = "none of " + std::to_string(count) + " signatures is accepted: ";
  for (size_t i = 0; i < reasons.size(); ++i) all += (i > 0 ? "; " : "") + reasons[i];
  return all;
}

// Why `requirement` is not satisfied, or "" when it is; `each` as for
// NoneAccepted.
std::string RequirementProblem(const Requirement& requirement,
                               const registry::PolicyIdentity& image,
                               const common::Digest& manifest_digest, const Signatures& found,
                               std::vector<std::string>* each) {
  if (!requirement.unsupported.empty()) return requirement.unsupported;
  switch (requirement.type) {
    case RequirementType::kInsecureAcceptAnything:
      return {};
    case RequirementType::kReject:
      return "the policy rejects every image here";
    case RequirementType::kSignedBy:
    case RequirementType::kSigstoreSigned:
      break;
  }
  bool gpg = requirement.type == RequirementType::kSignedBy;
  size_t count = gpg ? found.gpg.size() : found.sigstore.size();
  if (count == 0) return NoneAccepted(0, {}, requirement, image, manifest_digest, each);
  auto keys = LoadRequirementKeys(requirement);
  if (!keys) return keys.error().message;
  if (gpg) {
    auto verifier = GpgVerifier::Create(*keys);
    if (!verifier) return verifier.error().message;
    VerifyOne verify = [&](size_t i) -> common::Result<SignedClaim> {
      ASSIGN_OR_RETURN(GpgVerified v, verifier->Verify(found.gpg[i]));
      return std::move(v.claim);
    };
    return NoneAccepted(count, verify, requirement, image, manifest_digest, each);
  }
  auto verifier = SigstoreVerifier::Create(*keys);
  if (!verifier) return verifier.error().message;
  VerifyOne verify = [&](size_t i) { return verifier->Verify(found.sigstore[i]); };
  return NoneAccepted(count, verify, requirement, image, manifest_digest, each);
}

std::string RefusalText(std::string_view shown, const ScopeMatch& match, size_t index,
                        const Requirement& requirement, const std::string& problem) {
  return internal::OneLine("policy rejects `" + std::string(shown) + "`: scope " +
                           ScopeName(match) + ", requirement " + std::to_string(index + 1) + " (" +
                           std::string(RequirementTypeName(requirement.type)) + "): " + problem);
}

}  // namespace

bool NeedsSignatures(const Requirements& requirements) {
  bool signed_kind = false;
  for (const Requirement& r : requirements) {
    if (r.type == RequirementType::kReject || !r.unsupported.empty()) return false;
    signed_kind = signed_kind || r.type == RequirementType::kSignedBy ||
                  r.type == RequirementType::kSigstoreSigned;
  }
  return signed_kind;
}

common::Status Evaluate(const Policy& policy, const registry::PolicyIdentity& image,
                        std::string_view shown, const common::Digest& manifest_digest,
                        const Signatures& found) {
  ScopeMatch match = policy.MatchScope(image);
  const Requirements& requirements = *match.requirements;
  for (size_t i = 0; i < requirements.size(); ++i) {
    std::string problem =
        RequirementProblem(requirements[i], image, manifest_digest, found, nullptr);
    if (problem.empty()) continue;
    return common::MakeError(common::Errc::kPermissionDenied,
                             RefusalText(shown, match, i, requirements[i], problem));
  }
  return {};
}

common::Status Evaluate(const Policy& policy, const registry::ImageRef& image,
                        const common::Digest& manifest_digest, const Signatures& found) {
  return Evaluate(policy, {.transport = std::string(kDockerTransport), .reference = image},
                  image.str(), manifest_digest, found);
}

Decision Explain(const Policy& policy, const registry::PolicyIdentity& image,
                 std::string_view shown, const common::Digest& manifest_digest,
                 const Signatures& found) {
  Decision d{.match = policy.MatchScope(image)};
  const Requirements& requirements = *d.match.requirements;
  for (size_t i = 0; i < requirements.size(); ++i) {
    RequirementVerdict v{.type = requirements[i].type};
    v.problem = RequirementProblem(requirements[i], image, manifest_digest, found, &v.signatures);
    if (!v.problem.empty() && d.refusal.empty())
      d.refusal = RefusalText(shown, d.match, i, requirements[i], v.problem);
    d.requirements.push_back(std::move(v));
  }
  return d;
}

}  // namespace trust
