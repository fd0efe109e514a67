#pragma once
// Registry credentials stored the way docker, podman and skopeo store them.
//
// Sources, consulted in this order by Lookup; the first that has
// credentials for the host wins, a source without them passes to the next:
//   1. docker config `credHelpers[host]`  → docker-credential-<name> get
//   2. docker config `credsStore`         → docker-credential-<name> get
//   3. docker config `auths[host]`        (`auth` = base64 "user:pass", or
//      `username`/`password`, `identitytoken`, `registrytoken`)
//   4. containers auth.json `auths[host]` (same entry format; podman/skopeo)
//
// Docker config (~/.docker/config.json), abridged:
//   {
//     "auths": {
//       "https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
//       "127.0.0.1:5000": {"identitytoken": "…"},
//       "ghcr.io": {}                       ← written by `login` with a helper
//     },
//     "credsStore": "pass",
//     "credHelpers": {"123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"}
//   }
//
// Host keys. A host is "registry.example:5000"; "docker.io",
// "index.docker.io" and "registry-1.docker.io" are one registry, which
// docker files under "https://index.docker.io/v1/". A key matches a host
// when it equals it or, after dropping an "http://"/"https://" scheme and
// any path after it ("https://host/", "https://host/v1/"), or a bare "/",
// "/v1/" or "/v2/" suffix ("host/v2/"), names the same host. Keys with a
// repository path ("quay.io/org/app", podman's per-namespace form) never
// match a bare host. An exact key wins over an alias.
//
// Credential helper protocol (docker-credential-helpers):
//   docker-credential-<name> get    stdin: server URL
//                                   stdout: {"ServerURL","Username","Secret"}
//   docker-credential-<name> store  stdin: {"ServerURL","Username","Secret"}
//   docker-credential-<name> erase  stdin: server URL
// Username "<token>" means Secret is an identity token. A non-zero exit
// whose output contains "credentials not found" means "none". The server
// URL given to a helper is the host, or "https://index.docker.io/v1/" for
// Docker Hub. Helpers are found in `helper_dir`, or on $PATH, and run with
// posix_spawn (safe from threaded code) under `helper_timeout`; a helper
// that overruns is killed. Every child is reaped.
//
// Thread-safety: a CredentialStore is immutable after construction; Lookup
// may run concurrently from many threads. Login and Logout rewrite files
// atomically (temp file + rename) but take no lock: concurrent writers,
// here or in docker/podman, race and the last rename wins.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string_view>

#include "common/error.h"
#include "registry/credentials_types.h"

namespace registry {

struct CredentialStoreOptions {
  // Empty: $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json (the
  // home directory from the password database when HOME is unset).
  std::filesystem::path docker_config;
  // Empty: $XDG_RUNTIME_DIR/containers/auth.json when XDG_RUNTIME_DIR is
  // set, else no containers auth file is used.
  std::filesystem::path containers_auth;
  // Where docker-credential-<name> is looked for. Empty: $PATH.
  std::filesystem::path helper_dir;
  // Wall-clock budget for one helper invocation.
  std::chrono::milliseconds helper_timeout{30'000};
};

class CredentialStore {
 public:
  // Resolves the empty paths of `options` from the environment, once.
  explicit CredentialStore(CredentialStoreOptions options = {});

  // The options with defaults resolved.
  const CredentialStoreOptions& options() const { return options_; }

  // Credentials for `host` ("127.0.0.1:5000", "docker.io"; a key-style
  // "https://index.docker.io/v1/" is accepted too). nullopt when no source
  // has any. Missing files are "nothing configured".
  // Errors:
  //   InvalidArgument — `host` is empty or has a path, whitespace or
  //     control characters; a config file is not valid JSON, has fields of
  //     the wrong type, an undecodable `auth`, or names a helper with a
  //     '/' in it (the message names the file);
  //   Unavailable — a helper could not be run, failed, timed out or
  //     printed something other than the protocol's JSON (the message
  //     names the helper);
  //   others — reading a config file failed (mapped from errno).
  [[nodiscard]] common::Result<std::optional<Credentials>> Lookup(std::string_view host) const;

  // `gantry login`: stores `credentials` for `host`. With a helper
  // configured for the host (credHelpers, else credsStore) the secret goes
  // to `docker-credential-<name> store` and the docker config keeps an
  // empty `auths[host]` entry, as docker does; without one, `auths[host]`
  // gets `auth` (base64 "user:pass") and/or `identitytoken`. Any other
  // entry aliasing the same host is dropped so it cannot shadow the new
  // one. Every other key of config.json is preserved (in order). The file
  // is written atomically with mode 0600 (through a symlink to its
  // target); a missing directory is created 0700.
  // REQUIRES: a username without ':' (and a password), or an identity token.
  // Errors: InvalidArgument (bad host or credentials, malformed existing
  // config — which is then left untouched), Unavailable (helper), others
  // from the file system.
  [[nodiscard]] common::Status Login(std::string_view host, const Credentials& credentials);

  // `gantry logout`: erases `host` from the helper configured for it, and
  // drops every entry for it from the docker config's and the containers
  // auth.json's `auths`. Files are rewritten only when something changed.
  // Errors: NotFound when no source had the host; InvalidArgument (bad
  // host, malformed file); Unavailable (helper; file entries are still
  // removed before it is reported).
  [[nodiscard]] common::Status Logout(std::string_view host);

 private:
  CredentialStoreOptions options_;
};

// Parses "user:pass" (the --creds flag), splitting at the first ':' so the
// password may contain colons. Errors: InvalidArgument when there is no ':'
// or the user is empty.
[[nodiscard]] common::Result<Credentials> ParseCredsFlag(std::string_view text);

// Docker's `auth` field (base64 of "user:password", as in config.json and
// the CRI AuthConfig): when non-empty it replaces `creds`' username and
// password. False when it is not base64 of "user:password" (creds
// untouched).
[[nodiscard]] bool ApplyAuthField(std::string_view auth, Credentials& creds);

}  // namespace registry
