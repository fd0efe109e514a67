#pragma once
// A root-wide lock, <root>/lock (flock): pulls and other writers of the
// store hold it shared, garbage collection holds it exclusive, so a
// collection never runs in the middle of a pull. Leases in the metadata
// database protect what a pull is building between its steps; this lock
// protects the window in which a blob exists on disk but is not yet
// referenced by any record or lease.
//
// The lock file is created on first use and never deleted. Locks are per
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
  [[nodiscard]] static common::Result<StoreLock> Shared(
      const std::filesystem::path& root, const std::atomic<bool>* cancel = nullptr);
  [[nodiscard]] static common::Result<StoreLock> Exclusive(
      const std::filesystem::path& root, const std::atomic<bool>* cancel = nullptr);
  // Non-blocking. Errors: Unavailable when a conflicting holder exists.
  [[nodiscard]] static common::Result<StoreLock> TryShared(const std::filesystem::path& root);
  [[nodiscard]] static common::Result<StoreLock> TryExclusive(
      const std::filesystem::path& root);

  StoreLock(StoreLock&&) noexcept = default;
  StoreLock& operator=(StoreLock&&) noexcept = default;

  bool held() const { return fd_.valid(); }
  bool exclusive() const { return exclusive_; }
  // Releases early; the destructor does the same.
  void Release() { fd_.reset(); }

  static std::filesystem::path LockPath(const std::filesystem::path& root) {
    return root / "lock";
  }

 private:
  StoreLock(common::UniqueFd fd, bool exclusive) : fd_(std::move(fd)), exclusive_(exclusive) {}
  [[nodiscard]] static common::Result<StoreLock> Take(const std::filesystem::path& root,
                                                      bool exclusive, bool wait,
                                                      const std::atomic<bool>* cancel);
  common::UniqueFd fd_;
  bool exclusive_ = false;
};

}  // namespace store
