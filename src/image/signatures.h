#pragma once
// Fetching the signatures of one image for the signature policy
// (trust/evaluate.h, docs/trust.md "Where gantry looks for signatures"):
// GPG simple-signing signatures from lookaside storage, and sigstore
// signatures attached to the image in its registry.
//
//   image::SignatureLocations where = image::LocateSignatures(registries_d, ref);
//   ASSIGN_OR_RETURN(trust::Signatures sigs,
//                    image::FetchSignatures(*src, top.digest, where, &cancel));
//   TRY(trust::Evaluate(policy, ref, top.digest, sigs, verifiers));
//
// Thread-safety: both functions are safe to call concurrently (each reads
// only its arguments and goes through the thread-safe RegistryClient).

#include <atomic>
#include <cstddef>
#include <optional>
#include <string>

#include "common/digest.h"
#include "common/error.h"
#include "registry/reference.h"
#include "registry/source.h"
#include "trust/evaluate.h"
#include "trust/registries_d.h"

namespace image {

// Where the signatures of one image are looked for.
struct SignatureLocations {
  // Base URL of lookaside storage (file://, http://, https://), nullopt: none.
  std::optional<std::string> lookaside{};
  // Read sigstore signatures attached in the registry (the `sha256-<hex>.sig` tag).
  bool sigstore_attachments = false;
};

// Limits on what FetchSignatures reads (see signatures.cc for why).
inline constexpr size_t kMaxSignatureSize = 4u << 20;  // one signature or payload
inline constexpr size_t kMaxSignatures = 128;          // of each kind, per image

// The lookaside used when registries.d configures none for the image:
// containers/image's file:///var/lib/containers/sigstore when `euid` is 0,
// else file://$HOME/.local/share/containers/sigstore (the path
// percent-encoded as a URL path); nullopt when not root and `home` is
// empty or not absolute.
[[nodiscard]] std::optional<std::string> DefaultLookaside(unsigned euid, const std::string& home);

// The tag of the sigstore attachment of `manifest_digest` in its
// repository (cosign's and containers/image's): "<algorithm>-<hex>.sig".
[[nodiscard]] std::string SigstoreAttachmentTag(const common::Digest& manifest_digest);

// registries.d's answer for `image` (RegistriesD::LookasideFor, UseSigstoreAttachments), with
// containers/image's default lookaside when none is configured: file:///var/lib/containers/sigstore
// when running as root, else file://$HOME/.local/share/containers/sigstore.
[[nodiscard]] SignatureLocations LocateSignatures(const trust::RegistriesD& config,
                                                  const registry::ImageRef& image);

// The signatures of the manifest `manifest_digest` of the image `src` reads (a registry source;
// any other source has none: empty result, nothing read).
//
// Lookaside (`where.lookaside`, containers/image's layout):
// trust::LookasideSignatureUrl(base, repository path, digest, i) for i =
// 0, 1, … until the first that does not exist (404 over http(s); ENOENT
// for file://, so a missing directory means no signatures). file:// URLs
// are read as local paths (percent-decoded; a query or fragment is
// ignored); http(s):// through RegistryClient::GetUrl (no credentials,
// retries). Each is one entry of Signatures::gpg, as read.
//
// Sigstore attachments (`where.sigstore_attachments`): the manifest
// tagged `<algorithm>-<hex>.sig` in the same repository, through the
// source's RegistryClient (mirrors, credentials, retries apply); none when
// it does not exist. Each layer of media type
// trust::kSigstorePayloadMediaType with a trust::kSigstoreSignatureAnnotation
// annotation is one entry of Signatures::sigstore: the blob, verified
// against the layer's sha256 digest and size, and the annotation. Other
// layers, and payload layers without the annotation, are skipped.
//
// Errors (one line naming the URL, the file or the tag): any failure other
// than "not there" — a lookaside server that is down, 403, 5xx after the
// retries, an unreadable file — is an error, never "no signatures" (the
// policy then rejects with that reason, as containers/image does):
//   ResourceExhausted a signature or payload over kMaxSignatureSize, more
//                     than kMaxSignatures of either kind
//   InvalidArgument   a lookaside URL that is not file://, http(s)://
//                     (or a file:// URL naming a host); an attachment that
//                     is not an OCI image manifest, or has a malformed layer
//   DataLoss          a payload whose bytes do not match its descriptor
//   Cancelled         `cancel` (may be null) was set
//   others            GetUrl's, GetManifest's and FetchBlob's, and those
//                     of reading a file (PermissionDenied, …)
[[nodiscard]] common::Result<trust::Signatures> FetchSignatures(
    registry::ImageSource& src, const common::Digest& manifest_digest,
    const SignatureLocations& where, const std::atomic<bool>* cancel);

}  // namespace image
