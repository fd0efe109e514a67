// End-to-end proof of the registry test harness: a real docker-registry in
// each set-up (plain, TLS, htpasswd, token), an image pushed with skopeo,
// and the manifest read back with libcurl, digest for digest.

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cctype>
#include <cerrno>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/http_server.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/registry_fixture.h"
#include "fixtures/require.h"
#include "fixtures/token_server.h"

namespace {

using fixtures::RegistryAuth;
using fixtures::RegistryFixture;

constexpr char kRepo[] = "fixture/app";
constexpr char kManifestAccept[] =
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

fixtures::RegistryOptions Options(bool tls, RegistryAuth auth) {
  fixtures::RegistryOptions o;
  o.tls = tls;
  o.auth = auth;
  return o;
}

// --- a small libcurl client, independent of the fixtures under test --------

struct HttpResult {
  long status = 0;
  std::multimap<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct RequestOptions {
  std::string method = "GET";
  std::vector<std::string> headers;
  std::filesystem::path ca;  // CA bundle for https
  std::string basic_user;    // with basic_pass: Basic credentials
  std::string basic_pass;
  std::string bearer;
};

size_t AppendBody(char* data, size_t size, size_t nmemb, void* out) {
  static_cast<std::string*>(out)->append(data, size * nmemb);
  return size * nmemb;
}

size_t AppendHeader(char* data, size_t size, size_t nmemb, void* out) {
  std::string_view line(data, size * nmemb);
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    static_cast<HttpResult*>(out)->headers.emplace(std::move(name), std::string(value));
  }
  return size * nmemb;
}

// On a transport failure (no HTTP answer) the error is the curl message.
common::Result<HttpResult> Request(const std::string& url, const RequestOptions& opt = {}) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) return common::MakeError(common::Errc::kInternal, "curl_easy_init");
  HttpResult result;
  char errbuf[CURL_ERROR_SIZE] = {0};
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(nullptr,
                                                                      &curl_slist_free_all);
  for (const auto& h : opt.headers) headers.reset(curl_slist_append(headers.release(), h.c_str()));
  std::string auth_header;
  if (!opt.bearer.empty()) {
    auth_header = "Authorization: Bearer " + opt.bearer;
    headers.reset(curl_slist_append(headers.release(), auth_header.c_str()));
  }
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, opt.method.c_str());
  if (opt.method == "HEAD") curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl.get(), CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 15000L);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &AppendBody);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, &AppendHeader);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &result);
  if (!opt.ca.empty()) curl_easy_setopt(curl.get(), CURLOPT_CAINFO, opt.ca.c_str());
  if (!opt.basic_user.empty()) {
    curl_easy_setopt(curl.get(), CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(curl.get(), CURLOPT_USERNAME, opt.basic_user.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PASSWORD, opt.basic_pass.c_str());
  }
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK)
    return common::MakeError(common::Errc::kUnavailable,
                             url + ": " + (errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc)));
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &result.status);
  return result;
}

// `Bearer realm="…",service="…",scope="…"` → {"scheme": "bearer", "realm": …}.
std::map<std::string, std::string> ParseChallenge(std::string_view h) {
  std::map<std::string, std::string> out;
  size_t sp = h.find(' ');
  std::string scheme(h.substr(0, sp));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  out["scheme"] = scheme;
  if (sp == std::string_view::npos) return out;
  std::string_view rest = h.substr(sp + 1);
  while (!rest.empty()) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == ',')) rest.remove_prefix(1);
    size_t eq = rest.find('=');
    if (eq == std::string_view::npos) break;
    std::string key(rest.substr(0, eq));
    rest.remove_prefix(eq + 1);
    std::string value;
    if (!rest.empty() && rest.front() == '"') {
      rest.remove_prefix(1);
      while (!rest.empty() && rest.front() != '"') {
        if (rest.front() == '\\' && rest.size() > 1) rest.remove_prefix(1);
        value.push_back(rest.front());
        rest.remove_prefix(1);
      }
      if (!rest.empty()) rest.remove_prefix(1);
    } else {
      size_t comma = rest.find(',');
      value = std::string(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma);
    }
    out[key] = value;
  }
  return out;
}

std::string UrlEscape(const std::string& s) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  char* e = curl_easy_escape(curl.get(), s.c_str(), static_cast<int>(s.size()));
  std::string out(e);
  curl_free(e);
  return out;
}

// Follows a Bearer challenge to the token server; returns the JSON answer.
common::Result<HttpResult> RequestToken(const std::string& www_authenticate,
                                        const std::string& user, const std::string& pass) {
  auto c = ParseChallenge(www_authenticate);
  if (c["scheme"] != "bearer" || c["realm"].empty())
    return common::MakeError(common::Errc::kInvalidArgument,
                             "not a bearer challenge: " + www_authenticate);
  std::string url = c["realm"] + "?service=" + UrlEscape(c["service"]);
  if (!c["scope"].empty()) url += "&scope=" + UrlEscape(c["scope"]);
  return Request(url, {.method = "GET",
                       .headers = {},
                       .ca = {},
                       .basic_user = user,
                       .basic_pass = pass,
                       .bearer = {}});
}

std::string TokenFrom(const HttpResult& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("token") || !j["token"].is_string()) return {};
  return j["token"].get<std::string>();
}

// The claims of a JWT (its middle segment), without verifying it.
nlohmann::json JwtClaims(const std::string& jwt) {
  size_t a = jwt.find('.');
  size_t b = jwt.find('.', a + 1);
  std::string seg = jwt.substr(a + 1, b - a - 1);
  for (char& ch : seg) {
    if (ch == '-')
      ch = '+';
    else if (ch == '_')
      ch = '/';
  }
  auto raw = fixtures::Base64Decode(seg);
  if (!raw) return nullptr;
  return nlohmann::json::parse(*raw, nullptr, false);
}

// GET url as the registry's variant demands: Basic for htpasswd; for token
// auth, the 401 → WWW-Authenticate → token → Bearer dance.
common::Result<HttpResult> AuthedRequest(const RegistryFixture& reg, const std::string& url,
                                         RequestOptions opt) {
  opt.ca = reg.ca_cert_path();
  switch (reg.auth()) {
    case RegistryAuth::kNone:
      return Request(url, opt);
    case RegistryAuth::kHtpasswd:
      opt.basic_user = reg.username();
      opt.basic_pass = reg.password();
      return Request(url, opt);
    case RegistryAuth::kToken: {
      ASSIGN_OR_RETURN(HttpResult first, Request(url, opt));
      if (first.status != 401) return first;
      ASSIGN_OR_RETURN(HttpResult tok, RequestToken(first.Header("www-authenticate"),
                                                    reg.username(), reg.password()));
      if (tok.status != 200)
        return common::MakeError(
            common::Errc::kUnauthenticated,
            "token server: HTTP " + std::to_string(tok.status) + ": " + tok.body);
      opt.bearer = TokenFrom(tok);
      return Request(url, opt);
    }
  }
  return common::MakeError(common::Errc::kInternal, "unknown auth");
}

struct Pushed {
  fixtures::BuiltImage image;
  std::string skopeo_digest;  // what --digestfile reported
};

// Builds the standard fixture image in `work` and pushes it as
// fixture/app:`tag` with skopeo, using the fixture's flags.
void BuildAndPush(const RegistryFixture& reg, const std::filesystem::path& work,
                  const std::string& tag, Pushed* out) {
  const std::filesystem::path layout = work / "layout";
  auto built = fixtures::WriteImage(layout, fixtures::FixtureImageSpec(), "v1");
  ASSERT_TRUE(built) << built.error().message;
  auto flags = reg.SkopeoFlags("dest");
  ASSERT_TRUE(flags) << flags.error().message;
  std::vector<std::string> argv = {"skopeo",       "--insecure-policy",
                                   "copy",         "--preserve-digests",
                                   "--digestfile", (work / "digest").string()};
  argv.insert(argv.end(), flags->begin(), flags->end());
  argv.push_back("oci:" + layout.string() + ":v1");
  argv.push_back("docker://" + reg.host() + "/" + kRepo + ":" + tag);
  auto run = fixtures::RunCommand(
      argv, {.env = {}, .cwd = work, .stdin_data = {}, .timeout = std::chrono::seconds(60)});
  ASSERT_TRUE(run) << run.error().message;
  ASSERT_EQ(run->exit_code, 0) << run->Describe(argv) << "\nregistry log:\n" << reg.LogTail();
  auto digest = common::ReadFile(work / "digest");
  ASSERT_TRUE(digest) << digest.error().message;
  out->image = std::move(*built);
  out->skopeo_digest = *digest;
  while (!out->skopeo_digest.empty() &&
         std::isspace(static_cast<unsigned char>(out->skopeo_digest.back())))
    out->skopeo_digest.pop_back();
}

// --- the variants -----------------------------------------------------------

struct Variant {
  const char* name;
  bool tls;
  RegistryAuth auth;
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }
std::string VariantName(const ::testing::TestParamInfo<Variant>& info) { return info.param.name; }

constexpr Variant kPlain{"plain", false, RegistryAuth::kNone};
constexpr Variant kTls{"tls", true, RegistryAuth::kNone};
constexpr Variant kHtpasswd{"htpasswd", false, RegistryAuth::kHtpasswd};
constexpr Variant kToken{"token", false, RegistryAuth::kToken};

// Every suite is instantiated with the prefix "harness" so that
// `ctest -R harness` selects them all.
class HarnessTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override { REQUIRE_TOOLS("docker-registry", "skopeo"); }
  common::Result<RegistryFixture> StartRegistry() const {
    return RegistryFixture::Start(Options(GetParam().tls, GetParam().auth));
  }
};

// A push by skopeo with the wrong password; returns skopeo's result.
common::Result<fixtures::CommandResult> PushWithWrongPassword(const RegistryFixture& reg,
                                                              const std::filesystem::path& work) {
  ASSIGN_OR_RETURN(fixtures::BuiltImage built,
                   fixtures::WriteImage(work / "layout", fixtures::FixtureImageSpec(), "v1"));
  (void)built;
  std::vector<std::string> argv = {"skopeo",
                                   "--insecure-policy",
                                   "copy",
                                   "--dest-tls-verify=false",
                                   "--dest-creds=" + reg.username() + ":not-the-password",
                                   "oci:" + (work / "layout").string() + ":v1",
                                   "docker://" + reg.host() + "/" + kRepo + ":v1"};
  return fixtures::RunCommand(
      argv, {.env = {}, .cwd = work, .stdin_data = {}, .timeout = std::chrono::seconds(60)});
}

RequestOptions Bearer(const std::string& token) {
  return {.method = "GET",
          .headers = {},
          .ca = {},
          .basic_user = {},
          .basic_pass = {},
          .bearer = token};
}

using HarnessPushTest = HarnessTest;

TEST_P(HarnessPushTest, SkopeoPushThenCurlGetManifestMatchesDigest) {
  const Variant& v = GetParam();
  auto reg = StartRegistry();
  ASSERT_TRUE(reg) << reg.error().message;
  EXPECT_EQ(reg->host(), "127.0.0.1:" + std::to_string(reg->port()));
  EXPECT_EQ(reg->base_url(), std::string(v.tls ? "https" : "http") + "://" + reg->host());
  EXPECT_EQ(!reg->ca_cert_path().empty(), v.tls);

  auto work = common::TempDir::Create("gantry-harness");
  ASSERT_TRUE(work) << work.error().message;
  Pushed pushed;
  ASSERT_NO_FATAL_FAILURE(BuildAndPush(*reg, work->path(), "v1", &pushed));
  const std::string want = pushed.image.manifest.digest.str();
  EXPECT_EQ(pushed.skopeo_digest, want) << "--preserve-digests must keep the manifest digest";

  const std::string url = reg->base_url() + "/v2/" + kRepo + "/manifests/v1";
  RequestOptions accept{.method = "GET",
                        .headers = {std::string("Accept: ") + kManifestAccept},
                        .ca = {},
                        .basic_user = {},
                        .basic_pass = {},
                        .bearer = {}};
  auto got = AuthedRequest(*reg, url, accept);
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->status, 200) << got->body << "\nregistry log:\n" << reg->LogTail();
  EXPECT_EQ(got->Header("docker-content-digest"), want);
  EXPECT_EQ(common::Digest::Sha256Of(got->body).str(), want);
  EXPECT_EQ(got->Header("content-type"), pushed.image.manifest.media_type);
  EXPECT_EQ(static_cast<int64_t>(got->body.size()), pushed.image.manifest.size);

  // The same manifest by digest, and a layer blob, byte for byte.
  auto by_digest =
      AuthedRequest(*reg, reg->base_url() + "/v2/" + kRepo + "/manifests/" + want, accept);
  ASSERT_TRUE(by_digest) << by_digest.error().message;
  EXPECT_EQ(by_digest->status, 200);
  EXPECT_EQ(common::Digest::Sha256Of(by_digest->body).str(), want);
  ASSERT_FALSE(pushed.image.layers.empty());
  const auto& layer = pushed.image.layers.front();
  auto blob =
      AuthedRequest(*reg, reg->base_url() + "/v2/" + kRepo + "/blobs/" + layer.digest.str(), {});
  ASSERT_TRUE(blob) << blob.error().message;
  EXPECT_EQ(blob->status, 200);
  EXPECT_EQ(common::Digest::Sha256Of(blob->body), layer.digest);

  if (v.auth == RegistryAuth::kToken) {
    // skopeo and the test both went through the token server with
    // credentials, and skopeo asked for push.
    auto reqs = reg->token_server()->requests();
    ASSERT_FALSE(reqs.empty());
    bool push_scope = false;
    for (const auto& r : reqs) {
      EXPECT_TRUE(r.had_authorization) << r.query;
      EXPECT_EQ(r.status, 200) << r.query;
      for (const auto& s : r.scopes)
        push_scope |= s.starts_with(std::string("repository:") + kRepo + ":") &&
                      s.find("push") != std::string::npos;
    }
    EXPECT_TRUE(push_scope) << "skopeo should have asked for a push scope";
  }
}

INSTANTIATE_TEST_SUITE_P(harness, HarnessPushTest,
                         ::testing::Values(kPlain, kTls, kHtpasswd, kToken), VariantName);

// --- credentials refused ------------------------------------------------------

using HarnessAuthTest = HarnessTest;

TEST_P(HarnessAuthTest, MissingCredentialsGet401WithChallenge) {
  auto reg = StartRegistry();
  ASSERT_TRUE(reg) << reg.error().message;
  for (const std::string path : {"/v2/", "/v2/fixture/app/manifests/v1"}) {
    auto anon = Request(reg->base_url() + path);
    ASSERT_TRUE(anon) << anon.error().message;
    EXPECT_EQ(anon->status, 401) << path;
    auto c = ParseChallenge(anon->Header("www-authenticate"));
    if (reg->auth() == RegistryAuth::kHtpasswd) {
      EXPECT_EQ(c["scheme"], "basic") << path;
    } else {
      EXPECT_EQ(c["scheme"], "bearer") << path;
      EXPECT_EQ(c["realm"], reg->token_server()->realm()) << path;
      EXPECT_EQ(c["service"], reg->token_server()->service()) << path;
    }
  }
}

TEST_P(HarnessAuthTest, WrongPasswordIsRefused) {
  auto reg = StartRegistry();
  ASSERT_TRUE(reg) << reg.error().message;
  const std::string v2 = reg->base_url() + "/v2/";
  RequestOptions wrong{.method = "GET",
                       .headers = {},
                       .ca = {},
                       .basic_user = reg->username(),
                       .basic_pass = "not-the-password",
                       .bearer = {}};
  if (reg->auth() == RegistryAuth::kHtpasswd) {
    auto r = Request(v2, wrong);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, 401);
  } else {
    fixtures::TokenServer* ts = reg->token_server();
    auto anon = Request(v2);
    ASSERT_TRUE(anon) << anon.error().message;
    ts->ClearRequests();
    auto r = RequestToken(anon->Header("www-authenticate"), reg->username(), "not-the-password");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, 401);
    EXPECT_TRUE(TokenFrom(*r).empty());
    auto reqs = ts->requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_TRUE(reqs[0].had_authorization);
    EXPECT_EQ(reqs[0].username, reg->username());
    EXPECT_EQ(reqs[0].status, 401);
    ts->ClearRequests();
  }

  auto work = common::TempDir::Create("gantry-harness");
  ASSERT_TRUE(work) << work.error().message;
  auto run = PushWithWrongPassword(*reg, work->path());
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_NE(run->exit_code, 0) << "skopeo push with a wrong password succeeded";
  if (reg->auth() == RegistryAuth::kToken) {
    bool refused = false;
    for (const auto& r : reg->token_server()->requests())
      refused |= r.had_authorization && r.status == 401;
    EXPECT_TRUE(refused) << "skopeo's credentials should have reached the token server";
  }
}

INSTANTIATE_TEST_SUITE_P(harness, HarnessAuthTest, ::testing::Values(kHtpasswd, kToken),
                         VariantName);

// --- token specifics ----------------------------------------------------------

using HarnessTokenTest = HarnessTest;

TEST_P(HarnessTokenTest, AnonymousTokenGrantsPullOnly) {
  auto reg = StartRegistry();
  ASSERT_TRUE(reg) << reg.error().message;
  fixtures::TokenServer* ts = reg->token_server();
  const std::string scope = std::string("repository:") + kRepo + ":pull,push";
  const std::string token_url =
      ts->realm() + "?service=" + UrlEscape(ts->service()) + "&scope=" + UrlEscape(scope);
  const std::string uploads = reg->base_url() + "/v2/" + kRepo + "/blobs/uploads/";

  auto anon_tok = Request(token_url);
  ASSERT_TRUE(anon_tok) << anon_tok.error().message;
  ASSERT_EQ(anon_tok->status, 200) << anon_tok->body;
  auto body = nlohmann::json::parse(anon_tok->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << anon_tok->body;
  EXPECT_EQ(body["token"], body["access_token"]);
  EXPECT_EQ(body["expires_in"], 300);
  EXPECT_TRUE(body["issued_at"].is_string());
  auto claims = JwtClaims(TokenFrom(*anon_tok));
  ASSERT_TRUE(claims.is_object());
  EXPECT_EQ(claims["aud"], ts->service());
  EXPECT_EQ(claims["iss"], ts->issuer());
  EXPECT_EQ(claims["sub"], "");
  ASSERT_EQ(claims["access"].size(), 1u);
  EXPECT_EQ(claims["access"][0]["type"], "repository");
  EXPECT_EQ(claims["access"][0]["name"], kRepo);
  EXPECT_EQ(claims["access"][0]["actions"], nlohmann::json::array({"pull"}));

  auto anon_push = Request(uploads, {.method = "POST",
                                     .headers = {},
                                     .ca = {},
                                     .basic_user = {},
                                     .basic_pass = {},
                                     .bearer = TokenFrom(*anon_tok)});
  ASSERT_TRUE(anon_push) << anon_push.error().message;
  EXPECT_EQ(anon_push->status, 401) << "an anonymous token must not allow pushing";

  auto user_tok = Request(token_url, {.method = "GET",
                                      .headers = {},
                                      .ca = {},
                                      .basic_user = reg->username(),
                                      .basic_pass = reg->password(),
                                      .bearer = {}});
  ASSERT_TRUE(user_tok) << user_tok.error().message;
  ASSERT_EQ(user_tok->status, 200) << user_tok->body;
  auto user_push = Request(uploads, {.method = "POST",
                                     .headers = {},
                                     .ca = {},
                                     .basic_user = {},
                                     .basic_pass = {},
                                     .bearer = TokenFrom(*user_tok)});
  ASSERT_TRUE(user_push) << user_push.error().message;
  EXPECT_EQ(user_push->status, 202) << user_push->body << "\n" << reg->LogTail();

  auto reqs = ts->requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_FALSE(reqs[0].had_authorization);
  EXPECT_TRUE(reqs[1].had_authorization);
  EXPECT_EQ(reqs[1].scopes, std::vector<std::string>{scope});
}

TEST_P(HarnessTokenTest, TokenNotSignedByRootCertIsRefused) {
  auto reg = StartRegistry();
  ASSERT_TRUE(reg) << reg.error().message;
  fixtures::TokenServer* ts = reg->token_server();
  const std::string v2 = reg->base_url() + "/v2/";
  std::vector<fixtures::TokenAccess> access = {{"repository", kRepo, {"pull"}}};

  // Garbage, and a well-formed token from another key with the same
  // issuer and service: both refused.
  auto garbage = Request(v2, Bearer("e30.e30.AAAA"));
  ASSERT_TRUE(garbage) << garbage.error().message;
  EXPECT_EQ(garbage->status, 401);

  fixtures::TokenServerOptions other_opts;
  other_opts.service = ts->service();
  other_opts.issuer = ts->issuer();
  auto other = fixtures::TokenServer::Start(other_opts);
  ASSERT_TRUE(other) << other.error().message;
  auto foreign = (*other)->IssueToken("intruder", access);
  ASSERT_TRUE(foreign) << foreign.error().message;
  auto refused = Request(v2, Bearer(*foreign));
  ASSERT_TRUE(refused) << refused.error().message;
  EXPECT_EQ(refused->status, 401);

  // The same claims from the registry's own token server are accepted.
  auto own = ts->IssueToken(reg->username(), access);
  ASSERT_TRUE(own) << own.error().message;
  auto accepted = Request(v2, Bearer(*own));
  ASSERT_TRUE(accepted) << accepted.error().message;
  EXPECT_EQ(accepted->status, 200) << accepted->body << "\n" << reg->LogTail();
}

INSTANTIATE_TEST_SUITE_P(harness, HarnessTokenTest, ::testing::Values(kToken), VariantName);

// --- TLS and lifecycle -------------------------------------------------------

using HarnessTlsTest = HarnessTest;

TEST_P(HarnessTlsTest, UnknownCaIsRejected) {
  auto reg = StartRegistry();
  ASSERT_TRUE(reg) << reg.error().message;
  auto work = common::TempDir::Create("gantry-harness");
  ASSERT_TRUE(work) << work.error().message;
  // An empty CA bundle: the registry's certificate cannot verify.
  auto empty_ca = work->path() / "empty.pem";
  ASSERT_TRUE(common::AtomicWriteFile(empty_ca, ""));
  RequestOptions opt{.method = "GET",
                     .headers = {},
                     .ca = empty_ca,
                     .basic_user = {},
                     .basic_pass = {},
                     .bearer = {}};
  EXPECT_FALSE(Request(reg->base_url() + "/v2/", opt))
      << "TLS must not verify without the fixture's CA";
  opt.ca = reg->ca_cert_path();
  auto ok = Request(reg->base_url() + "/v2/", opt);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->status, 200);
  // Also by name: the certificate carries a DNS SAN for localhost.
  auto by_name = Request("https://localhost:" + std::to_string(reg->port()) + "/v2/", opt);
  ASSERT_TRUE(by_name) << by_name.error().message;
  EXPECT_EQ(by_name->status, 200);

  // The docker-style certs dir holds the same CA.
  auto certs = reg->CertsDir();
  ASSERT_TRUE(certs) << certs.error().message;
  auto ca = common::ReadFile(*certs / reg->host() / "ca.crt");
  ASSERT_TRUE(ca) << ca.error().message;
  auto want = common::ReadFile(reg->ca_cert_path());
  ASSERT_TRUE(want) << want.error().message;
  EXPECT_EQ(*ca, *want);
}

INSTANTIATE_TEST_SUITE_P(harness, HarnessTlsTest, ::testing::Values(kTls), VariantName);

using HarnessFixtureTest = HarnessTest;

TEST_P(HarnessFixtureTest, StopsRegistryAndRemovesDirectory) {
  std::filesystem::path dir;
  pid_t pid = -1;
  std::string url;
  {
    auto reg = StartRegistry();
    ASSERT_TRUE(reg) << reg.error().message;
    dir = reg->dir();
    pid = reg->pid();
    url = reg->base_url() + "/v2/";
    ASSERT_GT(pid, 0);
    auto r = Request(url);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(std::filesystem::exists(reg->log_path()));
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
  // Reaped: it is no longer a child of ours.
  errno = 0;
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_FALSE(Request(url)) << "the registry should no longer listen";
}

INSTANTIATE_TEST_SUITE_P(harness, HarnessFixtureTest, ::testing::Values(kPlain), VariantName);

}  // namespace
