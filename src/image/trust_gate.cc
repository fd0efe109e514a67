#include "image/trust_gate.h"

#include <system_error>

#include "common/log.h"
#include "image/signatures.h"
#include "registry/platform_manifest.h"

namespace image {

namespace {

using common::Errc;

// Where `src`'s signatures are: only registry images have any.
std::optional<SignatureLocations> LocationsOf(const TrustPolicy& trust,
                                              const registry::PolicyIdentity& id) {
  if (id.transport != trust::kDockerTransport || !id.reference) return std::nullopt;
  return LocateSignatures(trust.registries, *id.reference);
}

// The refusal when signatures the policy needs could not be read.
std::string UnreadableRefusal(const std::string& shown, const trust::ScopeMatch& match,
                              const std::string& why) {
  return "policy rejects `" + shown + "`: scope " + trust::ScopeName(match) +
         ": its signatures could not be read: " + why;
}

}  // namespace

common::Result<std::shared_ptr<const TrustPolicy>> LoadTrustPolicy(const TrustFiles& files) {
  auto out = std::make_shared<TrustPolicy>();
  std::error_code ec;
  bool present = std::filesystem::exists(files.policy, ec);
  if (present || files.policy_required) {
    ASSIGN_OR_RETURN(out->policy,
                     common::Wrap(trust::LoadPolicy(files.policy), "signature policy"));
    out->policy_file = files.policy.string();
  } else {
    LOG(Debug) << "no signature policy, every image is accepted"
               << common::Kv("policy", files.policy.string());
  }
  ASSIGN_OR_RETURN(out->registries, trust::LoadRegistriesD(files.registries_d));
  return std::shared_ptr<const TrustPolicy>(std::move(out));
}

common::Status CheckTrust(const TrustPolicy& trust, registry::ImageSource& src,
                          const common::Digest& manifest_digest, const std::atomic<bool>* cancel) {
  if (!trust.policy) return {};
  const registry::PolicyIdentity id = src.Identity();
  const trust::ScopeMatch match = trust.policy->MatchScope(id);
  trust::Signatures found;
  if (trust::NeedsSignatures(*match.requirements)) {
    if (auto where = LocationsOf(trust, id)) {
      auto fetched = FetchSignatures(src, manifest_digest, *where, cancel);
      if (!fetched) {
        if (fetched.error().code == Errc::kCancelled) return std::unexpected(fetched.error());
        // The policy cannot be satisfied without them: the image is
        // refused, with the fetch's reason.
        return common::MakeError(Errc::kPermissionDenied,
                                 UnreadableRefusal(src.Describe(), match, fetched.error().message));
      }
      found = std::move(*fetched);
    }
  }
  return trust::Evaluate(*trust.policy, id, src.Describe(), manifest_digest, found);
}

common::Result<common::Digest> PolicyManifest(registry::ImageSource& src,
                                              const oci::Platform& platform,
                                              const std::atomic<bool>* cancel) {
  ASSIGN_OR_RETURN(registry::FetchedManifest top, src.ResolveTop(cancel));
  ASSIGN_OR_RETURN(std::optional<oci::IndexEntry> entry,
                   registry::SelectPlatformEntry(src, top, platform));
  return entry ? entry->descriptor.digest : top.digest;
}

common::Status CheckUnsignedSource(const TrustPolicy& trust, registry::ImageSource& src) {
  if (src.Identity().transport == trust::kDockerTransport)
    return common::MakeError(Errc::kFailedPrecondition,
                             "`" + src.Describe() + "` has signatures: check it with its manifest");
  // No signature is looked for, so the digest is not used.
  return CheckTrust(trust, src, common::Digest(), nullptr);
}

common::Result<SignatureReport> InspectSignatures(const TrustPolicy& trust,
                                                  registry::ImageSource& src,
                                                  const common::Digest& manifest,
                                                  const std::atomic<bool>* cancel) {
  SignatureReport report{
      .image = src.Describe(), .manifest = manifest, .policy_file = trust.policy_file};
  const registry::PolicyIdentity id = src.Identity();
  if (auto where = LocationsOf(trust, id)) {
    auto fetched = FetchSignatures(src, manifest, *where, cancel);
    if (fetched) {
      report.found = std::move(*fetched);
    } else if (fetched.error().code == Errc::kCancelled) {
      return std::unexpected(fetched.error());
    } else {
      report.fetch_error = fetched.error().message;
    }
    const std::string repo = id.reference->path();
    if (where->lookaside) {
      for (size_t i = 0; i < report.found.gpg.size(); ++i)
        report.gpg_sources.push_back(
            trust::LookasideSignatureUrl(*where->lookaside, repo, manifest, i));
    }
    const std::string tag = id.reference->name() + ":" + SigstoreAttachmentTag(manifest);
    for (size_t i = 0; i < report.found.sigstore.size(); ++i)
      report.sigstore_sources.push_back(tag + " signature " + std::to_string(i + 1));
  }
  if (trust.policy)
    report.decision = trust::Explain(*trust.policy, id, src.Describe(), manifest, report.found);
  if (!report.fetch_error.empty() && report.decision.refusal.empty() && trust.policy &&
      trust::NeedsSignatures(*report.decision.match.requirements))
    report.decision.refusal =
        UnreadableRefusal(src.Describe(), report.decision.match, report.fetch_error);
  return report;
}

}  // namespace image
