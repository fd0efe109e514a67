#pragma once
// Where to send requests for a registry domain: mirrors and the upstream,
// with their TLS settings, from containerd-style hosts.toml files and
// Docker-style certs.d directories.
//
// Lookup, for domain D (e.g. "127.0.0.1:5000", "docker.io"), in each of
// HostsOptions::config_dirs in order; the first directory that has a D/
// subdirectory is used (for docker.io also "registry-1.docker.io/" and
// "index.docker.io/"); if none has, the first that has _default/hosts.toml.
//
// hosts.toml (containerd's format; unknown keys are ignored):
//   server = "https://registry.example.com"   # the upstream; ignored in _default
//   ca = "/path/ca.pem" | ["/a.pem", "/b.pem"]           # top-level keys
//   client = "/c.pem" | ["/c.pem", "/k.pem"] | [["/c.pem", "/k.pem"]]
//   skip_verify = true                                    # apply to the upstream
//   capabilities = ["pull", "resolve"]
//   override_path = true
//   [header] / [host."URL".header]: name = "v" | ["v1", "v2"]
//   [host."https://mirror.example.com"]                   # mirrors, file order
//     capabilities, ca, client, skip_verify, override_path, header as above
// A host URL's path: empty → "/v2"; with override_path → used as given;
// otherwise "/v2" is appended unless the path already ends with "/v2".
// Capabilities default to pull+resolve+push. A [host] entry whose URL is the
// upstream's configures the upstream rather than adding a mirror.
//
// certs.d (Docker's format), in the same D/ directory: every *.crt is a CA
// for the upstream; every *.cert needs a *.key of the same base name (and
// vice versa) and is the upstream's client certificate.
//
// Scheme of the upstream when `server` is not given:
//   - "http" when HostsOptions::plain_http;
//   - "http" for a loopback host (localhost, 127.0.0.0/8, ::1) unless a CA or
//     client certificate is configured for it (certs.d or top-level
//     ca/client in hosts.toml), in which case "https" — Docker's rule that
//     local registries are insecure by default, made deterministic;
//   - "https" otherwise; docker.io maps to https://registry-1.docker.io.
// Mirrors use the scheme of their URL (http:// mirrors are allowed).
// HostsOptions::tls_verify = false turns verification off for every host.
//
// Thread-safety: ResolveHosts reads files only; safe to call concurrently.

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace registry {

struct TlsConfig {
  std::vector<std::string> ca_files;  // added to the system CAs
  std::string client_cert, client_key;
  bool verify = true;
};

// One endpoint, in the order to try.
struct RegistryHost {
  std::string scheme;               // "https" | "http"
  std::string host;                 // "127.0.0.1:5000", "registry-1.docker.io"
  std::string path_prefix = "/v2";  // override_path from hosts.toml
  bool can_pull = true, can_resolve = true, can_push = false;
  bool is_mirror = false;  // credentials for the upstream are not sent to it
  // The scheme was chosen by the user (a hosts.toml URL, or
  // HostsOptions::plain_http), not by the loopback/https default.
  bool scheme_configured = false;
  TlsConfig tls;
  std::map<std::string, std::vector<std::string>> headers;

  // "https://127.0.0.1:5000/v2"
  std::string base_url() const;
};

struct HostsOptions {
  // `--registry-config DIR` replaces the first.
  std::vector<std::filesystem::path> config_dirs = {"/etc/gantry/certs.d", "/etc/docker/certs.d"};
  bool plain_http = false;
  bool tls_verify = true;
};

// The endpoints for `domain`: mirrors first in file order, then the
// upstream. Errors: InvalidArgument for a malformed hosts.toml (naming the
// file, line and problem), an unpaired .cert/.key or a bad host URL; other
// I/O errors as mapped from errno. A missing config directory is not an
// error.
[[nodiscard]] common::Result<std::vector<RegistryHost>> ResolveHosts(std::string_view domain,
                                                                     const HostsOptions& options);

// True for "localhost", 127.0.0.0/8 and ::1, with or without a port.
[[nodiscard]] bool IsLoopbackHost(std::string_view host_and_port);

}  // namespace registry
