// The snapshotter door with the real peers: Debian's containerd 1.6,
// started by the test on its own root, state directory and socket, loads
// gantry as a proxy snapshotter (`[proxy_plugins.gantry]`, the socket of
// the `gantry serve --snapshotter-listen` the test started); `ctr` and
// `ctr-remote` (Debian's stargz-snapshotter) pull the fixture image from
// the registry fixture through the counting fault proxy and run it with
// `--snapshotter gantry`.

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "integration/ctrsnap/ctrsnap_fixture.h"

namespace ctrsnaptest {
namespace {

using namespace std::chrono_literals;

class CtrsnapContainerd : public ContainerdFixture {};

TEST_F(CtrsnapContainerd, CtrPullUnpacksIntoGantryAndRunPrintsTheOutput) {
  auto pull = Ctr({"images", "pull", "--plain-http", "--snapshotter", "gantry", ref_});
  ASSERT_EQ(pull.exit_code, 0) << pull.out << pull.err << Logs();
  ASSERT_NO_FATAL_FAILURE(RunPrints("run1"));

  // The layers containerd applied are gantry's chains now, held by containerd.
  std::set<std::string> committed, held;
  Snapshots(&committed, &held);
  for (const auto& c : chains_) {
    EXPECT_TRUE(committed.count(c)) << c << Logs();
    EXPECT_TRUE(held.count(c)) << c;
  }
  auto ls = Ctr({"snapshots", "--snapshotter", "gantry", "ls"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find(chains_.back()), std::string::npos) << ls.out;

  // A gantry pull of the same image now finds every layer unpacked.
  auto gp = Gantry({"pull", reg_->host() + "/fixture/app:v1"});
  EXPECT_EQ(gp.exit_code, 0) << gp.out << gp.err;
}

TEST_F(CtrsnapContainerd, RemoteSnapshotPullOfAnImageGantryHasFetchesNoLayerBlob) {
  auto gp = Gantry({"pull", reg_->host() + "/fixture/app:v1"});
  ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;
  proxy_->ClearLog();

  auto rp = CtrRemote({"images", "rpull", "--plain-http", "--snapshotter", "gantry", ref_});
  ASSERT_EQ(rp.exit_code, 0) << rp.out << rp.err << Logs();
  EXPECT_GT(proxy_->CountRequests("", "/manifests/"), 0) << "containerd went through the proxy";
  for (const auto& l : img_.layers)
    EXPECT_EQ(proxy_->CountRequests("GET", l.digest.str()), 0) << "layer " << l.digest.str();

  ASSERT_NO_FATAL_FAILURE(RunPrints("run2"));
  std::set<std::string> committed, held;
  Snapshots(&committed, &held);
  for (const auto& c : chains_) EXPECT_TRUE(held.count(c)) << c << Logs();
  EXPECT_EQ(committed.size(), chains_.size()) << "no copy, no alias: " << Df().dump();
}

TEST_F(CtrsnapContainerd, PruneNeverTakesWhatContainerdHoldsAndFreesItOnceReleased) {
  const std::string gantry_ref = reg_->host() + "/fixture/app:v1";
  auto gp = Gantry({"pull", gantry_ref});
  ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;
  auto rp = CtrRemote({"images", "rpull", "--plain-http", "--snapshotter", "gantry", ref_});
  ASSERT_EQ(rp.exit_code, 0) << rp.out << rp.err << Logs();
  auto sleeper = Ctr({"run", "-d", "--snapshotter", "gantry", ref_, "sleeper", "sleep", "1000"});
  ASSERT_EQ(sleeper.exit_code, 0) << sleeper.out << sleeper.err << Logs();

  // gantry forgets the image and prunes everything it may.
  auto rmi = Gantry({"rmi", gantry_ref});
  ASSERT_EQ(rmi.exit_code, 0) << rmi.out << rmi.err;
  auto prune = Gantry({"prune", "--all"});
  ASSERT_EQ(prune.exit_code, 0) << prune.out << prune.err;
  std::set<std::string> committed, held;
  Snapshots(&committed, &held);
  for (const auto& c : chains_) EXPECT_TRUE(committed.count(c)) << "prune took " << c;
  auto exec = Ctr({"tasks", "exec", "--exec-id", "e1", "sleeper", "sh", "-c", "echo alive"});
  EXPECT_EQ(exec.out, "alive\n") << exec.err;
  ASSERT_NO_FATAL_FAILURE(RunPrints("run3"));

  // containerd lets go: its GC removes its names through the door...
  (void)Ctr({"tasks", "kill", "-s", "SIGKILL", "sleeper"});
  ASSERT_TRUE(fixtures::WaitUntil(
      [&] {
        return Ctr({"tasks", "rm", "-f", "sleeper"}).exit_code == 0;
      },
      20s, 100ms));
  ASSERT_EQ(Ctr({"containers", "rm", "sleeper"}).exit_code, 0);
  auto rm = Ctr({"images", "rm", "--sync", ref_});
  ASSERT_EQ(rm.exit_code, 0) << rm.out << rm.err;
  EXPECT_TRUE(fixtures::WaitUntil([&] { return HeldCount() == 0; }, 30s, 200ms))
      << Df().dump() << Logs();
  // ...and gantry's prune frees the layers.
  prune = Gantry({"prune"});
  ASSERT_EQ(prune.exit_code, 0) << prune.out << prune.err;
  committed.clear();
  held.clear();
  Snapshots(&committed, &held);
  for (const auto& c : chains_) EXPECT_FALSE(committed.count(c)) << c << " outlived its holders";
  auto fsck = Gantry({"fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;
}

// One store, many writers: containerd unpacking through the door, a CLI
// pull, a CRI pull of gantry serve and prunes, all on the same layers at
// once, twice over. Every call succeeds, each chain ends up committed once
// (containerd's copy of a chain gantry got meanwhile is dropped, or the
// other way round), the image runs and fsck is clean.
TEST_F(CtrsnapContainerd, ContainerdCliCriAndPruneAtOnceLeaveOneCopyOfEachChain) {
  const std::string gantry_ref = reg_->host() + "/fixture/app:v1";
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    fixtures::CommandResult ctr_pull, cli_pull, prunes[3];
    grpc::Status cri;
    std::string image_ref;
    {
      std::vector<std::thread> writers;
      writers.emplace_back([&] {
        ctr_pull = Ctr({"images", "pull", "--plain-http", "--snapshotter", "gantry", ref_});
      });
      writers.emplace_back([&] { cli_pull = Gantry({"pull", gantry_ref}); });
      writers.emplace_back([&] { cri = critest::Pull(*serve_, ref_, &image_ref); });
      writers.emplace_back([&] {
        for (auto& p : prunes) p = Gantry({"prune"});
      });
      for (auto& t : writers) t.join();
    }
    ASSERT_EQ(ctr_pull.exit_code, 0) << ctr_pull.out << ctr_pull.err << Logs();
    ASSERT_EQ(cli_pull.exit_code, 0) << cli_pull.out << cli_pull.err;
    ASSERT_TRUE(cri.ok()) << cri.error_message() << Logs();
    for (const auto& p : prunes) EXPECT_EQ(p.exit_code, 0) << p.out << p.err;

    std::set<std::string> committed, held;
    Snapshots(&committed, &held);
    for (const auto& c : chains_) {
      EXPECT_TRUE(committed.count(c)) << c << Logs();
      EXPECT_TRUE(held.count(c)) << c;
    }
    EXPECT_EQ(committed.size(), chains_.size()) << "one copy of each chain: " << Df().dump();
    ASSERT_NO_FATAL_FAILURE(RunPrints("mix" + std::to_string(round)));
    auto fsck = Gantry({"fsck"});
    EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;

    // Everyone lets go before the next round: it starts from nothing again.
    ASSERT_EQ(Ctr({"images", "rm", "--sync", ref_}).exit_code, 0);
    ASSERT_TRUE(fixtures::WaitUntil([&] { return HeldCount() == 0; }, 30s, 200ms))
        << Df().dump() << Logs();
    ASSERT_EQ(Gantry({"rmi", gantry_ref}).exit_code, 0);
    ASSERT_EQ(Gantry({"rmi", ref_}).exit_code, 0);
    auto prune = Gantry({"prune"});
    ASSERT_EQ(prune.exit_code, 0) << prune.out << prune.err;
    committed.clear();
    held.clear();
    Snapshots(&committed, &held);
    EXPECT_TRUE(committed.empty()) << Df().dump();
  }
}

}  // namespace
}  // namespace ctrsnaptest
