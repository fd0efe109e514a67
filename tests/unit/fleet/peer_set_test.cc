// fleet::PeerSet, ParsePeerSource, RendezvousOrder and AllowList.

#include "fleet/peer_set.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <set>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/process.h"
#include "fleet/allow_list.h"

namespace {

using common::Errc;

common::Digest DigestOf(int i) { return common::Digest::Sha256Of("blob " + std::to_string(i)); }

TEST(PeerSource, ParsesDnsFileAndLists) {
  auto s = fleet::ParsePeerSource("dns:gantry-peers.kube-system.svc:5050, file:/etc/peers");
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[0].kind, fleet::PeerSource::Kind::kDns);
  EXPECT_EQ((*s)[0].name, "gantry-peers.kube-system.svc");
  EXPECT_EQ((*s)[0].port, "5050");
  EXPECT_EQ((*s)[1].kind, fleet::PeerSource::Kind::kFile);
  EXPECT_EQ((*s)[1].path, "/etc/peers");
}

TEST(PeerSource, RefusesMalformedEntries) {
  for (const char* bad : {"", ",", "dns:name", "dns::5050", "dns:name:0", "dns:name:70000",
                          "dns:name:http", "file:", "http://x:1", "peer:5050"}) {
    auto s = fleet::ParsePeerSource(bad);
    ASSERT_FALSE(s) << bad;
    EXPECT_EQ(s.error().code, Errc::kInvalidArgument) << bad;
  }
}

TEST(PeerAddress, AcceptsHostPortAndBracketedV6) {
  for (const char* good : {"10.0.0.7:5050", "[fd00::1]:5050", "node-1.example:80"})
    EXPECT_TRUE(fleet::ParsePeerAddress(good)) << good;
  for (const char* bad : {"10.0.0.7", "fd00::1:5050", "[fd00::1:5050", ":5050", "a b:1", "x:0"})
    EXPECT_FALSE(fleet::ParsePeerAddress(bad)) << bad;
}

TEST(Rendezvous, SameOrderWhateverTheInputOrder) {
  std::vector<std::string> peers = {"10.0.0.1:5050", "10.0.0.2:5050", "10.0.0.3:5050",
                                    "10.0.0.4:5050"};
  std::vector<std::string> reversed(peers.rbegin(), peers.rend());
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(fleet::RendezvousOrder(DigestOf(i), peers),
              fleet::RendezvousOrder(DigestOf(i), reversed));
}

TEST(Rendezvous, SpreadsHomesOverPeers) {
  std::vector<std::string> peers;
  for (int p = 1; p <= 8; ++p) peers.push_back("127.0.0." + std::to_string(p) + ":5050");
  std::map<std::string, int> first;
  for (int i = 0; i < 800; ++i) ++first[fleet::RendezvousOrder(DigestOf(i), peers)[0]];
  ASSERT_EQ(first.size(), 8u);
  for (const auto& [peer, n] : first) EXPECT_GT(n, 50) << peer;  // 100 expected each
}

TEST(Rendezvous, APeerLeavingMovesOnlyItsOwnBlobs) {
  std::vector<std::string> peers;
  for (int p = 1; p <= 8; ++p) peers.push_back("127.0.0." + std::to_string(p) + ":5050");
  std::vector<std::string> fewer(peers.begin(), peers.end() - 1);
  for (int i = 0; i < 200; ++i) {
    auto before = fleet::RendezvousOrder(DigestOf(i), peers);
    auto after = fleet::RendezvousOrder(DigestOf(i), fewer);
    std::erase(before, peers.back());
    EXPECT_EQ(before, after) << i;
  }
}

class PeerSetTest : public ::testing::Test {
 protected:
  common::TempDir dir_ = *common::TempDir::Create("fleet");
  std::filesystem::path list_ = dir_.path() / "peers";
  void WriteList(const std::string& text) {
    ASSERT_TRUE(common::AtomicWriteFile(list_, text, 0644));
  }
};

TEST_F(PeerSetTest, HomesAreTheBestKWithoutSelf) {
  ASSERT_NO_FATAL_FAILURE(WriteList(
      "# the fleet\n127.0.0.1:1\n127.0.0.2:1   # a comment\n\n127.0.0.3:1\nnot a peer\n"));
  auto set = fleet::PeerSet::Start({.source = "file:" + list_.string(), .homes = 2});
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ((*set)->Peers(),
            (std::vector<std::string>{"127.0.0.1:1", "127.0.0.2:1", "127.0.0.3:1"}));
  for (int i = 0; i < 30; ++i) {
    auto order = fleet::RendezvousOrder(DigestOf(i), (*set)->Peers());
    auto plan = (*set)->HomesFor(DigestOf(i));
    EXPECT_EQ(plan.peers, (std::vector<std::string>{order[0], order[1]}));
    EXPECT_FALSE(plan.stored_only);
  }
  ASSERT_TRUE((*set)->SetSelf("127.0.0.2:1"));
  for (int i = 0; i < 30; ++i) {
    auto order = fleet::RendezvousOrder(DigestOf(i), (*set)->Peers());
    order.resize(2);
    bool home = std::erase(order, "127.0.0.2:1") > 0;
    auto plan = (*set)->HomesFor(DigestOf(i));
    EXPECT_EQ(plan.peers, order);
    EXPECT_EQ(plan.stored_only, home);
  }
}

TEST_F(PeerSetTest, FileIsReadAgainWhenItChanges) {
  ASSERT_NO_FATAL_FAILURE(WriteList("127.0.0.1:1\n"));
  auto set = fleet::PeerSet::Start(
      {.source = "file:" + list_.string(), .refresh = std::chrono::milliseconds(20)});
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ((*set)->Peers().size(), 1u);
  ASSERT_NO_FATAL_FAILURE(WriteList("127.0.0.1:1\n127.0.0.2:1\n"));
  EXPECT_TRUE(fixtures::WaitUntil([&] { return (*set)->Peers().size() == 2; },
                                  std::chrono::seconds(10), std::chrono::milliseconds(10)));
  ASSERT_EQ(::unlink(list_.c_str()), 0);
  EXPECT_TRUE(fixtures::WaitUntil([&] { return (*set)->Peers().empty(); }, std::chrono::seconds(10),
                                  std::chrono::milliseconds(10)));
}

TEST_F(PeerSetTest, DnsSourceListsEveryAddressOfTheName) {
  auto set = fleet::PeerSet::Start({.source = "dns:localhost:5050"});
  ASSERT_TRUE(set) << set.error().message;
  auto peers = (*set)->Peers();
  ASSERT_FALSE(peers.empty());
  EXPECT_TRUE(std::find(peers.begin(), peers.end(), "127.0.0.1:5050") != peers.end() ||
              std::find(peers.begin(), peers.end(), "[::1]:5050") != peers.end());
}

sockaddr_storage V4(const char* text) {
  sockaddr_storage ss{};
  auto* a = reinterpret_cast<sockaddr_in*>(&ss);
  a->sin_family = AF_INET;
  EXPECT_EQ(::inet_pton(AF_INET, text, &a->sin_addr), 1);
  return ss;
}

sockaddr_storage V6(const char* text) {
  sockaddr_storage ss{};
  auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
  a->sin6_family = AF_INET6;
  EXPECT_EQ(::inet_pton(AF_INET6, text, &a->sin6_addr), 1);
  return ss;
}

const sockaddr* Sa(const sockaddr_storage& ss) { return reinterpret_cast<const sockaddr*>(&ss); }

TEST(AllowList, MatchesBlocksAndSingleAddresses) {
  auto allow = fleet::AllowList::Parse("10.1.0.0/16, 127.0.0.1,fd00::/8");
  ASSERT_TRUE(allow) << allow.error().message;
  EXPECT_TRUE(allow->Allows(Sa(V4("10.1.200.3"))));
  EXPECT_FALSE(allow->Allows(Sa(V4("10.2.0.1"))));
  EXPECT_TRUE(allow->Allows(Sa(V4("127.0.0.1"))));
  EXPECT_FALSE(allow->Allows(Sa(V4("127.0.0.2"))));
  EXPECT_TRUE(allow->Allows(Sa(V6("fd12::1"))));
  EXPECT_FALSE(allow->Allows(Sa(V6("fe80::1"))));
  EXPECT_TRUE(allow->Allows(Sa(V6("::ffff:10.1.0.9"))));  // IPv4-mapped
  EXPECT_FALSE(allow->Allows(nullptr));
  auto odd = fleet::AllowList::Parse("10.1.2.3/12");  // host bits under the prefix
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->Allows(Sa(V4("10.0.0.1"))));
}

TEST(AllowList, RefusesMalformedEntries) {
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0.0/", "fd00::/129", "host.example", "10/8"})
    EXPECT_FALSE(fleet::AllowList::Parse(bad)) << bad;
}

}  // namespace
