#pragma once
// Tying a lease to the process that uses it, so that garbage collection can
// tell a lease whose holder died (a crash, SIGKILL) from one still in use.
//
// Every lease has a holder: the only way to create a lease row is
// MetadataDb/Txn::CreateLease (store/metadata.h), which takes the hold
// before it inserts the row and returns it:
//
//   ASSIGN_OR_RETURN(store::LeaseHold lease, db.CreateLease(std::chrono::hours(24)));
//   TRY(db.AddLeaseResource(lease.lease(), store::kLeaseContent, digest.str()));
//   ... work under the lease ...
//   TRY(db.DeleteLease(lease));  // deletes the row, then releases the hold
//
// A held lease has a file <root>/leases/<id> that its holder keeps
// flock(LOCK_EX)ed for as long as it holds the lease. The file only ever
// appears under that name already locked (it is created under a temporary
// name, locked, then renamed), and it is unlinked only by Release, after
// the lease row is gone. So a hold file that can be locked belongs to a
// holder that is gone (killed, or it dropped the hold without deleting
// the lease), and its lease protects nothing any more whatever its
// expiry: AbandonedLeases finds those, and garbage collection deletes them
// like expired ones. Because the hold comes before the row and goes after
// it, a lease row without any hold file was not made by this code (an
// older gantry, a hand-edited database): `gantry fsck` reports it.
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
  // Takes the hold of `lease` alone; CreateLease uses it. Errors:
  // InvalidArgument for an id that is not a lease id (lower-case hex);
  // file-system errors naming the hold file. Creates <root>/leases.
  [[nodiscard]] static common::Result<LeaseHold> Take(const std::filesystem::path& root,
                                                      std::string_view lease);

  LeaseHold() = default;
  // Drops the hold without Release: the file stays, unlocked, so the lease
  // is abandoned (the next prune deletes it) exactly as if the holder had
  // been killed. A lease whose row may still exist is never left without
  // a hold file.
  ~LeaseHold() { Drop(); }
  LeaseHold(LeaseHold&&) noexcept = default;
  LeaseHold& operator=(LeaseHold&& o) noexcept {
    if (this != &o) {
      Drop();
      path_ = std::move(o.path_);
      lease_ = std::move(o.lease_);
      fd_ = std::move(o.fd_);
    }
    return *this;
  }
  LeaseHold(const LeaseHold&) = delete;
  LeaseHold& operator=(const LeaseHold&) = delete;

  bool held() const { return fd_.valid(); }
  // The lease id ("" when nothing is held).
  const std::string& lease() const { return lease_; }
  // Unlinks the hold file, then unlocks it. REQUIRES: the lease row is
  // deleted (committed) or was never created; otherwise the lease would
  // be left without a holder (prune keeps it until it expires).
  // Idempotent.
  void Release();

  static std::filesystem::path Dir(const std::filesystem::path& root) { return root / "leases"; }

 private:
  LeaseHold(std::filesystem::path path, std::string lease, common::UniqueFd fd)
      : path_(std::move(path)), lease_(std::move(lease)), fd_(std::move(fd)) {}
  void Drop() {
    fd_.reset();
    lease_.clear();
  }
  std::filesystem::path path_;
  std::string lease_;
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
