#pragma once
// Mounting what a Snapshotter returns: the one place gantry turns a
// MountSpec into a mount (gantry mount, gantry bundle, and any later
// service that hands out snapshots). Snapshotters themselves never mount;
// their callers do:
//
//   ASSIGN_OR_RETURN(auto mounts, sn->View(key, top_chain_id));
//   ASSIGN_OR_RETURN(common::MountGuard g,
//                    snapshot::MountAt(mounts, dir, {.readonly = true}));
//   …                    // detached when `g` goes, unless g.release()d
//
// An overlay is mounted with mount(2) when its options fit the one page
// mount(2) copies (PAGE_SIZE - 1 bytes: about a hundred layers under a
// typical store root), and otherwise with the new mount API (fsopen,
// fsconfig, fsmount, move_mount), adding the lower layers one per fsconfig
// call as "lowerdir+" (Linux 6.8). gantry sets no limit on the number of
// layers: the kernel's is overlayfs's OVL_MAX_STACK, 500 lower layers (an
// active snapshot's upper layer does not count).
//
// Mounting needs CAP_SYS_ADMIN. Thread-safety: none needed (each call works
// on its own arguments).

#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "snapshot/snapshotter.h"

namespace snapshot {

struct MountOptions {
  // Mount read-only whatever the spec says (an "ro" option in the spec
  // also does).
  bool readonly = false;
};

// Mounts `mounts` at the existing directory `target`. Snapshotters return
// exactly one mount, and that is what is accepted:
//  - overlay: as described above;
//  - bind: MS_BIND (MS_REC with "rbind"), remounted read-only when read-only
//    (a bind mount ignores MS_RDONLY until remounted).
// Returns the guard that detaches the mount. On error nothing is left
// mounted at `target`. Errors (each a single line naming `target` and, for
// an overlay, how many layers it has): InvalidArgument (not exactly one
// mount, a type other than overlay or bind); FailedPrecondition when the
// kernel cannot stack the layers (more than overlayfs takes, or options
// beyond a page on a kernel without "lowerdir+" or fsopen; the kernel's
// own reason is quoted when it gives one); PermissionDenied without
// CAP_SYS_ADMIN; others mapped from errno.
[[nodiscard]] common::Result<common::MountGuard> MountAt(const std::vector<MountSpec>& mounts,
                                                         const std::filesystem::path& target,
                                                         const MountOptions& options = {});

// The shell line that does what MountAt does for `mount` ("mount -t overlay
// overlay -o lowerdir=…,upperdir=…,workdir=… TARGET", or "mount --rbind SRC
// TARGET" plus a read-only remount for "ro"). The mount(8) of util-linux
// 2.38 passes the options to mount(2), so it cannot run the line of an
// overlay whose options exceed a page.
[[nodiscard]] std::string MountCommand(const MountSpec& mount, const std::filesystem::path& target);

}  // namespace snapshot
