// The libcrypto (OpenSSL) functions gantry calls, loading libcrypto
// (GANTRY_CRYPTO_SONAME) at the first call: digests and base64. See
// lazy_library.h. libcurl loads the same libcrypto for TLS, so a process
// holds one OpenSSL, whichever asks first.

#include <openssl/evp.h>

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
CRYPTO_STUB(int, EVP_DigestFinal_ex, (EVP_MD_CTX * ctx, unsigned char* md, unsigned int* s),
            (ctx, md, s))
CRYPTO_STUB(int, EVP_Digest,
            (const void* data, size_t count, unsigned char* md, unsigned int* size,
             const EVP_MD* type, ENGINE* impl),
            (data, count, md, size, type, impl))
CRYPTO_STUB(int, EVP_EncodeBlock, (unsigned char* t, const unsigned char* f, int n), (t, f, n))
CRYPTO_STUB(int, EVP_DecodeBlock, (unsigned char* t, const unsigned char* f, int n), (t, f, n))
