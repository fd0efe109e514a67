#pragma once
// Retry timing for registry requests: Retry-After parsing and an
// exponential backoff with jitter that sleeps through common::Env, so tests
// can check the schedule without waiting.
//
// Thread-safety: ParseRetryAfter is pure. A Backoff belongs to one request
// loop (one thread).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

#include "common/env.h"

namespace registry {

// Parses a Retry-After value: delay-seconds ("120") or an HTTP-date
// ("Fri, 31 Dec 1999 23:59:59 GMT", and the obsolete RFC 850 and asctime
// forms). A date in the past gives zero. nullopt when malformed.
[[nodiscard]] std::optional<std::chrono::milliseconds> ParseRetryAfter(
    std::string_view value, std::chrono::system_clock::time_point now);

// Parses an HTTP-date (RFC 9110 IMF-fixdate, RFC 850, asctime).
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> ParseHttpDate(
    std::string_view value);

struct BackoffPolicy {
  std::chrono::milliseconds initial{250};  // before the 2nd attempt
  double multiplier = 2.0;
  std::chrono::milliseconds max_delay{10'000};        // computed backoff cap
  std::chrono::milliseconds max_retry_after{60'000};  // a server's Retry-After cap
  double jitter = 0.5;                                // delay is drawn from [d * (1 - jitter), d]
};

class Backoff {
 public:
  // `env` may be null (the real clock). `seed` makes the jitter
  // reproducible in tests.
  Backoff(BackoffPolicy policy, common::Env* env, uint64_t seed);

  // The delay before retry number `retry` (1 for the first retry): a
  // server's Retry-After, capped, when given; else the jittered exponential
  // delay, capped.
  [[nodiscard]] std::chrono::milliseconds Delay(
      int retry, std::optional<std::chrono::milliseconds> retry_after);

  // Sleeps for Delay(...) through the Env in slices of at most 100 ms,
  // returning false early if `cancel` becomes set.
  [[nodiscard]] bool Wait(int retry, std::optional<std::chrono::milliseconds> retry_after,
                          const std::atomic<bool>* cancel);

 private:
  BackoffPolicy policy_;
  common::Env* env_;
  std::mt19937_64 rng_;
};

}  // namespace registry
