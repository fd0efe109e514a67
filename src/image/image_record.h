#pragma once
// The image model: what the store knows about one named image, typed, and
// its conversion to and from the stored record (store::ImageRecord, a row
// of metadata.db `images` with its `image_labels`). Every reader of image
// records (gc, df, fsck, image sizes, `gantry images`/`inspect`, lookups,
// bundle, mount, the unpacker, the CRI catalog) goes through FromRecord;
// the label keys below are read and written only in image_record.cc; a
// pull stores ToRecord(ImageOf(pulled)) (image::FetchOptions::record).
//
//   ASSIGN_OR_RETURN(store::ImageRecord rec, db.GetImage(name));
//   ASSIGN_OR_RETURN(image::Image img, image::FromRecord(rec));
//   common::Digest m = image::PlatformManifest(img);
//
// The record's labels (their values stay as every gantry wrote them):
//   io.gantry.manifest         digest of the platform manifest
//   io.gantry.config           digest of the image config (the image id)
//   io.gantry.platform         "linux/amd64", as the pull normalised it
//   io.gantry.chain            chainID of the top layer, "" for an image
//                              with no layers; absent until unpacked
//   io.gantry.source.layout    oci: pulls only: the layout directory
//                              (registry::CanonicalLayoutDir)
//   io.gantry.source.ref-name  oci: pulls only: the ref name of the image
//                              taken, "" when it had none
//   io.gantry.created          the image config's `created`, as written
//                              ("" when it has none); absent in records
//                              written before gantry kept it
//   io.gantry.size             the image's content size in bytes, decimal
//                              (ContentSize); absent in records written
//                              before gantry kept it
// The last two are copies of what the blobs say, taken at pull time so
// that listings (`gantry images`, the CRI's ListImages) read no blob;
// readers fall back to the blobs when a record lacks them
// (upkeep/image_size.h).
// Labels the model does not know are ignored by FromRecord and not
// written by ToRecord; code that changes a stored record in place changes
// only its own label (SetTopChain), so they survive.
//
// Thread-safety: plain values and pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "oci/descriptor.h"
#include "store/metadata.h"

namespace image {

struct FetchResult;

inline constexpr std::string_view kLabelManifest = "io.gantry.manifest";
inline constexpr std::string_view kLabelConfig = "io.gantry.config";
inline constexpr std::string_view kLabelPlatform = "io.gantry.platform";
inline constexpr std::string_view kLabelChain = "io.gantry.chain";
inline constexpr std::string_view kLabelSourceLayout = "io.gantry.source.layout";
inline constexpr std::string_view kLabelSourceRefName = "io.gantry.source.ref-name";
inline constexpr std::string_view kLabelCreated = "io.gantry.created";
inline constexpr std::string_view kLabelSize = "io.gantry.size";

// Where an image pulled from an OCI image layout (`oci:DIR[:TAG]`) came
// from; `gantry … oci:DIR[:TAG]` finds it again through this, whatever
// name it was recorded under.
struct LayoutSource {
  std::string dir;       // registry::CanonicalLayoutDir of DIR
  std::string ref_name;  // org.opencontainers.image.ref.name taken, "" when none

  friend bool operator==(const LayoutSource&, const LayoutSource&) = default;
};

struct Image {
  std::string name;        // normalised reference, the record's key
  oci::Descriptor target;  // what the name resolved to: an index or a manifest
  // The platform manifest, as recorded; nullopt when the record does not
  // say (PlatformManifest reads that as the target).
  std::optional<common::Digest> manifest;
  // The image config: the image id. nullopt when the record does not say.
  std::optional<common::Digest> config;
  // The platform as text ("linux/arm64/v8"), "" when not recorded. Text,
  // not an oci::Platform: nothing selects by it once the image is
  // recorded (it is shown by `gantry images` and the CRI), and a parsed
  // form would turn a label the platform parser now refuses (an older
  // gantry's, or one from a config with an odd os) into an unreadable
  // record, and would not print back byte for byte.
  std::string platform;
  // Set once the image is unpacked (io.gantry.chain). `top_chain` is the
  // top layer's chainID; an unpacked image with no layers has none.
  // REQUIRES (ToRecord): top_chain only when unpacked.
  bool unpacked = false;
  std::optional<common::Digest> top_chain;
  std::optional<LayoutSource> layout;  // pulled from an oci: layout
  // The config's `created` as written (RFC 3339 if the image's builder
  // followed the spec; "" when the config has none). nullopt when the
  // record does not say (written before gantry kept it).
  std::optional<std::string> config_created;
  // ContentSize of the image, as pulled. nullopt when the record does not
  // say (written before gantry kept it).
  std::optional<int64_t> content_size;
  int64_t created_ns = 0;  // as store::ImageRecord: 0 on a new record means "now"
  int64_t updated_ns = 0;

  friend bool operator==(const Image&, const Image&) = default;
};

// The image a record describes. A label that is absent, or (manifest,
// config) empty, leaves its field unset; io.gantry.chain "" means
// unpacked with no layers.
// Errors: DataLoss when io.gantry.manifest, io.gantry.config or a non-empty
// io.gantry.chain is not a valid digest, or io.gantry.size not a
// non-negative decimal, naming the record and the label
// ("image record `NAME`: label io.gantry.config: …"). A reader that must
// go on past such a record (listings, gc) uses FromRecordColumns.
[[nodiscard]] common::Result<Image> FromRecord(const store::ImageRecord& record);

// Only what the record's columns say (name, target, times), no label
// facts: how listings and gc read a record whose labels are corrupt.
[[nodiscard]] Image FromRecordColumns(const store::ImageRecord& record);

// The record to store for `image`: FromRecord(ToRecord(i)) == i.
[[nodiscard]] store::ImageRecord ToRecord(const Image& image);

// Marks `record` unpacked with top chainID `top` (nullopt: no layers),
// leaving its other labels as they are.
void SetTopChain(store::ImageRecord& record, const std::optional<common::Digest>& top);

// The bytes of an image's content in the store, as `gantry images` shows
// them (docker's SIZE): the target (index or manifest), the platform
// manifest when it differs from the target, the config and the
// compressed layers the manifest lists. Layers shared with other images
// count in each.
[[nodiscard]] int64_t ContentSize(const oci::Descriptor& target, const oci::Descriptor& manifest,
                                  int64_t config_size, const std::vector<oci::Descriptor>& layers);

// The image a pull fetched (image::Fetch's result), not unpacked yet,
// its times left for the store to set; with its created time and content
// size.
[[nodiscard]] Image ImageOf(const FetchResult& pulled);

// ToRecord(ImageOf(pulled)): what image::FetchOptions::record returns.
// Never fails; a Result so that it can be that function.
[[nodiscard]] common::Result<store::ImageRecord> RecordOf(const FetchResult& pulled);

// The platform manifest's digest: the recorded one, else the target (a
// manifest target is its own platform manifest; records have always named
// it, so the fallback only serves hand-made or damaged records).
[[nodiscard]] common::Digest PlatformManifest(const Image& image);

// The image id as listings show it: the config digest, else the target's
// (so that an id is never empty).
[[nodiscard]] common::Digest ImageId(const Image& image);

}  // namespace image
