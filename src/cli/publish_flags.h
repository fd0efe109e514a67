#pragma once
// The containerd flags of `gantry publish` and `gantry pull`, and how the
// `gantry` executable has gantry-serve publish: the publication is a gRPC
// client of containerd (ctrpublish/publish.h), and only gantry-serve links
// gRPC, so `gantry` runs `gantry-serve [--root R] [--log-level L] publish
// NAME… FLAGS` (the executable beside itself) with exact record names.
// No gRPC here.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/app.h"

namespace cli {

struct ContainerdFlags {
  std::string address;  // --containerd; "": do not publish
  std::string ns = "k8s.io";
  std::string snapshotter = "gantry";
};

// Which command the containerd flags are for: their help differs.
enum class ContainerdFlagsOf {
  kPublish,  // gantry publish: --containerd required
  kPull,     // gantry pull: publish after the pull, a failure a warning
  kServe,    // gantry serve: publish what the server records, retrying
};

// Adds --containerd, --containerd-namespace and --containerd-snapshotter
// bound to `flags` (which must outlive `cmd`) to `cmd`, with the help of
// the command `of`.
void AddContainerdFlags(CLI::App* cmd, ContainerdFlags& flags, ContainerdFlagsOf of);

// The arguments after the executable for gantry-serve's hidden `publish`
// of the records `names`.
[[nodiscard]] std::vector<std::string> PublishArgs(const GlobalOptions& global,
                                                   const std::vector<std::string>& names,
                                                   const ContainerdFlags& flags);

// gantry-serve in the directory of the running executable.
[[nodiscard]] common::Result<std::string> ServeExecutablePath();

// Runs gantry-serve with `args`, its output going to ours, and waits.
// Returns its exit code (128 + signal when killed). Errors: fork/exec.
[[nodiscard]] common::Result<int> RunServeExecutable(const std::vector<std::string>& args);

// `gantry pull --containerd`: publishes the record `name` once the pull
// is recorded. A failure is a warning on stderr, never the pull's exit
// status (see publish_flags.cc).
void PublishAfterPull(const GlobalOptions& global, const std::string& name,
                      const ContainerdFlags& containerd);

}  // namespace cli
