#pragma once
// The copier: moves one image from any ImageSource (registry/source.h: a
// registry, an OCI layout, an archive, the store through
// image/store_source.h) into any ImageDestination (registry/destination.h:
// a registry, an OCI layout, an oci-archive, a docker-archive). `gantry
// save`, `gantry push` and `gantry copy` are this loop; `gantry pull` and
// `gantry load` (into the store) are the pull pipeline (image/pull.h).
//
//   ASSIGN_OR_RETURN(auto src, image::OpenStoreSource(store, name, cancel));
//   ASSIGN_OR_RETURN(image::CopiedImage c, image::CopyImage(*src, *dst, {.cancel = cancel}));
//   registry::DestinationImage out{.top = c.top, .names = {name}};
//   TRY(dst->Commit(std::span(&out, 1), cancel));
//
// What is copied: the source's top (ResolveTop). A platform manifest is
// copied with its config and layers. An index is copied whole (every
// manifest it lists, each with its blobs, then the index itself,
// byte-for-byte, so its digest stays) with `all_platforms`; otherwise
// only the manifest of `platform` is (its digest stays too), and `top` is
// that manifest. Manifests and indexes are never rewritten: the digest a
// user pushed is the digest the destination serves. (A docker-archive
// destination, which keeps no manifest, says so itself.)
//
// Blobs: in the order registry/destination.h gives; HasBlob first (with
// `mount_from`), so that blobs the destination holds are not sent. A blob
// whose writer fails with Unavailable is resumed from the writer's
// offset() (BlobWriter's rule), up to `max_stalled_resumes` times in a row
// without progress. When the destination allows it (ParallelBlobs), up to
// `max_parallel` blobs move at once.
//
// The caller calls Commit: several images may go into one destination (a
// docker-archive holding many images shares their layers).
//
// Errors: the source's and the destination's, wrapped with the blob or
// manifest they concern; NotFound for a platform the index lacks
// (registry/platform_manifest.h); DataLoss for a manifest whose size is not
// its index entry's; Cancelled.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/error.h"
#include "oci/descriptor.h"
#include "oci/manifest.h"
#include "registry/destination.h"
#include "registry/source.h"

namespace image {

struct TrustPolicy;  // image/trust_gate.h

// What happened to one blob, for progress output.
struct CopyEvent {
  enum class Kind { kBlobSkipped, kBlobStarted, kBlobProgress, kBlobDone, kManifestDone } kind;
  oci::Descriptor blob;  // the blob, or the manifest for kManifestDone
  int64_t bytes = 0;     // kBlobProgress: bytes written so far
};

struct CopyOptions {
  std::optional<oci::Platform> platform{};  // default: the host's
  bool all_platforms = false;               // copy an index whole
  std::string mount_from{};                 // passed to HasBlob
  int max_parallel = 3;
  int max_stalled_resumes = 5;
  const std::atomic<bool>* cancel = nullptr;
  // Called one at a time, from the copier's threads.
  std::function<void(const CopyEvent&)> on_event{};
  // The signature policy (image/trust_gate.h, CheckTrust), as skopeo copy
  // obeys it: the manifest copied (the platform's; the index itself with
  // all_platforms) is judged before anything is read or written past it.
  // Null: every image is accepted.
  std::shared_ptr<const TrustPolicy> trust{};
};

struct CopiedImage {
  oci::Descriptor top;  // what to give Commit: the index or the platform manifest
  int blobs_sent = 0;
  int blobs_skipped = 0;
  int64_t bytes_sent = 0;
};

[[nodiscard]] common::Result<CopiedImage> CopyImage(registry::ImageSource& source,
                                                    registry::ImageDestination& destination,
                                                    const CopyOptions& options);

// True for an OCI index or a Docker manifest list media type.
[[nodiscard]] bool IsIndexMediaType(std::string_view media_type);

}  // namespace image
