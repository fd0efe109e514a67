#include "image/store_source.h"

#include "image/image_record.h"
#include "store/store_lock.h"

namespace image {
namespace {

using common::Errc;
using common::MakeError;

class StoreSourceImpl final : public StoreSource {
 public:
  StoreSourceImpl(store::StoreLock lock, store::ContentStore* content, Image image)
      : lock_(std::move(lock)), content_(content), image_(std::move(image)) {}

  common::Result<registry::FetchedManifest> ResolveTop(const std::atomic<bool>*) override {
    return Read(image_.target.digest, image_.target.media_type);
  }
  common::Result<registry::FetchedManifest> GetManifest(const common::Digest& digest,
                                                        std::string_view media_type,
                                                        const std::atomic<bool>*) override {
    return Read(digest, std::string(media_type));
  }

  common::Status FetchBlob(const common::Digest& digest, int64_t size, registry::BlobSink& sink,
                           const std::atomic<bool>* cancel) override {
    auto fd = content_->OpenBlob(digest);
    if (!fd) return std::unexpected(fd.error().Wrap("blob " + digest.str() + " of " + Describe()));
    return registry::StreamFileBlob(fd->get(), size, sink, cancel,
                                    "blob " + digest.str() + " of " + Describe() + " in the store");
  }

  std::string Describe() const override { return image_.name; }
  common::Digest PlatformManifest() const override { return image::PlatformManifest(image_); }

 private:
  common::Result<registry::FetchedManifest> Read(const common::Digest& digest,
                                                 std::string media_type) {
    auto body = content_->ReadBlob(digest, registry::kMaxManifestSize);
    if (!body)
      return std::unexpected(body.error().Wrap("manifest " + digest.str() + " of " + Describe()));
    if (common::Digest got = common::Digest::Sha256Of(*body); got != digest)
      return MakeError(Errc::kDataLoss, "manifest " + digest.str() + " of " + Describe() +
                                            " in the store hashes to " + got.str());
    return registry::FetchedManifest{std::move(media_type), std::move(*body), digest};
  }

  store::StoreLock lock_;
  store::ContentStore* content_;
  Image image_;
};

}  // namespace

common::Result<std::unique_ptr<StoreSource>> OpenStoreSource(const PullStore& store,
                                                             const std::string& name,
                                                             const std::atomic<bool>* cancel) {
  ASSIGN_OR_RETURN(store::StoreLock lock, store::StoreLock::Shared(store.root, cancel));
  ASSIGN_OR_RETURN(store::ImageRecord record, store.metadata->GetImage(name));
  ASSIGN_OR_RETURN(Image img, FromRecord(record));
  return std::unique_ptr<StoreSource>(
      std::make_unique<StoreSourceImpl>(std::move(lock), store.content, std::move(img)));
}

}  // namespace image
