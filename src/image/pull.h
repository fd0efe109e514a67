#pragma once
// The one pull pipeline: every edge that brings an image into the store
// (`gantry pull`, the CRI ImageService's PullImage, and later ones) calls
// PullImage and keeps only its flags, its single-flight and its printing.
//
//   image::PullStore store{.root = root, .content = &content, .metadata = &db};
//   image::PullImageOptions opts{.source = spec, .snapshotter = sn.get(), .cancel = &cancel};
//   opts.on_event = [&](const image::PullEvent& e) { printer.OnEvent(e); };
//   ASSIGN_OR_RETURN(image::PulledImage img, image::PullImage(store, opts));
//
// In order, PullImage:
//  1. takes the store's shared lock (store/store_lock.h), waiting with
//     `cancel`, so that no garbage collection runs during the pull; the
//     caller must not hold one (StoreLock's rule);
//  2. starts the image's progress record (image/pull_progress.h), under the
//     source's normalised name, fed with every event below;
//  3. resolves, checks the layer count and the space (with the unpack's
//     share when it unpacks: UnpackSpaceCheck) and downloads every blob
//     (image::Fetch, leased until recorded);
//  4. with a snapshotter, applies each layer while it downloads, reading
//     the bytes its download has written so far (UnpackOptions::flights;
//     a layer in the store already, or whose download another process
//     makes, once its blob is verified), as image::UnpackLayers does:
//     layers in parallel, each committed in chain order only once its
//     blob is verified in the store;
//  5. once every blob is in and every layer committed, records the image
//     labelled with its top chain, in one transaction (a failed unpack, a
//     full disk, leaves no record: an image is never listed half
//     unpacked); a re-pull that found every blob and layer present and
//     the record as it would write it writes nothing: no lease, no
//     fsync, no transaction (image/fetch.h);
//  6. finishes the progress record, "done" only now, or "failed" with the
//     error.
// On failure nothing is recorded; verified blobs and committed layers stay
// (valid content, until a prune), partial downloads stay for the next pull
// to resume (image/fetch.h).
//
// Rate floor: with `rate_floor` set, a pull whose bytes held grow by less
// than `bytes_per_sec` over any `window` is cancelled with Unavailable
// ("pull REF: cancelled: downloaded less than R bytes/s for W s (partial
// downloads are kept; the next pull resumes them)"). The window restarts
// while a layer waits for another writer of the same blob (that writer has
// its own floor) and does not run once every blob is in (no bytes flow
// while the last layers are applied). The registry client's per-transfer
// floor then gets twice the window, so that the pull-wide one decides
// first. kubelet sets no deadline on PullImage: the CRI edge sets one.
//
// Errors: image::Fetch's; the unpack's, naming the layer ("apply layer
// sha256:…: …", wrapped "unpack REF"); Cancelled when `cancel` was set;
// Unavailable for the rate floor; the store lock's.
//
// Thread-safety: PullImage may run concurrently in threads and processes
// on the same store. `on_event` is called from the pull's and the unpack's
// threads, one call at a time.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/error.h"
#include "image/fetch.h"
#include "image/unpacker.h"
#include "oci/manifest.h"
#include "registry/client.h"
#include "registry/source.h"
#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace image {

// The store a pull works in. Pointers, not owned; REQUIRES: non-null and
// outliving the call.
struct PullStore {
  std::filesystem::path root;
  store::ContentStore* content = nullptr;
  store::MetadataDb* metadata = nullptr;
};

struct RateFloor {
  int64_t bytes_per_sec = 0;  // 0: no floor
  std::chrono::milliseconds window{std::chrono::seconds(60)};
};

struct PullImageOptions {
  registry::SourceSpec source{};  // a registry reference or an oci: layout
  // An image source the caller already opened (an archive read from a
  // pipe, image/load_stream.h): used instead of opening `source`, whose
  // `ref` still names the image record.
  std::shared_ptr<registry::ImageSource> opened_source{};
  std::optional<oci::Platform> platform{};  // default: the host's
  registry::ClientOptions client{};         // transport, auth, mirrors
  int max_concurrent_downloads = 3;
  int max_layers = kDefaultMaxLayers;
  // Unpacks into this snapshotter's chainID snapshots; null: content only
  // (`gantry pull --no-unpack`).
  snapshot::Snapshotter* snapshotter = nullptr;
  bool check_space = true;  // false: --ignore-space-check
  std::optional<RateFloor> rate_floor{};
  const std::atomic<bool>* cancel = nullptr;
  // Every download event and, when it unpacks, every kLayerUnpack event
  // (its `ref` set to the image's name), one at a time.
  std::function<void(const PullEvent&)> on_event{};
  // FetchOptions::flights: where the pull publishes what it is bringing in
  // (image/pull_flights.h); null: a table of the pull's own. Either way
  // the unpack (with a snapshotter) follows each layer's download through
  // it (UnpackOptions::flights).
  PullFlights* flights = nullptr;
  // FetchOptions::trust: the signature policy; null accepts every image.
  std::shared_ptr<const TrustPolicy> trust{};
};

struct PulledImage {
  FetchResult pull;
  std::optional<UnpackResult> unpack;  // set when a snapshotter was given
};

[[nodiscard]] common::Result<PulledImage> PullImage(const PullStore& store,
                                                    const PullImageOptions& options);

// Unpacks the image record `name` into `sn` under the store's shared lock
// (what `gantry unpack` does; a pull unpacks as it downloads). Errors: the
// lock's, GetImage's, image::Unpack's.
[[nodiscard]] common::Result<UnpackResult> UnpackStoredImage(const PullStore& store,
                                                             snapshot::Snapshotter& sn,
                                                             const std::string& name,
                                                             const std::atomic<bool>* cancel);

}  // namespace image
