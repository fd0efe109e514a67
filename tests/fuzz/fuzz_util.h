#pragma once
// Helpers shared by the fuzz targets (tests/fuzz/*_fuzz.cc).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/log.h"

// The fuzz target's entry point: libFuzzer's driver calls it in the fuzz
// build, regression_test.cc in the normal one.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace fuzz {

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// A broken invariant is a finding: abort, which libFuzzer reports as a
// crash and saves the input for.
inline void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

// Library warnings about rejected input would flood the fuzzer's output.
inline void QuietLogs() {
  static const bool once = [] {
    common::SetLogLevel(common::LogLevel::Off);
    return true;
  }();
  (void)once;
}

}  // namespace fuzz
