// Registry authentication input (registry/auth.h): a WWW-Authenticate
// header value from a registry, and a token server's JSON answer.

#include <cctype>
#include <string>

#include "fuzz_util.h"
#include "registry/auth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  std::string_view text = fuzz::AsText(data, size);
  if (auto challenges = registry::ParseWwwAuthenticate(text)) {
    fuzz::Check(!challenges->empty(), "a parsed header has a challenge");
    for (const auto& c : *challenges) {
      for (char ch : c.scheme)
        fuzz::Check(!std::isupper(static_cast<unsigned char>(ch)), "scheme not lower case");
      for (const auto& [name, value] : c.params) {
        for (char ch : name)
          fuzz::Check(!std::isupper(static_cast<unsigned char>(ch)), "parameter not lower case");
        fuzz::Check(c.Param(name) == value, "Param() finds the parameter");
      }
    }
  }
  if (auto token = registry::ParseTokenResponse(text)) {
    // The token goes into an "Authorization: Bearer" header line.
    fuzz::Check(!token->token.empty(), "a token is not empty");
    fuzz::Check(token->token.find_first_of("\r\n") == std::string::npos, "a token is one line");
    fuzz::Check(token->expires_in.count() >= 60, "tokens live at least 60 s");
  }
  return 0;
}
