// Lifecycle hooks: each one a fork + execve with the container's state on
// stdin, waited for with its timeout. Where each kind runs is decided by
// the callers (runtime_internal.h).

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "ociruntime/runtime_internal.h"

namespace ociruntime::rt {
namespace {

using common::Errc;
using common::Status;
using common::UniqueFd;

std::string Describe(const char* kind, const Hook& h) {
  return std::string(kind) + " hook `" + h.path + "`";
}

Status RunHook(const char* kind, const Hook& h, const std::string& state) {
  int sv[2];
  // A socket rather than a pipe: MSG_NOSIGNAL spares us SIGPIPE when the
  // hook does not read its stdin.
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return common::ErrnoError("socketpair for " + Describe(kind, h));
  UniqueFd ours(sv[0]), theirs(sv[1]);
  std::vector<char*> argv, envp;
  std::string path = h.path;
  if (h.args.empty()) argv.push_back(path.data());
  for (const std::string& a : h.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : h.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return common::ErrnoError("fork for " + Describe(kind, h));
  if (pid == 0) {
    ResetSignals();
    if (::dup2(theirs.get(), STDIN_FILENO) < 0) ::_exit(127);
    ::execve(path.c_str(), argv.data(), envp.data());
    dprintf(2, "gantry-runtime: exec %s hook `%s`: %s\n", kind, path.c_str(), strerror(errno));
    ::_exit(127);
  }
  theirs.reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  for (size_t off = 0; off < state.size();) {
    ssize_t n = ::send(ours.get(), state.data() + off, state.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // the hook closed its stdin: its business
    }
    off += static_cast<size_t>(n);
  }
  ours.reset();
  if (h.timeout && pidfd) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(*h.timeout);
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{pidfd.get(), POLLIN, 0};
      int r = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
      if (r > 0) break;
      if (r < 0 && errno == EINTR) continue;
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      return common::MakeError(Errc::kUnavailable, Describe(kind, h) + ": timed out after " +
                                                       std::to_string(*h.timeout) + " s");
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return common::ErrnoError("wait for " + Describe(kind, h));
  if (WIFSIGNALED(status))
    return common::MakeError(Errc::kAborted, Describe(kind, h) + ": killed by signal " +
                                                 std::to_string(WTERMSIG(status)));
  if (WEXITSTATUS(status) != 0)
    return common::MakeError(
        Errc::kAborted, Describe(kind, h) + ": exit status " + std::to_string(WEXITSTATUS(status)));
  return {};
}

}  // namespace

std::string HookState(const std::string& id, const char* status, pid_t pid,
                      const std::filesystem::path& bundle,
                      const std::map<std::string, std::string>& annotations) {
  nlohmann::ordered_json j;
  j["ociVersion"] = kOciVersion;
  j["id"] = id;
  j["status"] = status;
  if (pid > 0) j["pid"] = pid;
  j["bundle"] = bundle.string();
  j["annotations"] = annotations;
  return j.dump();
}

Status RunHooks(const std::vector<Hook>& hooks, const char* kind, const std::string& state) {
  for (const Hook& h : hooks) TRY(RunHook(kind, h, state));
  return {};
}

void RunHooksWarn(const std::vector<Hook>& hooks, const char* kind, const std::string& state) {
  for (const Hook& h : hooks)
    if (auto st = RunHook(kind, h, state); !st) LOG(Warn) << st.error().message;
}

}  // namespace ociruntime::rt
