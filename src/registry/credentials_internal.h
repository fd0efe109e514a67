#pragma once
// Internals of the credential store, shared by credentials.cc,
// credentials_helper.cc and the unit tests. Not part of the module's API.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "registry/credentials_types.h"

namespace registry::credentials_internal {

// Docker Hub's key in docker's config and the server URL its helpers get.
inline constexpr std::string_view kDockerHubKey = "https://index.docker.io/v1/";
// What a helper's Username means when Secret is an identity token.
inline constexpr std::string_view kTokenUsername = "<token>";

// The host a config key names: "https://host/v1/" → "host", "host/v2/" →
// "host", "host" → "host"; Docker Hub aliases become "docker.io". nullopt
// for keys with a repository path ("quay.io/org"), which are scoped to a
// namespace rather than a host.
[[nodiscard]] std::optional<std::string> HostOfKey(std::string_view key);

// Validates and canonicalises a host given by a caller (also accepting the
// key forms above). Errors: InvalidArgument.
[[nodiscard]] common::Result<std::string> CanonicalHost(std::string_view host);

// The key docker writes for a canonical host, which is also the server URL
// handed to helpers: kDockerHubKey for "docker.io", else the host.
[[nodiscard]] std::string KeyForHost(std::string_view canonical_host);

// RFC 4648 base64 with padding; Decode also accepts unpadded input.
[[nodiscard]] std::string Base64Encode(std::string_view data);
[[nodiscard]] std::optional<std::string> Base64Decode(std::string_view text);

// How a child process ended and what it printed.
struct ProcessResult {
  int exit_status = -1;  // exit code, or -1 when killed by a signal
  int term_signal = 0;   // the signal when killed by one
  std::string out;
  std::string err;
};

struct ProcessOptions {
  // argv[0] is the program: a path, or a bare name searched on $PATH.
  std::vector<std::string> argv;
  std::string_view input;  // written to stdin, which is then closed
  std::chrono::milliseconds timeout{30'000};
  size_t max_output = 1u << 20;  // per stream
};

// Runs a program with posix_spawn (no fork of a threaded parent), stdin,
// stdout and stderr on O_CLOEXEC pipes, the parent's environment, a clean
// signal mask and default SIGPIPE. The child is always reaped; on timeout
// or error it is killed first. SIGPIPE from writing to a child that quit
// early is absorbed without touching process-wide signal dispositions.
// Errors: Unavailable naming argv[0] (spawn failure — errno kept —,
// timeout, output over max_output); Internal for pipe/poll failures.
[[nodiscard]] common::Result<ProcessResult> RunProcess(const ProcessOptions& options);

// A docker-credential-<name> program.
class CredentialHelper {
 public:
  // Errors: InvalidArgument when `name` is empty or not [A-Za-z0-9._-]+
  // (a name is joined to a path, so '/' and ".." must not get through).
  [[nodiscard]] static common::Result<CredentialHelper> Create(
      std::string_view name, const std::filesystem::path& helper_dir,
      std::chrono::milliseconds timeout);

  // "docker-credential-<name>"
  const std::string& program() const { return program_; }

  // nullopt when the helper has no credentials for `server_url`.
  [[nodiscard]] common::Result<std::optional<Credentials>> Get(std::string_view server_url) const;
  // Stores username/password, or the identity token as Username "<token>".
  [[nodiscard]] common::Status Store(std::string_view server_url,
                                     const Credentials& credentials) const;
  // false when the helper had nothing to erase.
  [[nodiscard]] common::Result<bool> Erase(std::string_view server_url) const;

 private:
  CredentialHelper(std::string program, std::filesystem::path path,
                   std::chrono::milliseconds timeout)
      : program_(std::move(program)), path_(std::move(path)), timeout_(timeout) {}

  // Runs `<helper> <action>` with `input` on stdin: its stdout when it
  // succeeded, nullopt when it reported "credentials not found".
  [[nodiscard]] common::Result<std::optional<std::string>> Run(std::string_view action,
                                                               std::string_view input) const;

  std::string program_;
  std::filesystem::path path_;  // full path, or program_ to search $PATH
  std::chrono::milliseconds timeout_;
};

}  // namespace registry::credentials_internal
