#pragma once
// Where an image comes from: a distribution registry or an OCI image-layout
// directory (`oci:DIR[:TAG]`). The puller works on this interface only.

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/digest.h"
#include "common/error.h"
#include "common/fd.h"
#include "registry/client.h"
#include "registry/reference.h"

namespace registry {

// Where an image taken from an OCI image layout came from: the layout
// directory (CanonicalLayoutDir) and the ref name of the image taken (""
// when it had none). The image record keeps it (image/image_record.h), so
// that `oci:DIR[:TAG]` finds the image again whatever name it was
// recorded under.
struct LayoutOrigin {
  std::string dir;
  std::string ref_name;
};

// What the user asked to pull: a registry reference, a layout directory, or
// an image archive file (archive/archive_source.h opens those).
struct SourceSpec {
  enum class Kind { kRegistry, kLayout, kDockerArchive, kOciArchive } kind = Kind::kRegistry;
  ImageRef ref;                      // kRegistry: the reference; the others: the name to record
  std::filesystem::path layout_dir;  // kLayout: the directory; the archives: the file, as given
  // kLayout, kOciArchive: org.opencontainers.image.ref.name ("" = the only
  // one); kDockerArchive: a RepoTag; the archives also take "@N", the N-th
  // image (archive/archive_source.h).
  std::string layout_tag;
};

// Parses "REF", "oci:DIR[:TAG]", "oci-archive:FILE[:TAG]" or
// "docker-archive:FILE[:REF]" (as skopeo does). DIR ends at the first ':', as in
// skopeo's and podman's oci: transport, so that TAG may itself be a
// reference (`oci:DIR:quay.io/org/app:v1`); a directory whose path holds a
// ':' cannot be named. TAG selects the image whose
// org.opencontainers.image.ref.name annotation equals it; without TAG the
// layout must hold one image.
//
// The name a layout's image is recorded under (`ref`), in this order:
//  1. `name` (gantry pull --name) when not empty, as LocalImageName reads it;
//  2. the ref name (TAG, or without TAG the only image's annotation, read
//     from DIR/index.json) when it is not a plain tag: a reference, as
//     LocalImageName reads it (`quay.io/org/app:v1` as it is, `app:v1` as
//     `localhost/app:v1`);
//  3. `localhost/BASE:TAG`: BASE is DIR's base name lower-cased, each
//     character other than [a-z0-9] replaced by '-'; TAG the plain-tag ref
//     name, or `latest` when there is none.
// `localhost/` is podman's prefix for images that came from no registry:
// it keeps a layout's image from taking the name of a Docker Hub image.
// Errors: InvalidArgument for a malformed reference, an empty DIR, a ref
// name that is neither a tag nor a reference, or `name` with a registry
// reference (which is always recorded under itself). An unreadable layout
// is not an error here (the name falls back to rule 3; the pull reports it).
// oci-archive:FILE[:TAG] is named as a layout by rules 1-3 (FILE's base name
// for BASE), except that without TAG this function does not read FILE
// (archives::ArchiveImageName does). docker-archive:FILE[:REF] is recorded
// under `name`, else REF read as a docker reference (RepoTags are: `app:v1`
// is docker.io/library/app:v1), else `localhost/BASE:latest`; "@N" selects
// an image by position and names nothing.
[[nodiscard]] common::Result<SourceSpec> ParseSourceSpec(std::string_view text,
                                                         std::string_view name = {});

// A name to record an image under, as typed by a user: a reference that
// names its registry is taken as it is, any other gets `localhost/` in
// front ("app:v1" → "localhost/app:v1", "org/app" →
// "localhost/org/app:latest"). Errors: InvalidArgument for a malformed
// reference or one with a digest (a name is a tag).
[[nodiscard]] common::Result<ImageRef> LocalImageName(std::string_view text);

// The form of a layout directory in LayoutOrigin::dir: absolute,
// normalised, symlinks of the part that exists resolved.
[[nodiscard]] std::filesystem::path CanonicalLayoutDir(const std::filesystem::path& dir);

// How the signature policy (containers-policy.json(5), trust/policy.h)
// names the image a source reads: its transport and, per transport, what
// its scopes are made of.
struct PolicyIdentity {
  // "docker" (a registry), "oci" (a layout), "oci-archive",
  // "docker-archive"; "" for a source the policy never sees (the store).
  std::string transport{};
  std::optional<ImageRef> reference{};  // docker: the reference as pulled
  // oci, oci-archive, docker-archive: the layout directory or archive file,
  // absolute and normalised; "" when there is no file (a pipe).
  // (A layout's ref name is not part of it: containers/image leaves it
  // out of an oci: image's policy identity.)
  std::string path{};
};

// A blob's bytes in a local file: `size` bytes of `fd` from `offset`.
struct LocalBlob {
  common::UniqueFd fd;
  int64_t offset = 0;
  int64_t size = 0;
};

// The registry behind a registry source: its client and the reference it
// reads (both owned by the source, valid while it lives).
struct RegistryAccess {
  RegistryClient* client = nullptr;
  const ImageRef* ref = nullptr;
};

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
  // What the signature policy looks the image up as; by default a source
  // the policy never sees (transport "").
  virtual PolicyIdentity Identity() const { return {}; }
  // For sources whose blobs are local files (a layout, an archive): the
  // blob's bytes on a descriptor of the caller's own, so that a layer can
  // be applied from them while the same bytes are being stored. They are
  // not verified: whoever reads them checks them (the applier checks the
  // layer's digest). nullopt for remote sources and unknown blobs, or when
  // the file cannot be opened (the fetch then reports why).
  virtual std::optional<LocalBlob> OpenLocalBlob(const common::Digest&) { return std::nullopt; }
  // For messages about one blob whose bytes proved wrong: where the
  // source keeps it (an archive: its entry); by default Describe().
  virtual std::string DescribeBlob(const common::Digest&) const { return Describe(); }
  // Once ResolveTop succeeded: where the image came from, for sources that
  // have no reference of their own (a layout); nullopt for a registry.
  virtual std::optional<LayoutOrigin> Origin() const { return std::nullopt; }
  // For a registry source: its client and reference, so that what else
  // the registry holds for the image (signatures) is read through the same
  // mirrors, credentials and retries. nullopt for every other source.
  virtual std::optional<RegistryAccess> Registry() { return std::nullopt; }
};

// For sources whose blobs are local files: streams bytes [sink.offset(),
// size) of the open file `fd` into `sink` (from 0, after sink.Restart(),
// when the sink holds more than `size`). `what` names the blob in errors
// ("blob sha256:… in `DIR`"): I/O errors, DataLoss when the file is
// shorter than `size`, Cancelled.
// The blob starts at `file_offset` in the file (an archive's entry).
[[nodiscard]] common::Status StreamFileBlob(int fd, int64_t size, BlobSink& sink,
                                            const std::atomic<bool>* cancel,
                                            const std::string& what, int64_t file_offset = 0);

[[nodiscard]] common::Result<std::unique_ptr<ImageSource>> OpenRegistrySource(
    const ImageRef& ref, ClientOptions options);
[[nodiscard]] common::Result<std::unique_ptr<ImageSource>> OpenLayoutSource(
    const std::filesystem::path& dir, const std::string& tag);

}  // namespace registry
