#pragma once
// Opening the store at --root for a command.

#include <memory>
#include <span>
#include <vector>

#include "cli/app.h"
#include "common/error.h"
#include "image/pull.h"
#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace cli {

struct OpenedStore {
  std::unique_ptr<store::ContentStore> content;
  std::unique_ptr<store::MetadataDb> metadata;
};

// Creates the root if needed and opens the content store and metadata.db.
[[nodiscard]] common::Result<OpenedStore> OpenStore(const GlobalOptions& global);

// The snapshotter --snapshotter names. overlayfs falls back to native, with
// a logged warning, where overlay cannot be mounted under the root.
[[nodiscard]] common::Result<std::unique_ptr<snapshot::Snapshotter>> OpenSnapshotter(
    const GlobalOptions& global);

// What a command that brings images into the store (pull, load, copy to
// gantry:) opens: the store and, when it unpacks, the snapshotter.
struct PullTarget {
  OpenedStore opened;
  std::unique_ptr<snapshot::Snapshotter> snapshotter;  // null when not unpacking
  image::PullStore store;                              // the pipeline's view of `opened`
};
[[nodiscard]] common::Result<PullTarget> OpenPullTarget(const GlobalOptions& global, bool unpack);

// Every snapshotter usable on this root, --snapshotter's first: commands
// that look at the whole store (prune, df, umount) see the snapshots of
// both kinds.
struct OpenedSnapshotters {
  std::vector<std::unique_ptr<snapshot::Snapshotter>> owned;
  std::vector<snapshot::Snapshotter*> all;  // the same, as pointers
};
[[nodiscard]] common::Result<OpenedSnapshotters> OpenAllSnapshotters(const GlobalOptions& global);

// Adds what the command did to the store's counters (store::MetadataDb::
// AddCounters), for the metrics of a `gantry serve` on the same root
// (docs/metrics.md). A failure is logged as a warning and does not fail
// the command: its work is done.
void CountInStore(store::MetadataDb& db, std::span<const store::CounterDelta> deltas);

}  // namespace cli
