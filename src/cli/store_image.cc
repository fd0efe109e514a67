#include "cli/store_image.h"

#include "image/store_source.h"
#include "oci/manifest.h"

namespace cli {
namespace {

class PlatformImage final : public registry::ImageSource {
 public:
  explicit PlatformImage(std::unique_ptr<image::StoreSource> store) : store_(std::move(store)) {}

  common::Result<registry::FetchedManifest> ResolveTop(const std::atomic<bool>* cancel) override {
    ASSIGN_OR_RETURN(registry::FetchedManifest top, store_->ResolveTop(cancel));
    if (top.digest == store_->PlatformManifest()) return top;
    // The index's entry gives the media type; the store answers by digest.
    ASSIGN_OR_RETURN(oci::Index index, oci::ParseIndex(top.body, top.media_type));
    for (const oci::IndexEntry& e : index.manifests)
      if (e.descriptor.digest == store_->PlatformManifest())
        return store_->GetManifest(e.descriptor.digest, e.descriptor.media_type, cancel);
    return common::MakeError(common::Errc::kDataLoss,
                             "image " + Describe() + ": its index does not list its manifest " +
                                 store_->PlatformManifest().str());
  }
  common::Result<registry::FetchedManifest> GetManifest(const common::Digest& digest,
                                                        std::string_view media_type,
                                                        const std::atomic<bool>* cancel) override {
    return store_->GetManifest(digest, media_type, cancel);
  }
  common::Status FetchBlob(const common::Digest& digest, int64_t size, registry::BlobSink& sink,
                           const std::atomic<bool>* cancel) override {
    return store_->FetchBlob(digest, size, sink, cancel);
  }
  std::string Describe() const override { return store_->Describe(); }

 private:
  std::unique_ptr<image::StoreSource> store_;
};

}  // namespace

common::Result<std::unique_ptr<registry::ImageSource>> OpenStoreImage(
    const image::PullStore& store, const std::string& name, const std::atomic<bool>* cancel) {
  ASSIGN_OR_RETURN(std::unique_ptr<image::StoreSource> src,
                   image::OpenStoreSource(store, name, cancel));
  return std::unique_ptr<registry::ImageSource>(std::make_unique<PlatformImage>(std::move(src)));
}

}  // namespace cli
