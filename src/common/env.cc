#include "common/env.h"

#include <thread>

namespace common {

std::chrono::steady_clock::time_point Env::Now() { return std::chrono::steady_clock::now(); }

std::chrono::system_clock::time_point Env::WallNow() { return std::chrono::system_clock::now(); }

void Env::SleepFor(std::chrono::steady_clock::duration d) {
  if (d > std::chrono::steady_clock::duration::zero()) std::this_thread::sleep_for(d);
}

Env* DefaultEnv() {
  // Env has no state, so one shared instance is safe from every thread.
  static Env env;
  return &env;
}

}  // namespace common
