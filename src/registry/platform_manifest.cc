#include "registry/platform_manifest.h"

#include <string>

namespace registry {

common::Result<std::optional<oci::IndexEntry>> SelectPlatformEntry(const ImageSource& src,
                                                                   const FetchedManifest& top,
                                                                   const oci::Platform& platform) {
  ASSIGN_OR_RETURN(oci::ManifestKind kind, oci::ClassifyManifest(top.media_type));
  if (kind != oci::ManifestKind::kIndex) return std::nullopt;
  ASSIGN_OR_RETURN(oci::Index index, oci::ParseIndex(top.body, top.media_type));
  auto entry = oci::SelectPlatform(index, platform);
  if (!entry) return std::unexpected(entry.error().Wrap(src.Describe()));
  return std::optional<oci::IndexEntry>(std::move(*entry));
}

common::Result<FetchedManifest> FetchPlatformManifest(ImageSource& src,
                                                      const oci::Descriptor& entry,
                                                      const std::atomic<bool>* cancel) {
  ASSIGN_OR_RETURN(FetchedManifest m, src.GetManifest(entry.digest, entry.media_type, cancel));
  // The source verified the digest against the body it read; the index's
  // size is a separate claim, and a descriptor that lies about it is bad
  // input whoever reads it.
  if (static_cast<int64_t>(m.body.size()) != entry.size)
    return common::MakeError(common::Errc::kDataLoss, "manifest " + entry.digest.str() + " has " +
                                                          std::to_string(m.body.size()) +
                                                          " bytes, the index says " +
                                                          std::to_string(entry.size));
  if (m.media_type.empty()) m.media_type = entry.media_type;
  return m;
}

}  // namespace registry
