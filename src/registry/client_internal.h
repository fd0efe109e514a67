#pragma once
// Internal to registry/: the state behind RegistryClient and the pieces
// shared by the manifest (client.cc) and blob (client_blob.cc) paths.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
  std::map<std::string, std::vector<RegistryHost>, std::less<>> hosts;        // guarded by mu
  std::map<std::string, std::optional<Credentials>, std::less<>> credentials;  // guarded by mu

  common::Result<std::vector<RegistryHost>> HostsFor(std::string_view domain);
  // Credentials for `host` of `ref` (see client.h for who gets what).
  CredentialSource CredentialsFor(const ImageRef& ref, const RegistryHost& host);
  internal::Target MakeTarget(const ImageRef& ref, const RegistryHost& host);
  Backoff MakeBackoff();
  // TLS settings for a URL that is not a registry endpoint (token realm,
  // redirect target): the endpoint's CAs and verify flag when the URL's
  // host is a known endpoint, the system defaults otherwise.
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

  // Performs a token server request with retries.
  common::Result<std::string> SendTokenRequest(const TokenHttpRequest& request);

  // Whether the user configured `host` for plain HTTP (--plain-http, or a
  // hosts.toml URL for it with http://), for the realm rule of auth.h.
  bool PlainHttpConfigured(std::string_view host);
};

}  // namespace registry
