#pragma once
// Writing containerd's hosts.toml, the format registry/hosts.h reads: the
// upstream `server` of one registry domain and mirror hosts in front of
// it, as `gantry containerd-config` prints them for a node whose
// containerd should pull through gantry's registry door
// (docs/containerd.md).
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

}  // namespace registry
