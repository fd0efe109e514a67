#include "registry/registry_destination.h"

#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "common/log.h"

namespace registry {
namespace {

using common::Errc;
using common::MakeError;
using common::Result;
using common::Status;
using Session = RegistryClient::UploadSession;

class RegistryBlobWriter final : public BlobWriter {
 public:
  // Blobs no larger than this (or than a chunk, when chunks are smaller)
  // go in one PUT even when handed over as a file.
  static constexpr int64_t kStreamFrom = 1 << 20;

  RegistryBlobWriter(RegistryClient& client, const ImageRef& repo, oci::Descriptor blob,
                     Session session, const std::atomic<bool>* cancel)
      : client_(client),
        repo_(repo),
        blob_(std::move(blob)),
        session_(std::move(session)),
        cancel_(cancel),
        chunk_(std::max<int64_t>(client.upload_chunk_bytes(), 1)) {}

  int64_t offset() const override { return session_.offset + static_cast<int64_t>(buffer_.size()); }

  Status Write(std::span<const std::byte> data) override {
    if (offset() + static_cast<int64_t>(data.size()) > blob_.size)
      return MakeError(Errc::kDataLoss, "blob " + blob_.digest.str() + " is longer than its " +
                                            std::to_string(blob_.size) + " bytes");
    if (buffer_.capacity() == 0) buffer_.reserve(static_cast<size_t>(std::min(blob_.size, chunk_)));
    buffer_.append(reinterpret_cast<const char*>(data.data()), data.size());
    while (static_cast<int64_t>(buffer_.size()) >= chunk_) TRY(SendChunk());
    // A blob larger than a chunk goes all in PATCHes, so that Finish has
    // nothing left to lose to a cut; a smaller one waits for Finish's PUT.
    if (offset() == blob_.size && session_.offset > 0) TRY(SendChunk());
    return {};
  }

  // A large blob's bytes go from the file straight into PATCH bodies, a
  // chunk per request; a small one (or one whose start was buffered
  // already) takes the buffered way and goes in Finish's PUT.
  Status WriteFromFile(int fd, int64_t file_offset, int64_t size, const std::atomic<bool>* cancel,
                       const std::string& what) override {
    if (!buffer_.empty() || blob_.size <= std::min(kStreamFrom, chunk_))
      return BlobSink::WriteFromFile(fd, file_offset, size, cancel, what);
    if (offset() + size > blob_.size)
      return MakeError(Errc::kDataLoss, "blob " + blob_.digest.str() + " is longer than its " +
                                            std::to_string(blob_.size) + " bytes");
    while (size > 0) {
      const int64_t n = std::min(size, chunk_);
      const int64_t before = session_.offset;
      Status sent = client_.UploadFileChunk(repo_, session_, fd, file_offset, n, cancel);
      if (!sent) return Resync(std::move(sent));
      file_offset += session_.offset - before;
      size -= session_.offset - before;
    }
    return {};
  }

  Status Restart() override {
    buffer_.clear();
    if (session_.offset == 0) return {};
    return NewSession();
  }

  Status Finish(const std::atomic<bool>* cancel) override {
    if (offset() != blob_.size)
      return MakeError(Errc::kDataLoss, "blob " + blob_.digest.str() + ": " +
                                            std::to_string(offset()) + " bytes written of " +
                                            std::to_string(blob_.size));
    return client_.FinishUpload(repo_, session_, blob_.digest, std::move(buffer_), cancel);
  }

 private:
  // PATCHes the first chunk of the buffer (or all of it when shorter).
  Status SendChunk() {
    std::string rest;
    if (static_cast<int64_t>(buffer_.size()) > chunk_) {
      rest = buffer_.substr(static_cast<size_t>(chunk_));
      buffer_.resize(static_cast<size_t>(chunk_));
    }
    Status sent =
        client_.UploadChunk(repo_, session_, std::exchange(buffer_, std::move(rest)), cancel_);
    if (sent) return {};
    buffer_.clear();
    return Resync(std::move(sent));
  }

  // After a failed PATCH: unless it is final, learn what the registry
  // holds, so that the copier resumes from there (Unavailable). A session
  // the registry dropped (404: docker-registry cancels an upload whose
  // state no longer matches what it holds, as after a PATCH cut midway)
  // is replaced by a new one, from 0.
  Status Resync(Status sent) {
    const Errc code = sent.error().code;
    if (code != Errc::kUnavailable && code != Errc::kNotFound) return sent;
    Status status =
        code == Errc::kNotFound ? NewSession() : client_.UploadStatus(repo_, session_, cancel_);
    if (!status && status.error().code == Errc::kNotFound) status = NewSession();
    if (!status) return status;
    LOG(Warn) << "blob upload broke, resuming" << common::Kv("digest", blob_.digest.str())
              << common::Kv("offset", session_.offset) << common::Kv("error", sent.error().message);
    if (code == Errc::kNotFound)
      return MakeError(Errc::kUnavailable, sent.error().message + " (a new upload starts over)");
    return sent;
  }

  Status NewSession() {
    ASSIGN_OR_RETURN(std::optional<Session> fresh,
                     client_.StartUpload(repo_, blob_.digest, "", cancel_));
    if (!fresh) return MakeError(Errc::kInternal, "upload session refused");
    session_ = std::move(*fresh);
    return {};
  }

  RegistryClient& client_;
  const ImageRef& repo_;
  const oci::Descriptor blob_;
  Session session_;
  const std::atomic<bool>* cancel_;
  const int64_t chunk_;
  std::string buffer_;
};

class RegistryDestination final : public ImageDestination {
 public:
  RegistryDestination(ImageRef ref, std::unique_ptr<RegistryClient> client)
      : ref_(std::move(ref)), client_(std::move(client)) {}

  Result<bool> HasBlob(const oci::Descriptor& blob, std::string_view mount_from,
                       const std::atomic<bool>* cancel) override {
    // HEAD first even with a mount: a blob already there costs no
    // upload session (a second push moves only manifests).
    ASSIGN_OR_RETURN(bool there, client_->BlobExists(ref_, blob.digest, cancel));
    if (there || mount_from.empty() || mount_from == ref_.path()) return there;
    auto session = client_->StartUpload(ref_, blob.digest, mount_from, cancel);
    if (!session) {
      // A registry may refuse the mount (no pull right on `mount_from`);
      // the blob is then uploaded as any other.
      const common::Errc code = session.error().code;
      if (code != Errc::kUnauthenticated && code != Errc::kPermissionDenied)
        return std::unexpected(std::move(session.error()));
      LOG(Debug) << "mount refused, uploading" << common::Kv("digest", blob.digest.str())
                 << common::Kv("error", session.error().message);
      return false;
    }
    if (!*session) return true;
    std::lock_guard lock(mu_);
    opened_[blob.digest.str()] = std::move(**session);
    return false;
  }

  Result<std::unique_ptr<BlobWriter>> PutBlob(const oci::Descriptor& blob,
                                              const std::atomic<bool>* cancel) override {
    std::optional<Session> session;
    {
      std::lock_guard lock(mu_);
      if (auto it = opened_.find(blob.digest.str()); it != opened_.end()) {
        session = std::move(it->second);
        opened_.erase(it);
      }
    }
    if (!session) {
      ASSIGN_OR_RETURN(session, client_->StartUpload(ref_, blob.digest, "", cancel));
      if (!session) return MakeError(Errc::kInternal, "upload session refused");
    }
    return std::make_unique<RegistryBlobWriter>(*client_, ref_, blob, std::move(*session), cancel);
  }

  Status PutManifest(const FetchedManifest& manifest, const std::atomic<bool>* cancel) override {
    if (common::Digest::Sha256Of(manifest.body) != manifest.digest)
      return MakeError(Errc::kDataLoss, "manifest " + manifest.digest.str() +
                                            ": its body does not hash to its digest");
    TRY(client_->PutManifest(ref_, manifest.digest.str(), manifest.media_type, manifest.body,
                             cancel));
    std::lock_guard lock(mu_);
    manifests_[manifest.digest.str()] = manifest;
    return {};
  }

  Status Commit(std::span<const DestinationImage> images,
                const std::atomic<bool>* cancel) override {
    if (!ref_.tag()) return {};
    std::lock_guard lock(mu_);
    for (const DestinationImage& image : images) {
      auto it = manifests_.find(image.top.digest.str());
      if (it == manifests_.end())
        return MakeError(Errc::kFailedPrecondition, "commit " + Describe() + ": manifest " +
                                                        image.top.digest.str() +
                                                        " was not written first");
      TRY(client_->PutManifest(ref_, *ref_.tag(), it->second.media_type, it->second.body, cancel));
    }
    return {};
  }

  bool ParallelBlobs() const override { return true; }

  std::string Describe() const override { return ref_.str(); }

 private:
  const ImageRef ref_;
  std::unique_ptr<RegistryClient> client_;
  std::mutex mu_;
  std::map<std::string, Session> opened_;             // by digest; guarded by mu_
  std::map<std::string, FetchedManifest> manifests_;  // by digest; guarded by mu_
};

}  // namespace

Result<std::unique_ptr<ImageDestination>> OpenRegistryDestination(const ImageRef& ref,
                                                                  ClientOptions options) {
  ASSIGN_OR_RETURN(std::unique_ptr<RegistryClient> client,
                   RegistryClient::Create(std::move(options)));
  return std::make_unique<RegistryDestination>(ref, std::move(client));
}

}  // namespace registry
