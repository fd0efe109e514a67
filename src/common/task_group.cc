#include "common/task_group.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace common {

Status RunJobs(size_t count, const JobOptions& options,
               const std::function<Status(size_t index)>& job) {
  std::mutex mu;
  std::condition_variable finished;
  size_t next = 0;
  std::optional<Error> first_error;  // guarded by mu, as next and running
  auto fail = [&](Error e) {
    std::lock_guard lk(mu);
    if (!first_error) first_error = std::move(e);
    if (options.stop != nullptr) *options.stop = true;
  };
  auto worker = [&] {
    for (;;) {
      size_t i;
      {
        std::lock_guard lk(mu);
        if (next >= count || first_error) return;
        i = next++;
      }
      if (auto st = job(i); !st) {
        fail(std::move(st.error()));
        return;
      }
    }
  };

  // The calling thread is one of the workers unless it has something else
  // to do.
  const bool caller_works = !options.meanwhile && !options.cancelled;
  const int n =
      static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(options.threads, 1)), count));
  int running = caller_works ? std::max(n - 1, 0) : n;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(running));
  for (int i = 0, started = running; i < started; ++i) {
    threads.emplace_back([&] {
      worker();
      std::lock_guard lk(mu);
      --running;
      finished.notify_all();
    });
  }
  if (caller_works && n > 0) worker();
  if (options.meanwhile) {
    if (auto st = options.meanwhile(); !st) fail(std::move(st.error()));
  }
  {
    std::unique_lock lk(mu);
    while (running > 0) {
      if (!options.cancelled) {
        finished.wait(lk);
        continue;
      }
      finished.wait_for(lk, options.poll);
      if (options.cancelled() && options.stop != nullptr) *options.stop = true;
    }
  }
  for (auto& t : threads) t.join();
  if (first_error) return std::unexpected(std::move(*first_error));
  return {};
}

}  // namespace common
