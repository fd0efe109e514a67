#include "registry/source.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/fd.h"
#include "common/fs.h"
#include "store/descriptor.h"

namespace registry {
namespace {

using common::Errc;
using common::MakeError;

constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";

// The name recorded for an image taken from a layout directory: podman's
// convention of `localhost/` for images that came from no registry.
std::string LayoutImageName(const std::filesystem::path& dir, const std::string& tag) {
  std::string base = std::filesystem::absolute(dir).lexically_normal().filename().string();
  if (base.empty()) base = std::filesystem::absolute(dir).lexically_normal().parent_path().filename().string();
  std::string clean;
  for (char c : base) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    clean.push_back((std::isalnum(static_cast<unsigned char>(l)) != 0) ? l : '-');
  }
  while (!clean.empty() && clean.front() == '-') clean.erase(clean.begin());
  while (!clean.empty() && clean.back() == '-') clean.pop_back();
  if (clean.empty()) clean = "image";
  return "localhost/" + clean + ":" + (tag.empty() ? "latest" : tag);
}

class RegistrySource final : public ImageSource {
 public:
  RegistrySource(ImageRef ref, std::unique_ptr<RegistryClient> client)
      : ref_(std::move(ref)), client_(std::move(client)) {}

  common::Result<FetchedManifest> ResolveTop(const std::atomic<bool>* cancel) override {
    return client_->GetManifest(ref_, ref_.manifest_reference(), cancel);
  }
  common::Result<FetchedManifest> GetManifest(const common::Digest& digest,
                                              std::string_view /*media_type*/,
                                              const std::atomic<bool>* cancel) override {
    return client_->GetManifest(ref_, digest.str(), cancel);
  }
  common::Status FetchBlob(const common::Digest& digest, int64_t size, BlobSink& sink,
                           const std::atomic<bool>* cancel) override {
    return client_->FetchBlob(ref_, digest, size, sink, cancel);
  }
  std::string Describe() const override { return ref_.str(); }

 private:
  ImageRef ref_;
  std::unique_ptr<RegistryClient> client_;
};

class LayoutSource final : public ImageSource {
 public:
  LayoutSource(std::filesystem::path dir, std::string tag)
      : dir_(std::move(dir)), tag_(std::move(tag)) {}

  // Local files: read at once, nothing to cancel.
  common::Result<FetchedManifest> ResolveTop(const std::atomic<bool>* /*cancel*/) override {
    auto index_path = dir_ / "index.json";
    auto text = common::ReadFile(index_path, kMaxManifestSize);
    if (!text) return std::unexpected(text.error().Wrap("read OCI layout `" + dir_.string() + "`"));
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("manifests") ||
        !j["manifests"].is_array())
      return MakeError(Errc::kInvalidArgument,
                       "read OCI layout `" + dir_.string() + "`: index.json is not an OCI index");
    std::vector<store::Descriptor> matches;
    std::string tags;
    for (const auto& m : j["manifests"]) {
      auto d = store::DescriptorFromJson(m);
      if (!d) return std::unexpected(d.error().Wrap("read `" + index_path.string() + "`"));
      std::string name = d->annotations.count(std::string(kRefNameAnnotation))
                             ? d->annotations.at(std::string(kRefNameAnnotation))
                             : "";
      if (!tags.empty()) tags += ", ";
      tags += name.empty() ? "(untagged)" : name;
      if (tag_.empty() || name == tag_) matches.push_back(std::move(*d));
    }
    if (matches.empty())
      return MakeError(Errc::kNotFound, "tag `" + tag_ + "` not in OCI layout `" + dir_.string() +
                                            "` (it has: " + (tags.empty() ? "nothing" : tags) + ")");
    if (matches.size() > 1)
      return MakeError(Errc::kInvalidArgument, "OCI layout `" + dir_.string() +
                                                   "` holds several images (" + tags +
                                                   "); name one with oci:DIR:TAG");
    return ReadManifest(matches[0].digest, matches[0].media_type, matches[0].size);
  }

  common::Result<FetchedManifest> GetManifest(const common::Digest& digest,
                                              std::string_view media_type,
                                              const std::atomic<bool>* /*cancel*/) override {
    return ReadManifest(digest, std::string(media_type), -1);
  }

  common::Status FetchBlob(const common::Digest& digest, int64_t size, BlobSink& sink,
                           const std::atomic<bool>* cancel) override {
    auto path = BlobPath(digest);
    ASSIGN_OR_RETURN(common::UniqueFd fd, common::Open(path.string(), O_RDONLY));
    int64_t off = sink.offset();
    if (off > size) {
      TRY(sink.Restart());
      off = 0;
    }
    std::vector<std::byte> buf(1 << 20);
    while (off < size) {
      if (cancel != nullptr && cancel->load()) return MakeError(Errc::kCancelled, "cancelled");
      size_t want = static_cast<size_t>(std::min<int64_t>(size - off, static_cast<int64_t>(buf.size())));
      ssize_t n = ::pread(fd.get(), buf.data(), want, off);
      if (n < 0) {
        if (errno == EINTR) continue;
        return common::ErrnoError("read `" + path.string() + "`");
      }
      if (n == 0)
        return MakeError(Errc::kDataLoss, "blob " + digest.str() + " in `" + dir_.string() +
                                              "` is shorter than its descriptor's " +
                                              std::to_string(size) + " bytes");
      TRY(sink.Write(std::span<const std::byte>(buf.data(), static_cast<size_t>(n))));
      off += n;
    }
    return {};
  }

  std::string Describe() const override {
    return "oci:" + dir_.string() + (tag_.empty() ? "" : ":" + tag_);
  }

 private:
  std::filesystem::path BlobPath(const common::Digest& d) const {
    return dir_ / "blobs" / std::string(d.algorithm_name()) / d.hex();
  }

  common::Result<FetchedManifest> ReadManifest(const common::Digest& digest,
                                               std::string media_type, int64_t size) {
    auto body = common::ReadFile(BlobPath(digest), kMaxManifestSize);
    if (!body) return std::unexpected(body.error().Wrap("read manifest " + digest.str()));
    if (size >= 0 && static_cast<int64_t>(body->size()) != size)
      return MakeError(Errc::kDataLoss, "manifest " + digest.str() + " in `" + dir_.string() +
                                            "` has " + std::to_string(body->size()) +
                                            " bytes, its descriptor says " + std::to_string(size));
    auto got = common::Digest::Sha256Of(*body);
    if (got != digest)
      return MakeError(Errc::kDataLoss, "manifest " + digest.str() + " in `" + dir_.string() +
                                            "` has digest " + got.str());
    return FetchedManifest{std::move(media_type), std::move(*body), digest};
  }

  std::filesystem::path dir_;
  std::string tag_;
};

}  // namespace

common::Result<SourceSpec> ParseSourceSpec(std::string_view text) {
  SourceSpec spec;
  if (text.starts_with("oci:")) {
    std::string_view rest = text.substr(4);
    size_t slash = rest.rfind('/');
    size_t colon = rest.rfind(':');
    std::string dir(rest), tag;
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
      dir = std::string(rest.substr(0, colon));
      tag = std::string(rest.substr(colon + 1));
    }
    if (dir.empty())
      return MakeError(Errc::kInvalidArgument, "parse source `" + std::string(text) +
                                                   "`: empty directory after `oci:`");
    spec.kind = SourceSpec::Kind::kLayout;
    spec.layout_dir = dir;
    spec.layout_tag = tag;
    auto ref = ImageRef::Parse(LayoutImageName(dir, tag));
    if (!ref)
      return std::unexpected(ref.error().Wrap("name image from `" + std::string(text) + "`"));
    spec.ref = std::move(*ref);
    return spec;
  }
  ASSIGN_OR_RETURN(spec.ref, ImageRef::Parse(text));
  return spec;
}

common::Result<std::unique_ptr<ImageSource>> OpenRegistrySource(const ImageRef& ref,
                                                                 ClientOptions options) {
  ASSIGN_OR_RETURN(std::unique_ptr<RegistryClient> client, RegistryClient::Create(std::move(options)));
  return std::unique_ptr<ImageSource>(std::make_unique<RegistrySource>(ref, std::move(client)));
}

common::Result<std::unique_ptr<ImageSource>> OpenLayoutSource(const std::filesystem::path& dir,
                                                              const std::string& tag) {
  if (!std::filesystem::is_regular_file(dir / "oci-layout"))
    return MakeError(Errc::kNotFound,
                     "open OCI layout `" + dir.string() + "`: no `oci-layout` file there");
  return std::unique_ptr<ImageSource>(std::make_unique<LayoutSource>(dir, tag));
}

}  // namespace registry
