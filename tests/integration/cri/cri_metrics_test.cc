// `gantry serve --metrics-listen 127.0.0.1:0`: the real server, scraped
// over HTTP around CRI pulls from the registry fixture. The counters move
// by exactly what happened (a pull that succeeds, one of a missing image,
// a pull of an image already present, in bytes and in requests; the
// registry door's answers), the store gauges match the pushed image, and `promtool check metrics`
// (Debian's prometheus package) accepts the scrape. `gantry pull` and
// `gantry prune` on the same store are counted by the next scrape (the
// store's counters), each class of failed pull by its result; a real
// Prometheus server scrapes the endpoint and answers a PromQL query; the
// Grafana dashboard (contrib/grafana/gantry.json) names only metrics a
// scrape has.

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "common/fs.h"
#include "fixtures/misbehaving_registry.h"
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

// Runs `gantry <args…>` on the server's store; fails the test unless it
// exits with `want` (0 by default; -1: any non-zero status).
void RunGantry(pulltest::Gantry& g, const std::vector<std::string>& args, int want = 0) {
  auto r = g.Run(args);
  ASSERT_TRUE(r) << r.error().message;
  if (want < 0)
    EXPECT_NE(r->exit_code, 0) << args[0] << " " << args[1] << ": " << r->err;
  else
    EXPECT_EQ(r->exit_code, want) << args[0] << " " << args[1] << ": " << r->err;
}

// The sum of every series of `name` (any labels) in `s`.
double Sum(const Scrape& s, const std::string& name) {
  double total = 0;
  for (const auto& [series, v] : s)
    if (series == name || series.starts_with(name + "{")) total += v;
  return total;
}

TEST_F(CriMetrics, CliPullsAndPrunesOnTheSameStoreAreCountedByTheNextScrape) {
  const std::string kPulls = "gantry_pulls_total{result=\"";
  int64_t fetched = image_.config.size;
  for (const auto& l : image_.layers) fetched += l.size;
  std::string body;

  ASSERT_NO_FATAL_FAILURE(RunGantry(*gantry_, {"pull", "-q", Ref("v1")}));
  ASSERT_NO_FATAL_FAILURE(RunGantry(*gantry_, {"pull", "-q", Ref("missing")}, -1));
  Scrape pulled;
  ASSERT_NO_FATAL_FAILURE(Get(&body, &pulled));
  EXPECT_EQ(V(pulled, kPulls + "success\"}"), 1);
  EXPECT_EQ(V(pulled, kPulls + "not_found\"}"), 1);
  EXPECT_EQ(V(pulled, "gantry_pull_bytes_total{source=\"upstream\"}"), fetched);
  EXPECT_EQ(V(pulled, "gantry_pull_bytes_total{source=\"mirror\"}"), 0);
  EXPECT_EQ(V(pulled, "gantry_pull_bytes_total{source=\"peer\"}"), 0);
  EXPECT_EQ(V(pulled, "gantry_pull_bytes_total{source=\"present\"}"), 0);
  EXPECT_EQ(V(pulled, "gantry_unpack_layers_total"), static_cast<double>(image_.layers.size()));
  EXPECT_GT(V(pulled, "gantry_unpack_bytes_total"), 0);
  EXPECT_EQ(V(pulled, "gantry_pull_duration_seconds_count"), 0)
      << "the histogram counts the server's own pulls only";
  EXPECT_EQ(V(pulled, "gantry_images"), 1);
  EXPECT_EQ(Sum(pulled, "gantry_snapshots"), static_cast<double>(image_.layers.size()))
      << "one committed snapshot per layer, nothing else";
  EXPECT_GT(V(pulled, "gantry_store_bytes{part=\"content\"}"), 0);

  // Again, now present; a CRI pull adds to the same counters.
  ASSERT_NO_FATAL_FAILURE(RunGantry(*gantry_, {"pull", "-q", Ref("v1")}));
  std::string image_ref;
  ASSERT_TRUE(Pull(*srv_, Ref("v1"), &image_ref).ok()) << srv_->LogText();
  Scrape again;
  ASSERT_NO_FATAL_FAILURE(Get(&body, &again));
  EXPECT_EQ(V(again, kPulls + "success\"}"), 3);
  EXPECT_EQ(V(again, "gantry_pull_bytes_total{source=\"upstream\"}"), fetched);
  EXPECT_EQ(V(again, "gantry_pull_bytes_total{source=\"present\"}"), 2 * fetched);
  EXPECT_EQ(V(again, "gantry_pull_duration_seconds_count"), 1);
  EXPECT_EQ(V(again, "gantry_unpack_layers_total"), static_cast<double>(image_.layers.size()));

  // Untagged and collected by gantry prune: its run and what it freed.
  EXPECT_EQ(V(again, "gantry_gc_runs_total{trigger=\"prune\"}"), 0);
  ASSERT_NO_FATAL_FAILURE(RunGantry(*gantry_, {"rmi", Ref("v1")}));
  ASSERT_NO_FATAL_FAILURE(RunGantry(*gantry_, {"prune", "--dry-run"}));
  ASSERT_NO_FATAL_FAILURE(RunGantry(*gantry_, {"prune"}));
  Scrape pruned;
  ASSERT_NO_FATAL_FAILURE(Get(&body, &pruned));
  EXPECT_EQ(V(pruned, "gantry_gc_runs_total{trigger=\"prune\"}"), 1) << "a dry run is no run";
  EXPECT_EQ(V(pruned, "gantry_gc_runs_total{trigger=\"reclaimer\"}"), 0);
  EXPECT_EQ(V(pruned, "gantry_gc_freed_bytes_total{kind=\"content\"}"),
            image_.manifest.size + fetched);
  EXPECT_GT(V(pruned, "gantry_gc_freed_bytes_total{kind=\"snapshots\"}"), 0);
  EXPECT_EQ(V(pruned, "gantry_images"), 0);
  EXPECT_EQ(Sum(pruned, "gantry_snapshots"), 0);

  // A CRI pull, RemoveImage, and the server's reclaimer collects.
  ASSERT_TRUE(Pull(*srv_, Ref("v1"), &image_ref).ok()) << srv_->LogText();
  runtime::v1::RemoveImageRequest rm;
  rm.mutable_image()->set_image(Ref("v1"));
  runtime::v1::RemoveImageResponse rm_resp;
  ASSERT_TRUE(srv_->images->RemoveImage(Ctx().get(), rm, &rm_resp).ok());
  Scrape reclaimed;
  EXPECT_TRUE(fixtures::WaitUntil(
      [&] {
        Get(&body, &reclaimed);
        return reclaimed["gantry_gc_runs_total{trigger=\"reclaimer\"}"] >= 1;
      },
      std::chrono::seconds(30)))
      << body;
  EXPECT_EQ(V(reclaimed, "gantry_gc_runs_total{trigger=\"reclaimer\"}"), 1);
  EXPECT_EQ(V(reclaimed, "gantry_unpack_duration_seconds_count"),
            static_cast<double>(image_.layers.size()))
      << "the server's one pull that unpacked (the CLI's are not in the histogram)";
  EXPECT_EQ(V(reclaimed, "gantry_gc_freed_bytes_total{kind=\"content\"}"),
            2 * (image_.manifest.size + fetched));

  fixtures::RunOptions stdin_body;
  stdin_body.stdin_data = body;
  auto lint = fixtures::RunCommand({"promtool", "check", "metrics"}, stdin_body);
  ASSERT_TRUE(lint) << lint.error().message;
  EXPECT_EQ(lint->exit_code, 0) << lint->out << lint->err << "\n" << body;
}

TEST_F(CriMetrics, EachClassOfFailedPullIsCountedByItsResult) {
  auto hostile = fixtures::MisbehavingRegistry::Start();
  ASSERT_TRUE(hostile) << hostile.error().message;
  fixtures::MisbehavingRegistry& reg = **hostile;
  auto img = reg.AddImage("hostile/app", "v1", fixtures::FixtureImageSpec());
  ASSERT_TRUE(img) << img.error().message;
  ASSERT_GE(img->layers.size(), 2u) << "--max-layers 1 must refuse the fixture image";
  for (const char* tag : {"u", "p", "x"}) {
    auto tagged = reg.AddImage("hostile/app", tag, fixtures::FixtureImageSpec());
    ASSERT_TRUE(tagged) << tagged.error().message;
  }
  reg.Script({.path_contains = "/manifests/u", .answer = fixtures::Answer::Status(401)});
  reg.Script({.path_contains = "/manifests/p", .answer = fixtures::Answer::Status(403)});
  reg.Script({.path_contains = "/manifests/x", .answer = fixtures::Answer::Status(503, 0)});
  const std::string repo = reg.host() + "/hostile/app";
  ASSERT_NO_FATAL_FAILURE(RunGantry(*gantry_, {"pull", "-q", repo + ":u"}, -1));
  ASSERT_NO_FATAL_FAILURE(RunGantry(*gantry_, {"pull", "-q", repo + ":p"}, -1));
  ASSERT_NO_FATAL_FAILURE(RunGantry(*gantry_, {"pull", "-q", repo + ":x"}, -1));
  ASSERT_NO_FATAL_FAILURE(
      RunGantry(*gantry_, {"pull", "-q", "--max-layers", "1", repo + ":v1"}, -1));
  // A layer whose bytes are not its digest's: data loss. Its first
  // answer is a 503: one retry.
  const fixtures::BlobInfo& layer = img->layers.front();
  const std::string blob = "/blobs/" + layer.digest.str();
  reg.Script({.path_contains = blob, .times = 1, .answer = fixtures::Answer::Status(503, 0)});
  reg.Script({.path_contains = blob,
              .answer = fixtures::Answer::Json(std::string(static_cast<size_t>(layer.size), 'x'))});
  ASSERT_NO_FATAL_FAILURE(RunGantry(*gantry_, {"pull", "-q", repo + ":v1"}, -1));

  std::string body;
  Scrape s;
  ASSERT_NO_FATAL_FAILURE(Get(&body, &s));
  const std::string kPulls = "gantry_pulls_total{result=\"";
  for (const char* result :
       {"unauthenticated", "permission_denied", "unavailable", "resource_exhausted", "data_loss"})
    EXPECT_EQ(V(s, kPulls + result + "\"}"), 1) << result << "\n" << body;
  EXPECT_EQ(V(s, kPulls + "success\"}"), 0);
  EXPECT_EQ(V(s, kPulls + "other\"}"), 0);
  EXPECT_EQ(V(s, "gantry_blob_fetch_retries_total"), 1);
  EXPECT_EQ(V(s, "gantry_pull_bytes_total{source=\"upstream\"}"), 0)
      << "failed pulls count no bytes";
}

TEST_F(CriMetrics, BytesAMirrorSentAreCountedAsMirror) {
  auto mirror = fixtures::MisbehavingRegistry::Start();
  ASSERT_TRUE(mirror) << mirror.error().message;
  auto copy = (*mirror)->AddImage("fixture/app", "v1", fixtures::FixtureImageSpec());
  ASSERT_TRUE(copy) << copy.error().message;
  ASSERT_EQ(copy->manifest.digest, image_.manifest.digest) << "the same deterministic image";
  const fs::path dir = gantry_->registry_config() / reg_->host();
  ASSERT_TRUE(common::MkdirAll(dir, 0755));
  ASSERT_TRUE(common::AtomicWriteFile(dir / "hosts.toml",
                                      "server = \"http://" + reg_->host() + "\"\n\n[host.\"" +
                                          (*mirror)->base_url() +
                                          "\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
                                      0644));
  ASSERT_NO_FATAL_FAILURE(RunGantry(*gantry_, {"pull", "-q", Ref("v1")}));
  EXPECT_GE((*mirror)->Count("GET", "/blobs/"), 1) << "the blobs came from the mirror";

  int64_t fetched = image_.config.size;
  for (const auto& l : image_.layers) fetched += l.size;
  std::string body;
  Scrape s;
  ASSERT_NO_FATAL_FAILURE(Get(&body, &s));
  EXPECT_EQ(V(s, "gantry_pull_bytes_total{source=\"mirror\"}"), fetched);
  EXPECT_EQ(V(s, "gantry_pull_bytes_total{source=\"upstream\"}"), 0);
}

// The metric names a PromQL expression refers to.
std::set<std::string> MetricNames(const std::string& expr) {
  static const std::regex kName("gantry_[a-zA-Z0-9_]+");
  std::set<std::string> out;
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), kName);
       it != std::sregex_iterator(); ++it)
    out.insert(it->str());
  return out;
}

// Every "expr" string anywhere in `j`.
void CollectExprs(const nlohmann::json& j, std::vector<std::string>* out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k == "expr" && v.is_string())
        out->push_back(v.get<std::string>());
      else
        CollectExprs(v, out);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) CollectExprs(v, out);
  }
}

TEST_F(CriMetrics, TheGrafanaDashboardNamesOnlyMetricsAScrapeHas) {
  std::ifstream in(std::string(GANTRY_SOURCE_DIR) + "/contrib/grafana/gantry.json");
  ASSERT_TRUE(in) << "contrib/grafana/gantry.json";
  const nlohmann::json dash = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(dash.is_discarded()) << "the dashboard is not JSON";
  std::vector<std::string> exprs;
  CollectExprs(dash, &exprs);
  ASSERT_GE(exprs.size(), 8u) << "pull rate and latency, bytes, store, errors, CRI latency";

  std::string image_ref;
  ASSERT_TRUE(Pull(*srv_, Ref("v1"), &image_ref).ok()) << srv_->LogText();
  ASSERT_EQ(StatusOf(door_port_, "GET", "/v2/"), 200);  // the door's counter gets a child
  std::string body;
  Scrape s;
  ASSERT_NO_FATAL_FAILURE(Get(&body, &s));
  std::set<std::string> series;  // every sample's name, histograms' suffixed ones included
  for (const auto& [k, v] : s) series.insert(k.substr(0, k.find('{')));
  std::set<std::string> used;
  for (const std::string& e : exprs) {
    for (const std::string& name : MetricNames(e)) {
      used.insert(name);
      EXPECT_TRUE(series.contains(name)) << name << " in `" << e << "` is not in a scrape";
    }
  }
  for (const char* want :
       {"gantry_pulls_total", "gantry_pull_duration_seconds_bucket", "gantry_pull_bytes_total",
        "gantry_store_bytes", "gantry_cri_request_duration_seconds_bucket"})
    EXPECT_TRUE(used.contains(want)) << "the dashboard shows " << want;
}

TEST_F(CriMetrics, ARealPrometheusScrapesTheServerAndCountsThePull) {
  auto prom_port = fixtures::FreeLoopbackPort();
  ASSERT_TRUE(prom_port) << prom_port.error().message;
  const fs::path dir = gantry_->dir() / "prometheus";
  fs::create_directories(dir / "data");
  {
    std::ofstream cfg(dir / "prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n  - job_name: gantry\n    scrape_interval: 1s\n"
        << "    static_configs:\n      - targets: [\"127.0.0.1:" << port_ << "\"]\n";
  }
  fixtures::SpawnOptions spawn;
  spawn.argv = {"prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
                "--storage.tsdb.path=" + (dir / "data").string(),
                "--web.listen-address=127.0.0.1:" + std::to_string(*prom_port)};
  spawn.stdout_path = dir / "log";
  spawn.stderr_path = dir / "log";
  auto prom = fixtures::Child::Spawn(spawn);
  ASSERT_TRUE(prom) << prom.error().message;

  std::string image_ref;
  ASSERT_TRUE(Pull(*srv_, Ref("v1"), &image_ref).ok()) << srv_->LogText();

  // gantry_pulls_total{result="success"} over the query API, until a
  // scrape after the pull has been stored (60 s at most).
  const std::string query =
      "/api/v1/query?query=gantry_pulls_total%7Bresult%3D%22success%22%2Cjob%3D%22gantry%22%7D";
  std::string last;
  const bool counted = fixtures::WaitUntil(
      [&] {
        auto r = mirrortest::Http(*prom_port, "GET", query);
        if (!r || r->status != 200) return false;
        last = r->body;
        auto j = nlohmann::json::parse(r->body, nullptr, false);
        if (j.is_discarded() || j.value("status", "") != "success") return false;
        const auto& result = j["data"]["result"];
        return result.is_array() && result.size() == 1 && result[0]["value"][1] == "1";
      },
      std::chrono::seconds(60), std::chrono::milliseconds(250));
  std::string log;
  {
    std::ifstream l(dir / "log");
    log.assign(std::istreambuf_iterator<char>(l), {});
  }
  EXPECT_TRUE(counted) << "last answer: " << last << "\nprometheus log:\n" << log;
  auto targets = mirrortest::Http(*prom_port, "GET", "/api/v1/targets");
  ASSERT_TRUE(targets) << targets.error().message;
  EXPECT_NE(targets->body.find("\"health\":\"up\""), std::string::npos) << targets->body;
  auto rc = prom->Terminate(std::chrono::seconds(10));
  ASSERT_TRUE(rc) << rc.error().message;
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
