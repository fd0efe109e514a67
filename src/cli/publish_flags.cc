#include "cli/publish_flags.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <system_error>

namespace cli {

void AddContainerdFlags(CLI::App* cmd, ContainerdFlags& flags, ContainerdFlagsOf of) {
  auto* addr = cmd->add_option("--containerd", flags.address,
                               "containerd's gRPC socket (unix:///run/containerd/containerd.sock): "
                               "publish the image there, so that containerd and its CRI plugin "
                               "run containers on gantry's layers without fetching any");
  if (of == ContainerdFlagsOf::kPublish)
    addr->required();
  else if (of == ContainerdFlagsOf::kPull)
    addr->description(addr->get_description() +
                      "; after the pull is recorded (a failed publication is a warning: the "
                      "pull still exits 0, and gantry publish retries it)");
  else
    addr->description(addr->get_description() +
                      ": every image the server records (PullImage, the registry door's "
                      "pull-through), before PullImage answers; RemoveImage removes it from "
                      "containerd too. containerd not answering does not fail the pull: the "
                      "publication is retried in the background with backoff, and its state "
                      "shown by `gantry images` (PUBLISHED)");
  cmd->add_option("--containerd-namespace", flags.ns,
                  "containerd namespace to publish into (k8s.io is the CRI plugin's); created "
                  "when it does not exist")
      ->capture_default_str();
  cmd->add_option("--containerd-snapshotter", flags.snapshotter,
                  "containerd's name for gantry's snapshotter door ([proxy_plugins.NAME])")
      ->capture_default_str();
}

std::vector<std::string> PublishArgs(const GlobalOptions& global,
                                     const std::vector<std::string>& names,
                                     const ContainerdFlags& flags) {
  std::vector<std::string> args = {"--root",         global.root.string(), "--log-level",
                                   global.log_level, "--log-format",       global.log_format,
                                   "publish"};
  args.insert(args.end(), names.begin(), names.end());
  for (const auto& a : {"--containerd", flags.address.c_str(), "--containerd-namespace",
                        flags.ns.c_str(), "--containerd-snapshotter", flags.snapshotter.c_str()})
    args.emplace_back(a);
  return args;
}

common::Result<std::string> ServeExecutablePath() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return common::ErrnoError("read `/proc/self/exe`", ec.value());
  return (self.parent_path() / "gantry-serve").string();
}

common::Result<int> RunServeExecutable(const std::vector<std::string>& args) {
  ASSIGN_OR_RETURN(std::string exe, ServeExecutablePath());
  std::vector<char*> argv;
  argv.push_back(exe.data());
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = ::fork();
  if (pid < 0) return common::ErrnoError("fork `" + exe + "`", errno);
  if (pid == 0) {
    ::execv(exe.c_str(), argv.data());
    // Only async-signal-safe calls between fork and _exit.
    const char* why = strerror(errno);
    const char* parts[] = {"gantry: exec `", exe.c_str(), "`: ", why, "\n"};
    for (const char* p : parts) (void)!::write(STDERR_FILENO, p, strlen(p));
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return common::ErrnoError("wait for `" + exe + "`", errno);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// --containerd: the pull is recorded in the store whatever happens here,
// so a failed publication is a warning and the pull still exits 0: the
// image is there for `gantry publish` to retry, and a non-zero status
// would have retry loops pull again what they already have.
void PublishAfterPull(const GlobalOptions& global, const std::string& name,
                      const ContainerdFlags& containerd) {
  std::cout.flush();
  auto rc = RunServeExecutable(PublishArgs(global, {name}, containerd));
  if (!rc)
    std::cerr << "gantry: warning: " << rc.error().Wrap("publish " + name).message << "\n";
  else if (*rc != kExitOk)
    std::cerr << "gantry: warning: publish " << name << " to containerd failed (exit " << *rc
              << "); the image is in the store: retry with gantry publish\n";
}

}  // namespace cli
