#pragma once
// The clock and sleep seam (LevelDB's Env idea): code that waits, backs off
// or expires things asks an Env for the time and for sleeping, so tests can
// substitute a fake that records sleeps and advances time without waiting.
//
// Thread-safety: DefaultEnv() is safe to use from any thread. Fakes used by
// tests decide their own rules.

#include <chrono>

namespace common {

class Env {
 public:
  virtual ~Env() = default;
  // Monotonic time, for deadlines, expiry and backoff.
  virtual std::chrono::steady_clock::time_point Now();
  // Wall-clock time, for HTTP dates (Retry-After) and log stamps.
  virtual std::chrono::system_clock::time_point WallNow();
  // Blocks the calling thread for `d` (returns at once for d <= 0).
  virtual void SleepFor(std::chrono::steady_clock::duration d);
};

// The real clock and sleep; a process-wide immutable object, never null.
[[nodiscard]] Env* DefaultEnv();

}  // namespace common
