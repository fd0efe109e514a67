// PlanPublish: what a publication writes, read from gantry's store.

#include <algorithm>

#include "ctrpublish/publish.h"
#include "image/image_record.h"
#include "oci/manifest.h"
#include "registry/reference.h"

namespace ctrpublish {
namespace {

using common::Errc;
using common::MakeError;

common::Result<std::string> ReadBlobOf(const PublishStore& store, const common::Digest& digest,
                                       std::string_view what) {
  auto data = store.content->ReadBlob(digest);
  if (!data) return std::unexpected(data.error().Wrap(std::string("read ") + std::string(what)));
  return data;
}

void AddUnique(std::vector<std::string>& names, std::string name) {
  if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
}

}  // namespace

common::Result<PublishPlan> PlanPublish(const PublishStore& store, std::string_view name,
                                        std::string_view snapshotter) {
  ASSIGN_OR_RETURN(store::ImageRecord record, store.metadata->GetImage(name));
  ASSIGN_OR_RETURN(image::Image img, image::FromRecord(record));
  if (!img.unpacked)
    return MakeError(Errc::kFailedPrecondition,
                     "image `" + img.name + "` is not unpacked in gantry (gantry unpack)");
  PublishPlan plan;
  plan.name = img.name;
  plan.target = img.target;

  // The platform manifest's descriptor: the target itself, or its entry in
  // the index (the only platform the store holds).
  const common::Digest manifest_digest = image::PlatformManifest(img);
  oci::Descriptor manifest_desc = img.target;
  std::optional<PlannedBlob> index_blob;
  if (img.target.digest != manifest_digest) {
    ASSIGN_OR_RETURN(std::string body, ReadBlobOf(store, img.target.digest, "index"));
    auto index = oci::ParseIndex(body, img.target.media_type);
    if (!index)
      return MakeError(Errc::kDataLoss,
                       "index " + img.target.digest.str() + ": " + index.error().message);
    PlannedBlob blob{.descriptor = img.target, .data = std::move(body)};
    auto entry = std::find_if(
        index->manifests.begin(), index->manifests.end(),
        [&](const oci::IndexEntry& e) { return e.descriptor.digest == manifest_digest; });
    if (entry == index->manifests.end())
      return MakeError(Errc::kDataLoss, "index " + img.target.digest.str() +
                                            " does not list the recorded manifest " +
                                            manifest_digest.str());
    manifest_desc = entry->descriptor;
    // containerd numbers the children its pull kept for the platform
    // (images.SetChildrenMappedLabels): the one manifest gantry has is m.0.
    blob.labels[std::string(kLabelGcContent) + "m.0"] = manifest_digest.str();
    index_blob = std::move(blob);
  }

  ASSIGN_OR_RETURN(std::string manifest_body, ReadBlobOf(store, manifest_digest, "manifest"));
  auto manifest = oci::ParseManifest(manifest_body, manifest_desc.media_type);
  if (!manifest)
    return MakeError(Errc::kDataLoss,
                     "manifest " + manifest_digest.str() + ": " + manifest.error().message);
  PlannedBlob manifest_blob{.descriptor = manifest_desc, .data = std::move(manifest_body)};
  manifest_blob.labels[std::string(kLabelGcContent) + "config"] = manifest->config.digest.str();
  for (size_t i = 0; i < manifest->layers.size(); ++i)
    manifest_blob.labels[std::string(kLabelGcContent) + "l." + std::to_string(i)] =
        manifest->layers[i].digest.str();

  ASSIGN_OR_RETURN(std::string config_body,
                   ReadBlobOf(store, manifest->config.digest, "image config"));
  auto config = oci::ParseImageConfig(config_body);
  if (!config)
    return MakeError(Errc::kDataLoss, "image config " + manifest->config.digest.str() + ": " +
                                          config.error().message);
  if (config->diff_ids.size() != manifest->layers.size())
    return MakeError(Errc::kDataLoss, "image config " + manifest->config.digest.str() + ": " +
                                          std::to_string(config->diff_ids.size()) +
                                          " diff_ids for " +
                                          std::to_string(manifest->layers.size()) + " layers");
  plan.chains = oci::ChainIds(config->diff_ids);
  if (!plan.chains.empty() && img.top_chain && *img.top_chain != plan.chains.back())
    return MakeError(Errc::kDataLoss, "image `" + img.name + "`: recorded top chain " +
                                          img.top_chain->str() + " is not the config's " +
                                          plan.chains.back().str());
  PlannedBlob config_blob{.descriptor = manifest->config, .data = std::move(config_body)};
  if (!plan.chains.empty())
    config_blob.labels[std::string(kLabelGcSnapshot) + std::string(snapshotter)] =
        plan.chains.back().str();

  plan.blobs.push_back(std::move(config_blob));
  plan.blobs.push_back(std::move(manifest_blob));
  if (index_blob) plan.blobs.push_back(std::move(*index_blob));

  // Names as containerd's CRI plugin records a pull (image id, repo tag,
  // repo digest); the record's name first.
  AddUnique(plan.image_names, img.name);
  if (auto ref = registry::ImageRef::Parse(img.name)) {
    AddUnique(plan.image_names, ref->name() + "@" + img.target.digest.str());
    const std::string source_label = std::string(kLabelSource) + ref->domain();
    for (auto& b : plan.blobs) b.labels[source_label] = ref->path();
  }
  AddUnique(plan.image_names, manifest->config.digest.str());
  plan.image_labels[std::string(kLabelCriManaged)] = std::string(kCriManaged);
  return plan;
}

common::Result<PublishResult> Publish(const PublishStore& store, std::string_view name,
                                      const ContainerdTarget& target) {
  const std::string context =
      "publish `" + std::string(name) + "` to containerd `" + target.address + "`";
  auto plan = PlanPublish(store, name, target.snapshotter);
  if (!plan) return std::unexpected(plan.error().Wrap(context));
  auto r = PublishPlanned(*plan, target);
  if (!r) return std::unexpected(r.error().Wrap(context));
  return r;
}

}  // namespace ctrpublish
