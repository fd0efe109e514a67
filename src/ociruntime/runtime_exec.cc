// `exec`: a new process in a running container.
//
//   runtime (P)                 intermediate (I)            process (X)
//   ───────────                 ────────────────            ───────────
//   state, process, console
//   fork ──────────────────────► setns: user, ipc, uts,
//                                net, pid, cgroup, mnt
//                                fork ──────────────────────► waits for 'G'
//   ◄──────────────── "P<pid>"  exits
//   reaps I; X into the cgroups
//   'G' ───────────────────────────────────────────────────► console, rlimits,
//                                                             cwd, user, caps,
//                                                             execve
//   ◄──────────── EOF (the socket is close-on-exec), or "E<code>:<errno>:<msg>"
//   pid file; detach: exit (X is reparented to our caller's subreaper);
//   else wait for X (we are a subreaper) and exit with its status.
//
// setns(CLONE_NEWPID) only moves children, hence the intermediate; it also
// keeps the runtime itself out of the container's namespaces and cgroups.

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "common/fs.h"
#include "ociruntime/runtime_cgroup.h"
#include "ociruntime/runtime_internal.h"

namespace ociruntime {
namespace {

namespace fs = std::filesystem;
using common::Errc;
using common::Result;
using common::Status;
using common::UniqueFd;

std::unexpected<common::Error> Invalid(std::string msg) {
  return common::MakeError(Errc::kInvalidArgument, std::move(msg));
}

// runc's order: the user namespace first (it grants the rights to join the
// others), the mount namespace last (it changes the root under our paths).
constexpr std::pair<const char*, int> kNamespaceOrder[] = {
    {"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
    {"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID}, {"cgroup", CLONE_NEWCGROUP},
    {"mnt", CLONE_NEWNS}};

struct NsFd {
  int type;
  UniqueFd fd;
};

// The init's namespaces that differ from ours, opened while the init is
// pinned by `dir` being locked and its start time checked.
Result<std::vector<NsFd>> OpenNamespaces(pid_t pid) {
  std::vector<NsFd> out;
  for (const auto& [name, type] : kNamespaceOrder) {
    std::string theirs = "/proc/" + std::to_string(pid) + "/ns/" + name;
    std::string ours = std::string("/proc/self/ns/") + name;
    struct stat a {
    }, b{};
    if (::stat(theirs.c_str(), &a) != 0) {
      if (errno == ENOENT) continue;  // a kernel without this namespace type
      return common::ErrnoError("stat `" + theirs + "`");
    }
    if (::stat(ours.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) continue;
    UniqueFd fd(::open(theirs.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return common::ErrnoError("open `" + theirs + "`");
    out.push_back({type, std::move(fd)});
  }
  return out;
}

// "--user UID[:GID]" (numbers only, as runc takes them).
Status ParseUser(const std::string& spec, rt::Process& p) {
  auto num = [&](std::string_view s, uint32_t& out) -> Status {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos)
      return Invalid("--user `" + spec + "`: expected UID[:GID] as numbers");
    out = static_cast<uint32_t>(std::stoul(std::string(s)));
    return {};
  };
  std::string_view sv(spec);
  size_t colon = sv.find(':');
  uint32_t uid = 0, gid = 0;
  TRY(num(sv.substr(0, colon), uid));
  p.uid = uid;
  if (colon != std::string_view::npos) {
    TRY(num(sv.substr(colon + 1), gid));
    p.gid = gid;
  }
  return {};
}

// The process to run: the --process file, or config.json's process with
// the command line's changes (runc's rules).
Result<rt::Process> BuildProcess(const rt::State& s, const ExecOptions& eo) {
  if (!eo.process_file.empty()) {
    if (!eo.args.empty()) return Invalid("exec: --process and a command are exclusive");
    auto text = common::ReadFile(eo.process_file, 16u << 20);
    if (!text) return std::unexpected(text.error().Wrap("read --process"));
    return Wrap(rt::ParseProcessJson(*text), "--process `" + eo.process_file.string() + "`");
  }
  if (eo.args.empty()) return Invalid("exec: a command or --process is required");
  ASSIGN_OR_RETURN(rt::Config c, rt::LoadConfig(s.bundle));
  rt::Process p = std::move(c.process);
  p.args = eo.args;
  p.terminal = eo.tty;
  p.console_size.reset();
  for (const std::string& kv : eo.env) {
    std::string key = kv.substr(0, kv.find('='));
    std::erase_if(p.env, [&](const std::string& e) {
      return e.compare(0, key.size() + 1, key + "=") == 0 || e == key;
    });
    p.env.push_back(kv);
  }
  if (!eo.cwd.empty()) {
    if (eo.cwd[0] != '/') return Invalid("--cwd `" + eo.cwd + "`: must be absolute");
    p.cwd = eo.cwd;
  }
  if (!eo.user.empty()) TRY(ParseUser(eo.user, p));
  if (!eo.additional_gids.empty())
    p.additional_gids.assign(eo.additional_gids.begin(), eo.additional_gids.end());
  for (const std::string& name : eo.caps) {
    auto cap = rt::CapabilityFromName(name);
    if (!cap) return Invalid("--cap: unknown capability `" + name + "`");
    uint64_t bit = uint64_t{1} << *cap;
    p.caps.present = true;
    p.caps.bounding |= bit;
    p.caps.effective |= bit;
    p.caps.permitted |= bit;
    p.caps.inheritable |= bit;
  }
  if (eo.no_new_privs) p.no_new_privileges = true;
  if (!eo.apparmor_profile.empty()) p.apparmor_profile = eo.apparmor_profile;
  if (!eo.process_label.empty()) p.selinux_label = eo.process_label;
  return p;
}

struct ChildArgs {
  const rt::Process* process;
  const std::vector<NsFd>* namespaces;
  const rt::SeccompProgram* seccomp;
  int sync_fd;
  int console_fd;
  int preserve_fds;
  int last_cap;
};

// X, after the go-ahead: everything up to execve; never returns.
[[noreturn]] void RunProcess(const ChildArgs& a, bool userns) {
  const rt::Process& p = *a.process;
  std::vector<std::string> env;
  auto setup = [&]() -> Result<std::string> {
    if (p.terminal) {
      if (::setsid() < 0) return common::ErrnoError("setsid");
      TRY(rt::SetupConsole(a.console_fd, p, false));
      ::close(a.console_fd);
    }
    TRY(rt::ApplyOomScoreAdj(p));
    ASSIGN_OR_RETURN(std::string exe, rt::FindExecutable(p));
    TRY(rt::ApplyRlimits(p));
    bool in_cwd = ::chdir(p.cwd.c_str()) == 0;
    int cwd_err = errno;
    env = rt::EnvWithHome(p);
    TRY(rt::ApplyAppArmorProfile(p));
    if (!p.no_new_privileges) TRY(rt::LoadSeccomp(*a.seccomp));
    TRY(rt::ApplyUserAndCaps(p, a.last_cap, userns));
    if (!in_cwd && ::chdir(p.cwd.c_str()) != 0)
      return common::ErrnoError("chdir to process.cwd `" + p.cwd + "`", cwd_err);
    ::umask(p.umask.value_or(022));
    if (p.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
      return common::ErrnoError("set no_new_privs");
    if (p.no_new_privileges) TRY(rt::LoadSeccomp(*a.seccomp));
    return exe;
  };
  auto exe = setup();
  if (!exe) rt::ReportFailure(a.sync_fd, exe.error());
  // The sync socket is among the fds closed on exec: its EOF tells the
  // runtime that execve succeeded.
  rt::ExecProcess(*exe, p, env, a.preserve_fds);
  rt::ReportFailure(a.sync_fd, common::ErrnoError("exec `" + *exe + "`").error());
}

// I: joins the namespaces and forks X; never returns.
[[noreturn]] void RunIntermediate(const ChildArgs& a) {
  rt::ResetSignals();
  bool userns = false;
  for (const NsFd& ns : *a.namespaces) {
    if (::setns(ns.fd.get(), ns.type) != 0)
      rt::ReportFailure(a.sync_fd, common::ErrnoError("join the container's namespaces").error());
    if (ns.type == CLONE_NEWUSER) userns = true;
  }
  pid_t pid = ::fork();
  if (pid < 0) rt::ReportFailure(a.sync_fd, common::ErrnoError("fork in the container").error());
  if (pid == 0) {
    char go = 0;
    ssize_t n;
    do n = ::recv(a.sync_fd, &go, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n != 1 || go != 'G') ::_exit(1);  // the runtime gave up
    if (userns && (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0))
      rt::ReportFailure(a.sync_fd, common::ErrnoError("become root in the user namespace").error());
    RunProcess(a, userns);
  }
  std::string msg = "P" + std::to_string(pid);
  ::_exit(::send(a.sync_fd, msg.data(), msg.size(), MSG_NOSIGNAL) < 0 ? 1 : 0);
}

Result<std::string> Receive(int fd) {
  char buf[8192];
  ssize_t n;
  do n = ::recv(fd, buf, sizeof buf, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return common::ErrnoError("read the exec'd process's report");
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

Result<int> Exec(const RuntimeOptions& ro, const std::string& id, const ExecOptions& eo) {
  ASSIGN_OR_RETURN(rt::State s, rt::LoadState(ro.root, id));
  {
    UniqueFd dir(::open((ro.root / id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return common::ErrnoError("open state of `" + id + "`");
    switch (rt::CurrentStatus(s, dir.get())) {
      case rt::ContainerStatus::kStopped:
        return common::MakeError(Errc::kFailedPrecondition, "cannot exec in a stopped container");
      case rt::ContainerStatus::kPaused:
        return common::MakeError(Errc::kFailedPrecondition, "cannot exec in a paused container");
      default:
        break;
    }
  }
  ASSIGN_OR_RETURN(rt::Process p, BuildProcess(s, eo));
  if (p.terminal && eo.console_socket.empty() && eo.detach)
    return Invalid("cannot allocate a tty for a detached process without --console-socket");
  if (!p.terminal && !eo.console_socket.empty())
    return Invalid("--console-socket given but the process has no terminal");
  TRY(rt::CheckCapsAvailable(p.caps));
  TRY(rt::CheckSecurityLabels(p));
  ASSIGN_OR_RETURN(std::vector<NsFd> namespaces, OpenNamespaces(s.pid));
  rt::SeccompProgram seccomp;
  if (auto data = common::ReadFile(ro.root / id / rt::kSeccompFile, 64u << 20); data) {
    if (data->size() < sizeof(unsigned))
      return common::MakeError(Errc::kDataLoss, "seccomp.bpf of `" + id + "` is truncated");
    memcpy(&seccomp.flags, data->data(), sizeof(unsigned));
    seccomp.bpf = data->substr(sizeof(unsigned));
  } else if (data.error().code != Errc::kNotFound) {
    return std::unexpected(data.error().Wrap("read the container's seccomp filter"));
  }
  if (!rt::InitAlive(s))
    return common::MakeError(Errc::kFailedPrecondition, "cannot exec in a stopped container");
  UniqueFd console;
  std::optional<rt::ConsoleRelay> relay;
  if (p.terminal && !eo.console_socket.empty()) {
    ASSIGN_OR_RETURN(console, rt::ConnectUnix(eo.console_socket, "--console-socket"));
  } else if (p.terminal) {
    ASSIGN_OR_RETURN(rt::ConsoleRelay r, rt::ConsoleRelay::Create());
    relay.emplace(std::move(r));
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return common::ErrnoError("socketpair");
  UniqueFd ours(sv[0]), theirs(sv[1]);
  // In the foreground we wait for X, a grandchild.
  if (!eo.detach && ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    return common::ErrnoError("become a subreaper");
  ChildArgs args{.process = &p,
                 .namespaces = &namespaces,
                 .seccomp = &seccomp,
                 .sync_fd = theirs.get(),
                 .console_fd = relay ? relay->child_end() : console.get(),
                 .preserve_fds = eo.preserve_fds,
                 .last_cap = rt::LastCap()};
  pid_t mid = ::fork();
  if (mid < 0) return common::ErrnoError("fork");
  if (mid == 0) {
    ::close(ours.get());
    RunIntermediate(args);
  }
  theirs.reset();
  console.reset();
  auto first = Receive(ours.get());
  (void)rt::WaitExitCode(mid);
  if (!first) return std::unexpected(first.error());
  if (auto e = rt::ParseFailure(*first)) return std::unexpected(*e);
  if (first->size() < 2 || (*first)[0] != 'P')
    return common::MakeError(Errc::kInternal,
                             "exec: the intermediate process died without a report");
  pid_t pid = static_cast<pid_t>(std::atoi(first->c_str() + 1));
  auto abandon = [&](common::Error e) -> Result<int> {
    ::kill(pid, SIGKILL);
    if (!eo.detach) (void)rt::WaitExitCode(pid);
    return std::unexpected(std::move(e));
  };
  if (auto st = rt::JoinCgroups(s.cgroups, pid, false); !st)
    return abandon(st.error().Wrap("join the container's cgroups"));
  if (::send(ours.get(), "G", 1, MSG_NOSIGNAL) != 1)
    return abandon(common::ErrnoError("start the exec'd process").error());
  auto report = Receive(ours.get());
  if (!report) return abandon(report.error());
  if (!report->empty()) {
    auto e = rt::ParseFailure(*report);
    if (!e) return abandon(common::MakeError(Errc::kInternal, "exec: bad report").error());
    if (!eo.detach) (void)rt::WaitExitCode(pid);
    return std::unexpected(*e);
  }
  if (!eo.pid_file.empty()) {
    std::error_code ec;
    if (auto st = common::AtomicWriteFile(fs::absolute(eo.pid_file, ec), std::to_string(pid), 0644);
        !st)
      return abandon(st.error().Wrap("write --pid-file"));
  }
  if (eo.detach) return 0;
  rt::SignalForwarder forward(pid);
  if (!relay) return rt::WaitExitCode(pid);
  if (auto st = relay->ReceiveMaster(); !st) return abandon(st.error());
  return relay->RelayUntilExit(pid);
}

}  // namespace ociruntime
