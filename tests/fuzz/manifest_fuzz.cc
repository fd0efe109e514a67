// Manifest and index parsing and validation (registry/manifest.h): bodies
// a registry sends. Input: the media type (the Content-Type the registry
// answered with) on the first line, the body after it.

#include <string_view>

#include "fuzz_util.h"
#include "registry/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  std::string_view text = fuzz::AsText(data, size);
  size_t nl = text.find('\n');
  std::string_view media_type = text.substr(0, nl);
  std::string_view body = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);

  (void)registry::ClassifyManifest(media_type);
  (void)registry::LayerCompressionOf(media_type);
  if (auto p = registry::ParsePlatform(media_type)) {
    (void)registry::PlatformMatch(registry::HostPlatform(), *p);
    (void)p->str();
  }

  if (auto m = registry::ParseManifest(body, media_type)) {
    for (const auto& layer : m->layers) (void)registry::LayerCompressionOf(layer.media_type);
  }
  if (auto index = registry::ParseIndex(body, media_type)) {
    for (const auto& entry : index->manifests) {
      if (!entry.platform) continue;
      if (auto selected = registry::SelectPlatform(*index, *entry.platform)) {
        fuzz::Check(selected->platform.has_value(), "selected an entry without a platform");
        fuzz::Check(registry::PlatformMatch(*entry.platform, *selected->platform).has_value(),
                    "selected a platform that does not match");
      }
    }
    (void)registry::SelectPlatform(*index, registry::HostPlatform());
  }
  return 0;
}
