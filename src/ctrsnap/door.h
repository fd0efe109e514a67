#pragma once
// The snapshotter door: containerd's snapshot lifecycle (the
// containerd.services.snapshots.v1.Snapshots API of a proxy snapshotter)
// over gantry's own snapshotter, so that containerd runs its containers
// on the layers gantry has unpacked, and layers containerd unpacks become
// gantry's. A translation layer, not a second snapshotter: every snapshot
// is a gantry snapshot (snapshot/snapshotter.h); the door keeps only
// containerd's names for them, its parents' names and its labels, in the
// `containerd_snapshots` table of metadata.db (store/metadata.h).
//
//   ctrsnap::Door door(root, *snapshotter, db);
//   // containerd's unpacker, for a layer gantry has committed:
//   door.Prepare("default/7/extract-1 sha256:c1", "",
//                {{"containerd.io/snapshot.ref", "sha256:c1"}});  // AlreadyExists
//   door.List({R"(labels."containerd.io/snapshot.ref"==sha256:c1,parent=="")"}, fn);
//   // fn sees {name "sha256:c1", committed}: containerd adopts it as is
//   // a container on it:
//   door.Prepare("default/8/ctr1", "sha256:c1", {});  // overlay mounts
//
// Names. containerd passes keys as "<namespace>/<n>/<key>" (ctrsnap/names.h).
//   - Active snapshots and views are gantry snapshots named by containerd's
//     key itself (never "extract-…", so gantry's GC treats them as users
//     of their parents, like a bundle).
//   - A Commit whose snapshot.ref label (or name) is a chainID gantry does
//     not have commits the gantry snapshot under the bare chainID, so that
//     `gantry pull`, `bundle` and `mount` use it too; when gantry already
//     has that chain on the same parent, the new one is dropped and
//     containerd's name maps to gantry's. Other commits keep containerd's
//     name.
//   - The remote-snapshot protocol: a Prepare or View whose snapshot.ref
//     names a chain gantry has committed on the parent containerd gives
//     answers AlreadyExists (creating nothing) and holds the chain under
//     its bare chainID; containerd then lists the backend with
//     `labels."containerd.io/snapshot.ref"==<chain>,parent==<its parent>`
//     (metadata/snapshot.go, createSnapshot) and adopts what List presents:
//     the chain under its own name, its parent under the name containerd
//     asked for when that name stands for the same gantry snapshot. No
//     copy, no download, no apply.
//   - Any name containerd gives (and a gantry snapshot name, for Stat,
//     Mounts and Usage) resolves to a gantry snapshot: through the table,
//     else as itself.
//
// Holds. Every row is a hold: upkeep's garbage collection keeps the
// gantry snapshot a row targets, and its parent chain, however `gantry
// rmi`/`prune` treat images. Remove drops containerd's hold; the gantry
// snapshot goes with it when it is an active snapshot or view, or a
// committed one under containerd's own name, and no other row and no
// gantry child needs it. A chain-named layer stays for gantry's own GC.
// List shows containerd only the snapshots it holds (and, for a filter on
// snapshot.ref, the chain it asks for), so containerd's garbage collection
// never sees, and never removes, gantry's own snapshots.
//
// Errors follow containerd's errdefs: NotFound (key or parent unknown),
// AlreadyExists (key or name taken; a chain already there),
// FailedPrecondition (Commit of a snapshot that is not active; Remove of a
// snapshot with children), InvalidArgument (an empty key, a parent that is
// not committed, a label over 4 KiB, a bad filter, an Update of another
// field than labels).
//
// Locks: each call that changes the store takes the store's shared lock
// (store/store_lock.h) for its own duration only, so that a prune never
// runs between a snapshot's change and its row's; a long-running server
// holds no lock between calls. Calls that change the store are serialised
// within one Door.
//
// Crashes: the gantry snapshot changes first, then the row. A process
// killed between the two leaves an active snapshot under containerd's key
// with no row (a GC root until containerd's next garbage collection calls
// Cleanup, or `gantry snapshot rm`), or a committed chain without a hold
// (for gantry's GC); containerd saw the call fail and never names either.
//
// Thread-safety: all methods may be called from several threads.

#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "snapshot/snapshotter.h"
#include "store/metadata.h"

namespace ctrsnap {

// containerd's view of one snapshot.
struct Info {
  std::string name = {};
  std::string parent = {};  // containerd's name of it; "" for none
  snapshot::SnapshotKind kind = snapshot::SnapshotKind::kActive;
  std::map<std::string, std::string> labels = {};
  int64_t created_ns = 0;
  int64_t updated_ns = 0;
};

class Door {
 public:
  // REQUIRES: `sn` and `db` outlive the Door; `root` is their store root.
  Door(std::filesystem::path root, snapshot::Snapshotter& sn, store::MetadataDb& db);

  [[nodiscard]] common::Result<std::vector<snapshot::MountSpec>> Prepare(
      const std::string& key, const std::string& parent,
      const std::map<std::string, std::string>& labels);
  [[nodiscard]] common::Result<std::vector<snapshot::MountSpec>> View(
      const std::string& key, const std::string& parent,
      const std::map<std::string, std::string>& labels);
  // Errors: NotFound; FailedPrecondition for a committed snapshot.
  [[nodiscard]] common::Result<std::vector<snapshot::MountSpec>> Mounts(const std::string& key);
  [[nodiscard]] common::Status Commit(const std::string& name, const std::string& key,
                                      const std::map<std::string, std::string>& labels);
  [[nodiscard]] common::Status Remove(const std::string& key);
  [[nodiscard]] common::Result<Info> Stat(const std::string& key);
  // containerd's field paths: none or "labels" replace every label,
  // "labels.<key>" sets (or, when absent or empty in `info`, deletes) one.
  [[nodiscard]] common::Result<Info> Update(const Info& info,
                                            const std::vector<std::string>& fieldpaths);
  // The snapshots containerd holds that match `filters` (containerd's
  // syntax, ctrsnap/filter.h), and the chains a snapshot.ref filter asks
  // for; `fn`'s error stops the walk and is returned.
  [[nodiscard]] common::Status List(const std::vector<std::string>& filters,
                                    const std::function<common::Status(const Info&)>& fn);
  [[nodiscard]] common::Result<snapshot::Usage> Usage(const std::string& key);
  // Removes what a crash left: snapshot directories without a row
  // (Snapshotter::Cleanup); rows whose gantry snapshot is gone, and active
  // snapshots and views named by a containerd key that no row names (a
  // Prepare killed between its two steps), both once a minute old.
  [[nodiscard]] common::Status Cleanup();

  const std::string& snapshotter_name() const { return kind_; }

 private:
  common::Result<std::vector<snapshot::MountSpec>> Create(
      const std::string& key, const std::string& parent,
      const std::map<std::string, std::string>& labels, bool view);
  // The gantry snapshot containerd's `name` stands for.
  common::Result<std::string> Resolve(const std::string& name);
  // The row of `name`, or nullopt.
  common::Result<std::optional<store::ContainerdSnapshotRecord>> Row(const std::string& name);
  common::Result<Info> InfoOf(const store::ContainerdSnapshotRecord& row);

  std::filesystem::path root_;
  snapshot::Snapshotter& sn_;
  store::MetadataDb& db_;
  const std::string kind_;  // the gantry snapshotter's name, the table's `snapshotter`
  std::mutex write_mu_;
};

// Checks labels as containerd does (key and value at most 4096 bytes
// together). Errors: InvalidArgument.
[[nodiscard]] common::Status ValidateLabels(const std::map<std::string, std::string>& labels);

}  // namespace ctrsnap
