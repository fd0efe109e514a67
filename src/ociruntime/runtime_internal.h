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

#include <signal.h>
#include <sys/types.h>
#include <termios.h>

#include <array>
#include <map>
#include <optional>
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
  int sync_fd = -1;       // the init's end of the socketpair
  int state_dir_fd = -1;  // ROOT/ID, holding exec.fifo
  int console_fd = -1;    // connected --console-socket, or -1
  int preserve_fds = 0;   // fds 3 .. 3+N-1 stay open across exec
  int last_cap = 0;       // /proc/sys/kernel/cap_last_cap
  // The init joins its cgroups itself (see JoinCgroupsSelf); false when the
  // parent does it (a new user namespace cannot write the host's files).
  bool join_cgroups = false;
  bool in_unified = false;     // cloned straight into the cgroup2 leaf
  pid_t host_pid = 0;          // sent with 'G' for a seccomp listener (linux.seccomp.listenerPath)
  std::vector<int> close_fds;  // parent-only fds, closed first thing
};

// The container's init: never returns. Reports a setup failure to the
// parent over sync_fd and exits 1; after 'R' an exec failure is written to
// stderr and exits 127.
[[noreturn]] void RunInit(InitArgs& args);

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
                             .create = !create       ? Create::kNothing
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
// process.env, with HOME added where it has none or an empty one, as runc
// does: the home directory of process.user.uid in /etc/passwd, "/" without
// an entry. REQUIRES: the container's root is the current root.
[[nodiscard]] std::vector<std::string> EnvWithHome(const Process& p);
// execve of `exe` with the process's args and `env` after marking every fd
// from 3 + preserve_fds on close-on-exec; returns (with errno set) only
// when execve failed.
void ExecProcess(const std::string& exe, const Process& p, const std::vector<std::string>& env,
                 int preserve_fds);
// process.apparmorProfile and selinuxLabel against this host, checked
// before anything is created: a profile where AppArmor is not enabled is
// refused (FailedPrecondition), as runc refuses it; an SELinux label too
// (FailedPrecondition where SELinux is off, Unimplemented where it is on:
// labels are not applied).
[[nodiscard]] common::Status CheckSecurityLabels(const Process& p);
// Makes the next execve enter process.apparmorProfile (none when empty).
// Before the capabilities are dropped and before no_new_privs, as runc.
[[nodiscard]] common::Status ApplyAppArmorProfile(const Process& p);
// The runtime's own permitted set; create fails early when the config asks
// for a capability outside it, naming it.
[[nodiscard]] common::Status CheckCapsAvailable(const Capabilities& caps);
// Sends `fd` over the AF_UNIX socket `sock` as SCM_RIGHTS with `data`.
[[nodiscard]] common::Status SendFd(int sock, int fd, std::string_view data);
// Creates a pty, sends its master to `console_fd` (SCM_RIGHTS, runc's
// protocol), makes the slave the controlling terminal and stdio, and binds
// it over /dev/console when `dev_console` (the init; not an exec).
[[nodiscard]] common::Status SetupConsole(int console_fd, const Process& p, bool dev_console);

// /proc/sys/kernel/cap_last_cap (40 when unreadable).
[[nodiscard]] int LastCap();

// seccomp(SECCOMP_SET_MODE_FILTER) of the compiled program (nothing when
// it is empty). Without no_new_privs it needs CAP_SYS_ADMIN, so callers
// load it before dropping capabilities then, else right before execve.
// With `listener_sock` (connected to listenerPath), the filter is loaded
// with a new listener, which is sent there with `message` (see
// SeccompListenerMessage), then closed here.
[[nodiscard]] common::Status LoadSeccomp(const SeccompProgram& p, int listener_sock = -1,
                                         std::string_view message = {});
// runtime-spec's ContainerProcessState for the listener: ociVersion,
// fds ["seccompFd"], pid, metadata, and `state` (a HookState document).
[[nodiscard]] std::string SeccompListenerMessage(const SeccompProgram& p, const std::string& state);
// ROOT/ID/seccomp.bpf: the container's program for `exec` (flags, then the
// instructions). Absent: no filter.
inline constexpr const char* kSeccompFile = "seccomp.bpf";
// ROOT/.cache:seccomp/: compiled profiles (never a container id: ':' is
// not allowed in one, and `list` skips dot names).
inline constexpr const char* kSeccompCacheDir = ".cache:seccomp";

// Connects to the AF_UNIX stream socket at `path`; `what` names it in
// errors ("--console-socket", "linux.seccomp.listenerPath").
[[nodiscard]] common::Result<common::UniqueFd> ConnectUnix(const std::filesystem::path& path,
                                                           const char* what);

// Signal dispositions back to the defaults and nothing blocked: a clone or
// fork of the runtime must not keep its handlers.
void ResetSignals();

// The sync socket's failure report from the init or an exec'd process:
// "E<code>:<errno>:<message>". ReportFailure sends it and exits 1.
[[noreturn]] void ReportFailure(int sync_fd, const common::Error& e);
[[nodiscard]] std::optional<common::Error> ParseFailure(std::string_view msg);

// --- hooks (runtime_hooks.cc) ---
//
// Where each kind runs (runc's choices, which the spec allows):
//   prestart, createRuntime   create's parent, in the runtime's namespaces,
//                             once the init has made its mounts (before
//                             pivot_root), on the init's 'H';
//   createContainer           the init, in the container's namespaces,
//                             before pivot_root (paths are the host's);
//   startContainer            the init after `start`, before execve, inside
//                             the container's root;
//   poststart                 `start` (and `run`) once the process runs;
//   poststop                  `delete` (and `run`) once the container is gone.
// Failures of the first four fail the operation; poststart and poststop
// failures are logged as warnings, as the spec asks.

// The state a hook reads on stdin: ociVersion, id, status, pid (omitted
// when 0), bundle, annotations.
[[nodiscard]] std::string HookState(const std::string& id, const char* status, pid_t pid,
                                    const std::filesystem::path& bundle,
                                    const std::map<std::string, std::string>& annotations);
// Runs `hooks` in order with `state` on stdin; stops at the first that
// fails (non-zero exit: Aborted; past its timeout, when it is killed:
// Unavailable), naming it: "prestart hook `/x`: exit status 3".
[[nodiscard]] common::Status RunHooks(const std::vector<Hook>& hooks, const char* kind,
                                      const std::string& state);
// Runs every hook; failures are logged as warnings.
void RunHooksWarn(const std::vector<Hook>& hooks, const char* kind, const std::string& state);

class ConsoleRelay;

// --- lifecycle, parent side (runtime_create.cc, runtime_ops.cc) ---

// Create's work; the init is left a child of the calling process (Run
// waits for it). On error nothing is left behind. With `foreground` (run
// in the foreground), a terminal without --console-socket gets a
// ConsoleRelay there, which has received nothing yet.
[[nodiscard]] common::Result<State> CreateContainer(
    const RuntimeOptions& ro, const std::string& id, const CreateOptions& co,
    std::optional<ConsoleRelay>* foreground = nullptr);
// Opens exec.fifo for reading so the waiting init execs. `dir_fd` is ROOT/ID.
[[nodiscard]] common::Status TriggerStart(int dir_fd, const State& s);
// SIGKILLs what is left, removes the cgroups and ROOT/ID.
[[nodiscard]] common::Status DestroyContainer(const std::filesystem::path& root, const State& s);
// The signals a foreground runtime (run, exec) forwards to its container
// process while it waits.
inline constexpr std::array<int, 9> kForwardedSignals = {
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGWINCH, SIGCONT};

// Installs handlers forwarding kForwardedSignals to `pid`; the previous
// handlers come back on destruction. One at a time per process.
class SignalForwarder {
 public:
  explicit SignalForwarder(pid_t pid);
  ~SignalForwarder();
  SignalForwarder(const SignalForwarder&) = delete;
  SignalForwarder& operator=(const SignalForwarder&) = delete;

 private:
  std::array<struct sigaction, kForwardedSignals.size()> old_{};
};

// Reaps `pid`: its exit status, or 128 + the signal that killed it.
[[nodiscard]] common::Result<int> WaitExitCode(pid_t pid);

// A foreground terminal (`run`, `exec --tty` without --console-socket):
// the runtime is the console socket's other end. Give child_end() to the
// process setup in place of a connected --console-socket, then, once the
// process has sent its pty master, ReceiveMaster() (puts our stdin in raw
// mode while it is a terminal, and gives the pty our window size) and
// RelayUntilExit(), which copies stdin to the pty and the pty to stdout
// until the process exits, restores the terminal and reaps it.
class ConsoleRelay {
 public:
  [[nodiscard]] static common::Result<ConsoleRelay> Create();
  ConsoleRelay(ConsoleRelay&&) = default;
  ConsoleRelay& operator=(ConsoleRelay&&) = delete;
  ~ConsoleRelay();
  int child_end() const { return theirs_.get(); }
  [[nodiscard]] common::Status ReceiveMaster();
  [[nodiscard]] common::Result<int> RelayUntilExit(pid_t pid);

 private:
  ConsoleRelay() = default;
  common::UniqueFd ours_, theirs_, master_;
  termios saved_{};
  bool raw_ = false;
};

// Removes ROOT/ID and the files in it; a missing directory is fine.
[[nodiscard]] common::Status RemoveStateDir(const std::filesystem::path& dir);

}  // namespace ociruntime::rt
