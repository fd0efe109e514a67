#pragma once
// Checking a store against its own invariants (`gantry fsck [--repair]`).
//
//   ASSIGN_OR_RETURN(upkeep::FsckReport r, upkeep::Check(content, db, {}));
//   for (const auto& p : r.problems) …   // kind, subject, detail
//   ASSIGN_OR_RETURN(upkeep::FsckReport fixed, upkeep::Repair(content, db, {}));
//   // fixed.repairs: what was done; fixed.remaining: what is still wrong
//
// Problems (kind — subject — what is wrong):
//   blob-corrupt     digest   the file does not hash to its digest, or cannot be read
//   blob-size        digest   metadata.db records another size than the (correct) file has
//   blob-missing     digest   metadata.db records a blob whose file is gone
//   blob-unrecorded  digest   an image uses a blob that has no metadata.db row
//   image            name     its target, platform manifest, config or a layer is missing,
//                             corrupt or unparsable, or its record's labels do not parse
//                             (image/image_record.h)
//   snapshot-parent  snapshots/<id>  its parent row is missing, not committed, or the chain loops
//   snapshot-dir     snapshots/<id>  its fs (or, active overlay, work) directory is missing
//   stray            path under the root  an entry gantry never creates: a bad name in
//                    content/blobs/sha256, content/ingest or leases, a non-numeric entry in
//                    snapshots/ or a numeric one above the id counter
//   ingest-oversize  content/ingest/<file>  a partial larger than the blob an image needs
//   ingest-corrupt   content/ingest/<file>  a complete-size partial with the wrong content
//   mount            mount point  a mount under the root, or an overlay using the
//                    directory of a snapshot that has no row
//   lease            lease id  an unexpired lease with no hold file: no process holds
//                    it, yet prune keeps what it protects until it expires
//                    (store/lease_hold.h; gantry never makes one)
//   database         metadata.db  SQLite's quick_check fails (not repairable)
//
// Not problems (counted in `notes`): what a killed gantry leaves and the
// store handles by itself — blob files no record or lease uses (a pull
// that failed or was killed, an rmi: prune), expired leases and leases
// whose holder is gone, and their hold files (prune),
// partial downloads (resumed by the next pull, else cleaned by prune),
// extract snapshots (unpack in progress, or killed: prune), numeric
// snapshot directories without a row up to the id counter + 1 (a killed
// Prepare or Remove: prune), snapshots unsynced in this boot (synced by
// Settle), and unsynced from an earlier boot (removed by the next Settle),
// `gantry mount` views whose directory is no longer mounted.
//
// Locking: Check holds store::StoreLock shared (as a pull does): it waits
// for a running prune, never for pulls, and its reads are ordered so that
// a concurrent pull, unpack or snapshot removal is not taken for damage.
// Repair holds the lock exclusive (as prune does), so it waits for pulls in
// progress; it checks, repairs what it found, and checks again (a repair
// can expose more: an image whose corrupt layer was deleted), until a check
// finds nothing new, at most four rounds.
// REQUIRES: the calling thread holds no StoreLock on the root.
//
// Repairs remove only what cannot be trusted: a corrupt blob (file and
// row); the row of a missing blob; a lease nobody holds; an image record whose content is gone
// (untagged; a pull restores it); snapshots with a missing directory or a
// broken parent, with the snapshots built on them (the image is unpacked
// again when next used); stray entries; bad partials nobody holds; stray
// mounts (detached). They add what is provably right: the row of a blob an
// image uses, with the file's size; a corrected size.
//
// Errors: Cancelled while waiting for the lock; failures to read the store
// (the check cannot be trusted then). A repair that fails is listed in
// FsckReport::errors and its problem stays in `remaining`.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace upkeep {

struct FsckProblem {
  std::string kind;
  std::string subject;
  std::string detail;
  friend bool operator==(const FsckProblem&, const FsckProblem&) = default;
  friend auto operator<=>(const FsckProblem&, const FsckProblem&) = default;
};

struct FsckRepair {
  std::string action;   // "deleted corrupt blob", "untagged image", …
  std::string subject;  // as the problem's
};

struct FsckNote {  // state the store handles by itself; not a problem
  std::string what;
  int64_t count = 0;
};

struct FsckCounts {
  int blobs = 0;  // blob files and rows
  int images = 0;
  int snapshots = 0;
  int ingest = 0;  // partial downloads
  int leases = 0;
  int mounts = 0;  // mounts that use the store
};

struct FsckReport {
  std::vector<FsckProblem> problems;   // everything found (every round of a repair)
  std::vector<FsckRepair> repairs;     // Repair only
  std::vector<FsckProblem> remaining;  // still there: Check: == problems
  std::vector<FsckNote> notes;         // from the last check
  FsckCounts checked;                  // from the first check
  std::vector<std::string> errors;     // repairs that failed
};

struct FsckOptions {
  // Polled while waiting for the store lock. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Where the mount table is read from (tests may substitute one).
  std::filesystem::path mountinfo = "/proc/self/mountinfo";
};

[[nodiscard]] common::Result<FsckReport> Check(const store::ContentStore& content,
                                               store::MetadataDb& metadata,
                                               const FsckOptions& options = {});
[[nodiscard]] common::Result<FsckReport> Repair(store::ContentStore& content,
                                                store::MetadataDb& metadata,
                                                const FsckOptions& options = {});

}  // namespace upkeep
