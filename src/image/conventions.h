#pragma once
// How images, content and snapshots refer to each other in one store; the
// contract shared by the unpacker, garbage collection, `df`, bundles and
// the CRI service.
//
// Image records (store::ImageRecord, metadata.db `images`) are read and
// written through the image model, image/image_record.h, which lists their
// labels: a name, its target (index or manifest), the platform manifest,
// the config (the image id), the platform, and once unpacked the top
// layer's chainID.
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

#include <string_view>

#include "snapshot/snapshotter.h"

namespace image {

inline constexpr std::string_view kSnapshotLabelLayer = "io.gantry.layer";
inline constexpr std::string_view kSnapshotLabelDiffId = "io.gantry.diff_id";
inline constexpr std::string_view kSnapshotLabelExtract = snapshot::kLabelExtract;
inline constexpr std::string_view kExtractKeyPrefix = "extract-";

}  // namespace image
