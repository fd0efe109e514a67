// The registry door of `gantry serve` (--registry-listen), end to end: the
// real gantry-serve on 127.0.0.1 and a free port, over a store `gantry
// pull` filled from Debian's docker-registry; skopeo as the client that
// must pull from it, a raw HTTP client for headers, ranges and hostile
// requests. Suites are named Mirror*.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "integration/mirror/mirror_helpers.h"

namespace mirrortest {
namespace {

using namespace std::chrono_literals;

class MirrorDoor : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MirrorStore::Create(&store_));
    ASSERT_NO_FATAL_FAILURE(Door::Start(*store_.gantry, &door_));
  }

  HttpReply Get(const std::string& path,
                const std::vector<std::pair<std::string, std::string>>& headers = {},
                const std::string& method = "GET") {
    auto r = Http(door_->port(), method, path, headers);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : HttpReply{};
  }

  fixtures::CommandResult Skopeo(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"skopeo"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = fixtures::RunCommand(
        argv, {.env = {{"REGISTRY_AUTH_FILE", (store_.gantry->dir() / "auth.json").string()}},
               .cwd = store_.gantry->dir(),
               .stdin_data = {},
               .timeout = 60s,
               .measure_peak_rss = false});
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : fixtures::CommandResult{};
  }

  // docker://127.0.0.1:DOOR/gantry.test/fixture/app:v1
  std::string DoorRef() const {
    return "docker://" + door_->host() + "/" + kHost + "/" + kRepo + ":" + kTag;
  }
  std::string ManifestPath() const {
    return std::string("/v2/") + kRepo + "/manifests/" + kTag + "?ns=" + kHost;
  }

  MirrorStore store_;
  std::unique_ptr<Door> door_;
};

TEST_F(MirrorDoor, SkopeoInspectsAndCopiesFromTheDoorWithTheRegistryStopped) {
  // Nothing can come from the upstream now.
  store_.registry->Stop();
  store_.proxy->ClearLog();

  auto inspect = Skopeo({"inspect", "--tls-verify=false", "--no-creds", DoorRef()});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err << "\n" << door_->LogText();
  auto j = nlohmann::json::parse(inspect.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << inspect.out;
  EXPECT_EQ(j.value("Digest", ""), store_.image.manifest.digest.str());
  EXPECT_EQ(j["RepoTags"], nlohmann::json::array({kTag}));

  const fs::path out = store_.gantry->dir() / "copied";
  auto copy = Skopeo({"--insecure-policy", "copy", "--src-tls-verify=false", "--src-no-creds",
                      DoorRef(), "oci:" + out.string() + ":copied"});
  ASSERT_EQ(copy.exit_code, 0) << copy.err << "\n" << door_->LogText();
  // The manifest, config and every layer arrived whole and verify.
  ExpectBlobsVerify(out / "blobs" / "sha256", pulltest::ImageDigests(store_.image));
  EXPECT_EQ(store_.proxy->Log().size(), 0u) << "the upstream was asked";
}

TEST_F(MirrorDoor, ARangeGetReturnsExactlyThoseBytes) {
  const fixtures::BlobInfo& layer = pulltest::BiggestLayer(store_.image);
  ASSERT_GT(layer.size, 200);
  const std::string bytes = store_.BlobBytes(layer.digest);
  const std::string path =
      std::string("/v2/") + kRepo + "/blobs/" + layer.digest.str() + "?ns=" + kHost;
  const int64_t first = 17, last = layer.size - 30;
  HttpReply r =
      Get(path, {{"Range", "bytes=" + std::to_string(first) + "-" + std::to_string(last)}});
  EXPECT_EQ(r.status, 206) << r.body;
  EXPECT_EQ(r.Header("content-range"), "bytes " + std::to_string(first) + "-" +
                                           std::to_string(last) + "/" + std::to_string(layer.size));
  EXPECT_EQ(r.Header("content-length"), std::to_string(last - first + 1));
  EXPECT_TRUE(r.body == bytes.substr(first, last - first + 1)) << "wrong bytes";

  r = Get(path);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("docker-content-digest"), layer.digest.str());
  EXPECT_EQ(r.Header("accept-ranges"), "bytes");
  EXPECT_TRUE(r.body == bytes) << "wrong bytes";

  r = Get(path, {{"Range", "bytes=" + std::to_string(layer.size) + "-"}});
  EXPECT_EQ(r.status, 416) << r.body;
  EXPECT_EQ(r.Header("content-range"), "bytes */" + std::to_string(layer.size));
  EXPECT_EQ(ErrorCode(r), "RANGE_INVALID");
}

TEST_F(MirrorDoor, HeadHasTheHeadersAndNoBody) {
  const auto& m = store_.image.manifest;
  HttpReply r = Get(ManifestPath(), {}, "HEAD");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), m.media_type);
  EXPECT_EQ(r.Header("docker-content-digest"), m.digest.str());
  EXPECT_EQ(r.Header("content-length"), std::to_string(m.size));
  EXPECT_EQ(r.Header("docker-distribution-api-version"), "registry/2.0");
  EXPECT_EQ(r.body, "");

  const fixtures::BlobInfo& layer = pulltest::BiggestLayer(store_.image);
  r = Get(std::string("/v2/") + kRepo + "/blobs/" + layer.digest.str() + "?ns=" + kHost, {},
          "HEAD");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-length"), std::to_string(layer.size));
  EXPECT_EQ(r.Header("docker-content-digest"), layer.digest.str());
  EXPECT_EQ(r.body, "");

  // GET answers the same headers, and the manifest's bytes.
  r = Get(ManifestPath());
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-length"), std::to_string(m.size));
  EXPECT_EQ(common::Digest::Sha256Of(r.body), m.digest);
}

TEST_F(MirrorDoor, NsWithAPortArrivesPercentEncodedAsContainerdSendsIt) {
  // containerd encodes the query with Go's url.Values: ':' becomes %3A.
  const std::string host = store_.registry->host();  // 127.0.0.1:PORT
  std::string encoded = host;
  encoded.replace(encoded.find(':'), 1, "%3A");
  HttpReply r = Get(std::string("/v2/") + kRepo + "/manifests/" + kTag + "?ns=" + encoded);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("docker-content-digest"), store_.image.manifest.digest.str());
}

TEST_F(MirrorDoor, WhatTheStoreLacksIsA404WithOciErrorJson) {
  HttpReply r = Get(std::string("/v2/") + kRepo + "/manifests/nope?ns=" + kHost);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorCode(r), "MANIFEST_UNKNOWN");
  EXPECT_EQ(r.Header("content-type"), "application/json");

  const std::string absent = common::Digest::Sha256Of(std::string("not in the store")).str();
  r = Get(std::string("/v2/") + kRepo + "/manifests/" + absent + "?ns=" + kHost);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorCode(r), "MANIFEST_UNKNOWN");

  r = Get(std::string("/v2/") + kRepo + "/blobs/" + absent + "?ns=" + kHost);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorCode(r), "BLOB_UNKNOWN");

  // No ns and no host in the name: which registry is meant is unknown.
  r = Get(std::string("/v2/") + kRepo + "/manifests/" + kTag);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorCode(r), "NAME_UNKNOWN");

  // Accept without the stored type (the fixture's manifest is OCI).
  r = Get(ManifestPath(), {{"Accept", "application/vnd.docker.distribution.manifest.v2+json"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorCode(r), "MANIFEST_UNKNOWN");
}

TEST_F(MirrorDoor, HostileRequestsGetA4xxAndTheServerLivesOn) {
  struct Case {
    std::string what;
    std::string request;
    int status;  // 0: any 4xx, or the connection closed without an answer
  };
  auto line = [](const std::string& method, const std::string& target) {
    return method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  };
  const std::vector<Case> cases = {
      {"dot segments", line("GET", "/v2/../../../../etc/passwd"), 404},
      {"encoded dot segments to the database",
       line("GET", "/v2/fixture/app/blobs/..%2F..%2F..%2Fmetadata.db?ns=gantry.test"), 404},
      {"encoded dots as a digest", line("GET", "/v2/fixture/app/blobs/sha256:%2e%2e?ns=x.io"), 400},
      {"digest of another length", line("GET", "/v2/fixture/app/blobs/sha256:abcd?ns=gantry.test"),
       400},
      {"name with dot segments", line("GET", "/v2/a/%2e%2e/b/manifests/v1?ns=gantry.test"), 400},
      {"overlong name", line("GET", "/v2/" + std::string(300, 'a') + "/manifests/v1?ns=x.io"), 400},
      {"NUL in the name", line("GET", "/v2/a%00b/manifests/v1?ns=gantry.test"), 0},
      {"POST with a body",
       "POST /v2/fixture/app/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
       "Content-Length: 5\r\n\r\nhello",
       405},
      {"DELETE", line("DELETE", "/v2/fixture/app/manifests/v1?ns=gantry.test"), 405},
      {"PUT of a manifest", line("PUT", "/v2/fixture/app/manifests/v1?ns=gantry.test"), 405},
      {"huge header",
       "GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " +
           std::string(200 * 1024, 'a') + "\r\n\r\n",
       0},
      {"huge URL", line("GET", "/v2/" + std::string(64 * 1024, 'a') + "/manifests/v1"), 0},
      {"garbage request line", "\x01\x02 nonsense\r\n\r\n", 0},
  };
  for (const auto& c : cases) {
    auto r = RawHttp(door_->port(), c.request);
    ASSERT_TRUE(r) << c.what << ": " << r.error().message;
    if (c.status != 0) {
      EXPECT_EQ(r->status, c.status) << c.what << "\n" << r->body;
      const std::string code = ErrorCode(*r);
      EXPECT_TRUE(!code.empty() &&
                  code.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == std::string::npos)
          << c.what << ": not an OCI error body: " << r->body;
    } else {
      EXPECT_TRUE(r->status == 0 || (r->status >= 400 && r->status < 500))
          << c.what << ": " << r->status;
    }
    EXPECT_EQ(r->body.find("SQLite format"), std::string::npos) << c.what;
    EXPECT_EQ(r->body.find("root:"), std::string::npos) << c.what;
  }
  ASSERT_FALSE(door_->child().Exited()) << door_->LogText();
  HttpReply ok = Get(ManifestPath());
  EXPECT_EQ(ok.status, 200) << door_->LogText();
}

TEST_F(MirrorDoor, PruneIsNotBlockedAndTheDoorSeesWhatItRemoved) {
  HttpReply r = Get(ManifestPath());
  ASSERT_EQ(r.status, 200);
  for (const std::string& ref :
       {MirrorStore::Ref(), store_.registry->host() + "/" + kRepo + ":" + kTag}) {
    auto rmi = store_.gantry->Run({"rmi", ref});
    ASSERT_TRUE(rmi) << rmi.error().message;
    ASSERT_EQ(rmi->exit_code, 0) << pulltest::Describe(*rmi);
  }
  // With the door serving, prune takes the store's exclusive lock and
  // finishes (Run gives up after 60 s).
  auto prune = store_.gantry->Run({"prune"});
  ASSERT_TRUE(prune) << prune.error().message;
  ASSERT_EQ(prune->exit_code, 0) << pulltest::Describe(*prune);
  r = Get(ManifestPath());
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorCode(r), "MANIFEST_UNKNOWN");
  const fixtures::BlobInfo& layer = pulltest::BiggestLayer(store_.image);
  r = Get(std::string("/v2/") + kRepo + "/blobs/" + layer.digest.str() + "?ns=" + kHost);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorCode(r), "BLOB_UNKNOWN");
}

TEST_F(MirrorDoor, SigtermStopsTheDoorWithTheServer) {
  const uint16_t port = door_->port();
  auto rc = door_->child().Terminate(20s);
  ASSERT_TRUE(rc) << rc.error().message;
  EXPECT_EQ(*rc, 0) << door_->LogText();
  EXPECT_NE(door_->LogText().find("registry door stopped"), std::string::npos) << door_->LogText();
  auto r = Http(port, "GET", "/v2/");
  EXPECT_FALSE(r) << "still answering after SIGTERM";
}

// No store needed: these are refused before anything starts.
class MirrorServeFlags : public ::testing::Test {
 protected:
  void SetUp() override {
    auto g = pulltest::Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<pulltest::Gantry>(std::move(*g));
  }
  fixtures::CommandResult Serve(const std::vector<std::string>& flags) {
    std::vector<std::string> args = {"serve", "--listen",
                                     "unix://" + (gantry_->dir() / "g.sock").string()};
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = gantry_->Run(args);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : fixtures::CommandResult{};
  }
  std::unique_ptr<pulltest::Gantry> gantry_;
};

TEST_F(MirrorServeFlags, ANonLoopbackAddressIsRefusedWithoutTheFlag) {
  auto r = Serve({"--registry-listen", "0.0.0.0:0"});
  EXPECT_EQ(r.exit_code, 2) << pulltest::Describe(r);
  EXPECT_NE(r.err.find("--registry-allow-remote"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(gantry_->dir() / "g.sock"));
}

TEST_F(MirrorServeFlags, BadAddressesAreUsageErrors) {
  for (const char* bad : {"example.com:80", "127.0.0.1", "127.0.0.1:99999", "[::1"}) {
    auto r = Serve({"--registry-listen", bad});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << pulltest::Describe(r);
    EXPECT_NE(r.err.find("--registry-listen"), std::string::npos) << r.err;
  }
  auto r = Serve({"--registry-allow-remote"});
  EXPECT_EQ(r.exit_code, 2) << pulltest::Describe(r);
}

TEST_F(MirrorServeFlags, PullThroughWithoutTheDoorIsAUsageError) {
  auto r = Serve({"--registry-pull-through"});
  EXPECT_EQ(r.exit_code, 2) << pulltest::Describe(r);
  EXPECT_NE(r.err.find("--registry-listen"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(gantry_->dir() / "g.sock"));
}

TEST_F(MirrorServeFlags, APortInUseFailsOnceAndLeavesNoSocket) {
  // Hold a loopback port ourselves.
  common::UniqueFd held(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(held.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(held.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(held.get(), 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(held.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string where = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  auto r = Serve({"--registry-listen", where});
  EXPECT_NE(r.exit_code, 0) << pulltest::Describe(r);
  EXPECT_NE(r.err.find("already in use"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(gantry_->dir() / "g.sock")) << "the CRI socket was left behind";
}

}  // namespace
}  // namespace mirrortest
