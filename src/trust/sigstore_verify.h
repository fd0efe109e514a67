#pragma once
// Verification of sigstore signatures made with a key pair (skopeo
// --sign-by-sigstore-private-key, cosign sign --key), against the PEM
// public keys of a sigstoreSigned requirement.
//
// Where such a signature lives (containers/image's sigstore attachments,
// cosign's layout): the registry holds, next to the image, an OCI image
// manifest tagged `sha256-<hex of the image's manifest digest>.sig`; each
// of its layers is one signature: the layer's blob is the payload
// (media type application/vnd.dev.cosign.simplesigning.v1+json, the JSON
// of trust/simple_signing.h with type "cosign container image
// signature"), and the layer's annotation
// `dev.cosignproject.cosign/signature` is the base64 of the signature of
// those bytes. Fetching them is the caller's job; this verifies one
// (payload, annotation) pair.
//
// The signature is over the payload's bytes as stored: ECDSA (ASN.1 DER)
// with SHA-256 whatever the curve (P-256, P-384, …), as sigstore fixes the
// hash; Ed25519 (pure, over the bytes); RSA PKCS #1 v1.5 with SHA-256.
// Certificates (Fulcio), bundles and transparency-log entries are not
// checked (a requirement using them is unsupported, trust/policy.h).
//
// Thread-safe after construction: Verify may be called concurrently.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "trust/keys.h"
#include "trust/simple_signing.h"

namespace trust {

inline constexpr std::string_view kSigstorePayloadMediaType =
    "application/vnd.dev.cosign.simplesigning.v1+json";
inline constexpr std::string_view kSigstoreSignatureAnnotation =
    "dev.cosignproject.cosign/signature";

// One signature found in a `.sig` attachment.
struct SigstoreSignature {
  std::string payload;           // the layer's bytes
  std::string base64_signature;  // its dev.cosignproject.cosign/signature
};

class SigstoreVerifier {
 public:
  // Parses every blob as a PEM public key ("-----BEGIN PUBLIC KEY-----",
  // SubjectPublicKeyInfo): ECDSA, Ed25519 or RSA.
  // Errors: InvalidArgument naming the blob's source when it is not such a
  // key ("parse key `/etc/pki/cosign.pub`: not a PEM public key").
  [[nodiscard]] static common::Result<SigstoreVerifier> Create(
      const std::vector<PublicKeyBlob>& keys);

  SigstoreVerifier(SigstoreVerifier&&) noexcept;
  SigstoreVerifier& operator=(SigstoreVerifier&&) noexcept;
  SigstoreVerifier(const SigstoreVerifier&) = delete;
  SigstoreVerifier& operator=(const SigstoreVerifier&) = delete;
  ~SigstoreVerifier();

  // Accepts `signature` when one of the keys verifies it, then parses the
  // payload (PayloadType::kSigstore). Errors, one line each:
  //   DataLoss: the annotation is not base64, or the payload does not
  //     parse (ParseSignedPayload);
  //   PermissionDenied: no key verifies the signature (made by another
  //     key, or the signature or payload was altered: sigstore signatures
  //     carry no key ID to tell these apart).
  [[nodiscard]] common::Result<SignedClaim> Verify(const SigstoreSignature& signature) const;

 private:
  struct Keys;
  explicit SigstoreVerifier(std::unique_ptr<Keys> keys);
  std::unique_ptr<Keys> keys_;
};

}  // namespace trust
