#include "registry/client.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <random>

#include "common/log.h"
#include "registry/client_internal.h"

#ifndef GANTRY_VERSION
#define GANTRY_VERSION "0.1.0"
#endif

namespace registry {
namespace internal {

std::string UrlOrigin(std::string_view url) {
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return {};
  size_t end = url.find_first_of("/?#", sep + 3);
  std::string origin(url.substr(0, end));
  std::transform(origin.begin(), origin.begin() + static_cast<std::ptrdiff_t>(sep), origin.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return origin;
}

std::string UrlHost(std::string_view url) {
  std::string origin = UrlOrigin(url);
  size_t sep = origin.find("://");
  return sep == std::string::npos ? std::string() : origin.substr(sep + 3);
}

std::string RegistryErrorText(std::string_view body) {
  if (body.empty()) return {};
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    auto errors = j.find("errors");
    if (errors != j.end() && errors->is_array() && !errors->empty()) {
      std::string out;
      for (const auto& e : *errors) {
        if (!e.is_object()) continue;
        std::string code = e.value("code", "");
        std::string message = e.value("message", "");
        if (!out.empty()) out += "; ";
        out += code.empty() ? message : (message.empty() ? code : code + ": " + message);
      }
      if (!out.empty()) return out;
    }
  }
  std::string out;
  for (char c : body.substr(0, 200)) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out.push_back(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace internal

namespace {

using common::Errc;
using common::MakeError;
using common::Result;
using common::Status;
using internal::Failure;
using internal::HttpRequest;
using internal::HttpResult;
using internal::Target;
using internal::TransportError;
using internal::Verdict;

constexpr int kMaxRedirects = 10;

bool IsSchema1(std::string_view media_type) {
  return media_type == "application/vnd.docker.distribution.manifest.v1+json" ||
         media_type == "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

std::string MediaTypeOf(std::string_view content_type) {
  std::string_view mt = content_type.substr(0, content_type.find(';'));
  while (!mt.empty() && mt.back() == ' ') mt.remove_suffix(1);
  while (!mt.empty() && mt.front() == ' ') mt.remove_prefix(1);
  std::string out(mt);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A media type from the body when the server sent a generic one.
std::string SniffMediaType(std::string_view body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return {};
  if (auto mt = j.find("mediaType"); mt != j.end() && mt->is_string())
    return mt->get<std::string>();
  if (auto v = j.find("schemaVersion"); v != j.end() && v->is_number() && v->get<int>() == 1)
    return "application/vnd.docker.distribution.manifest.v1+json";
  if (j.contains("manifests")) return "application/vnd.oci.image.index.v1+json";
  if (j.contains("config") && j.contains("layers"))
    return "application/vnd.oci.image.manifest.v1+json";
  return {};
}

std::string HexOf(std::string_view body, const EVP_MD* md) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(body.data(), body.size(), out, &len, md, nullptr) != 1) std::abort();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 15]);
  }
  return hex;
}

bool Matches(const common::Digest& want, std::string_view body, const common::Digest& sha256) {
  if (want.algorithm() == common::DigestAlgorithm::kSha256) return want == sha256;
  return want.hex() == HexOf(body, EVP_sha512());
}

std::string DescribeCas(const TlsConfig& tls) {
  if (!tls.verify) return "certificate verification off";
  std::string out = "CA tried: ";
  for (const std::string& f : tls.ca_files) out += f + ", ";
  return out + "system CAs";
}

bool IsDigestReference(std::string_view reference) {
  return reference.find(':') != std::string_view::npos;
}

// Context for an error of the authorizer: a refusal reads "authentication
// required for NAME: …"; anything else (a cancel, an oversize token
// answer, a token server out of reach) keeps its own code and says what
// was being done.
common::Error WrapAuthError(common::Error e, const ImageRef& ref) {
  if (e.code == Errc::kUnauthenticated || e.code == Errc::kPermissionDenied)
    return std::move(e).Wrap("authentication required for " + ref.name());
  return std::move(e).Wrap("authenticate for " + ref.name());
}

// `what` ("redirect to URL", "token realm URL") refused by refuse_link_local.
std::string ForbiddenAddressMessage(const std::string& what, const std::string& address) {
  return what + " refused: it leads to " + address +
         ", a link-local or cloud metadata address (--allow-link-local-redirects allows it)";
}

}  // namespace

// ---------------------------------------------------------------------------
// Impl

Result<std::vector<RegistryHost>> RegistryClient::Impl::HostsFor(std::string_view domain) {
  {
    std::lock_guard lock(mu);
    auto it = hosts.find(domain);
    if (it != hosts.end()) return it->second;
  }
  ASSIGN_OR_RETURN(std::vector<RegistryHost> resolved, ResolveHosts(domain, options.hosts));
  std::lock_guard lock(mu);
  return hosts.emplace(std::string(domain), std::move(resolved)).first->second;
}

CredentialSource RegistryClient::Impl::CredentialsFor(const ImageRef& ref,
                                                      const RegistryHost& host) {
  std::string key = host.is_mirror ? host.host : ref.domain();
  bool upstream = !host.is_mirror;
  return [this, key, upstream]() -> Result<std::optional<Credentials>> {
    if (upstream && options.creds) return options.creds;
    {
      std::lock_guard lock(mu);
      auto it = credentials.find(key);
      if (it != credentials.end()) return it->second;
    }
    std::optional<Credentials> found;
    if (options.lookup) {
      ASSIGN_OR_RETURN(found,
                       common::Wrap(options.lookup(key), "look up credentials for `" + key + "`"));
    }
    std::lock_guard lock(mu);
    return credentials.emplace(key, std::move(found)).first->second;
  };
}

internal::Target RegistryClient::Impl::MakeTarget(const ImageRef& ref, const RegistryHost& host) {
  return Target{.ref = &ref,
                .host = &host,
                .scope = "repository:" + ref.path() + ":pull",
                .creds = CredentialsFor(ref, host)};
}

Backoff RegistryClient::Impl::MakeBackoff() {
  return Backoff(options.backoff, env, seed.fetch_add(0x9e3779b97f4a7c15ULL));
}

bool RegistryClient::Impl::PlainHttpConfigured(std::string_view host) {
  auto endpoints = HostsFor(host);
  if (!endpoints) return false;
  for (const RegistryHost& h : *endpoints)
    if (!h.is_mirror && h.host == host && h.scheme == "http" && h.scheme_configured) return true;
  return false;
}

TlsConfig RegistryClient::Impl::TlsForForeignUrl(std::string_view url) {
  std::string host = internal::UrlHost(url);
  std::lock_guard lock(mu);
  for (const auto& [domain, list] : hosts) {
    for (const RegistryHost& h : list) {
      if (h.host == host) {
        TlsConfig tls = h.tls;
        tls.client_cert.clear();
        tls.client_key.clear();
        return tls;
      }
    }
  }
  TlsConfig tls;
  tls.verify = options.hosts.tls_verify;
  return tls;
}

void RegistryClient::Impl::ApplyLimits(HttpRequest& request) const {
  request.connect_timeout = options.connect_timeout;
  request.low_speed_limit = options.min_rate_bytes_per_sec;
  request.low_speed_time = options.min_rate_window;
}

Result<HttpResult> RegistryClient::Impl::Send(const Target& target, HttpRequest request) {
  const RegistryHost& host = *target.host;
  const std::string endpoint_origin = host.scheme + "://" + host.host;
  const std::vector<std::string> base_headers = request.headers;
  const AuthContext auth_context{.registry_scheme = host.scheme, .cancel = request.cancel};
  std::string url = request.url;
  std::optional<std::string> fresh_auth;
  bool challenged = false;
  TlsConfig foreign_tls;
  int hops = 0;
  while (true) {
    if (request.cancel && request.cancel->load(std::memory_order_relaxed)) {
      HttpResult cancelled;
      cancelled.error = TransportError::kCancelled;
      return cancelled;
    }
    request.url = url;
    request.headers = base_headers;
    if (internal::UrlOrigin(url) == endpoint_origin) {
      request.tls = &host.tls;
      request.refuse_link_local = false;  // the endpoint the user configured
      for (const auto& [name, values] : host.headers)
        for (const std::string& v : values) request.headers.push_back(name + ": " + v);
      std::optional<std::string> auth = fresh_auth;
      if (!auth) {
        auto header = authorizer->HeaderFor(host.host, target.scope, target.creds, auth_context);
        if (!header) return std::unexpected(WrapAuthError(std::move(header.error()), *target.ref));
        auth = std::move(*header);
      }
      if (auth) request.headers.push_back("Authorization: " + *auth);
    } else {
      // Another host (a CDN behind a redirect): no credentials, no
      // registry headers, and not a link-local or metadata address.
      foreign_tls = TlsForForeignUrl(url);
      request.tls = &foreign_tls;
      request.refuse_link_local = !options.allow_link_local_redirects;
    }
    ASSIGN_OR_RETURN(HttpResult result, transport->Perform(request));
    if (result.error != TransportError::kNone) return result;
    long status = result.response.status;
    if (status == 401 && request.tls == &host.tls && !challenged) {
      challenged = true;
      auto header = authorizer->OnChallenge(host.host, target.scope,
                                            result.response.Headers("www-authenticate"),
                                            target.creds, auth_context);
      if (!header) return std::unexpected(WrapAuthError(std::move(header.error()), *target.ref));
      fresh_auth = std::move(*header);
      continue;
    }
    if (status >= 300 && status < 400 && status != 304 && !result.response.redirect_url.empty()) {
      if (++hops > kMaxRedirects)
        return MakeError(Errc::kUnavailable, "too many redirects from " + request.url);
      url = result.response.redirect_url;
      LOG(Debug) << "following redirect" << common::Kv("status", status)
                 << common::Kv("to", internal::UrlOrigin(url));
      continue;
    }
    return result;
  }
}

Failure RegistryClient::Impl::Classify(const Target& target, const HttpResult& result,
                                       const std::string& url, const std::string& what) const {
  const RegistryHost& host = *target.host;
  Failure f;
  auto fail = [&](Errc code, std::string message) {
    f.error = common::Error{.code = code, .message = std::move(message)};
  };
  switch (result.error) {
    case TransportError::kConnect:
      f.verdict = Verdict::kRetry;
      f.mirror_skip = true;
      fail(Errc::kUnavailable, "connect to " + url + " failed: " + result.error_text);
      return f;
    case TransportError::kTls:
      fail(Errc::kUnavailable,
           "TLS handshake with " + internal::UrlHost(url) + " failed: " + result.error_text + " (" +
               DescribeCas(internal::UrlHost(url) == host.host ? host.tls : TlsConfig{}) + ")");
      return f;
    case TransportError::kCut:
      f.verdict = Verdict::kRetry;
      fail(Errc::kUnavailable,
           "connection to " + internal::UrlHost(url) + " broke: " + result.error_text);
      return f;
    case TransportError::kStall:
      f.verdict = Verdict::kRetry;
      f.mirror_skip = true;
      fail(Errc::kUnavailable, "download of " + what + " stalled: under " +
                                   std::to_string(options.min_rate_bytes_per_sec) + " B/s for " +
                                   std::to_string(options.min_rate_window.count()) + " s (from " +
                                   internal::UrlHost(url) + ")");
      return f;
    case TransportError::kCancelled:
      fail(Errc::kCancelled, "download of " + what + " cancelled");
      return f;
    case TransportError::kForbiddenAddress:
      f.mirror_skip = true;
      fail(Errc::kPermissionDenied,
           ForbiddenAddressMessage("redirect to " + result.url, result.forbidden_address));
      return f;
    case TransportError::kHook:
      f.error = result.hook_error.value_or(
          common::Error{.code = Errc::kInternal, .message = "callback failed"});
      return f;
    case TransportError::kOther:
      fail(Errc::kUnavailable, "request to " + url + " failed: " + result.error_text);
      return f;
    case TransportError::kNone:
      break;
  }
  long status = result.response.status;
  std::string detail = internal::RegistryErrorText(result.response.body);
  std::string suffix =
      " (HTTP " + std::to_string(status) + (detail.empty() ? "" : ": " + detail) + ")";
  const std::string name = target.ref->name();
  if (status == 401) {
    fail(Errc::kUnauthenticated,
         "authentication required for " + name + ": credentials refused by " + host.host + suffix);
  } else if (status == 403) {
    fail(Errc::kPermissionDenied, "access to " + name + " denied by " + host.host + suffix);
  } else if (status == 404) {
    fail(Errc::kNotFound, what + " not found on " + host.host + suffix);
  } else if (status == 429 || status >= 500) {
    f.verdict = Verdict::kRetry;
    if (std::string ra = result.response.Header("retry-after"); !ra.empty())
      f.retry_after = ParseRetryAfter(ra, env->WallNow());
    fail(Errc::kUnavailable, "GET " + url + ": HTTP " + std::to_string(status) +
                                 (detail.empty() ? "" : " (" + detail + ")"));
  } else if (status >= 400) {
    fail(Errc::kFailedPrecondition, "GET " + url + " refused" + suffix);
  } else {
    fail(Errc::kUnavailable, "GET " + url + ": unexpected HTTP " + std::to_string(status));
  }
  return f;
}

Result<HttpResult> RegistryClient::Impl::SendForeign(HttpRequest req, bool follow_redirects,
                                                     const std::string& what,
                                                     const std::string& target) {
  // Whatever the caller set, a foreign URL gets no client certificate and
  // the link-local rule of redirects: the server named it, not the user.
  req.refuse_link_local = !options.allow_link_local_redirects;
  ApplyLimits(req);
  const std::string first_url = req.url;
  TlsConfig tls;
  Backoff backoff = MakeBackoff();
  for (int attempt = 1;; ++attempt) {
    HttpResult r;
    req.url = first_url;
    for (int hops = 0;; ++hops) {
      tls = TlsForForeignUrl(req.url);
      req.tls = &tls;
      ASSIGN_OR_RETURN(r, transport->Perform(req));
      long status = r.response.status;
      if (!follow_redirects || r.error != TransportError::kNone || status < 300 || status >= 400 ||
          status == 304 || r.response.redirect_url.empty())
        break;
      if (hops >= kMaxRedirects)
        return MakeError(Errc::kUnavailable, "too many redirects (last to " + req.url + ")");
      req.url = r.response.redirect_url;
      LOG(Debug) << "following redirect" << common::Kv("status", status)
                 << common::Kv("to", internal::UrlOrigin(req.url));
    }
    std::optional<std::chrono::milliseconds> retry_after;
    common::Error err;
    bool retry = false;
    switch (r.error) {
      case TransportError::kNone:
        break;
      case TransportError::kCancelled:
        return MakeError(Errc::kCancelled, what + " cancelled");
      case TransportError::kHook:
        // The answer is over the limit: its cause, not a generic failure.
        return std::unexpected(r.hook_error.value_or(
            common::Error{.code = Errc::kInternal, .message = what + " refused"}));
      case TransportError::kForbiddenAddress:
        return MakeError(
            Errc::kPermissionDenied,
            ForbiddenAddressMessage(req.url == first_url ? target : "redirect to " + req.url,
                                    r.forbidden_address));
      default:
        retry = r.error == TransportError::kConnect || r.error == TransportError::kCut ||
                r.error == TransportError::kStall;
        err = {.code = Errc::kUnavailable, .message = r.error_text};
        break;
    }
    if (r.error == TransportError::kNone) {
      long status = r.response.status;
      if (status != 429 && status < 500) return r;
      std::string detail = internal::RegistryErrorText(r.response.body);
      retry = true;
      if (std::string ra = r.response.Header("retry-after"); !ra.empty())
        retry_after = ParseRetryAfter(ra, env->WallNow());
      err = {.code = Errc::kUnavailable,
             .message =
                 "HTTP " + std::to_string(status) + (detail.empty() ? "" : " (" + detail + ")")};
    }
    if (retry && attempt >= options.max_attempts && attempt > 1)
      err.message += " (gave up after " + std::to_string(attempt) + " attempts)";
    if (!retry || attempt >= options.max_attempts) return std::unexpected(std::move(err));
    LOG(Warn) << what << " failed, retrying" << common::Kv("host", internal::UrlHost(first_url))
              << common::Kv("attempt", attempt) << common::Kv("error", err.message);
    if (!backoff.Wait(attempt, retry_after, req.cancel))
      return MakeError(Errc::kCancelled, what + " cancelled");
  }
}

Result<std::string> RegistryClient::Impl::SendTokenRequest(const TokenHttpRequest& treq) {
  HttpRequest req;
  req.method = treq.method;
  req.url = treq.url;
  req.headers = treq.headers;
  req.body = treq.body;
  req.cancel = treq.cancel;
  // The realm is a URL the registry named, like a redirect target.
  ASSIGN_OR_RETURN(HttpResult r, SendForeign(std::move(req), /*follow_redirects=*/false,
                                             "token request", "token realm " + treq.url));
  long status = r.response.status;
  if (status >= 200 && status < 300) return std::move(r.response.body);
  std::string detail = internal::RegistryErrorText(r.response.body);
  std::string msg = "HTTP " + std::to_string(status) + (detail.empty() ? "" : " (" + detail + ")");
  if (status == 403) return MakeError(Errc::kPermissionDenied, msg);
  return MakeError(Errc::kUnauthenticated, msg);
}

Result<std::optional<std::string>> RegistryClient::GetUrl(const std::string& url, size_t max_body,
                                                          const std::atomic<bool>* cancel) {
  std::string origin = internal::UrlOrigin(url);
  if (!origin.starts_with("http://") && !origin.starts_with("https://"))
    return MakeError(Errc::kInvalidArgument, url + ": not an http:// or https:// URL");
  HttpRequest req;
  req.url = url;
  req.max_body = max_body;
  req.cancel = cancel;
  auto sent = impl_->SendForeign(std::move(req), /*follow_redirects=*/true, "GET " + url, url);
  if (!sent) {
    common::Error e = std::move(sent.error());
    if (e.code == Errc::kPermissionDenied || e.code == Errc::kCancelled) return std::unexpected(e);
    return std::unexpected(std::move(e).Wrap(url));
  }
  long status = sent->response.status;
  if (status >= 200 && status < 300) return std::move(sent->response.body);
  if (status == 404) return std::nullopt;
  std::string detail = internal::RegistryErrorText(sent->response.body);
  std::string msg =
      url + ": HTTP " + std::to_string(status) + (detail.empty() ? "" : " (" + detail + ")");
  if (status == 401) return MakeError(Errc::kUnauthenticated, msg);
  if (status == 403) return MakeError(Errc::kPermissionDenied, msg);
  if (status >= 400) return MakeError(Errc::kFailedPrecondition, msg);
  return MakeError(Errc::kUnavailable, msg + " (unexpected)");
}

// ---------------------------------------------------------------------------
// RegistryClient

RegistryClient::RegistryClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RegistryClient::~RegistryClient() = default;

Result<std::unique_ptr<RegistryClient>> RegistryClient::Create(ClientOptions options) {
  if (options.max_attempts < 1)
    return MakeError(Errc::kInvalidArgument,
                     "create registry client: max_attempts must be at least 1");
  if (options.min_rate_bytes_per_sec < 0 || options.min_rate_window.count() < 0 ||
      options.connect_timeout.count() < 0)
    return MakeError(Errc::kInvalidArgument, "create registry client: negative limit");
  if (options.user_agent.empty()) options.user_agent = std::string("gantry/") + GANTRY_VERSION;
  auto impl = std::make_unique<Impl>();
  impl->env = options.env ? options.env : common::DefaultEnv();
  ASSIGN_OR_RETURN(impl->transport,
                   internal::Transport::Create({.user_agent = options.user_agent}));
  impl->options = std::move(options);
  impl->seed = std::random_device{}();
  Impl* raw = impl.get();
  impl->authorizer = std::make_unique<Authorizer>(
      impl->env, [raw](const TokenHttpRequest& r) { return raw->SendTokenRequest(r); },
      [raw](std::string_view host) { return raw->PlainHttpConfigured(host); });
  return std::unique_ptr<RegistryClient>(new RegistryClient(std::move(impl)));
}

Result<std::vector<RegistryHost>> RegistryClient::HostsFor(std::string_view domain) {
  return impl_->HostsFor(domain);
}

Result<FetchedManifest> internal::CheckManifest(std::string_view reference,
                                                const std::string& shown,
                                                const internal::HttpResponse& resp,
                                                const std::string& host) {
  FetchedManifest m;
  m.body = resp.body;
  m.media_type = MediaTypeOf(resp.Header("content-type"));
  if (m.media_type.empty() || m.media_type == "application/json" || m.media_type == "text/plain" ||
      m.media_type == "application/octet-stream") {
    std::string sniffed = SniffMediaType(m.body);
    if (!sniffed.empty()) m.media_type = sniffed;
  }
  if (IsSchema1(m.media_type))
    return MakeError(Errc::kUnimplemented,
                     "manifest " + shown + " is Docker schema 1 (" + m.media_type +
                         "), which gantry does not support; push it again with a current client");
  m.digest = common::Digest::Sha256Of(m.body);
  if (std::string dcd = resp.Header("docker-content-digest"); !dcd.empty()) {
    auto said = common::Digest::Parse(dcd);
    if (said && !Matches(*said, m.body, m.digest))
      return MakeError(Errc::kDataLoss, "manifest " + shown + " from " + host + ": body is " +
                                            m.digest.str() + " but Docker-Content-Digest says " +
                                            dcd);
  }
  if (IsDigestReference(reference)) {
    ASSIGN_OR_RETURN(common::Digest want, common::Digest::Parse(reference));
    if (!Matches(want, m.body, m.digest))
      return MakeError(Errc::kDataLoss, "manifest " + shown + " from " + host + ": body is " +
                                            m.digest.str() + ", not the requested digest");
  }
  return m;
}

Result<FetchedManifest> RegistryClient::Impl::ManifestFromHost(const ImageRef& ref,
                                                               const RegistryHost& host,
                                                               std::string_view reference,
                                                               const std::string& shown,
                                                               const std::atomic<bool>* cancel) {
  Target target = MakeTarget(ref, host);
  const std::string url =
      host.base_url() + "/" + ref.path() + "/manifests/" + std::string(reference);
  HttpRequest req;
  req.url = url;
  req.headers.push_back(internal::kAcceptManifests);
  req.max_body = kMaxManifestSize;
  req.cancel = cancel;
  ApplyLimits(req);
  Backoff backoff = MakeBackoff();

  Result<FetchedManifest> outcome = MakeError(Errc::kInternal, "no attempt made");
  for (int attempt = 1;; ++attempt) {
    Result<HttpResult> sent = Send(target, req);
    if (!sent) {
      outcome = std::unexpected(std::move(sent.error()));
      break;
    }
    if (sent->error == TransportError::kNone && sent->response.status >= 200 &&
        sent->response.status < 300) {
      outcome = internal::CheckManifest(reference, shown, sent->response, host.host);
      break;
    }
    Failure f = Classify(target, *sent, url, "manifest " + shown);
    if (sent->error == TransportError::kHook && f.error.code == Errc::kResourceExhausted)
      f.error.message = "manifest " + shown + " from " + host.host + " exceeds " +
                        std::to_string(kMaxManifestSize >> 20) + " MiB: " + f.error.message;
    if (f.error.code == Errc::kNotFound) f.error.message = "manifest unknown: " + shown;
    bool retry = f.verdict == Verdict::kRetry && attempt < options.max_attempts &&
                 !(host.is_mirror && f.mirror_skip);
    if (!retry && f.verdict == Verdict::kRetry && attempt > 1)
      f.error.message += " (gave up after " + std::to_string(attempt) + " attempts)";
    if (!retry) {
      outcome = std::unexpected(std::move(f.error));
      break;
    }
    LOG(Warn) << "manifest request failed, retrying" << common::Kv("ref", shown)
              << common::Kv("host", host.host) << common::Kv("attempt", attempt)
              << common::Kv("error", f.error.message);
    if (!backoff.Wait(attempt, f.retry_after, cancel)) {
      outcome = MakeError(Errc::kCancelled, "download of manifest " + shown + " cancelled");
      break;
    }
  }
  return outcome;
}

Result<FetchedManifest> RegistryClient::GetManifest(const ImageRef& ref, std::string_view reference,
                                                    const std::atomic<bool>* cancel) {
  const bool by_digest = IsDigestReference(reference);
  const std::string shown = ref.name() + (by_digest ? "@" : ":") + std::string(reference);
  if (reference.empty() || reference.find_first_of("/?# \r\n") != std::string_view::npos)
    return MakeError(Errc::kInvalidArgument,
                     "get manifest: invalid reference `" + std::string(reference) + "`");
  if (by_digest) TRY(common::Digest::Parse(reference));
  ASSIGN_OR_RETURN(std::vector<RegistryHost> hosts, impl_->HostsFor(ref.domain()));

  const internal::FallbackText text{
      .log_key = "ref",
      .shown = shown,
      .no_host = "get manifest " + shown + ": no configured host may " +
                 (by_digest ? "pull" : "resolve") + " from " + ref.domain(),
      .not_found = "manifest unknown: " + shown};
  if (by_digest && impl_->options.peers != nullptr) {
    if (auto m = impl_->ManifestFromPeers(ref, reference, shown, cancel)) return std::move(*m);
  }
  Result<FetchedManifest> got = internal::TryEachHost<FetchedManifest>(
      hosts, [&](const RegistryHost& host) { return by_digest ? host.can_pull : host.can_resolve; },
      text,
      [&](const RegistryHost& host, bool&) {
        return impl_->ManifestFromHost(ref, host, reference, shown, cancel);
      });
  if (!got && !by_digest && got.error().code == Errc::kUnavailable &&
      impl_->options.peers != nullptr && impl_->options.peers_offline_tags)
    return impl_->TagFromPeers(ref, reference, shown, std::move(got.error()), cancel);
  return got;
}

}  // namespace registry
