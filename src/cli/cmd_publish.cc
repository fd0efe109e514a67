// gantry publish [flags] IMAGE…: makes store images visible to containerd
// (ctrpublish/publish.h). The names are resolved here, as every command
// resolves them (cli/image_lookup.h); gantry-serve, which links the gRPC
// client, publishes the exact records.

#include <iostream>

#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/publish_flags.h"
#include "cli/store_open.h"

namespace cli {
namespace {

struct PublishFlags {
  std::vector<std::string> images;
  ContainerdFlags containerd;
};

int Run(const GlobalOptions& global, const PublishFlags& f) {
  auto opened = OpenStore(global);
  if (!opened) return ReportError(opened.error());
  std::vector<std::string> names;
  for (const std::string& text : f.images) {
    auto found = FindImages(*opened->metadata, text);
    if (!found) return ReportError(found.error().Wrap("publish"));
    for (const auto& rec : *found) names.push_back(rec.name);
  }
  auto rc = RunServeExecutable(PublishArgs(global, names, f.containerd));
  if (!rc) return ReportError(rc.error().Wrap("publish"));
  if (*rc == kExitOk)
    for (const std::string& n : names) std::cout << n << "\n";
  return *rc;
}

}  // namespace

void RegisterPublish(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<PublishFlags>();
  auto* cmd =
      app.add_subcommand("publish", "Make store images visible to containerd and its CRI plugin");
  cmd->add_option("image", f->images, "Image (name, name@digest or id) in the store")->required();
  AddContainerdFlags(cmd, f->containerd, ContainerdFlagsOf::kPublish);
  cmd->footer(
      "Writes the image's index, manifest and config into containerd's content store, records "
      "its layer chain in containerd through gantry's snapshotter door (`gantry serve "
      "--snapshotter-listen`, configured in containerd as [proxy_plugins.NAME], NAME given by "
      "--containerd-snapshotter) and creates or updates containerd's image records as its CRI "
      "plugin does on a pull: the name, NAME@DIGEST and the image id. containerd fetches no "
      "layer. Publishing again updates; nothing is duplicated.");
  cmd->callback([&global, &exit_code, f] { exit_code = Run(global, *f); });
}

}  // namespace cli
