// gantry images [--digests] [--json]: the image records in the store.

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/store_open.h"
#include "image/image_size.h"
#include "registry/pull.h"
#include "registry/reference.h"

namespace cli {
namespace {

struct ImagesOptions {
  bool digests = false;
  bool json = false;
};

std::string Label(const store::ImageRecord& r, std::string_view key) {
  auto it = r.labels.find(std::string(key));
  return it == r.labels.end() ? "" : it->second;
}

int Run(const GlobalOptions& global, const ImagesOptions& o) {
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  auto images = s->metadata->ListImages();
  if (!images) return ReportError(images.error());
  if (o.json) {
    auto arr = nlohmann::json::array();
    for (const auto& r : *images) {
      arr.push_back({{"name", r.name},
                     {"target", store::DescriptorToJson(r.target)},
                     {"config", Label(r, registry::kLabelConfig)},
                     {"platform", Label(r, registry::kLabelPlatform)},
                     {"size", image::ImageContentSize(*s->content, r)},
                     {"created_ns", r.created_ns}});
    }
    std::cout << arr.dump(2) << "\n";
    return kExitOk;
  }
  size_t width = 14;
  for (const auto& r : *images) width = std::max(width, r.name.size());
  auto row = [&](const std::string& name, const std::string& digest, const std::string& id,
                 const std::string& size) {
    std::printf("%-*s  ", static_cast<int>(width), name.c_str());
    if (o.digests) std::printf("%-71s  ", digest.c_str());
    std::printf("%-12s  %10s\n", id.c_str(), size.c_str());
  };
  row("REPOSITORY:TAG", "DIGEST", "IMAGE ID", "SIZE");
  for (const auto& r : *images) {
    std::string id = Label(r, registry::kLabelConfig);
    if (id.starts_with("sha256:")) id = id.substr(7, 12);
    row(r.name, r.target.digest.str(), id, HumanBytes(image::ImageContentSize(*s->content, r)));
  }
  return kExitOk;
}

}  // namespace

void RegisterImages(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto o = std::make_shared<ImagesOptions>();
  auto* cmd = app.add_subcommand("images", "List images in the store");
  cmd->add_flag("--digests", o->digests, "Show the digest each name points at");
  cmd->add_flag("--json", o->json, "Print JSON");
  cmd->callback([&global, &exit_code, o] { exit_code = Run(global, *o); });
}

}  // namespace cli
