// start, state, kill, delete, run, list, ps: the lifecycle after create.

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/log.h"
#include "ociruntime/runtime_cgroup.h"
#include "ociruntime/runtime_internal.h"

namespace ociruntime {
namespace {

namespace fs = std::filesystem;
using common::Errc;
using common::Result;
using common::Status;
using common::UniqueFd;
using rt::ContainerStatus;

std::unexpected<common::Error> Precondition(std::string msg) {
  return common::MakeError(Errc::kFailedPrecondition, std::move(msg));
}

// glibc 2.36's <sys/pidfd.h> lacks C linkage for C++; the raw calls are
// simple enough.
int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int PidfdSignal(int fd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0));
}

// A pidfd for the init, or an invalid fd when it is gone (or its pid was
// reused: the start time is checked after the pidfd pins the process).
UniqueFd OpenInit(const rt::State& s) {
  if (!rt::InitAlive(s)) return UniqueFd();
  UniqueFd fd(PidfdOpen(s.pid));
  if (fd && !rt::InitAlive(s)) fd.reset();
  return fd;
}

Status SignalInit(const rt::State& s, int sig) {
  UniqueFd fd = OpenInit(s);
  if (!fd) return Precondition("container not running");
  if (PidfdSignal(fd.get(), sig) != 0 && errno != ESRCH)
    return common::ErrnoError("signal the container init");
  return {};
}

std::string OwnerOf(int dir_fd) {
  struct stat st {};
  if (::fstat(dir_fd, &st) != 0) return "";
  passwd pw{}, *res = nullptr;
  char buf[1024];
  if (::getpwuid_r(st.st_uid, &pw, buf, sizeof buf, &res) == 0 && res) return pw.pw_name;
  return "#" + std::to_string(st.st_uid);
}

ContainerInfo Info(const rt::State& s, ContainerStatus status, const std::string& owner,
                   int indent) {
  ContainerInfo i;
  i.id = s.id;
  i.pid = status == ContainerStatus::kStopped ? 0 : s.pid;
  i.status = rt::StatusName(status);
  i.bundle = s.bundle;
  i.rootfs = s.rootfs;
  i.created = s.created;
  i.owner = owner;
  i.json = rt::OciStateJson(s, status, owner, indent);
  return i;
}

// Forwarding of signals to the foreground container in `run` and `exec`.
// A signal handler can only reach process-wide state, hence this one global.
std::atomic<pid_t> g_forward_pid{0};

void Forward(int sig) {
  pid_t pid = g_forward_pid.load();
  if (pid > 0) ::kill(pid, sig);
}

}  // namespace

namespace rt {

SignalForwarder::SignalForwarder(pid_t pid) {
  g_forward_pid.store(pid);
  struct sigaction sa {};
  sa.sa_handler = Forward;
  sa.sa_flags = SA_RESTART;
  for (size_t i = 0; i < kForwardedSignals.size(); ++i)
    ::sigaction(kForwardedSignals[i], &sa, &old_[i]);
}

SignalForwarder::~SignalForwarder() {
  for (size_t i = 0; i < kForwardedSignals.size(); ++i)
    ::sigaction(kForwardedSignals[i], &old_[i], nullptr);
  g_forward_pid.store(0);
}

Result<int> WaitExitCode(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return common::ErrnoError("wait for the container process");
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

}  // namespace rt

namespace {

constexpr std::pair<const char*, int> kSignals[] = {
    {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"BUS", SIGBUS},       {"CHLD", SIGCHLD},
    {"CLD", SIGCHLD},  {"CONT", SIGCONT}, {"FPE", SIGFPE},       {"HUP", SIGHUP},
    {"ILL", SIGILL},   {"INT", SIGINT},   {"IO", SIGIO},         {"IOT", SIGIOT},
    {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"POLL", SIGPOLL},     {"PROF", SIGPROF},
    {"PWR", SIGPWR},   {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},     {"STKFLT", SIGSTKFLT},
    {"STOP", SIGSTOP}, {"SYS", SIGSYS},   {"TERM", SIGTERM},     {"TRAP", SIGTRAP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"VTALRM", SIGVTALRM}, {"WINCH", SIGWINCH},
    {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
};

}  // namespace

namespace rt {

Status TriggerStart(int dir_fd, const State& s) {
  // The pidfd first: once the fifo is open the init may exec and exit at
  // once, and a dead init could then not be told from one that never started.
  UniqueFd init = OpenInit(s);
  if (!init) return common::MakeError(Errc::kAborted, "the container init exited before start");
  UniqueFd fifo(::openat(dir_fd, kExecFifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fifo) {
    if (errno == ENOENT) return Precondition("cannot start an already running container");
    return common::ErrnoError("open exec.fifo");
  }
  for (;;) {
    pollfd p[2] = {{fifo.get(), POLLIN, 0}, {init.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return common::ErrnoError("wait for the container init");
    }
    if (p[0].revents & POLLIN) {
      char c;
      ssize_t n = ::read(fifo.get(), &c, 1);
      if (n == 1) break;
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      return common::MakeError(Errc::kAborted,
                               "the container init closed exec.fifo without starting");
    }
    if (p[1].revents && !(p[0].revents & POLLIN))
      return common::MakeError(Errc::kAborted, "the container init exited before start");
  }
  if (::unlinkat(dir_fd, kExecFifo, 0) != 0) return common::ErrnoError("remove exec.fifo");
  if (!s.poststart.empty())
    RunHooksWarn(s.poststart, "poststart",
                 HookState(s.id, "running", s.pid, s.bundle, s.annotations));
  return {};
}

Status DestroyContainer(const fs::path& root, const State& s) {
  if (UniqueFd init = OpenInit(s); init) (void)PidfdSignal(init.get(), SIGKILL);
  TRY(DestroyCgroups(s.cgroups));
  // Without a pid namespace or cgroup membership the init may still be on
  // its way out; its mounts and namespaces go with it.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (InitAlive(s)) {
    if (std::chrono::steady_clock::now() > deadline)
      return common::MakeError(Errc::kUnavailable, "the container init did not exit");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  TRY(RemoveStateDir(root / s.id));
  if (!s.poststop.empty())
    RunHooksWarn(s.poststop, "poststop", HookState(s.id, "stopped", 0, s.bundle, s.annotations));
  return {};
}

}  // namespace rt

Status Start(const RuntimeOptions& ro, const std::string& id) {
  ASSIGN_OR_RETURN(UniqueFd dir, rt::LockContainerDir(ro.root, id));
  ASSIGN_OR_RETURN(rt::State s, rt::LoadState(ro.root, id));
  switch (rt::CurrentStatus(s, dir.get())) {
    case ContainerStatus::kStopped:
      return Precondition("cannot start a container that has stopped");
    case ContainerStatus::kRunning:
    case ContainerStatus::kPaused:
      return Precondition("cannot start an already running container");
    case ContainerStatus::kCreated:
      break;
  }
  return rt::TriggerStart(dir.get(), s);
}

Result<ContainerInfo> State(const RuntimeOptions& ro, const std::string& id) {
  ASSIGN_OR_RETURN(rt::State s, rt::LoadState(ro.root, id));
  UniqueFd dir(::open((ro.root / id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return common::ErrnoError("open state of `" + id + "`");
  return Info(s, rt::CurrentStatus(s, dir.get()), "", 2);
}

Status Kill(const RuntimeOptions& ro, const std::string& id, int sig, bool all) {
  ASSIGN_OR_RETURN(rt::State s, rt::LoadState(ro.root, id));
  if (!all) return SignalInit(s, sig);
  TRY(rt::SignalCgroup(s.cgroups, sig));
  (void)SignalInit(s, sig);  // also outside the cgroup (none, in practice)
  return {};
}

Status Delete(const RuntimeOptions& ro, const std::string& id, bool force) {
  ASSIGN_OR_RETURN(UniqueFd dir, rt::LockContainerDir(ro.root, id));
  auto s = rt::LoadState(ro.root, id);
  if (!s) {
    // A create that died before writing its state: only --force clears it.
    if (force && s.error().code == Errc::kNotFound) return rt::RemoveStateDir(ro.root / id);
    return std::unexpected(s.error());
  }
  ContainerStatus status = rt::CurrentStatus(*s, dir.get());
  if ((status == ContainerStatus::kRunning || status == ContainerStatus::kPaused) && !force)
    return Precondition("cannot delete container `" + id +
                        "` that is not stopped: " + rt::StatusName(status));
  // A frozen container's processes cannot die before they are thawed.
  if (status == ContainerStatus::kPaused) TRY(rt::FreezeCgroups(s->cgroups, false));
  return rt::DestroyContainer(ro.root, *s);
}

Result<int> Run(const RuntimeOptions& ro, const std::string& id, const CreateOptions& co,
                bool detach) {
  std::optional<rt::ConsoleRelay> console;
  ASSIGN_OR_RETURN(rt::State s, rt::CreateContainer(ro, id, co, detach ? nullptr : &console));
  auto abandon = [&](common::Error e) -> Result<int> {
    (void)rt::DestroyContainer(ro.root, s);
    while (::waitpid(s.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return std::unexpected(std::move(e));
  };
  std::optional<rt::SignalForwarder> forward;
  if (!detach) forward.emplace(s.pid);
  if (console)
    if (auto st = console->ReceiveMaster(); !st) return abandon(st.error());
  {
    UniqueFd dir(::open((ro.root / id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return abandon(common::ErrnoError("open state of `" + id + "`").error());
    if (auto st = rt::TriggerStart(dir.get(), s); !st) return abandon(st.error());
  }
  if (detach) return 0;
  auto code = console ? console->RelayUntilExit(s.pid) : rt::WaitExitCode(s.pid);
  if (!code) return abandon(code.error());
  forward.reset();
  TRY(rt::DestroyContainer(ro.root, s));
  return code;
}

namespace {

// pause (freeze) a running container, resume (thaw) a paused one.
Status SetFrozen(const RuntimeOptions& ro, const std::string& id, bool freeze) {
  ASSIGN_OR_RETURN(UniqueFd dir, rt::LockContainerDir(ro.root, id));
  ASSIGN_OR_RETURN(rt::State s, rt::LoadState(ro.root, id));
  ContainerStatus status = rt::CurrentStatus(s, dir.get());
  ContainerStatus want = freeze ? ContainerStatus::kRunning : ContainerStatus::kPaused;
  if (status != want)
    return Precondition(std::string(freeze ? "container not running: " : "container not paused: ") +
                        rt::StatusName(status));
  return rt::FreezeCgroups(s.cgroups, freeze);
}

}  // namespace

Status Pause(const RuntimeOptions& ro, const std::string& id) { return SetFrozen(ro, id, true); }

Status Resume(const RuntimeOptions& ro, const std::string& id) { return SetFrozen(ro, id, false); }

Status Update(const RuntimeOptions& ro, const std::string& id, std::string_view resources_json) {
  ASSIGN_OR_RETURN(rt::Resources res, rt::ParseResourcesJson(resources_json));
  ASSIGN_OR_RETURN(UniqueFd dir, rt::LockContainerDir(ro.root, id));
  ASSIGN_OR_RETURN(rt::State s, rt::LoadState(ro.root, id));
  if (rt::CurrentStatus(s, dir.get()) == ContainerStatus::kStopped)
    return Precondition("container not running: stopped");
  return Wrap(rt::UpdateCgroups(s.cgroups, res), "update cgroups");
}

Result<std::string> StatsEvent(const RuntimeOptions& ro, const std::string& id) {
  ASSIGN_OR_RETURN(rt::State s, rt::LoadState(ro.root, id));
  UniqueFd dir(::open((ro.root / id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return common::ErrnoError("open state of `" + id + "`");
  if (rt::CurrentStatus(s, dir.get()) == ContainerStatus::kStopped)
    return Precondition("container not running: stopped");
  rt::CgroupStats st = rt::ReadCgroupStats(s.cgroups);
  nlohmann::ordered_json j;
  j["type"] = "stats";
  j["id"] = id;
  j["data"]["cpu"]["usage"]["total"] = st.cpu_total_ns;
  j["data"]["memory"]["usage"] = {
      {"limit", st.memory_limit}, {"usage", st.memory_usage}, {"max", st.memory_max_usage}};
  j["data"]["pids"] = {{"current", st.pids_current}, {"limit", st.pids_limit}};
  return j.dump();
}

Result<std::vector<ContainerInfo>> List(const RuntimeOptions& ro) {
  std::vector<ContainerInfo> out;
  UniqueFd root(::open(ro.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) {
    if (errno == ENOENT) return out;
    return common::ErrnoError("open `" + ro.root.string() + "`");
  }
  DIR* d = ::fdopendir(::dup(root.get()));
  if (!d) return common::ErrnoError("read `" + ro.root.string() + "`");
  std::vector<std::string> ids;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ids.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(ids.begin(), ids.end());
  for (const std::string& id : ids) {
    auto s = rt::LoadState(ro.root, id);
    if (!s) continue;  // being created or deleted
    UniqueFd dir(::openat(root.get(), id.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir) continue;
    out.push_back(Info(*s, rt::CurrentStatus(*s, dir.get()), OwnerOf(dir.get()), -1));
  }
  return out;
}

Result<std::vector<pid_t>> Pids(const RuntimeOptions& ro, const std::string& id) {
  ASSIGN_OR_RETURN(rt::State s, rt::LoadState(ro.root, id));
  return rt::CgroupPids(s.cgroups);
}

Result<int> ParseSignal(std::string_view name) {
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
    int n = std::atoi(std::string(name).c_str());
    if (n > 0 && n < NSIG) return n;
  }
  std::string up;
  for (char c : name) up += static_cast<char>(toupper(static_cast<unsigned char>(c)));
  if (up.starts_with("SIG")) up = up.substr(3);
  for (const auto& [n, sig] : kSignals)
    if (up == n) return sig;
  return common::MakeError(Errc::kInvalidArgument, "unknown signal `" + std::string(name) + "`");
}

}  // namespace ociruntime
