#pragma once
// Garbage collection of a store: content, snapshots, leases and partial
// downloads that nothing refers to any more (`gantry prune`).
//
//   std::vector<snapshot::Snapshotter*> sns{overlay.get(), native.get()};
//   ASSIGN_OR_RETURN(upkeep::GcReport r, upkeep::Prune(content, db, sns, {.dry_run = true}));
//   // r.blobs, r.snapshots: what a real run removes; r.total_bytes()
//
// Roots (image/conventions.h):
//   - every image record (image/image_record.h): its target blob, its
//     platform manifest and config, the manifest's layers; the committed
//     snapshots named by its chainIDs (from the config's diff_ids, and its
//     recorded top chainID); a record whose labels do not parse is a
//     warning, and only what its target reaches is kept;
//   - unexpired leases: their content digests and snapshot keys;
//   - active snapshots and views that are not extract snapshots (bundles,
//     `gantry mount`).
// A kept snapshot keeps its whole parent chain.
//
// Swept, in this order:
//   1. expired leases, and leases whose holder died (a pull or unpack that
//      was killed: store/lease_hold.h), whatever their expiry;
//   2. with `all`, image records no active snapshot or view uses (none has
//      the image's top chainID as its parent) and no pin names
//      (store::PinRecord: a pre-pull list's images): "remove every image
//      no container or mount uses", docker's `prune --all`; their content
//      and snapshots are then collected like any other;
//   3. blobs nothing reaches: the metadata rows are deleted in one
//      transaction with the untagging and, after it commits, the files;
//   4. snapshots nothing reaches, children before parents, including
//      extract snapshots no lease holds (leftovers of a killed unpack);
//   5. ingest files nobody holds that were not written to for
//      `ingest_min_age`, and empty ones at once (ContentStore::CleanIngest);
//   6. snapshot directories no row refers to (Snapshotter::Cleanup).
//
// An image whose manifest or config cannot be read (missing, corrupt) keeps
// what can still be found from it, and the report carries a warning: its
// other layers are not known and are collected. A read failure that is not
// about the blob itself (permission, I/O) stops the collection before
// anything is removed.
//
// Locking: holds store::StoreLock::Exclusive on the content store's root
// for the whole run, so it waits for pulls and unpacks in progress (they
// hold it shared) and they wait for it.
// REQUIRES: the calling thread holds no StoreLock on that root (it would
// wait for itself); every snapshotter belongs to the same root.
//
// Errors: Cancelled (options.cancel set while waiting for the lock); as
// the store and snapshotters report while marking (nothing is removed
// then). Failures to remove one item do not stop the sweep: they are
// listed in GcReport::errors and the item stays for the next run.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace upkeep {

// Partial downloads younger than this stay so a pull can resume them; it
// matches the pull lease's lifetime.
inline constexpr std::chrono::seconds kDefaultIngestMinAge = std::chrono::hours(24);

struct GcOptions {
  // Also untag images that no active snapshot or view uses (see above).
  bool all = false;
  // Report what would be removed; remove nothing.
  bool dry_run = false;
  std::chrono::seconds ingest_min_age = kDefaultIngestMinAge;
  // Polled while waiting for the exclusive store lock and between removals
  // (a cancelled sweep stops, reports what it removed and lists "prune
  // cancelled" in errors; the store stays consistent). May be null.
  const std::atomic<bool>* cancel = nullptr;
};

struct RemovedBlob {
  common::Digest digest;
  int64_t bytes = 0;       // file size; 0 when only the metadata row existed
  std::string media_type;  // from the metadata row; "" when there was none
};

struct RemovedSnapshot {
  std::string snapshotter;  // "overlayfs" | "native"
  std::string key;
  std::string parent;
  snapshot::SnapshotKind kind = snapshot::SnapshotKind::kCommitted;
  int64_t bytes = 0;  // Snapshotter::GetUsage before removal
};

struct GcReport {
  bool dry_run = false;
  std::vector<std::string> untagged;  // image names (`all`)
  std::vector<RemovedBlob> blobs;
  std::vector<RemovedSnapshot> snapshots;  // in removal order
  std::vector<std::string> leases;         // expired or abandoned lease ids deleted
  int ingest_files = 0;
  int64_t ingest_bytes = 0;
  int orphan_dirs = 0;                // snapshot directories without a row
  std::vector<std::string> warnings;  // unreadable image parts
  std::vector<std::string> errors;    // items that could not be removed

  int64_t blob_bytes() const;
  int64_t snapshot_bytes() const;
  // Blobs + snapshots + ingest files.
  int64_t total_bytes() const;
};

// Metrics of collections (docs/metrics.md), counted by `gantry serve` for
// its reclaimer and added to the store's counters by `gantry prune`.
inline constexpr std::string_view kGcRunsMetric = "gantry_gc_runs_total";               // {trigger}
inline constexpr std::string_view kGcFreedBytesMetric = "gantry_gc_freed_bytes_total";  // {kind}
inline constexpr std::array<std::string_view, 2> kGcTriggers = {"prune", "reclaimer"};
inline constexpr std::array<std::string_view, 3> kGcFreedKinds = {"content", "snapshots", "ingest"};

// The counter deltas (store/metadata.h) of one collection that returned
// `report`: a run of `trigger` (one of kGcTriggers) and the bytes it freed
// by kind (kinds that freed nothing left out). A dry run counts nothing.
[[nodiscard]] std::vector<store::CounterDelta> GcCounterDeltas(const GcReport& report,
                                                               std::string_view trigger);

[[nodiscard]] common::Result<GcReport> Prune(store::ContentStore& content,
                                             store::MetadataDb& metadata,
                                             std::span<snapshot::Snapshotter* const> snapshotters,
                                             const GcOptions& options);
// The same with one snapshotter.
[[nodiscard]] common::Result<GcReport> Prune(store::ContentStore& content,
                                             store::MetadataDb& metadata,
                                             snapshot::Snapshotter& snapshotter,
                                             const GcOptions& options);

}  // namespace upkeep
