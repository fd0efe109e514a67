// The registry door's answers, from the store.
//
// No store lock is taken, on purpose. The shared lock exists for writers:
// it closes the window in which a pull has a blob on disk that no record
// or lease protects yet, so that a collection cannot delete it under the
// pull (store/store_lock.h, docs/architecture.md's lock table). The door
// writes nothing and opens no such window. Each request reads what it
// needs in one step (an image record or a blob row: one SQLite read
// transaction, consistent by itself), then opens the blob by its digest.
// A prune that commits in between makes the open fail, and the answer is
// 404: true, the content is gone. A prune after the open removes only the
// name: the open file keeps its bytes readable until the response ends.
// Taking the shared lock per request would instead queue every request
// behind a waiting prune (the lock's gate) and stall the mirror for the
// whole collection; holding it for the server's life would block prune
// for ever.

#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "image/image_record.h"
#include "mirror/distribution_internal.h"
#include "registry/reference.h"

namespace mirror {
namespace {

using common::Errc;

constexpr std::string_view kJson = "application/json";

Response ErrorResponse(const ApiError& e) {
  Response r;
  r.status = e.status;
  r.headers.emplace_back("Content-Type", kJson);
  r.body = ErrorBody(e);
  return r;
}

Response Fail(int status, std::string code, std::string message) {
  return ErrorResponse(ApiError{status, std::move(code), std::move(message)});
}

// A store error: the client learns only that it is internal (the message
// may name paths); the server's log gets the whole error.
Response Internal(const common::Error& e) {
  Response r = Fail(e.code == Errc::kUnavailable ? 503 : 500, "UNKNOWN",
                    "internal error reading the store; see the server's log");
  r.internal_error = e.message;
  return r;
}

std::string Quoted(const common::Digest& d) { return "\"" + d.str() + "\""; }

// A 200 for a blob, its length and body still to set.
Response BlobResponse(const common::Digest& digest) {
  Response r;
  r.headers = {{"Content-Type", "application/octet-stream"},
               {"Docker-Content-Digest", digest.str()},
               {"Etag", Quoted(digest)}};
  return r;
}

// The whole blob as it arrives; a Range is ignored (RFC 9110 allows it),
// the client gets 200 and every byte.
Response FollowResponse(const common::Digest& digest, image::PullFlights::Follower& follower) {
  Response r = BlobResponse(digest);
  r.length = follower.size();
  r.follow = std::move(follower);
  return r;
}

struct OpenedBlob {
  common::UniqueFd fd;
  int64_t size = 0;
};

}  // namespace

common::Result<Handler> Handler::Open(const std::filesystem::path& root,
                                      image::PullThrough* through, image::BlobThrough* blobs) {
  ASSIGN_OR_RETURN(store::ContentStore content, store::ContentStore::Open(root));
  ASSIGN_OR_RETURN(store::MetadataDb db, store::MetadataDb::Open(root));
  return Handler(std::move(content), std::move(db), through, blobs);
}

image::PullFlights* Handler::flights() const {
  if (through_ != nullptr) return &through_->flights();
  if (blobs_ != nullptr) return &blobs_->flights();
  return nullptr;
}

Response Handler::Serve(const Request& request) {
  Response r;
  if (request.method != "GET" && request.method != "HEAD") {
    r = Fail(405, "UNSUPPORTED",
             "method " + request.method + " is not supported: this registry is read-only");
    r.headers.emplace_back("Allow", "GET, HEAD");
  } else if (auto route = ParseRoute(request.path); !route) {
    r = ErrorResponse(route.error());
  } else {
    switch (route->endpoint) {
      case Endpoint::kBase:
        r.headers.emplace_back("Content-Type", kJson);
        r.body = "{}";
        break;
      case Endpoint::kManifest:
        r = Manifest(request, *route);
        break;
      case Endpoint::kBlob:
        r = Blob(request, *route);
        break;
      case Endpoint::kTagsList:
        r = Tags(request, *route);
        break;
    }
  }
  r.headers.emplace_back(kApiVersionHeader, kApiVersion);
  return r;
}

namespace {

// Opens a committed blob: a regular file under content/blobs/, named by
// a parsed digest (no path from the request reaches the file system).
common::Result<OpenedBlob> OpenCommitted(const store::ContentStore& content,
                                         const common::Digest& digest) {
  ASSIGN_OR_RETURN(common::UniqueFd fd, content.OpenBlob(digest));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return common::ErrnoError("stat blob " + digest.str());
  if (!S_ISREG(st.st_mode))
    return common::MakeError(
        Errc::kDataLoss, "blob " + digest.str() + " is not a regular file; the store is corrupt");
  return OpenedBlob{std::move(fd), static_cast<int64_t>(st.st_size)};
}

// The manifest or index `digest` of `media_type` and `size`, as stored.
Response ServeManifest(const store::ContentStore& content, const Request& request,
                       const common::Digest& digest, const std::string& media_type, int64_t size) {
  if (!Accepts(request.accept, media_type))
    return Fail(404, "MANIFEST_UNKNOWN",
                "manifest " + digest.str() + " is " + media_type +
                    ", which the request's Accept header does not include");
  auto blob = OpenCommitted(content, digest);
  if (!blob && blob.error().code == Errc::kNotFound)
    return Fail(404, "MANIFEST_UNKNOWN", "manifest " + digest.str() + " is not in the store");
  if (!blob) return Internal(blob.error());
  if (blob->size != size)
    return Internal(common::MakeError(Errc::kDataLoss,
                                      "blob " + digest.str() + " has " +
                                          std::to_string(blob->size) + " bytes, its record says " +
                                          std::to_string(size) + "; the store is corrupt")
                        .error());
  Response r;
  r.headers = {{"Content-Type", media_type},
               {"Docker-Content-Digest", digest.str()},
               {"Etag", Quoted(digest)}};
  r.fd = std::move(blob->fd);
  r.length = blob->size;
  return r;
}

}  // namespace

Response Handler::Manifest(const Request& request, const Route& route) {
  auto repo = ResolveRepository(route.name, request.ns);
  if (!repo) return ErrorResponse(repo.error());
  const std::string& ref = route.reference;
  if (ref.find(':') != std::string::npos) {
    auto digest = common::Digest::Parse(ref);
    if (!digest) return Fail(400, "DIGEST_INVALID", digest.error().message);
    auto row = db_.GetBlob(*digest);
    if (!row && row.error().code == Errc::kNotFound) {
      // A pull in progress has stored it, and records it only at its end.
      if (through_ != nullptr) {
        if (auto d = through_->flights().FindManifest(*digest))
          return ServeManifest(content_, request, d->digest, d->media_type, d->size);
        if (*repo && !request.stored_only)
          return PullManifest(request, **repo + "@" + digest->str());
      }
      return Fail(404, "MANIFEST_UNKNOWN", "manifest " + digest->str() + " is not in the store");
    }
    if (!row) return Internal(row.error());
    if (!IsManifestMediaType(row->media_type))
      return Fail(404, "MANIFEST_UNKNOWN",
                  digest->str() + " is not a manifest or index (" + row->media_type + ")");
    return ServeManifest(content_, request, *digest, row->media_type, row->size);
  }
  // A reference outside the tag grammar cannot be in the store; 404 lets
  // a client with more hosts go on, as distribution's router answers it.
  if (!IsValidTag(ref)) return Fail(404, "MANIFEST_UNKNOWN", "invalid tag `" + ref + "`");
  if (!*repo)
    return Fail(404, "NAME_UNKNOWN",
                "repository `" + route.name +
                    "` does not name its registry: ask with ?ns=HOST or for HOST/" + route.name);
  const std::string key = **repo + ":" + ref;
  auto rec = db_.GetImage(key);
  if (!rec && rec.error().code == Errc::kNotFound) {
    if (through_ != nullptr && !request.stored_only) return PullManifest(request, key);
    return Fail(404, "MANIFEST_UNKNOWN", key + " is not in the store");
  }
  if (!rec) return Internal(rec.error());
  // Only the record's target is needed: FromRecordColumns reads no label,
  // so a record whose labels are damaged still serves what it points at.
  const image::Image img = image::FromRecordColumns(*rec);
  return ServeManifest(content_, request, img.target.digest, img.target.media_type,
                       img.target.size);
}

// Every failure of the pull is a 404: containerd tries its next host
// (the registry itself, which then gives the client its own answer) only
// on 404, whatever else went wrong.
Response Handler::PullManifest(const Request& request, const std::string& ref) {
  auto parsed = registry::ImageRef::Parse(ref);
  if (!parsed) return Fail(404, "MANIFEST_UNKNOWN", parsed.error().message);
  auto d = through_->Manifest(*parsed);
  if (!d) {
    Response r =
        Fail(404, "MANIFEST_UNKNOWN",
             parsed->str() + " is not in the store, and pulling it failed: " + d.error().message);
    r.internal_error = "pull-through: " + d.error().message;
    return r;
  }
  if (!IsManifestMediaType(d->media_type))
    return Fail(404, "MANIFEST_UNKNOWN",
                d->digest.str() + " is not a manifest or index (" + d->media_type + ")");
  return ServeManifest(content_, request, d->digest, d->media_type, d->size);
}

Response Handler::Blob(const Request& request, const Route& route) {
  // The name is only checked: a blob is served by its digest, whatever
  // repository the client thinks it is in.
  auto repo = ResolveRepository(route.name, request.ns);
  if (!repo) return ErrorResponse(repo.error());
  auto digest = common::Digest::Parse(route.reference);
  if (!digest) return Fail(400, "DIGEST_INVALID", digest.error().message);
  // In flight first: a blob leaves the table only once committed, so
  // looking in the store second misses nothing.
  if (image::PullFlights* flying = flights(); flying != nullptr && !request.stored_only) {
    if (auto follower = flying->Follow(*digest)) return FollowResponse(*digest, *follower);
  }
  auto blob = OpenCommitted(content_, *digest);
  if (!blob && blob.error().code == Errc::kNotFound) {
    if (blobs_ != nullptr && *repo && request.blob_size && !request.stored_only)
      return PullBlob(request, **repo, *digest);
    return Fail(404, "BLOB_UNKNOWN", "blob " + digest->str() + " is not in the store");
  }
  if (!blob) return Internal(blob.error());
  const int64_t size = blob->size;
  RangeRequest range = ParseRange(request.range, size);
  if (range.kind == RangeRequest::Kind::kUnsatisfiable) {
    Response r = Fail(416, "RANGE_INVALID",
                      "range `" + request.range.value_or("") + "` is outside the blob's " +
                          std::to_string(size) + " bytes");
    r.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
    return r;
  }
  Response r = BlobResponse(*digest);
  r.headers.emplace_back("Accept-Ranges", "bytes");
  r.fd = std::move(blob->fd);
  if (range.kind == RangeRequest::Kind::kPartial) {
    r.status = 206;
    r.offset = range.first;
    r.length = range.length;
    r.headers.emplace_back("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                std::to_string(range.first + range.length - 1) +
                                                "/" + std::to_string(size));
  } else {
    r.length = size;
  }
  return r;
}

// Every failure is a 404: the peer that asked goes on to its next peer,
// then the registry, which gives it its own answer.
Response Handler::PullBlob(const Request& request, const std::string& repo,
                           const common::Digest& digest) {
  auto unknown = [&](const std::string& why) {
    Response r =
        Fail(404, "BLOB_UNKNOWN",
             "blob " + digest.str() + " is not in the store, and pulling it failed: " + why);
    r.internal_error = "peer pull-through: " + why;
    return r;
  };
  const std::string& text = *request.blob_size;
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos)
    return Fail(400, "SIZE_INVALID", "invalid blob size `" + text + "`");
  auto ref = registry::ImageRef::Parse(repo);
  if (!ref) return unknown(ref.error().message);
  if (auto st = blobs_->Start(*ref, digest, std::stoll(text)); !st) {
    // A pull of this process took the blob's ingest first: its download
    // is the one to follow.
    if (auto follower = blobs_->flights().Follow(digest)) return FollowResponse(digest, *follower);
    return unknown(st.error().message);
  }
  if (auto follower = blobs_->flights().Follow(digest)) return FollowResponse(digest, *follower);
  auto blob = OpenCommitted(content_, digest);
  if (!blob && blob.error().code == Errc::kNotFound) return unknown("gone from the store again");
  if (!blob) return Internal(blob.error());
  Response r = BlobResponse(digest);
  r.length = blob->size;
  r.fd = std::move(blob->fd);
  return r;
}

Response Handler::Tags(const Request& request, const Route& route) {
  auto repo = ResolveRepository(route.name, request.ns);
  if (!repo) return ErrorResponse(repo.error());
  if (!*repo)
    return Fail(404, "NAME_UNKNOWN",
                "repository `" + route.name +
                    "` does not name its registry: ask with ?ns=HOST or for HOST/" + route.name);
  std::optional<size_t> n;
  if (request.n) {
    // Digits only, at most 9 of them: no sign, no overflow.
    const std::string& s = *request.n;
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
      return Fail(400, "PAGINATION_NUMBER_INVALID", "invalid n `" + s + "`");
    n = std::stoul(s);
  }
  const std::string prefix = **repo + ":";
  std::vector<std::string> tags;
  bool known = false;
  auto walked = db_.ForEachImage([&](store::ImageRecord&& rec) -> common::Status {
    if (!rec.name.starts_with(prefix) && !rec.name.starts_with(**repo + "@")) return {};
    known = true;
    std::string tag = rec.name.substr(prefix.size());
    if (rec.name.starts_with(prefix) && IsValidTag(tag)) tags.push_back(std::move(tag));
    return {};
  });
  if (!walked) return Internal(walked.error());
  if (!known) return Fail(404, "NAME_UNKNOWN", "repository " + **repo + " is not in the store");
  std::sort(tags.begin(), tags.end());
  if (request.last) {
    auto after = std::upper_bound(tags.begin(), tags.end(), *request.last);
    tags.erase(tags.begin(), after);
  }
  Response r;
  r.headers.emplace_back("Content-Type", kJson);
  if (n && tags.size() > *n) {
    tags.resize(*n);
    if (!tags.empty()) {
      std::string link =
          "</v2/" + route.name + "/tags/list?n=" + std::to_string(*n) + "&last=" + tags.back();
      if (request.ns) link += "&ns=" + *request.ns;
      r.headers.emplace_back("Link", link + ">; rel=\"next\"");
    }
  }
  nlohmann::json body = {{"name", route.name}, {"tags", tags}};
  r.body = body.dump();
  return r;
}

}  // namespace mirror
