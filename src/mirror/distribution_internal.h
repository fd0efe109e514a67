#pragma once
// The distribution API's request logic, apart from HTTP: routing, names,
// ranges, Accept, error bodies, and the Handler that answers one request
// from the store. registry_server.cc adapts it to libmicrohttpd; the unit
// tests (tests/unit/mirror/) call it directly. The behaviour is the one
// registry_server.h describes.

#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "image/blob_through.h"
#include "image/pull_flights.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace mirror {

inline constexpr std::string_view kApiVersionHeader = "Docker-Distribution-API-Version";
inline constexpr std::string_view kApiVersion = "registry/2.0";

// An error answer: its HTTP status and its OCI error code.
struct ApiError {
  int status = 500;
  std::string code;  // "MANIFEST_UNKNOWN", …
  std::string message;

  friend bool operator==(const ApiError&, const ApiError&) = default;
};
template <class T>
using ApiResult = std::expected<T, ApiError>;

// {"errors":[{"code":CODE,"message":MESSAGE,"detail":null}]}
[[nodiscard]] std::string ErrorBody(const ApiError& error);

enum class Endpoint { kBase, kManifest, kBlob, kTagsList };

struct Route {
  Endpoint endpoint = Endpoint::kBase;
  std::string name;       // the repository as the path gives it ("library/alpine")
  std::string reference;  // kManifest: a tag or a digest; kBlob: a digest

  friend bool operator==(const Route&, const Route&) = default;
};

// Routes a percent-decoded path (no query). "/v2" and "/v2/" are kBase;
// "/v2/NAME/tags/list"; "/v2/NAME/manifests/REF"; "/v2/NAME/blobs/REF",
// where REF is the last segment and NAME everything before its kind.
// Nothing is validated beyond the shape. Errors: 404 UNSUPPORTED for
// any other path.
[[nodiscard]] ApiResult<Route> ParseRoute(std::string_view path);

// One component of a repository path: [a-z0-9]+ joined by ".", "_", "__"
// or runs of "-" (distribution's grammar; never "", "." or "..").
[[nodiscard]] bool IsValidComponent(std::string_view component);
// A tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
[[nodiscard]] bool IsValidTag(std::string_view tag);

// The store repository a request names ("docker.io/library/alpine"), or
// nullopt when the name is valid but does not say its registry (no ns and
// no host component, or an ns that is not a registry host gantry could
// have pulled from). Errors: 400 NAME_INVALID for a name or ns outside
// the grammar or longer than registry::kMaxNameLength.
[[nodiscard]] ApiResult<std::optional<std::string>> ResolveRepository(
    std::string_view name, const std::optional<std::string>& ns);

// A `Range` header against a body of `size` bytes.
struct RangeRequest {
  enum class Kind {
    kWhole,          // no header, or one this server ignores (RFC 9110 allows
                     // it): malformed, another unit, or several ranges
    kPartial,        // one satisfiable range: [first, first + length)
    kUnsatisfiable,  // one well-formed range that starts at or after the end
  };
  Kind kind = Kind::kWhole;
  int64_t first = 0;
  int64_t length = 0;

  friend bool operator==(const RangeRequest&, const RangeRequest&) = default;
};
[[nodiscard]] RangeRequest ParseRange(const std::optional<std::string>& header, int64_t size);

// Whether Accept header values (each a comma-separated list; parameters
// ignored except q=0, which excludes) admit `media_type`: an exact match
// (case-insensitive), "*/*" or "type/*". No values, or only empty ones:
// anything is acceptable.
[[nodiscard]] bool Accepts(const std::vector<std::string>& accept, std::string_view media_type);

// OCI and Docker image manifests and indexes (oci::ClassifyManifest).
[[nodiscard]] bool IsManifestMediaType(std::string_view media_type);

struct Request {
  std::string method;  // "GET", "HEAD", …
  std::string path;    // percent-decoded, without the query
  std::optional<std::string> ns;
  std::vector<std::string> accept;  // every Accept header's value
  std::optional<std::string> range;
  std::optional<std::string> n, last;      // tags/list pagination
  std::optional<std::string> blob_size{};  // registry::kPeerBlobSizeHeader (peers)
  bool stored_only = false;                // registry::kPeerStoredOnlyHeader (peers)
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  // The body: `body`, or when `fd` is valid [offset, offset + length) of
  // that file (a committed blob, opened before the answer was chosen), or
  // when `follow` is set the `length` bytes of a blob a pull is
  // downloading, as they arrive (image/pull_flights.h).
  std::string body;
  common::UniqueFd fd;
  int64_t offset = 0;
  int64_t length = 0;
  std::optional<image::PullFlights::Follower> follow;
  // For the access log: what went wrong inside the store, or why the
  // pull-through could not bring the image (empty otherwise).
  std::string internal_error;

  // The header's value, "" when absent (names compared case-insensitively).
  std::string Header(std::string_view name) const;
};

// Answers requests from one store. Holds its own metadata connection;
// takes no store lock (see handler.cc for why none is needed).
// With `through` (pull-through), a manifest the store lacks is pulled
// (and waited for until stored), and a blob in flight is followed. With
// `blobs` (fleet peers), a blob in flight is followed too, and a blob the
// store lacks, asked for with its size (Request::blob_size) under a name
// that says its registry, is pulled through image::BlobThrough and
// followed; when that fails before its first byte: 404 BLOB_UNKNOWN. A
// request with Request::stored_only (a peer's) gets only a committed blob,
// and a manifest only from the store (by tag: the store's image record),
// never pulled through.
// Thread-safety: Serve may be called from any number of threads at once.
class Handler {
 public:
  // Errors: as store::ContentStore::Open and store::MetadataDb::Open.
  // `through` may be null (no pull-through); REQUIRES: it outlives the
  // handler.
  [[nodiscard]] static common::Result<Handler> Open(const std::filesystem::path& root,
                                                    image::PullThrough* through = nullptr,
                                                    image::BlobThrough* blobs = nullptr);

  // Never fails: errors are answers. HEAD gets the same status and
  // headers as GET; the HTTP layer sends no body for it.
  [[nodiscard]] Response Serve(const Request& request);

 private:
  Handler(store::ContentStore content, store::MetadataDb db, image::PullThrough* through,
          image::BlobThrough* blobs)
      : content_(std::move(content)), db_(std::move(db)), through_(through), blobs_(blobs) {}
  // The flight table blobs are followed in; null without pull-through.
  image::PullFlights* flights() const;
  // A blob the store lacks, pulled through for a peer.
  Response PullBlob(const Request& request, const std::string& repo, const common::Digest& digest);
  Response Manifest(const Request& request, const Route& route);
  // The manifest `ref` names, pulled through.
  Response PullManifest(const Request& request, const std::string& ref);
  Response Blob(const Request& request, const Route& route);
  Response Tags(const Request& request, const Route& route);

  store::ContentStore content_;
  store::MetadataDb db_;
  image::PullThrough* through_;
  image::BlobThrough* blobs_;
};

}  // namespace mirror
