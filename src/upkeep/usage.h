#pragma once
// Disk usage of a store (`gantry df`): content, snapshots and partial
// downloads, per image with the part it shares with other images, and what
// `gantry prune` (and `prune --all`) would free.
//
//   ASSIGN_OR_RETURN(upkeep::DiskUsage u, upkeep::ComputeUsage(content, db, sns));
//
// Sizes: a blob counts its file size; a snapshot counts
// Snapshotter::GetUsage (the allocated bytes of its own directory: for
// overlay one layer's changes, for native a full copy). An image's size is
// its blobs (target, manifest, config, compressed layers) plus its
// committed snapshots (one per chainID, in every snapshotter). A blob or
// snapshot used by two or more image records is *shared*; the rest of an
// image is *unique*, which is what `gantry rmi` of that name followed by
// `gantry prune` frees (unless a container or lease still holds it). Totals
// count each blob and snapshot once, however many images use it
// (kubernetes#71869).
//
// Reads without taking the store lock: the figures are a consistent-enough
// picture for a report, not a promise (a pull may be adding to it).
// Errors: as the store and snapshotters report.

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"
#include "upkeep/gc.h"

namespace upkeep {

struct UsageOptions {
  // As GcOptions: which ingest files count as reclaimable.
  std::chrono::seconds ingest_min_age = kDefaultIngestMinAge;
};

struct ImageUsage {
  std::string name;
  std::string id;  // config digest; "" when unknown
  int64_t created_ns = 0;
  int64_t content_bytes = 0;   // its blobs
  int64_t snapshot_bytes = 0;  // its committed snapshots
  int64_t size = 0;            // content_bytes + snapshot_bytes
  int64_t shared = 0;          // the part another image record also uses
  int64_t unique = 0;          // size - shared
  bool unpacked = false;       // its top chainID has a committed snapshot
  int containers = 0;          // active snapshots and views on its top chainID
};

struct SnapshotUsage {
  std::string snapshotter;  // "overlayfs" | "native"
  snapshot::Info info;
  snapshot::Usage usage;
  int images = 0;            // image records whose chain includes it
  bool reclaimable = false;  // `gantry prune` removes it
  bool containerd = false;   // held by containerd (the snapshotter door, ctrsnap/door.h)
};

// One row of the summary: how many, how many in use, bytes, and the bytes
// a prune frees.
struct UsageTotals {
  int count = 0;
  int active = 0;
  int64_t bytes = 0;
  int64_t reclaimable = 0;
};

struct DiskUsage {
  std::vector<ImageUsage> images;        // sorted by name
  std::vector<SnapshotUsage> snapshots;  // by snapshotter, then id
  // count: image records; active: in use by a container or mount; bytes:
  // everything the images use, shared parts once; reclaimable: what
  // `prune --all` frees on top of `prune`.
  UsageTotals images_total;
  int64_t images_shared = 0;  // bytes used by two or more images, once
  int64_t images_unique = 0;  // images_total.bytes - images_shared
  // active: kept by prune; reclaimable: removed by prune.
  UsageTotals snapshots_total;
  // Snapshots containerd holds through the snapshotter door: count, bytes.
  int containerd_snapshots = 0;
  int64_t containerd_bytes = 0;
  UsageTotals content_total;          // blob files
  UsageTotals ingest_total;           // partial downloads; active: held by a writer or young
  int64_t reclaimable = 0;            // `gantry prune`: blobs + snapshots + ingest
  int64_t reclaimable_all = 0;        // `gantry prune --all`
  std::vector<std::string> warnings;  // unreadable image parts
};

[[nodiscard]] common::Result<DiskUsage> ComputeUsage(
    const store::ContentStore& content, store::MetadataDb& metadata,
    std::span<snapshot::Snapshotter* const> snapshotters, const UsageOptions& options = {});
[[nodiscard]] common::Result<DiskUsage> ComputeUsage(const store::ContentStore& content,
                                                     store::MetadataDb& metadata,
                                                     snapshot::Snapshotter& snapshotter,
                                                     const UsageOptions& options = {});

}  // namespace upkeep
