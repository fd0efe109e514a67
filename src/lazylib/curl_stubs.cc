// The libcurl functions gantry calls, loading libcurl (GANTRY_CURL_SONAME)
// at the first call. See lazy_library.h.

#include <curl/curl.h>

#include <cstdarg>

#include "lazylib/lazy_library.h"

#ifndef GANTRY_CURL_SONAME
#error "GANTRY_CURL_SONAME must name libcurl's SONAME"
#endif

namespace {

constexpr const char* kSoname = GANTRY_CURL_SONAME;

void* Curl() {
  static void* const lib = lazylib::Open(kSoname);
  return lib;
}

// The variadic setters and getters take exactly one argument after the
// option: a long, a curl_off_t, or a data or function pointer, each passed
// in one 8-byte integer slot on LP64. Read as a pointer and passed on, it
// reaches libcurl bit for bit as the caller passed it.
static_assert(sizeof(long) == sizeof(void*) && sizeof(curl_off_t) == sizeof(void*));

template <class Fn>
Fn Real(const char* name) {
  return reinterpret_cast<Fn>(lazylib::Symbol(Curl(), kSoname, name));
}

}  // namespace

#define CURL_STUB(ret, name, params, args) LAZYLIB_STUB(Curl, kSoname, ret, name, params, args)

CURL_STUB(CURLcode, curl_global_init, (long flags), (flags))
CURL_STUB(CURL*, curl_easy_init, (void), ())
CURL_STUB(CURLcode, curl_easy_perform, (CURL * curl), (curl))
CURL_STUB(void, curl_easy_cleanup, (CURL * curl), (curl))
CURL_STUB(void, curl_easy_reset, (CURL * curl), (curl))
CURL_STUB(const char*, curl_easy_strerror, (CURLcode code), (code))
CURL_STUB(CURLSH*, curl_share_init, (void), ())
CURL_STUB(CURLSHcode, curl_share_cleanup, (CURLSH * share), (share))
CURL_STUB(struct curl_slist*, curl_slist_append, (struct curl_slist * list, const char* data),
          (list, data))
CURL_STUB(void, curl_slist_free_all, (struct curl_slist * list), (list))

// The names in parentheses: curl.h defines function-like macros of them.
extern "C" CURLcode(curl_easy_setopt)(CURL* curl, CURLoption option, ...) {
  static const auto real = Real<decltype(&::curl_easy_setopt)>("curl_easy_setopt");
  va_list ap;
  va_start(ap, option);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return real(curl, option, arg);
}

extern "C" CURLcode(curl_easy_getinfo)(CURL* curl, CURLINFO info, ...) {
  static const auto real = Real<decltype(&::curl_easy_getinfo)>("curl_easy_getinfo");
  va_list ap;
  va_start(ap, info);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return real(curl, info, arg);
}

extern "C" CURLSHcode(curl_share_setopt)(CURLSH* share, CURLSHoption option, ...) {
  static const auto real = Real<decltype(&::curl_share_setopt)>("curl_share_setopt");
  va_list ap;
  va_start(ap, option);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return real(share, option, arg);
}
