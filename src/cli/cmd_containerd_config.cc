// gantry containerd-config [--snapshotter-socket PATH] [--mirror URL]...
//                          [--certs-dir DIR] [REGISTRY...]:
// prints what a node's containerd needs to use gantry's two doors: one
// config.toml fragment (the proxy snapshotter, the CRI plugin's
// snapshotter and registry config_path) and one hosts.toml per registry
// (registry/hosts_toml.h), each under the path it goes to. By default the
// registries are those of the images in the store. Nothing is written:
// the operator (or a config-management tool) puts the files in place.

#include <iostream>
#include <set>

#include "cli/commands.h"
#include "cli/store_open.h"
#include "registry/hosts_toml.h"
#include "registry/reference.h"

namespace cli {
namespace {

struct ContainerdConfigFlags {
  std::vector<std::string> mirrors;
  registry::ContainerdConfigOptions config;
  std::vector<std::string> registries;
};

int Run(const GlobalOptions& global, const ContainerdConfigFlags& f) {
  auto config = registry::ContainerdConfigToml(f.config);
  if (!config) {
    std::cerr << "gantry: containerd-config: " << config.error().message << "\n";
    return kExitUsage;
  }
  std::vector<std::string> mirrors = f.mirrors;
  if (mirrors.empty()) mirrors.push_back("http://127.0.0.1:5050");
  std::set<std::string> registries(f.registries.begin(), f.registries.end());
  if (registries.empty()) {
    auto s = OpenStore(global);
    if (!s) return ReportError(s.error());
    auto walked = s->metadata->ForEachImage([&](store::ImageRecord&& rec) -> common::Status {
      // Names that are not references (none today) are skipped, not fatal.
      if (auto ref = registry::ImageRef::Parse(rec.name)) registries.insert(ref->domain());
      return {};
    });
    if (!walked) return ReportError(walked.error().Wrap("containerd-config: list images"));
    if (registries.empty()) {
      std::cerr << "gantry: containerd-config: no REGISTRY given and no image in the store\n";
      return kExitUsage;
    }
  }
  std::string out = "# /etc/containerd/config.toml\n" + *config;
  for (const std::string& r : registries) {
    auto toml = registry::MirrorHostsToml(r, mirrors);
    if (!toml) return ReportError(toml.error().Wrap("containerd-config"));
    out += "\n# " + f.config.certs_dir + "/" + r + "/hosts.toml\n" + *toml;
  }
  std::cout << out;
  return kExitOk;
}

}  // namespace

void RegisterContainerdConfig(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<ContainerdConfigFlags>();
  auto* cmd = app.add_subcommand(
      "containerd-config",
      "Print containerd's configuration for gantry's doors: one config.toml fragment (version 2: "
      "gantry's snapshotter door as the proxy snapshotter `gantry`, the CRI plugin's snapshotter "
      "and registry config_path) and one hosts.toml per registry (gantry's registry door first, "
      "the registry itself as the fallback)");
  cmd->footer(
      "The config.toml fragment and each hosts.toml are printed after a comment line naming the "
      "file they go to; merge the fragment into containerd's config.toml. Registries default to "
      "those of the images in the store. containerd tries the mirror first and moves on to the "
      "registry when the mirror answers 404, which the door does for anything the store lacks. "
      "See docs/containerd.md.");
  cmd->add_option("--snapshotter-socket", f->config.snapshotter_socket,
                  "Socket of gantry's snapshotter door (`gantry serve --snapshotter-listen "
                  "unix://PATH`)")
      ->default_str(f->config.snapshotter_socket);
  cmd->add_option("--mirror", f->mirrors,
                  "URL of gantry's registry door (`gantry serve --registry-listen`); repeatable, "
                  "tried in order")
      ->default_str("http://127.0.0.1:5050")
      ->allow_extra_args(false);  // one URL per --mirror: the registries follow
  cmd->add_option("--certs-dir", f->config.certs_dir,
                  "containerd's registry config_path directory (absolute)")
      ->default_str(f->config.certs_dir);
  cmd->add_option(
      "registry", f->registries,
      "Registry hosts (docker.io, ghcr.io, 127.0.0.1:5000); default: those in the store");
  cmd->callback([&global, &exit_code, f] { exit_code = Run(global, *f); });
}

}  // namespace cli
