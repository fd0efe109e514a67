// Coverage feedback for libFuzzer from GCC's -fsanitize-coverage=trace-pc
// (see the top-level CMakeLists.txt for why GCC and why this shim).
//
// The fuzz executables are linked with --wrap=__sanitizer_cov_trace_pc, so
// every instrumented edge calls the function below instead of libFuzzer's
// (which only reports that trace-pc is no longer supported). It counts the
// edge, hashed by its return address, in an array that libFuzzer finds
// through the "__libfuzzer_extra_counters" section and treats like its own
// 8-bit edge counters. This file is compiled without coverage flags.

#include <cstddef>
#include <cstdint>

namespace {

constexpr unsigned kCounterBits = 17;

}  // namespace

extern "C" {

// Read by libFuzzer between the __start_/__stop_ symbols of the section.
__attribute__((section("__libfuzzer_extra_counters"), used))
uint8_t gantry_fuzz_counters[size_t{1} << kCounterBits];

__attribute__((no_sanitize("address", "undefined"))) void __wrap___sanitizer_cov_trace_pc() {
  auto pc = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  // Fibonacci hashing spreads nearby call sites over the whole array.
  uint64_t slot = (static_cast<uint64_t>(pc) * 0x9E3779B97F4A7C15ULL) >> (64 - kCounterBits);
  // Racy from several threads, harmlessly: a lost increment is a count.
  ++gantry_fuzz_counters[slot];
}

// GCC's trace-cmp also traces floating-point comparisons, which libFuzzer
// has no callbacks for; their operands are of no use to its mutations.
void __sanitizer_cov_trace_cmpf(float, float) {}
void __sanitizer_cov_trace_cmpd(double, double) {}

}  // extern "C"
