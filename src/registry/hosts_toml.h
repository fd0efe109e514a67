#pragma once
// Writing containerd's configuration for a node that uses gantry's doors,
// as `gantry containerd-config` prints it (docs/containerd.md): the
// config.toml fragment (version 2) that loads gantry's snapshotter door as
// a proxy snapshotter, makes it the CRI plugin's snapshotter and points the
// CRI plugin's registry config_path at the hosts.toml files; and each
// hosts.toml, the format registry/hosts.h reads: the upstream `server` of
// one registry domain and mirror hosts (gantry's registry door) in front
// of it.
//
//   ASSIGN_OR_RETURN(std::string toml,
//                    registry::MirrorHostsToml("docker.io", {"http://127.0.0.1:5050"}));
//   // server = "https://registry-1.docker.io"
//   //
//   // [host."http://127.0.0.1:5050"]
//   //   capabilities = ["pull", "resolve"]
//
// Thread-safety: pure functions.

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace registry {

// The URL containerd falls back to for `domain` after its mirrors:
// https://registry-1.docker.io for docker.io (and index.docker.io),
// http:// for a loopback host (the rule ResolveHosts applies when no
// certificate is configured), https:// otherwise.
// Errors: InvalidArgument when `domain` is not a registry domain of the
// reference grammar (reference.h).
[[nodiscard]] common::Result<std::string> UpstreamUrl(std::string_view domain);

// The whole hosts.toml for `domain`: its upstream as `server`, then each
// of `mirrors` (scheme://host[:port][/path], tried in this order) with the
// pull and resolve capabilities, the way containerd reads a trusted
// mirror. Errors: InvalidArgument for a bad domain or mirror URL, or no
// mirror.
[[nodiscard]] common::Result<std::string> MirrorHostsToml(std::string_view domain,
                                                          const std::vector<std::string>& mirrors);

// What the config.toml fragment names.
struct ContainerdConfigOptions {
  // The socket of `gantry serve --snapshotter-listen unix://PATH`.
  std::string snapshotter_socket = "/run/gantry/snapshotter.sock";
  // The CRI plugin's registry config_path: where the hosts.toml files go.
  std::string certs_dir = "/etc/containerd/certs.d";
};

// The proxy plugin's name: `ctr --snapshotter gantry`, and the CRI
// plugin's snapshotter.
inline constexpr char kContainerdSnapshotterName[] = "gantry";

// One containerd config version 2 TOML fragment:
//
//   version = 2
//
//   [proxy_plugins.gantry]
//     type = "snapshot"
//     address = "/run/gantry/snapshotter.sock"
//
//   [plugins."io.containerd.grpc.v1.cri".containerd]
//     snapshotter = "gantry"
//
//   [plugins."io.containerd.grpc.v1.cri".registry]
//     config_path = "/etc/containerd/certs.d"
//
// Errors: InvalidArgument when a path is not absolute or holds a quote, a
// backslash or a control character (it goes into TOML strings as it is).
[[nodiscard]] common::Result<std::string> ContainerdConfigToml(
    const ContainerdConfigOptions& options);

}  // namespace registry
