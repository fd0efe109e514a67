// OCI whiteouts: `.wh.NAME` and `DIR/.wh..wh..opq`, translated for an
// overlay lowerdir or applied to a native (full copy) snapshot.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/fd.h"
#include "unpack/tar_apply_internal.h"

namespace unpack::internal {
namespace {

using common::Errc;
using common::ErrnoError;
using common::MakeError;
using common::Result;
using common::Status;
using common::UniqueFd;

Result<std::vector<std::string>> ListDir(int fd) {
  int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return ErrnoError("dup");
  ASSIGN_OR_RETURN(common::UniqueDir d, common::UniqueDir::FromFd(UniqueFd(dup)));
  ::rewinddir(d.get());
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* de = ::readdir(d.get())) {
    std::string_view n = de->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  if (errno != 0) return ErrnoError("read directory");
  return names;
}

}  // namespace

Status Applier::ApplyWhiteout(std::string_view dir, const std::string& name) {
  if (native()) {
    // Delete what the lower layers put there; nothing to do when the
    // parent does not exist (or is not a directory) in the snapshot.
    auto parent = resolver_.OpenDir(dir, /*create=*/false);
    if (!parent) {
      if (parent.error().code == Errc::kNotFound || parent.error().sys_errno == ENOTDIR) return {};
      return std::unexpected(std::move(parent.error()));
    }
    resolver_.Invalidate();
    return RemoveAllAt(parent->get(), name, resolver_.root_dev());
  }

  // Overlay: the lower layers are not here; record the whiteout as the
  // 0/0 character device overlayfs reads, replacing whatever this layer put
  // under that name before.
  ASSIGN_OR_RETURN(int pfd, Parent(dir));
  TRY(Settle(pfd, name));
  struct stat st {};
  if (::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) return {};
    TRY(RemoveExisting(pfd, name));
  } else if (errno != ENOENT) {
    return ErrnoError("stat `" + DisplayPath(name) + "`");
  }
  if (::mknodat(pfd, name.c_str(), S_IFCHR, makedev(0, 0)) != 0) {
    if (errno == EPERM)
      return MakeError(Errc::kPermissionDenied,
                       "create overlay whiteout: operation not permitted (needs CAP_MKNOD "
                       "before Linux 5.8)");
    return ErrnoError("create overlay whiteout");
  }
  return {};
}

Status Applier::ApplyOpaque(std::string_view dir) {
  TRY(SettleAll());  // the directories it creates may be pending files
  ASSIGN_OR_RETURN(UniqueFd where, resolver_.OpenDir(dir, /*create=*/true));
  int fd = ::openat(where.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open opaque directory");
  UniqueFd d(fd);
  if (!native()) return SetOpaqueXattr(d.get());
  resolver_.Invalidate();
  ASSIGN_OR_RETURN(bool kept, PruneLower(d.get()));
  (void)kept;
  return {};
}

Status Applier::SetOpaqueXattr(int dir_fd) {
  // Without privileges trusted.* cannot be written; user.overlay.* is what
  // overlayfs reads when mounted with `userxattr` (rootless, in a userns).
  const char* name = options_.privileged ? "trusted.overlay.opaque" : "user.overlay.opaque";
  if (::fsetxattr(dir_fd, name, "y", 1, 0) != 0)
    return ErrnoError(std::string("mark directory opaque (") + name + ")");
  return {};
}

// An opaque directory hides everything the lower layers had in it. In a
// native snapshot that content is physically here, mixed with what this
// layer already wrote (the marker may come after its siblings), so the
// layer's own inodes are kept and the rest removed. A lower directory
// survives only as the parent of something this layer wrote, as it would
// when overlayfs shows this layer's copy of it.
Result<bool> Applier::PruneLower(int fd) {
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(fd));
  bool kept_any = false;
  for (const std::string& n : names) {
    struct stat st {};
    if (::fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoError("stat `" + DisplayPath(n) + "`");
    }
    if (st.st_dev != resolver_.root_dev())
      return ErrnoError("prune `" + DisplayPath(n) + "`: refusing to cross a mount point", EXDEV);
    const bool ours = layer_inodes_.contains(st.st_ino);
    if (S_ISDIR(st.st_mode)) {
      int cfd = ::openat(fd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd < 0) return ErrnoError("open `" + DisplayPath(n) + "`");
      UniqueFd child(cfd);
      ASSIGN_OR_RETURN(bool inner, PruneLower(child.get()));
      if (ours || inner) {
        kept_any = true;
        continue;
      }
      if (::unlinkat(fd, n.c_str(), AT_REMOVEDIR) != 0)
        return ErrnoError("remove directory `" + DisplayPath(n) + "`");
    } else if (ours) {
      kept_any = true;
    } else if (::unlinkat(fd, n.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoError("remove `" + DisplayPath(n) + "`");
    }
  }
  return kept_any;
}

}  // namespace unpack::internal
