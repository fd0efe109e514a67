#pragma once
// Unpacking a pulled image into committed snapshots named by chainID.
//
//   image::UnpackOptions opts{.snapshotter = sn.get(), .metadata = &db};
//   ASSIGN_OR_RETURN(auto r, image::Unpack(content, opts, record));
//   // r.chain_ids.back() is the image's top snapshot
//
// For each layer whose chainID has no committed snapshot yet, the layer
// blob is applied (one streaming pass: decompression, diffID, tar) into a
// fresh extract snapshot, and the extract snapshots are
// committed in chain order. The blob's own digest is not computed again
// here: the content store verified it before the blob got its name, and a
// layer applied before that (open_local, flights) is committed only once
// wait_for_blob says the store has the verified blob; the diffID, checked
// on every layer, is what proves the tree applied. With the overlay snapshotter the layers are
// independent directories: they are applied concurrently and each commit
// only links a layer to its parent. With the native snapshotter each layer
// starts as a copy of its parent, so they are applied in order.
//
// A layer that fails (hostile entry, diffID mismatch, disk full) fails the
// unpack with the layer's digest in the message; its extract snapshot is
// removed and no snapshot with partial contents is ever committed. Commits
// do not wait for a sync: a machine crash soon after is covered by the
// snapshotter, which discards snapshots committed in an earlier boot and
// never synced (snapshot/snapshotter.h).
// Snapshots committed before the failure are valid layers and stay (a
// later unpack or prune decides about them).
//
// Thread-safety: may run concurrently with other unpacks and pulls on the
// same store (a second unpack of the same chain waits on nothing: whoever
// commits first wins and the other discards its copy).
//
// Locking: none taken here. REQUIRES: the caller holds store::StoreLock
// shared on the store's root until what it unpacked is held by a record, a
// lease or a snapshot of its own, as the entry points that call these do
// (image::PullImage, image::UnpackStoredImage, bundle::CreateImageBundle,
// bundle::MountImage).

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "image/fetch.h"
#include "image/image_record.h"
#include "image/pull_flights.h"
#include "oci/manifest.h"
#include "registry/source.h"
#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"
#include "unpack/apply.h"

namespace image {

struct UnpackOptions {
  snapshot::Snapshotter* snapshotter = nullptr;  // REQUIRES: non-null
  store::MetadataDb* metadata = nullptr;         // REQUIRES: non-null (leases, labels)
  unpack::Limits limits{};
  int max_parallel = 4;  // layers applied at once (overlay)
  const std::atomic<bool>* cancel = nullptr;
  // Called (from an unpack thread) before a layer's blob is opened; returns
  // once the blob is in the content store, or an error that fails the
  // layer. `gantry pull` uses it to apply each layer as soon as its
  // download is verified, while the others still download. Unset: every
  // blob must be there already.
  std::function<common::Status(const common::Digest& blob)> wait_for_blob = nullptr;
  // A layer's bytes to apply from before its blob is in the content store:
  // a local source's file (an archive's entry, a layout's blob), read while
  // the pull stores the same bytes. wait_for_blob is then called after the
  // layer is applied and before its snapshot is committed, so that no
  // chain is committed over a blob the store did not verify; the applier
  // checks the diffID, and hashes the compressed bytes itself only when
  // wait_for_blob is unset.
  // Unset, or nullopt for a blob: the layer is read from the store.
  std::function<std::optional<registry::LocalBlob>(const common::Digest& blob)> open_local =
      nullptr;
  // Blobs downloading right now (image/pull_flights.h): a layer a pull of
  // this process has in flight when its turn comes is applied as it
  // downloads, following the download (PullFlights::Follow), instead of
  // after it: the applier reads the bytes written so far and waits for the
  // next ones, so nothing buffers the layer and a slow applier never slows
  // the download. The snapshot is committed only after wait_for_blob says
  // the store verified the blob (the applier checks the diffID, and hashes
  // the compressed bytes itself only when wait_for_blob is unset). Should that apply fail while the
  // store ends up with the verified blob (the download restarted over a partial whose bytes
  // differed, or the follower gave up waiting for another process's download), the layer is applied
  // again from the store, into a fresh snapshot; a download that fails fails the layer. Ignored for
  // a blob open_local gives. Null: every layer is read from the store.
  PullFlights* flights = nullptr;
  // Unpack progress, as image::PullEvent::Kind::kLayerUnpack events
  // (`ref` left empty) for each layer applied (none for layers already
  // unpacked): state "unpacking" with current 0 when the layer's blob is
  // opened, then each time the applier has read at least
  // UnpackProgressStep(total) more bytes of it; state "unpacked" with
  // current == total once the layer is applied and verified. `current`
  // counts compressed bytes of the blob read by the applier and `total` is
  // the blob's size: unlike the uncompressed size, it is known before the
  // layer is read, so it gives a percentage. The decoder reads ahead of the
  // files written by at most its buffers (unpack/apply.h, a few MiB).
  // Calls are serialised (they come from the unpack threads); for one layer
  // `current` only grows. Unset: no events.
  std::function<void(const PullEvent&)> on_event = nullptr;
};

// How many more blob bytes make a new "unpacking" event: 1% of the blob,
// at least 1 MiB, so a layer reports at most about a hundred times and a
// small one only its start and end.
[[nodiscard]] int64_t UnpackProgressStep(int64_t total);

struct UnpackResult {
  std::vector<common::Digest> chain_ids;  // one per layer, bottom first
  int layers_applied = 0;                 // 0 when every chain already existed
  int64_t bytes_unpacked = 0;             // uncompressed tar bytes applied
};

// Unpacks the image `record` names (its manifest and config must be in the
// content store, as Pull leaves them) and records it unpacked with its top
// chainID (image/image_record.h), unless the name was removed or moved to
// another image since `record` was read (then the layers are unpacked and
// nothing is recorded).
// Errors: NotFound (blob missing: pull first); DataLoss (diffID or digest
// mismatch, or labels of `record` that do not parse); InvalidArgument (hostile layer, naming the
// entry); as the snapshotter and store report.
[[nodiscard]] common::Result<UnpackResult> Unpack(store::ContentStore& content,
                                                  const UnpackOptions& options,
                                                  const store::ImageRecord& record);

// As Unpack, for the record named `name` as it is now: what a pull does
// right after recording the image. Errors: Aborted when there is no such
// record (an rmi or prune --all removed it right after the pull); as Unpack.
[[nodiscard]] common::Result<UnpackResult> UnpackRecorded(store::ContentStore& content,
                                                          const UnpackOptions& options,
                                                          const std::string& name);

// Loads the platform manifest (image/image_record.h PlatformManifest) and
// the config an image points at. Errors: NotFound (blob missing);
// InvalidArgument (unparsable, or diff_ids and layers differ in number);
// for a record, DataLoss when its labels do not parse (FromRecord).
struct ImageParts {
  oci::Manifest manifest;
  oci::ImageConfig config;
  std::vector<common::Digest> chain_ids;
};
[[nodiscard]] common::Result<ImageParts> LoadImage(const store::ContentStore& content,
                                                   const Image& image);
[[nodiscard]] common::Result<ImageParts> LoadImage(const store::ContentStore& content,
                                                   const store::ImageRecord& record);

// As Unpack, for the layers of `parts` (manifest layers, config diff_ids
// and chain ids, as LoadImage returns them) before any image record names
// them: nothing is labelled. A pull unpacks this way while it downloads,
// then calls Unpack, which finds the chain committed and only labels it.
[[nodiscard]] common::Result<UnpackResult> UnpackLayers(store::ContentStore& content,
                                                        const UnpackOptions& options,
                                                        const ImageParts& parts);

// The parts of a pulled image, from the pull's result (before any record).
[[nodiscard]] ImageParts PartsOf(const FetchResult& pulled);

// The space check of a pull that unpacks into `sn`, whose store root is
// `root` (image/space.h): snapshots go to <root>/snapshots, and layers
// that `sn` already has committed snapshots of (label io.gantry.layer)
// need no space. Errors: from Snapshotter::List.
[[nodiscard]] common::Result<SpaceCheckOptions> UnpackSpaceCheck(snapshot::Snapshotter& sn,
                                                                 const std::filesystem::path& root);

}  // namespace image
