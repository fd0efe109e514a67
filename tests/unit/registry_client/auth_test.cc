#include "registry/auth.h"

#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace registry {
namespace {

using Params = std::map<std::string, std::string>;

struct ChallengeCase {
  std::string name;
  std::string header;
  bool ok;
  // scheme -> params, in order
  std::vector<std::pair<std::string, Params>> want;
};

void PrintTo(const ChallengeCase& c, std::ostream* os) { *os << c.name; }

class WwwAuthenticateTest : public ::testing::TestWithParam<ChallengeCase> {};

TEST_P(WwwAuthenticateTest, Parses) {
  const ChallengeCase& c = GetParam();
  auto got = ParseWwwAuthenticate(c.header);
  if (!c.ok) {
    ASSERT_FALSE(got) << "accepted: " << c.header;
    EXPECT_EQ(got.error().code, common::Errc::kInvalidArgument);
    EXPECT_NE(got.error().message.find("WWW-Authenticate"), std::string::npos);
    return;
  }
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->size(), c.want.size());
  for (size_t i = 0; i < c.want.size(); ++i) {
    EXPECT_EQ((*got)[i].scheme, c.want[i].first) << i;
    EXPECT_EQ((*got)[i].params, c.want[i].second) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, WwwAuthenticateTest,
    ::testing::Values(
        ChallengeCase{
            "BearerDistribution",
            R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull")",
            true,
            {{"bearer",
              {{"realm", "https://auth.docker.io/token"},
               {"service", "registry.docker.io"},
               {"scope", "repository:library/alpine:pull"}}}}},
        ChallengeCase{"BasicRealm",
                      R"(Basic realm="Registry Realm")",
                      true,
                      {{"basic", {{"realm", "Registry Realm"}}}}},
        ChallengeCase{
            "SchemeCaseInsensitive", R"(BEARER Realm="r")", true, {{"bearer", {{"realm", "r"}}}}},
        ChallengeCase{"TokenValues", "Bearer realm=https://x/token, service=svc", false, {}},
        ChallengeCase{"UnquotedToken",
                      "Bearer service=svc,error=invalid_token",
                      true,
                      {{"bearer", {{"service", "svc"}, {"error", "invalid_token"}}}}},
        ChallengeCase{"SpacesAroundEqualsAndCommas",
                      R"(Bearer realm = "r" ,  service= "s",scope ="a b")",
                      true,
                      {{"bearer", {{"realm", "r"}, {"service", "s"}, {"scope", "a b"}}}}},
        ChallengeCase{"EscapesInQuotedString",
                      R"(Bearer realm="a\"b\\c\d")",
                      true,
                      {{"bearer", {{"realm", "a\"b\\cd"}}}}},
        ChallengeCase{"CommaInsideQuotes",
                      R"(Bearer scope="repository:a:pull,push",realm="r")",
                      true,
                      {{"bearer", {{"scope", "repository:a:pull,push"}, {"realm", "r"}}}}},
        ChallengeCase{
            "TwoChallenges",
            R"(Basic realm="b", Bearer realm="r",service="s")",
            true,
            {{"basic", {{"realm", "b"}}}, {"bearer", {{"realm", "r"}, {"service", "s"}}}}},
        ChallengeCase{"SchemeOnly", "Bearer", true, {{"bearer", {}}}},
        ChallengeCase{"SchemeOnlyThenAnother",
                      R"(Negotiate, Basic realm="x")",
                      true,
                      {{"negotiate", {}}, {"basic", {{"realm", "x"}}}}},
        ChallengeCase{"Token68",
                      R"(Negotiate YWJjZA==, Basic realm="x")",
                      true,
                      {{"negotiate", {{"", "YWJjZA=="}}}, {"basic", {{"realm", "x"}}}}},
        ChallengeCase{"EmptyQuotedValue",
                      R"(Bearer realm="",service="s")",
                      true,
                      {{"bearer", {{"realm", ""}, {"service", "s"}}}}},
        ChallengeCase{"ParamNamesLowerCased",
                      R"(Bearer REALM="r",Service="s")",
                      true,
                      {{"bearer", {{"realm", "r"}, {"service", "s"}}}}},
        ChallengeCase{
            "TrailingComma", R"(Bearer realm="r",)", true, {{"bearer", {{"realm", "r"}}}}},
        // Malformed.
        ChallengeCase{"Empty", "", false, {}}, ChallengeCase{"OnlySpaces", "   ", false, {}},
        ChallengeCase{"UnterminatedQuote", R"(Bearer realm="https://x)", false, {}},
        ChallengeCase{"MissingValue", "Bearer realm=", false, {}},
        ChallengeCase{"MissingValueBeforeComma", R"(Bearer realm=,service="s")", false, {}},
        ChallengeCase{"NoSchemeJustParam", R"(="x")", false, {}},
        ChallengeCase{"DuplicateParam", R"(Bearer realm="a",realm="b")", false, {}},
        ChallengeCase{"MissingCommaBetweenParams", R"(Bearer realm="a" service="b")", false, {}},
        ChallengeCase{"ControlCharInQuotes", std::string("Bearer realm=\"a\x01z\""), false, {}},
        ChallengeCase{"NoSpaceAfterScheme", R"(Bearer"realm")", false, {}},
        ChallengeCase{"DanglingBackslash", "Bearer realm=\"abc\\", false, {}}),
    [](const ::testing::TestParamInfo<ChallengeCase>& p) { return p.param.name; });

TEST(TokenResponseTest, PrefersTokenAndReadsExpiry) {
  auto t = ParseTokenResponse(R"({"token":"abc","access_token":"def","expires_in":300})");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->token, "abc");
  EXPECT_EQ(t->expires_in, std::chrono::seconds(300));
}

TEST(TokenResponseTest, AccessTokenOnlyAndDefaultExpiry) {
  auto t = ParseTokenResponse(R"({"access_token":"def"})");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->token, "def");
  EXPECT_EQ(t->expires_in, std::chrono::seconds(60));
}

TEST(TokenResponseTest, ShortExpiryRaisedToSixty) {
  auto t = ParseTokenResponse(R"({"token":"x","expires_in":5})");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->expires_in, std::chrono::seconds(60));
}

TEST(TokenResponseTest, RejectsMissingTokenAndNonJson) {
  EXPECT_FALSE(ParseTokenResponse(R"({"expires_in":60})"));
  EXPECT_FALSE(ParseTokenResponse(R"({"token":""})"));
  EXPECT_FALSE(ParseTokenResponse("<html>"));
  EXPECT_FALSE(ParseTokenResponse(R"({"token":"a\nb"})"));
}

TEST(BasicAuthorizationTest, EncodesUserColonPassword) {
  EXPECT_EQ(BasicAuthorization("gantry", "s3cret"), "Basic Z2FudHJ5OnMzY3JldA==");
  EXPECT_EQ(BasicAuthorization("", ""), "Basic Og==");
}

TEST(UrlEncodeTest, EscapesReservedCharacters) {
  EXPECT_EQ(UrlEncode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
  EXPECT_EQ(UrlEncode("A-z_0.9~ +"), "A-z_0.9~%20%2B");
}

// A clock that only moves when told to.
class FakeEnv : public common::Env {
 public:
  std::chrono::steady_clock::time_point Now() override { return now; }
  std::chrono::system_clock::time_point WallNow() override { return wall; }
  void SleepFor(std::chrono::steady_clock::duration d) override { now += d; }
  std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
  std::chrono::system_clock::time_point wall{std::chrono::hours(24 * 365 * 50)};
};

struct AuthorizerFixture {
  FakeEnv env;
  std::vector<TokenHttpRequest> sent;
  int expires_in = 300;
  Authorizer auth{&env, [this](const TokenHttpRequest& r) -> common::Result<std::string> {
                    sent.push_back(r);
                    return R"({"token":"t)" + std::to_string(sent.size()) + R"(","expires_in":)" +
                           std::to_string(expires_in) + "}";
                  }};
};

Credentials UserPass(std::string u, std::string p) {
  Credentials c;
  c.username = std::move(u);
  c.password = std::move(p);
  return c;
}

Credentials IdentityToken(std::string t) {
  Credentials c;
  c.identity_token = std::move(t);
  return c;
}

Credentials RegistryToken(std::string t) {
  Credentials c;
  c.registry_token = std::move(t);
  return c;
}

CredentialSource Creds(std::optional<Credentials> c) {
  return [c]() -> common::Result<std::optional<Credentials>> { return c; };
}

TEST(AuthorizerTest, BearerTokenIsCachedPerScopeUntilExpiry) {
  AuthorizerFixture f;
  const std::vector<std::string> challenge = {
      R"(Bearer realm="http://127.0.0.1:9/token",service="reg")"};
  auto none = Creds(std::nullopt);
  auto first = f.auth.HeaderFor("h:5000", "repository:a:pull", none);
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->has_value()) << "no header before the first challenge";

  auto h = f.auth.OnChallenge("h:5000", "repository:a:pull", challenge, none);
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(*h, "Bearer t1");
  ASSERT_EQ(f.sent.size(), 1u);
  EXPECT_EQ(f.sent[0].method, "GET");
  EXPECT_EQ(f.sent[0].url, "http://127.0.0.1:9/token?service=reg&scope=repository%3Aa%3Apull");
  EXPECT_TRUE(f.sent[0].headers.empty()) << "anonymous: no Authorization";

  // Reused for the same scope; a new scope gets its own token.
  EXPECT_EQ(**f.auth.HeaderFor("h:5000", "repository:a:pull", none), "Bearer t1");
  EXPECT_EQ(**f.auth.HeaderFor("h:5000", "repository:b:pull", none), "Bearer t2");
  EXPECT_EQ(f.sent.size(), 2u);

  // Just before expiry minus the margin: still cached. After: refreshed.
  f.env.now += std::chrono::seconds(300) - Authorizer::kExpiryMargin - std::chrono::seconds(1);
  EXPECT_EQ(**f.auth.HeaderFor("h:5000", "repository:a:pull", none), "Bearer t1");
  f.env.now += std::chrono::seconds(2);
  EXPECT_EQ(**f.auth.HeaderFor("h:5000", "repository:a:pull", none), "Bearer t3");
}

TEST(AuthorizerTest, BasicCredentialsGoToTheTokenServer) {
  AuthorizerFixture f;
  auto creds = Creds(UserPass("u", "p"));
  auto h = f.auth.OnChallenge("h", "repository:a:pull", {R"(Bearer realm="https://t/token?x=1")"},
                              creds);
  ASSERT_TRUE(h) << h.error().message;
  ASSERT_EQ(f.sent.size(), 1u);
  EXPECT_EQ(f.sent[0].url, "https://t/token?x=1&scope=repository%3Aa%3Apull");
  ASSERT_EQ(f.sent[0].headers.size(), 1u);
  EXPECT_EQ(f.sent[0].headers[0], "Authorization: Basic dTpw");
}

// The realm rule (auth.h): which realms credentials may go to.
TEST(CredentialsRealmRuleTest, HttpsRealmsAnywhereHttpOnlyToConfiguredLoopback) {
  auto configured = [](std::string_view host) { return host == "127.0.0.1:5001"; };
  EXPECT_TRUE(CheckCredentialsMayGoTo("https", "https://auth.example.com/token", configured));
  EXPECT_TRUE(CheckCredentialsMayGoTo("http", "https://auth.example.com/token", configured));
  EXPECT_TRUE(CheckCredentialsMayGoTo("http", "http://127.0.0.1:5001/token", configured));

  for (const auto& [scheme, realm] : std::vector<std::pair<std::string, std::string>>{
           {"https", "http://127.0.0.1:5001/token"},   // an https registry's http realm
           {"http", "http://127.0.0.1:5002/token"},    // loopback, not configured
           {"http", "http://auth.example.com/token"},  // across the network
           {"http", "http://10.0.0.1:5001/token"}}) {
    auto st = CheckCredentialsMayGoTo(scheme, realm, configured);
    ASSERT_FALSE(st) << scheme << " " << realm;
    EXPECT_EQ(st.error().code, common::Errc::kUnauthenticated);
    EXPECT_NE(st.error().message.find("credentials not sent to token realm `" + realm + "`"),
              std::string::npos)
        << st.error().message;
  }
  // A loopback host is not enough: the user must have configured it.
  EXPECT_FALSE(CheckCredentialsMayGoTo("http", "http://127.0.0.1:5001/token", {}));
}

TEST(AuthorizerTest, CredentialsAreKeptFromARealmTheRuleRefuses) {
  AuthorizerFixture f;
  auto creds = Creds(UserPass("u", "p"));
  auto h = f.auth.OnChallenge("h", "s", {R"(Bearer realm="http://127.0.0.1:9/token")"}, creds,
                              {.registry_scheme = "https", .cancel = nullptr});
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, common::Errc::kUnauthenticated);
  EXPECT_TRUE(f.sent.empty()) << "no token request at all";
  // Without credentials there is nothing to keep: the anonymous request goes.
  auto anonymous =
      f.auth.OnChallenge("h", "s", {R"(Bearer realm="http://127.0.0.1:9/token")"},
                         Creds(std::nullopt), {.registry_scheme = "https", .cancel = nullptr});
  ASSERT_TRUE(anonymous) << anonymous.error().message;
  ASSERT_EQ(f.sent.size(), 1u);
  EXPECT_TRUE(f.sent[0].headers.empty());
}

TEST(AuthorizerTest, IdentityTokenUsesOAuthRefreshPost) {
  AuthorizerFixture f;
  auto creds = Creds(IdentityToken("refresh/me"));
  auto h = f.auth.OnChallenge("h", "repository:a:pull",
                              {R"(Bearer realm="https://t/token",service="s")"}, creds);
  ASSERT_TRUE(h);
  ASSERT_EQ(f.sent.size(), 1u);
  EXPECT_EQ(f.sent[0].method, "POST");
  EXPECT_EQ(f.sent[0].url, "https://t/token");
  EXPECT_EQ(f.sent[0].body,
            "grant_type=refresh_token&refresh_token=refresh%2Fme&client_id=gantry&service=s&"
            "scope=repository%3Aa%3Apull");
}

TEST(AuthorizerTest, RegistryTokenIsUsedDirectly) {
  AuthorizerFixture f;
  auto h = f.auth.OnChallenge("h", "s", {R"(Bearer realm="https://t/token")"},
                              Creds(RegistryToken("rt")));
  ASSERT_TRUE(h);
  EXPECT_EQ(*h, "Bearer rt");
  EXPECT_TRUE(f.sent.empty());
}

TEST(AuthorizerTest, BasicChallengeNeedsCredentials) {
  AuthorizerFixture f;
  auto none = f.auth.OnChallenge("h", "s", {R"(Basic realm="x")"}, Creds(std::nullopt));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, common::Errc::kUnauthenticated);

  auto h = f.auth.OnChallenge("h", "s", {R"(Basic realm="x")"}, Creds(UserPass("u", "p")));
  ASSERT_TRUE(h);
  EXPECT_EQ(*h, "Basic dTpw");
  EXPECT_EQ(**f.auth.HeaderFor("h", "other-scope", Creds(std::nullopt)), "Basic dTpw");
}

TEST(AuthorizerTest, PrefersBearerAmongSeveralChallenges) {
  AuthorizerFixture f;
  auto h = f.auth.OnChallenge("h", "s", {R"(Basic realm="x")", R"(Bearer realm="http://t/token")"},
                              Creds(std::nullopt));
  ASSERT_TRUE(h);
  EXPECT_EQ(*h, "Bearer t1");
}

TEST(AuthorizerTest, UnusableChallengesAreUnauthenticated) {
  AuthorizerFixture f;
  for (const std::vector<std::string>& c :
       std::vector<std::vector<std::string>>{{},
                                             {"Negotiate"},
                                             {R"(Bearer service="x")"},
                                             {R"(Bearer realm="ftp://x")"},
                                             {"Bearer realm=\"x"}}) {
    auto h = f.auth.OnChallenge("h", "s", c, Creds(std::nullopt));
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().code, common::Errc::kUnauthenticated) << h.error().message;
  }
  EXPECT_TRUE(f.sent.empty());
}

TEST(AuthorizerTest, TokenServerErrorsPropagate) {
  FakeEnv env;
  Authorizer auth(&env, [](const TokenHttpRequest&) -> common::Result<std::string> {
    return common::MakeError(common::Errc::kUnauthenticated, "token server answered HTTP 401");
  });
  auto h = auth.OnChallenge("h", "s", {R"(Bearer realm="http://t/token")"}, Creds(std::nullopt));
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, common::Errc::kUnauthenticated);
  EXPECT_NE(h.error().message.find("get token from `t`"), std::string::npos) << h.error().message;
}

}  // namespace
}  // namespace registry
