// The fault proxy in front of a real docker-registry: plain forwarding
// (including the rewritten upload Location), then each fault kind met by a
// libcurl client the way a registry client would meet it.

#include "fixtures/fault_proxy.h"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/digest.h"
#include "fixtures/http_server.h"
#include "fixtures/process.h"
#include "fixtures/registry_fixture.h"
#include "fixtures/require.h"

namespace fixtures {
namespace {

using namespace std::chrono_literals;
using common::Digest;
using common::Errc;
using common::MakeError;
using common::Result;
using Kind = FaultRule::Kind;

constexpr char kRepo[] = "fault/proxy";
constexpr size_t kBlobSize = 2 << 20;

// Deterministic incompressible bytes (xorshift64).
std::string TestBlob(size_t n) {
  std::string out(n, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (char& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x >> 56);
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

struct CurlEasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct Request {
  std::string method = "GET";
  std::vector<std::string> headers{};  // "Name: value"
  std::string body{};
  bool follow = false;
  bool unrestricted_auth = false;
  long low_speed_limit = 0;  // bytes/s; 0 = no floor
  long low_speed_time = 0;   // seconds
  long timeout_ms = 20000;
};

struct Reply {
  CURLcode code = CURLE_OK;
  long status = 0;
  HttpHeaders headers;  // of the last response
  std::string body;
  std::string effective_url;
  Clock::duration elapsed{};

  std::optional<std::string> Header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (EqualsIgnoreCase(k, name)) return v;
    return std::nullopt;
  }
  std::string Describe() const {
    return std::string(curl_easy_strerror(code)) + ", HTTP " + std::to_string(status) + ", " +
           std::to_string(body.size()) + " body bytes: " + body.substr(0, 200);
  }
};

size_t CollectBody(char* data, size_t size, size_t nmemb, void* user) {
  static_cast<Reply*>(user)->body.append(data, size * nmemb);
  return size * nmemb;
}

size_t CollectHeader(char* data, size_t size, size_t nmemb, void* user) {
  auto* reply = static_cast<Reply*>(user);
  std::string_view line(data, size * nmemb);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    reply->headers.clear();  // a new response (after a redirect)
    return size * nmemb;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * nmemb;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  reply->headers.emplace_back(line.substr(0, colon), value);
  return size * nmemb;
}

Reply Do(const std::string& url, const Request& r) {
  Reply reply;
  std::unique_ptr<CURL, CurlEasyDeleter> curl(curl_easy_init());
  if (!curl) {
    reply.code = CURLE_FAILED_INIT;
    return reply;
  }
  CURL* c = curl.get();
  std::unique_ptr<curl_slist, CurlSlistDeleter> headers;
  for (const std::string& h : r.headers) {
    curl_slist* l = curl_slist_append(headers.get(), h.c_str());
    if (l == nullptr) std::abort();
    (void)headers.release();
    headers.reset(l);
  }
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &CollectBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &CollectHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &reply);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r.timeout_ms);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, r.follow ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, r.unrestricted_auth ? 1L : 0L);
  if (r.low_speed_limit > 0) {
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, r.low_speed_limit);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, r.low_speed_time);
  }
  if (r.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (r.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r.body.data());
  }
  auto start = Clock::now();
  reply.code = curl_easy_perform(c);
  reply.elapsed = Clock::now() - start;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
  char* effective = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK && effective)
    reply.effective_url = effective;
  return reply;
}

std::string BasicAuth(const std::string& user, const std::string& password) {
  return "Authorization: Basic " + Base64Encode(user + ":" + password);
}

// The value of `key` in a WWW-Authenticate challenge (key="value", …).
std::string ChallengeParam(const std::string& challenge, const std::string& key) {
  size_t at = challenge.find(key + "=\"");
  if (at == std::string::npos) return "";
  at += key.size() + 2;
  size_t end = challenge.find('"', at);
  return end == std::string::npos ? "" : challenge.substr(at, end - at);
}

std::string UrlEscape(const std::string& s) {
  std::unique_ptr<CURL, CurlEasyDeleter> curl(curl_easy_init());
  char* e = curl_easy_escape(curl.get(), s.c_str(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

// Answers a 401 challenge: Basic credentials, or a token from the Bearer
// realm (anonymous when `user` is empty).
Result<std::string> AuthFor(const Reply& challenged, const std::string& user,
                            const std::string& password) {
  std::string challenge = challenged.Header("WWW-Authenticate").value_or("");
  if (challenge.starts_with("Basic")) return BasicAuth(user, password);
  if (!challenge.starts_with("Bearer"))
    return MakeError(Errc::kUnauthenticated, "unknown challenge `" + challenge + "`");
  std::string url = ChallengeParam(challenge, "realm") +
                    "?service=" + UrlEscape(ChallengeParam(challenge, "service")) +
                    "&scope=" + UrlEscape(ChallengeParam(challenge, "scope"));
  Request token_req;
  if (!user.empty()) token_req.headers.push_back(BasicAuth(user, password));
  Reply token = Do(url, token_req);
  if (token.code != CURLE_OK || token.status != 200)
    return MakeError(Errc::kUnauthenticated, "token: " + token.Describe());
  auto json = nlohmann::json::parse(token.body, nullptr, false);
  if (!json.is_object() || !json.contains("token"))
    return MakeError(Errc::kUnauthenticated, "token: no token in " + token.body);
  return "Authorization: Bearer " + json["token"].get<std::string>();
}

// A monolithic blob upload (POST, then PUT with the bytes) to `base_url`,
// answering a 401 challenge with `user`/`password`. Returns the Location
// the POST answered with.
Result<std::string> PushBlob(const std::string& base_url, const std::string& data,
                             const Digest& digest, const std::string& user = "",
                             const std::string& password = "") {
  std::string post_url = base_url + "/v2/" + kRepo + "/blobs/uploads/";
  Request post{.method = "POST"};
  Reply started = Do(post_url, post);
  if (started.status == 401) {
    ASSIGN_OR_RETURN(std::string auth, AuthFor(started, user, password));
    post.headers.push_back(auth);
    started = Do(post_url, post);
  }
  if (started.code != CURLE_OK || started.status != 202)
    return MakeError(Errc::kUnavailable, "start upload: " + started.Describe());
  std::string location = started.Header("Location").value_or("");
  std::string put_url = location.starts_with("/") ? base_url + location : location;
  put_url += (put_url.find('?') == std::string::npos ? "?" : "&") + ("digest=" + digest.str());
  Request put{.method = "PUT", .headers = post.headers, .body = data};
  put.headers.push_back("Content-Type: application/octet-stream");
  Reply done = Do(put_url, put);
  if (done.code != CURLE_OK || done.status != 201)
    return MakeError(Errc::kUnavailable, "finish upload: " + done.Describe());
  return location;
}

class FaultProxyTest : public ::testing::Test {
 protected:
  // Starts the registry (failing when it or its tools are missing), the
  // proxy in front of it and, with `push`, uploads the test blob directly.
  void StartAll(RegistryAuth auth, bool push) {
    REQUIRE_TOOLS("docker-registry", "htpasswd", "openssl");
    RegistryOptions options;
    options.auth = auth;
    auto reg = RegistryFixture::Start(options);
    ASSERT_TRUE(reg) << reg.error().message;
    reg_.emplace(std::move(*reg));
    auto proxy = FaultProxy::Start(reg_->base_url());
    ASSERT_TRUE(proxy) << proxy.error().message;
    proxy_ = std::move(*proxy);
    blob_ = TestBlob(kBlobSize);
    digest_ = Digest::Sha256Of(blob_);
    if (push) {
      auto pushed = PushBlob(reg_->base_url(), blob_, digest_, reg_->username(), reg_->password());
      ASSERT_TRUE(pushed) << pushed.error().message << "\n" << reg_->LogTail();
    }
  }

  std::string BlobPath() const { return std::string("/v2/") + kRepo + "/blobs/" + digest_.str(); }
  std::string BlobUrl() const { return proxy_->base_url() + BlobPath(); }

  std::optional<RegistryFixture> reg_;
  std::unique_ptr<FaultProxy> proxy_;
  std::string blob_;
  Digest digest_;
};

#define START_ALL(auth, push)                          \
  do {                                                 \
    ASSERT_NO_FATAL_FAILURE(StartAll((auth), (push))); \
    if (IsSkipped()) return;                           \
  } while (0)

TEST(FaultProxyStartTest, RejectsUpstreamThatIsNotPlainHttp) {
  auto proxy = FaultProxy::Start("https://127.0.0.1:1");
  ASSERT_FALSE(proxy);
  EXPECT_EQ(proxy.error().code, Errc::kInvalidArgument);
}

TEST_F(FaultProxyTest, ForwardsRequestsAndRewritesUploadLocation) {
  START_ALL(RegistryAuth::kNone, /*push=*/false);
  auto location = PushBlob(proxy_->base_url(), blob_, digest_);
  ASSERT_TRUE(location) << location.error().message;
  EXPECT_TRUE(location->starts_with(proxy_->base_url() + "/v2/")) << *location;

  Reply get = Do(BlobUrl(), {});
  ASSERT_EQ(get.code, CURLE_OK) << get.Describe();
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(Digest::Sha256Of(get.body), digest_);
  EXPECT_EQ(get.Header("Docker-Content-Digest"), digest_.str());
  EXPECT_TRUE(get.Header("Content-Type").has_value());

  Reply head = Do(BlobUrl(), {.method = "HEAD"});
  ASSERT_EQ(head.code, CURLE_OK) << head.Describe();
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("Content-Length"), std::to_string(kBlobSize));
  EXPECT_EQ(head.Header("Docker-Content-Digest"), digest_.str());

  Reply range = Do(BlobUrl(), {.headers = {"Range: bytes=10-19"}});
  ASSERT_EQ(range.code, CURLE_OK) << range.Describe();
  EXPECT_EQ(range.status, 206);
  EXPECT_EQ(range.body, blob_.substr(10, 10));
  EXPECT_EQ(range.Header("Content-Range"), "bytes 10-19/" + std::to_string(kBlobSize));

  Reply missing = Do(proxy_->base_url() + "/v2/" + kRepo + "/manifests/nope", {});
  EXPECT_EQ(missing.status, 404) << missing.Describe();

  EXPECT_EQ(proxy_->CountRequests("POST", "/blobs/uploads/"), 1);
  EXPECT_EQ(proxy_->CountRequests("PUT", "/blobs/uploads/"), 1);
  EXPECT_EQ(proxy_->CountRequests("GET", BlobPath()), 2);
  EXPECT_EQ(proxy_->CountRequests("HEAD", BlobPath()), 1);
  EXPECT_EQ(proxy_->CountRequests("", ""), 6);
  for (const ProxyLogEntry& e : proxy_->Log()) {
    EXPECT_EQ(e.fault, "") << e.method << " " << e.path;
    EXPECT_FALSE(e.via_blob_host);
  }
  std::vector<ProxyLogEntry> log = proxy_->Log();
  EXPECT_EQ(log[2].body_bytes_sent, static_cast<int64_t>(kBlobSize));
  EXPECT_EQ(log[4].range, "bytes=10-19");
  EXPECT_EQ(log[4].status, 206);
}

TEST_F(FaultProxyTest, CutMidwayEndsTransferEarlyAndRangeResumes) {
  START_ALL(RegistryAuth::kNone, true);
  constexpr int64_t kCut = 512 << 10;
  proxy_->AddRule({.kind = Kind::kCutMidway, .path_contains = digest_.str(), .bytes = kCut});

  Reply cut = Do(BlobUrl(), {});
  EXPECT_EQ(cut.code, CURLE_PARTIAL_FILE) << cut.Describe();
  EXPECT_EQ(cut.status, 200);
  EXPECT_EQ(cut.body.size(), static_cast<size_t>(kCut));

  Reply rest =
      Do(BlobUrl(), {.headers = {"Range: bytes=" + std::to_string(cut.body.size()) + "-"}});
  ASSERT_EQ(rest.code, CURLE_OK) << rest.Describe();
  EXPECT_EQ(rest.status, 206);
  EXPECT_EQ(Digest::Sha256Of(cut.body + rest.body), digest_);

  std::vector<ProxyLogEntry> log = proxy_->Log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].fault, "cut_midway");
  EXPECT_EQ(log[0].body_bytes_sent, kCut);
  EXPECT_LT(log[0].body_bytes_sent, static_cast<int64_t>(kBlobSize));
  EXPECT_EQ(log[1].fault, "");
  EXPECT_EQ(log[1].range, "bytes=524288-");
  EXPECT_EQ(log[1].status, 206);
  EXPECT_EQ(log[1].body_bytes_sent, static_cast<int64_t>(kBlobSize) - kCut);
}

TEST_F(FaultProxyTest, StatusRulesAnswer503WithRetryAfterAnd429) {
  START_ALL(RegistryAuth::kNone, true);
  proxy_->AddRule(
      {.kind = Kind::kStatus, .path_contains = "/blobs/", .status = 503, .retry_after = 3});
  proxy_->AddRule({.kind = Kind::kStatus, .path_contains = "/blobs/", .times = 2, .status = 429});

  Reply unavailable = Do(BlobUrl(), {});
  EXPECT_EQ(unavailable.status, 503) << unavailable.Describe();
  EXPECT_EQ(unavailable.Header("Retry-After"), "3");
  EXPECT_NE(unavailable.body.find("UNAVAILABLE"), std::string::npos) << unavailable.body;

  for (int i = 0; i < 2; ++i) {
    Reply limited = Do(BlobUrl(), {});
    EXPECT_EQ(limited.status, 429) << limited.Describe();
    EXPECT_FALSE(limited.Header("Retry-After").has_value());
  }
  Reply ok = Do(BlobUrl(), {});
  EXPECT_EQ(ok.status, 200) << ok.Describe();
  EXPECT_EQ(Digest::Sha256Of(ok.body), digest_);

  std::vector<ProxyLogEntry> log = proxy_->Log();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].status, 503);
  EXPECT_EQ(log[1].status, 429);
  EXPECT_EQ(log[2].status, 429);
  EXPECT_EQ(log[3].status, 200);
  EXPECT_EQ(log[0].fault, "status");
  EXPECT_EQ(log[3].fault, "");
}

TEST_F(FaultProxyTest, StallIsEndedByClientSpeedFloorAndStopIsPrompt) {
  START_ALL(RegistryAuth::kNone, true);
  // libcurl measures speed over a window of about 5 s, so a large prefix
  // would hold the average above the floor that long; 512 B in the first
  // second is already below it.
  constexpr int64_t kSent = 512;
  proxy_->AddRule({.kind = Kind::kStall, .path_contains = digest_.str(), .bytes = kSent});

  Reply stalled = Do(BlobUrl(), {.low_speed_limit = 1024, .low_speed_time = 1});
  EXPECT_EQ(stalled.code, CURLE_OPERATION_TIMEDOUT) << stalled.Describe();
  EXPECT_EQ(stalled.body.size(), static_cast<size_t>(kSent));
  EXPECT_LT(stalled.elapsed, 5s);

  std::vector<ProxyLogEntry> log = proxy_->Log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].fault, "stall");
  EXPECT_EQ(log[0].body_bytes_sent, kSent);

  // The stalled handler is still waiting; Stop must wake it.
  auto start = Clock::now();
  proxy_->Stop();
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST_F(FaultProxyTest, TrickleIsEndedByClientSpeedFloor) {
  START_ALL(RegistryAuth::kNone, true);
  proxy_->AddRule({.kind = Kind::kTrickle, .path_contains = digest_.str(), .interval = 50ms});

  Reply trickled = Do(BlobUrl(), {.low_speed_limit = 1024, .low_speed_time = 1});
  EXPECT_EQ(trickled.code, CURLE_OPERATION_TIMEDOUT) << trickled.Describe();
  EXPECT_EQ(trickled.status, 200);
  EXPECT_GT(trickled.body.size(), 0u);
  EXPECT_LT(trickled.body.size(), 200u);
  EXPECT_EQ(trickled.body, blob_.substr(0, trickled.body.size()));
  EXPECT_LT(trickled.elapsed, 5s);

  std::vector<ProxyLogEntry> log = proxy_->Log();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].fault, "trickle");
  EXPECT_GE(log[0].body_bytes_sent, static_cast<int64_t>(trickled.body.size()));
  EXPECT_LT(log[0].body_bytes_sent, static_cast<int64_t>(kBlobSize));

  auto start = Clock::now();
  proxy_->Stop();
  EXPECT_LT(Clock::now() - start, 2s);
}

TEST_F(FaultProxyTest, IgnoreRangeAnswersWholeBodyWith200) {
  START_ALL(RegistryAuth::kNone, true);
  proxy_->AddRule({.kind = Kind::kIgnoreRange, .path_contains = digest_.str()});

  Reply whole = Do(BlobUrl(), {.headers = {"Range: bytes=1000-"}});
  ASSERT_EQ(whole.code, CURLE_OK) << whole.Describe();
  EXPECT_EQ(whole.status, 200);
  EXPECT_FALSE(whole.Header("Content-Range").has_value());
  EXPECT_EQ(Digest::Sha256Of(whole.body), digest_);

  Reply honoured = Do(BlobUrl(), {.headers = {"Range: bytes=1000-"}});
  EXPECT_EQ(honoured.status, 206) << honoured.Describe();
  EXPECT_EQ(honoured.body, blob_.substr(1000));

  std::vector<ProxyLogEntry> log = proxy_->Log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].fault, "ignore_range");
  EXPECT_EQ(log[0].range, "bytes=1000-");
  EXPECT_EQ(log[0].status, 200);
  EXPECT_EQ(log[1].fault, "");
}

TEST_F(FaultProxyTest, WrongBytesKeepLengthButChangeDigest) {
  START_ALL(RegistryAuth::kNone, true);
  proxy_->AddRule({.kind = Kind::kWrongBytes, .path_contains = digest_.str()});

  Reply corrupt = Do(BlobUrl(), {});
  ASSERT_EQ(corrupt.code, CURLE_OK) << corrupt.Describe();
  EXPECT_EQ(corrupt.status, 200);
  EXPECT_EQ(corrupt.body.size(), kBlobSize);
  EXPECT_NE(Digest::Sha256Of(corrupt.body), digest_);
  EXPECT_EQ(corrupt.Header("Docker-Content-Digest"), digest_.str());

  Reply good = Do(BlobUrl(), {});
  EXPECT_EQ(Digest::Sha256Of(good.body), digest_);
  EXPECT_EQ(proxy_->Log().at(0).fault, "wrong_bytes");
}

// libcurl 7.83+ treats another port as another host: a custom Authorization
// header is not resent after the redirect unless CURLOPT_UNRESTRICTED_AUTH.
TEST_F(FaultProxyTest, RedirectToBlobHostWithoutResendingAuthorization) {
  START_ALL(RegistryAuth::kNone, true);
  proxy_->AddRule({.kind = Kind::kRedirect, .path_contains = digest_.str()});

  Reply followed = Do(BlobUrl(), {.headers = {"Authorization: Bearer opaque"}, .follow = true});
  ASSERT_EQ(followed.code, CURLE_OK) << followed.Describe();
  EXPECT_EQ(followed.status, 200);
  EXPECT_TRUE(followed.effective_url.starts_with(proxy_->blob_base_url()))
      << followed.effective_url;
  EXPECT_EQ(Digest::Sha256Of(followed.body), digest_);

  std::vector<ProxyLogEntry> log = proxy_->Log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].fault, "redirect");
  EXPECT_EQ(log[0].status, 307);
  EXPECT_TRUE(log[0].had_authorization);
  EXPECT_FALSE(log[0].via_blob_host);
  EXPECT_TRUE(log[1].via_blob_host);
  EXPECT_FALSE(log[1].had_authorization);
  EXPECT_EQ(log[1].status, 200);
  EXPECT_EQ(log[1].path, BlobPath());
  EXPECT_EQ(log[1].body_bytes_sent, static_cast<int64_t>(kBlobSize));
}

TEST_F(FaultProxyTest, RedirectWithUnrestrictedAuthIsLoggedAsAuthorized) {
  START_ALL(RegistryAuth::kNone, true);
  proxy_->AddRule({.kind = Kind::kRedirect, .path_contains = digest_.str()});

  Reply followed =
      Do(BlobUrl(),
         {.headers = {"Authorization: Bearer opaque"}, .follow = true, .unrestricted_auth = true});
  ASSERT_EQ(followed.code, CURLE_OK) << followed.Describe();
  EXPECT_EQ(Digest::Sha256Of(followed.body), digest_);
  std::vector<ProxyLogEntry> log = proxy_->Log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_TRUE(log[1].via_blob_host);
  EXPECT_TRUE(log[1].had_authorization);
}

TEST_F(FaultProxyTest, RedirectBehindHtpasswdUsesCredentialsOfRedirectedRequest) {
  START_ALL(RegistryAuth::kHtpasswd, true);
  proxy_->AddRule({.kind = Kind::kRedirect, .path_contains = digest_.str()});

  Reply challenged = Do(BlobUrl(), {.follow = true});
  EXPECT_EQ(challenged.status, 401) << challenged.Describe();
  EXPECT_TRUE(challenged.Header("WWW-Authenticate").value_or("").starts_with("Basic"));

  std::string auth = BasicAuth(reg_->username(), reg_->password());
  Reply followed = Do(BlobUrl(), {.headers = {auth}, .follow = true});
  ASSERT_EQ(followed.code, CURLE_OK) << followed.Describe();
  EXPECT_EQ(followed.status, 200) << followed.Describe();
  EXPECT_EQ(Digest::Sha256Of(followed.body), digest_);

  // A path nobody was redirected for gets no credentials from the blob host.
  Reply direct = Do(proxy_->blob_base_url() + "/v2/" + kRepo + "/blobs/" +
                        Digest::Sha256Of(std::string_view("other")).str(),
                    {});
  EXPECT_EQ(direct.status, 401) << direct.Describe();

  std::vector<ProxyLogEntry> log = proxy_->Log();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].status, 401);
  EXPECT_EQ(log[0].fault, "");  // the challenge leaves the rule for later
  EXPECT_EQ(log[1].fault, "redirect");
  EXPECT_TRUE(log[1].had_authorization);
  EXPECT_TRUE(log[2].via_blob_host);
  EXPECT_FALSE(log[2].had_authorization);
  EXPECT_EQ(log[2].status, 200);
  EXPECT_TRUE(log[3].via_blob_host);
}

TEST_F(FaultProxyTest, RedirectBehindTokenAuthUsesTokenOfRedirectedRequest) {
  START_ALL(RegistryAuth::kToken, true);
  proxy_->AddRule({.kind = Kind::kRedirect, .path_contains = digest_.str()});

  Reply challenged = Do(BlobUrl(), {});
  ASSERT_EQ(challenged.status, 401) << challenged.Describe();
  auto auth = AuthFor(challenged, "", "");  // anonymous pull
  ASSERT_TRUE(auth) << auth.error().message;

  Reply followed = Do(BlobUrl(), {.headers = {*auth}, .follow = true});
  ASSERT_EQ(followed.code, CURLE_OK) << followed.Describe();
  EXPECT_EQ(followed.status, 200) << followed.Describe();
  EXPECT_EQ(Digest::Sha256Of(followed.body), digest_);

  std::vector<ProxyLogEntry> log = proxy_->Log();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[1].fault, "redirect");
  EXPECT_TRUE(log[2].via_blob_host);
  EXPECT_FALSE(log[2].had_authorization);
}

TEST_F(FaultProxyTest, RulesMatchMethodAndPathForTheirNumberOfUses) {
  START_ALL(RegistryAuth::kNone, true);
  proxy_->AddRule({.kind = Kind::kStatus,
                   .path_contains = "/blobs/",
                   .method = "",
                   .times = -1,
                   .status = 500});

  EXPECT_EQ(Do(BlobUrl(), {.method = "HEAD"}).status, 500);
  EXPECT_EQ(Do(BlobUrl(), {}).status, 500);
  EXPECT_EQ(Do(BlobUrl(), {}).status, 500);
  EXPECT_EQ(Do(proxy_->base_url() + "/v2/", {}).status, 200);

  proxy_->ClearRules();
  proxy_->AddRule({.kind = Kind::kStatus, .path_contains = "/blobs/", .method = "GET"});
  EXPECT_EQ(Do(BlobUrl(), {.method = "HEAD"}).status, 200);
  EXPECT_EQ(Do(BlobUrl(), {}).status, 503);
  EXPECT_EQ(Do(BlobUrl(), {}).status, 200);

  EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/"), 4);
  EXPECT_EQ(proxy_->CountRequests("HEAD", "/blobs/"), 2);
  proxy_->ClearLog();
  EXPECT_TRUE(proxy_->Log().empty());
}

TEST_F(FaultProxyTest, RandomFaultsFollowTheMenuAndAreCounted) {
  START_ALL(RegistryAuth::kNone, true);
  proxy_->SetRandomFaults(
      {.probability = 1, .menu = {{.kind = Kind::kStatus, .path_contains = "/blobs/"}}});
  EXPECT_EQ(Do(BlobUrl(), {}).status, 503);
  // No menu entry matches /v2/: it passes through.
  EXPECT_EQ(Do(proxy_->base_url() + "/v2/", {}).status, 200);

  // A cut at a random point: fewer bytes than the blob, counted.
  proxy_->SetRandomFaults(
      {.probability = 1, .seed = 3, .menu = {{.kind = Kind::kCutMidway, .bytes = -1}}});
  Reply cut = Do(BlobUrl(), {});
  EXPECT_EQ(cut.code, CURLE_PARTIAL_FILE) << cut.Describe();
  EXPECT_LT(cut.body.size(), kBlobSize);
  // A 404 is not a 2xx answer: the fault does not apply and is not counted.
  EXPECT_EQ(Do(proxy_->base_url() + "/v2/" + kRepo + "/manifests/nope", {}).status, 404);

  proxy_->SetRandomFaults({});
  Reply whole = Do(BlobUrl(), {});
  ASSERT_EQ(whole.code, CURLE_OK) << whole.Describe();
  EXPECT_EQ(Digest::Sha256Of(whole.body), digest_);

  FaultStats stats = proxy_->Stats();
  EXPECT_EQ(stats.requests, 5);
  EXPECT_EQ(stats.faults, (std::map<std::string, int64_t>{{"status_503", 1}, {"cut_midway", 1}}));
  // The stats outlive the log.
  proxy_->ClearLog();
  EXPECT_EQ(proxy_->Stats().requests, 5);
}

TEST_F(FaultProxyTest, RandomFaultsRepeatForTheSameSeed) {
  START_ALL(RegistryAuth::kNone, true);
  auto statuses = [&] {
    proxy_->SetRandomFaults({.probability = 0.5,
                             .seed = 42,
                             .menu = {{.kind = Kind::kStatus, .method = "", .status = 429}}});
    std::vector<long> out;
    for (int i = 0; i < 24; ++i) out.push_back(Do(BlobUrl(), {.method = "HEAD"}).status);
    return out;
  };
  std::vector<long> first = statuses();
  EXPECT_EQ(statuses(), first);
  EXPECT_NE(std::count(first.begin(), first.end(), 429), 0);
  EXPECT_NE(std::count(first.begin(), first.end(), 200), 0);
  EXPECT_EQ(proxy_->Stats().faults.at("status_429"),
            2 * std::count(first.begin(), first.end(), 429));
}

TEST_F(FaultProxyTest, BoundedStallClosesTheConnection) {
  START_ALL(RegistryAuth::kNone, true);
  proxy_->AddRule(
      {.kind = Kind::kStall, .path_contains = digest_.str(), .bytes = 1000, .stall_for = 200ms});
  // No speed floor on the client: only the proxy ends the stall.
  Reply stalled = Do(BlobUrl(), {});
  EXPECT_EQ(stalled.code, CURLE_PARTIAL_FILE) << stalled.Describe();
  EXPECT_EQ(stalled.body.size(), 1000u);
  EXPECT_EQ(proxy_->Stats().faults.at("stall"), 1);
}

TEST_F(FaultProxyTest, RateLimitIsSharedByAllConnections) {
  START_ALL(RegistryAuth::kNone, true);
  constexpr int64_t kRate = 8'000'000;  // bytes/s
  constexpr int kClients = 3;
  proxy_->SetRateLimit(kRate);
  std::vector<Reply> replies(kClients);
  std::vector<std::thread> clients;
  const auto start = Clock::now();
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back([&, i] { replies[i] = Do(BlobUrl(), {}); });
  for (auto& t : clients) t.join();
  const auto wall = Clock::now() - start;
  for (const Reply& r : replies) {
    ASSERT_EQ(r.code, CURLE_OK) << r.Describe();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(Digest::Sha256Of(r.body), digest_);
  }
  const int64_t total = kClients * static_cast<int64_t>(kBlobSize);
  FaultStats stats = proxy_->Stats();
  EXPECT_EQ(stats.rate_limited_bytes, total);
  EXPECT_EQ(stats.blob_bytes, total);
  // One slot per chunk, in one schedule for the three connections: the last
  // chunk's slot is at least all the other bytes' time at the rate after the
  // first one's (per-connection buckets would give a third of it).
  const std::chrono::nanoseconds bound((total - kRateLimitChunk) * 1'000'000'000 / kRate);
  EXPECT_GE(stats.rate_limited_span, bound);
  EXPECT_GT(stats.rate_limit_waits, total / kRateLimitChunk / 2);
  // What the schedule promises is kept: no chunk went out before its slot.
  EXPECT_GE(wall, bound);
  for (const ProxyLogEntry& e : proxy_->Log())
    EXPECT_EQ(e.body_bytes_sent, static_cast<int64_t>(kBlobSize)) << e.method << " " << e.path;

  // HEAD answers have no body to cap; without the cap nothing more is
  // counted through it, but blob bytes still are.
  Reply head = Do(BlobUrl(), {.method = "HEAD"});
  EXPECT_EQ(head.status, 200) << head.Describe();
  proxy_->SetRateLimit(0);
  Reply free_get = Do(BlobUrl(), {});
  ASSERT_EQ(free_get.code, CURLE_OK) << free_get.Describe();
  EXPECT_EQ(Digest::Sha256Of(free_get.body), digest_);
  stats = proxy_->Stats();
  EXPECT_EQ(stats.rate_limited_bytes, total);
  EXPECT_EQ(stats.blob_bytes, total + static_cast<int64_t>(kBlobSize));
}

}  // namespace
}  // namespace fixtures
