#pragma once
// A root-wide lock, <root>/lock (flock): pulls and other writers of the
// store hold it shared, garbage collection holds it exclusive, so a
// collection never runs in the middle of a pull. Leases in the metadata
// database protect what a pull is building between its steps; this lock
// protects the window in which a blob exists on disk but is not yet
// referenced by any record or lease.
//
// Exclusive takers go first: flock alone has no fairness, so pulls that
// overlap back to back would keep a collection waiting for ever (found by
// bench/soak.sh). A second file, <root>/lock.gate, queues them: an
// exclusive taker holds the gate exclusively from before it waits for the
// lock until it releases the lock; a shared taker passes the gate (shared,
// dropped as soon as it holds the lock). So once a collection waits, new
// pulls wait behind it, and it runs as soon as the pulls already in flight
// are done.
//
// REQUIRES: a thread holding a shared StoreLock does not take another one
// (nor waits for a thread that is taking one): behind a queued exclusive
// taker that would deadlock.
//
// The lock files are created on first use and never deleted. Locks are per
// open file description: two StoreLocks in one process conflict just as
// they would in two processes. Move-only; the destructor releases the lock.

#include <atomic>
#include <filesystem>

#include "common/error.h"
#include "common/fd.h"

namespace store {

class StoreLock {
 public:
  // Blocking; with `cancel` set, the wait polls it (see BeginIngest).
  // Errors: Cancelled; I/O errors naming the lock file. Creates `root` if
  // missing.
  [[nodiscard]] static common::Result<StoreLock> Shared(const std::filesystem::path& root,
                                                        const std::atomic<bool>* cancel = nullptr);
  [[nodiscard]] static common::Result<StoreLock> Exclusive(
      const std::filesystem::path& root, const std::atomic<bool>* cancel = nullptr);
  // Non-blocking. Errors: Unavailable when a conflicting holder exists.
  [[nodiscard]] static common::Result<StoreLock> TryShared(const std::filesystem::path& root);
  [[nodiscard]] static common::Result<StoreLock> TryExclusive(const std::filesystem::path& root);

  StoreLock(StoreLock&&) noexcept = default;
  StoreLock& operator=(StoreLock&&) noexcept = default;

  bool held() const { return fd_.valid(); }
  bool exclusive() const { return exclusive_; }
  // Releases early; the destructor does the same.
  void Release() {
    fd_.reset();
    gate_.reset();
  }

  static std::filesystem::path LockPath(const std::filesystem::path& root) { return root / "lock"; }
  static std::filesystem::path GatePath(const std::filesystem::path& root) {
    return root / "lock.gate";
  }

 private:
  StoreLock(common::UniqueFd gate, common::UniqueFd fd, bool exclusive)
      : gate_(std::move(gate)), fd_(std::move(fd)), exclusive_(exclusive) {}
  [[nodiscard]] static common::Result<StoreLock> Take(const std::filesystem::path& root,
                                                      bool exclusive, bool wait,
                                                      const std::atomic<bool>* cancel);
  // Declared first so that it is released after the lock.
  common::UniqueFd gate_;  // held (exclusive) by exclusive locks only
  common::UniqueFd fd_;
  bool exclusive_ = false;
};

}  // namespace store
