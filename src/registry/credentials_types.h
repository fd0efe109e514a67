#pragma once
// The credentials gantry presents to a registry. Kept in its own header so
// that the HTTP client (client.h) and the credential store (credentials.h)
// share one definition without including each other.

#include <string>

namespace registry {

// At most one of the three forms is normally set:
//   - username + password: HTTP basic, or the token endpoint's basic auth;
//   - identity_token: an OAuth2 refresh token, exchanged at the token
//     endpoint (docker stores it as `identitytoken`, helpers return it as
//     Username "<token>");
//   - registry_token: a bearer token sent to the registry as is.
// Holds secrets: never log a Credentials value.
struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;
  std::string registry_token;

  friend bool operator==(const Credentials&, const Credentials&) = default;
};

}  // namespace registry
