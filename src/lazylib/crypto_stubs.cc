// The libcrypto (OpenSSL) functions gantry calls, loading libcrypto
// (GANTRY_CRYPTO_SONAME) at the first call: digests, base64 and signature verification. See
// lazy_library.h. libcurl loads the same libcrypto for TLS, so a process
// holds one OpenSSL, whichever asks first.

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "lazylib/lazy_library.h"

#ifndef GANTRY_CRYPTO_SONAME
#error "GANTRY_CRYPTO_SONAME must name libcrypto's SONAME"
#endif

namespace {

constexpr const char* kSoname = GANTRY_CRYPTO_SONAME;

void* Crypto() {
  static void* const lib = lazylib::Open(kSoname);
  return lib;
}

}  // namespace

#define CRYPTO_STUB(ret, name, params, args) LAZYLIB_STUB(Crypto, kSoname, ret, name, params, args)

CRYPTO_STUB(const EVP_MD*, EVP_sha256, (void), ())
CRYPTO_STUB(const EVP_MD*, EVP_sha512, (void), ())
CRYPTO_STUB(EVP_MD_CTX*, EVP_MD_CTX_new, (void), ())
CRYPTO_STUB(void, EVP_MD_CTX_free, (EVP_MD_CTX * ctx), (ctx))
CRYPTO_STUB(int, EVP_DigestInit_ex, (EVP_MD_CTX * ctx, const EVP_MD* type, ENGINE* impl),
            (ctx, type, impl))
CRYPTO_STUB(int, EVP_DigestUpdate, (EVP_MD_CTX * ctx, const void* d, size_t cnt), (ctx, d, cnt))
CRYPTO_STUB(int, EVP_MD_CTX_copy_ex, (EVP_MD_CTX * out, const EVP_MD_CTX* in), (out, in))
CRYPTO_STUB(int, EVP_DigestFinal_ex, (EVP_MD_CTX * ctx, unsigned char* md, unsigned int* s),
            (ctx, md, s))
CRYPTO_STUB(int, EVP_Digest,
            (const void* data, size_t count, unsigned char* md, unsigned int* size,
             const EVP_MD* type, ENGINE* impl),
            (data, count, md, size, type, impl))
CRYPTO_STUB(int, EVP_EncodeBlock, (unsigned char* t, const unsigned char* f, int n), (t, f, n))
CRYPTO_STUB(int, EVP_DecodeBlock, (unsigned char* t, const unsigned char* f, int n), (t, f, n))
// Public keys and signature verification (trust/sigstore_verify.cc).
CRYPTO_STUB(BIO*, BIO_new_mem_buf, (const void* buf, int len), (buf, len))
CRYPTO_STUB(int, BIO_free, (BIO * a), (a))
CRYPTO_STUB(EVP_PKEY*, PEM_read_bio_PUBKEY, (BIO * bp, EVP_PKEY** x, pem_password_cb* cb, void* u),
            (bp, x, cb, u))
CRYPTO_STUB(void, EVP_PKEY_free, (EVP_PKEY * pkey), (pkey))
CRYPTO_STUB(int, EVP_PKEY_get_base_id, (const EVP_PKEY* pkey), (pkey))
CRYPTO_STUB(int, EVP_DigestVerifyInit,
            (EVP_MD_CTX * ctx, EVP_PKEY_CTX** pctx, const EVP_MD* type, ENGINE* e, EVP_PKEY* pkey),
            (ctx, pctx, type, e, pkey))
CRYPTO_STUB(int, EVP_DigestVerify,
            (EVP_MD_CTX * ctx, const unsigned char* sigret, size_t siglen, const unsigned char* tbs,
             size_t tbslen),
            (ctx, sigret, siglen, tbs, tbslen))
CRYPTO_STUB(void, ERR_clear_error, (void), ())
