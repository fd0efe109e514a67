// gantry serve: the CRI ImageService over gRPC on a Unix socket. The server
// is a separate executable, gantry-serve, installed beside gantry, so that
// the everyday commands do not load gRPC, protobuf and abseil at start-up.
// Here the flags are parsed (for --help and usage errors), then gantry-serve
// replaces this process with the same command line: same pid (systemd's
// LISTEN_PID still matches), environment, descriptors and signal mask.

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <system_error>

#include "cli/commands.h"
#include "cli/serve_flags.h"

namespace cli {
namespace {

constexpr const char* kServeExecutable = "gantry-serve";

// gantry-serve in the directory of the running executable (not $PATH, not
// argv[0]: a gantry run by a relative path or through a symlink still finds
// the one installed with it).
common::Result<std::filesystem::path> ServeExecutable() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return common::ErrnoError("read `/proc/self/exe`", ec.value());
  return self.parent_path() / kServeExecutable;
}

// Returns only on failure.
common::Error ExecServe(char** argv) {
  auto exe = ServeExecutable();
  if (!exe) return exe.error();
  argv[0] = const_cast<char*>(exe->c_str());
  ::execv(exe->c_str(), argv);
  return common::ErrnoError("serve: exec `" + exe->string() + "`").error();
}

}  // namespace

void RegisterServe(CLI::App& app, GlobalOptions& /*global*/, int& exit_code, char** argv) {
  // Parsed only to validate them and for --help; gantry-serve parses them again.
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = AddServeCommand(app, *flags);
  cmd->callback([&exit_code, argv, flags] { exit_code = ReportError(ExecServe(argv)); });
}

}  // namespace cli
