#pragma once
// Where an image comes from: a distribution registry or an OCI image-layout
// directory (`oci:DIR[:TAG]`). The puller works on this interface only.

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/error.h"
#include "registry/client.h"
#include "registry/reference.h"

namespace registry {

// What the user asked to pull: a registry reference or a layout directory.
struct SourceSpec {
  enum class Kind { kRegistry, kLayout } kind = Kind::kRegistry;
  ImageRef ref;                     // kRegistry: the reference; kLayout: the name to record
  std::filesystem::path layout_dir; // kLayout
  std::string layout_tag;           // kLayout: org.opencontainers.image.ref.name ("" = the only one)
};

// Parses "REF" or "oci:DIR[:TAG]". For a layout, the recorded name is
// `localhost/<dir's base name, lower-cased, invalid characters replaced>:<TAG or latest>`.
[[nodiscard]] common::Result<SourceSpec> ParseSourceSpec(std::string_view text);

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // The manifest or index the reference names (by tag or digest), verified.
  // `cancel` (may be null) is polled (→ Cancelled), as by FetchBlob.
  [[nodiscard]] virtual common::Result<FetchedManifest> ResolveTop(
      const std::atomic<bool>* cancel) = 0;
  // A manifest by digest (from an index), verified against the digest.
  [[nodiscard]] virtual common::Result<FetchedManifest> GetManifest(
      const common::Digest& digest, std::string_view media_type,
      const std::atomic<bool>* cancel) = 0;
  // Streams a blob into `sink` from sink.offset(); the sink verifies.
  [[nodiscard]] virtual common::Status FetchBlob(const common::Digest& digest, int64_t size,
                                                 BlobSink& sink,
                                                 const std::atomic<bool>* cancel) = 0;
  // For messages: "127.0.0.1:5000/fixture/app:v1" or "oci:/path:tag".
  virtual std::string Describe() const = 0;
};

[[nodiscard]] common::Result<std::unique_ptr<ImageSource>> OpenRegistrySource(
    const ImageRef& ref, ClientOptions options);
[[nodiscard]] common::Result<std::unique_ptr<ImageSource>> OpenLayoutSource(
    const std::filesystem::path& dir, const std::string& tag);

}  // namespace registry
