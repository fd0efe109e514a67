#pragma once
// The peers of the tests of containerd's CRI plugin over gantry's
// snapshotter door (suites CtrsnapCri and Kubelet): a gantry store with
// `gantry serve --snapshotter-listen` (plus the suite's ExtraServeArgs),
// Debian's docker-registry behind the counting fault proxy, and Debian's
// containerd 1.6 on its own root, state and socket with the CRI plugin
// enabled and configured by what `gantry containerd-config` prints (the
// proxy snapshotter `gantry`, the CRI plugin's snapshotter and registry
// config_path, a hosts.toml whose mirror is the proxy), host-network pods
// (no CNI), sandbox_image the fixture's pause image (PushAppAndPause),
// restrict_oom_score_adj = true. The project's Python grpcio CRI client
// (cri/cri_client.py) plays kubelet.
//
//   class MySuite : public ctrcritest::CriContainerdFixture {};
//   TEST_F(MySuite, X) {
//     fixtures::BuiltImage app, pause;
//     ASSERT_NO_FATAL_FAILURE(PushAppAndPause(&app, &pause));
//     auto pod = Cri({"pod", ref, logs, "sh", "-c", "echo hi"});
//   }
//
// Every test needs root, containerd, ctr, the runc shim, runc,
// docker-registry, skopeo, busybox, python3-grpcio and python3-grpc-tools.

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/fd.h"
#include "fixtures/containerd.h"
#include "fixtures/image_builder.h"
#include "integration/cri/cri_helpers.h"

namespace ctrcritest {

namespace fs = std::filesystem;

// The file's text, or the error reading it (for failure messages).
std::string ReadText(const fs::path& p);

class CriContainerdFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Flags added to `gantry serve` (started before containerd, whose
  // socket will be ContainerdSocket()).
  virtual std::vector<std::string> ExtraServeArgs() { return {}; }
  // Where containerd's socket is (and will be again after a restart).
  fs::path ContainerdSocket() const { return dir_.path() / "c.sock"; }

  // Stops containerd (its tasks and containers go, its images stay) and
  // starts it again on the same root and configuration.
  void StopContainerd();
  void StartContainerd();

  fixtures::CommandResult Run(const std::vector<std::string>& argv);
  fixtures::CommandResult Ctr(const std::vector<std::string>& args);
  fixtures::CommandResult Gantry(const std::vector<std::string>& args);
  // cri_client.py MODE ARGS… against containerd's CRI socket, or `socket`.
  fixtures::CommandResult Cri(const std::vector<std::string>& args, const fs::path& socket = {});
  // Both servers' logs, for failure messages.
  std::string Logs();

  // Pushes the fixture image as fixture/app:v1 and the sandbox ("pause")
  // image, the fixture's layers running a process that stays, as
  // fixture/pause:v1 (the config's sandbox_image).
  void PushAppAndPause(fixtures::BuiltImage* app, fixtures::BuiltImage* pause);
  // No layer blob of `img` was fetched from the registry since ClearLog,
  // and containerd's requests did reach it (through the proxy).
  void ExpectNoLayerGets(const fixtures::BuiltImage& img);
  // The number of snapshots containerd holds (`gantry df`); -1 on error.
  int HeldCount();

  std::unique_ptr<pulltest::Gantry> gantry_;
  std::unique_ptr<fixtures::RegistryFixture> reg_;
  std::unique_ptr<fixtures::FaultProxy> proxy_;
  common::TempDir dir_;
  std::unique_ptr<critest::CriServer> serve_;
  std::unique_ptr<fixtures::Containerd> containerd_;

 private:
  // Splits what `gantry containerd-config` printed (see the .cc).
  void InstallPrinted(const std::string& printed, const fs::path& certs, std::string* fragment);

  fixtures::ContainerdOptions containerd_options_;
};

}  // namespace ctrcritest
