// Manifest and index parsing and validation (oci/manifest.h): bodies
// a registry sends. Input: the media type (the Content-Type the registry
// answered with) on the first line, the body after it. Besides not
// crashing, what the parsers accept must hold what their contracts say,
// and every descriptor must survive the JSON round trip the store makes.

#include <string_view>

#include "fuzz_util.h"
#include "oci/descriptor.h"
#include "oci/manifest.h"

namespace {

void CheckDescriptor(const oci::Descriptor& d) {
  fuzz::Check(d.size >= 0, "descriptor size is not negative");
  auto again = oci::DescriptorFromJson(oci::DescriptorToJson(d));
  fuzz::Check(again && *again == d, "descriptor JSON round trip");
}

bool Is(const common::Result<oci::ManifestKind>& kind, oci::ManifestKind want) {
  return kind && *kind == want;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  std::string_view text = fuzz::AsText(data, size);
  size_t nl = text.find('\n');
  std::string_view media_type = text.substr(0, nl);
  std::string_view body = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);

  (void)oci::ClassifyManifest(media_type);
  (void)oci::LayerCompressionOf(media_type);
  if (auto p = oci::ParsePlatform(media_type)) {
    (void)oci::PlatformMatch(oci::HostPlatform(), *p);
    (void)p->str();
  }

  if (auto m = oci::ParseManifest(body, media_type)) {
    fuzz::Check(Is(oci::ClassifyManifest(m->media_type), oci::ManifestKind::kManifest),
                "a parsed manifest has a manifest media type");
    CheckDescriptor(m->config);
    for (const auto& layer : m->layers) {
      fuzz::Check(oci::LayerCompressionOf(layer.media_type).has_value(),
                  "every layer has a layer media type");
      CheckDescriptor(layer);
    }
  }
  if (auto index = oci::ParseIndex(body, media_type)) {
    fuzz::Check(Is(oci::ClassifyManifest(index->media_type), oci::ManifestKind::kIndex),
                "a parsed index has an index media type");
    for (const auto& entry : index->manifests) {
      CheckDescriptor(entry.descriptor);
      if (!entry.platform) continue;
      if (auto selected = oci::SelectPlatform(*index, *entry.platform)) {
        fuzz::Check(selected->platform.has_value(), "selected an entry without a platform");
        fuzz::Check(oci::PlatformMatch(*entry.platform, *selected->platform).has_value(),
                    "selected a platform that does not match");
        fuzz::Check(Is(oci::ClassifyManifest(selected->descriptor.media_type),
                       oci::ManifestKind::kManifest),
                    "selected an entry that is not a manifest");
      }
    }
    (void)oci::SelectPlatform(*index, oci::HostPlatform());
  }
  return 0;
}
