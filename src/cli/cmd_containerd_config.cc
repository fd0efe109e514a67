// gantry containerd-config [--mirror URL]... [--certs-dir DIR] [REGISTRY...]:
// prints what a node's containerd needs to pull through gantry's registry
// door: the CRI plugin's config_path fragment and one hosts.toml per
// registry (registry/hosts_toml.h), each under the path it goes to. By
// default the registries are those of the images in the store. Nothing
// is written: the operator (or a config-management tool) puts the files
// in place. The snapshotter door's fragment is not part of it yet.

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
  std::string certs_dir = "/etc/containerd/certs.d";
  std::vector<std::string> registries;
};

int Run(const GlobalOptions& global, const ContainerdConfigFlags& f) {
  // It goes into a TOML string and comment lines as it is.
  if (f.certs_dir.empty() || f.certs_dir.find_first_of("\"\\\n\r\t") != std::string::npos) {
    std::cerr << "gantry: containerd-config: --certs-dir `" << f.certs_dir
              << "`: empty, or holds a quote, backslash or control character\n";
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
  std::string out =
      "# /etc/containerd/config.toml (version 2): the CRI plugin reads the "
      "hosts.toml files below\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n"
      "  config_path = \"" +
      f.certs_dir + "\"\n";
  for (const std::string& r : registries) {
    auto toml = registry::MirrorHostsToml(r, mirrors);
    if (!toml) return ReportError(toml.error().Wrap("containerd-config"));
    out += "\n# " + f.certs_dir + "/" + r + "/hosts.toml\n" + *toml;
  }
  std::cout << out;
  return kExitOk;
}

}  // namespace

void RegisterContainerdConfig(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<ContainerdConfigFlags>();
  auto* cmd = app.add_subcommand(
      "containerd-config",
      "Print containerd's configuration for pulling through gantry's registry door: the CRI "
      "plugin's config_path and one hosts.toml per registry (the mirror first, the registry "
      "itself as the fallback)");
  cmd->footer(
      "Each hosts.toml is printed after a comment line naming the file it goes to. Registries "
      "default to those of the images in the store. containerd tries the mirror first and moves "
      "on to the registry when the mirror answers 404, which the door does for anything the store "
      "lacks. See docs/containerd.md.");
  cmd->add_option("--mirror", f->mirrors,
                  "URL of gantry's registry door (`gantry serve --registry-listen`); repeatable, "
                  "tried in order")
      ->default_str("http://127.0.0.1:5050")
      ->allow_extra_args(false);  // one URL per --mirror: the registries follow
  cmd->add_option("--certs-dir", f->certs_dir, "containerd's config_path directory")
      ->default_str(f->certs_dir);
  cmd->add_option(
      "registry", f->registries,
      "Registry hosts (docker.io, ghcr.io, 127.0.0.1:5000); default: those in the store");
  cmd->callback([&global, &exit_code, f] { exit_code = Run(global, *f); });
}

}  // namespace cli
