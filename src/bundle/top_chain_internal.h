#pragma once
// What bundles and mounts share: an image's top layer as a committed
// snapshot, the parent of the snapshot they make of their own.

#include <atomic>
#include <functional>
#include <string>

#include "common/error.h"
#include "image/unpacker.h"
#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace bundle::internal {

struct TopChainOptions {
  const std::atomic<bool>* cancel = nullptr;  // the unpack's (image::UnpackOptions)
  // Called before the image is unpacked, and once it is; neither is when
  // its top layer is committed already.
  std::function<void()> on_unpack{};
  std::function<void(const image::UnpackResult&)> on_unpacked{};
};

struct TopChain {
  image::ImageParts parts;  // manifest, config, chainIDs
  std::string top;          // the top chainID; "" for an image without layers
};

// Reads the image `record` names (image::LoadImage) and, when its top
// chainID has no committed snapshot in `sn`, unpacks it (image::Unpack).
// Errors: those of image::FromRecord, image::LoadImage and image::Unpack,
// unwrapped.
// REQUIRES: the caller holds store::StoreLock shared on content.root() and
// keeps it until the snapshot made on `top` exists (until then a prune may
// collect the layers).
[[nodiscard]] common::Result<TopChain> UnpackedTopChain(store::ContentStore& content,
                                                        store::MetadataDb& metadata,
                                                        snapshot::Snapshotter& sn,
                                                        const store::ImageRecord& record,
                                                        const TopChainOptions& options);

}  // namespace bundle::internal
