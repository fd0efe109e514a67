// Manifests from the fleet's peers (registry/peers.h, docs/fleet.md): by
// digest from the digest's homes, checked against the digest; a tag from
// peers only with peers_offline_tags while the registry is down, and only
// the manifest a strict majority of the answering peers name. The peers
// and the registry are small HTTP servers on 127.0.0.1.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/http_server.h"
#include "fixtures/process.h"
#include "fleet/peer_set.h"
#include "registry/client.h"

namespace {

using common::Errc;

constexpr char kManifestType[] = "application/vnd.oci.image.manifest.v1+json";

std::string ManifestBody(const std::string& tag) {
  return std::string(R"({"schemaVersion":2,"mediaType":")") + kManifestType +
         R"(","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":)" +
         R"("sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},)" +
         R"("layers":[],"annotations":{"which":")" + tag + R"("}})";
}

// Peers named as the test says, for any digest or tag.
class FixedPeers final : public registry::BlobPeers {
 public:
  FixedPeers(std::vector<std::string> homes, std::vector<std::string> tag_peers)
      : homes_(std::move(homes)), tag_peers_(std::move(tag_peers)) {}
  registry::PeerPlan HomesFor(const common::Digest&) override { return {.peers = homes_}; }
  std::vector<std::string> TagPeers(std::string_view) override { return tag_peers_; }

 private:
  std::vector<std::string> homes_, tag_peers_;
};

// A registry or a peer door: `manifests` by the reference of
// /v2/app/manifests/REF, else `otherwise` (404, or 503 for a registry
// that is down). Counts the manifest requests and notes what they sent.
struct FakeDoor {
  std::map<std::string, std::string> manifests;
  int otherwise = 404;
  std::atomic<int> requests{0};
  std::atomic<int> stored_only{0};    // requests with Gantry-Peer-Stored-Only: 1
  std::atomic<int> authorization{0};  // requests with Authorization
  std::unique_ptr<fixtures::HttpServer> server;
  std::function<void()> before_answer;  // runs on the server's thread, if set

  void Start() {
    auto s = fixtures::HttpServer::Start(
        {.handler = fixtures::SimpleHandler(
             [this](const fixtures::HttpRequest& r) { return Answer(r); })});
    ASSERT_TRUE(s) << s.error().message;
    server = std::move(*s);
  }
  fixtures::HttpResponse Answer(const fixtures::HttpRequest& r) {
    const std::string prefix = "/v2/app/manifests/";
    fixtures::HttpResponse out;
    out.status = 404;
    if (!r.path.starts_with(prefix)) return out;
    ++requests;
    if (before_answer) before_answer();
    if (r.Header(registry::kPeerStoredOnlyHeader) == "1") ++stored_only;
    if (r.Header("Authorization")) ++authorization;
    auto it = manifests.find(r.path.substr(prefix.size()));
    if (it == manifests.end()) {
      out.status = otherwise;
      out.body = R"({"errors":[{"code":"MANIFEST_UNKNOWN"}]})";
      return out;
    }
    out.status = 200;
    out.headers = {{"Content-Type", kManifestType}};
    out.body = it->second;
    return out;
  }
};

class PeerManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_.otherwise = 503;
    ASSERT_NO_FATAL_FAILURE(upstream_.Start());
  }

  // A client for the registry `upstream_` (or a closed port when
  // `registry_down`) with `peers`.
  std::unique_ptr<registry::RegistryClient> Client(std::shared_ptr<registry::BlobPeers> peers,
                                                   bool offline_tags) {
    registry::ClientOptions o;
    o.hosts.config_dirs = {};
    registry::Credentials creds;
    creds.username = "u";
    creds.password = "p";
    o.creds = creds;
    o.max_attempts = 2;
    o.backoff.initial = std::chrono::milliseconds(1);
    o.peers = std::move(peers);
    o.peers_offline_tags = offline_tags;
    auto c = registry::RegistryClient::Create(std::move(o));
    EXPECT_TRUE(c) << c.error().message;
    return c ? std::move(*c) : nullptr;
  }

  registry::ImageRef Ref(const std::string& domain) {
    auto r = registry::ImageRef::Parse(domain + "/app:v1");
    EXPECT_TRUE(r) << r.error().message;
    return *r;
  }

  // Three peers whose tag v1 names `a`, `b`, `c` ("" for a peer without it).
  void StartPeers(const std::vector<std::string>& bodies) {
    for (const std::string& b : bodies) {
      auto& p = peers_.emplace_back(std::make_unique<FakeDoor>());
      if (!b.empty()) p->manifests["v1"] = b;
      ASSERT_NO_FATAL_FAILURE(p->Start());
    }
  }
  std::vector<std::string> PeerHosts() const {
    std::vector<std::string> out;
    for (const auto& p : peers_) out.push_back(p->server->host());
    return out;
  }
  // A registry address nothing listens on.
  std::string DownRegistry() {
    auto port = fixtures::FreeLoopbackPort();
    EXPECT_TRUE(port) << port.error().message;
    return "127.0.0.1:" + std::to_string(port ? *port : 1);
  }

  FakeDoor upstream_;
  std::vector<std::unique_ptr<FakeDoor>> peers_;
};

TEST_F(PeerManifestTest, ByDigestComesFromAHomeWhileTheRegistryFailsAndNoCredentialsGo) {
  const std::string body = ManifestBody("one");
  const common::Digest digest = common::Digest::Sha256Of(body);
  StartPeers({"", ""});
  peers_[1]->manifests[digest.str()] = body;
  auto client = Client(std::make_shared<FixedPeers>(PeerHosts(), PeerHosts()), false);
  ASSERT_TRUE(client);
  auto m = client->GetManifest(Ref(upstream_.server->host()), digest.str());
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->digest, digest);
  EXPECT_EQ(m->body, body);
  EXPECT_EQ(m->media_type, kManifestType);
  EXPECT_EQ(upstream_.requests.load(), 0);
  EXPECT_EQ(peers_[0]->requests.load(), 1);  // asked first, 404: the next
  for (const auto& p : peers_) {
    EXPECT_EQ(p->stored_only.load(), p->requests.load());
    EXPECT_EQ(p->authorization.load(), 0);
  }
}

TEST_F(PeerManifestTest, ByDigestFromALyingPeerIsRefusedAndTheRegistryAsked) {
  const std::string body = ManifestBody("one");
  const common::Digest digest = common::Digest::Sha256Of(body);
  StartPeers({""});
  peers_[0]->manifests[digest.str()] = ManifestBody("forged");
  upstream_.manifests[digest.str()] = body;
  auto client = Client(std::make_shared<FixedPeers>(PeerHosts(), PeerHosts()), false);
  ASSERT_TRUE(client);
  auto m = client->GetManifest(Ref(upstream_.server->host()), digest.str());
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->body, body);
  EXPECT_EQ(peers_[0]->requests.load(), 1);
  EXPECT_EQ(upstream_.requests.load(), 1);
}

TEST_F(PeerManifestTest, TagsGoToTheRegistryOnlyEvenWhenItFails) {
  StartPeers({ManifestBody("a")});
  auto client = Client(std::make_shared<FixedPeers>(PeerHosts(), PeerHosts()), false);
  ASSERT_TRUE(client);
  auto m = client->GetManifest(Ref(upstream_.server->host()), "v1");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kUnavailable) << m.error().message;
  EXPECT_EQ(peers_[0]->requests.load(), 0);
  EXPECT_EQ(upstream_.requests.load(), 2);  // max_attempts
}

TEST_F(PeerManifestTest, OfflineTagTakesTheMajorityOfTheAnsweringPeers) {
  const std::string a = ManifestBody("a");
  StartPeers({a, ManifestBody("b"), "", a});
  auto client = Client(std::make_shared<FixedPeers>(PeerHosts(), PeerHosts()), true);
  ASSERT_TRUE(client);
  // Refused connections: the registry is down.
  auto m = client->GetManifest(Ref(DownRegistry()), "v1");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->digest, common::Digest::Sha256Of(a));
  for (const auto& p : peers_) {
    EXPECT_EQ(p->requests.load(), 1);
    EXPECT_EQ(p->stored_only.load(), 1);
    EXPECT_EQ(p->authorization.load(), 0);
  }
  // 5xx after the retries is down too.
  auto again = client->GetManifest(Ref(upstream_.server->host()), "v1");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->digest, common::Digest::Sha256Of(a));
}

// The peers are asked at once, not one after another (where each peer
// that is down too would add its connect timeout): every peer holds its
// answer until all of them have been asked, which only a client asking
// them together gets past.
TEST_F(PeerManifestTest, OfflineTagAsksEveryPeerAtOnce) {
  const std::string a = ManifestBody("a");
  StartPeers({a, a, a});
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  std::atomic<bool> asked_one_by_one{false};
  for (auto& p : peers_) {
    p->before_answer = [&] {
      std::unique_lock l(mu);
      ++arrived;
      cv.notify_all();
      // Generous: a client that waits for each answer never gets here.
      if (!cv.wait_for(l, std::chrono::seconds(20), [&] { return arrived == 3; }))
        asked_one_by_one = true;
    };
  }
  auto client = Client(std::make_shared<FixedPeers>(PeerHosts(), PeerHosts()), true);
  ASSERT_TRUE(client);
  auto m = client->GetManifest(Ref(DownRegistry()), "v1");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->digest, common::Digest::Sha256Of(a));
  EXPECT_FALSE(asked_one_by_one.load()) << "the peers were asked one after another";
  for (const auto& p : peers_) EXPECT_EQ(p->requests.load(), 1);
}

TEST_F(PeerManifestTest, OfflineTagRefusedWithoutAMajorityOrAnAnswer) {
  StartPeers({ManifestBody("a"), ManifestBody("b"), ""});
  auto client = Client(std::make_shared<FixedPeers>(PeerHosts(), PeerHosts()), true);
  ASSERT_TRUE(client);
  auto split = client->GetManifest(Ref(DownRegistry()), "v1");
  ASSERT_FALSE(split);
  EXPECT_EQ(split.error().code, Errc::kUnavailable);
  EXPECT_NE(split.error().message.find("none by a majority"), std::string::npos)
      << split.error().message;
  // Nobody has the tag: the registry's error, saying so.
  auto none = client->GetManifest(Ref(DownRegistry()), "v2");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::kUnavailable);
  EXPECT_NE(none.error().message.find("no peer of 3 asked has the tag"), std::string::npos)
      << none.error().message;
}

TEST_F(PeerManifestTest, OfflineTagNotAskedWhenTheRegistrySaysNotFound) {
  upstream_.otherwise = 404;
  StartPeers({ManifestBody("a")});
  auto client = Client(std::make_shared<FixedPeers>(PeerHosts(), PeerHosts()), true);
  ASSERT_TRUE(client);
  auto m = client->GetManifest(Ref(upstream_.server->host()), "v1");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::kNotFound);
  EXPECT_EQ(peers_[0]->requests.load(), 0);
}

// PeerSet::TagPeers: 2k + 1 peers without self, the same order on every
// node that lists the same peers.
TEST(PeerSetTagPeersTest, OddCountWithoutSelfAndAgreedOrder) {
  auto dir = common::TempDir::Create("tagpeers");
  ASSERT_TRUE(dir) << dir.error().message;
  std::string list;
  for (int i = 1; i <= 9; ++i) list += "10.0.0." + std::to_string(i) + ":5050\n";
  ASSERT_TRUE(common::AtomicWriteFile(dir->path() / "peers", list, 0644));
  const std::string source = "file:" + (dir->path() / "peers").string();
  auto a = fleet::PeerSet::Start({.source = source, .self = "10.0.0.1:5050", .homes = 2});
  auto b = fleet::PeerSet::Start({.source = source, .self = "10.0.0.2:5050", .homes = 2});
  ASSERT_TRUE(a && b);
  const std::string key = "registry.example/app:v1";
  std::vector<std::string> from_a = (*a)->TagPeers(key);
  std::vector<std::string> from_b = (*b)->TagPeers(key);
  ASSERT_EQ(from_a.size(), 5u);
  ASSERT_EQ(from_b.size(), 5u);
  EXPECT_EQ(std::count(from_a.begin(), from_a.end(), "10.0.0.1:5050"), 0);
  EXPECT_EQ(std::count(from_b.begin(), from_b.end(), "10.0.0.2:5050"), 0);
  // The order is the rendezvous order of the key's hash: what both list
  // (neither self) comes in the same order.
  std::vector<std::string> common_a, common_b;
  for (const auto& p : from_a)
    if (p != "10.0.0.2:5050") common_a.push_back(p);
  for (const auto& p : from_b)
    if (p != "10.0.0.1:5050") common_b.push_back(p);
  common_a.resize(std::min(common_a.size(), common_b.size()));
  common_b.resize(common_a.size());
  EXPECT_EQ(common_a, common_b);
  EXPECT_NE((*a)->TagPeers("registry.example/app:v2"), std::vector<std::string>{});
}

}  // namespace
