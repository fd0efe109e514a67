// The snapshotter door under containerd's CRI plugin: Debian's containerd
// 1.6, started by the test on its own root, state directory and socket
// with the CRI plugin enabled and configured by what `gantry
// containerd-config` prints (the proxy snapshotter `gantry` on the socket
// of the `gantry serve --snapshotter-listen` the test started, the CRI
// plugin's snapshotter and registry config_path, the hosts.toml files),
// driven by the project's Python grpcio CRI client (cri_client.py) as
// kubelet drives it: PullImage, then a pod sandbox with the host's network
// (no CNI) and a container whose output is read from the log file
// containerd writes. Images come from the registry fixture behind the
// counting fault proxy, after `gantry pull` put them in gantry's store.

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/containerd.h"
#include "integration/cri/cri_helpers.h"
#include "integration/ctrsnap/ctrcri_fixture.h"

namespace ctrcritest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A smaller variant of bench/lib.sh's /usr bench image (bench_usr_image:
// four layers of /usr slices, >= 100 MB), to keep the test's run time
// small: the fixture's busybox base layer, then three layers of /usr
// slices of this machine (about 30 MB uncompressed in all), each a
// directory tree read from the host as it is (regular files, directories
// and symlinks, with their modes and owners).
fixtures::LayerSpec HostTreeLayer(const std::vector<std::string>& dirs) {
  fixtures::LayerSpec layer;
  std::set<std::string> seen;
  auto add_parents = [&](const std::string& rel) {
    for (size_t i = rel.find('/'); i != std::string::npos; i = rel.find('/', i + 1)) {
      std::string parent = rel.substr(0, i) + "/";
      if (seen.insert(parent).second) layer.entries.push_back(fixtures::Dir(parent));
    }
  };
  for (const std::string& top : dirs) {
    std::vector<fs::path> paths;
    std::error_code ec;
    // A slice this machine lacks (a minimal install without man pages) is
    // left out; the layers' sizes are not what the test checks.
    for (fs::recursive_directory_iterator it("/" + top, ec), end; !ec && it != end;
         it.increment(ec))
      paths.push_back(it->path());
    if (paths.empty()) continue;
    std::sort(paths.begin(), paths.end());
    add_parents(top + "/");
    for (const fs::path& p : paths) {
      struct stat st;
      if (::lstat(p.c_str(), &st) != 0) continue;
      std::string rel = p.string().substr(1);
      fixtures::TarEntry e;
      if (S_ISDIR(st.st_mode)) {
        e = fixtures::Dir(rel + "/", st.st_mode & 07777);
        seen.insert(rel + "/");
      } else if (S_ISREG(st.st_mode)) {
        e.path = rel;
        e.content_from = p;
        e.mode = st.st_mode & 07777;
      } else if (S_ISLNK(st.st_mode)) {
        e = fixtures::Symlink(rel, fs::read_symlink(p).string());
      } else {
        continue;
      }
      e.uid = st.st_uid;
      e.gid = st.st_gid;
      layer.entries.push_back(std::move(e));
    }
  }
  return layer;
}

class CtrsnapCri : public CriContainerdFixture {};

TEST_F(CtrsnapCri, PullImageOfAnImageGantryHasFetchesNoLayerBlobAndAPodRunsIt) {
  fixtures::BuiltImage app, pause;
  ASSERT_NO_FATAL_FAILURE(PushAppAndPause(&app, &pause));
  for (const char* name : {"/fixture/app:v1", "/fixture/pause:v1"}) {
    auto gp = Gantry({"pull", reg_->host() + name});
    ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;
  }
  proxy_->ClearLog();

  const std::string ref = proxy_->host() + "/fixture/app:v1";
  auto pulled = Cri({"pull", ref});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.out << pulled.err << Logs();
  EXPECT_NE(pulled.out.find("image_ref sha256:" + app.config.digest.hex()), std::string::npos)
      << pulled.out;
  ExpectNoLayerGets(app);
  EXPECT_GT(HeldCount(), 0) << "containerd holds the chains through the door";

  // A pod: the sandbox (its image pulled by the CRI plugin itself) and a
  // container of the image pulled above, both on gantry's snapshots.
  const fs::path logs = dir_.path() / "pod-logs";
  fs::create_directories(logs);
  auto pod = Cri({"pod", ref, logs.string(), "sh", "-c", "echo hello-$((6*7))"});
  ASSERT_EQ(pod.exit_code, 0) << pod.out << pod.err << Logs();
  EXPECT_NE(pod.out.find("exit_code 0\n"), std::string::npos) << pod.out;
  // CRI log format: "<RFC 3339 time> stdout F <line>".
  std::string log = ReadText(logs / "c.log");
  EXPECT_NE(log.find(" stdout F hello-42\n"), std::string::npos) << log << pod.out;
  ExpectNoLayerGets(pause);
}

TEST_F(CtrsnapCri, PullImageOfTheUsrImageGantryHasFetchesNoLayerBlobAndCtrRunsIt) {
  fixtures::ImageSpec spec;
  spec.layers.push_back(fixtures::FixtureImageSpec().layers[0]);  // busybox, /usr/bin/env
  for (const auto& slice : std::vector<std::vector<std::string>>{
           {"usr/sbin"},
           {"usr/lib/python3.11/email", "usr/lib/python3.11/json", "usr/lib/python3.11/asyncio",
            "usr/lib/python3.11/encodings"},
           {"usr/share/man/man5", "usr/share/man/man8"}})
    spec.layers.push_back(HostTreeLayer(slice));
  fixtures::BuiltImage usr;
  ASSERT_NO_FATAL_FAILURE(
      pulltest::PushImage(*reg_, gantry_->dir() / "layout", spec, "bench/usr:v1", &usr));
  auto gp = Gantry({"pull", reg_->host() + "/bench/usr:v1"});
  ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;
  proxy_->ClearLog();

  const std::string ref = proxy_->host() + "/bench/usr:v1";
  auto pulled = Cri({"pull", ref});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.out << pulled.err << Logs();
  ExpectNoLayerGets(usr);

  // ctr runs the image the CRI plugin pulled (namespace k8s.io).
  auto r = Ctr({"run", "--rm", "--snapshotter", "gantry", ref, "usr1", "sh", "-c",
                "/usr/bin/env && test -f /usr/lib/python3.11/json/__init__.py && "
                "test -f /usr/sbin/runc && echo usr-ok"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << Logs();
  EXPECT_NE(r.out.find("PATH=/usr/local/sbin:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("usr-ok\n"), std::string::npos) << r.out;
}

// `gantry pull --containerd` into the CRI plugin's namespace ahead of
// time: kubelet's ImageStatus on containerd finds the image under its
// name and its id, and a pod runs it (and the published sandbox image)
// with the registry gone, so containerd cannot have fetched anything.
TEST_F(CtrsnapCri, PrePulledWithGantryPublishAPodRunsWithTheRegistryStopped) {
  fixtures::BuiltImage app, pause;
  ASSERT_NO_FATAL_FAILURE(PushAppAndPause(&app, &pause));
  const std::string ref = proxy_->host() + "/fixture/app:v1";
  for (const std::string& name : {ref, proxy_->host() + "/fixture/pause:v1"}) {
    auto gp = Gantry({"pull", name, "--containerd", "unix://" + containerd_->address()});
    ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;
    EXPECT_EQ(gp.err.find("warning"), std::string::npos) << gp.err << Logs();
  }
  proxy_->ClearLog();
  reg_.reset();

  const fs::path logs = dir_.path() / "pod-logs";
  fs::create_directories(logs);
  auto pod = Cri({"pod-present", ref, logs.string(), "sh", "-c", "echo hello-$((6*7))"});
  ASSERT_EQ(pod.exit_code, 0) << pod.out << pod.err << Logs();
  EXPECT_NE(pod.out.find("image_id sha256:" + app.config.digest.hex()), std::string::npos)
      << pod.out;
  EXPECT_NE(pod.out.find("exit_code 0\n"), std::string::npos) << pod.out;
  std::string log = ReadText(logs / "c.log");
  EXPECT_NE(log.find(" stdout F hello-42\n"), std::string::npos) << log << pod.out;
  EXPECT_EQ(proxy_->CountRequests("", "/v2/"), 0) << "containerd went to the registry";
  // By id, as kubelet looks images up.
  auto by_id = Cri({"pod-present", app.config.digest.str(), logs.string(), "true"});
  EXPECT_EQ(by_id.exit_code, 0) << by_id.out << by_id.err;
}

}  // namespace
}  // namespace ctrcritest
