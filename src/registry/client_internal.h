#pragma once
// Internal to registry/: the state behind RegistryClient and the pieces
// shared by the manifest (client.cc) and blob (client_blob.cc) paths.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "registry/auth.h"
#include "registry/client.h"
#include "registry/hosts.h"
#include "registry/http_retry.h"
#include "registry/transport.h"

namespace registry::internal {

// One registry endpoint as used for one repository.
struct Target {
  const ImageRef* ref = nullptr;
  const RegistryHost* host = nullptr;
  std::string scope;  // "repository:<path>:pull"
  CredentialSource creds;
};

// What to do after an attempt.
enum class Verdict { kRetry, kFail };

struct Failure {
  Verdict verdict = Verdict::kFail;
  std::optional<std::chrono::milliseconds> retry_after;
  common::Error error;
  bool mirror_skip = false;  // a mirror should give up on this at once
};

// What the host fallback says about the thing it fetches.
struct FallbackText {
  std::string_view log_key;  // "ref", "digest"
  std::string shown;         // the thing, for the log
  std::string no_host;       // FailedPrecondition when no host may serve it
  std::string not_found;     // NotFound when every host that may answered 404
};

// The host fallback of manifests and blobs: `attempt` (with its own
// retries) on each host `usable` admits, in the configured order (mirrors
// first, the upstream last), until one succeeds. A Cancelled attempt, or
// one that sets `final`, ends the fallback with its error; a failed mirror
// is logged and the next host tried. Errors: FailedPrecondition
// (text.no_host) when no host was usable; NotFound (text.not_found) when
// every usable host answered not found; else the last host's error.
template <class T>
common::Result<T> TryEachHost(
    const std::vector<RegistryHost>& hosts, const std::function<bool(const RegistryHost&)>& usable,
    const FallbackText& text,
    const std::function<common::Result<T>(const RegistryHost&, bool& final)>& attempt) {
  std::optional<common::Error> last;
  bool all_not_found = true;
  bool any = false;
  for (const RegistryHost& host : hosts) {
    if (!usable(host)) continue;
    any = true;
    bool final = false;
    common::Result<T> outcome = attempt(host, final);
    if (outcome || final || outcome.error().code == common::Errc::kCancelled) return outcome;
    if (outcome.error().code != common::Errc::kNotFound) all_not_found = false;
    if (host.is_mirror)
      LOG(Warn) << "mirror failed, trying the next host" << common::Kv(text.log_key, text.shown)
                << common::Kv("mirror", host.host) << common::Kv("error", outcome.error().message);
    last = std::move(outcome.error());
  }
  if (!any) return common::MakeError(common::Errc::kFailedPrecondition, text.no_host);
  if (all_not_found) return common::MakeError(common::Errc::kNotFound, text.not_found);
  return std::unexpected(std::move(*last));
}

inline constexpr const char* kAcceptManifests =
    "Accept: application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

// A 2xx manifest answer of `host` for `reference` (a tag or a digest),
// checked: its media type (Content-Type, else sniffed from the body),
// schema 1 refused (Unimplemented), its sha256 against
// Docker-Content-Digest when present and against `reference` when that is
// a digest (DataLoss, naming `shown` and `host`).
common::Result<FetchedManifest> CheckManifest(std::string_view reference, const std::string& shown,
                                              const HttpResponse& resp, const std::string& host);

// A request to a fleet peer's registry door (registry/peers.h):
//   GET http://PEER/v2/<repo path>/<kind>/<reference>?ns=<domain>
// with no credentials, no registry headers and no redirect (the caller
// adds only peer headers), a connect timeout of at most 5 s and the pull's
// rate floor. `kind`: "blobs" or "manifests".
HttpRequest PeerRequest(const ClientOptions& options, const std::string& peer, const ImageRef& repo,
                        std::string_view kind, std::string_view reference,
                        const std::atomic<bool>* cancel);

// What a peer's answer means, before its body is judged: a hook's error
// as is; Cancelled ("download of `what` cancelled"); a transfer failure
// Unavailable; a status other than 200 NotFound (404: the peer has not
// got it) or Unavailable; else success.
common::Status PeerOutcome(HttpResult& sent, const std::string& what);

// "scheme://host" of a URL ("" when it has none); the host part alone.
std::string UrlOrigin(std::string_view url);
std::string UrlHost(std::string_view url);

// The registry's error JSON ("MANIFEST_UNKNOWN: manifest unknown") or the
// start of a non-JSON body, printable characters only; "" when empty.
std::string RegistryErrorText(std::string_view body);

}  // namespace registry::internal

namespace registry {

struct RegistryClient::Impl {
  ClientOptions options;
  common::Env* env = nullptr;
  std::unique_ptr<internal::Transport> transport;
  std::unique_ptr<Authorizer> authorizer;
  std::atomic<uint64_t> seed{0};

  std::mutex mu;
  std::map<std::string, std::vector<RegistryHost>, std::less<>> hosts;         // guarded by mu
  std::map<std::string, std::optional<Credentials>, std::less<>> credentials;  // guarded by mu

  common::Result<std::vector<RegistryHost>> HostsFor(std::string_view domain);
  // Credentials for `host` of `ref` (see client.h for who gets what).
  CredentialSource CredentialsFor(const ImageRef& ref, const RegistryHost& host);
  internal::Target MakeTarget(const ImageRef& ref, const RegistryHost& host);
  Backoff MakeBackoff();
  // One host's answer for a manifest, with its retries (client.cc).
  common::Result<FetchedManifest> ManifestFromHost(const ImageRef& ref, const RegistryHost& host,
                                                   std::string_view reference,
                                                   const std::string& shown,
                                                   const std::atomic<bool>* cancel);
  // Peers (client_peers.cc, registry/peers.h). The manifest `digest`
  // (a digest reference) from the first of its homes that serves it
  // verified; nullopt when none did (each failure logged).
  std::optional<FetchedManifest> ManifestFromPeers(const ImageRef& ref, std::string_view digest,
                                                   const std::string& shown,
                                                   const std::atomic<bool>* cancel);
  // --peers-offline-tags: the manifest the tag names by the rule of
  // docs/fleet.md (a strict majority of the TagPeers that answer), after
  // the hosts failed with `upstream` (Unavailable). Errors: `upstream`,
  // its message extended with why the peers could not stand in
  // (none answered, they disagree); Cancelled.
  common::Result<FetchedManifest> TagFromPeers(const ImageRef& ref, std::string_view tag,
                                               const std::string& shown, common::Error upstream,
                                               const std::atomic<bool>* cancel);
  // TLS settings for a URL that is not a registry endpoint (token realm,
  // redirect target, lookaside): the endpoint's CAs and verify flag when
  // the URL's host is a known endpoint, the system defaults otherwise;
  // never a client certificate or key (the server named the URL, not the
  // user, so the user's certificate is not offered to it).
  TlsConfig TlsForForeignUrl(std::string_view url);

  // Fills the timeouts and the rate floor of a request.
  void ApplyLimits(internal::HttpRequest& request) const;

  // One attempt at `request` against `target`: adds the registry headers
  // and Authorization for the endpoint's own host, answers one 401 with
  // fresh credentials, follows redirects (dropping both for other hosts).
  // Errors: local problems and auth failures (already worded).
  common::Result<internal::HttpResult> Send(const internal::Target& target,
                                            internal::HttpRequest request);

  // Turns a non-2xx or failed exchange into a verdict and a worded error.
  // `what` names the object ("manifest 127.0.0.1:5000/app:v1",
  // "blob sha256:…") for the stall message.
  internal::Failure Classify(const internal::Target& target, const internal::HttpResult& result,
                             const std::string& url, const std::string& what) const;

  // A request to a URL that is not a registry endpoint (a token realm, a
  // lookaside signature): `req` with its own headers only (no credentials,
  // no registry headers), TLS as TlsForForeignUrl says (no client
  // certificate), link-local and metadata addresses refused unless
  // allow_link_local_redirects, and the limits of ApplyLimits. With
  // `follow_redirects`, 3xx answers are followed (at most kMaxRedirects),
  // each target checked alike. Connection errors, cuts, stalls, 429 and
  // 5xx are retried with backoff (max_attempts, Retry-After).
  // Returns the final exchange for any other status (2xx, 3xx not
  // followed, 4xx): the caller judges it. Errors, their messages not
  // naming the URL (`what`, "token request", names the request in some):
  // Cancelled; the hook's error (ResourceExhausted for a body over
  // req.max_body); PermissionDenied for a forbidden address (naming
  // `target`, "token realm URL", or the redirect); Unavailable
  // after the last attempt ("HTTP 503 (…) (gave up after 5 attempts)",
  // libcurl's text) or for too many redirects; local transport errors.
  common::Result<internal::HttpResult> SendForeign(internal::HttpRequest req, bool follow_redirects,
                                                   const std::string& what,
                                                   const std::string& target);

  // Performs a token server request with retries (SendForeign, redirects
  // not followed).
  common::Result<std::string> SendTokenRequest(const TokenHttpRequest& request);

  // Whether the user configured `host` for plain HTTP (--plain-http, or a
  // hosts.toml URL for it with http://), for the realm rule of auth.h.
  bool PlainHttpConfigured(std::string_view host);
};

}  // namespace registry
