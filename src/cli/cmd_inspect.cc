// gantry inspect REF: the image record's descriptor, manifest and config.

#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/store_open.h"
#include "image/image_record.h"
#include "oci/manifest.h"

namespace cli {
namespace {

enum class Blob { kManifest, kConfig };

// A stored manifest, index or config as JSON. A config is parsed within its
// limits (oci/manifest.h), as every other reader of configs does: it
// may be 16 MiB of tiny values.
common::Result<nlohmann::json> BlobJson(const OpenedStore& s, const common::Digest& d,
                                        Blob kind = Blob::kManifest) {
  ASSIGN_OR_RETURN(std::string body, s.content->ReadBlob(d));
  if (kind == Blob::kConfig)
    return common::Wrap(oci::ParseImageConfigJson(body), "config " + d.str());
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
    auto img = image::FromRecord(r);
    if (!img) return ReportError(img.error().Wrap("inspect " + r.name));
    // "labels" shows the record as stored, labels the model does not know
    // included: this is where a damaged or newer record is looked at.
    nlohmann::json j = {{"name", img->name},
                        {"target", oci::DescriptorToJson(img->target)},
                        {"labels", r.labels},
                        {"created_ns", img->created_ns}};
    auto m = BlobJson(*s, image::PlatformManifest(*img));
    if (!m) return ReportError(m.error().Wrap("inspect " + r.name));
    j["manifest"] = std::move(*m);
    if (image::PlatformManifest(*img) != img->target.digest) {
      auto idx = BlobJson(*s, img->target.digest);
      if (idx) j["index"] = std::move(*idx);
    }
    if (!img->config)
      return ReportError(
          common::MakeError(common::Errc::kDataLoss,
                            "inspect " + r.name + ": the image config is not recorded")
              .error());
    auto c = BlobJson(*s, *img->config, Blob::kConfig);
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
  auto* cmd =
      app.add_subcommand("inspect", "Show an image's descriptor, manifest and config as JSON");
  cmd->add_option("image", *ref, "Reference or image id")->required();
  cmd->callback([&global, &exit_code, ref] { exit_code = Run(global, *ref); });
}

}  // namespace cli
