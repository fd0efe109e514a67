// gantry serve: the CRI ImageService over gRPC on a Unix socket. The server
// is a separate executable, gantry-serve, installed beside gantry, so that
// the everyday commands do not load gRPC, protobuf and abseil at start-up.
// Here the flags are parsed (for --help and usage errors), then gantry-serve
// replaces this process with the same command line: same pid (systemd's
// LISTEN_PID still matches), environment, descriptors and signal mask.

#include <unistd.h>

#include <memory>

#include "cli/commands.h"
#include "cli/publish_flags.h"
#include "cli/serve_flags.h"

namespace cli {
namespace {

// Returns only on failure.
common::Error ExecServe(char** argv) {
  auto exe = ServeExecutablePath();
  if (!exe) return exe.error();
  argv[0] = const_cast<char*>(exe->c_str());
  ::execv(exe->c_str(), argv);
  return common::ErrnoError("serve: exec `" + *exe + "`").error();
}

}  // namespace

void RegisterServe(CLI::App& app, GlobalOptions& /*global*/, int& exit_code, char** argv) {
  // Parsed only to validate them and for --help; gantry-serve parses them again.
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = AddServeCommand(app, *flags);
  cmd->callback([&exit_code, argv, flags] { exit_code = ReportError(ExecServe(argv)); });
}

}  // namespace cli
