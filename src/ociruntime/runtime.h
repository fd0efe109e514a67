#pragma once
// gantry's OCI runtime: runc's lifecycle over a bundle (runtime-spec 1.x).
//
//   Create → (created: the init waits in ROOT/ID/exec.fifo) → Start →
//   (running) → the process exits (stopped) → Delete.
//
// Every function works on the state directory ROOT/ID (see
// runtime_state.h); several runtime processes may act on different
// containers at once, and operations on one container are serialised by
// a flock on its directory. Errors: NotFound for an unknown container,
// AlreadyExists for a duplicate id, FailedPrecondition for an operation the
// container's status does not allow (with runc's wording), InvalidArgument
// for a bad bundle, PermissionDenied where the host refuses a setting.
//
// The command line (runc's) is RuntimeMain in runtime_cli.h.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"

namespace ociruntime {

struct RuntimeOptions {
  std::filesystem::path root = "/run/gantry-runtime";
};

struct CreateOptions {
  std::filesystem::path bundle;          // empty: the current directory
  std::filesystem::path pid_file;        // written (atomically) with the init's pid
  std::filesystem::path console_socket;  // AF_UNIX socket receiving the pty master
  bool no_pivot = false;                 // MS_MOVE + chroot instead of pivot_root
  bool no_new_keyring = false;           // keep the caller's session keyring
  int preserve_fds = 0;                  // extra fds (3, 4, …) passed to the process
};

// `exec`: a new process in a running container. Either `process_file` (a
// runtime-spec process object, what containerd's shim passes) or `args`
// with the bundle's config.json process as the base for everything else.
struct ExecOptions {
  std::filesystem::path process_file;
  std::vector<std::string> args;
  std::vector<std::string> env;  // --env K=V, added (replacing the same key)
  std::string cwd;               // --cwd
  std::string user;              // --user UID[:GID]
  std::vector<uint32_t> additional_gids;
  std::vector<std::string> caps;  // --cap, added to every set but ambient
  bool tty = false;               // --tty
  bool no_new_privs = false;
  std::string apparmor_profile;  // --apparmor (else the config's)
  std::string process_label;     // --process-label (SELinux: refused)
  bool detach = false;           // return once the process runs
  std::filesystem::path pid_file;
  std::filesystem::path console_socket;
  int preserve_fds = 0;
};

// The OCI state of a container as runc prints it.
struct ContainerInfo {
  std::string id;
  pid_t pid = 0;       // 0 once stopped
  std::string status;  // "created", "running", "stopped"
  std::filesystem::path bundle, rootfs;
  std::string created;
  std::string owner;
  std::string json;  // the state document (indented for `state`)
};

// Sets the container up and leaves its init waiting for Start; returns
// when it waits. On error nothing is left: no state directory, cgroup,
// mount or process.
[[nodiscard]] common::Status Create(const RuntimeOptions& ro, const std::string& id,
                                    const CreateOptions& co);

// Lets a created container exec its process. Errors: FailedPrecondition
// when it is not `created`, Aborted when its init died meanwhile.
[[nodiscard]] common::Status Start(const RuntimeOptions& ro, const std::string& id);

[[nodiscard]] common::Result<ContainerInfo> State(const RuntimeOptions& ro, const std::string& id);

// Signals the init (or, with `all`, every process in the container's
// cgroup). Errors: FailedPrecondition "container not running" when the
// init is gone and `all` is not set.
[[nodiscard]] common::Status Kill(const RuntimeOptions& ro, const std::string& id, int sig,
                                  bool all);

// Removes a stopped or created container (a created one is killed first);
// `force` kills a running one too. Leaves no state, cgroup or process.
[[nodiscard]] common::Status Delete(const RuntimeOptions& ro, const std::string& id, bool force);

// Create + Start. Without `detach`, forwards signals to the container,
// waits for its init, deletes the container and returns the exit status
// (128 + signal number for a signal). With `detach` returns 0 once started.
[[nodiscard]] common::Result<int> Run(const RuntimeOptions& ro, const std::string& id,
                                      const CreateOptions& co, bool detach);

// Runs a process in the container's namespaces and cgroups. Detached:
// returns 0 once it has exec'd (its parent exits, so it is reparented to
// the caller's subreaper, as containerd's shim expects); otherwise waits
// and returns its exit status (128 + signal). Errors: FailedPrecondition
// when the container is stopped or paused, NotFound for a missing
// executable, InvalidArgument for a bad process.
[[nodiscard]] common::Result<int> Exec(const RuntimeOptions& ro, const std::string& id,
                                       const ExecOptions& eo);

// pause/resume through the cgroup freezer. Errors: FailedPrecondition
// when the container is not running (pause) or not paused (resume).
[[nodiscard]] common::Status Pause(const RuntimeOptions& ro, const std::string& id);
[[nodiscard]] common::Status Resume(const RuntimeOptions& ro, const std::string& id);

// New limits (a LinuxResources JSON object) for a created, running or
// paused container's cgroups.
[[nodiscard]] common::Status Update(const RuntimeOptions& ro, const std::string& id,
                                    std::string_view resources_json);

// `events --stats`: one runc-style stats event as JSON
// ({"type":"stats","id":…,"data":{"cpu":…,"memory":…,"pids":…}}).
// Errors: FailedPrecondition when the container is stopped.
[[nodiscard]] common::Result<std::string> StatsEvent(const RuntimeOptions& ro,
                                                     const std::string& id);

// Every container under the root, sorted by id.
[[nodiscard]] common::Result<std::vector<ContainerInfo>> List(const RuntimeOptions& ro);

// The pids in the container's cgroup (`ps`).
[[nodiscard]] common::Result<std::vector<pid_t>> Pids(const RuntimeOptions& ro,
                                                      const std::string& id);

// "KILL", "SIGKILL", "kill", "9" → 9. Errors: InvalidArgument.
[[nodiscard]] common::Result<int> ParseSignal(std::string_view name);

}  // namespace ociruntime
