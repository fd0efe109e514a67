#pragma once
// Pieces the file and directory destinations (destinations.h) share.

#include <filesystem>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "archive/tar_writer_internal.h"
#include "common/digest.h"
#include "common/error.h"
#include "common/fd.h"
#include "oci/descriptor.h"
#include "registry/destination.h"

namespace archives::internal {

inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";
inline constexpr std::string_view kOciLayoutBody = R"({"imageLayoutVersion":"1.0.0"})";

// A BlobWriter that hashes and counts what it is given and checks it at
// Finish against the descriptor; subclasses store the bytes.
class VerifyingWriter : public registry::BlobWriter {
 public:
  VerifyingWriter(oci::Descriptor blob, std::string where)
      : blob_(std::move(blob)), where_(std::move(where)) {}
  int64_t offset() const override { return static_cast<int64_t>(sha_.size()); }
  common::Status Write(std::span<const std::byte> data) override;
  common::Status Restart() override;
  common::Status Finish(const std::atomic<bool>* cancel) override;

 protected:
  const oci::Descriptor& blob() const { return blob_; }
  const std::string& where() const { return where_; }
  virtual common::Status Put(std::span<const std::byte> data) = 0;
  // Drops what Put received (Restart). Default: FailedPrecondition (a
  // stream cannot take back what it wrote).
  virtual common::Status Rewind();
  // The bytes are verified: keep them.
  virtual common::Status Done() = 0;

 private:
  oci::Descriptor blob_;
  std::string where_;
  common::Sha256 sha_;
};

// A VerifyingWriter into a file (not owned by anyone else): Put appends,
// Rewind truncates it.
class FdWriter : public VerifyingWriter {
 public:
  FdWriter(oci::Descriptor blob, std::string where, common::UniqueFd fd)
      : VerifyingWriter(std::move(blob), std::move(where)), fd_(std::move(fd)) {}

 protected:
  int fd() const { return fd_.get(); }
  common::Status Put(std::span<const std::byte> data) override;
  common::Status Rewind() override;

 private:
  common::UniqueFd fd_;
};

// The file an archive is written to: a temporary file beside `path`,
// renamed into place by Commit and removed by the destructor otherwise;
// or standard output when `path` is "-".
class OutputFile {
 public:
  [[nodiscard]] static common::Result<OutputFile> Create(const std::filesystem::path& path);
  // The moved-from file no longer removes the temporary file.
  OutputFile(OutputFile&& o) noexcept
      : path_(std::move(o.path_)),
        temp_(std::exchange(o.temp_, {})),
        fd_(std::move(o.fd_)),
        stdout_(o.stdout_),
        committed_(o.committed_) {}
  OutputFile& operator=(OutputFile&&) = delete;
  ~OutputFile();

  int fd() const { return stdout_ ? 1 : fd_.get(); }
  // "/tmp/x.tar" or "-", for messages.
  std::string Describe() const;
  // Where to put temporary files that go with it: its directory, or the
  // temporary directory for standard output.
  std::filesystem::path SpoolDir() const;
  // fsyncs, renames into place, fsyncs the directory.
  [[nodiscard]] common::Status Commit();

 private:
  OutputFile() = default;
  std::filesystem::path path_, temp_;
  common::UniqueFd fd_;
  bool stdout_ = false;
  bool committed_ = false;
};

// An archive being written: a tar stream into an OutputFile.
class TarOutput {
 public:
  explicit TarOutput(OutputFile out)
      : out_(std::move(out)), tar_(out_.fd(), "`" + out_.Describe() + "`") {}
  TarOutput(const TarOutput&) = delete;
  TarOutput& operator=(const TarOutput&) = delete;

  TarWriter& tar() { return tar_; }
  const OutputFile& file() const { return out_; }
  // Writes `files` (name, body) in order, ends the tar and commits the file.
  [[nodiscard]] common::Status Commit(
      std::initializer_list<std::pair<std::string_view, std::string_view>> files);

 private:
  OutputFile out_;
  TarWriter tar_;
};

// The index.json entries of `images` (one per name; `tag`, when set,
// instead of the names), after the entries of `existing` (an index.json
// body, "" for none) whose ref name none of them takes. Sorted as given.
[[nodiscard]] common::Result<std::string> LayoutIndexJson(
    std::string_view existing, std::span<const registry::DestinationImage> images,
    const std::string& tag);

// The names to give one image: {tag} when set, else its names.
[[nodiscard]] std::vector<std::string> NamesOf(const registry::DestinationImage& image,
                                               const std::string& tag);

}  // namespace archives::internal
