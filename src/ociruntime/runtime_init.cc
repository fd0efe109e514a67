// The container's init, from the clone to execve. See runtime_internal.h
// for the protocol with the parent.

#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "ociruntime/runtime_cgroup.h"
#include "ociruntime/runtime_internal.h"

namespace ociruntime::rt {
namespace {

using common::Errc;
using common::Status;
using common::UniqueFd;

Status JoinSessionKeyring(const std::string& id) {
  std::string name = "_ses." + id;
  if (::syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.c_str()) >= 0) return {};
  // Kernels without keys, and sandboxes that filter keyctl, are not fatal.
  if (errno == ENOSYS || errno == EPERM || errno == EACCES) return {};
  return common::ErrnoError("join session keyring `" + name + "`");
}

// The container's filter; with a listener, the agent gets it and the state.
Status LoadSeccompOf(const InitArgs& a, int listener_sock) {
  const Config& c = *a.config;
  if (listener_sock < 0) return LoadSeccomp(c.seccomp);
  std::string msg = SeccompListenerMessage(
      c.seccomp, HookState(a.id, "created", a.host_pid, c.bundle, c.annotations));
  return LoadSeccomp(c.seccomp, listener_sock, msg);
}

// What the init execs once started.
struct Launch {
  std::string exe;
  std::vector<std::string> env;
};

// Everything between the parent's go-ahead and the wait for `start`.
common::Result<Launch> Setup(const InitArgs& a, int& fifo_fd, int& proc_fd_dir,
                             int& listener_sock) {
  const Config& c = *a.config;
  const Namespace* user = c.FindNamespace(CLONE_NEWUSER);
  bool userns = user && user->path.empty();
  if (userns && (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0))
    return common::ErrnoError("become root in the user namespace");
  if (a.join_cgroups) TRY(Wrap(JoinCgroupsSelf(*a.cgroups, a.in_unified), "join cgroups"));
  TRY(ApplyOomScoreAdj(c.process));
  if (const Namespace* mnt = c.FindNamespace(CLONE_NEWNS); mnt && !mnt->path.empty()) {
    UniqueFd fd(::open(mnt->path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd || ::setns(fd.get(), CLONE_NEWNS) != 0)
      return common::ErrnoError("join mount namespace `" + mnt->path + "`");
  }
  // After the parent moved us into our cgroup, so that it is the root.
  if (const Namespace* cg = c.FindNamespace(CLONE_NEWCGROUP); cg && cg->path.empty())
    if (::unshare(CLONE_NEWCGROUP) != 0) return common::ErrnoError("unshare cgroup namespace");
  if (::setsid() < 0) return common::ErrnoError("setsid");
  if (c.FindNamespace(CLONE_NEWUTS)) {
    if (!c.hostname.empty() && ::sethostname(c.hostname.data(), c.hostname.size()) != 0)
      return common::ErrnoError("set hostname `" + c.hostname + "`");
    if (c.domainname && ::setdomainname(c.domainname->data(), c.domainname->size()) != 0)
      return common::ErrnoError("set domainname `" + *c.domainname + "`");
  }
  // The seccomp agent's socket is a host path too.
  if (!c.seccomp.listener_path.empty()) {
    ASSIGN_OR_RETURN(UniqueFd sock,
                     ConnectUnix(c.seccomp.listener_path, "linux.seccomp.listenerPath"));
    listener_sock = sock.release();
  }
  // exec.fifo and /proc/self/fd are opened while the host's view is
  // still there; the fifo is reopened for writing through them later.
  fifo_fd = ::openat(a.state_dir_fd, kExecFifo, O_PATH | O_CLOEXEC);
  if (fifo_fd < 0) return common::ErrnoError("open exec.fifo");
  proc_fd_dir = ::open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (proc_fd_dir < 0) return common::ErrnoError("open `/proc/self/fd`");
  ::close(a.state_dir_fd);

  TRY(Wrap(PrepareRootfs(c, *a.cgroups, userns), "prepare rootfs"));
  if (!c.hooks.prestart.empty() || !c.hooks.create_runtime.empty()) {
    char ack = 0;
    ssize_t n;
    if (::send(a.sync_fd, "H", 1, MSG_NOSIGNAL) != 1)
      return common::ErrnoError("ask for the prestart hooks");
    do n = ::recv(a.sync_fd, &ack, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n != 1 || ack != 'C') ::_exit(1);  // the parent gave up (a hook failed)
  }
  // Hooks run in the container's namespaces get the pid seen there.
  TRY(RunHooks(c.hooks.create_container, "createContainer",
               HookState(a.id, "creating", ::getpid(), c.bundle, c.annotations)));
  TRY(Wrap(EnterRootfs(c, a.no_pivot), "enter rootfs"));
  TRY(Wrap(FinishRootfs(c), "finish rootfs"));
  if (c.process.terminal) {
    TRY(SetupConsole(a.console_fd, c.process, true));
    ::close(a.console_fd);
  }
  if (!a.no_new_keyring) TRY(JoinSessionKeyring(a.id));
  ASSIGN_OR_RETURN(std::string exe, FindExecutable(c.process));
  // Late, so that a low RLIMIT_NOFILE or RLIMIT_NPROC cannot starve the
  // setup itself; still before the user change, which cannot raise them.
  TRY(ApplyRlimits(c.process));
  // Change directory while still root (the user may not reach every
  // ancestor); retry as the user for root-squashed file systems.
  bool in_cwd = ::chdir(c.process.cwd.c_str()) == 0;
  int cwd_err = errno;
  std::vector<std::string> env = EnvWithHome(c.process);
  TRY(ApplyAppArmorProfile(c.process));
  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: now,
  // before the capabilities go (the rest of the setup runs under it).
  if (!c.process.no_new_privileges) TRY(LoadSeccompOf(a, listener_sock));
  TRY(ApplyUserAndCaps(c.process, a.last_cap, userns));
  if (!in_cwd && ::chdir(c.process.cwd.c_str()) != 0)
    return common::ErrnoError("chdir to process.cwd `" + c.process.cwd + "`", cwd_err);
  ::umask(c.process.umask.value_or(022));
  return Launch{std::move(exe), std::move(env)};
}

}  // namespace

void ResetSignals() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &sa, nullptr);
}

void ReportFailure(int sync_fd, const common::Error& e) {
  std::string msg = "E" + std::to_string(static_cast<int>(e.code)) + ":" +
                    std::to_string(e.sys_errno) + ":" + e.message;
  (void)::send(sync_fd, msg.data(), msg.size(), MSG_NOSIGNAL);
  ::_exit(1);
}

std::optional<common::Error> ParseFailure(std::string_view msg) {
  if (msg.size() < 2 || msg[0] != 'E') return std::nullopt;
  size_t p1 = msg.find(':');
  size_t p2 = p1 == std::string_view::npos ? p1 : msg.find(':', p1 + 1);
  if (p2 == std::string_view::npos) return std::nullopt;
  common::Error e;
  e.code = static_cast<Errc>(std::atoi(std::string(msg.substr(1, p1 - 1)).c_str()));
  e.sys_errno = std::atoi(std::string(msg.substr(p1 + 1, p2 - p1 - 1)).c_str());
  e.message = std::string(msg.substr(p2 + 1));
  return e;
}

void RunInit(InitArgs& a) {
  for (int fd : a.close_fds) ::close(fd);
  ResetSignals();
  char go[32];
  ssize_t n;
  do n = ::recv(a.sync_fd, go, sizeof go - 1, 0);
  while (n < 0 && errno == EINTR);
  if (n < 1 || go[0] != 'G') ::_exit(1);  // the parent gave up
  go[n] = '\0';
  a.host_pid = std::atoi(go + 1);

  int fifo_fd = -1, proc_fd_dir = -1, listener_sock = -1;
  auto launch = Setup(a, fifo_fd, proc_fd_dir, listener_sock);
  if (!launch) ReportFailure(a.sync_fd, launch.error());
  const char ready = 'R';
  if (::send(a.sync_fd, &ready, 1, MSG_NOSIGNAL) != 1) ::_exit(1);
  ::close(a.sync_fd);

  // Blocks until `start` opens the fifo for reading.
  char name[16];
  snprintf(name, sizeof name, "%d", fifo_fd);
  int w;
  do w = ::openat(proc_fd_dir, name, O_WRONLY | O_CLOEXEC);
  while (w < 0 && errno == EINTR);
  // Before the write that lets `start` return, so that a failing hook
  // fails `start` (the init exits without writing).
  if (auto st =
          RunHooks(a.config->hooks.start_container, "startContainer",
                   HookState(a.id, "created", ::getpid(), a.config->bundle, a.config->annotations));
      !st) {
    dprintf(2, "gantry-runtime: %s\n", st.error().message.c_str());
    ::_exit(127);
  }
  if (w < 0 || ::write(w, "0", 1) != 1) {
    dprintf(2, "gantry-runtime: wait for start: %s\n", strerror(errno));
    ::_exit(127);
  }
  ::close(w);
  ::close(fifo_fd);
  ::close(proc_fd_dir);

  const Process& p = a.config->process;
  if (p.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    dprintf(2, "gantry-runtime: set no_new_privs: %s\n", strerror(errno));
    ::_exit(127);
  }
  if (p.no_new_privileges)
    if (auto st = LoadSeccompOf(a, listener_sock); !st) {
      dprintf(2, "gantry-runtime: %s\n", st.error().message.c_str());
      ::_exit(127);
    }
  ExecProcess(launch->exe, p, launch->env, a.preserve_fds);
  dprintf(2, "gantry-runtime: exec `%s`: %s\n", launch->exe.c_str(), strerror(errno));
  ::_exit(127);
}

}  // namespace ociruntime::rt
