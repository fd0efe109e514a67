#pragma once
// Snapshotters: the directories that hold unpacked layers and containers'
// writable layers, with containerd's lifecycle.
//
//   auto sn = snapshot::Open(root, {.kind = snapshot::Kind::kOverlay});
//   // an unpacked layer: a writable snapshot on its parent, filled, committed
//   TRY(sn->Prepare("extract-1", parent_chain_id));
//   ASSIGN_OR_RETURN(auto dir, sn->WritableDir("extract-1"));   // apply the tar here
//   TRY(sn->Commit(chain_id, "extract-1"));
//   // a container: a writable snapshot on the image's top chainID
//   ASSIGN_OR_RETURN(auto mounts, sn->Prepare("ctr-1", top_chain_id));
//   // ociruntime mounts `mounts` (overlay lowerdir/upperdir/workdir)
//   TRY(sn->Remove("ctr-1"));
//
// Kinds of snapshot: active (writable, named by a key, from Prepare), view
// (read-only, from View), committed (read-only, named, from Commit; can be a
// parent). Names and keys share one namespace per snapshotter kind (an
// overlay and a native snapshot may both be named by one chainID). A
// snapshot with children
// cannot be removed.
//
// On disk: <root>/snapshots/<id>/fs (contents) and <root>/snapshots/<id>/work
// (overlay workdir); ids come from SQLite AUTOINCREMENT and are never
// reused, so a directory never means two snapshots. Metadata lives in the
// `snapshots` table of <root>/metadata.db (docs/snapshots.md). Rows change
// in transactions; directories are created before a row points at them and
// deleted only after the row is gone, so a crash leaves at worst an orphan
// directory, which Cleanup() removes.
//
// Durability without a sync on every commit: Commit records the snapshot as
// unsynced, with the kernel's boot id. A process killed (even -9) loses
// nothing the kernel has accepted, so within one boot an unsynced snapshot
// is as good as a synced one. Only a crash of the machine can lose its
// files, and that changes the boot id: Settle(), run by Open, removes every
// snapshot committed in an earlier boot and never synced (and the snapshots
// built on it), so a torn layer is never used; its image is unpacked again.
// Settle also syncfs()es the file system once snapshots of this boot are
// `settle_age` old (written back by then, so the sync is cheap) and clears
// their marks. Unpacking thus costs no syncfs on its critical path.
//
// The snapshotter returns mounts as data and never mounts anything itself
// (except the one overlay probe in Open); snapshot/mount.h mounts them.
//
// Thread-safety: all methods may be called concurrently from threads and
// processes sharing the root.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace snapshot {

enum class Kind { kOverlay, kNative };
std::string_view KindName(Kind k);  // "overlayfs" | "native"

enum class SnapshotKind { kActive, kView, kCommitted };
std::string_view SnapshotKindName(SnapshotKind k);  // "active" | "view" | "committed"

// The label (any value) of an extract snapshot: an active snapshot a layer
// is applied into, then committed or removed by the process that prepared
// it (image/unpacker.cc). Its Prepare waits for no sync: a machine crash
// ends that process, and losing the row then leaves an orphan directory,
// which Cleanup removes. Every other Prepare is synced (a container's
// writable snapshot outlives a crash).
inline constexpr std::string_view kLabelExtract = "io.gantry.extract";

struct Info {
  int64_t id = 0;
  std::string name;    // key (active/view) or name (committed)
  std::string parent;  // "" for none
  SnapshotKind kind = SnapshotKind::kActive;
  std::map<std::string, std::string> labels;
  int64_t created_ns = 0;
  int64_t updated_ns = 0;
  // False for a committed snapshot not yet known to be on disk (see the
  // durability note above); true for every other.
  bool synced = true;
};

struct SettleResult {
  int removed = 0;  // lost in a crash of the machine (with their descendants)
  int synced = 0;   // marks cleared after one syncfs
};

struct Usage {
  int64_t bytes = 0;   // allocated blocks of this snapshot's own fs dir
  int64_t inodes = 0;  // distinct inodes in it
};

// A mount as the runtime-spec describes it (type, source, options); the
// target is the caller's.
struct MountSpec {
  std::string type;  // "overlay" | "bind"
  std::string source;
  std::vector<std::string> options;
  // "lowerdir=…,upperdir=…,workdir=…" style data (overlay) or "" (bind).
  std::string Data() const;
};

struct Options {
  Kind kind = Kind::kOverlay;
  // When kind is kOverlay and overlayfs cannot be mounted here, fall back to
  // native with a logged warning (the default), or fail.
  bool fallback_to_native = true;
  // Run Settle() in Open (every command does; tests may look before).
  bool settle = true;
  // How old an unsynced snapshot of this boot must be before Settle
  // syncs the file system for it. 0: every one.
  std::chrono::nanoseconds settle_age = std::chrono::seconds(30);
  // The kernel's boot id; "" reads /proc/sys/kernel/random/boot_id. Tests
  // set another to act out a reboot.
  std::string boot_id = {};
};

class Snapshotter {
 public:
  virtual ~Snapshotter() = default;
  virtual Kind kind() const = 0;

  // Creates an active snapshot on `parent` (a committed snapshot, or "" for
  // none) and returns how to mount it. Errors: AlreadyExists (key taken);
  // NotFound / FailedPrecondition (parent missing or not committed).
  [[nodiscard]] virtual common::Result<std::vector<MountSpec>> Prepare(
      const std::string& key, const std::string& parent,
      const std::map<std::string, std::string>& labels = {}) = 0;
  // A read-only snapshot of `parent`. Same errors as Prepare.
  [[nodiscard]] virtual common::Result<std::vector<MountSpec>> View(
      const std::string& key, const std::string& parent,
      const std::map<std::string, std::string>& labels = {}) = 0;
  // Mounts of an active or view snapshot. Errors: NotFound;
  // FailedPrecondition for a committed one.
  [[nodiscard]] virtual common::Result<std::vector<MountSpec>> Mounts(const std::string& key) = 0;
  // The directory an active snapshot's own changes live in (where a layer
  // is applied). Errors: NotFound; FailedPrecondition when not active.
  [[nodiscard]] virtual common::Result<std::filesystem::path> WritableDir(
      const std::string& key) = 0;
  // Turns active snapshot `key` into committed snapshot `name`, labelled
  // with `labels` (the active snapshot's labels are dropped). With
  // `new_parent` set, the parent becomes that committed snapshot: only for
  // an active snapshot prepared without a parent, and only where layers are
  // independent directories (overlay), which lets layers be unpacked in
  // parallel and committed in chain order. Errors: NotFound; AlreadyExists
  // (name taken); FailedPrecondition.
  [[nodiscard]] virtual common::Status Commit(
      const std::string& name, const std::string& key,
      const std::map<std::string, std::string>& labels = {},
      const std::optional<std::string>& new_parent = {}) = 0;
  // Removes a snapshot and its directory. Errors: NotFound;
  // FailedPrecondition when it has children.
  [[nodiscard]] virtual common::Status Remove(const std::string& key) = 0;
  [[nodiscard]] virtual common::Result<Info> Stat(const std::string& key) = 0;
  [[nodiscard]] virtual common::Result<std::vector<Info>> List() = 0;
  [[nodiscard]] virtual common::Result<Usage> GetUsage(const std::string& key) = 0;
  // Whether layers can be applied without their parent's contents
  // (overlay: whiteouts are markers) — see Commit's new_parent.
  virtual bool independent_layers() const = 0;
  // Removes directories under snapshots/ that no row refers to (leftovers of
  // a crash). Returns how many were removed.
  [[nodiscard]] virtual common::Result<int> Cleanup() = 0;
  // See the durability note above. Open runs it; a long-running process
  // (gantry serve) also calls it from time to time. Safe to run
  // concurrently with every other method, in any number of processes.
  [[nodiscard]] virtual common::Result<SettleResult> Settle() = 0;
  // The fs directory of any snapshot (for a read-only walk, e.g. tests).
  [[nodiscard]] virtual common::Result<std::filesystem::path> FsDir(const std::string& key) = 0;
};

// Opens the snapshotter of `root`. The overlay probe (a real overlay mount
// in a scratch directory under root) runs once per process and root, and
// not at all while <root>/overlay-supported says it succeeded on this
// kernel boot, file system and user namespace (OverlaySupported).
[[nodiscard]] common::Result<std::unique_ptr<Snapshotter>> Open(const std::filesystem::path& root,
                                                                Options options = {});

// Every snapshotter whose snapshots can exist on `root`: `preferred` first
// (falling back to native as Open does), then the other kind when it can
// be used here (overlay only where it can be mounted). For whoever looks
// at the whole store: garbage collection, disk usage.
[[nodiscard]] common::Result<std::vector<std::unique_ptr<Snapshotter>>> OpenAll(
    const std::filesystem::path& root, Kind preferred);

// Whether overlayfs can be mounted with upper/work dirs under `root` (as this
// process). Cached per root for the process; a success is also kept in
// <root>/overlay-supported (kernel release and boot id, the root's file
// system type and device, the user namespace), which later processes with
// CAP_SYS_ADMIN read instead of probing. A failure is not kept.
bool OverlaySupported(const std::filesystem::path& root);

}  // namespace snapshot
