// gantry inspect REF: the image record's descriptor, manifest and config.

#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/store_open.h"
#include "registry/manifest.h"
#include "registry/pull.h"

namespace cli {
namespace {

enum class Blob { kManifest, kConfig };

// A stored manifest, index or config as JSON. A config is parsed within its
// limits (registry/manifest.h), as every other reader of configs does: it
// may be 16 MiB of tiny values.
common::Result<nlohmann::json> BlobJson(const OpenedStore& s, const std::string& digest_text,
                                        Blob kind = Blob::kManifest) {
  ASSIGN_OR_RETURN(common::Digest d, common::Digest::Parse(digest_text));
  ASSIGN_OR_RETURN(std::string body, s.content->ReadBlob(d));
  if (kind == Blob::kConfig)
    return common::Wrap(registry::ParseImageConfigJson(body), "config " + d.str());
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded())
    return common::MakeError(common::Errc::kDataLoss, "blob " + d.str() + " is not valid JSON");
  return j;
}

int Run(const GlobalOptions& global, const std::string& text) {
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  auto recs = FindImages(*s->metadata, text);
  if (!recs) return ReportError(recs.error());
  auto out = nlohmann::json::array();
  for (const auto& r : *recs) {
    nlohmann::json j = {{"name", r.name}, {"target", store::DescriptorToJson(r.target)},
                        {"labels", r.labels}, {"created_ns", r.created_ns}};
    auto m = BlobJson(*s, r.labels.count(std::string(registry::kLabelManifest))
                              ? r.labels.at(std::string(registry::kLabelManifest))
                              : r.target.digest.str());
    if (!m) return ReportError(m.error().Wrap("inspect " + r.name));
    j["manifest"] = std::move(*m);
    auto mlabel = r.labels.find(std::string(registry::kLabelManifest));
    if (mlabel != r.labels.end() && r.target.digest.str() != mlabel->second) {
      auto idx = BlobJson(*s, r.target.digest.str());
      if (idx) j["index"] = std::move(*idx);
    }
    auto c = BlobJson(*s, r.labels.count(std::string(registry::kLabelConfig))
                              ? r.labels.at(std::string(registry::kLabelConfig))
                              : "",
                      Blob::kConfig);
    if (!c) return ReportError(c.error().Wrap("inspect " + r.name));
    j["config"] = std::move(*c);
    out.push_back(std::move(j));
  }
  // Streamed rather than dump()ed: no second copy of a config that is
  // near its limits.
  std::cout << std::setw(2) << (out.size() == 1 ? out[0] : out) << "\n";
  return kExitOk;
}

}  // namespace

void RegisterInspect(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto ref = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("inspect", "Show an image's descriptor, manifest and config as JSON");
  cmd->add_option("image", *ref, "Reference or image id")->required();
  cmd->callback([&global, &exit_code, ref] { exit_code = Run(global, *ref); });
}

}  // namespace cli
