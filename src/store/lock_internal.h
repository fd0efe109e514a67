#pragma once
// Internal to the store module: flock(2) helpers shared by StoreLock and
// ContentStore ingest files. flock locks belong to the open file
// description, so two open()s of one file conflict even within a process:
// the same helpers give mutual exclusion across threads and processes.

#include <atomic>
#include <string_view>

#include "common/error.h"

namespace store::internal {

// Takes flock(fd, op) (op is LOCK_SH or LOCK_EX). With `cancel` null it
// blocks in the kernel; otherwise it retries LOCK_NB with a backoff from
// 1 ms to 50 ms and returns Cancelled once *cancel reads true (flock has no
// timeout, and a thread blocked in it cannot be woken portably).
// `what` names the lock in error messages.
[[nodiscard]] common::Status FlockWait(int fd, int op, const std::atomic<bool>* cancel,
                                       std::string_view what);

// One LOCK_NB attempt: true when taken, false when another holder has it.
[[nodiscard]] common::Result<bool> FlockTry(int fd, int op, std::string_view what);

}  // namespace store::internal
