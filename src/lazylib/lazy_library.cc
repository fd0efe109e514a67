#include "lazylib/lazy_library.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace lazylib {
namespace {

// No iostreams or logger: this runs in whatever state the caller is in, and
// is about to abort.
[[noreturn]] void Die(const char* what, const char* soname, const char* detail) {
  std::string line = std::string("gantry: ") + what + " `" + soname +
                     "`: " + (detail != nullptr ? detail : "unknown error") + "\n";
  (void)!::write(STDERR_FILENO, line.data(), line.size());
  std::abort();
}

}  // namespace

void* Open(const char* soname) {
  void* lib = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) Die("load shared library", soname, ::dlerror());
  return lib;
}

void* Symbol(void* lib, const char* soname, const char* symbol) {
  ::dlerror();
  void* address = ::dlsym(lib, symbol);
  if (address == nullptr) {
    std::string what = std::string("find `") + symbol + "` in";
    Die(what.c_str(), soname, ::dlerror());
  }
  return address;
}

}  // namespace lazylib
