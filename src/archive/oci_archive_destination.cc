// oci-archive:FILE[:TAG] as a destination (destinations.h): the layout
// written as a tar stream. Blob sizes are known from their descriptors,
// so each blob streams straight into its tar entry; nothing is staged.

#include <set>

#include "archive/destination_internal.h"
#include "archive/destinations.h"
#include "archive/tar_index.h"
#include "archive/tar_writer_internal.h"

namespace archives {
namespace {

using common::Errc;
using common::MakeError;
namespace fs = std::filesystem;

// Writes into the entry the destination began; ends it at Finish.
class EntryWriter final : public internal::VerifyingWriter {
 public:
  EntryWriter(oci::Descriptor blob, std::string where, internal::TarWriter& tar,
              std::set<common::Digest>& written)
      : VerifyingWriter(std::move(blob), std::move(where)), tar_(tar), written_(written) {}

 protected:
  common::Status Put(std::span<const std::byte> data) override { return tar_.Write(data); }
  common::Status Done() override {
    TRY(tar_.End());
    written_.insert(blob().digest);
    return {};
  }

 private:
  internal::TarWriter& tar_;
  std::set<common::Digest>& written_;
};

class OciArchiveDestination final : public registry::ImageDestination {
 public:
  OciArchiveDestination(internal::OutputFile out, std::string tag)
      : out_(std::move(out)), tar_(out_.tar()), tag_(std::move(tag)) {}

  common::Result<bool> HasBlob(const oci::Descriptor& blob, std::string_view,
                               const std::atomic<bool>*) override {
    return written_.contains(blob.digest);
  }

  common::Result<std::unique_ptr<registry::BlobWriter>> PutBlob(const oci::Descriptor& blob,
                                                                const std::atomic<bool>*) override {
    TRY(Directories());
    TRY(tar_.Begin(LayoutBlobName(blob.digest), blob.size));
    return std::unique_ptr<registry::BlobWriter>(
        std::make_unique<EntryWriter>(blob, Describe(), tar_, written_));
  }

  common::Status PutManifest(const registry::FetchedManifest& manifest,
                             const std::atomic<bool>*) override {
    if (written_.contains(manifest.digest)) return {};
    TRY(Directories());
    TRY(tar_.File(LayoutBlobName(manifest.digest), manifest.body));
    written_.insert(manifest.digest);
    return {};
  }

  common::Status Commit(std::span<const registry::DestinationImage> images,
                        const std::atomic<bool>*) override {
    auto index = internal::LayoutIndexJson("", images, tag_);
    if (!index) return std::unexpected(index.error().Wrap(Describe()));
    TRY(Directories());
    return out_.Commit({{"index.json", *index}, {"oci-layout", internal::kOciLayoutBody}});
  }

  bool ParallelBlobs() const override { return false; }
  std::string Describe() const override {
    return "oci-archive:" + out_.file().Describe() + (tag_.empty() ? "" : ":" + tag_);
  }

 private:
  // The directory entries, first in the archive.
  common::Status Directories() {
    if (dirs_written_) return {};
    dirs_written_ = true;
    TRY(tar_.Directory("blobs/"));
    return tar_.Directory("blobs/sha256/");
  }

  internal::TarOutput out_;
  internal::TarWriter& tar_;
  std::string tag_;
  std::set<common::Digest> written_;
  bool dirs_written_ = false;
};

}  // namespace

common::Result<std::unique_ptr<registry::ImageDestination>> OpenOciArchiveDestination(
    const fs::path& file, std::string tag) {
  ASSIGN_OR_RETURN(internal::OutputFile out, internal::OutputFile::Create(file));
  return std::unique_ptr<registry::ImageDestination>(
      std::make_unique<OciArchiveDestination>(std::move(out), std::move(tag)));
}

}  // namespace archives
