// `gantry serve --metrics-listen 127.0.0.1:0`: the real server, scraped
// over HTTP around CRI pulls from the registry fixture. The counters move
// by exactly what happened (a pull that succeeds, one of a missing image,
// a pull of an image already present, in bytes and in requests; the
// registry door's answers), the store gauges match the pushed image, and `promtool check metrics`
// (Debian's prometheus package) accepts the scrape.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include "integration/cri/cri_helpers.h"
#include "integration/mirror/mirror_helpers.h"

namespace critest {
namespace {

using Scrape = std::map<std::string, double>;  // series (name{labels}) → value

// Every sample line of a text-format body.
Scrape Parse(const std::string& body) {
  Scrape out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

// The value of `series` in `s`; a failure naming it (and NaN) when the
// scrape does not have it.
double V(const Scrape& s, const std::string& series) {
  auto it = s.find(series);
  if (it != s.end()) return it->second;
  std::string have;
  for (const auto& [k, v] : s) have += "\n  " + k;
  ADD_FAILURE() << "no series " << series << " in the scrape; it has:" << have;
  return std::nan("");
}

// The status `method` `path` answers on 127.0.0.1:`port`; 0 (and a
// failure) when the request could not be made.
int StatusOf(uint16_t port, const std::string& method, const std::string& path) {
  auto r = mirrortest::Http(port, method, path);
  if (!r) {
    ADD_FAILURE() << method << " " << path << ": " << r.error().message;
    return 0;
  }
  return r->status;
}

class CriMetrics : public CriTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(CriTest::SetUp());
    ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
    ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
        *reg_, gantry_->dir() / "layout", fixtures::FixtureImageSpec(), "fixture/app:v1", &image_));
    ASSERT_NO_FATAL_FAILURE(CriServer::Start(
        *gantry_, {"--metrics-listen", "127.0.0.1:0", "--registry-listen", "127.0.0.1:0"}, &srv_));
    port_ = LoggedPort("metrics serving address=127.0.0.1:");
    door_port_ = LoggedPort("registry door serving address=127.0.0.1:");
    ASSERT_NE(port_, 0) << "no metrics address logged:\n" << srv_->LogText();
    ASSERT_NE(door_port_, 0) << "no door address logged:\n" << srv_->LogText();
  }

  // The port after `mark` in the server's log, once it is there (20 s at
  // most); 0 if it never is.
  uint16_t LoggedPort(std::string_view mark) {
    uint16_t port = 0;
    (void)fixtures::WaitUntil(
        [&] {
          std::string log = srv_->LogText();
          size_t at = log.find(mark);
          if (at == std::string::npos) return false;
          port = static_cast<uint16_t>(std::atoi(log.c_str() + at + mark.size()));
          return port != 0;
        },
        std::chrono::seconds(20));
    return port;
  }

  std::string Ref(const std::string& tag) const { return reg_->host() + "/fixture/app:" + tag; }

  // GET /metrics; fails the test unless it answers 200 in the text format.
  void Get(std::string* body, Scrape* out) {
    auto r = mirrortest::Http(port_, "GET", "/metrics");
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    *body = r->body;
    *out = Parse(r->body);
  }

  std::unique_ptr<fixtures::RegistryFixture> reg_;
  fixtures::BuiltImage image_;
  std::unique_ptr<CriServer> srv_;
  uint16_t port_ = 0;
  uint16_t door_port_ = 0;
};

TEST_F(CriMetrics, CountersMoveExactlyAcrossPullsAndPromtoolAcceptsTheScrape) {
  const std::string kPulls = "gantry_pulls_total{result=\"";
  const std::string kPullImage = "{method=\"runtime.v1.ImageService/PullImage\"";
  std::string body;
  Scrape before;
  ASSERT_NO_FATAL_FAILURE(Get(&body, &before));
  for (const char* result : {"success", "not_found", "unauthenticated", "unavailable", "data_loss",
                             "resource_exhausted", "permission_denied", "cancelled", "other"})
    EXPECT_EQ(V(before, kPulls + result + "\"}"), 0) << result << " is there from the start";
  EXPECT_EQ(V(before, "gantry_images"), 0);
  EXPECT_EQ(V(before, "gantry_store_content_bytes"), 0);
  EXPECT_EQ(V(before, "gantry_build_info{version=\"" GANTRY_TEST_VERSION "\"}"), 1);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(V(before, "gantry_process_start_time_seconds"), now);
  EXPECT_GT(V(before, "gantry_process_start_time_seconds"), now - 300);

  std::string image_ref;
  ASSERT_TRUE(Pull(*srv_, Ref("v1"), &image_ref).ok()) << srv_->LogText();
  grpc::Status missing = Pull(*srv_, Ref("missing"), &image_ref);
  ASSERT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND) << missing.error_message();

  int64_t fetched = image_.config.size;  // config and layers: the blobs a pull downloads
  for (const auto& l : image_.layers) fetched += l.size;
  Scrape after;
  ASSERT_NO_FATAL_FAILURE(Get(&body, &after));
  EXPECT_EQ(V(after, kPulls + "success\"}"), 1);
  EXPECT_EQ(V(after, kPulls + "not_found\"}"), 1);
  EXPECT_EQ(V(after, kPulls + "other\"}"), 0);
  EXPECT_EQ(V(after, "gantry_pull_duration_seconds_count"), 2);
  EXPECT_EQ(V(after, "gantry_pull_duration_seconds_bucket{le=\"+Inf\"}"), 2);
  EXPECT_GT(V(after, "gantry_pull_duration_seconds_sum"), 0);
  EXPECT_EQ(V(after, "gantry_pull_bytes_total{source=\"upstream\"}"), fetched);
  EXPECT_EQ(V(after, "gantry_pull_bytes_total{source=\"present\"}"), 0);
  EXPECT_EQ(V(after, "gantry_cri_requests_total" + kPullImage + ",code=\"OK\"}"), 1);
  EXPECT_EQ(V(after, "gantry_cri_requests_total" + kPullImage + ",code=\"NOT_FOUND\"}"), 1);
  EXPECT_EQ(V(after, "gantry_cri_request_duration_seconds_count" + kPullImage + "}"), 2);
  EXPECT_EQ(V(after, "gantry_images"), 1);
  EXPECT_EQ(V(after, "gantry_store_blobs"), 2 + static_cast<double>(image_.layers.size()));
  EXPECT_EQ(V(after, "gantry_store_content_bytes"), image_.manifest.size + fetched);

  // Again: every blob is in the store, nothing is downloaded.
  ASSERT_TRUE(Pull(*srv_, Ref("v1"), &image_ref).ok()) << srv_->LogText();
  Scrape again;
  ASSERT_NO_FATAL_FAILURE(Get(&body, &again));
  EXPECT_EQ(V(again, kPulls + "success\"}"), 2);
  EXPECT_EQ(V(again, "gantry_pull_bytes_total{source=\"upstream\"}"), fetched);
  EXPECT_EQ(V(again, "gantry_pull_bytes_total{source=\"present\"}"), fetched);
  EXPECT_EQ(V(again, "gantry_cri_requests_total" + kPullImage + ",code=\"OK\"}"), 2);
  EXPECT_EQ(V(again, "gantry_images"), 1);

  // The registry door counts its answers by method and status.
  const std::string kDoor = "gantry_registry_door_requests_total{method=\"";
  EXPECT_EQ(again.count(kDoor + "GET\",code=\"200\"}"), 0u);
  ASSERT_EQ(StatusOf(door_port_, "GET", "/v2/"), 200);
  ASSERT_EQ(StatusOf(door_port_, "GET", "/v2/"), 200);
  ASSERT_EQ(StatusOf(door_port_, "HEAD", "/v2/gantry.test/nope/manifests/v1"), 404);
  ASSERT_EQ(StatusOf(door_port_, "DELETE", "/v2/"), 405);
  Scrape door;
  ASSERT_NO_FATAL_FAILURE(Get(&body, &door));
  EXPECT_EQ(V(door, kDoor + "GET\",code=\"200\"}"), 2);
  EXPECT_EQ(V(door, kDoor + "HEAD\",code=\"404\"}"), 1);
  EXPECT_EQ(V(door, kDoor + "other\",code=\"405\"}"), 1);

  fixtures::RunOptions stdin_body;
  stdin_body.stdin_data = body;
  auto lint = fixtures::RunCommand({"promtool", "check", "metrics"}, stdin_body);
  ASSERT_TRUE(lint) << lint.error().message;
  EXPECT_EQ(lint->exit_code, 0) << lint->out << lint->err << "\n" << body;
}

TEST_F(CriMetrics, OnlyGetAndHeadOfMetricsAreAnswered) {
  EXPECT_EQ(StatusOf(port_, "GET", "/"), 404);
  EXPECT_EQ(StatusOf(port_, "GET", "/metrics/x"), 404);
  EXPECT_EQ(StatusOf(port_, "POST", "/metrics"), 405);
  auto head = mirrortest::Http(port_, "HEAD", "/metrics");
  ASSERT_TRUE(head) << head.error().message;
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
}

TEST_F(CriMetrics, ARemoteAddressIsRefusedWithoutAllowRemote) {
  auto r = gantry_->Run({"serve", "--listen", "unix://" + (gantry_->dir() / "r.sock").string(),
                         "--metrics-listen", "0.0.0.0:0"});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 2) << r->err;
  EXPECT_NE(r->err.find("--metrics-allow-remote"), std::string::npos) << r->err;
}

}  // namespace
}  // namespace critest
