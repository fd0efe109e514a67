#include "registry/auth.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace registry {
namespace {

using common::Errc;
using common::MakeError;
using common::Result;

bool IsTchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken68Char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("-._~+/").find(c) != std::string_view::npos;
}

class ChallengeParser {
 public:
  explicit ChallengeParser(std::string_view s) : s_(s) {}

  Result<std::vector<AuthChallenge>> Parse() {
    std::vector<AuthChallenge> out;
    SkipListSeparators();
    if (AtEnd()) return Fail("empty header");
    while (!AtEnd()) {
      SkipListSeparators();
      if (AtEnd()) break;
      AuthChallenge ch;
      std::string scheme = Token();
      if (scheme.empty()) return Fail("expected an auth scheme");
      ch.scheme = Lower(scheme);
      bool had_space = SkipSpaces();
      // Parameters follow until the next challenge (a token not followed
      // by "=") or the end.
      bool first = true;
      while (!AtEnd()) {
        if (Peek() == ',') {
          SkipListSeparators();
          if (AtEnd()) break;
          size_t save = pos_;
          std::string name = Token();
          SkipSpaces();
          bool is_param = !name.empty() && !AtEnd() && Peek() == '=';
          pos_ = save;
          if (!is_param) break;  // a new challenge starts here
        } else if (first) {
          if (!had_space) return Fail("expected a space after scheme `" + scheme + "`");
          // Bearer and Basic challenges carry parameters; only other
          // schemes may carry a token68 ("Negotiate abc==").
          if (ch.scheme != "bearer" && ch.scheme != "basic" && TryToken68(ch)) break;
        } else {
          return Fail("expected `,` between parameters");
        }
        first = false;
        std::string name = Token();
        if (name.empty()) return Fail("expected a parameter name");
        SkipSpaces();
        if (AtEnd() || Peek() != '=') return Fail("parameter `" + name + "` has no value");
        ++pos_;
        SkipSpaces();
        std::string value;
        if (!AtEnd() && Peek() == '"') {
          auto v = Quoted();
          if (!v) return std::unexpected(std::move(v.error()));
          value = std::move(*v);
        } else {
          value = Token();
          if (value.empty()) return Fail("parameter `" + name + "` has no value");
        }
        std::string key = Lower(name);
        if (!ch.params.emplace(key, std::move(value)).second)
          return Fail("duplicate parameter `" + key + "`");
        SkipSpaces();
      }
      out.push_back(std::move(ch));
    }
    return out;
  }

 private:
  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek() const { return s_[pos_]; }

  static std::string Lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  }

  std::unexpected<common::Error> Fail(const std::string& why) const {
    return MakeError(Errc::kInvalidArgument,
                     "parse WWW-Authenticate at offset " + std::to_string(pos_) + ": " + why);
  }

  bool SkipSpaces() {
    size_t start = pos_;
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t')) ++pos_;
    return pos_ > start;
  }

  void SkipListSeparators() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t' || Peek() == ',')) ++pos_;
  }

  std::string Token() {
    size_t start = pos_;
    while (!AtEnd() && IsTchar(Peek())) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }

  // A token68 credential ("Negotiate abc123==") in place of parameters; it
  // is kept under the empty parameter name.
  bool TryToken68(AuthChallenge& ch) {
    size_t end = pos_;
    while (end < s_.size() && IsToken68Char(s_[end])) ++end;
    if (end == pos_) return false;
    size_t eq = end;
    while (eq < s_.size() && s_[eq] == '=') ++eq;
    size_t after = eq;
    while (after < s_.size() && (s_[after] == ' ' || s_[after] == '\t')) ++after;
    // "name=value" is a parameter, not a token68.
    if (eq > end && after < s_.size() && s_[after] != ',') return false;
    if (eq == end && after < s_.size() && s_[after] == '=') return false;
    if (eq == end && after < s_.size() && s_[after] != ',') return false;
    ch.params[""] = std::string(s_.substr(pos_, eq - pos_));
    pos_ = after;
    return true;
  }

  Result<std::string> Quoted() {
    ++pos_;  // opening quote
    std::string out;
    while (!AtEnd()) {
      char c = Peek();
      ++pos_;
      if (c == '"') return out;
      if (c == '\\') {
        if (AtEnd()) break;
        c = Peek();
        ++pos_;
      }
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
        return Fail("control character in quoted string");
      out.push_back(c);
    }
    return Fail("unterminated quoted string");
  }

  std::string_view s_;
  size_t pos_ = 0;
};

std::string Base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string HostOf(std::string_view url) {
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return {};
  std::string_view rest = url.substr(sep + 3);
  return std::string(rest.substr(0, rest.find_first_of("/?#")));
}

}  // namespace

std::string AuthChallenge::Param(std::string_view name) const {
  auto it = params.find(std::string(name));
  return it == params.end() ? std::string() : it->second;
}

Result<std::vector<AuthChallenge>> ParseWwwAuthenticate(std::string_view header) {
  return ChallengeParser(header).Parse();
}

Result<IssuedToken> ParseTokenResponse(std::string_view body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return MakeError(Errc::kInvalidArgument, "token response is not a JSON object");
  IssuedToken out;
  for (const char* key : {"token", "access_token"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
      out.token = it->get<std::string>();
      break;
    }
  }
  if (out.token.empty())
    return MakeError(Errc::kInvalidArgument, "token response has no `token` or `access_token`");
  if (out.token.find_first_of("\r\n") != std::string::npos)
    return MakeError(Errc::kInvalidArgument, "token response has a line break in the token");
  auto exp = j.find("expires_in");
  if (exp != j.end() && exp->is_number()) {
    double secs = exp->get<double>();
    if (secs > 60 && secs < 1e9) out.expires_in = std::chrono::seconds(static_cast<int64_t>(secs));
  }
  return out;
}

std::string BasicAuthorization(std::string_view user, std::string_view password) {
  std::string plain(user);
  plain += ':';
  plain += password;
  return "Basic " + Base64(plain);
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

common::Status CheckCredentialsMayGoTo(std::string_view registry_scheme, std::string_view realm_url,
                                       const PlainHttpConfigured& plain_http) {
  if (realm_url.starts_with("https://")) return {};
  const std::string realm_host = HostOf(realm_url);
  auto refuse = [&](const std::string& why) {
    return MakeError(Errc::kUnauthenticated, "credentials not sent to token realm `" +
                                                 std::string(realm_url) + "`: " + why +
                                                 " (see docs/registry.md)");
  };
  if (registry_scheme != "http")
    return refuse("plain http realm for a registry reached over https");
  if (!IsLoopbackHost(realm_host) || !plain_http || !plain_http(realm_host))
    return refuse(
        "plain http to a host other than a loopback one configured for plain http "
        "(--plain-http or a hosts.toml server = \"http://" +
        realm_host + "\")");
  return {};
}

Authorizer::Authorizer(common::Env* env, TokenSender send, PlainHttpConfigured plain_http)
    : env_(env ? env : common::DefaultEnv()),
      send_(std::move(send)),
      plain_http_(std::move(plain_http)) {}

Result<std::optional<std::string>> Authorizer::HeaderFor(const std::string& host,
                                                         const std::string& scope,
                                                         const CredentialSource& creds,
                                                         const AuthContext& context) {
  HostAuth auth;
  {
    std::lock_guard lock(mu_);
    auto h = hosts_.find(host);
    if (h == hosts_.end()) return std::optional<std::string>();
    if (!h->second.bearer) return std::optional<std::string>(h->second.basic);
    auto t = tokens_.find({host, scope});
    if (t != tokens_.end() && env_->Now() < t->second.expires)
      return std::optional<std::string>(t->second.header);
    auth = h->second;
  }
  ASSIGN_OR_RETURN(std::string header, FetchToken(host, auth, scope, creds, context));
  return std::optional<std::string>(std::move(header));
}

Result<std::string> Authorizer::OnChallenge(const std::string& host, const std::string& scope,
                                            const std::vector<std::string>& www_authenticate,
                                            const CredentialSource& creds,
                                            const AuthContext& context) {
  std::optional<AuthChallenge> bearer, basic;
  std::string parse_problem;
  for (const std::string& value : www_authenticate) {
    auto parsed = ParseWwwAuthenticate(value);
    if (!parsed) {
      parse_problem = parsed.error().message;
      continue;
    }
    for (AuthChallenge& ch : *parsed) {
      if (ch.scheme == "bearer" && !bearer)
        bearer = std::move(ch);
      else if (ch.scheme == "basic" && !basic)
        basic = std::move(ch);
    }
  }
  if (bearer) {
    HostAuth auth;
    auth.bearer = true;
    auth.realm = bearer->Param("realm");
    auth.service = bearer->Param("service");
    if (!auth.realm.starts_with("https://") && !auth.realm.starts_with("http://"))
      return MakeError(Errc::kUnauthenticated,
                       "Bearer challenge has no http(s) realm (`" + auth.realm + "`)");
    ASSIGN_OR_RETURN(std::string header, FetchToken(host, auth, scope, creds, context));
    std::lock_guard lock(mu_);
    hosts_[host] = std::move(auth);
    return header;
  }
  if (basic) {
    ASSIGN_OR_RETURN(std::optional<Credentials> c, creds());
    if (!c || (c->username.empty() && c->password.empty()))
      return MakeError(Errc::kUnauthenticated,
                       "basic authentication required and no credentials are configured");
    HostAuth auth;
    auth.basic = BasicAuthorization(c->username, c->password);
    std::string header = auth.basic;
    std::lock_guard lock(mu_);
    hosts_[host] = std::move(auth);
    return header;
  }
  if (www_authenticate.empty())
    return MakeError(Errc::kUnauthenticated, "HTTP 401 without a WWW-Authenticate challenge");
  return MakeError(Errc::kUnauthenticated,
                   parse_problem.empty()
                       ? "no Bearer or Basic challenge in `" + www_authenticate.front() + "`"
                       : parse_problem);
}

Result<std::string> Authorizer::FetchToken(const std::string& host, const HostAuth& auth,
                                           const std::string& scope, const CredentialSource& creds,
                                           const AuthContext& context) {
  ASSIGN_OR_RETURN(std::optional<Credentials> c, creds());
  std::string header;
  std::chrono::seconds lifetime{0};
  if (c && !c->registry_token.empty()) {
    header = "Bearer " + c->registry_token;
    lifetime = std::chrono::seconds(60);
  } else {
    if (c && (!c->identity_token.empty() || !c->username.empty() || !c->password.empty()))
      TRY(CheckCredentialsMayGoTo(context.registry_scheme, auth.realm, plain_http_));
    TokenHttpRequest req;
    req.cancel = context.cancel;
    std::string params;
    if (!auth.service.empty()) params += "service=" + UrlEncode(auth.service) + "&";
    // Several scopes, space-separated (a push that mounts from another
    // repository), go as one scope parameter each.
    std::string_view sep;
    for (size_t from = 0; from <= scope.size();) {
      size_t end = std::min(scope.find(' ', from), scope.size());
      if (end > from) {
        params += std::string(sep) + "scope=" + UrlEncode(scope.substr(from, end - from));
        sep = "&";
      }
      from = end + 1;
    }
    if (c && !c->identity_token.empty()) {
      req.method = "POST";
      req.url = auth.realm;
      req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
      req.body = "grant_type=refresh_token&refresh_token=" + UrlEncode(c->identity_token) +
                 "&client_id=gantry&" + params;
    } else {
      req.method = "GET";
      req.url = auth.realm + (auth.realm.find('?') == std::string::npos ? "?" : "&") + params;
      if (c && (!c->username.empty() || !c->password.empty()))
        req.headers.push_back("Authorization: " + BasicAuthorization(c->username, c->password));
    }
    ASSIGN_OR_RETURN(std::string body,
                     common::Wrap(send_(req), "get token from `" + HostOf(auth.realm) + "`"));
    ASSIGN_OR_RETURN(
        IssuedToken token,
        common::Wrap(ParseTokenResponse(body), "get token from `" + HostOf(auth.realm) + "`"));
    header = "Bearer " + token.token;
    lifetime = token.expires_in;
  }
  std::lock_guard lock(mu_);
  tokens_[{host, scope}] = Cached{header, env_->Now() + lifetime - kExpiryMargin};
  return header;
}

}  // namespace registry
