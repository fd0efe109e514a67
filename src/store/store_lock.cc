#include "store/store_lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/fs.h"
#include "store/lock_internal.h"

namespace store {
namespace internal {

common::Result<bool> FlockTry(int fd, int op, std::string_view what) {
  for (;;) {
    if (::flock(fd, op | LOCK_NB) == 0) return true;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return false;
    return common::ErrnoError("lock " + std::string(what));
  }
}

common::Status FlockWait(int fd, int op, const std::atomic<bool>* cancel, std::string_view what) {
  if (cancel == nullptr) {
    for (;;) {
      if (::flock(fd, op) == 0) return {};
      if (errno == EINTR) continue;
      return common::ErrnoError("lock " + std::string(what));
    }
  }
  auto delay = std::chrono::milliseconds(1);
  for (;;) {
    if (cancel->load(std::memory_order_relaxed))
      return common::MakeError(common::Errc::kCancelled,
                               "wait for lock " + std::string(what) + ": cancelled");
    auto got = FlockTry(fd, op, what);
    if (!got) return std::unexpected(std::move(got.error()));
    if (*got) return {};
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(50));
  }
}

}  // namespace internal

namespace {

// One flock on `fd`: waited for (polling `cancel` when set) or tried once
// (Unavailable when someone else holds it).
common::Status Acquire(int fd, int op, bool wait, const std::atomic<bool>* cancel,
                       const std::string& what) {
  if (wait) return internal::FlockWait(fd, op, cancel, what);
  ASSIGN_OR_RETURN(bool got, internal::FlockTry(fd, op, what));
  if (!got)
    return common::MakeError(common::Errc::kUnavailable,
                             "lock " + what + ": held by another gantry process");
  return {};
}

}  // namespace

common::Result<StoreLock> StoreLock::Take(const std::filesystem::path& root, bool exclusive,
                                          bool wait, const std::atomic<bool>* cancel) {
  TRY(common::MkdirAll(root));
  std::filesystem::path p = LockPath(root);
  std::filesystem::path g = GatePath(root);
  ASSIGN_OR_RETURN(common::UniqueFd gate,
                   common::Open(g.string(), O_RDWR | O_CREAT | O_NOFOLLOW, 0644));
  ASSIGN_OR_RETURN(common::UniqueFd fd,
                   common::Open(p.string(), O_RDWR | O_CREAT | O_NOFOLLOW, 0644));
  int op = exclusive ? LOCK_EX : LOCK_SH;
  TRY(Acquire(gate.get(), op, wait, cancel, "`" + g.string() + "`"));
  TRY(Acquire(fd.get(), op, wait, cancel, "`" + p.string() + "`"));
  // A shared holder leaves the gate at once, so that an exclusive taker
  // can queue there while it works.
  if (!exclusive) gate.reset();
  return StoreLock(std::move(gate), std::move(fd), exclusive);
}

common::Result<StoreLock> StoreLock::Shared(const std::filesystem::path& root,
                                            const std::atomic<bool>* cancel) {
  return Take(root, false, true, cancel);
}
common::Result<StoreLock> StoreLock::Exclusive(const std::filesystem::path& root,
                                               const std::atomic<bool>* cancel) {
  return Take(root, true, true, cancel);
}
common::Result<StoreLock> StoreLock::TryShared(const std::filesystem::path& root) {
  return Take(root, false, false, nullptr);
}
common::Result<StoreLock> StoreLock::TryExclusive(const std::filesystem::path& root) {
  return Take(root, true, false, nullptr);
}

}  // namespace store
