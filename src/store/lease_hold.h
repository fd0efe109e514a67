#pragma once
// Tying a lease to the process that uses it, so that garbage collection can
// tell a lease whose holder died (a crash, SIGKILL) from one still in use.
//
//   ASSIGN_OR_RETURN(std::string lease, db.CreateLease(std::chrono::hours(24)));
//   ASSIGN_OR_RETURN(store::LeaseHold hold, store::LeaseHold::Take(root, lease));
//   ... work under the lease ...
//   TRY(db.DeleteLease(lease));  // then the hold goes (destructor or Release)
//
// A held lease has a file <root>/leases/<id> that its holder keeps
// flock(LOCK_EX)ed for as long as it holds the lease. The file only ever
// appears under that name already locked (it is created under a temporary
// name, locked, then renamed), and the holder unlinks it before closing it.
// So a hold file that can be locked belongs to a process that is gone, and
// its lease protects nothing any more whatever its expiry: AbandonedLeases
// finds those, and garbage collection deletes them like expired ones.
// A lease that was never held (CreateLease alone, or a holder killed
// between CreateLease and Take) lives until it expires or is deleted.
//
// Locks belong to open file descriptions, so a probe from the holder's own
// process sees the lease as held, like one from any other process.
//
// Thread-safety: a LeaseHold is used from one thread at a time; the free
// functions are safe to call concurrently from threads and processes.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/fd.h"

namespace store {

class LeaseHold {
 public:
  // Errors: InvalidArgument for an id that is not a lease id (lower-case
  // hex); file-system errors naming the hold file. Creates <root>/leases.
  [[nodiscard]] static common::Result<LeaseHold> Take(const std::filesystem::path& root,
                                                      std::string_view lease);

  LeaseHold() = default;
  ~LeaseHold() { Release(); }
  LeaseHold(LeaseHold&&) noexcept = default;
  LeaseHold& operator=(LeaseHold&& o) noexcept {
    if (this != &o) {
      Release();
      path_ = std::move(o.path_);
      fd_ = std::move(o.fd_);
    }
    return *this;
  }
  LeaseHold(const LeaseHold&) = delete;
  LeaseHold& operator=(const LeaseHold&) = delete;

  bool held() const { return fd_.valid(); }
  // Unlinks the hold file, then unlocks it. Delete the lease first: a lease
  // whose hold is gone falls back to its expiry. Idempotent.
  void Release();

  static std::filesystem::path Dir(const std::filesystem::path& root) { return root / "leases"; }

 private:
  LeaseHold(std::filesystem::path path, common::UniqueFd fd)
      : path_(std::move(path)), fd_(std::move(fd)) {}
  std::filesystem::path path_;
  common::UniqueFd fd_;
};

// Ids of leases whose hold file nobody locks (their holder is gone), sorted.
// Leftover temporary files of a Take that was killed are ignored (see
// RemoveAbandonedHold). Errors: file-system errors other than a missing
// <root>/leases.
[[nodiscard]] common::Result<std::vector<std::string>> AbandonedLeases(
    const std::filesystem::path& root);

// Removes the hold file of `lease` if nobody locks it (after its lease row
// was deleted), and leftover temporary files of killed Takes. Errors:
// file-system errors other than the file being gone.
[[nodiscard]] common::Status RemoveAbandonedHolds(const std::filesystem::path& root,
                                                  const std::vector<std::string>& leases);

}  // namespace store
