// gantry unpack REF: apply a pulled image's layers into snapshots.

#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/unpack_step.h"
#include "store/store_lock.h"

namespace cli {
namespace {

int Run(const GlobalOptions& global, const std::string& text) {
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  auto recs = FindImages(*s->metadata, text);
  if (!recs) return ReportError(recs.error().Wrap("unpack"));
  // Shared, as a pull holds it: a prune must not collect the layers or the
  // extract snapshots while they are being applied.
  auto lock = store::StoreLock::Shared(global.root);
  if (!lock) return ReportError(lock.error().Wrap("unpack"));
  for (const auto& r : *recs) {
    auto u = UnpackNamed(global, *s, r.name, stdout, nullptr);
    if (!u) return ReportError(u.error());
  }
  return kExitOk;
}

}  // namespace

void RegisterUnpack(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto ref = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "unpack", "Apply a pulled image's layers into snapshots named by chainID");
  cmd->add_option("image", *ref, "Reference or image id")->required();
  cmd->callback([&global, &exit_code, ref] { exit_code = Run(global, *ref); });
}

}  // namespace cli
