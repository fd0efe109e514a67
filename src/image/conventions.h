#pragma once
// How images, content and snapshots refer to each other in one store; the
// contract shared by the unpacker, garbage collection, `df`, bundles and
// the CRI service.
//
// Image record (store::ImageRecord, metadata.db `images`):
//   name    normalised reference ("docker.io/library/busybox:latest")
//   target  the descriptor the reference resolved to (index or manifest)
//   labels  io.gantry.manifest  digest of the platform manifest (== target
//                               digest when target is a manifest)
//           io.gantry.config    digest of the image config (the image id)
//           io.gantry.platform  "linux/amd64"
//           io.gantry.chain     chainID of the top layer ("" for no layers),
//                               set once the image is unpacked
//
// Committed layer snapshots are named by chainID ("sha256:…", the OCI
// image-spec definition), per snapshotter, so identical layer stacks are
// shared between images. Their labels:
//   io.gantry.layer    the compressed layer blob digest it was applied from
//   io.gantry.diff_id  the layer's diffID
//
// Snapshots being filled by an unpack are active snapshots keyed
// "extract-<random>-<chainID hex prefix>" with label io.gantry.extract=1;
// a lease protects them while the unpack runs, so any other extract
// snapshot is a leftover of a killed process and is garbage. The unpacking
// process holds that lease (store/lease_hold.h): once it is killed, the
// lease is abandoned and the next prune collects the extract snapshots.
//
// Other active snapshots and views (bundles, `gantry mount`) are roots for
// garbage collection: they keep their parent chain alive.
//
// Content reachable from an image: the target blob, the platform manifest,
// the config and the manifest's layers (other platforms' manifests of an
// index are never fetched). Content and snapshots named in an unexpired
// lease are kept too.

#include <string>
#include <string_view>

#include "registry/pull.h"
#include "store/metadata.h"

namespace image {

// Written by the puller (registry/pull.h).
using registry::kLabelConfig;
using registry::kLabelManifest;
using registry::kLabelPlatform;
// Written by the unpacker.
inline constexpr std::string_view kLabelChain = "io.gantry.chain";

inline constexpr std::string_view kSnapshotLabelLayer = "io.gantry.layer";
inline constexpr std::string_view kSnapshotLabelDiffId = "io.gantry.diff_id";
inline constexpr std::string_view kSnapshotLabelExtract = "io.gantry.extract";
inline constexpr std::string_view kExtractKeyPrefix = "extract-";

// The value of an image record's label `key`; "" when it has none.
// TODO(issue 14): goes with the typed image model that replaces the labels.
inline std::string RecordLabel(const store::ImageRecord& r, std::string_view key) {
  auto it = r.labels.find(std::string(key));
  return it == r.labels.end() ? std::string() : it->second;
}

}  // namespace image
