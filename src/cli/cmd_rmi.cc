// gantry rmi REF...: removes image names. Content and snapshots are freed by
// `gantry prune`, which knows what other images still share.

#include <iostream>

#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/store_open.h"

namespace cli {
namespace {

int Run(const GlobalOptions& global, const std::vector<std::string>& refs) {
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  int rc = kExitOk;
  for (const auto& text : refs) {
    auto recs = FindImages(*s->metadata, text);
    if (!recs) {
      rc = ReportError(recs.error().Wrap("rmi"));
      continue;
    }
    for (const auto& r : *recs) {
      if (auto st = s->metadata->DeleteImage(r.name); !st) {
        rc = ReportError(st.error().Wrap("rmi " + r.name));
        continue;
      }
      std::cout << "Untagged: " << r.name << "\n";
    }
  }
  return rc;
}

}  // namespace

void RegisterRmi(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto refs = std::make_shared<std::vector<std::string>>();
  auto* cmd = app.add_subcommand("rmi", "Remove image names (content is freed by prune)");
  cmd->add_option("image", *refs, "References or image ids")->required();
  cmd->callback([&global, &exit_code, refs] { exit_code = Run(global, *refs); });
}

}  // namespace cli
