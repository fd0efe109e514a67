// kubelet on a containerd node with gantry as its image service (issue
// 19), end to end: `gantry serve --containerd` (and its snapshotter door)
// as --image-service-endpoint, containerd 1.6's CRI plugin (snapshotter
// `gantry` through the proxy plugin) as --container-runtime-endpoint, and
// the project's Python grpcio CRI client playing kubelet: ImageService
// calls to gantry's socket, RuntimeService calls to containerd's. The
// shared set-up is ctrcri_fixture.h. KubeletPullThrough: an image the
// registry door's pull-through records is published as well.
//
// Each flow checks what kubelet relies on: after PullImage on gantry,
// containerd runs a pod of the image (the container's log file holds what
// it printed), the upstream registry sees no blob GET while it does, and
// RemoveImage on gantry removes the image from containerd's ListImages.

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fixtures/process.h"
#include "integration/ctrsnap/ctrcri_fixture.h"

namespace ctrcritest {
namespace {

using namespace std::chrono_literals;

class Kubelet : public CriContainerdFixture {
 protected:
  std::vector<std::string> ExtraServeArgs() override {
    return {"--containerd", "unix://" + ContainerdSocket().string()};
  }

  std::string AppRef() const { return proxy_->host() + "/fixture/app:v1"; }
  std::string PauseRef() const { return proxy_->host() + "/fixture/pause:v1"; }

  // kubelet's PullImage on gantry; fails the test unless it succeeds.
  void PullOnGantry(const std::string& ref) {
    auto r = Cri({"pull", ref}, serve_->socket());
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << Logs();
  }

  // The pod of `pod-present` with its image calls on gantry: ImageStatus
  // on gantry finds the image, then RunPodSandbox, CreateContainer and
  // StartContainer on containerd; the container prints hello-42.
  void PodRunsOnContainerd(const std::string& ref) {
    const fs::path logs = dir_.path() / "pod-logs";
    fs::create_directories(logs);
    auto pod = Cri({"kubelet-present", serve_->socket().string(), ref, logs.string(), "sh", "-c",
                    "echo hello-$((6*7))"});
    ASSERT_EQ(pod.exit_code, 0) << pod.out << pod.err << Logs();
    EXPECT_NE(pod.out.find("exit_code 0\n"), std::string::npos) << pod.out;
    // CRI log format: "<RFC 3339 time> stdout F <line>".
    const std::string log = ReadText(logs / "c.log");
    EXPECT_NE(log.find(" stdout F hello-42\n"), std::string::npos) << log << pod.out;
  }

  // containerd's CRI ListImages, one "image ID TAGS… DIGESTS…" line each.
  std::string ContainerdImages() {
    auto r = Cri({"list"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << Logs();
    return r.out;
  }

  // `gantry images --json`'s published state of each name.
  std::map<std::string, std::string> Published() {
    auto r = Gantry({"images", "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, std::string> out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_array()) return out;
    for (const auto& i : j)
      out[i.value("name", "")] =
          i["published"].is_string() ? i["published"].get<std::string>() : "";
    return out;
  }

  // containerd's CRI ListImages once it no longer lists `id`: the CRI
  // plugin updates its image cache from containerd's image events, a
  // moment after the records go. Polled, with a deadline.
  std::string ContainerdImagesWithout(const std::string& id) {
    std::string listed;
    (void)fixtures::WaitUntil(
        [&] {
          listed = ContainerdImages();
          return listed.find(id) == std::string::npos;
        },
        30s, 100ms);
    return listed;
  }

  // Waits (90 s at most) until `gantry images` shows each of `names`
  // published ("yes"); returns whether it did.
  bool WaitPublished(const std::vector<std::string>& names) {
    return fixtures::WaitUntil(
        [&] {
          auto published = Published();
          for (const std::string& n : names)
            if (published[n] != "yes") return false;
          return true;
        },
        90s, 200ms);
  }

  // No blob of the registry was fetched since ClearLog (gantry had them
  // all; containerd fetched none).
  void ExpectNoBlobGets() {
    EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/"), 0) << "containerd fetched a blob";
  }
};

TEST_F(Kubelet, PullImageOnGantryThenAPodOnContainerdThenRemoveImageOnGantry) {
  fixtures::BuiltImage app, pause;
  ASSERT_NO_FATAL_FAILURE(PushAppAndPause(&app, &pause));
  // The sandbox image too, as a node pre-pulls it: containerd then has
  // nothing to pull for RunPodSandbox.
  ASSERT_NO_FATAL_FAILURE(PullOnGantry(PauseRef()));
  ASSERT_NO_FATAL_FAILURE(PullOnGantry(AppRef()));
  // Twice: containerd's records are updated, not duplicated.
  ASSERT_NO_FATAL_FAILURE(PullOnGantry(AppRef()));
  auto published = Published();
  EXPECT_EQ(published[AppRef()], "yes") << Logs();
  EXPECT_EQ(published[PauseRef()], "yes") << Logs();
  auto ls = Gantry({"images"});
  EXPECT_NE(ls.out.find("PUBLISHED"), std::string::npos) << ls.out;

  // containerd's CRI plugin lists the image under its tag, repo digest and id.
  const std::string listed = ContainerdImages();
  EXPECT_NE(listed.find("image " + app.config.digest.str() + " " + AppRef()), std::string::npos)
      << listed;
  auto names = Ctr({"images", "ls", "-q"});
  ASSERT_EQ(names.exit_code, 0) << names.err;
  size_t tags = 0;
  std::istringstream in(names.out);
  for (std::string line; std::getline(in, line);) tags += line == AppRef();
  EXPECT_EQ(tags, 1u) << names.out;

  proxy_->ClearLog();
  ASSERT_NO_FATAL_FAILURE(PodRunsOnContainerd(AppRef()));
  ExpectNoBlobGets();
  EXPECT_GT(HeldCount(), 0) << "containerd holds gantry's chains through the door";

  auto rm = Cri({"kubelet-remove", serve_->socket().string(), AppRef()});
  ASSERT_EQ(rm.exit_code, 0) << rm.out << rm.err << Logs();
  const std::string after = ContainerdImagesWithout(app.config.digest.str());
  EXPECT_EQ(after.find(app.config.digest.str()), std::string::npos) << after;
  EXPECT_EQ(after.find(AppRef()), std::string::npos) << after;
  auto left = Ctr({"images", "ls", "-q"});
  EXPECT_EQ(left.out.find("fixture/app"), std::string::npos) << left.out;
  EXPECT_EQ(left.out.find(app.config.digest.str()), std::string::npos) << left.out;
  EXPECT_NE(left.out.find(PauseRef()), std::string::npos) << "the other image stays";
}

// Pre-pulled with `gantry pull --containerd` while `gantry serve` runs,
// then the upstream registry stopped before the pod starts: containerd
// cannot have fetched anything.
TEST_F(Kubelet, PrePulledWithGantryPullAPodRunsWithTheUpstreamStopped) {
  fixtures::BuiltImage app, pause;
  ASSERT_NO_FATAL_FAILURE(PushAppAndPause(&app, &pause));
  for (const std::string& ref : {PauseRef(), AppRef()}) {
    auto gp = Gantry({"pull", ref, "--containerd", "unix://" + ContainerdSocket().string()});
    ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;
    EXPECT_EQ(gp.err.find("warning"), std::string::npos) << gp.err << Logs();
  }
  EXPECT_EQ(Published()[AppRef()], "yes");
  proxy_->ClearLog();
  reg_.reset();

  ASSERT_NO_FATAL_FAILURE(PodRunsOnContainerd(AppRef()));
  EXPECT_EQ(proxy_->CountRequests("", "/v2/"), 0) << "containerd went to the registry";

  auto rm = Cri({"kubelet-remove", serve_->socket().string(), AppRef()});
  ASSERT_EQ(rm.exit_code, 0) << rm.out << rm.err << Logs();
  const std::string after = ContainerdImagesWithout(app.config.digest.str());
  EXPECT_EQ(after.find(app.config.digest.str()), std::string::npos) << after;
}

// containerd down while gantry serve publishes: PullImage still succeeds,
// the state is "pending" in `gantry images`, and once containerd is back
// the background retry publishes the image and the pod runs.
TEST_F(Kubelet, ContainerdRestartedDuringPublicationIsRetriedThenThePodRuns) {
  fixtures::BuiltImage app, pause;
  ASSERT_NO_FATAL_FAILURE(PushAppAndPause(&app, &pause));
  ASSERT_NO_FATAL_FAILURE(StopContainerd());
  ASSERT_NO_FATAL_FAILURE(PullOnGantry(PauseRef()));
  ASSERT_NO_FATAL_FAILURE(PullOnGantry(AppRef()));
  auto published = Published();
  EXPECT_EQ(published[AppRef()].rfind("pending: ", 0), 0u) << published[AppRef()];
  auto ls = Gantry({"images", "--format", "{{.Repository}}:{{.Tag}} {{.Published}}"});
  EXPECT_NE(ls.out.find(AppRef() + " pending: "), std::string::npos) << ls.out;

  ASSERT_NO_FATAL_FAILURE(StartContainerd());
  // The retries back off from 1 s (doubling, 30 s at most): both images
  // are published within a minute of containerd's return.
  ASSERT_TRUE(WaitPublished({AppRef(), PauseRef()})) << Logs();
  EXPECT_NE(serve_->LogText().find("published to containerd after retries"), std::string::npos)
      << Logs();

  proxy_->ClearLog();
  ASSERT_NO_FATAL_FAILURE(PodRunsOnContainerd(AppRef()));
  ExpectNoBlobGets();
}

// The registry door's pull-through records images too: gantry serve
// publishes them in the background (the door's client does not wait for
// it), and a pod then runs the image with nothing more fetched.
class KubeletPullThrough : public Kubelet {
 protected:
  std::vector<std::string> ExtraServeArgs() override {
    auto args = Kubelet::ExtraServeArgs();
    for (const char* a : {"--registry-listen", "127.0.0.1:0", "--registry-pull-through"})
      args.emplace_back(a);
    return args;
  }

  // The door's port, from gantry serve's log (20 s at most); 0 if absent.
  int DoorPort() {
    constexpr std::string_view kMark = "registry door serving address=127.0.0.1:";
    int port = 0;
    (void)fixtures::WaitUntil(
        [&] {
          const std::string log = serve_->LogText();
          const size_t at = log.find(kMark);
          if (at != std::string::npos) port = std::atoi(log.c_str() + at + kMark.size());
          return port != 0;
        },
        20s);
    return port;
  }
};

TEST_F(KubeletPullThrough, AnImageThePullThroughRecordedIsPublishedAndAPodRunsIt) {
  fixtures::BuiltImage app, pause;
  ASSERT_NO_FATAL_FAILURE(PushAppAndPause(&app, &pause));
  ASSERT_NO_FATAL_FAILURE(PullOnGantry(PauseRef()));
  const int port = DoorPort();
  ASSERT_NE(port, 0) << Logs();
  // A mirror client (containerd's hosts.toml form: ?ns=REGISTRY) asks the
  // door for a manifest gantry lacks: the door pulls it.
  auto got = Run({"curl", "-fsS", "-o", "/dev/null", "-H",
                  "Accept: application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json",
                  "http://127.0.0.1:" + std::to_string(port) +
                      "/v2/fixture/app/manifests/v1?ns=" + proxy_->host()});
  ASSERT_EQ(got.exit_code, 0) << got.out << got.err << Logs();
  ASSERT_TRUE(WaitPublished({AppRef()})) << Published()[AppRef()] << Logs();

  proxy_->ClearLog();
  ASSERT_NO_FATAL_FAILURE(PodRunsOnContainerd(AppRef()));
  ExpectNoBlobGets();
}

}  // namespace
}  // namespace ctrcritest
