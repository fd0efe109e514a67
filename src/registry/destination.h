#pragma once
// Where an image goes: the mirror of registry/source.h. Each place gantry
// can write an image to implements ImageDestination:
//   - a distribution registry (`gantry push`, `copy … docker://`-style refs),
//   - an OCI image-layout directory (`oci:DIR[:TAG]`),
//   - an OCI image-layout tar (`oci-archive:FILE[:TAG]`),
//   - a Docker save archive (`docker-archive:FILE[:REF]`).
// The copier moves an image from any ImageSource (a registry, a layout, an
// archive, the store: image/store_source.h) into any ImageDestination, so
// that save, push and copy are one loop over these two interfaces.
//
// The order of calls, which every destination may rely on:
//  1. for each platform manifest copied, its config blob and then its
//     layers in manifest order: HasBlob; when false, PutBlob, the source's
//     FetchBlob into the returned writer (resuming from writer.offset()
//     when the writer asks for it, see BlobWriter), then writer.Finish();
//  2. PutManifest for each platform manifest, after all of its blobs; then
//     PutManifest for the index, when an index is copied whole (after every
//     manifest it lists);
//  3. Commit once, with the top descriptor of every image written and the
//     names to give it.
// Nothing written before Commit is visible under a name: a registry gets
// its tags in Commit (blobs and manifests by digest may stay, as a failed
// skopeo copy leaves them); a file or directory destination writes into a
// temporary name beside the target and renames it into place in Commit,
// and removes it when destroyed uncommitted.
//
// Thread-safety: one copy at a time per destination. The copier may call
// HasBlob/PutBlob and write to different BlobWriters from several threads
// at once when the destination says so (ParallelBlobs); everything else
// from one thread.

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "oci/descriptor.h"
#include "registry/client.h"

namespace registry {

// A blob being written. The source writes into it as into any BlobSink
// (offset() is where it resumes; Restart() drops what was written), then
// the copier calls Finish().
//
// Resuming: when Write fails with Unavailable (a registry upload cut
// midway), the writer has already re-synchronised offset() with what the
// destination really holds; the copier then calls the source's FetchBlob
// again (which starts at offset()), at most a bounded number of times
// without progress, as registry fetches do.
class BlobWriter : public BlobSink {
 public:
  // Checks that exactly the descriptor's size was written and that it
  // hashes to its digest, then makes the blob present in the destination.
  // Errors: DataLoss for a size or digest mismatch (nothing kept);
  // the destination's own.
  [[nodiscard]] virtual common::Status Finish(const std::atomic<bool>* cancel) = 0;
};

// One image given to Commit: the manifest or index PutManifest received
// last for it, and the names to record it under: references as text
// ("registry.example/app:v1"); a destination keeps what it can (a registry
// the tag of its own reference, ignoring these; a docker-archive
// RepoTags; an OCI layout the org.opencontainers.image.ref.name
// annotation). Empty: no name (a docker-archive entry with no RepoTags, a
// layout entry without the annotation).
struct DestinationImage {
  oci::Descriptor top;
  std::vector<std::string> names;
};

class ImageDestination {
 public:
  virtual ~ImageDestination() = default;

  // True when the destination already holds the blob, so the copier skips
  // it (a registry: HEAD; an archive: written earlier in this copy).
  // `mount_from`: a repository path on the same registry host that holds
  // the blob (the source's), for a cross-repository mount; empty when
  // none. A registry that mounts it answers true. Others ignore it.
  [[nodiscard]] virtual common::Result<bool> HasBlob(const oci::Descriptor& blob,
                                                     std::string_view mount_from,
                                                     const std::atomic<bool>* cancel) = 0;

  // Starts writing `blob`. Errors: the destination's (Unavailable,
  // Unauthenticated, PermissionDenied for a registry; I/O for files).
  [[nodiscard]] virtual common::Result<std::unique_ptr<BlobWriter>> PutBlob(
      const oci::Descriptor& blob, const std::atomic<bool>* cancel) = 0;

  // Writes a manifest or index by digest, verified (body hashes to
  // manifest.digest). A destination that cannot hold the media type (a
  // docker-archive given an index) answers InvalidArgument naming what
  // to choose instead (a platform).
  [[nodiscard]] virtual common::Status PutManifest(const FetchedManifest& manifest,
                                                   const std::atomic<bool>* cancel) = 0;

  // Makes the images visible under their names (see the file comment).
  // After Commit the destination takes no more calls.
  [[nodiscard]] virtual common::Status Commit(std::span<const DestinationImage> images,
                                              const std::atomic<bool>* cancel) = 0;

  // Whether HasBlob/PutBlob/BlobWriter may be used from several threads at
  // once (a registry: yes; a tar archive written in one stream: no).
  virtual bool ParallelBlobs() const = 0;

  // For messages: "127.0.0.1:5000/app:v1", "oci-archive:/tmp/x.tar:v1".
  virtual std::string Describe() const = 0;
};

}  // namespace registry
