// docker-archive:FILE[:REF] as a destination (destinations.h): the
// `docker save` format (Docker Image Specification v1.2's
// manifest.json + repositories), which docker, podman and skopeo load.
//
// A layer's tar entry needs its uncompressed size before its bytes, and
// its name is its diffID, known only once decompressed: a layer is first
// received into an unnamed temporary file beside FILE, then, verified,
// decompressed into a second one (hashing the diffID), and that is copied
// into the archive, unless a layer of the same diffID is there already
// (two compressions of one layer are written once). Only one layer is
// staged at a time.

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "archive/destination_internal.h"
#include "archive/destinations.h"
#include "archive/tar_writer_internal.h"
#include "common/fs.h"
#include "oci/manifest.h"
#include "unpack/decompress_internal.h"

namespace archives {
namespace {

using common::Errc;
using common::MakeError;
namespace fs = std::filesystem;

constexpr size_t kChunk = 1 << 20;

common::Result<common::UniqueFd> SpoolFile(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return common::ErrnoError("create a temporary file in `" + dir.string() + "`", errno);
  return common::UniqueFd(fd);
}

// What the archive holds so far; shared by the destination and its
// writers (one thread).
struct Contents {
  // Config digest → its diff_ids (the configs written as <hex>.json).
  std::map<common::Digest, std::vector<common::Digest>> configs;
  // The last config written: the layers that follow are its (the copier's
  // order, registry/destination.h).
  std::vector<common::Digest> current_diff_ids;
  // Layer blob digest (compressed or not) → diffID.
  std::map<common::Digest, common::Digest> layers;
  std::set<common::Digest> tars;  // diffIDs written as <hex>.tar
  struct Image {
    common::Digest config;
    std::vector<common::Digest> diff_ids;
  };
  std::map<common::Digest, Image> manifests;  // manifest digest → its image
};

// Receives a config into memory; writes it as <hex>.json once verified.
class ConfigWriter final : public internal::VerifyingWriter {
 public:
  ConfigWriter(oci::Descriptor blob, std::string where, internal::TarWriter& tar,
               Contents& contents)
      : VerifyingWriter(std::move(blob), std::move(where)), tar_(tar), contents_(contents) {}

 protected:
  common::Status Put(std::span<const std::byte> data) override {
    if (body_.size() + data.size() > static_cast<size_t>(oci::kMaxConfigSize))
      return MakeError(Errc::kInvalidArgument, "config " + blob().digest.str() + " is over " +
                                                   std::to_string(oci::kMaxConfigSize) + " bytes");
    body_.append(reinterpret_cast<const char*>(data.data()), data.size());
    return {};
  }
  common::Status Rewind() override {
    body_.clear();
    return {};
  }
  common::Status Done() override {
    auto config = oci::ParseImageConfig(body_);
    if (!config) return std::unexpected(config.error().Wrap("config " + blob().digest.str()));
    TRY(tar_.File(blob().digest.hex() + ".json", body_));
    contents_.configs[blob().digest] = config->diff_ids;
    contents_.current_diff_ids = config->diff_ids;
    return {};
  }

 private:
  internal::TarWriter& tar_;
  Contents& contents_;
  std::string body_;
};

// Receives a layer into a temporary file; at Finish decompresses it,
// checks its diffID and appends it as <diffID hex>.tar.
class LayerWriter final : public internal::FdWriter {
 public:
  LayerWriter(oci::Descriptor blob, std::string where, oci::Compression compression,
              common::UniqueFd spool, fs::path spool_dir, internal::TarWriter& tar,
              Contents& contents)
      : FdWriter(std::move(blob), std::move(where), std::move(spool)),
        compression_(compression),
        spool_dir_(std::move(spool_dir)),
        tar_(tar),
        contents_(contents) {}

 protected:
  common::Status Done() override {
    auto wrap = [&](const common::Error& e) {
      return std::unexpected(e.Wrap("layer " + blob().digest.str()));
    };
    if (::lseek(fd(), 0, SEEK_SET) != 0)
      return wrap(common::ErrnoError("seek a temporary file", errno).error());
    // The tar itself: the spool when uncompressed, else its decompression.
    common::UniqueFd decoded_fd;
    int tar_fd = fd();
    common::Digest diff_id = blob().digest;
    int64_t size = blob().size;
    if (compression_ != oci::Compression::kNone) {
      auto fd = SpoolFile(spool_dir_);
      if (!fd) return wrap(fd.error());
      decoded_fd = std::move(*fd);
      auto decoded = Decode(decoded_fd.get());
      if (!decoded) return wrap(decoded.error());
      std::tie(diff_id, size) = *decoded;
      tar_fd = decoded_fd.get();
      if (::lseek(tar_fd, 0, SEEK_SET) != 0)
        return wrap(common::ErrnoError("seek a temporary file", errno).error());
    }
    const auto& want = contents_.current_diff_ids;
    if (std::find(want.begin(), want.end(), diff_id) == want.end())
      return MakeError(Errc::kDataLoss, "layer " + blob().digest.str() + " decompresses to " +
                                            diff_id.str() +
                                            ", which its config's rootfs.diff_ids does not list");
    contents_.layers[blob().digest] = diff_id;
    if (contents_.tars.contains(diff_id)) return {};
    TRY(tar_.Begin(diff_id.hex() + ".tar", size));
    TRY(Copy(tar_fd));
    TRY(tar_.End());
    contents_.tars.insert(diff_id);
    return {};
  }

 private:
  // Decompresses the spool into `out`: the diffID and the size.
  common::Result<std::pair<common::Digest, int64_t>> Decode(int out) {
    unpack::FdSource src(fd());
    ASSIGN_OR_RETURN(std::unique_ptr<unpack::ByteSource> decoder,
                     unpack::internal::OpenDecoder(compression_, unpack::GzipDecoder::kIsal, src));
    common::Sha256 sha;
    std::vector<std::byte> buf(kChunk);
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, decoder->Read(buf));
      if (n == 0) break;
      std::string_view chunk(reinterpret_cast<const char*>(buf.data()), n);
      sha.Update(chunk);
      TRY(common::WriteAll(out, chunk));
    }
    const auto size = static_cast<int64_t>(sha.size());
    return std::make_pair(sha.Finish(), size);
  }

  common::Status Copy(int fd) {
    unpack::FdSource src(fd);
    std::vector<std::byte> buf(kChunk);
    for (;;) {
      auto n = src.Read(buf);
      if (!n) return std::unexpected(n.error().Wrap("read a temporary file"));
      if (*n == 0) return {};
      TRY(tar_.Write(std::span(buf).first(*n)));
    }
  }

  oci::Compression compression_;
  fs::path spool_dir_;
  internal::TarWriter& tar_;
  Contents& contents_;
};

class DockerArchiveDestination final : public registry::ImageDestination {
 public:
  DockerArchiveDestination(internal::OutputFile out, std::string ref)
      : out_(std::move(out)), tar_(out_.tar()), ref_(std::move(ref)) {}

  common::Result<bool> HasBlob(const oci::Descriptor& blob, std::string_view,
                               const std::atomic<bool>*) override {
    if (contents_.configs.contains(blob.digest)) {
      contents_.current_diff_ids = contents_.configs[blob.digest];
      return true;
    }
    return contents_.layers.contains(blob.digest);
  }

  common::Result<std::unique_ptr<registry::BlobWriter>> PutBlob(const oci::Descriptor& blob,
                                                                const std::atomic<bool>*) override {
    auto compression = oci::LayerCompressionOf(blob.media_type);
    if (!compression)
      return std::unique_ptr<registry::BlobWriter>(
          std::make_unique<ConfigWriter>(blob, Describe(), tar_, contents_));
    ASSIGN_OR_RETURN(common::UniqueFd spool, SpoolFile(out_.file().SpoolDir()));
    return std::unique_ptr<registry::BlobWriter>(std::make_unique<LayerWriter>(
        blob, Describe(), *compression, std::move(spool), out_.file().SpoolDir(), tar_, contents_));
  }

  common::Status PutManifest(const registry::FetchedManifest& manifest,
                             const std::atomic<bool>*) override {
    if (auto kind = oci::ClassifyManifest(manifest.media_type);
        kind && *kind == oci::ManifestKind::kIndex)
      return MakeError(Errc::kInvalidArgument,
                       "a docker-archive holds one platform's image, not an index: choose one "
                       "with --platform");
    ASSIGN_OR_RETURN(oci::Manifest m, oci::ParseManifest(manifest.body, manifest.media_type));
    auto config = contents_.configs.find(m.config.digest);
    if (config == contents_.configs.end())
      return MakeError(Errc::kInternal, "config " + m.config.digest.str() + " was not written");
    Contents::Image img{.config = m.config.digest, .diff_ids = {}};
    for (const oci::Descriptor& layer : m.layers) {
      auto it = contents_.layers.find(layer.digest);
      if (it == contents_.layers.end())
        return MakeError(Errc::kInvalidArgument,
                         "layer " + layer.digest.str() +
                             " was not written (a foreign layer cannot go into a docker-archive)");
      img.diff_ids.push_back(it->second);
    }
    if (img.diff_ids != config->second)
      return MakeError(Errc::kDataLoss, "the layers of manifest " + manifest.digest.str() +
                                            " do not decompress to the diff_ids of config " +
                                            m.config.digest.str());
    contents_.manifests[manifest.digest] = std::move(img);
    return {};
  }

  common::Status Commit(std::span<const registry::DestinationImage> images,
                        const std::atomic<bool>*) override {
    nlohmann::json manifest = nlohmann::json::array();
    nlohmann::json repositories = nlohmann::json::object();
    for (const registry::DestinationImage& image : images) {
      auto it = contents_.manifests.find(image.top.digest);
      if (it == contents_.manifests.end())
        return MakeError(Errc::kInternal,
                         Describe() + ": image " + image.top.digest.str() + " was not written");
      const Contents::Image& img = it->second;
      nlohmann::json tags = nlohmann::json::array();
      for (const std::string& name : internal::NamesOf(image, ref_)) {
        // REPO:TAG; a name by digest has no place in RepoTags.
        const size_t colon = name.rfind(':');
        if (name.find('@') != std::string::npos || colon == std::string::npos ||
            name.find('/', colon) != std::string::npos)
          continue;
        tags.push_back(name);
        // repositories: REPO → TAG → the top layer's id (here its diffID
        // hex; loaders that read manifest.json, all of today's, ignore it).
        if (!img.diff_ids.empty())
          repositories[name.substr(0, colon)][name.substr(colon + 1)] = img.diff_ids.back().hex();
      }
      nlohmann::json layers = nlohmann::json::array();
      for (const common::Digest& d : img.diff_ids) layers.push_back(d.hex() + ".tar");
      manifest.push_back({{"Config", img.config.hex() + ".json"},
                          {"RepoTags", std::move(tags)},
                          {"Layers", std::move(layers)}});
    }
    return out_.Commit({{"manifest.json", manifest.dump()}, {"repositories", repositories.dump()}});
  }

  bool ParallelBlobs() const override { return false; }
  std::string Describe() const override {
    return "docker-archive:" + out_.file().Describe() + (ref_.empty() ? "" : ":" + ref_);
  }

 private:
  internal::TarOutput out_;
  internal::TarWriter& tar_;
  std::string ref_;
  Contents contents_;
};

}  // namespace

common::Result<std::unique_ptr<registry::ImageDestination>> OpenDockerArchiveDestination(
    const fs::path& file, std::string ref) {
  ASSIGN_OR_RETURN(internal::OutputFile out, internal::OutputFile::Create(file));
  return std::unique_ptr<registry::ImageDestination>(
      std::make_unique<DockerArchiveDestination>(std::move(out), std::move(ref)));
}

}  // namespace archives
