#pragma once
// `gantry mount IMAGE DIR` and `gantry umount DIR` as library calls: an
// image's rootfs, read-only, as a view snapshot of its top layer mounted at
// DIR (the image is unpacked first when it is not, as `ctr images mount`
// does), and its removal.
//
//   ASSIGN_OR_RETURN(std::string key, bundle::MountImage(content, db, *sn, record, dir));
//   …
//   TRY(bundle::UnmountImage(dir, snapshotters));
//
// The view is keyed MountSnapshotKey(DIR) and labelled io.gantry.mount=DIR
// and io.gantry.image=NAME, so UnmountImage finds it from the directory
// alone and garbage collection keeps the image's layers while it exists
// (image/conventions.h). Mounting needs CAP_SYS_ADMIN.
//
// Locking: MountImage holds store::StoreLock shared on the store's root,
// as a pull does, for the whole call: a prune cannot run between the
// unpack and the view that then keeps the layers. REQUIRES: the calling
// thread holds no StoreLock on that root (StoreLock's rule). UnmountImage
// takes no lock: it only removes a view, which can make layers collectable
// but never makes a running prune delete anything in use.
//
// Error messages carry the command's context ("mount NAME: …", "umount:
// …"), as `gantry mount` prints them.

#include <atomic>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "common/error.h"
#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace bundle {

// Label of a mount's view: the directory it is mounted on. (The image's
// name is in kSnapshotLabelImage, as for a bundle.)
inline constexpr std::string_view kSnapshotLabelMount = "io.gantry.mount";

// "mount-" + the first 16 hex digits of sha256(absolute DIR).
// REQUIRES: `abs_dir` is absolute and normalised (as fs::canonical).
[[nodiscard]] std::string MountSnapshotKey(const std::filesystem::path& abs_dir);

struct MountImageOptions {
  // Polled while waiting for the store lock and while unpacking. May be null.
  const std::atomic<bool>* cancel = nullptr;
  // Called before the image is unpacked (not when it is unpacked already).
  std::function<void()> on_unpack{};
};

// Mounts the image `record` names read-only at `dir` (an existing
// directory), on a view in `sn`; it stays mounted until UnmountImage.
// Returns the view's key. Errors: AlreadyExists when `dir` has a gantry
// mount already; Cancelled; those of image::LoadImage, image::Unpack, the
// snapshotter and snapshot::MountAt (the view is removed again then).
// REQUIRES: `dir` absolute and canonical.
[[nodiscard]] common::Result<std::string> MountImage(store::ContentStore& content,
                                                     store::MetadataDb& metadata,
                                                     snapshot::Snapshotter& sn,
                                                     const store::ImageRecord& record,
                                                     const std::filesystem::path& dir,
                                                     const MountImageOptions& options = {});

// Unmounts `dir` and removes its view from whichever of `snapshotters`
// holds it. A `dir` that is no longer mounted (a reboot, a manual umount)
// only has its view removed, with a warning. Errors: NotFound when no view
// is labelled for `dir`; the umount's (mapped from errno); the
// snapshotter's. REQUIRES: `dir` absolute and normalised
// (fs::weakly_canonical).
[[nodiscard]] common::Status UnmountImage(const std::filesystem::path& dir,
                                          std::span<snapshot::Snapshotter* const> snapshotters);

}  // namespace bundle
