#include "image/push.h"

#include "image/image_record.h"
#include "image/store_source.h"
#include "oci/manifest.h"
#include "registry/registry_destination.h"

namespace image {

common::Result<PushResult> PushImage(const PullStore& store, const PushOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<StoreSource> source,
                   OpenStoreSource(store, options.name, options.cancel));
  ASSIGN_OR_RETURN(registry::FetchedManifest top, source->ResolveTop(options.cancel));
  CopyOptions copy{
      .max_parallel = options.max_parallel, .cancel = options.cancel, .on_event = options.on_event};
  PushResult result;
  if (IsIndexMediaType(top.media_type)) {
    ASSIGN_OR_RETURN(oci::Index index, oci::ParseIndex(top.body, top.media_type));
    copy.all_platforms = true;
    const common::Digest held = source->PlatformManifest();
    for (const oci::IndexEntry& entry : index.manifests) {
      if (entry.descriptor.digest == held) {
        copy.platform = entry.platform;
        continue;
      }
      auto m =
          source->GetManifest(entry.descriptor.digest, entry.descriptor.media_type, options.cancel);
      if (!m && m.error().code != common::Errc::kNotFound) return std::unexpected(m.error());
      // The index's manifests are there whenever one other than the
      // platform's is: pulled whole (a layout or copy), not by platform.
      if (!m) copy.all_platforms = false;
    }
    result.platform_only = !copy.all_platforms;
  }
  // A blob on the same registry in another repository is mounted, not sent.
  auto from = registry::ImageRef::Parse(options.name);
  if (from && from->domain() == options.destination.domain() &&
      from->path() != options.destination.path())
    copy.mount_from = from->path();
  ASSIGN_OR_RETURN(std::unique_ptr<registry::ImageDestination> destination,
                   registry::OpenRegistryDestination(options.destination, options.client));
  ASSIGN_OR_RETURN(result.copied, CopyImage(*source, *destination, copy));
  result.top = result.copied.top;
  registry::DestinationImage out{.top = result.top, .names = {options.destination.str()}};
  TRY(common::Wrap(destination->Commit(std::span(&out, 1), options.cancel),
                   "push " + options.name + " to " + options.destination.str()));
  return result;
}

common::Status TagImage(store::MetadataDb& db, const std::string& source,
                        const std::string& new_name) {
  ASSIGN_OR_RETURN(store::Txn txn, db.Begin());
  ASSIGN_OR_RETURN(store::ImageRecord record, txn.GetImage(source));
  ASSIGN_OR_RETURN(Image image, FromRecord(record));
  image.name = new_name;
  image.created_ns = 0;  // a new name is created now; a moved one keeps its time
  image.updated_ns = 0;
  TRY(txn.PutImage(ToRecord(image)));
  return txn.Commit();
}

}  // namespace image
