#pragma once
// Registry authentication: WWW-Authenticate parsing, Docker's token
// protocol (https://distribution.github.io/distribution/spec/auth/token/),
// Basic auth, and a cache of tokens per (host, scope). A scope may be
// several, space-separated: each goes as its own `scope` parameter.
//
// Flow: a request gets a 401 with `WWW-Authenticate: Bearer realm="…",
// service="…"`; the Authorizer asks the realm for a token with
// scope=repository:<path>:pull (Basic with username/password; an OAuth2
// refresh-token POST when an identity token is set; a registry token is
// used as the Bearer token directly) and remembers the challenge for the
// host, so later requests to that host send the cached token, or fetch a
// fresh one once it is about to expire, without another 401 round trip.
//
// Where credentials go (docs/registry.md): a Bearer challenge names a token
// realm, any URL the registry likes; the protocol needs the credentials to
// go there, across hosts (docker, containerd and skopeo send them to the
// named realm whatever it is). gantry sends username/password (Basic) or
// an identity token to a realm only when
//   - the realm is https, or
//   - the realm is plain http, the registry itself was reached over plain
//     http, and the realm's host is a loopback host the user configured
//     for plain http (`--plain-http`, or a hosts.toml whose server is
//     http://): never an http realm for an https registry, never plain
//     http across a network.
// Otherwise the token request is not made and the challenge fails with
// Unauthenticated naming the realm and the rule. Without credentials the
// anonymous token request goes to any http(s) realm (there is nothing to
// leak).
//
// Thread-safety: Authorizer is safe to use from many threads.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/env.h"
#include "common/error.h"
#include "registry/credentials_types.h"
#include "registry/hosts.h"

namespace registry {

// Looks up credentials for a host key (the registry domain, e.g.
// "docker.io" or "127.0.0.1:5000", or a mirror's host). nullopt: none.
using CredentialLookup =
    std::function<common::Result<std::optional<Credentials>>(std::string_view host)>;

struct AuthChallenge {
  std::string scheme;                         // lower case: "bearer", "basic", …
  std::map<std::string, std::string> params;  // names lower case, values unquoted
  std::string Param(std::string_view name) const;
};

// Parses a WWW-Authenticate value (RFC 9110 §11.6.1): one or more
// challenges separated by commas, each a scheme and auth-params
// (name=token or name="quoted \"string\""). Errors: InvalidArgument naming
// the problem (empty, unterminated quote, missing value, duplicate
// parameter, stray characters).
[[nodiscard]] common::Result<std::vector<AuthChallenge>> ParseWwwAuthenticate(
    std::string_view header);

struct IssuedToken {
  std::string token;
  std::chrono::seconds expires_in{60};
};

// Parses a token server's JSON answer: "token" or "access_token";
// "expires_in" (seconds; absent or below 60 → 60, as the spec says).
// Errors: InvalidArgument when not JSON or without a token.
[[nodiscard]] common::Result<IssuedToken> ParseTokenResponse(std::string_view body);

// "Basic base64(user:password)".
[[nodiscard]] std::string BasicAuthorization(std::string_view user, std::string_view password);

// application/x-www-form-urlencoded / query component escaping.
[[nodiscard]] std::string UrlEncode(std::string_view s);

// An HTTP request to the token server, retried and mapped to errors by the
// caller: returns the 2xx body, or an error (401/403 → Unauthenticated /
// PermissionDenied, others → Unavailable …).
struct TokenHttpRequest {
  std::string method;  // "GET" | "POST"
  std::string url;
  std::vector<std::string> headers;
  std::string body;
  // The sender polls it during the request and its retries (→ Cancelled).
  const std::atomic<bool>* cancel = nullptr;
};
using TokenSender = std::function<common::Result<std::string>(const TokenHttpRequest&)>;
using CredentialSource = std::function<common::Result<std::optional<Credentials>>()>;

// Whether `host` ("127.0.0.1:5001") is one the user configured for plain
// HTTP (see the rule above; the Authorizer checks it is loopback itself).
using PlainHttpConfigured = std::function<bool(std::string_view host)>;

// The realm rule above: OK, or Unauthenticated explaining why credentials
// for a registry reached over `registry_scheme` ("https" | "http") may not
// go to `realm_url`.
[[nodiscard]] common::Status CheckCredentialsMayGoTo(std::string_view registry_scheme,
                                                     std::string_view realm_url,
                                                     const PlainHttpConfigured& plain_http);

// What one request that may need a token brings along.
struct AuthContext {
  std::string registry_scheme = "https";  // how the registry was reached
  // Polled by the token request and its retries (→ Cancelled).
  const std::atomic<bool>* cancel = nullptr;
};

class Authorizer {
 public:
  // `env` (null = real clock) decides token expiry. `plain_http` (may be
  // empty: no host is) is asked before credentials go to an http realm.
  Authorizer(common::Env* env, TokenSender send, PlainHttpConfigured plain_http = {});

  // How long before expires_in a cached token is dropped.
  static constexpr std::chrono::seconds kExpiryMargin{10};

  // The Authorization value to send to `host` for `scope` before any 401:
  // nullopt when the host has not challenged yet. A Bearer host whose
  // cached token expired gets a fresh token first.
  [[nodiscard]] common::Result<std::optional<std::string>> HeaderFor(
      const std::string& host, const std::string& scope, const CredentialSource& creds,
      const AuthContext& context = {});

  // Handles a 401 from `host`: picks the Bearer (else Basic) challenge,
  // obtains a fresh token (never from the cache) or the Basic header,
  // remembers the challenge, and returns the Authorization value.
  // Errors: Unauthenticated (no usable challenge, no credentials for Basic,
  // the token server refused, credentials the realm rule keeps back), and
  // whatever `send` returns (Cancelled, ResourceExhausted for an oversize
  // answer, …).
  [[nodiscard]] common::Result<std::string> OnChallenge(
      const std::string& host, const std::string& scope,
      const std::vector<std::string>& www_authenticate, const CredentialSource& creds,
      const AuthContext& context = {});

 private:
  struct HostAuth {
    bool bearer = false;
    std::string realm, service;
    std::string basic;  // Basic header value
  };
  struct Cached {
    std::string header;
    std::chrono::steady_clock::time_point expires;
  };
  common::Result<std::string> FetchToken(const std::string& host, const HostAuth& auth,
                                         const std::string& scope, const CredentialSource& creds,
                                         const AuthContext& context);

  common::Env* env_;
  TokenSender send_;
  PlainHttpConfigured plain_http_;
  std::mutex mu_;
  std::map<std::string, HostAuth> hosts_;                         // guarded by mu_
  std::map<std::pair<std::string, std::string>, Cached> tokens_;  // guarded by mu_
};

}  // namespace registry
