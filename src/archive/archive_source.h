#pragma once
// Image archives as image sources (registry/source.h), so that
// `gantry pull docker-archive:FILE[:REF]`, `gantry pull oci-archive:FILE[:TAG]`
// and `gantry load` all run through the one pull pipeline (image/pull.h).
//
// The archive is a file, or what was read from a pipe
// (archive/archive_contents.h): every blob is pread from its entry, so
// that layers apply in parallel while they are read, as a pull does;
// nothing is copied.
//
// docker-archive (`docker save`, `skopeo copy … docker-archive:`,
// `podman save`): manifest.json lists images, each with Config (the config
// file), RepoTags and Layers (layer files: `<id>/layer.tar`, `<hex>.tar`,
// or — docker 25+ — `blobs/sha256/<hex>`). It has no manifest, so one is
// built, deterministically, so that loading an archive twice records the
// same manifest digest: an OCI image manifest whose config is the config
// file as it is (its sha256 is the docker image ID) and whose layers are
// the layer files as they are, each typed by its first bytes (plain tar,
// gzip, zstd) and named by its sha256. That digest is not computed by
// reading the file twice where the archive already states it: a plain
// layer's digest is its diffID (the config's rootfs.diff_ids[i]); a layer
// file named by a sha256 hex (`<hex>.tar`, `blobs/sha256/<hex>`) is taken
// to have that digest; only other compressed layers are hashed when the
// source opens; in a streamed archive every entry's sha256 is known, and a
// layer whose stated digest differs from it fails when the source opens
// (DataLoss naming the entry). Every byte is verified as it is stored (a wrong name or
// diffID fails the pull: DataLoss), and the unpack checks the diffIDs.
//
// Selectors (SourceSpec::layout_tag): "" — the archive must hold one image;
// "@N" — the N-th image (0-based) of manifest.json or index.json, as in
// skopeo; else, for a docker-archive, a reference equal (normalised) to one
// of an image's RepoTags; for an oci-archive, an index entry's
// org.opencontainers.image.ref.name.
//
// Errors (each names the archive, and the entry when there is one):
// NotFound for a missing file, entry or image; InvalidArgument for a
// malformed manifest.json/index.json, a tar whose own entry names escape it,
// several images without a selector; DataLoss for a truncated archive;
// the tar walker's (archive/tar_index.h).
//
// Thread-safety: FetchBlob may run on several threads at once (pread);
// the rest from one thread.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "archive/archive_contents.h"
#include "common/error.h"
#include "oci/manifest.h"
#include "registry/source.h"

namespace archives {

// An archive's image as a pull source, that also tells which entries hold
// its blobs.
class ArchiveImage : public registry::ImageSource {
 public:
  // The entries that hold the blobs a pull of the image for `platform`
  // stores: for a docker-archive its config and layers; for an oci-archive
  // its manifests (top, then the platform's when the top is an index), its
  // config and its layers. Each is checked present, and equal to its
  // descriptor where its digest is known. Errors: NotFound naming a
  // missing entry; DataLoss for a wrong size or digest; the platform
  // selection's.
  [[nodiscard]] virtual common::Result<std::vector<const ContentEntry*>> BlobEntries(
      const oci::Platform& platform) = 0;

  // Transport "docker-archive" or "oci-archive"; the path is the archive
  // file's when it was opened from one (OpenArchiveSource), "" for an
  // archive read from a stream.
  registry::PolicyIdentity Identity() const override { return identity_; }
  registry::PolicyIdentity& identity() { return identity_; }

 private:
  registry::PolicyIdentity identity_;
};

// The image that `spec` (kind kDockerArchive or kOciArchive) selects in
// `contents` (its layout_dir is only used in Describe()). Errors: as
// OpenArchiveSource.
[[nodiscard]] common::Result<std::unique_ptr<ArchiveImage>> OpenArchiveImage(
    std::shared_ptr<ArchiveContents> contents, const registry::SourceSpec& spec);

// Opens the image that `spec` (kind kDockerArchive or kOciArchive) names.
[[nodiscard]] common::Result<std::unique_ptr<registry::ImageSource>> OpenArchiveSource(
    const registry::SourceSpec& spec);

// For `gantry pull docker-archive:FILE` / `oci-archive:FILE` without a
// selector and without --name: the name the archive's only image carries
// (its first RepoTag; its ref name by ParseSourceSpec's rules); nullopt when
// it has none or the archive cannot be read (the pull then reports why).
[[nodiscard]] std::optional<registry::ImageRef> ArchiveImageName(const registry::SourceSpec& spec);

// What `gantry load` records from `input` (a docker-archive or oci-archive
// file, or an OCI layout directory): one pull source per name to record,
// in archive order, every image and every tag. An image without a name
// gets `name` when given (then the archive must hold one image), else
// `localhost/BASE:latest` (BASE from the file's base name, as
// ParseSourceSpec names layouts; `:N` instead of `:latest` when several
// images lack a name). `untagged` is set on the sources of such images.
struct LoadItem {
  registry::SourceSpec spec;
  bool untagged = false;
};
// Errors: as OpenArchiveSource; InvalidArgument when a name is given to
// two images (duplicate tags: nothing is loaded), or `name` with several
// images.
[[nodiscard]] common::Result<std::vector<LoadItem>> ListLoadItems(
    const std::filesystem::path& input, std::string_view name);
// The same for an archive already read (from a stream): `base` stands for
// the file name (`localhost/BASE:latest`, and FILE in the specs), errors
// name contents.what(). Sources of the items are opened with
// OpenArchiveImage on the same contents.
[[nodiscard]] common::Result<std::vector<LoadItem>> ListLoadItems(const ArchiveContents& contents,
                                                                  std::string_view base,
                                                                  std::string_view name);

}  // namespace archives
