// lazylib: a library or symbol that cannot be found is a broken install,
// reported in one line naming it before the process aborts; the stubs load
// the real library and return what it returns.

#include "lazylib/lazy_library.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

namespace {

TEST(LazyLibraryDeathTest, MissingLibraryAbortsNamingIt) {
  EXPECT_DEATH(lazylib::Open("libgantry-no-such-library.so.0"),
               "^gantry: load shared library `libgantry-no-such-library.so.0`: [^\n]*\n$");
}

TEST(LazyLibraryDeathTest, MissingSymbolAbortsNamingIt) {
  void* libc = lazylib::Open("libc.so.6");
  EXPECT_DEATH(lazylib::Symbol(libc, "libc.so.6", "gantry_no_such_symbol"),
               "^gantry: find `gantry_no_such_symbol` in `libc.so.6`: [^\n]*\n$");
}

TEST(LazyLibrary, CryptoStubsReachLibcrypto) {
  // SHA-256 of "abc" (FIPS 180-2, appendix B.1), through the stubs.
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  ASSERT_EQ(EVP_Digest("abc", 3, out, &n, EVP_sha256(), nullptr), 1);
  ASSERT_EQ(n, 32u);
  EXPECT_EQ(out[0], 0xba);
  EXPECT_EQ(out[31], 0xad);
}

}  // namespace
