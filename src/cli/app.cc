#include "cli/app.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "common/fd.h"
#include "common/log.h"

#ifndef GANTRY_VERSION
#define GANTRY_VERSION "0.0.0"
#endif

namespace cli {

std::filesystem::path DefaultRoot() {
  if (::geteuid() == 0) return "/var/lib/gantry";
  if (const char* x = std::getenv("XDG_DATA_HOME"); x != nullptr && *x != '\0')
    return std::filesystem::path(x) / "gantry";
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0')
    return std::filesystem::path(h) / ".local/share/gantry";
  return "/var/lib/gantry";
}

std::string_view Version() { return GANTRY_VERSION; }

void AddGlobalOptions(CLI::App& app, GlobalOptions& global) {
  // Inherited by every subcommand added after this (nested ones too): an
  // option a subcommand does not know goes up to its parent, so the global
  // options are accepted after the subcommand as well, as podman accepts
  // them (`gantry pull --root X REF`, `gantry snapshot ls --root X`).
  // `gantry runtime` takes everything after it unparsed (runc's own --root).
  app.fallthrough();
  app.set_version_flag("--version,-V", std::string("gantry ") + GANTRY_VERSION);
  global.root = DefaultRoot();
  app.add_option("--root", global.root, "Store root directory")->default_str(global.root.string());
  app.add_option("--log-level", global.log_level, "Log level: debug, info, warn, error, off")
      ->default_str(global.log_level)
      ->check(CLI::IsMember({"debug", "info", "warn", "warning", "error", "off"}));
  app.add_option("--log-format", global.log_format,
                 "Log format on stderr: text (time level message key=value…) or json (one "
                 "object per line: time, level, msg and the same fields)")
      ->default_str(global.log_format)
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--registry-config", global.registry_config,
                 "Registry hosts directory (containerd hosts.toml and certs.d layout)")
      ->default_str(global.registry_config.string());
  app.add_option("--snapshotter", global.snapshotter,
                 "Snapshotter: overlayfs (falls back to native where overlay cannot be mounted) "
                 "or native")
      ->default_str(global.snapshotter)
      ->check(CLI::IsMember({"overlayfs", "native"}));
  app.add_option_function<std::string>(
         "--signature-policy",
         [&global](const std::string& file) {
           global.signature_policy = file;
           global.signature_policy_given = true;
         },
         "Signature policy every image taken in obeys: pull, load, copy, CRI PullImage "
         "(containers-policy.json(5); the default is used when it exists, else every image is "
         "accepted; docs/trust.md)")
      ->type_name("FILE")
      ->default_str(global.signature_policy.string());
  app.add_option("--registries-d", global.registries_d,
                 "Where image signatures are stored (containers-registries.d(5) directory)")
      ->type_name("DIR")
      ->default_str(global.registries_d.string());
}

void ApplyGlobalOptions(const GlobalOptions& global, bool raise_open_files) {
  common::SetLogLevel(*common::ParseLogLevel(global.log_level));
  common::SetLogFormat(*common::ParseLogFormat(global.log_format));
  if (!raise_open_files) return;
  auto before = common::RaiseOpenFileLimit();
  if (!before)
    LOG(Debug) << "cannot raise the open file limit" << common::Kv("error", before.error().message);
}

int ExitCodeFor(common::Errc code) {
  using common::Errc;
  switch (code) {
    case Errc::kInvalidArgument:
    case Errc::kUnimplemented:
      return kExitUsage;
    case Errc::kNotFound:
      return kExitNotFound;
    case Errc::kUnauthenticated:
    case Errc::kPermissionDenied:
      return kExitAuth;
    case Errc::kUnavailable:
      return kExitUnavailable;
    case Errc::kDataLoss:
      return kExitDataLoss;
    case Errc::kResourceExhausted:
      return kExitNoSpace;
    case Errc::kAlreadyExists:
    case Errc::kFailedPrecondition:
    case Errc::kAborted:
      return kExitConflict;
    case Errc::kCancelled:
      return kExitCancelled;
    case Errc::kInternal:
      return kExitFailure;
  }
  return kExitFailure;
}

std::string ExitCodeHelp() {
  return "Exit codes:\n"
         "  0    success\n"
         "  1    internal or unclassified failure\n"
         "  2    bad command line or invalid argument (e.g. a malformed reference)\n"
         "  3    not found (image, tag, blob, snapshot)\n"
         "  4    authentication required or permission denied\n"
         "  5    registry unavailable (refused, timed out, 5xx, rate-limited)\n"
         "  6    data loss (digest or size mismatch, corrupt content or store)\n"
         "  7    no space or another resource exhausted\n"
         "  8    conflict (already exists, wrong state, aborted)\n"
         "  130  cancelled (interrupted)\n"
         "  141  pull cancelled because the reader of its output went away (broken pipe)\n";
}

namespace {
std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_output_closed{false};
void OnSignal(int) { g_interrupted = true; }
}  // namespace

void IgnoreSigpipe() {
  struct sigaction sa {};
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, nullptr);
}

void OutputClosed() {
  g_output_closed = true;
  g_interrupted = true;
}

bool OutputWasClosed() { return g_output_closed.load(); }

const std::atomic<bool>* CancelOnSignals() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return &g_interrupted;
}

int ReportError(const common::Error& e) {
  const int code = ExitCodeFor(e.code);
  if (common::GetLogFormat() == common::LogFormat::kJson)
    std::cerr << common::FormatLogLine(common::LogLevel::Error, e.message,
                                       {{"exit_code", std::to_string(code)}});
  else
    std::cerr << "gantry: " << e.message << "\n";
  return code;
}

}  // namespace cli
