#pragma once
// OCI runtime bundles on disk: DIR/config.json plus DIR/rootfs, the rootfs
// being an active snapshot mounted there (or, with no_mount, left for the
// caller to mount).
//
//   // the caller prepares the snapshot, labelled so that `rm` can find it:
//   std::string key = bundle::BundleSnapshotKey(dir);
//   ASSIGN_OR_RETURN(auto mounts, sn->Prepare(key, top_chain_id,
//                    {{std::string(bundle::kSnapshotLabelBundle), dir.string()}}));
//   ASSIGN_OR_RETURN(auto pending, bundle::PendingBundle::Begin(dir, mounts, opts));
//   ASSIGN_OR_RETURN(auto spec, bundle::MakeSpec(img, bopts, pending.rootfs_view()));
//   ASSIGN_OR_RETURN(bundle::BundleInfo info, pending.Commit(spec));
//   …
//   ASSIGN_OR_RETURN(auto state, bundle::ReadBundleState(dir));
//   TRY(bundle::RemoveBundle(dir, sn.get(), state->snapshot));
//
// On disk (DIR absolute; see docs/bundles.md):
//   DIR/config.json          the runtime spec (written last, atomically)
//   DIR/rootfs/              the snapshot mounted (overlay, or a bind mount
//                            for the native snapshotter and layerless images);
//                            empty with no_mount
//   DIR/rootfs.mounts.json   no_mount only: {"target", "mounts", "commands"},
//                            the snapshot's mounts and the shell lines that
//                            mount them at DIR/rootfs; the same mounts are in
//                            config.json's annotation io.gantry.rootfs.mounts
//                            (a JSON array of {type, source, options}), since
//                            a runtime does not accept a mount on "/"
//   DIR/.gantry-bundle.json  BundleState below, written before anything is
//                            mounted, so that `gantry bundle rm` can undo a
//                            bundle whose creation was killed midway.
//
// The snapshot is the caller's: it is keyed BundleSnapshotKey(DIR) and
// labelled io.gantry.bundle=DIR, so a store holds at most one bundle
// snapshot per directory, garbage collection keeps its layers, and removal
// can check that the snapshot it is about to delete is this bundle's.
//
// Mounting needs CAP_SYS_ADMIN. Thread-safety: none needed (every function
// works on its own arguments); two processes creating a bundle in one DIR
// are serialised by the snapshot key, which only one of them can prepare.

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "snapshot/snapshotter.h"

namespace bundle {

inline constexpr std::string_view kBundleConfigFile = "config.json";
inline constexpr std::string_view kBundleRootfsDir = "rootfs";
inline constexpr std::string_view kBundleStateFile = ".gantry-bundle.json";
inline constexpr std::string_view kBundleMountsFile = "rootfs.mounts.json";
inline constexpr std::string_view kAnnotationRootfsMounts = "io.gantry.rootfs.mounts";
// Labels of a bundle's snapshot: the bundle directory and the image name.
inline constexpr std::string_view kSnapshotLabelBundle = "io.gantry.bundle";
inline constexpr std::string_view kSnapshotLabelImage = "io.gantry.image";
inline constexpr std::string_view kBundleKeyPrefix = "bundle-";

// "bundle-" + the first 16 hex digits of sha256(absolute DIR).
// REQUIRES: `abs_dir` is absolute and normalised (as fs::weakly_canonical).
[[nodiscard]] std::string BundleSnapshotKey(const std::filesystem::path& abs_dir);

// DIR/.gantry-bundle.json.
struct BundleState {
  std::filesystem::path dir;   // absolute bundle directory
  std::filesystem::path root;  // store root holding the snapshot
  std::string snapshotter;     // snapshot::KindName: "overlayfs" | "native"
  std::string snapshot;        // the snapshot key
  std::string image;           // the image name it was made from
  bool mounted = false;        // DIR/rootfs is mounted by gantry (not no_mount)
  bool created_dir = false;    // DIR itself was created for the bundle
};

struct CreateBundleOptions {
  bool no_mount = false;
  // Recorded in the state file for RemoveBundle's caller.
  std::filesystem::path store_root{};
  snapshot::Kind snapshotter = snapshot::Kind::kOverlay;
  std::string snapshot_key{};
  std::string image{};
};

struct BundleInfo {
  std::filesystem::path dir, config, rootfs;
  bool mounted = false;
  // no_mount: the shell lines that mount the rootfs (also in
  // rootfs.mounts.json); empty otherwise.
  std::vector<std::string> mount_commands;
};

// A bundle being created: Begin() lays out DIR and makes the snapshot's
// contents readable (for MakeSpec's /etc/passwd lookups), Commit() writes
// config.json. Destroying it uncommitted undoes Begin: unmounts and removes
// what it created (never a DIR or rootfs/ that existed before). Move-only.
class PendingBundle {
 public:
  // Creates DIR when missing and DIR/rootfs, writes the state file, and
  // mounts `mounts` at DIR/rootfs. With no_mount, nothing stays mounted:
  // a bind mount's source is read directly, an overlay is mounted read-only
  // at DIR/rootfs until Commit. Errors: InvalidArgument (DIR not absolute,
  // not exactly one mount, an unknown mount type); AlreadyExists (DIR holds
  // config.json or a state file); FailedPrecondition (DIR not a directory,
  // DIR/rootfs not an empty directory or already a mount point; an overlay
  // the kernel cannot stack, see snapshot::MountAt); PermissionDenied
  // (mounting without CAP_SYS_ADMIN); others mapped from errno, naming the
  // path.
  [[nodiscard]] static common::Result<PendingBundle> Begin(
      const std::filesystem::path& dir, const std::vector<snapshot::MountSpec>& mounts,
      const CreateBundleOptions& options);

  PendingBundle(PendingBundle&&) noexcept;
  PendingBundle& operator=(PendingBundle&&) noexcept;
  ~PendingBundle();

  // Where the rootfs can be read until Commit (DIR/rootfs, or the bind
  // source with no_mount).
  const std::filesystem::path& rootfs_view() const;

  // With no_mount, adds the annotation io.gantry.rootfs.mounts to `spec`,
  // writes rootfs.mounts.json and unmounts the temporary mount. Then writes
  // config.json atomically. Errors: file-system errors; FailedPrecondition
  // when called twice. After an error the bundle is still pending (and is
  // rolled back on destruction).
  [[nodiscard]] common::Result<BundleInfo> Commit(nlohmann::json spec);

 private:
  struct Impl;
  explicit PendingBundle(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Begin + Commit for a spec that needs nothing from the rootfs.
[[nodiscard]] common::Result<BundleInfo> CreateBundle(
    const std::filesystem::path& dir, const nlohmann::json& spec,
    const std::vector<snapshot::MountSpec>& mounts, const CreateBundleOptions& options);

// DIR/.gantry-bundle.json; nullopt when there is none. Errors: DataLoss for
// a file that is not a valid state; others mapped from errno.
[[nodiscard]] common::Result<std::optional<BundleState>> ReadBundleState(
    const std::filesystem::path& dir);

// Undoes a bundle: unmounts DIR/rootfs (every mount stacked there, whether
// gantry or the user mounted it), removes snapshot `snapshot_key` from `sn`
// (skipped when `sn` is null or the snapshot is gone), then config.json,
// rootfs.mounts.json, rootfs/, the state file, and DIR itself when the
// state says it was created for the bundle and it is empty. Errors:
// NotFound when DIR has neither a state file nor a config.json nor a
// snapshot to remove; FailedPrecondition when DIR/rootfs is busy or not
// empty once unmounted (nothing is removed then), or when the snapshot is
// labelled for another directory; as Snapshotter::Remove.
// REQUIRES: `dir` absolute.
[[nodiscard]] common::Status RemoveBundle(const std::filesystem::path& dir,
                                          snapshot::Snapshotter* sn,
                                          const std::string& snapshot_key);

}  // namespace bundle
