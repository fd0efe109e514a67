#pragma once
// OCI and Docker schema2 manifests, indexes and image configs: parsing,
// validation and platform selection. Pure functions over bytes; no I/O.
//
// Accepted:
//   application/vnd.oci.image.manifest.v1+json
//   application/vnd.oci.image.index.v1+json
//   application/vnd.docker.distribution.manifest.v2+json
//   application/vnd.docker.distribution.manifest.list.v2+json
// Refused with a clear message: Docker schema1 (…manifest.v1+json/+prettyjws).

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "oci/compression.h"
#include "oci/descriptor.h"

namespace oci {

namespace media {
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerForeignLayerGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
inline constexpr std::string_view kDockerSchema1 =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
// The Accept header for manifest requests, most preferred first.
inline constexpr std::string_view kManifestAccept =
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";
}  // namespace media

enum class ManifestKind { kManifest, kIndex };

// Classifies a manifest media type; InvalidArgument for schema1 (with the
// explanation that schema1 is unsupported) and unknown types.
[[nodiscard]] common::Result<ManifestKind> ClassifyManifest(std::string_view media_type);
// Compression of a layer media type; InvalidArgument for non-layer types.
[[nodiscard]] common::Result<Compression> LayerCompressionOf(std::string_view media_type);

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // GOARCH names: amd64, arm64, arm, 386, ppc64le, s390x, riscv64
  std::string variant;       // arm: v5/v6/v7, arm64: v8
  std::string os_version;

  // "linux/arm64/v8"
  std::string str() const;
  friend bool operator==(const Platform&, const Platform&) = default;
};

// Parses "os/arch[/variant]" and normalises (x86_64 → amd64, aarch64 →
// arm64, arm64 defaults to variant v8, arm to v7). InvalidArgument otherwise.
[[nodiscard]] common::Result<Platform> ParsePlatform(std::string_view text);
// The platform of this host, normalised.
[[nodiscard]] Platform HostPlatform();
// Normalises names and default variants as ParsePlatform does.
[[nodiscard]] Platform NormalizePlatform(Platform p);
// Whether an image for `candidate` runs on `want`; for arm, a v7 host runs
// v6 and v5 images too. Returns a rank (0 = exact, higher = less preferred)
// or nullopt when it does not match.
[[nodiscard]] std::optional<int> PlatformMatch(const Platform& want, const Platform& candidate);

struct Manifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::map<std::string, std::string> annotations;
};

struct IndexEntry {
  Descriptor descriptor;
  std::optional<Platform> platform;
};

struct Index {
  std::string media_type;
  std::vector<IndexEntry> manifests;
};

// Parses and validates a manifest (schemaVersion 2, a config descriptor,
// layer descriptors with layer media types and valid digests). `media_type`
// is the Content-Type the registry answered with (or the descriptor's);
// when the body carries mediaType too, they must agree. Errors:
// InvalidArgument naming the field.
[[nodiscard]] common::Result<Manifest> ParseManifest(std::string_view body,
                                                     std::string_view media_type);
[[nodiscard]] common::Result<Index> ParseIndex(std::string_view body, std::string_view media_type);

// The best entry of `index` for `want`: an exact match first, then the
// closest compatible variant; entries without a platform are skipped.
// NotFound lists the platforms the index offers.
[[nodiscard]] common::Result<IndexEntry> SelectPlatform(const Index& index, const Platform& want);

// The parts of an image config that gantry uses.
struct ImageConfig {
  Platform platform;
  std::string user;
  std::vector<std::string> env;
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string stop_signal;
  std::map<std::string, std::string> labels;
  std::vector<common::Digest> diff_ids;
  std::string created;
};

// What an image config may be. Its size is checked against the manifest's
// descriptor before the download; what it contains is checked before a
// tree is built from it, by ParseImageConfigJson, through which every
// reader of a config goes (pull, unpack, bundle, fsck, gc, images,
// inspect, the CRI catalog and ImageStatus). Real configs hold tens to a
// few thousand values (a long history, many labels) and nest 3 or 4
// levels; the bounds leave 25 times that and keep one config's tree near
// 24 MiB at most (docs/resources.md, "Memory per image config").
inline constexpr int64_t kMaxConfigSize = 16 << 20;
inline constexpr int64_t kMaxConfigValues = 100'000;
inline constexpr int kMaxConfigDepth = 64;

// An image config as a JSON tree, for callers that show the whole
// document. Errors: InvalidArgument "parse image config: …" when the body
// is over kMaxConfigSize, is not a JSON object, or holds more than
// kMaxConfigValues values or nests deeper than kMaxConfigDepth (the
// message names the limit). Callers add the config's digest.
[[nodiscard]] common::Result<nlohmann::json> ParseImageConfigJson(std::string_view body);

// Parses an image config (through ParseImageConfigJson, with its errors).
// diff_ids must all be valid sha256 digests.
[[nodiscard]] common::Result<ImageConfig> ParseImageConfig(std::string_view body);

// chainID per the OCI image spec: ChainID(L0) = DiffID(L0),
// ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)).
[[nodiscard]] std::vector<common::Digest> ChainIds(const std::vector<common::Digest>& diff_ids);

}  // namespace oci
