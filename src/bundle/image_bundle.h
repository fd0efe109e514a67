#pragma once
// `gantry bundle IMAGE DIR` and `gantry bundle rm DIR` as library calls: an
// OCI runtime bundle (bundle.h) from an image of the store, on a new active
// snapshot of its top layer (the image is unpacked first when it is not),
// and its removal.
//
//   ASSIGN_OR_RETURN(bundle::ImageBundle b,
//                    bundle::CreateImageBundle(content, db, *sn, record, dir, {.spec = opts}));
//   // b.info.dir/config.json, b.info.rootfs; b.snapshot_key
//   …
//   TRY(bundle::RemoveImageBundle(dir, root, snapshot::Kind::kOverlay));
//
// Locking: both hold store::StoreLock shared on the store's root, as a pull
// does, for the whole call: a prune cannot run between the unpack and the
// Prepare whose snapshot then keeps the layers (it is a garbage collection
// root, image/conventions.h). REQUIRES: the calling thread holds no
// StoreLock on that root (StoreLock's rule).
//
// Error messages carry the command's context ("bundle NAME: …", "bundle rm:
// …"), as `gantry bundle` prints them.

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>

#include "bundle/bundle.h"
#include "bundle/spec.h"
#include "common/error.h"
#include "image/unpacker.h"
#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace bundle {

struct ImageBundleOptions {
  BundleOptions spec{};  // MakeSpec's options; no_mount and userns as bundle.h and spec.h say
  // Polled while waiting for the store lock and while unpacking. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Called once the image had to be unpacked (not when it was already).
  std::function<void(const image::UnpackResult&)> on_unpacked{};
};

struct ImageBundle {
  BundleInfo info;
  std::string snapshot_key;  // BundleSnapshotKey(dir)
};

// Makes the bundle at `dir` from `record`: its snapshot keyed
// BundleSnapshotKey(dir), labelled io.gantry.bundle=DIR and
// io.gantry.image=NAME, on the image's top chainID in `sn`; the state file
// names content.root() (made absolute) as its store. With spec.userns the
// rootfs is chown'd to the host range (ShiftOwnership). On error nothing is
// left: the snapshot is removed and the directory undone (PendingBundle).
// Errors: AlreadyExists when `dir` has a gantry bundle already (the message
// says how to remove it); Cancelled; those of image::LoadImage,
// image::Unpack, PendingBundle, ShiftOwnership, MakeSpec and the
// snapshotter. REQUIRES: `dir` absolute and normalised
// (fs::weakly_canonical).
[[nodiscard]] common::Result<ImageBundle> CreateImageBundle(store::ContentStore& content,
                                                            store::MetadataDb& metadata,
                                                            snapshot::Snapshotter& sn,
                                                            const store::ImageRecord& record,
                                                            const std::filesystem::path& dir,
                                                            const ImageBundleOptions& options);

// Removes the bundle at `dir` (RemoveBundle). Its snapshot is looked up in
// the store its state file names, whatever `root` is; without a state file
// (removed by hand), in the snapshotters of `root` (`preferred` first) for
// the one keyed and labelled for `dir`. When the state's store is gone,
// only the bundle's files are removed (with a warning). The store lock is
// taken only when there is a snapshot to remove. Errors: those of
// ReadBundleState, snapshot::Open and RemoveBundle. REQUIRES: `dir`
// absolute and normalised.
[[nodiscard]] common::Status RemoveImageBundle(const std::filesystem::path& dir,
                                               const std::filesystem::path& root,
                                               snapshot::Kind preferred);

}  // namespace bundle
