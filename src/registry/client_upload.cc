// RegistryClient uploads: HEAD, POST (with mount), PATCH, GET status, PUT
// of blobs and manifests, against the registry's own host.

#include <charconv>

#include "common/log.h"
#include "registry/client.h"
#include "registry/client_internal.h"

namespace registry {
namespace {

using common::Errc;
using common::MakeError;
using common::Result;
using common::Status;
using internal::HttpRequest;
using internal::HttpResponse;
using internal::HttpResult;
using internal::Target;
using internal::TransportError;
using internal::Verdict;

// ':' and '/' as they appear in digests and repository paths, escaped for
// a query value.
std::string QueryEscape(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == ':') {
      out += "%3A";
    } else if (c == '/') {
      out += "%2F";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// The last byte the registry holds from "Range: 0-<last>" (docker-registry
// writes it without "bytes="); nullopt when absent or malformed.
std::optional<int64_t> RangeEnd(std::string_view value) {
  if (value.starts_with("bytes=")) value.remove_prefix(6);
  size_t dash = value.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  value.remove_prefix(dash + 1);
  int64_t last = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), last);
  if (ec != std::errc() || p != value.data() + value.size()) return std::nullopt;
  return last;
}

// The helpers below take the client's Impl as a template parameter:
// RegistryClient::Impl is private to the class, and they are not members.

// The endpoint pushes go to.
template <class Impl>
Result<RegistryHost> PushHost(Impl& impl, const ImageRef& repo) {
  ASSIGN_OR_RETURN(std::vector<RegistryHost> hosts, impl.HostsFor(repo.domain()));
  for (RegistryHost& h : hosts) {
    // Mirrors are for pulls only, whatever hosts.toml says of them.
    if (h.can_push && !h.is_mirror) return std::move(h);
  }
  return MakeError(Errc::kFailedPrecondition, "push to " + repo.name() +
                                                  ": no configured host of " + repo.domain() +
                                                  " may push (mirrors are for pulls only)");
}

// `location` as an absolute URL: a relative one is on the host.
std::string Absolute(const RegistryHost& host, const std::string& location) {
  if (location.find("://") != std::string::npos) return location;
  return host.scheme + "://" + host.host + (location.starts_with('/') ? "" : "/") + location;
}

// One request of an upload, with the retries of pulls when `retry` (429,
// 5xx, connection errors, cuts, with backoff). 2xx answers come back; any
// other is a worded error. `what` names the object.
// `mount_from`: a repository whose pull the token must also grant.
template <class Impl>
Result<HttpResponse> PushExchange(Impl& impl, const ImageRef& repo, HttpRequest req,
                                  const std::string& what, bool retry,
                                  std::string_view mount_from = {}) {
  ASSIGN_OR_RETURN(RegistryHost host, PushHost(impl, repo));
  Target target = impl.MakeTarget(repo, host);
  target.scope = "repository:" + repo.path() + ":pull,push";
  if (!mount_from.empty()) target.scope += " repository:" + std::string(mount_from) + ":pull";
  impl.ApplyLimits(req);
  Backoff backoff = impl.MakeBackoff();
  for (int attempt = 1;; ++attempt) {
    ASSIGN_OR_RETURN(HttpResult sent, impl.Send(target, req));
    const long status = sent.response.status;
    if (sent.error == TransportError::kNone && status >= 200 && status < 300)
      return std::move(sent.response);
    internal::Failure f = impl.Classify(target, sent, req.url, what);
    // Classify words its messages for downloads.
    if (f.error.message.starts_with("GET ") && req.method != "GET")
      f.error.message = req.method + f.error.message.substr(3);
    if (sent.error == TransportError::kNone && status == 400) {
      std::string detail = internal::RegistryErrorText(sent.response.body);
      if (detail.find("DIGEST_INVALID") != std::string::npos ||
          detail.find("SIZE_INVALID") != std::string::npos)
        f.error.code = Errc::kDataLoss;
    }
    const bool again = retry && f.verdict == Verdict::kRetry && attempt < impl.options.max_attempts;
    if (!again) {
      if (f.verdict == Verdict::kRetry && attempt > 1)
        f.error.message += " (gave up after " + std::to_string(attempt) + " attempts)";
      // A PATCH that met 429/5xx waits its backoff here, so that the
      // caller's resume does not hammer the registry.
      if (!retry && f.verdict == Verdict::kRetry && sent.error == TransportError::kNone &&
          !backoff.Wait(1, f.retry_after, req.cancel))
        return MakeError(Errc::kCancelled, "upload of " + what + " cancelled");
      return std::unexpected(std::move(f.error));
    }
    LOG(Warn) << "upload request failed, retrying" << common::Kv("what", what)
              << common::Kv("host", host.host) << common::Kv("attempt", attempt)
              << common::Kv("error", f.error.message);
    if (!backoff.Wait(attempt, f.retry_after, req.cancel))
      return MakeError(Errc::kCancelled, "upload of " + what + " cancelled");
  }
}

template <class Impl>
Result<std::string> PushBaseUrl(Impl& impl, const ImageRef& repo) {
  ASSIGN_OR_RETURN(RegistryHost host, PushHost(impl, repo));
  return host.base_url() + "/" + repo.path();
}

// PATCH `size` bytes at session.offset, the body already in `req`.
template <class Impl>
Status Patch(Impl& impl, const ImageRef& repo, RegistryClient::UploadSession& session,
             HttpRequest req, int64_t size) {
  ASSIGN_OR_RETURN(RegistryHost host, PushHost(impl, repo));
  req.method = "PATCH";
  req.url = session.location;
  req.headers = {"Content-Type: application/octet-stream",
                 "Content-Range: " + std::to_string(session.offset) + "-" +
                     std::to_string(session.offset + size - 1)};
  ASSIGN_OR_RETURN(HttpResponse resp,
                   PushExchange(impl, repo, std::move(req), "upload to " + repo.name(), false));
  if (std::string location = resp.Header("location"); !location.empty())
    session.location = Absolute(host, location);
  session.offset += size;
  return {};
}

}  // namespace

Result<bool> RegistryClient::BlobExists(const ImageRef& repo, const common::Digest& digest,
                                        const std::atomic<bool>* cancel) {
  ASSIGN_OR_RETURN(std::string base, PushBaseUrl(*impl_, repo));
  HttpRequest req;
  req.method = "HEAD";
  req.url = base + "/blobs/" + digest.str();
  req.cancel = cancel;
  auto r = PushExchange(*impl_, repo, std::move(req), "blob " + digest.str(), true);
  if (r) return true;
  if (r.error().code == Errc::kNotFound) return false;
  return std::unexpected(std::move(r.error()));
}

Result<std::optional<RegistryClient::UploadSession>> RegistryClient::StartUpload(
    const ImageRef& repo, const common::Digest& digest, std::string_view mount_from,
    const std::atomic<bool>* cancel) {
  ASSIGN_OR_RETURN(RegistryHost host, PushHost(*impl_, repo));
  HttpRequest req;
  req.method = "POST";
  req.url = host.base_url() + "/" + repo.path() + "/blobs/uploads/";
  if (!mount_from.empty())
    req.url += "?mount=" + QueryEscape(digest.str()) + "&from=" + QueryEscape(mount_from);
  req.cancel = cancel;
  ASSIGN_OR_RETURN(HttpResponse resp,
                   PushExchange(*impl_, repo, std::move(req), "upload of blob " + digest.str(),
                                true, mount_from));
  if (resp.status == 201 && !mount_from.empty()) return std::nullopt;
  std::string location = resp.Header("location");
  if (location.empty())
    return MakeError(Errc::kUnavailable, "start upload of blob " + digest.str() + " to " +
                                             repo.name() + ": the registry named no location");
  return UploadSession{.location = Absolute(host, location), .offset = 0};
}

Status RegistryClient::UploadChunk(const ImageRef& repo, UploadSession& session, std::string data,
                                   const std::atomic<bool>* cancel) {
  if (data.empty()) return {};
  const int64_t size = static_cast<int64_t>(data.size());
  HttpRequest req;
  req.body = std::move(data);
  req.cancel = cancel;
  return Patch(*impl_, repo, session, std::move(req), size);
}

Status RegistryClient::UploadFileChunk(const ImageRef& repo, UploadSession& session, int fd,
                                       int64_t file_offset, int64_t size,
                                       const std::atomic<bool>* cancel) {
  if (size <= 0) return {};
  HttpRequest req;
  req.body_file = {.fd = fd, .offset = file_offset, .size = size};
  req.cancel = cancel;
  return Patch(*impl_, repo, session, std::move(req), size);
}

Status RegistryClient::UploadStatus(const ImageRef& repo, UploadSession& session,
                                    const std::atomic<bool>* cancel) {
  ASSIGN_OR_RETURN(RegistryHost host, PushHost(*impl_, repo));
  HttpRequest req;
  req.url = session.location;
  req.cancel = cancel;
  ASSIGN_OR_RETURN(HttpResponse resp, PushExchange(*impl_, repo, std::move(req),
                                                   "upload status of " + repo.name(), true));
  if (std::string location = resp.Header("location"); !location.empty())
    session.location = Absolute(host, location);
  std::optional<int64_t> last = RangeEnd(resp.Header("range"));
  session.offset = last ? *last + 1 : 0;
  return {};
}

Status RegistryClient::FinishUpload(const ImageRef& repo, const UploadSession& session,
                                    const common::Digest& digest, std::string data,
                                    const std::atomic<bool>* cancel) {
  HttpRequest req;
  req.method = "PUT";
  req.url = session.location + (session.location.find('?') == std::string::npos ? "?" : "&") +
            "digest=" + QueryEscape(digest.str());
  req.headers = {"Content-Type: application/octet-stream"};
  if (!data.empty())
    req.headers.push_back("Content-Range: " + std::to_string(session.offset) + "-" +
                          std::to_string(session.offset + static_cast<int64_t>(data.size()) - 1));
  req.body = std::move(data);
  req.cancel = cancel;
  auto r = PushExchange(*impl_, repo, std::move(req), "blob " + digest.str(), true);
  if (r) return {};
  // A retried PUT whose first try went through finds its session gone:
  // the blob is there.
  if (r.error().code == Errc::kNotFound) {
    auto there = BlobExists(repo, digest, cancel);
    if (there && *there) return {};
  }
  return std::unexpected(std::move(r.error()));
}

Status RegistryClient::PutManifest(const ImageRef& repo, std::string_view reference,
                                   const std::string& media_type, std::string body,
                                   const std::atomic<bool>* cancel) {
  ASSIGN_OR_RETURN(std::string base, PushBaseUrl(*impl_, repo));
  HttpRequest req;
  req.method = "PUT";
  req.url = base + "/manifests/" + std::string(reference);
  req.headers = {"Content-Type: " + media_type};
  req.body = std::move(body);
  req.cancel = cancel;
  auto r = PushExchange(*impl_, repo, std::move(req),
                        "manifest " + repo.name() + ":" + std::string(reference), true);
  if (!r) return std::unexpected(std::move(r.error()));
  return {};
}

int64_t RegistryClient::upload_chunk_bytes() const { return impl_->options.upload_chunk_bytes; }

}  // namespace registry
