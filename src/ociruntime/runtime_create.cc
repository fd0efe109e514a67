// `create`, parent side: everything that can be checked is checked before
// anything is made; then the state directory, exec.fifo and cgroups, the
// clone of the init, and the wait for its report (runtime_internal.h).

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "common/fs.h"
#include "common/log.h"
#include "ociruntime/runtime_cgroup.h"
#include "ociruntime/runtime_internal.h"

namespace ociruntime::rt {
namespace {

namespace fs = std::filesystem;
using common::Errc;
using common::Result;
using common::Status;
using common::UniqueFd;

// struct clone_args (linux/sched.h, which clashes with <sched.h>).
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};
constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;

// A fork-like clone (no new stack: the child continues here, on a copy of
// this stack). With `cgroup_fd`, clone3 starts it in that cgroup2
// directory, saving a write to cgroup.procs; kernels or hierarchies that
// refuse fall back to clone.
pid_t CloneInit(unsigned long flags, int cgroup_fd, bool& into_cgroup) {
  into_cgroup = false;
  if (cgroup_fd >= 0) {
    CloneArgs ca{};
    ca.flags = flags | kCloneIntoCgroup;
    ca.exit_signal = SIGCHLD;
    ca.cgroup = static_cast<uint64_t>(cgroup_fd);
    long r = ::syscall(SYS_clone3, &ca, sizeof ca);
    if (r >= 0) {
      into_cgroup = true;
      return static_cast<pid_t>(r);
    }
    LOG(Debug) << "clone3 into cgroup refused, falling back" << common::Kv("errno", errno);
  }
  return static_cast<pid_t>(
      ::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

Status WriteIdMap(pid_t pid, const char* file, const std::vector<IdMap>& maps) {
  std::string text;
  for (const IdMap& m : maps)
    text += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " +
            std::to_string(m.size) + "\n";
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), text.data(), text.size()) < 0)
    return common::ErrnoError(std::string("write ") + file);
  return {};
}

}  // namespace

Result<UniqueFd> ConnectUnix(const fs::path& path, const char* what) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof addr.sun_path)
    return common::MakeError(Errc::kInvalidArgument, std::string(what) + " path is too long");
  strcpy(addr.sun_path, path.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return common::ErrnoError("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return common::ErrnoError(std::string("connect to ") + what + " `" + path.string() + "`");
  return fd;
}

namespace {}  // namespace

int LastCap() {
  auto text = common::ReadFile("/proc/sys/kernel/cap_last_cap", 64);
  return text ? std::atoi(text->c_str()) : 40;
}

namespace {

// Undoes a half-done create: the init, the cgroups, the state directory.
class CreateUndo {
 public:
  explicit CreateUndo(fs::path dir) : dir_(std::move(dir)) {}
  ~CreateUndo() {
    if (!armed_) return;
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    if (cgroups_ && !cgroups_->created.empty())
      if (auto st = DestroyCgroups(*cgroups_); !st)
        LOG(Warn) << "remove cgroups of a failed create: " << st.error().message;
    if (auto st = RemoveStateDir(dir_); !st)
      LOG(Warn) << "remove state of a failed create: " << st.error().message;
  }
  CreateUndo(const CreateUndo&) = delete;
  CreateUndo& operator=(const CreateUndo&) = delete;
  void set_pid(pid_t pid) { pid_ = pid; }
  void set_cgroups(const CgroupSet* c) { cgroups_ = c; }
  void Disarm() { armed_ = false; }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  const CgroupSet* cgroups_ = nullptr;
  bool armed_ = true;
};

// Joins the namespaces given by path that only affect children (pid) or
// that a new user namespace could not join later (net, ipc, uts, cgroup):
// the init inherits them. The mount namespace is joined by the init.
Status JoinNamespacesInParent(const Config& c, unsigned long& clone_flags) {
  for (const Namespace& ns : c.namespaces) {
    if (ns.path.empty()) {
      if (ns.flag != CLONE_NEWCGROUP) clone_flags |= static_cast<unsigned long>(ns.flag);
      continue;
    }
    if (ns.flag == CLONE_NEWNS || ns.flag == CLONE_NEWUSER) continue;
    UniqueFd fd(::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return common::ErrnoError("open namespace `" + ns.path + "`");
    if (::setns(fd.get(), ns.flag) != 0)
      return common::ErrnoError("join namespace `" + ns.path + "`");
  }
  return {};
}

// Waits for the init's 'R'. On 'H' (its mounts are made) runs the
// prestart and createRuntime hooks and answers 'C'.
Status ReadInitReport(int sock, pid_t pid, const Config& c, const std::string& id) {
  char buf[8192];
  ssize_t n;
  for (;;) {
    do n = ::recv(sock, buf, sizeof buf - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n != 1 || buf[0] != 'H') break;
    std::string state = HookState(id, "creating", pid, c.bundle, c.annotations);
    TRY(RunHooks(c.hooks.prestart, "prestart", state));
    TRY(RunHooks(c.hooks.create_runtime, "createRuntime", state));
    if (::send(sock, "C", 1, MSG_NOSIGNAL) != 1)
      return common::ErrnoError("resume the container init");
  }
  if (n < 0) return common::ErrnoError("read the container init's report");
  if (n == 1 && buf[0] == 'R') return {};
  if (n > 0)
    if (auto e = ParseFailure(std::string_view(buf, static_cast<size_t>(n))))
      return std::unexpected(*e);
  int status = 0;
  std::string how = "without a report";
  if (::waitpid(pid, &status, WNOHANG) == pid)
    how = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                              : "with status " + std::to_string(WEXITSTATUS(status));
  return common::MakeError(Errc::kInternal, "the container init exited during setup " + how);
}

}  // namespace

Status RemoveStateDir(const fs::path& dir) {
  for (const char* f : {kExecFifo, kStateFile, ".state.json.tmp", kSeccompFile})
    if (::unlink((dir / f).c_str()) != 0 && errno != ENOENT)
      return common::ErrnoError("remove `" + (dir / f).string() + "`");
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
    return common::ErrnoError("remove `" + dir.string() + "`");
  return {};
}

Result<State> CreateContainer(const RuntimeOptions& ro, const std::string& id,
                              const CreateOptions& co, std::optional<ConsoleRelay>* foreground) {
  TRY(ValidateId(id));
  std::error_code ec;
  fs::path bundle = fs::absolute(co.bundle.empty() ? fs::current_path(ec) : co.bundle, ec);
  if (ec) return common::ErrnoError("resolve bundle path", ec.value());
  bundle = bundle.lexically_normal();
  if (bundle.string().size() > 1 && bundle.string().back() == '/') bundle = bundle.parent_path();
  ASSIGN_OR_RETURN(Config config, LoadConfig(bundle));
  if (config.process.terminal && co.console_socket.empty() && !foreground)
    return common::MakeError(Errc::kInvalidArgument,
                             "process.terminal is true: --console-socket is required");
  if (!config.process.terminal && !co.console_socket.empty())
    return common::MakeError(Errc::kInvalidArgument,
                             "--console-socket given but process.terminal is false");
  TRY(CheckCapsAvailable(config.process.caps));
  TRY(CheckSecurityLabels(config.process));
  ASSIGN_OR_RETURN(CgroupSet cgroups, PlanCgroups(config.cgroups_path, id));

  TRY(common::MkdirAll(ro.root, 0700));
  TRY(CompileSeccomp(config.seccomp, ro.root / kSeccompCacheDir));
  fs::path dir = ro.root / id;
  if (::mkdir(dir.c_str(), 0711) != 0) {
    if (errno == EEXIST)
      return common::MakeError(Errc::kAlreadyExists, "container `" + id + "` already exists");
    return common::ErrnoError("create `" + dir.string() + "`");
  }
  CreateUndo undo(dir);
  ASSIGN_OR_RETURN(UniqueFd dir_fd, LockContainerDir(ro.root, id));
  if (::mkfifoat(dir_fd.get(), kExecFifo, 0622) != 0 ||
      ::fchmodat(dir_fd.get(), kExecFifo, 0622, 0) != 0)
    return common::ErrnoError("create exec.fifo");

  if (!config.seccomp.bpf.empty()) {
    // No fsync, like state.json: nothing reads it before state.json exists,
    // and it means nothing after a reboot.
    std::string data(reinterpret_cast<const char*>(&config.seccomp.flags), sizeof(unsigned));
    data += config.seccomp.bpf;
    UniqueFd f(::openat(dir_fd.get(), kSeccompFile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!f) return common::ErrnoError("create seccomp.bpf");
    TRY(Wrap(common::WriteAll(f.get(), data), "save the seccomp filter"));
  }
  TRY(Wrap(CreateCgroups(cgroups, config.resources, config.devices), "set up cgroups"));
  undo.set_cgroups(&cgroups);

  UniqueFd console;
  int console_fd = -1;
  if (!co.console_socket.empty()) {
    ASSIGN_OR_RETURN(console, ConnectUnix(co.console_socket, "--console-socket"));
    console_fd = console.get();
  } else if (config.process.terminal) {
    ASSIGN_OR_RETURN(ConsoleRelay relay, ConsoleRelay::Create());
    foreground->emplace(std::move(relay));
    console_fd = (*foreground)->child_end();
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return common::ErrnoError("socketpair");
  UniqueFd parent_sock(sv[0]), child_sock(sv[1]);
  UniqueFd cgroup_fd;
  if (const CgroupDir* u = cgroups.Unified())
    cgroup_fd = UniqueFd(::open(u->path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));

  unsigned long flags = 0;
  TRY(JoinNamespacesInParent(config, flags));
  InitArgs args{.config = &config,
                .cgroups = &cgroups,
                .id = id,
                .no_pivot = co.no_pivot,
                .no_new_keyring = co.no_new_keyring,
                .sync_fd = child_sock.get(),
                .state_dir_fd = dir_fd.get(),
                .console_fd = console_fd,
                .preserve_fds = co.preserve_fds,
                .last_cap = LastCap(),
                .close_fds = {parent_sock.get(), cgroup_fd.get()}};
  const Namespace* user = config.FindNamespace(CLONE_NEWUSER);
  bool new_userns = user && user->path.empty();
  args.join_cgroups = !new_userns;
  bool into_cgroup = false;
  pid_t pid = CloneInit(flags, cgroup_fd.get(), into_cgroup);
  if (pid < 0) return common::ErrnoError("clone the container init");
  if (pid == 0) {
    args.in_unified = into_cgroup;
    RunInit(args);
  }
  undo.set_pid(pid);
  child_sock.reset();
  console.reset();
  cgroup_fd.reset();

  if (new_userns) {
    TRY(WriteIdMap(pid, "uid_map", config.uid_mappings));
    TRY(WriteIdMap(pid, "gid_map", config.gid_mappings));
    TRY(Wrap(JoinCgroups(cgroups, pid, into_cgroup), "join cgroups"));
  }
  // The seccomp agent is told the init's pid as the host sees it.
  std::string go = "G";
  if (!config.seccomp.listener_path.empty()) go += std::to_string(pid);
  if (::send(parent_sock.get(), go.data(), go.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(go.size()))
    return common::ErrnoError("start the container init");
  TRY(ReadInitReport(parent_sock.get(), pid, config, id));

  State s;
  s.id = id;
  s.pid = pid;
  auto ps = ReadProcStat(pid);
  if (!ps) return common::MakeError(Errc::kInternal, "the container init vanished");
  s.pid_start = ps->start;
  s.bundle = bundle;
  s.rootfs = config.rootfs;
  s.created = NowRfc3339Nano();
  s.annotations = config.annotations;
  s.cgroups = cgroups;
  s.poststart = config.hooks.poststart;
  s.poststop = config.hooks.poststop;
  TRY(SaveState(dir_fd.get(), s));
  if (!co.pid_file.empty()) {
    fs::path pf = fs::absolute(co.pid_file, ec);
    TRY(Wrap(common::AtomicWriteFile(pf, std::to_string(pid), 0644), "write --pid-file"));
  }
  undo.Disarm();
  return s;
}

}  // namespace ociruntime::rt

namespace ociruntime {

common::Status Create(const RuntimeOptions& ro, const std::string& id, const CreateOptions& co) {
  auto s = rt::CreateContainer(ro, id, co);
  if (!s) return std::unexpected(s.error());
  return {};
}

}  // namespace ociruntime
