#include "trust/sigstore_verify.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <utility>

#include "trust/config_internal.h"

namespace trust {

// Parsed keys; named (not anonymous) because SigstoreVerifier::Keys holds
// them.
namespace sigstore_keys {

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using Bio = std::unique_ptr<BIO, BioDeleter>;

struct VerifyCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using VerifyCtx = std::unique_ptr<EVP_MD_CTX, VerifyCtxDeleter>;

struct SigstoreKey {
  std::string source;
  Pkey key;
  const EVP_MD* md = nullptr;  // nullptr for Ed25519, which hashes itself
};

}  // namespace sigstore_keys

namespace {

using sigstore_keys::Bio;
using sigstore_keys::Pkey;
using sigstore_keys::SigstoreKey;
using sigstore_keys::VerifyCtx;

common::Result<SigstoreKey> ParsePemPublicKey(const PublicKeyBlob& blob) {
  std::string what = "parse key `" + blob.source + "`";
  Bio bio(BIO_new_mem_buf(blob.bytes.data(), static_cast<int>(blob.bytes.size())));
  if (!bio) return common::MakeError(common::Errc::kResourceExhausted, what + ": out of memory");
  Pkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  // OpenSSL queues the reasons of a failure per thread; drop them so that
  // a later, unrelated OpenSSL call (TLS in curl) does not report them.
  ERR_clear_error();
  if (!key) {
    return common::MakeError(common::Errc::kInvalidArgument,
                             internal::OneLine(what + ": not a PEM public key"));
  }
  SigstoreKey out{.source = blob.source, .key = std::move(key)};
  switch (EVP_PKEY_get_base_id(out.key.get())) {
    case EVP_PKEY_EC:
    case EVP_PKEY_RSA:
      // sigstore hashes with SHA-256 whatever the key's size.
      out.md = EVP_sha256();
      break;
    case EVP_PKEY_ED25519:
      break;
    default:
      return common::MakeError(common::Errc::kInvalidArgument,
                               internal::OneLine(what + ": not an ECDSA, Ed25519 or RSA key"));
  }
  return out;
}

bool VerifiesWith(const SigstoreKey& key, std::string_view payload, std::string_view signature) {
  VerifyCtx ctx(EVP_MD_CTX_new());
  bool ok =
      ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, key.md, nullptr, key.key.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(payload.data()),
                       payload.size()) == 1;
  ERR_clear_error();
  return ok;
}

}  // namespace

struct SigstoreVerifier::Keys {
  std::vector<sigstore_keys::SigstoreKey> keys;
};

SigstoreVerifier::SigstoreVerifier(std::unique_ptr<Keys> keys) : keys_(std::move(keys)) {}
SigstoreVerifier::SigstoreVerifier(SigstoreVerifier&&) noexcept = default;
SigstoreVerifier& SigstoreVerifier::operator=(SigstoreVerifier&&) noexcept = default;
SigstoreVerifier::~SigstoreVerifier() = default;

common::Result<SigstoreVerifier> SigstoreVerifier::Create(const std::vector<PublicKeyBlob>& keys) {
  auto parsed = std::make_unique<Keys>();
  for (const PublicKeyBlob& blob : keys) {
    ASSIGN_OR_RETURN(SigstoreKey key, ParsePemPublicKey(blob));
    parsed->keys.push_back(std::move(key));
  }
  return SigstoreVerifier(std::move(parsed));
}

common::Result<SignedClaim> SigstoreVerifier::Verify(const SigstoreSignature& signature) const {
  auto raw = internal::DecodeBase64(signature.base64_signature);
  if (!raw) {
    return common::MakeError(common::Errc::kDataLoss,
                             std::string("the ") + std::string(kSigstoreSignatureAnnotation) +
                                 " annotation is not base64");
  }
  bool verified = false;
  for (const SigstoreKey& key : keys_->keys)
    verified = verified || VerifiesWith(key, signature.payload, *raw);
  if (!verified) {
    return common::MakeError(common::Errc::kPermissionDenied,
                             "the signature is not by a trusted key (or it or its payload "
                             "was altered)");
  }
  return ParseSignedPayload(signature.payload, PayloadType::kSigstore);
}

}  // namespace trust
