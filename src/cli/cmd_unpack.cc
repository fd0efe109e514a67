// gantry unpack REF: apply a pulled image's layers into snapshots.

#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/store_open.h"
#include "cli/unpack_step.h"
#include "image/pull.h"

namespace cli {
namespace {

int Run(const GlobalOptions& global, const std::string& text) {
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  auto sn = OpenSnapshotter(global);
  if (!sn) return ReportError(sn.error());
  auto recs = FindImages(*s->metadata, text);
  if (!recs) return ReportError(recs.error().Wrap("unpack"));
  const image::PullStore store{
      .root = global.root, .content = s->content.get(), .metadata = s->metadata.get()};
  for (const auto& r : *recs) {
    auto u = image::UnpackStoredImage(store, **sn, r.name, nullptr);
    if (!u) return ReportError(u.error());
    PrintUnpackSummary(stdout, r.name, **sn, *u);
  }
  return kExitOk;
}

}  // namespace

void RegisterUnpack(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto ref = std::make_shared<std::string>();
  auto* cmd =
      app.add_subcommand("unpack", "Apply a pulled image's layers into snapshots named by chainID");
  cmd->add_option("image", *ref, "Reference or image id")->required();
  cmd->callback([&global, &exit_code, ref] { exit_code = Run(global, *ref); });
}

}  // namespace cli
