// Running docker-credential-<name> helpers.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "common/fd.h"
#include "registry/credentials_internal.h"

extern char** environ;

namespace registry::credentials_internal {
namespace {

using common::Errc;
using common::Error;
using common::MakeError;
using common::Result;
using common::Status;
using common::UniqueFd;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kNotFoundText = "credentials not found";
constexpr size_t kMaxMessage = 512;

std::unexpected<Error> Unavailable(std::unexpected<Error> e) {
  e.error().code = Errc::kUnavailable;
  return e;
}

// A spawned child: killed and reaped on destruction unless Wait()ed.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  ~Child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Reaps the child if it has exited: its wait status, or nullopt while it
  // still runs.
  [[nodiscard]] Result<std::optional<int>> TryWait() {
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      if (r == 0) return std::nullopt;
      if (errno == EINTR) continue;
      // ECHILD: the process ignores SIGCHLD, so the kernel reaped the child
      // and its status is gone.
      pid_ = -1;
      return common::ErrnoError("wait for child");
    }
  }

 private:
  pid_t pid_;
};

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// pipe2(O_CLOEXEC) with both ends above stdio, so that the child's dup2
// onto 0–2 never finds a pipe end already there (dup2 of an fd onto itself
// keeps FD_CLOEXEC, and the exec would close it).
Result<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return common::ErrnoError("create pipe");
  Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
  for (UniqueFd* end : {&p.read, &p.write}) {
    if (end->get() > STDERR_FILENO) continue;
    int moved = ::fcntl(end->get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (moved < 0) return common::ErrnoError("duplicate pipe");
    end->reset(moved);
  }
  return p;
}

Status SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return common::ErrnoError("set pipe non-blocking");
  return {};
}

// write(2) on a pipe whose reader may be gone. SIGPIPE is blocked for this
// thread only and, if the write raised it, consumed before unblocking: the
// disposition is process-wide state that a library must not change.
ssize_t WriteNoSigpipe(int fd, std::string_view data) {
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  sigset_t pending;
  sigpending(&pending);
  bool already_pending = sigismember(&pending, SIGPIPE) == 1;
  ssize_t n = ::write(fd, data.data(), data.size());
  int err = errno;
  if (n < 0 && err == EPIPE && !already_pending) {
    const struct timespec zero {};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = err;
  return n;
}

std::string Trimmed(std::string_view s) {
  auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  if (s.size() > kMaxMessage) return std::string(s.substr(0, kMaxMessage)) + "…";
  return std::string(s);
}

bool ValidHelperName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

}  // namespace

Result<ProcessResult> RunProcess(const ProcessOptions& options) {
  if (options.argv.empty()) return MakeError(Errc::kInvalidArgument, "run process: empty argv");
  const std::string& program = options.argv.front();
  const std::string what = "run `" + program + "`";

  auto in = MakePipe();
  if (!in) return std::unexpected(in.error().Wrap(what));
  auto out = MakePipe();
  if (!out) return std::unexpected(out.error().Wrap(what));
  auto err = MakePipe();
  if (!err) return std::unexpected(err.error().Wrap(what));
  UniqueFd in_r = std::move(in->read), in_w = std::move(in->write);
  UniqueFd out_r = std::move(out->read), out_w = std::move(out->write);
  UniqueFd err_r = std::move(err->read), err_w = std::move(err->write);
  for (int fd : {in_w.get(), out_r.get(), err_r.get()}) {
    if (auto st = SetNonBlocking(fd); !st) return std::unexpected(st.error().Wrap(what));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty_set, default_set;
  sigemptyset(&empty_set);
  sigemptyset(&default_set);
  // The caller may block or ignore these (SIG_IGN survives exec); a helper
  // expects the defaults.
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&default_set, sig);
  posix_spawnattr_setsigmask(&attr, &empty_set);
  posix_spawnattr_setsigdefault(&attr, &default_set);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  argv.reserve(options.argv.size() + 1);
  for (const std::string& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  pid_t pid = -1;
  bool search_path = program.find('/') == std::string::npos;
  int rc = search_path
               ? ::posix_spawnp(&pid, program.c_str(), &actions, &attr, argv.data(), environ)
               : ::posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Unavailable(common::ErrnoError(what, rc));
  Child child(pid);
  in_r.reset();
  out_w.reset();
  err_w.reset();

  const Clock::time_point deadline = Clock::now() + options.timeout;
  auto timed_out = [&] {
    return MakeError(Errc::kUnavailable,
                     what + ": timed out after " + std::to_string(options.timeout.count()) + "ms");
  };

  ProcessResult result;
  std::string_view input = options.input;
  if (input.empty()) in_w.reset();
  while (in_w || out_r || err_r) {
    std::array<pollfd, 3> pfds{};
    nfds_t n = 0;
    int in_i = -1, out_i = -1, err_i = -1;
    if (in_w) pfds[in_i = static_cast<int>(n++)] = {in_w.get(), POLLOUT, 0};
    if (out_r) pfds[out_i = static_cast<int>(n++)] = {out_r.get(), POLLIN, 0};
    if (err_r) pfds[err_i = static_cast<int>(n++)] = {err_r.get(), POLLIN, 0};
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return timed_out();
    int ready = ::poll(pfds.data(), n, static_cast<int>(left.count()));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return common::ErrnoError(what + ": poll");
    }
    if (ready == 0) return timed_out();

    if (in_i >= 0 && pfds[in_i].revents != 0) {
      ssize_t w = WriteNoSigpipe(in_w.get(), input);
      if (w >= 0) {
        input.remove_prefix(static_cast<size_t>(w));
        if (input.empty()) in_w.reset();
      } else if (errno == EPIPE) {
        // The child does not read (all of) its input; its exit status and
        // output tell the caller what happened.
        in_w.reset();
      } else if (errno != EAGAIN && errno != EINTR) {
        return common::ErrnoError(what + ": write stdin");
      }
    }
    auto drain = [&](int index, UniqueFd& fd, std::string& sink) -> Status {
      if (index < 0 || pfds[index].revents == 0) return {};
      char buf[4096];
      ssize_t r = ::read(fd.get(), buf, sizeof buf);
      if (r > 0) {
        if (sink.size() + static_cast<size_t>(r) > options.max_output)
          return MakeError(Errc::kUnavailable, what + ": output exceeds " +
                                                   std::to_string(options.max_output) + " bytes");
        sink.append(buf, static_cast<size_t>(r));
      } else if (r == 0) {
        fd.reset();
      } else if (errno != EAGAIN && errno != EINTR) {
        return common::ErrnoError(what + ": read output");
      }
      return {};
    };
    TRY(drain(out_i, out_r, result.out));
    TRY(drain(err_i, err_r, result.err));
  }

  // Output is closed; the child is exiting or has handed its pipes to a
  // descendant and lingers. Poll for it with a short backoff, bounded by
  // the same deadline (a plain waitpid could block forever).
  auto backoff = std::chrono::milliseconds(1);
  int status = 0;
  for (;;) {
    auto waited = child.TryWait();
    if (!waited) return std::unexpected(std::move(waited.error()).Wrap(what));
    if (*waited) {
      status = **waited;
      break;
    }
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return timed_out();
    ::poll(nullptr, 0, static_cast<int>(std::min(backoff, left).count()));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(50));
  }
  if (WIFEXITED(status)) {
    result.exit_status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  return result;
}

Result<CredentialHelper> CredentialHelper::Create(std::string_view name,
                                                  const std::filesystem::path& helper_dir,
                                                  std::chrono::milliseconds timeout) {
  if (!ValidHelperName(name))
    return MakeError(Errc::kInvalidArgument,
                     "credential helper name `" + std::string(name) +
                         "`: must be non-empty and use only [A-Za-z0-9._-]");
  std::string program = "docker-credential-" + std::string(name);
  std::filesystem::path path =
      helper_dir.empty() ? std::filesystem::path(program) : helper_dir / program;
  return CredentialHelper(std::move(program), std::move(path), timeout);
}

Result<std::optional<std::string>> CredentialHelper::Run(std::string_view action,
                                                         std::string_view input) const {
  const std::string what = "credential helper `" + program_ + " " + std::string(action) + "`";
  auto r = RunProcess(
      {.argv = {path_.string(), std::string(action)}, .input = input, .timeout = timeout_});
  if (!r) {
    Error e = std::move(r.error());
    // RunProcess names the path; the helper's name is what the user knows.
    e.code = Errc::kUnavailable;
    return std::unexpected(std::move(e).Wrap(what));
  }
  if (r->exit_status == 0) return std::move(r->out);
  if (r->out.find(kNotFoundText) != std::string::npos ||
      r->err.find(kNotFoundText) != std::string::npos)
    return std::nullopt;
  std::string cause = r->term_signal != 0 ? "killed by signal " + std::to_string(r->term_signal)
                                          : "exit status " + std::to_string(r->exit_status);
  std::string message = Trimmed(r->err.empty() ? r->out : r->err);
  if (!message.empty()) cause += ": " + message;
  return MakeError(Errc::kUnavailable, what + ": " + cause);
}

Result<std::optional<Credentials>> CredentialHelper::Get(std::string_view server_url) const {
  ASSIGN_OR_RETURN(std::optional<std::string> out, Run("get", server_url));
  if (!out) return std::nullopt;
  auto bad_output = [&](std::string_view why) {
    return MakeError(Errc::kUnavailable,
                     "credential helper `" + program_ + " get`: " + std::string(why));
  };
  nlohmann::json doc = nlohmann::json::parse(*out, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return bad_output("output is not a JSON object");
  auto field = [&](const char* name) -> std::optional<std::string> {
    auto it = doc.find(name);
    if (it == doc.end() || it->is_null()) return std::string();
    if (!it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  std::optional<std::string> username = field("Username");
  std::optional<std::string> secret = field("Secret");
  if (!username || !secret) return bad_output("`Username` and `Secret` must be strings");
  if (username->empty() && secret->empty()) return std::nullopt;
  Credentials creds;
  if (*username == kTokenUsername) {
    creds.identity_token = std::move(*secret);
  } else {
    creds.username = std::move(*username);
    creds.password = std::move(*secret);
  }
  return std::optional<Credentials>(std::move(creds));
}

Status CredentialHelper::Store(std::string_view server_url, const Credentials& credentials) const {
  bool token = credentials.username.empty() && !credentials.identity_token.empty();
  nlohmann::json doc = {
      {"ServerURL", std::string(server_url)},
      {"Username", token ? std::string(kTokenUsername) : credentials.username},
      {"Secret", token ? credentials.identity_token : credentials.password},
  };
  std::string input;
  try {
    input = doc.dump();
  } catch (const nlohmann::json::exception&) {
    return MakeError(Errc::kInvalidArgument,
                     "credential helper `" + program_ + " store`: credentials are not valid UTF-8");
  }
  ASSIGN_OR_RETURN(std::optional<std::string> out, Run("store", input));
  if (!out)
    return MakeError(Errc::kUnavailable,
                     "credential helper `" + program_ + " store`: reported credentials not found");
  return {};
}

Result<bool> CredentialHelper::Erase(std::string_view server_url) const {
  ASSIGN_OR_RETURN(std::optional<std::string> out, Run("erase", server_url));
  return out.has_value();
}

}  // namespace registry::credentials_internal
