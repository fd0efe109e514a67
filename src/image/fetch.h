#pragma once
// Fetching an image into the content store: the download half of a pull.
// The pipeline (image/pull.h, image::PullImage) is its caller; the source
// (registry/source.h) only resolves and streams each blob into a
// registry::BlobSink, which here writes a store ingest.
//
//   image::FetchOptions opts{.max_concurrent_downloads = 3};
//   opts.record = image::RecordOf;
//   auto r = image::Fetch(content, metadata, source_spec, opts);
//
// Resolves the reference (an index to the requested platform), fetches the
// manifest, the config and every layer (concurrently, each blob once, blobs
// already in the store not requested again), verifies every byte against
// its digest and size, and records the image under its normalised name.
// A lease, held by this process (store/lease_hold.h), protects what the
// pull has written from a concurrent prune until the image record exists;
// it is deleted when the pull ends, and if the process dies the next prune
// deletes it. A pull that finds every blob in the store already writes
// no blob and takes no lease (the caller's store::StoreLock keeps a prune
// away until the record exists: image::PullImage holds it); when, on top
// of that, the store already holds the record it would write (times
// aside) and a row for every blob, it writes nothing at all: no fsync, no
// transaction. On failure nothing is recorded; verified blobs stay (they
// are valid content, until a prune) and partial downloads with bytes stay
// in the ingest area for the next pull to resume (a download that got no
// byte, a 404, leaves no file).
//
// Disk space: once the manifest is resolved, and before any blob is
// requested, the bytes the pull still needs are compared with the free
// space of the store (image/space.h, FetchOptions::space); too little
// fails with ResourceExhausted and changes nothing. A disk that fills
// anyway (ENOSPC or EDQUOT while a blob is written) fails the pull with
// ResourceExhausted naming the file ("fetch blob sha256:…: write
// `<root>/content/ingest/sha256-…`: No space left on device"); the
// partial downloads of this pull are then deleted rather than kept for a
// resume, so that the space is free again at once.
//
// Signature policy: see FetchOptions::trust.
//
// Layers: a manifest listing more than FetchOptions::max_layers layers is
// refused with ResourceExhausted as soon as it is parsed, before the space
// check and before any blob is requested.
//
// Thread-safety: Fetch may run concurrently in threads and processes on the
// same store; `on_event` is called from worker threads, serialised.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "image/space.h"
#include "oci/descriptor.h"
#include "oci/manifest.h"
#include "registry/client.h"
#include "registry/source.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace image {

// What a layer is doing, in PullEvent::state and the progress record
// (where it is written by its name: docs/pull-progress.md).
enum class LayerState {
  kNone,     // the event says nothing about it
  kWaiting,  // queued, or waiting for another writer of the same blob
  kDownloading,
  kExists,     // already in the store
  kResumed,    // a partial download continues
  kDone,       // verified in the store
  kUnpacking,  // kLayerUnpack: being applied
  kUnpacked,   // kLayerUnpack: applied and verified
};

// "waiting" "downloading" "exists" "resumed" "done" "unpacking" "unpacked";
// "" for kNone.
constexpr std::string_view LayerStateName(LayerState s) {
  switch (s) {
    case LayerState::kNone:
      return "";
    case LayerState::kWaiting:
      return "waiting";
    case LayerState::kDownloading:
      return "downloading";
    case LayerState::kExists:
      return "exists";
    case LayerState::kResumed:
      return "resumed";
    case LayerState::kDone:
      return "done";
    case LayerState::kUnpacking:
      return "unpacking";
    case LayerState::kUnpacked:
      return "unpacked";
  }
  return "";
}

// The state a name stands for; nullopt for a name LayerStateName never gives.
std::optional<LayerState> LayerStateNamed(std::string_view name);

struct PullEvent {
  // kLayerUnpack is not emitted by Fetch: the unpacker reports it
  // (image::UnpackOptions::on_event) while it applies a layer, and the
  // callers that unpack during a pull feed it to the same consumers.
  enum class Kind {
    kResolved,
    kLayerStart,
    kLayerProgress,
    kLayerDone,
    kDone,
    kError,
    kLayerUnpack
  };
  Kind kind = Kind::kError;
  std::string ref{};                       // normalised reference
  std::optional<common::Digest> digest{};  // the blob (layer events) or image (resolved/done)
  int64_t current = 0;  // bytes held so far; kLayerUnpack: bytes of the blob unpacked
  int64_t total = 0;    // blob size
  // kWaiting kDownloading kExists kResumed kDone; kLayerUnpack: kUnpacking
  // kUnpacked
  LayerState state = LayerState::kNone;
  std::string message{};                    // kError
  std::vector<oci::Descriptor> layers{};    // kResolved: the layers to fetch
  std::optional<oci::Descriptor> config{};  // kResolved: the image config (fetched too)
};

struct FetchResult;
class PullFlights;
struct TrustPolicy;

// The default of FetchOptions::max_layers: overlayfs stacks at most 500
// lower layers (OVL_MAX_STACK), so an image with more cannot be mounted.
inline constexpr int kDefaultMaxLayers = 500;

// The space check before the download (image/space.h).
struct SpaceCheckOptions {
  bool enabled = true;  // false: --ignore-space-check
  // Where the pulled layers will be unpacked (the snapshots directory);
  // empty when the pull unpacks nothing.
  std::filesystem::path unpack_dir{};
  // Layer blobs that already have a committed snapshot: not counted for
  // the unpack (image::UnpackSpaceCheck fills it from the snapshotter).
  std::set<common::Digest> unpacked_layers{};
  int64_t margin = kSpaceMargin;
};

struct FetchOptions {
  std::optional<oci::Platform> platform;  // default: the host's
  registry::ClientOptions client;         // transport, auth, mirrors (registry sources)
  int max_concurrent_downloads = 3;
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(const PullEvent&)> on_event;
  // How often layer-progress events are emitted at most, per layer.
  std::chrono::milliseconds progress_interval{200};
  SpaceCheckOptions space{};
  // The most layers the image may have; a manifest with more fails the
  // pull with ResourceExhausted ("manifest has N layers, over the limit of
  // M (--max-layers)") before any blob is requested.
  int max_layers = kDefaultMaxLayers;
  // REQUIRED. Called once every blob is verified in the store (on the
  // thread that called Fetch): returns the image record to write, in the
  // transaction that ends the pull's lease, or an error that fails the
  // pull with nothing recorded. The caller's image model says what a
  // record holds (image/image_record.h, image::RecordOf); the pipeline
  // (image/pull.h) also finishes the layers' unpack here, so that an
  // image whose unpack failed (a full disk) is never listed.
  std::function<common::Result<store::ImageRecord>(const FetchResult&)> record{};
  // Publishes the manifests as they are stored and the blobs as they
  // download, for readers in this process (image/pull_flights.h); null:
  // nothing is published.
  PullFlights* flights = nullptr;
  // The signature policy (image/trust_gate.h, CheckTrust): the image is
  // judged once its manifest (the platform's, for an index) is fetched,
  // before anything is stored and before the config or any layer is
  // requested; a refusal fails the pull (PermissionDenied) with nothing
  // written. Null: every image is accepted.
  std::shared_ptr<const TrustPolicy> trust{};
};

struct FetchResult {
  std::string name;          // the image record's name
  oci::Descriptor target;    // what the reference resolved to (index or manifest)
  oci::Descriptor manifest;  // the platform's manifest
  oci::Descriptor config;
  std::vector<oci::Descriptor> layers;
  oci::ImageConfig image_config;
  std::string platform;                          // the image's, normalised ("linux/arm64/v8")
  std::optional<registry::LayoutOrigin> origin;  // an oci: layout's (ImageSource::Origin)
  int64_t bytes_downloaded = 0;  // new bytes transferred (resumed bytes not counted)
  int blobs_fetched = 0;         // blobs that were not already in the store
  int64_t bytes_present = 0;     // bytes of the blobs (config, layers) already in the store
};

[[nodiscard]] common::Result<FetchResult> Fetch(store::ContentStore& content,
                                                store::MetadataDb& metadata,
                                                const registry::SourceSpec& source,
                                                const FetchOptions& options);

// The source `source` names: a registry (with `client`), an oci: layout,
// a docker-archive or an oci-archive. Errors: the source's own, wrapped
// with "pull <name>".
[[nodiscard]] common::Result<std::unique_ptr<registry::ImageSource>> OpenSource(
    const registry::SourceSpec& source, const registry::ClientOptions& client);

// Fetch over an already opened source (tests and callers with their own).
[[nodiscard]] common::Result<FetchResult> FetchFrom(store::ContentStore& content,
                                                    store::MetadataDb& metadata,
                                                    registry::ImageSource& src,
                                                    const std::string& name,
                                                    const FetchOptions& options);

}  // namespace image
