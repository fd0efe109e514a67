#pragma once
// Jobs run on a few threads, the first error winning: what the pull's
// downloads and the unpack's layers both do.
//
//   std::atomic<bool> stop{false};
//   TRY(common::RunJobs(blobs.size(), {.threads = 3, .stop = &stop},
//                       [&](size_t i) { return Fetch(blobs[i]); }));
//
// Jobs are handed out in index order, each once. The first job that fails
// (or `meanwhile`, below) stops the handing out, sets *stop so that the
// jobs still running can notice and return early, and is the error
// returned once every thread has ended. RunJobs returns only when every
// job it started has ended.
//
// Thread-safety: `job` is called concurrently from up to `threads`
// threads; RunJobs itself may be called from any thread.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>

#include "common/error.h"

namespace common {

struct JobOptions {
  int threads = 1;  // at most this many jobs at once (clamped to [1, count])
  // Set when a job fails or `cancelled` says so; the jobs may poll it.
  // May be null.
  std::atomic<bool>* stop = nullptr;
  // Runs on the calling thread while the jobs run; its error counts as a
  // job's. Unset: the calling thread runs jobs too (one of `threads`).
  std::function<Status()> meanwhile{};
  // Polled every `poll` on the calling thread while the jobs run (once
  // `meanwhile` returned); true sets *stop. Unset: not polled, and the
  // calling thread runs jobs unless `meanwhile` is set.
  std::function<bool()> cancelled{};
  std::chrono::milliseconds poll{50};
};

[[nodiscard]] Status RunJobs(size_t count, const JobOptions& options,
                             const std::function<Status(size_t index)>& job);

}  // namespace common
