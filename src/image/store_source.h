#pragma once
// An image of the store as an ImageSource (registry/source.h): what
// `gantry save` and `gantry push` read, so that they copy out of the store
// with the same copier that copies between registries and archives.
//
//   ASSIGN_OR_RETURN(auto src, image::OpenStoreSource(store, "localhost/app:v1", nullptr));
//   ASSIGN_OR_RETURN(registry::FetchedManifest top, src->ResolveTop(cancel));
//
// ResolveTop answers the record's target: an index when the image was
// pulled by an index (its other platforms' manifests and blobs are then
// not in the store: GetManifest/FetchBlob answer NotFound for them), else
// the platform manifest. PlatformManifest() names the one the store holds
// whole. Manifests are read from the content store and verified against
// their digests (DataLoss); blobs are streamed as they are, since every
// BlobWriter verifies what it is given.
//
// The source holds the store's shared lock (store/store_lock.h) from Open
// until it is destroyed, so that no garbage collection removes a blob it
// is sending. REQUIRES: the calling thread holds no other StoreLock.
//
// Thread-safety: FetchBlob may run on several threads at once; the rest
// from one thread.

#include <atomic>
#include <memory>
#include <string>

#include "common/digest.h"
#include "common/error.h"
#include "image/pull.h"
#include "registry/source.h"

namespace image {

class StoreSource : public registry::ImageSource {
 public:
  // The platform manifest the store holds whole (PlatformManifest of the
  // record).
  virtual common::Digest PlatformManifest() const = 0;
};

// Opens the image recorded as `name` (normalised reference, the record's
// key). Errors: the lock's (Cancelled); NotFound when no such record;
// the record's parse errors.
[[nodiscard]] common::Result<std::unique_ptr<StoreSource>> OpenStoreSource(
    const PullStore& store, const std::string& name, const std::atomic<bool>* cancel);

}  // namespace image
