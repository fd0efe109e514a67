#pragma once
// Registry authentication: WWW-Authenticate parsing, Docker's token
// protocol (https://distribution.github.io/distribution/spec/auth/token/),
// Basic auth, and a cache of tokens per (host, scope).
//
// Flow: a request gets a 401 with `WWW-Authenticate: Bearer realm="…",
// service="…"`; the Authorizer asks the realm for a token with
// scope=repository:<path>:pull (Basic with username/password; an OAuth2
// refresh-token POST when an identity token is set; a registry token is
// used as the Bearer token directly) and remembers the challenge for the
// host, so later requests to that host send the cached token, or fetch a
// fresh one once it is about to expire, without another 401 round trip.
//
// Thread-safety: Authorizer is safe to use from many threads.

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
};
using TokenSender = std::function<common::Result<std::string>(const TokenHttpRequest&)>;
using CredentialSource = std::function<common::Result<std::optional<Credentials>>()>;

class Authorizer {
 public:
  // `env` (null = real clock) decides token expiry.
  Authorizer(common::Env* env, TokenSender send);

  // How long before expires_in a cached token is dropped.
  static constexpr std::chrono::seconds kExpiryMargin{10};

  // The Authorization value to send to `host` for `scope` before any 401:
  // nullopt when the host has not challenged yet. A Bearer host whose
  // cached token expired gets a fresh token first.
  [[nodiscard]] common::Result<std::optional<std::string>> HeaderFor(const std::string& host,
                                                                    const std::string& scope,
                                                                    const CredentialSource& creds);

  // Handles a 401 from `host`: picks the Bearer (else Basic) challenge,
  // obtains a fresh token (never from the cache) or the Basic header,
  // remembers the challenge, and returns the Authorization value.
  // Errors: Unauthenticated (no usable challenge, no credentials for Basic,
  // the token server refused), and whatever `send` returns.
  [[nodiscard]] common::Result<std::string> OnChallenge(
      const std::string& host, const std::string& scope,
      const std::vector<std::string>& www_authenticate, const CredentialSource& creds);

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
                                         const std::string& scope, const CredentialSource& creds);

  common::Env* env_;
  TokenSender send_;
  std::mutex mu_;
  std::map<std::string, HostAuth> hosts_;                          // guarded by mu_
  std::map<std::pair<std::string, std::string>, Cached> tokens_;  // guarded by mu_
};

}  // namespace registry
