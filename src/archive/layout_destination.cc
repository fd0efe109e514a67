// oci:DIR[:TAG] as a destination (destinations.h).

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/destination_internal.h"
#include "archive/destinations.h"
#include "archive/tar_index.h"
#include "common/fs.h"

namespace archives {
namespace {

using common::Errc;
using common::MakeError;
namespace fs = std::filesystem;

// A blob written to blobs/sha256/.<hex>.XXXXXX.tmp, renamed to <hex> once
// verified; the temporary file is removed otherwise.
class LayoutBlobWriter final : public internal::FdWriter {
 public:
  LayoutBlobWriter(oci::Descriptor blob, std::string where, fs::path final_path, std::string temp,
                   common::UniqueFd fd)
      : FdWriter(std::move(blob), std::move(where), std::move(fd)),
        final_(std::move(final_path)),
        temp_(std::move(temp)) {}
  ~LayoutBlobWriter() override {
    if (!temp_.empty()) ::unlink(temp_.c_str());
  }

 protected:
  common::Status Done() override {
    if (::fsync(fd()) != 0) return common::ErrnoError("fsync `" + temp_ + "`", errno);
    if (::rename(temp_.c_str(), final_.c_str()) != 0)
      return common::ErrnoError("rename `" + temp_ + "`", errno);
    temp_.clear();
    return {};
  }

 private:
  fs::path final_;
  std::string temp_;
};

class LayoutDestination final : public registry::ImageDestination {
 public:
  LayoutDestination(fs::path dir, std::string tag) : dir_(std::move(dir)), tag_(std::move(tag)) {}

  common::Result<bool> HasBlob(const oci::Descriptor& blob, std::string_view,
                               const std::atomic<bool>*) override {
    // A blob of the right size under its digest's name: written by a
    // verified copy (ours or skopeo's).
    struct stat st;
    if (::stat(BlobPath(blob.digest).c_str(), &st) != 0) return false;
    return st.st_size == blob.size;
  }

  common::Result<std::unique_ptr<registry::BlobWriter>> PutBlob(const oci::Descriptor& blob,
                                                                const std::atomic<bool>*) override {
    fs::path final_path = BlobPath(blob.digest);
    std::string temp =
        (final_path.parent_path() / ("." + blob.digest.hex() + ".XXXXXX.tmp")).string();
    int fd = mkostemps(temp.data(), 4, O_CLOEXEC);
    if (fd < 0) return common::ErrnoError("create `" + temp + "`", errno);
    (void)::fchmod(fd, 0644);
    return std::unique_ptr<registry::BlobWriter>(std::make_unique<LayoutBlobWriter>(
        blob, Describe(), std::move(final_path), std::move(temp), common::UniqueFd(fd)));
  }

  common::Status PutManifest(const registry::FetchedManifest& manifest,
                             const std::atomic<bool>*) override {
    return common::AtomicWriteFile(BlobPath(manifest.digest), manifest.body);
  }

  common::Status Commit(std::span<const registry::DestinationImage> images,
                        const std::atomic<bool>*) override {
    std::string existing;
    if (auto body = common::ReadFile(dir_ / "index.json"); body)
      existing = std::move(*body);
    else if (body.error().code != Errc::kNotFound)
      return std::unexpected(body.error().Wrap("read `" + (dir_ / "index.json").string() + "`"));
    auto index = internal::LayoutIndexJson(existing, images, tag_);
    if (!index) return std::unexpected(index.error().Wrap(Describe()));
    TRY(common::AtomicWriteFile(dir_ / "oci-layout", internal::kOciLayoutBody));
    return common::AtomicWriteFile(dir_ / "index.json", *index);
  }

  bool ParallelBlobs() const override { return true; }
  std::string Describe() const override {
    return "oci:" + dir_.string() + (tag_.empty() ? "" : ":" + tag_);
  }

 private:
  fs::path BlobPath(const common::Digest& d) const { return dir_ / LayoutBlobName(d); }

  fs::path dir_;
  std::string tag_;
};

}  // namespace

common::Result<std::unique_ptr<registry::ImageDestination>> OpenLayoutDestination(
    const fs::path& dir, std::string tag) {
  if (auto st = common::MkdirAll(dir / "blobs" / "sha256"); !st)
    return std::unexpected(st.error().Wrap("create OCI layout `" + dir.string() + "`"));
  return std::unique_ptr<registry::ImageDestination>(
      std::make_unique<LayoutDestination>(dir, std::move(tag)));
}

}  // namespace archives
