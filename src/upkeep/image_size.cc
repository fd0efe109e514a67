#include "upkeep/image_size.h"

#include "oci/manifest.h"

namespace upkeep {

int64_t ImageContentSize(const store::ContentStore& content, const image::Image& image) {
  int64_t total = image.target.size;
  // The target stands for a platform manifest that is not recorded, as
  // for every other reader (image_record.h); a size once read only a
  // recorded one, which every pulled record has.
  const common::Digest mdigest = image::PlatformManifest(image);
  auto body = content.ReadBlob(mdigest);
  if (!body) return total;
  auto m = oci::ParseManifest(*body, "");
  if (!m) return total;
  if (mdigest != image.target.digest) total += static_cast<int64_t>(body->size());
  total += m->config.size;
  for (const auto& l : m->layers) total += l.size;
  return total;
}

}  // namespace upkeep
