// gantry tag SRC NEW: another name for an image of the store (logic in
// image/push.h, TagImage).

#include <iostream>

#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/store_open.h"
#include "image/push.h"
#include "registry/source.h"

namespace cli {
namespace {

int Run(const GlobalOptions& global, const std::string& source, const std::string& target) {
  auto name = registry::LocalImageName(target);
  if (!name) return ReportError(name.error().Wrap("tag: new name `" + target + "`"));
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  auto recs = FindImages(*s->metadata, source);
  if (!recs) return ReportError(recs.error().Wrap("tag"));
  if (auto st = image::TagImage(*s->metadata, recs->front().name, name->str()); !st)
    return ReportError(st.error().Wrap("tag " + recs->front().name + " as " + name->str()));
  return kExitOk;
}

}  // namespace

void RegisterTag(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto source = std::make_shared<std::string>();
  auto target = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("tag", "Give an image of the store another name");
  cmd->add_option("source", *source, "Image in the store (reference, short name or image id)")
      ->required();
  cmd->add_option("target", *target,
                  "New name (a name without a registry goes under localhost/: app:v1 is "
                  "localhost/app:v1); an image that had it loses it")
      ->required();
  cmd->callback(
      [&global, &exit_code, source, target] { exit_code = Run(global, *source, *target); });
}

}  // namespace cli
