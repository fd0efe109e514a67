#pragma once
// The file and directory destinations of images (registry/destination.h):
// what `gantry save` and `gantry copy` write.
//
//   ASSIGN_OR_RETURN(auto dst, archive::OpenDockerArchiveDestination("/tmp/x.tar", ""));
//   ASSIGN_OR_RETURN(image::CopiedImage c, image::CopyImage(*src, *dst, {}));
//   registry::DestinationImage out{.top = c.top, .names = {"localhost/app:v1"}};
//   TRY(dst->Commit(std::span(&out, 1), nullptr));
//
// Formats:
//  - OCI image layout directory (`oci:DIR[:TAG]`): blobs/sha256/<hex>
//    (each written to a temporary name, verified, renamed), oci-layout,
//    index.json. An existing layout keeps its blobs and its other
//    index.json entries; an entry whose ref name is one given at Commit is
//    replaced. Blobs it holds already are not written again. index.json is
//    the commit point (written to a temporary name and renamed); blobs
//    written by an uncommitted copy stay (content-addressed, unreferenced,
//    as skopeo leaves them).
//  - oci-archive (`oci-archive:FILE[:TAG]`): a tar of that layout (with no
//    previous content), streamed as blobs arrive: blobs/sha256/<hex>, and
//    at Commit oci-layout and index.json.
//  - docker-archive (`docker-archive:FILE[:REF]`): what `docker load`,
//    `podman load` and `skopeo copy docker-archive:` read: the config as
//    <hex>.json, each layer uncompressed as <diffID hex>.tar (gzip and zstd
//    layers decompressed while written, their diffID checked against the
//    config's rootfs.diff_ids), and at Commit manifest.json (Config,
//    RepoTags, Layers per image) and repositories. Several images share
//    their layers: a layer is written once. No manifest or index is kept:
//    PutManifest of an index is InvalidArgument (choose a --platform).
//
// Names: a destination opened with a TAG (REF) names every image of the
// Commit with it; otherwise the images' own names are used (one
// index.json entry or RepoTags item per name; a docker-archive keeps only
// names with a tag, never a digest).
//
// Archives are deterministic: entries have mtime 0, uid/gid 0 and fixed
// modes, blobs come in the copier's order and the metadata files are
// sorted, so two saves of the same images are byte-identical. FILE "-" is
// standard output (written as it comes; nothing to rename); any other
// FILE is written to a temporary file beside it (`.NAME.XXXXXX.tmp`),
// renamed into place by Commit and removed when the destination is
// destroyed uncommitted.
//
// Open errors: those of creating the temporary file or the directory
// (PermissionDenied, NotFound for a missing parent directory), naming the
// path. Thread-safety: one thread (ParallelBlobs() is false for the
// archives; the layout directory allows parallel blobs).

#include <filesystem>
#include <memory>
#include <string>

#include "common/error.h"
#include "registry/destination.h"

// The namespace is `archives`, not the folder's name: libarchive declares
// a global `struct archive`, which a namespace `archive` would clash with
// wherever both are visible.
namespace archives {

[[nodiscard]] common::Result<std::unique_ptr<registry::ImageDestination>> OpenLayoutDestination(
    const std::filesystem::path& dir, std::string tag);
[[nodiscard]] common::Result<std::unique_ptr<registry::ImageDestination>> OpenOciArchiveDestination(
    const std::filesystem::path& file, std::string tag);
[[nodiscard]] common::Result<std::unique_ptr<registry::ImageDestination>>
OpenDockerArchiveDestination(const std::filesystem::path& file, std::string ref);

}  // namespace archives
