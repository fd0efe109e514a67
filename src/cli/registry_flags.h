#pragma once
// Flags shared by commands that talk to registries (pull, serve, login).

#include <CLI/CLI.hpp>
#include <string>

#include "cli/app.h"
#include "common/error.h"
#include "fleet/peer_set.h"
#include "image/fetch.h"
#include "image/trust_gate.h"
#include "registry/client.h"

namespace cli {

struct RegistryFlags {
  bool plain_http = false;
  bool tls_verify = true;
  std::string creds;  // "user:pass"
  int64_t min_rate = 1024;
  int min_rate_window_s = 60;
  bool allow_link_local_redirects = false;
};

void AddRegistryFlags(CLI::App* cmd, RegistryFlags& flags);

// Fleet peers (pull, serve; docs/fleet.md).
struct PeerFlags {
  std::string source{};  // --peers SOURCE; "" = no peers
  std::string self{};    // --peers-self HOST:PORT
  int homes = 2;         // --peers-homes K
  // --peers-offline-tags: registry::ClientOptions::peers_offline_tags.
  bool offline_tags = false;
};

// --peers, --peers-homes, --peers-self (its help says what `serving`
// means), --peers-offline-tags (needs --peers).
void AddPeerFlags(CLI::App* cmd, PeerFlags& flags, bool serving);

// The peer set the flags name (fleet::PeerSet::Start), null without
// --peers. Errors: InvalidArgument, "--peers: …".
[[nodiscard]] common::Result<std::shared_ptr<fleet::PeerSet>> StartPeers(const PeerFlags& flags);

// --max-layers N (pull, serve): FetchOptions::max_layers, 1 or more.
void AddMaxLayersFlag(CLI::App* cmd, int& max_layers);

// Checks a refresh interval (prepull --refresh, serve --prepull-refresh)
// at parse time: a common::ParseDuration text over zero ("90s", "15m",
// "1h30m", "1d"); anything else is a usage error.
CLI::Validator RefreshIntervalCheck();

// ClientOptions from the flags, the global --registry-config, and the
// credential store (docker config.json, helpers, containers auth.json).
[[nodiscard]] common::Result<registry::ClientOptions> MakeClientOptions(const GlobalOptions& global,
                                                                        const RegistryFlags& flags);

// --platform OS/ARCH[/VARIANT] (pull, copy, inspect): nullopt when not
// given. Errors: InvalidArgument, "--platform: …".
[[nodiscard]] common::Result<std::optional<oci::Platform>> PlatformFlag(const std::string& text);

// The signature policy the global --signature-policy and --registries-d
// name (image::LoadTrustPolicy), for PullImageOptions::trust.
[[nodiscard]] common::Result<std::shared_ptr<const image::TrustPolicy>> LoadTrust(
    const GlobalOptions& global);

}  // namespace cli
