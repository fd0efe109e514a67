#pragma once
// Shared pieces of the `gantry` command line: global options, the mapping
// of error codes to exit codes, and error printing. Each subcommand lives in
// its own cmd_*.cc and registers itself through a Register* function.

#include <CLI/CLI.hpp>
#include <atomic>
#include <filesystem>
#include <string>

#include "common/error.h"

namespace cli {

struct GlobalOptions {
  std::filesystem::path root;  // store root; see DefaultRoot()
  std::string log_level = "info";
  // "text" | "json": how log lines, and the final error line, are written
  // to stderr (common/log.h).
  std::string log_format = "text";
  // hosts.toml / certs.d directory searched before /etc/docker/certs.d;
  // default /etc/gantry/certs.d.
  std::filesystem::path registry_config = "/etc/gantry/certs.d";
  // "overlayfs" | "native": the snapshotter for unpacking, bundles and
  // mounts (overlayfs falls back to native, with a warning, where it cannot
  // be mounted).
  std::string snapshotter = "overlayfs";
  // The signature policy every pull obeys (image/trust_gate.h):
  // containers-policy.json(5). The default file is used when it exists;
  // a file named with --signature-policy must exist.
  std::filesystem::path signature_policy = "/etc/containers/policy.json";
  bool signature_policy_given = false;
  // Where signatures are stored: containers-registries.d(5).
  std::filesystem::path registries_d = "/etc/containers/registries.d";
};

// /var/lib/gantry for root, $XDG_DATA_HOME/gantry (or ~/.local/share/gantry)
// otherwise.
std::filesystem::path DefaultRoot();

// The version `--version` prints ("0.1.0").
std::string_view Version();

// Adds --version and the global options (--root, --log-level, --log-format,
// --registry-config, --snapshotter, --signature-policy, --registries-d)
// bound to `global`, which it fills with
// their defaults. `gantry` and `gantry-serve` both call it, so that
// `gantry serve` can pass its command line to gantry-serve unchanged.
void AddGlobalOptions(CLI::App& app, GlobalOptions& global);

// What the global options set before a command runs: the log level and,
// when `raise_open_files`, the soft open-file limit (raised to the hard one).
void ApplyGlobalOptions(const GlobalOptions& global, bool raise_open_files);

// Exit codes, documented in `gantry help`.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,       // internal or unclassified failure
  kExitUsage = 2,         // bad command line or invalid argument
  kExitNotFound = 3,      // image, tag, blob or snapshot does not exist
  kExitAuth = 4,          // unauthenticated or permission denied
  kExitUnavailable = 5,   // registry unreachable, timed out, rate-limited
  kExitDataLoss = 6,      // digest or size mismatch, corrupt store
  kExitNoSpace = 7,       // disk full or another resource exhausted
  kExitConflict = 8,      // already exists, failed precondition, aborted
  kExitCancelled = 130,   // interrupted
  kExitBrokenPipe = 141,  // stdout's reader went away (128 + SIGPIPE); see IgnoreSigpipe
};

int ExitCodeFor(common::Errc code);
// The exit-code table as printed by `gantry help`.
std::string ExitCodeHelp();

// Installs SIGINT and SIGTERM handlers that set the returned flag, which
// long operations poll to stop cleanly (partial downloads kept, exit 130).
const std::atomic<bool>* CancelOnSignals();

// For a command that writes a progress stream while it holds store state
// (`gantry pull`: a lease, partial downloads, an unpack): ignores SIGPIPE,
// so that a reader that goes away (`gantry pull --json REF | head -c 300`)
// does not kill it in the middle of a write. The writer reports the
// failed write (EPIPE) with OutputClosed instead. Not for commands that
// exec other programs: SIG_IGN survives exec.
void IgnoreSigpipe();
// Cancels the command as SIGINT does (the flag CancelOnSignals returns),
// so that it stops and cleans up; OutputWasClosed() then tells the exit
// code: kExitBrokenPipe.
void OutputClosed();
bool OutputWasClosed();

// Prints "gantry: <message>" to stderr (with --log-format json, a log line
// of level error whose msg is the message and with an exit_code field) and
// returns the exit code for it.
int ReportError(const common::Error& e);

}  // namespace cli
