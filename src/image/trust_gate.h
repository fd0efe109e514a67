#pragma once
// The signature policy on every pull: the gate image::Fetch passes each
// image through after its manifest is fetched and before any other blob is
// requested (FetchOptions::trust), and what `gantry inspect --signatures`
// shows.
//
//   ASSIGN_OR_RETURN(auto trust, image::LoadTrustPolicy({
//       .policy = "/etc/containers/policy.json", .registries_d = "/etc/containers/registries.d"}));
//   opts.trust = trust;   // PullImageOptions or FetchOptions; null accepts anything
//
// The decision is containers/image's (CRI-O, podman, skopeo): the image's
// scope in the policy (trust/policy.h, by the source's transport:
// registry::ImageSource::Identity), every requirement of it satisfied
// (trust/evaluate.h). Signatures are fetched (image/signatures.h: the
// lookaside storage registries.d names, sigstore attachments) only when a
// requirement needs them and none refuses without them. For an image
// pulled through an index, the manifest decided on is the platform's, as
// skopeo and podman decide on the instance they copy.
//
// Thread-safety: a TrustPolicy is immutable once loaded; CheckTrust and
// InspectSignatures may run concurrently.

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "oci/manifest.h"
#include "registry/source.h"
#include "trust/evaluate.h"
#include "trust/policy.h"
#include "trust/registries_d.h"

namespace image {

inline constexpr std::string_view kDefaultPolicyPath = "/etc/containers/policy.json";
inline constexpr std::string_view kDefaultRegistriesD = "/etc/containers/registries.d";

// The policy and where signatures are, as loaded.
struct TrustPolicy {
  // nullopt when the (default) policy file is absent: every image is
  // accepted, as with no gate.
  std::optional<trust::Policy> policy{};
  trust::RegistriesD registries{};
  std::string policy_file{};  // for messages and `inspect --signatures`
};

struct TrustFiles {
  std::filesystem::path policy{kDefaultPolicyPath};
  // false (the default file, not named by the user): a missing file means
  // no policy, and LoadTrustPolicy gives null; true: it must exist.
  bool policy_required = false;
  std::filesystem::path registries_d{kDefaultRegistriesD};  // a missing directory is empty
};

// Loads both (never null). A policy file that is absent and not required
// leaves TrustPolicy::policy empty (logged at debug level). Errors, one line naming the file: a
// policy or registries.d file that does not parse (InvalidArgument), a required policy that is
// missing (NotFound), unreadable files.
[[nodiscard]] common::Result<std::shared_ptr<const TrustPolicy>> LoadTrustPolicy(
    const TrustFiles& files);

// Accepts the image `src` reads (every image when trust.policy is empty), whose manifest (the
// platform's, for an index) is `manifest_digest`, or refuses it: PermissionDenied, one line
// (trust::Evaluate's: "policy rejects `…`: scope …, requirement N (…): …").
// Signatures that cannot be fetched (a lookaside server down after the
// client's retries and rate floor, a malformed attachment) refuse the
// image too, with the fetch's reason as the requirement's problem.
// Cancelled when `cancel` is set while signatures are fetched.
[[nodiscard]] common::Status CheckTrust(const TrustPolicy& trust, registry::ImageSource& src,
                                        const common::Digest& manifest_digest,
                                        const std::atomic<bool>* cancel);

// The decision for a source that has no signatures (a layout or an
// archive: anything but a registry): it does not depend on the manifest,
// so it can be made before anything is read or stored (image::LoadStream
// decides so before it stores an archive read from a pipe). Errors: as
// CheckTrust; FailedPrecondition for a registry source.
[[nodiscard]] common::Status CheckUnsignedSource(const TrustPolicy& trust,
                                                 registry::ImageSource& src);

// The manifest the policy decides on for `src`: the one the reference
// names, or the `platform` one of an index (the manifest a pull fetches).
// Errors: the source's; NotFound when the index has no such platform.
[[nodiscard]] common::Result<common::Digest> PolicyManifest(registry::ImageSource& src,
                                                            const oci::Platform& platform,
                                                            const std::atomic<bool>* cancel);

// What `gantry inspect --signatures` reports.
struct SignatureReport {
  std::string image{};  // src.Describe()
  common::Digest manifest{};
  std::string policy_file{};  // "" when no policy file is in force
  // Every requirement and signature judged; no requirements (accepted)
  // when no policy is in force.
  trust::Decision decision{};
  trust::Signatures found{};
  // Where each signature came from, in found's order: a lookaside URL,
  // or the attachment ("<repo>:sha256-<hex>.sig signature N").
  std::vector<std::string> gpg_sources{};
  std::vector<std::string> sigstore_sources{};
  // Why signatures could not be fetched, "" when they were (or were not
  // looked for).
  std::string fetch_error{};
};

// Fetches every signature the locations of `src`'s image hold (whether
// the policy needs them or not) and judges each against every requirement
// of the image's scope. Errors: Cancelled only; a fetch failure is
// reported in fetch_error.
[[nodiscard]] common::Result<SignatureReport> InspectSignatures(const TrustPolicy& trust,
                                                                registry::ImageSource& src,
                                                                const common::Digest& manifest,
                                                                const std::atomic<bool>* cancel);

}  // namespace image
