// The simulated fleet (docs/fleet.md): real `gantry serve --peers` nodes on
// 127.0.0.x, each with its own store, one docker-registry behind the
// fault proxy (the "upstream", which counts blob GETs). Every node pulls
// the fixture image at once through its own pipeline (a manifest request
// to its registry door with --registry-pull-through starts the pull, as
// containerd's would), asking each blob's home peers before the upstream.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "common/fs.h"
#include "fleet/peer_set.h"
#include "integration/mirror/mirror_helpers.h"
#include "integration/pull/pull_helpers.h"

namespace {

namespace fs = std::filesystem;
using mirrortest::kHost;
using mirrortest::kRepo;
using mirrortest::kTag;
using std::chrono::seconds;

constexpr int kNodes = 8;
constexpr int kHomes = 2;

std::string Ref() { return std::string(kHost) + "/" + kRepo + ":" + kTag; }

// GET `path` from ip:port with Connection: close; the status (0 when the
// server closed without answering or could not be reached).
int HttpGetStatus(const std::string& address, const std::string& path) {
  size_t colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (::inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) return 0;
  common::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{.tv_sec = 60, .tv_usec = 0};
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return 0;
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + address +
                          "\r\nAccept: application/vnd.oci.image.manifest.v1+json, "
                          "application/vnd.oci.image.index.v1+json\r\nConnection: close\r\n\r\n";
  if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return 0;
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd.get(), buf, sizeof buf, 0)) > 0;) reply.append(buf, n);
  if (!reply.starts_with("HTTP/1.1 ") || reply.size() < 12) return 0;
  return std::atoi(reply.c_str() + 9);
}

// One `gantry serve` node.
struct Node {
  std::unique_ptr<pulltest::Gantry> g;
  fixtures::Child serve;
  fs::path log;
  std::string address;  // its registry door, "127.0.0.X:PORT"
  std::string LogText() const {
    auto t = common::ReadFile(log, 64u << 20);
    return t ? *t : t.error().message;
  }
};

class Fleet : public ::testing::Test {
 protected:
  void SetUpUpstream() {
    REQUIRE_TOOLS("docker-registry", "skopeo");
    auto dir = common::TempDir::Create("fleet");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    peers_file_ = dir_.path() / "peers";
    ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &registry_));
    ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*registry_, &upstream_));
    ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(*registry_, dir_.path() / "layout",
                                                fixtures::FixtureImageSpec(),
                                                std::string(kRepo) + ":" + kTag, &image_));
    for (const auto& l : image_.layers) blobs_.push_back(l.digest);
    blobs_.push_back(image_.config.digest);
  }

  // `gantry serve` on `ip`:`port` (port "0": any) with --peers `source`
  // and --peers-allow `allow`.
  void StartNode(const std::string& ip, const std::string& port, const std::string& source,
                 Node* node, const std::string& allow = "127.0.0.0/8") {
    auto g = pulltest::Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    node->g = std::make_unique<pulltest::Gantry>(std::move(*g));
    ASSERT_NO_FATAL_FAILURE(mirrortest::PointHostAt(*node->g, kHost, upstream_->base_url()));
    node->log = node->g->dir() / "serve.log";
    std::vector<std::string> args = {"--log-level",
                                     "debug",
                                     "serve",
                                     "--listen",
                                     "unix://" + (node->g->dir() / "g.sock").string(),
                                     "--no-unpack",
                                     "--registry-listen",
                                     ip + ":" + port,
                                     "--registry-pull-through",
                                     "--peers",
                                     source,
                                     "--peers-allow",
                                     allow};
    auto child = node->g->Spawn(args, node->log, node->log);
    ASSERT_TRUE(child) << child.error().message;
    node->serve = std::move(*child);
    const std::string mark = "registry door serving address=" + ip + ":";
    bool up = fixtures::WaitUntil(
        [&] {
          if (node->serve.Exited()) return true;
          std::string log = node->LogText();
          size_t at = log.find(mark);
          if (at == std::string::npos) return false;
          size_t end = log.find_first_of(" \n", at + mark.size());
          node->address = log.substr(at + mark.size() - ip.size() - 1,
                                     end - (at + mark.size() - ip.size() - 1));
          return true;
        },
        seconds(20), std::chrono::milliseconds(20));
    ASSERT_FALSE(node->serve.Exited()) << "gantry serve exited:\n" << node->LogText();
    ASSERT_TRUE(up) << "no door address in 20 s:\n" << node->LogText();
  }

  void StartNodes(int n, const std::string& port, const std::string& source) {
    nodes_.resize(n);
    for (int i = 0; i < n; ++i)
      ASSERT_NO_FATAL_FAILURE(
          StartNode("127.0.0." + std::to_string(10 + i), port, source, &nodes_[i]));
  }

  void WritePeers(const std::vector<std::string>& peers) {
    std::string text = "# the simulated fleet\n";
    for (const auto& p : peers) text += p + "\n";
    ASSERT_TRUE(common::AtomicWriteFile(peers_file_, text, 0644));
  }

  std::vector<std::string> Addresses() const {
    std::vector<std::string> out;
    for (const auto& n : nodes_) out.push_back(n.address);
    return out;
  }

  // Waits until every node in `which` lists `count` peers.
  void WaitForPeers(const std::vector<Node*>& which, size_t count) {
    const std::string mark = "peers changed count=" + std::to_string(count);
    for (Node* n : which) {
      bool seen = fixtures::WaitUntil([&] { return n->LogText().find(mark) != std::string::npos; },
                                      seconds(20), std::chrono::milliseconds(20));
      ASSERT_TRUE(seen) << n->address << " never listed " << count << " peers:\n" << n->LogText();
    }
  }

  std::vector<Node*> All() {
    std::vector<Node*> out;
    for (auto& n : nodes_) out.push_back(&n);
    return out;
  }

  // Asks every node in `which` for the image's manifest at once (each
  // then pulls it) and waits until each has recorded the image.
  void PullEverywhere(const std::vector<Node*>& which) {
    const std::string path = "/v2/" + std::string(kRepo) + "/manifests/" + kTag + "?ns=" + kHost;
    std::vector<int> status(which.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < which.size(); ++i)
      threads.emplace_back([&, i] { status[i] = HttpGetStatus(which[i]->address, path); });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < which.size(); ++i)
      ASSERT_EQ(status[i], 200) << which[i]->address << "\n" << which[i]->LogText();
    for (Node* n : which) ASSERT_NO_FATAL_FAILURE(WaitForImage(*n));
  }

  void WaitForImage(Node& n) {
    bool pulled = fixtures::WaitUntil(
        [&] {
          auto names = n.g->ImageNames();
          return std::find(names.begin(), names.end(), Ref()) != names.end();
        },
        seconds(60), std::chrono::milliseconds(100));
    ASSERT_TRUE(pulled) << n.address << " has no " << Ref() << " after 60 s:\n"
                        << n.LogText() << "\nthe other nodes:\n"
                        << LogTails();
  }

  // The end of every node's log, for failure messages.
  std::string LogTails() const {
    std::string out;
    for (const Node& n : nodes_) {
      std::string log = n.LogText();
      if (log.size() > 6000) log = log.substr(log.size() - 6000);
      out += "--- " + n.address + "\n" + log;
    }
    out += "--- upstream blob requests\n";
    for (const auto& e : upstream_->Log())
      if (e.path.find("/blobs/") != std::string::npos)
        out += e.method + " " + e.path + " " + std::to_string(e.status) + " " + e.fault + " " +
               std::to_string(e.body_bytes_sent) + "\n";
    return out;
  }

  // The upstream, two nodes that list each other, and the image pulled on
  // both.
  void TwoNodesWithTheImage() {
    ASSERT_NO_FATAL_FAILURE(SetUpUpstream());
    ASSERT_NO_FATAL_FAILURE(StartNodes(2, "0", "file:" + peers_file_.string()));
    ASSERT_NO_FATAL_FAILURE(WritePeers(Addresses()));
    ASSERT_NO_FATAL_FAILURE(WaitForPeers(All(), 2));
    ASSERT_NO_FATAL_FAILURE(PullEverywhere(All()));
  }

  // Every blob of the image verifies in `n`'s store, and fsck finds nothing.
  void ExpectStoreClean(const Node& n) {
    pulltest::ExpectBlobsInStore(n.g->root(), pulltest::ImageDigests(image_));
    auto r = n.g->Run({"fsck"});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->exit_code, 0) << n.address << ": " << pulltest::Describe(*r) << r->out;
  }

  int UpstreamGets(const common::Digest& d) const {
    return upstream_->CountRequests("GET", "/blobs/" + d.str());
  }

  common::TempDir dir_;
  fs::path peers_file_;
  std::unique_ptr<fixtures::RegistryFixture> registry_;
  std::unique_ptr<fixtures::FaultProxy> upstream_;
  fixtures::BuiltImage image_;
  std::vector<common::Digest> blobs_;  // the layers and the config
  std::vector<Node> nodes_;
};

// All 8 pull at once: each blob leaves the upstream at most k times; every
// store is clean; a node that joins afterwards gets every blob from the
// peers, none from the upstream.
TEST_F(Fleet, EightNodesPullAtOnceAndUpstreamServesEachBlobAtMostKTimes) {
  ASSERT_NO_FATAL_FAILURE(SetUpUpstream());
  ASSERT_NO_FATAL_FAILURE(StartNodes(kNodes, "0", "file:" + peers_file_.string()));
  ASSERT_NO_FATAL_FAILURE(WritePeers(Addresses()));
  ASSERT_NO_FATAL_FAILURE(WaitForPeers(All(), kNodes));
  upstream_->ClearLog();

  ASSERT_NO_FATAL_FAILURE(PullEverywhere(All()));
  for (const common::Digest& d : blobs_) {
    EXPECT_GE(UpstreamGets(d), 1) << d.str();
    EXPECT_LE(UpstreamGets(d), kHomes) << d.str();
  }
  for (const Node& n : nodes_) ASSERT_NO_FATAL_FAILURE(ExpectStoreClean(n));

  // A ninth node joins: listed by itself and the others.
  Node joiner;
  ASSERT_NO_FATAL_FAILURE(StartNode("127.0.0.30", "0", "file:" + peers_file_.string(), &joiner));
  std::vector<std::string> all = Addresses();
  all.push_back(joiner.address);
  ASSERT_NO_FATAL_FAILURE(WritePeers(all));
  ASSERT_NO_FATAL_FAILURE(WaitForPeers({&joiner}, kNodes + 1));
  upstream_->ClearLog();
  ASSERT_NO_FATAL_FAILURE(PullEverywhere({&joiner}));
  EXPECT_EQ(upstream_->CountRequests("GET", "/blobs/"), 0) << joiner.LogText();
  ASSERT_NO_FATAL_FAILURE(ExpectStoreClean(joiner));
}

// A ninth node serves the others only through a fault proxy that inverts
// every blob byte it sends; the peer list names the proxy, chosen so that
// it is the first home of at least one blob. The requesters catch it by
// digest and go on; nothing wrong is stored anywhere.
TEST_F(Fleet, CorruptPeerIsCaughtAndNothingWrongIsStored) {
  ASSERT_NO_FATAL_FAILURE(SetUpUpstream());
  ASSERT_NO_FATAL_FAILURE(StartNodes(kNodes, "0", "file:" + peers_file_.string()));
  Node server;
  ASSERT_NO_FATAL_FAILURE(StartNode("127.0.0.40", "0", "file:" + peers_file_.string(), &server));
  std::unique_ptr<fixtures::FaultProxy> liar;
  std::vector<std::string> listed;
  // A proxy's port decides the blobs it is home of: start proxies until
  // one is the first home of a blob (each is, with probability about
  // 1 - (8/9)^4, so 64 tries cannot all miss in practice).
  for (int attempt = 0; attempt < 64 && !liar; ++attempt) {
    auto p = fixtures::FaultProxy::Start("http://" + server.address);
    ASSERT_TRUE(p) << p.error().message;
    listed = Addresses();
    listed.push_back((*p)->host());
    const std::string host = (*p)->host();
    for (const common::Digest& d : blobs_)
      if (!liar && fleet::RendezvousOrder(d, listed)[0] == host) liar = std::move(*p);
  }
  ASSERT_TRUE(liar) << "no proxy port made the liar a first home";
  liar->AddRule(
      {.kind = fixtures::FaultRule::Kind::kWrongBytes, .path_contains = "/blobs/", .times = -1});
  ASSERT_NO_FATAL_FAILURE(WritePeers(listed));
  ASSERT_NO_FATAL_FAILURE(WaitForPeers(All(), kNodes + 1));

  ASSERT_NO_FATAL_FAILURE(PullEverywhere(All()));
  EXPECT_GE(liar->Stats().faults["wrong_bytes"], 1);
  for (const Node& n : nodes_) ASSERT_NO_FATAL_FAILURE(ExpectStoreClean(n));
  // Caught, and said so: naming the peer and how much it sent, and not
  // as a registry that ignored Range (the sink's restart gives no reason).
  int warned = 0;
  for (const Node& n : nodes_) {
    const std::string log = n.LogText();
    if (log.find("peer failed, trying the next") != std::string::npos &&
        log.find("peer=" + liar->host() + " discarded=") != std::string::npos)
      ++warned;
    EXPECT_EQ(log.find("ignored the Range"), std::string::npos) << n.address << "\n" << log;
  }
  EXPECT_GE(warned, 1);
}

// The first home of the biggest layer is SIGKILLed while it streams that
// layer to the others: the upstream stalls halfway through both homes'
// downloads of it, so every requester is mid-transfer. The others then
// finish from the second home (its stall ended after the kill), and every
// store is clean.
TEST_F(Fleet, HomeKilledMidTransferAndTheOthersFinish) {
  ASSERT_NO_FATAL_FAILURE(SetUpUpstream());
  ASSERT_NO_FATAL_FAILURE(StartNodes(kNodes, "0", "file:" + peers_file_.string()));
  ASSERT_NO_FATAL_FAILURE(WritePeers(Addresses()));
  ASSERT_NO_FATAL_FAILURE(WaitForPeers(All(), kNodes));
  const auto& big = pulltest::BiggestLayer(image_);
  const std::string victim_address = fleet::RendezvousOrder(big.digest, Addresses())[0];
  Node* victim = nullptr;
  std::vector<Node*> others;
  for (auto& n : nodes_) {
    if (n.address == victim_address) {
      victim = &n;
    } else {
      others.push_back(&n);
    }
  }
  ASSERT_NE(victim, nullptr);
  upstream_->AddRule({.kind = fixtures::FaultRule::Kind::kStall,
                      .path_contains = "/blobs/" + big.digest.str(),
                      .times = kHomes,
                      .bytes = big.size / 2});
  upstream_->ClearLog();

  // The manifest answers come once each node has stored the manifest,
  // before its blobs arrive.
  const std::string path = "/v2/" + std::string(kRepo) + "/manifests/" + kTag + "?ns=" + kHost;
  std::vector<int> status(nodes_.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < nodes_.size(); ++i)
    threads.emplace_back([&, i] { status[i] = HttpGetStatus(nodes_[i].address, path); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < nodes_.size(); ++i) ASSERT_EQ(status[i], 200) << nodes_[i].LogText();
  // Both homes are fetching the layer (a home asks the other home only
  // for what it has stored), and both stalled halfway.
  bool stalled = fixtures::WaitUntil(
      [&] {
        int n = 0;
        for (const auto& e : upstream_->Log()) n += e.fault == "stall";
        return n == kHomes;
      },
      seconds(30), std::chrono::milliseconds(10));
  ASSERT_TRUE(stalled) << victim->LogText();
  ASSERT_EQ(::kill(victim->serve.pid(), SIGKILL), 0);
  auto rc = victim->serve.Wait();
  ASSERT_TRUE(rc) << rc.error().message;
  upstream_->EndStalls();
  for (Node* n : others) ASSERT_NO_FATAL_FAILURE(WaitForImage(*n));
  for (Node* n : others) ASSERT_NO_FATAL_FAILURE(ExpectStoreClean(*n));
}

// dns: peers, through a private /etc/hosts in a mount namespace of this
// test process (inherited by the nodes): every node on the same port, on
// its own address, all of them records of one name.
TEST_F(Fleet, DnsSourceFromPrivateEtcHosts) {
  // First, while this process has one thread: CLONE_NEWNS unshares the
  // file-system attributes too, which a multi-threaded process cannot.
  ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << "unshare(CLONE_NEWNS): " << std::strerror(errno);
  ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0)
      << std::strerror(errno);
  ASSERT_NO_FATAL_FAILURE(SetUpUpstream());
  std::string hosts = "127.0.0.1 localhost\n::1 localhost\n";
  for (int i = 0; i < kNodes; ++i)
    hosts += "127.0.0." + std::to_string(10 + i) + " gantry-peers.test\n";
  ASSERT_TRUE(common::AtomicWriteFile(dir_.path() / "hosts", hosts, 0644));
  ASSERT_EQ(::mount((dir_.path() / "hosts").c_str(), "/etc/hosts", nullptr, MS_BIND, nullptr), 0)
      << std::strerror(errno);
  auto port = fixtures::FreeLoopbackPort();
  ASSERT_TRUE(port) << port.error().message;
  ASSERT_NO_FATAL_FAILURE(
      StartNodes(kNodes, std::to_string(*port), "dns:gantry-peers.test:" + std::to_string(*port)));
  ASSERT_NO_FATAL_FAILURE(WaitForPeers(All(), kNodes));
  upstream_->ClearLog();
  ASSERT_NO_FATAL_FAILURE(PullEverywhere(All()));
  for (const common::Digest& d : blobs_) EXPECT_LE(UpstreamGets(d), kHomes) << d.str();
  for (const Node& n : nodes_) ASSERT_NO_FATAL_FAILURE(ExpectStoreClean(n));
}

// A `gantry pull --peers` from a fresh store (peers from `peers_file`),
// `extra` flags added; its result.
fixtures::CommandResult CliPull(const pulltest::Gantry& g, const fs::path& peers_file,
                                const std::string& ref,
                                const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"pull", "--no-unpack", "--peers", "file:" + peers_file.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(ref);
  auto r = g.Run(args);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : fixtures::CommandResult{};
}

// Manifests by digest come from the digest's home peers: with every
// by-digest manifest GET of the upstream failing (503), a pull of
// repo@sha256:… gets its manifest from a peer that stored it, and the
// upstream sees no such GET. A peer that serves a forged manifest (a
// fault proxy inverting its bytes) is caught, and the upstream serves it.
TEST_F(Fleet, ManifestByDigestFromPeersAndALyingPeerCaught) {
  ASSERT_NO_FATAL_FAILURE(TwoNodesWithTheImage());
  const std::string by_digest =
      std::string(kHost) + "/" + kRepo + "@" + image_.manifest.digest.str();

  upstream_->AddRule({.kind = fixtures::FaultRule::Kind::kStatus,
                      .path_contains = "/manifests/sha256:",
                      .times = -1,
                      .status = 503});
  upstream_->ClearLog();
  auto fresh = pulltest::Gantry::Create();
  ASSERT_TRUE(fresh) << fresh.error().message;
  ASSERT_NO_FATAL_FAILURE(mirrortest::PointHostAt(*fresh, kHost, upstream_->base_url()));
  fixtures::CommandResult r = CliPull(*fresh, peers_file_, by_digest);
  ASSERT_EQ(r.exit_code, 0) << pulltest::Describe(r);
  EXPECT_EQ(upstream_->CountRequests("GET", "/manifests/"), 0) << r.err;
  EXPECT_EQ(upstream_->CountRequests("GET", "/blobs/"), 0) << r.err;
  pulltest::ExpectBlobsInStore(fresh->root(), pulltest::ImageDigests(image_));

  // The liar: the only peer listed, in front of a node that has it all.
  upstream_->ClearRules();
  auto liar = fixtures::FaultProxy::Start("http://" + nodes_[0].address);
  ASSERT_TRUE(liar) << liar.error().message;
  (*liar)->AddRule({.kind = fixtures::FaultRule::Kind::kWrongBytes,
                    .path_contains = "/manifests/",
                    .times = -1});
  const fs::path liar_file = dir_.path() / "liar-peers";
  ASSERT_TRUE(common::AtomicWriteFile(liar_file, (*liar)->host() + "\n", 0644));
  upstream_->ClearLog();
  auto other = pulltest::Gantry::Create();
  ASSERT_TRUE(other) << other.error().message;
  ASSERT_NO_FATAL_FAILURE(mirrortest::PointHostAt(*other, kHost, upstream_->base_url()));
  r = CliPull(*other, liar_file, by_digest, {"--peers-homes", "1"});
  ASSERT_EQ(r.exit_code, 0) << pulltest::Describe(r);
  EXPECT_EQ((*liar)->Stats().faults["wrong_bytes"], 1);
  EXPECT_EQ(upstream_->CountRequests("GET", "/manifests/" + image_.manifest.digest.str()), 1);
  EXPECT_NE(r.err.find("peer failed for a manifest"), std::string::npos) << r.err;
  auto fsck = other->Run({"fsck"});
  ASSERT_TRUE(fsck) << fsck.error().message;
  EXPECT_EQ(fsck->exit_code, 0) << pulltest::Describe(*fsck) << fsck->out;
}

// --peers-offline-tags: with the upstream stopped, a pull by tag fails
// without it and, with it, resolves the tag through the peers that have
// it stored, then gets everything from them.
TEST_F(Fleet, OfflineTagsResolveThroughPeersOnlyWhenAsked) {
  ASSERT_NO_FATAL_FAILURE(TwoNodesWithTheImage());
  upstream_->Stop();

  auto fresh = pulltest::Gantry::Create();
  ASSERT_TRUE(fresh) << fresh.error().message;
  ASSERT_NO_FATAL_FAILURE(mirrortest::PointHostAt(*fresh, kHost, upstream_->base_url()));
  fixtures::CommandResult off = CliPull(*fresh, peers_file_, Ref());
  EXPECT_NE(off.exit_code, 0) << off.err;
  EXPECT_TRUE(fresh->ImageNames().empty());

  fixtures::CommandResult on = CliPull(*fresh, peers_file_, Ref(), {"--peers-offline-tags"});
  ASSERT_EQ(on.exit_code, 0) << pulltest::Describe(on);
  EXPECT_NE(on.err.find("tag resolved by peers while the registry is unreachable"),
            std::string::npos)
      << on.err;
  auto names = fresh->ImageNames();
  EXPECT_NE(std::find(names.begin(), names.end(), Ref()), names.end());
  pulltest::ExpectBlobsInStore(fresh->root(), pulltest::ImageDigests(image_));
}

// --peers-allow: a client outside the list gets 403.
TEST_F(Fleet, DoorRefusesAddressesOutsidePeersAllow) {
  ASSERT_NO_FATAL_FAILURE(SetUpUpstream());
  nodes_.resize(1);
  ASSERT_NO_FATAL_FAILURE(
      StartNode("127.0.0.10", "0", "file:" + peers_file_.string(), &nodes_[0], "127.0.0.2/32"));
  EXPECT_EQ(HttpGetStatus(nodes_[0].address, "/v2/"), 403) << nodes_[0].LogText();
}

}  // namespace
