#pragma once
// Verification of GPG "simple signing" signatures: the binary OpenPGP
// message (the JSON payload of trust/simple_signing.h, signed and
// embedded) that skopeo --sign-by and skopeo standalone-sign write, and
// that lookaside storage serves as `signature-N`.
//
//   ASSIGN_OR_RETURN(auto keys, trust::LoadRequirementKeys(requirement));
//   ASSIGN_OR_RETURN(trust::GpgVerifier verifier, trust::GpgVerifier::Create(keys));
//   auto verified = verifier.Verify(signature_bytes);  // payload, fingerprint
//
// libgpgme runs gpg in a private home: a directory created 0700 under
// $TMPDIR for each verifier and removed with it, holding only the keys
// given to Create. The user's keyring and gpg.conf are never read or
// changed. The home's gpg.conf says `no-autostart` and the context is
// offline, so neither gpg-agent nor dirmngr is started (verification and
// public-key import need neither), nothing is fetched from a key server,
// and no process outlives a call.
//
// A signature is accepted as containers/image's gpgme mechanism accepts
// it: exactly one signature, made by a key imported here (or one of its
// subkeys), valid (not bad, not by an
// expired or revoked key, not with a key not meant for signing).
//
// Thread-compatible: one verifier is used by one thread at a time;
// separate verifiers may be used concurrently.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "trust/keys.h"
#include "trust/simple_signing.h"

namespace trust {

struct GpgVerified {
  SignedClaim claim;        // the parsed payload
  std::string payload;      // the signed bytes, as signed
  std::string fingerprint;  // of the signing (primary) key, upper-case hex
};

// The largest signature Verify reads (skopeo's are 300 to 900 bytes).
inline constexpr size_t kMaxGpgSignatureSize = 4096;

class GpgVerifier {
 public:
  // Creates the private home and imports every key of `keys` (armored or
  // binary keyrings; several keys per blob are fine).
  // Errors: InvalidArgument naming the blob's source when it holds no
  // OpenPGP public key ("import key `/etc/pki/a.gpg`: no OpenPGP public
  // key in it"); Unavailable when gpg cannot be run; others from creating
  // the home directory.
  [[nodiscard]] static common::Result<GpgVerifier> Create(const std::vector<PublicKeyBlob>& keys);

  GpgVerifier(GpgVerifier&&) noexcept;
  GpgVerifier& operator=(GpgVerifier&&) noexcept;
  GpgVerifier(const GpgVerifier&) = delete;
  GpgVerifier& operator=(const GpgVerifier&) = delete;
  // Releases the gpgme context, then removes the home.
  ~GpgVerifier();

  // The fingerprints of the imported keys.
  [[nodiscard]] const std::vector<std::string>& fingerprints() const;

  // Verifies `signature` and parses its payload (PayloadType::kSimpleSigning).
  // Errors, one line each:
  //   DataLoss: larger than kMaxGpgSignatureSize, not an OpenPGP signed
  //     message, a bad (altered) signature,
  //     or a payload that does not parse (ParseSignedPayload);
  //   PermissionDenied: signed by a key not among the imported ones, by an
  //     expired or revoked key, or otherwise not valid ("signed by key
  //     1234…ABCD, which is not a trusted key").
  [[nodiscard]] common::Result<GpgVerified> Verify(std::string_view signature) const;

 private:
  struct State;
  explicit GpgVerifier(std::unique_ptr<State> state);
  [[nodiscard]] static common::Status ListSubkeys(State& state);
  std::unique_ptr<State> state_;
};

}  // namespace trust
