#pragma once
// Opening paths inside a directory tree that may be hostile (an image's
// layer or rootfs), never leaving it: chroot semantics without chroot.
//
//   ASSIGN_OR_RETURN(common::UniqueFd fd,
//                    common::OpenInRoot(root_fd, "etc/passwd", {}));
//
// Symlinks met on the way are followed *inside* the root: absolute targets
// and ".." are interpreted against the root, so a link to "/" or
// "../../.." resolves to the root itself, never above it. Magic links
// (/proc/self/...) are never followed. openat2(RESOLVE_IN_ROOT) does this
// in one call; where the kernel lacks it (ENOSYS, or a seccomp filter's
// EPERM; probed once per process) or the caller disables it, an equivalent
// walk opens one component at a time with O_NOFOLLOW and splices symlink
// targets itself.
//
// Used by the tar applier (unpack), the bundle's user lookup and the
// runtime's mount targets (ociruntime).
//
// Thread-safety: the functions are safe to call concurrently.

#include <string>
#include <string_view>

#include "common/error.h"
#include "common/fd.h"

namespace common {

struct InRootOptions {
  // false forces the component walk (kernels before 5.6, tests).
  bool use_openat2 = true;
  // Refuse to enter another file system below the root (a directory whose
  // st_dev differs from the root's): layers and image rootfs have no
  // mounts, a container's rootfs does.
  bool no_xdev = true;
  enum class Create {
    kNothing,     // missing components are NotFound
    kDirs,        // missing components are created as 0755 directories
    kDirsAndFile  // the same, but a missing last component is an empty 0644 file
  };
  Create create = Create::kNothing;
  // The result must be a directory (ENOTDIR otherwise).
  bool directory = false;
};

// An O_PATH fd of `path` below `root_fd` (not owned). `path` is relative to
// the root; leading "/" are ignored and "" names the root itself. With
// Create, missing components are created inside the root, including the
// target of a dangling symlink (as runc's securejoin does).
// Errors (the message names `path`): NotFound; InvalidArgument when the
// tree's own layout is at fault (a symlink loop, a file used as a
// directory, a path into another file system, a name too long); others
// mapped from errno.
[[nodiscard]] Result<UniqueFd> OpenInRoot(int root_fd, std::string_view path,
                                          const InRootOptions& options);

// A path or name fit for a one-line error message: control bytes, '`' and
// '\' escaped as \xNN, names over 200 bytes shortened in the middle.
[[nodiscard]] std::string DisplayPath(std::string_view raw);

// "/proc/self/fd/N": the path that names an O_PATH fd for calls that take
// a path (mount(2), open of an O_PATH fd).
[[nodiscard]] std::string FdPath(int fd);

}  // namespace common
