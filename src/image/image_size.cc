#include "image/image_size.h"

#include "image/conventions.h"
#include "registry/manifest.h"

namespace image {

int64_t ImageContentSize(const store::ContentStore& content, const store::ImageRecord& r) {
  int64_t total = r.target.size;
  auto label = r.labels.find(std::string(kLabelManifest));
  if (label == r.labels.end()) return total;
  auto mdigest = common::Digest::Parse(label->second);
  if (!mdigest) return total;
  auto body = content.ReadBlob(*mdigest);
  if (!body) return total;
  auto m = registry::ParseManifest(*body, "");
  if (!m) return total;
  if (*mdigest != r.target.digest) total += static_cast<int64_t>(body->size());
  total += m->config.size;
  for (const auto& l : m->layers) total += l.size;
  return total;
}

}  // namespace image
