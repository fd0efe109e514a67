#pragma once
// Shared libraries loaded on first use instead of at start-up.
//
// libcurl and libarchive (with what they load: GnuTLS, Kerberos, LDAP,
// libxml2, ICU, …) are 35 of the shared libraries `gantry` would otherwise
// map and relocate at every start, and libcrypto alone is a third of what
// is left; together about two thirds of the start-up of `gantry --version`,
// although `gantry images`, `inspect` or `df` call none of them. Their stubs
// (curl_stubs.cc, archive_stubs.cc, crypto_stubs.cc) define, with the
// libraries' own declarations, the functions gantry calls; the first call
// of any of them loads the library. A function not stubbed there is an
// undefined reference at link time: add its line.
//
// Thread-safety: every function here may be called from any thread.

namespace lazylib {

// The handle of `soname`, dlopen()ed (RTLD_NOW | RTLD_LOCAL) the first time
// that any thread asks for it. Never closed.
// Aborts, after one line on stderr naming the library and dlerror(), when it
// cannot be loaded: the installation is broken, as it would be had the
// dynamic loader failed to find the library at start-up.
void* Open(const char* soname);

// The address of `symbol` in `lib` (from Open(soname)). Aborts as Open does
// when the library lacks it.
void* Symbol(void* lib, const char* soname, const char* symbol);

}  // namespace lazylib

// LAZYLIB_STUB(lib, ret, name, params, args): defines the C function `name`
// with the signature of its declaration in the library's header, calling
// the library's `name`, resolved once, through `lib()` (a function that
// returns lazylib::Open's handle). The header's declaration and this
// definition must agree, so the compiler checks every signature.
#define LAZYLIB_STUB(lib, soname, ret, name, params, args)                          \
  extern "C" ret name params {                                                      \
    static const auto real =                                                        \
        reinterpret_cast<decltype(&::name)>(lazylib::Symbol(lib(), soname, #name)); \
    return real args;                                                               \
  }
