#include "upkeep/image_size.h"

#include "oci/manifest.h"

namespace upkeep {

int64_t ImageContentSize(const store::ContentStore& content, const image::Image& image) {
  if (image.content_size) return *image.content_size;
  // A record written before the size was kept: from the manifest.
  // The target stands for a platform manifest that is not recorded, as
  // for every other reader (image_record.h); a size once read only a
  // recorded one, which every pulled record has.
  const common::Digest mdigest = image::PlatformManifest(image);
  auto body = content.ReadBlob(mdigest);
  if (!body) return image.target.size;
  auto m = oci::ParseManifest(*body, "");
  if (!m) return image.target.size;
  const oci::Descriptor manifest{.media_type = {},
                                 .digest = mdigest,
                                 .size = static_cast<int64_t>(body->size()),
                                 .annotations = {},
                                 .urls = {},
                                 .artifact_type = {}};
  return image::ContentSize(image.target, manifest, m->config.size, m->layers);
}

std::optional<std::string> ImageCreated(const store::ContentStore& content,
                                        const image::Image& image) {
  if (image.config_created) return *image.config_created;
  // A record written before the time was kept: from the config.
  auto body = content.ReadBlob(image::ImageId(image));
  if (!body) return std::nullopt;
  auto parsed = oci::ParseImageConfig(*body);
  if (!parsed) return std::nullopt;
  return std::move(parsed->created);
}

}  // namespace upkeep
