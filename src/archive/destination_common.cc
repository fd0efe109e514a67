#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive/destination_internal.h"
#include "common/fs.h"
#include "oci/manifest.h"

namespace archives::internal {

using common::Errc;
using common::MakeError;

common::Status VerifyingWriter::Write(std::span<const std::byte> data) {
  if (offset() + static_cast<int64_t>(data.size()) > blob_.size)
    return MakeError(Errc::kDataLoss, "blob " + blob_.digest.str() + " for " + where_ +
                                          ": more than its " + std::to_string(blob_.size) +
                                          " bytes");
  TRY(Put(data));
  sha_.Update(data);
  return {};
}

common::Status VerifyingWriter::Restart() {
  TRY(Rewind());
  sha_ = common::Sha256();
  return {};
}

common::Status VerifyingWriter::Rewind() {
  return MakeError(Errc::kFailedPrecondition, "blob " + blob_.digest.str() + " for " + where_ +
                                                  ": cannot restart a blob written to a stream");
}

common::Status VerifyingWriter::Finish(const std::atomic<bool>*) {
  if (offset() != blob_.size)
    return MakeError(Errc::kDataLoss, "blob " + blob_.digest.str() + " for " + where_ + ": got " +
                                          std::to_string(offset()) + " of " +
                                          std::to_string(blob_.size) + " bytes");
  if (common::Digest got = sha_.Finish(); got != blob_.digest)
    return MakeError(Errc::kDataLoss,
                     "blob " + blob_.digest.str() + " for " + where_ + ": hashes to " + got.str());
  return Done();
}

common::Status FdWriter::Put(std::span<const std::byte> data) {
  return common::WriteAll(
      fd_.get(), std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
}

common::Status FdWriter::Rewind() {
  if (::ftruncate(fd_.get(), 0) != 0 || ::lseek(fd_.get(), 0, SEEK_SET) != 0)
    return common::ErrnoError("truncate the file of blob " + blob().digest.str(), errno);
  return {};
}

common::Status TarOutput::Commit(
    std::initializer_list<std::pair<std::string_view, std::string_view>> files) {
  for (const auto& [name, body] : files) TRY(tar_.File(name, body));
  TRY(tar_.Close());
  return out_.Commit();
}

common::Result<OutputFile> OutputFile::Create(const std::filesystem::path& path) {
  OutputFile out;
  if (path == "-") {
    out.stdout_ = true;
    return out;
  }
  out.path_ = path;
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::string templ = (dir / ("." + path.filename().string() + ".XXXXXX.tmp")).string();
  int fd = mkostemps(templ.data(), 4, O_CLOEXEC);
  if (fd < 0) return common::ErrnoError("create `" + path.string() + "`", errno);
  out.fd_ = common::UniqueFd(fd);
  out.temp_ = templ;
  // mkstemp's 0600; an archive is as readable as any file the user writes.
  mode_t mask = umask(0);
  umask(mask);
  (void)fchmod(fd, 0666 & ~mask);
  return out;
}

OutputFile::~OutputFile() {
  if (!stdout_ && !committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

std::string OutputFile::Describe() const { return stdout_ ? std::string("-") : path_.string(); }

std::filesystem::path OutputFile::SpoolDir() const {
  if (stdout_) return std::filesystem::temp_directory_path();
  std::filesystem::path dir = path_.parent_path();
  return dir.empty() ? "." : dir;
}

common::Status OutputFile::Commit() {
  if (stdout_) {
    committed_ = true;
    return {};
  }
  if (::fsync(fd_.get()) != 0) return common::ErrnoError("fsync `" + temp_.string() + "`", errno);
  if (::rename(temp_.c_str(), path_.c_str()) != 0)
    return common::ErrnoError("rename into `" + path_.string() + "`", errno);
  committed_ = true;
  std::filesystem::path dir = path_.parent_path();
  return common::FsyncDir(dir.empty() ? "." : dir);
}

std::vector<std::string> NamesOf(const registry::DestinationImage& image, const std::string& tag) {
  if (!tag.empty()) return {tag};
  return image.names;
}

common::Result<std::string> LayoutIndexJson(std::string_view existing,
                                            std::span<const registry::DestinationImage> images,
                                            const std::string& tag) {
  std::vector<std::pair<std::string, oci::Descriptor>> entries;  // ref name, descriptor
  for (const registry::DestinationImage& img : images) {
    std::vector<std::string> names = NamesOf(img, tag);
    if (names.empty()) names.push_back("");
    for (const std::string& n : names) entries.emplace_back(n, img.top);
  }
  nlohmann::json manifests = nlohmann::json::array();
  if (!existing.empty()) {
    nlohmann::json old = nlohmann::json::parse(existing, nullptr, false);
    if (old.is_discarded() || !old.is_object() || !old.contains("manifests") ||
        !old["manifests"].is_array())
      return MakeError(Errc::kInvalidArgument, "index.json is not an OCI index");
    for (const nlohmann::json& m : old["manifests"]) {
      std::string name;
      if (m.is_object() && m.contains("annotations") && m["annotations"].is_object())
        name = m["annotations"].value(std::string(kRefNameAnnotation), "");
      bool replaced = false;
      for (const auto& e : entries) replaced = replaced || (!name.empty() && e.first == name);
      if (!replaced) manifests.push_back(m);
    }
  }
  for (auto& [name, d] : entries) {
    oci::Descriptor entry = d;
    if (!name.empty()) entry.annotations[std::string(kRefNameAnnotation)] = name;
    manifests.push_back(oci::DescriptorToJson(entry));
  }
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", oci::media::kOciIndex},
                          {"manifests", std::move(manifests)}};
  return index.dump();
}

}  // namespace archives::internal
