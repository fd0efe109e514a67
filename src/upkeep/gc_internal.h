#pragma once
// The mark phase shared by garbage collection (gc.cc) and disk usage
// (usage.cc): what each image record refers to, what is kept, and what a
// collection would remove. Everything here reads; nothing writes. The rules
// are those of image/conventions.h.

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace upkeep::internal {

// Errors that mean "this part of the image cannot be read" (missing,
// corrupt, unparsable, over the size limit), as opposed to errors that mean
// "the store cannot be read right now" (permission, I/O), which must stop
// a collection or a check: acting on a partial mark deletes live data.
[[nodiscard]] bool Unreadable(const common::Error& e);

// What one image record refers to.
struct ImageRefs {
  std::set<common::Digest> blobs;     // target, manifests, config(s), layers
  std::set<std::string> chains;       // chainIDs of its layers and its recorded top chainID
  std::set<std::string> tops;         // its top chainID(s): label and config-derived
  std::string top;                    // preferred top chainID ("" when none is known)
  std::string config;                 // config digest ("" when unknown)
  std::vector<std::string> warnings;  // parts that could not be read
};

// Reads the image's manifest(s) and config from `content`. Unreadable parts
// (missing, corrupt, unparsable blobs) become warnings: what they would have
// protected is not known. Errors: only failures after which the mark would
// be unsafe to act on (permission denied, I/O errors).
[[nodiscard]] common::Result<ImageRefs> RefsOf(const store::ContentStore& content,
                                               const store::ImageRecord& record);

// What metadata.db and the content store hold.
struct StoreState {
  std::vector<store::ImageRecord> images;
  std::set<std::string> leased_content;    // digest strings
  std::set<std::string> leased_snapshots;  // snapshot keys
  // Snapshots containerd holds through the snapshotter door
  // (ctrsnap/door.h): roots until containerd removes them.
  std::set<std::string> containerd_snapshots;  // gantry snapshot names
  // Image names some owner pins (store::PinRecord): `all` keeps them.
  std::set<std::string> pinned;
  std::map<common::Digest, store::BlobRecord> blob_rows;
  std::set<common::Digest> blob_files;
};

// Reads the state through `db`, a store::MetadataDb or a store::Txn (the
// two have the same read operations), so a collection can read and delete
// in one transaction.
template <class Db>
[[nodiscard]] common::Result<StoreState> ReadState(Db& db, const store::ContentStore& content) {
  StoreState s;
  ASSIGN_OR_RETURN(s.images, db.ListImages());
  ASSIGN_OR_RETURN(std::vector<std::string> lc, db.LeasedResources(store::kLeaseContent));
  ASSIGN_OR_RETURN(std::vector<std::string> ls, db.LeasedResources(store::kLeaseSnapshot));
  s.leased_content.insert(lc.begin(), lc.end());
  s.leased_snapshots.insert(ls.begin(), ls.end());
  ASSIGN_OR_RETURN(std::vector<store::ContainerdSnapshotRecord> held, db.ListContainerdSnapshots());
  for (const auto& h : held) s.containerd_snapshots.insert(h.target);
  ASSIGN_OR_RETURN(std::vector<store::PinRecord> pins, db.ListPins());
  for (const auto& p : pins) s.pinned.insert(p.name);
  ASSIGN_OR_RETURN(std::vector<store::BlobRecord> rows, db.ListBlobs());
  for (auto& r : rows) s.blob_rows.emplace(r.digest, std::move(r));
  ASSIGN_OR_RETURN(std::vector<common::Digest> files, content.List());
  s.blob_files.insert(files.begin(), files.end());
  return s;
}

// The snapshots of one snapshotter.
struct SnapshotterState {
  snapshot::Snapshotter* snapshotter = nullptr;
  std::vector<snapshot::Info> infos;
};
[[nodiscard]] common::Result<std::vector<SnapshotterState>> ReadSnapshots(
    std::span<snapshot::Snapshotter* const> snapshotters);

// An unpack's scratch snapshot: active or view, labelled io.gantry.extract=1
// (or keyed "extract-…").
[[nodiscard]] bool IsExtract(const snapshot::Info& info);
// A bundle's or a mount's snapshot: active or view and not an extract one.
[[nodiscard]] bool IsUser(const snapshot::Info& info);

// Refs of every image in `images`, by name.
[[nodiscard]] common::Result<std::map<std::string, ImageRefs>> RefsOfAll(
    const store::ContentStore& content, const std::vector<store::ImageRecord>& images);

// Active snapshots and views (not extract ones) on the image's top chainID,
// across every snapshotter: what makes an image "in use".
[[nodiscard]] int UsersOf(const ImageRefs& refs, const std::vector<SnapshotterState>& snaps);

struct Plan {
  std::vector<std::string> untag;             // images `all` removes (not in use)
  std::set<common::Digest> kept_blobs;        // reachable or leased
  std::vector<common::Digest> garbage_blobs;  // sorted
  // Parallel to the SnapshotterState list: what each keeps and removes.
  struct Snapshots {
    std::set<std::string> kept;
    std::vector<snapshot::Info> remove;  // children before parents
  };
  std::vector<Snapshots> snapshots;
};

// The collection `state` and `snaps` call for. With `all`, images no
// active snapshot or view uses are dropped from the roots first.
[[nodiscard]] Plan MakePlan(const StoreState& state, const std::map<std::string, ImageRefs>& refs,
                            const std::vector<SnapshotterState>& snaps, bool all);

// Ingest files that CleanIngest(min_age) would remove now: not locked by a
// writer and not written to for `min_age`.
struct IngestEstimate {
  int files = 0;  // removable
  int64_t bytes = 0;
  int total_files = 0;  // every ingest file
  int64_t total_bytes = 0;
};
[[nodiscard]] common::Result<IngestEstimate> EstimateIngest(const store::ContentStore& content,
                                                            std::chrono::seconds min_age);

}  // namespace upkeep::internal
