#include "image/image_record.h"

#include <charconv>

#include "image/fetch.h"

namespace image {
namespace {

const std::string* Find(const store::ImageRecord& r, std::string_view key) {
  // The labels are keyed by std::string: one buffer per thread for the
  // lookup key, rather than an allocation per lookup (listings read
  // thousands of records).
  thread_local std::string k;
  k.assign(key);
  auto it = r.labels.find(k);
  return it == r.labels.end() ? nullptr : &it->second;
}

// A label holding a digest. Absent and "" are both "not recorded": the
// readers before this model read labels through a helper that returned ""
// for a missing one, and no gantry ever wrote an empty digest.
common::Result<std::optional<common::Digest>> DigestLabel(const store::ImageRecord& r,
                                                          std::string_view key) {
  const std::string* v = Find(r, key);
  if (v == nullptr || v->empty()) return std::optional<common::Digest>();
  auto d = common::Digest::Parse(*v);
  if (!d)
    return common::MakeError(
        common::Errc::kDataLoss,
        "image record `" + r.name + "`: label " + std::string(key) + ": " + d.error().message);
  return std::optional<common::Digest>(std::move(*d));
}

// io.gantry.size: absent is "not recorded"; anything but a non-negative
// decimal is damage.
common::Result<std::optional<int64_t>> SizeLabel(const store::ImageRecord& r,
                                                 std::string_view key) {
  const std::string* v = Find(r, key);
  if (v == nullptr) return std::optional<int64_t>();
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (v->empty() || ec != std::errc() || end != v->data() + v->size() || n < 0)
    return common::MakeError(common::Errc::kDataLoss, "image record `" + r.name + "`: label " +
                                                          std::string(key) + ": `" + *v +
                                                          "` is not a size in bytes");
  return std::optional<int64_t>(n);
}

}  // namespace

Image FromRecordColumns(const store::ImageRecord& record) {
  Image img;
  img.name = record.name;
  img.target = record.target;
  img.created_ns = record.created_ns;
  img.updated_ns = record.updated_ns;
  return img;
}

common::Result<Image> FromRecord(const store::ImageRecord& record) {
  Image img = FromRecordColumns(record);
  ASSIGN_OR_RETURN(img.manifest, DigestLabel(record, kLabelManifest));
  ASSIGN_OR_RETURN(img.config, DigestLabel(record, kLabelConfig));
  if (const std::string* p = Find(record, kLabelPlatform)) img.platform = *p;
  if (Find(record, kLabelChain) != nullptr) {
    img.unpacked = true;
    // "" is an unpacked image with no layers, not a missing label.
    ASSIGN_OR_RETURN(img.top_chain, DigestLabel(record, kLabelChain));
  }
  if (const std::string* dir = Find(record, kLabelSourceLayout)) {
    const std::string* ref_name = Find(record, kLabelSourceRefName);
    img.layout = LayoutSource{.dir = *dir, .ref_name = ref_name ? *ref_name : std::string()};
  }
  if (const std::string* c = Find(record, kLabelCreated)) img.config_created = *c;
  ASSIGN_OR_RETURN(img.content_size, SizeLabel(record, kLabelSize));
  return img;
}

store::ImageRecord ToRecord(const Image& image) {
  store::ImageRecord r{.name = image.name,
                       .target = image.target,
                       .created_ns = image.created_ns,
                       .updated_ns = image.updated_ns,
                       .labels = {}};
  if (image.manifest) r.labels[std::string(kLabelManifest)] = image.manifest->str();
  if (image.config) r.labels[std::string(kLabelConfig)] = image.config->str();
  if (!image.platform.empty()) r.labels[std::string(kLabelPlatform)] = image.platform;
  if (image.unpacked || image.top_chain) SetTopChain(r, image.top_chain);
  if (image.layout) {
    r.labels[std::string(kLabelSourceLayout)] = image.layout->dir;
    r.labels[std::string(kLabelSourceRefName)] = image.layout->ref_name;
  }
  if (image.config_created) r.labels[std::string(kLabelCreated)] = *image.config_created;
  if (image.content_size) r.labels[std::string(kLabelSize)] = std::to_string(*image.content_size);
  return r;
}

void SetTopChain(store::ImageRecord& record, const std::optional<common::Digest>& top) {
  record.labels[std::string(kLabelChain)] = top ? top->str() : std::string();
}

common::Digest PlatformManifest(const Image& image) {
  return image.manifest ? *image.manifest : image.target.digest;
}

common::Digest ImageId(const Image& image) {
  return image.config ? *image.config : image.target.digest;
}

int64_t ContentSize(const oci::Descriptor& target, const oci::Descriptor& manifest,
                    int64_t config_size, const std::vector<oci::Descriptor>& layers) {
  int64_t total = target.size;
  if (manifest.digest != target.digest) total += manifest.size;
  total += config_size;
  for (const oci::Descriptor& l : layers) total += l.size;
  return total;
}

Image ImageOf(const FetchResult& pulled) {
  Image img;
  img.name = pulled.name;
  img.target = pulled.target;
  img.manifest = pulled.manifest.digest;
  img.config = pulled.config.digest;
  img.platform = pulled.platform;
  img.config_created = pulled.image_config.created;
  img.content_size = ContentSize(pulled.target, pulled.manifest, pulled.config.size, pulled.layers);
  if (pulled.origin)
    img.layout = LayoutSource{.dir = pulled.origin->dir, .ref_name = pulled.origin->ref_name};
  return img;
}

common::Result<store::ImageRecord> RecordOf(const FetchResult& pulled) {
  return ToRecord(ImageOf(pulled));
}

}  // namespace image
