#include "bundle/image_mount.h"

#include <sys/mount.h>

#include <cerrno>

#include "bundle/bundle.h"
#include "bundle/top_chain_internal.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/log.h"
#include "snapshot/mount.h"
#include "store/store_lock.h"

namespace bundle {

namespace fs = std::filesystem;
using common::Errc;

std::string MountSnapshotKey(const fs::path& abs_dir) {
  return "mount-" + common::Digest::Sha256Of(abs_dir.string()).hex().substr(0, 16);
}

common::Result<std::string> MountImage(store::ContentStore& content, store::MetadataDb& metadata,
                                       snapshot::Snapshotter& sn, const store::ImageRecord& record,
                                       const fs::path& dir, const MountImageOptions& options) {
  const std::string what = "mount " + record.name;
  ASSIGN_OR_RETURN(store::StoreLock lock,
                   common::Wrap(store::StoreLock::Shared(content.root(), options.cancel), "mount"));
  ASSIGN_OR_RETURN(internal::TopChain top,
                   common::Wrap(internal::UnpackedTopChain(
                                    content, metadata, sn, record,
                                    {.cancel = options.cancel, .on_unpack = options.on_unpack}),
                                what));

  std::string key = MountSnapshotKey(dir);
  auto mounts = sn.View(key, top.top,
                        {{std::string(kSnapshotLabelMount), dir.string()},
                         {std::string(kSnapshotLabelImage), record.name}});
  if (!mounts) {
    if (mounts.error().code == Errc::kAlreadyExists)
      return common::MakeError(Errc::kAlreadyExists,
                               what + ": `" + dir.string() +
                                   "` already has a gantry mount (snapshot `" + key +
                                   "`); umount it first");
    return std::unexpected(mounts.error().Wrap(what));
  }
  auto guard = snapshot::MountAt(*mounts, dir, {.readonly = true});
  if (!guard) {
    if (auto rm = sn.Remove(key); !rm)
      LOG(Warn) << "remove view failed" << common::Kv("key", key)
                << common::Kv("error", rm.error().message);
    return std::unexpected(guard.error().Wrap(what));
  }
  (void)guard->release();  // stays mounted until UnmountImage
  return key;
}

common::Status UnmountImage(const fs::path& dir,
                            std::span<snapshot::Snapshotter* const> snapshotters) {
  const std::string key = MountSnapshotKey(dir);
  snapshot::Snapshotter* owner = nullptr;
  for (snapshot::Snapshotter* sn : snapshotters) {
    auto info = sn->Stat(key);
    if (!info) continue;
    auto it = info->labels.find(std::string(kSnapshotLabelMount));
    if (it != info->labels.end() && it->second == dir.string()) owner = sn;
  }
  if (owner == nullptr)
    return common::MakeError(Errc::kNotFound,
                             "umount: `" + dir.string() + "` is not a gantry mount");
  if (::umount2(dir.c_str(), UMOUNT_NOFOLLOW) != 0) {
    // EINVAL: not mounted any more (a reboot, a manual umount): the view is
    // still ours to remove.
    if (errno != EINVAL) return common::ErrnoError("umount `" + dir.string() + "`");
    LOG(Warn) << "not mounted; removing the view" << common::Kv("dir", dir.string());
  }
  return common::Wrap(owner->Remove(key), "umount");
}

}  // namespace bundle
