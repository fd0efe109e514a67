// The snapshotter door with the real peers: Debian's containerd 1.6,
// started by the test on its own root, state directory and socket, loads
// gantry as a proxy snapshotter (`[proxy_plugins.gantry]`, the socket of
// the `gantry serve --snapshotter-listen` the test started); `ctr` and
// `ctr-remote` (Debian's stargz-snapshotter) pull the fixture image from
// the registry fixture through the counting fault proxy and run it with
// `--snapshotter gantry`.

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "common/fd.h"
#include "integration/cri/cri_helpers.h"
#include "oci/manifest.h"

namespace ctrsnaptest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string ReadText(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CtrsnapContainerd : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ROOT("containerd, mounts");
    REQUIRE_TOOLS("containerd", "ctr", "ctr-remote", "containerd-shim-runc-v2", "runc",
                  "docker-registry", "skopeo");
    REQUIRE_BUSYBOX();
    auto g = pulltest::Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<pulltest::Gantry>(std::move(*g));
    ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
    ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*reg_, &proxy_));
    ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
        *reg_, gantry_->dir() / "layout", fixtures::FixtureImageSpec(), "fixture/app:v1", &img_));
    chains_.clear();
    for (const auto& c : oci::ChainIds(img_.diff_ids)) chains_.push_back(c.str());

    auto d = common::TempDir::Create("gsnap");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    snap_socket_ = dir_.path() / "s.sock";
    ASSERT_NO_FATAL_FAILURE(critest::CriServer::Start(
        *gantry_, {"--snapshotter-listen", "unix://" + snap_socket_.string()}, &serve_));
    ASSERT_TRUE(fs::exists(snap_socket_)) << serve_->LogText();

    socket_ = (dir_.path() / "c.sock").string();
    ns_ = "gs" + std::to_string(::getpid());
    std::ofstream(dir_.path() / "config.toml")
        << "version = 2\n"
        << "root = \"" << (dir_.path() / "root").string() << "\"\n"
        << "state = \"" << (dir_.path() / "state").string() << "\"\n"
        << "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
        << "[grpc]\n  address = \"" << socket_ << "\"\n"
        << "[ttrpc]\n  address = \"" << socket_ << ".ttrpc\"\n"
        << "[debug]\n  address = \"\"\n  level = \"debug\"\n[metrics]\n  address = \"\"\n"
        << "[proxy_plugins.gantry]\n  type = \"snapshot\"\n  address = \"" << snap_socket_.string()
        << "\"\n";
    fixtures::SpawnOptions so;
    so.argv = {"containerd", "--config", (dir_.path() / "config.toml").string()};
    so.stdout_path = so.stderr_path = dir_.path() / "containerd.log";
    auto child = fixtures::Child::Spawn(so);
    ASSERT_TRUE(child) << child.error().message;
    containerd_ = std::move(*child);
    bool up = fixtures::WaitUntil([&] { return Ctr({"version"}).exit_code == 0; }, 30s, 50ms);
    ASSERT_TRUE(up) << "containerd did not answer:\n" << ReadText(dir_.path() / "containerd.log");
    ref_ = proxy_->host() + "/fixture/app:v1";
  }

  void TearDown() override {
    if (containerd_.valid()) {
      auto tasks = Ctr({"containers", "ls", "-q"});
      std::istringstream in(tasks.out);
      for (std::string id; std::getline(in, id);) {
        if (id.empty()) continue;
        (void)Ctr({"tasks", "kill", "-s", "SIGKILL", id});
        (void)Ctr({"tasks", "rm", "-f", id});
        (void)Ctr({"containers", "rm", id});
      }
      (void)Ctr({"images", "rm", "--sync", ref_});
      (void)containerd_.Terminate(10s);
    }
    serve_.reset();  // after containerd: it talks to the door until it stops
  }

  fixtures::CommandResult Tool(const std::string& tool, const std::vector<std::string>& args,
                               std::chrono::milliseconds timeout = 120s) {
    std::vector<std::string> argv = {tool, "--address", socket_, "--namespace", ns_};
    argv.insert(argv.end(), args.begin(), args.end());
    fixtures::RunOptions options;
    options.timeout = timeout;
    auto r = fixtures::RunCommand(argv, options);
    if (!r) {
      fixtures::CommandResult f;
      f.err = r.error().message;
      return f;
    }
    return *r;
  }
  fixtures::CommandResult Ctr(const std::vector<std::string>& args) { return Tool("ctr", args); }
  fixtures::CommandResult CtrRemote(const std::vector<std::string>& args) {
    return Tool("ctr-remote", args);
  }

  // What to show when a step fails: both servers' logs.
  std::string Logs() {
    return "\n--- gantry serve:\n" + serve_->LogText() + "\n--- containerd:\n" +
           ReadText(dir_.path() / "containerd.log");
  }

  fixtures::CommandResult Gantry(const std::vector<std::string>& args) {
    auto r = gantry_->Run(args);
    if (!r) {
      fixtures::CommandResult f;
      f.err = r.error().message;
      return f;
    }
    return *r;
  }

  nlohmann::json Df() {
    auto r = Gantry({"df", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object()) << r.out;
    return j.is_object() ? j : nlohmann::json::object();
  }

  // Committed snapshots gantry has, and those of them containerd holds.
  void Snapshots(std::set<std::string>* committed, std::set<std::string>* held) {
    for (const auto& s : Df().value("snapshots", nlohmann::json::array())) {
      if (s.value("kind", "") != "committed") continue;
      committed->insert(s.value("key", ""));
      if (s.value("containerd", false)) held->insert(s.value("key", ""));
    }
  }

  int HeldCount() {
    return Df().value("containerd", nlohmann::json::object()).value("snapshots", -1);
  }

  void RunPrints(const std::string& id) {
    auto r = Ctr(
        {"run", "--rm", "--snapshotter", "gantry", ref_, id, "sh", "-c", "echo hello-$((6*7))"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << Logs();
    EXPECT_EQ(r.out, "hello-42\n") << r.err;
  }

  std::unique_ptr<pulltest::Gantry> gantry_;
  std::unique_ptr<fixtures::RegistryFixture> reg_;
  std::unique_ptr<fixtures::FaultProxy> proxy_;
  fixtures::BuiltImage img_;
  std::vector<std::string> chains_;  // bottom first
  common::TempDir dir_;
  fs::path snap_socket_;
  std::unique_ptr<critest::CriServer> serve_;
  std::string socket_, ns_, ref_;
  fixtures::Child containerd_;
};

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
