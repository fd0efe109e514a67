#pragma once
// Internals of the OCI runtime shared between the parent side (create,
// runtime_create.cc) and the container's init (runtime_init.cc and the
// setup steps it calls). Not a public interface.
//
// The init is a clone of the `create` process, not a re-executed binary: it
// starts with the parent's parsed Config in its own copy of memory and
// runs every setup step itself before it execs the container's process.
//
//   parent (create)                       init (clone)
//   ─────────────                         ────────────
//   state dir, exec.fifo, cgroups
//   clone[3] (new namespaces, cgroup) ──► waits for 'G'
//   uid/gid maps (+ cgroups for userns)
//   'G' ────────────────────────────────► join cgroups, rlimits, oom,
//                                         cgroupns, hostname,
//                                         mounts, devices, pivot_root,
//                                         sysctls, ro/masked paths, console,
//                                         user, capabilities
//   state.json, pid file, exit  ◄──────── 'R' (or "E<code>:<errno>:<msg>")
//                                         open(exec.fifo, O_WRONLY) blocks
//   `start`: open(exec.fifo, O_RDONLY) ─► writes "0", execve

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/in_root.h"
#include "ociruntime/runtime.h"
#include "ociruntime/runtime_config.h"
#include "ociruntime/runtime_state.h"

namespace ociruntime::rt {

struct InitArgs {
  const Config* config = nullptr;
  const CgroupSet* cgroups = nullptr;
  std::string id;
  bool no_pivot = false;
  bool no_new_keyring = false;
  int sync_fd = -1;        // the init's end of the socketpair
  int state_dir_fd = -1;   // ROOT/ID, holding exec.fifo
  int console_fd = -1;     // connected --console-socket, or -1
  int preserve_fds = 0;    // fds 3 .. 3+N-1 stay open across exec
  int last_cap = 0;        // /proc/sys/kernel/cap_last_cap
  // The init joins its cgroups itself (see JoinCgroupsSelf); false when the
  // parent does it (a new user namespace cannot write the host's files).
  bool join_cgroups = false;
  bool in_unified = false;  // cloned straight into the cgroup2 leaf
  std::vector<int> close_fds;  // parent-only fds, closed first thing
};

// The container's init: never returns. Reports a setup failure to the
// parent over sync_fd and exits 1; after 'R' an exec failure is written to
// stderr and exits 127.
[[noreturn]] void RunInit(const InitArgs& args);

// --- rootfs (runtime_rootfs.cc), run by the init in its mount namespace ---

// Rootfs propagation, the rootfs bind, every config mount in order, /dev
// (devices, symlinks, ptmx), all before pivot_root.
[[nodiscard]] common::Status PrepareRootfs(const Config& c, const CgroupSet& cgroups, bool userns);
// pivot_root(2), or MS_MOVE + chroot with `no_pivot`.
[[nodiscard]] common::Status EnterRootfs(const Config& c, bool no_pivot);
// After pivot_root: sysctls, read-only and masked paths, read-only root,
// the rootfs propagation.
[[nodiscard]] common::Status FinishRootfs(const Config& c);

// --- paths ---

// Opens `path` (absolute inside the root) below `root_fd` as an O_PATH fd
// with chroot semantics (common/in_root.h); the container's own mounts
// (/proc, /dev…) may be crossed. With `create`, missing components are
// created: directories, and the last one as a directory or an empty file
// per `last_is_dir`.
[[nodiscard]] inline common::Result<common::UniqueFd> OpenInRoot(int root_fd,
                                                                 const std::string& path,
                                                                 bool create, bool last_is_dir) {
  using Create = common::InRootOptions::Create;
  return common::OpenInRoot(root_fd, path,
                            {.no_xdev = false,
                             .create = !create     ? Create::kNothing
                                       : last_is_dir ? Create::kDirs
                                                     : Create::kDirsAndFile});
}
// "/proc/self/fd/N", the path mount(2) takes for an fd.
using common::FdPath;

// --- process (runtime_process.cc) ---

[[nodiscard]] common::Status ApplyRlimits(const Process& p);
[[nodiscard]] common::Status ApplyOomScoreAdj(const Process& p);
// The executable for process.args[0], searched in the PATH of process.env
// (runc's rule), in the current root. Errors: NotFound naming the file.
[[nodiscard]] common::Result<std::string> FindExecutable(const Process& p);
// Bounding set, groups, gid, uid, capability sets, ambient set, in that
// order (keeping capabilities across the uid change).
[[nodiscard]] common::Status ApplyUserAndCaps(const Process& p, int last_cap, bool userns);
// The runtime's own permitted set; create fails early when the config asks
// for a capability outside it, naming it.
[[nodiscard]] common::Status CheckCapsAvailable(const Capabilities& caps);
// Creates a pty, sends its master to `console_fd` (SCM_RIGHTS, runc's
// protocol), makes the slave the controlling terminal and stdio, and binds
// it over /dev/console.
[[nodiscard]] common::Status SetupConsole(int console_fd, const Process& p);

// --- lifecycle, parent side (runtime_create.cc, runtime_ops.cc) ---

// Create's work; the init is left a child of the calling process (Run
// waits for it). On error nothing is left behind.
[[nodiscard]] common::Result<State> CreateContainer(const RuntimeOptions& ro,
                                                    const std::string& id,
                                                    const CreateOptions& co);
// Opens exec.fifo for reading so the waiting init execs. `dir_fd` is ROOT/ID.
[[nodiscard]] common::Status TriggerStart(int dir_fd, const State& s);
// SIGKILLs what is left, removes the cgroups and ROOT/ID.
[[nodiscard]] common::Status DestroyContainer(const std::filesystem::path& root, const State& s);
// Removes ROOT/ID and the files in it; a missing directory is fine.
[[nodiscard]] common::Status RemoveStateDir(const std::filesystem::path& dir);

}  // namespace ociruntime::rt
