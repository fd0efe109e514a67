#pragma once
// The peers of the snapshotter door's integration tests, shared by the
// suites of tests/integration/ctrsnap/: a gantry store with `gantry serve
// --snapshotter-listen` on a socket of the test, Debian's docker-registry
// behind the counting fault proxy holding the fixture image
// (fixture/app:v1), and Debian's containerd 1.6 started on its own root,
// state directory and socket with `[proxy_plugins.gantry]` on that
// snapshotter socket (the CRI plugin disabled).
//
//   class MySuite : public ctrsnaptest::ContainerdFixture {};
//   TEST_F(MySuite, X) {
//     auto pull = Ctr({"images", "pull", "--plain-http", "--snapshotter", "gantry", ref_});
//     ASSERT_EQ(pull.exit_code, 0) << pull.out << pull.err << Logs();
//   }
//
// Every test needs root and containerd, ctr, ctr-remote, the runc shim,
// runc, docker-registry, skopeo and busybox; SetUp skips without them.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/fd.h"
#include "fixtures/containerd.h"
#include "fixtures/image_builder.h"
#include "integration/cri/cri_helpers.h"

namespace ctrsnaptest {

namespace fs = std::filesystem;

std::string ReadText(const fs::path& p);

class ContainerdFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // `tool` (ctr, ctr-remote) with containerd's address and the test's
  // namespace, then `args`.
  fixtures::CommandResult Tool(const std::string& tool, const std::vector<std::string>& args,
                               std::chrono::milliseconds timeout = std::chrono::seconds(120));
  fixtures::CommandResult Ctr(const std::vector<std::string>& args) { return Tool("ctr", args); }
  fixtures::CommandResult CtrRemote(const std::vector<std::string>& args) {
    return Tool("ctr-remote", args);
  }
  // The argv Tool runs, for a client the test starts in the background.
  std::vector<std::string> ToolArgv(const std::string& tool,
                                    const std::vector<std::string>& args) const;

  // What to show when a step fails: both servers' logs.
  std::string Logs();
  // `gantry ARGS` on the test's store.
  fixtures::CommandResult Gantry(const std::vector<std::string>& args);
  // `gantry df --json`; fails the test (and returns {}) when it cannot.
  nlohmann::json Df();
  // Committed snapshots gantry has, and those of them containerd holds.
  void Snapshots(std::set<std::string>* committed, std::set<std::string>* held);
  // The number of snapshots containerd holds (`gantry df`).
  int HeldCount();
  // `ctr run --rm --snapshotter gantry` of the fixture image prints its output.
  void RunPrints(const std::string& id);

  // SIGKILLs `gantry serve` (the test fails unless it was running) and
  // starts it again on the same store and snapshotter socket.
  void KillServe();
  void StartServe();

  std::unique_ptr<pulltest::Gantry> gantry_;
  std::unique_ptr<fixtures::RegistryFixture> reg_;
  std::unique_ptr<fixtures::FaultProxy> proxy_;
  fixtures::BuiltImage img_;
  std::vector<std::string> chains_;  // bottom first
  common::TempDir dir_;
  fs::path snap_socket_;
  std::unique_ptr<critest::CriServer> serve_;
  int serve_starts_ = 0;
  std::string ref_;
  std::unique_ptr<fixtures::Containerd> containerd_;
};

}  // namespace ctrsnaptest
