#include "cli/registry_flags.h"

#include <memory>

#include "common/time_text.h"
#include "registry/credentials.h"

namespace cli {

void AddRegistryFlags(CLI::App* cmd, RegistryFlags& flags) {
  cmd->add_flag("--plain-http", flags.plain_http,
                "Use plain HTTP (the default for loopback registries); also lets credentials go "
                "to a plain-HTTP token realm on a loopback host (docs/registry.md)");
  cmd->add_flag("--tls-verify,!--no-tls-verify", flags.tls_verify,
                "Verify registry certificates (--tls-verify=false to skip)")
      ->default_str("true");
  cmd->add_option("--creds", flags.creds, "Registry credentials USER:PASS");
  cmd->add_option("--min-rate", flags.min_rate,
                  "Abort a transfer (download or upload) slower than this many bytes/s for "
                  "--min-rate-window")
      ->default_str(std::to_string(flags.min_rate));
  cmd->add_option("--min-rate-window", flags.min_rate_window_s,
                  "Seconds a transfer may stay under --min-rate")
      ->default_str(std::to_string(flags.min_rate_window_s));
  cmd->add_flag("--allow-link-local-redirects", flags.allow_link_local_redirects,
                "Let registry redirects and token realms lead to link-local and cloud metadata "
                "addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254, 100.100.100.200), refused "
                "by default");
}

void AddPeerFlags(CLI::App* cmd, PeerFlags& flags, bool serving) {
  CLI::Option* source =
      cmd->add_option("--peers", flags.source,
                      "Ask other gantry nodes' registry doors for each blob before the registry: "
                      "SOURCE is dns:NAME:PORT (every A/AAAA record, re-resolved every 3 s), "
                      "file:PATH (one HOST:PORT a line, re-read when it changes) or a comma list; "
                      "each blob is asked of its --peers-homes home peers (rendezvous hashing of "
                      "its digest), whose bytes are verified like any (docs/fleet.md)");
  cmd->add_option("--peers-homes", flags.homes,
                  "How many home peers each blob has (each pulls it from the registry at most "
                  "once)")
      ->default_str(std::to_string(flags.homes))
      ->check(CLI::PositiveNumber);
  cmd->add_option("--peers-self", flags.self,
                  serving ? "This node's address as the peer list names it (HOST:PORT), never "
                            "asked; default: the --registry-listen address as bound"
                          : "The address the peer list names this node by (HOST:PORT), when a "
                            "`gantry serve --peers` serves this store: never asked");
  cmd->add_flag("--peers-offline-tags", flags.offline_tags,
                "When the registry and its mirrors are unreachable (connection refused or timed "
                "out, 5xx/429 after the retries), resolve a tag through the peers: the manifest "
                "a strict majority of the answering peers name is taken. A trust decision: a "
                "peer can lie about which digest a tag names, never about bytes (docs/fleet.md)")
      ->needs(source);
}

common::Result<std::shared_ptr<fleet::PeerSet>> StartPeers(const PeerFlags& flags) {
  if (flags.source.empty()) return std::shared_ptr<fleet::PeerSet>();
  return common::Wrap(
      fleet::PeerSet::Start({.source = flags.source, .self = flags.self, .homes = flags.homes}),
      "--peers");
}

void AddMaxLayersFlag(CLI::App* cmd, int& max_layers) {
  cmd->add_option("--max-layers", max_layers,
                  "Refuse an image of more layers, as soon as its manifest is read and before "
                  "any blob is downloaded (exit 7, RESOURCE_EXHAUSTED); the default is "
                  "overlayfs's limit of 500 lower layers (docker refuses over 125; "
                  "docs/resources.md)")
      ->default_str(std::to_string(image::kDefaultMaxLayers))
      ->check(CLI::PositiveNumber);
}

CLI::Validator RefreshIntervalCheck() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        auto d = common::ParseDuration(text);
        if (d && d->count() > 0) return "";
        return "`" + text + "`: not a duration over zero (e.g. 90s, 15m, 1h30m, 1d)";
      },
      "DURATION");
}

common::Result<registry::ClientOptions> MakeClientOptions(const GlobalOptions& global,
                                                          const RegistryFlags& flags) {
  registry::ClientOptions o;
  o.hosts.config_dirs = {global.registry_config, "/etc/docker/certs.d"};
  o.hosts.plain_http = flags.plain_http;
  o.hosts.tls_verify = flags.tls_verify;
  o.min_rate_bytes_per_sec = flags.min_rate;
  o.min_rate_window = std::chrono::seconds(flags.min_rate_window_s);
  o.allow_link_local_redirects = flags.allow_link_local_redirects;
  if (!flags.creds.empty()) {
    auto c = registry::ParseCredsFlag(flags.creds);
    if (!c) return std::unexpected(c.error().Wrap("--creds"));
    o.creds = std::move(*c);
  }
  auto creds = std::make_shared<registry::CredentialStore>();
  o.lookup = [creds](std::string_view host) { return creds->Lookup(host); };
  return o;
}

common::Result<std::optional<oci::Platform>> PlatformFlag(const std::string& text) {
  if (text.empty()) return std::optional<oci::Platform>();
  ASSIGN_OR_RETURN(oci::Platform p, common::Wrap(oci::ParsePlatform(text), "--platform"));
  return std::optional<oci::Platform>(std::move(p));
}

common::Result<std::shared_ptr<const image::TrustPolicy>> LoadTrust(const GlobalOptions& global) {
  return image::LoadTrustPolicy({.policy = global.signature_policy,
                                 .policy_required = global.signature_policy_given,
                                 .registries_d = global.registries_d});
}

}  // namespace cli
