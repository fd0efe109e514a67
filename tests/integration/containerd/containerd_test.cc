// containerd drives gantry-runtime through containerd-shim-runc-v2, exactly
// as on a node: the test starts Debian's containerd on its own root, state
// directory and socket, imports the fixture image and runs it with
// `ctr run --runc-binary`. The same steps run with runc and crun as the
// runtime binary, and must be observed the same way.

#include "fixtures/containerd.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/require.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr char kImage[] = "gantry.test/fixture:latest";

struct RuntimeParam {
  const char* name;
  const char* binary;  // looked up in PATH
  // Debian's crun 1.8.1 refuses the hybrid cgroup layout: it runs in a
  // private mount namespace without /sys/fs/cgroup/unified, through a
  // wrapper script the test writes.
  bool hybrid_wrapper = false;
};

std::string ReadText(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The OCI layout as a tar for `ctr images import`.
common::Result<std::string> LayoutTar(const fs::path& layout) {
  std::vector<fixtures::TarEntry> entries;
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(layout)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& p : files) {
    std::string rel = fs::relative(p, layout).string();
    if (fs::is_directory(p)) {
      entries.push_back(fixtures::Dir(rel + "/"));
    } else {
      fixtures::TarEntry f = fixtures::File(rel, "");
      f.content_from = p;
      entries.push_back(f);
    }
  }
  return fixtures::BuildTar(entries);
}

class RuntimeContainerd : public ::testing::TestWithParam<RuntimeParam> {
 protected:
  void SetUp() override {
    REQUIRE_ROOT("containerd, mounts and cgroups");
    REQUIRE_TOOLS("containerd", "ctr", "containerd-shim-runc-v2", GetParam().binary, "unshare");
    REQUIRE_BUSYBOX();
    auto d = common::TempDir::Create("gantry-ctd");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    binary_ = GetParam().binary;
    if (GetParam().hybrid_wrapper) {
      binary_ = (dir_.path() / (std::string(GetParam().name) + "-wrapper")).string();
      ASSERT_TRUE(common::AtomicWriteFile(
          binary_,
          std::string(
              "#!/bin/sh\nexec unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; "
              "exec ") +
              GetParam().binary + " \"$@\"' " + GetParam().binary + " \"$@\"\n",
          0755));
    }
    auto started =
        fixtures::Containerd::Start({.dir = dir_.path(), .ns = "gt" + std::to_string(::getpid())});
    ASSERT_TRUE(started) << started.error().message;
    containerd_ = std::move(*started);

    fs::path layout = dir_.path() / "layout";
    auto img = fixtures::WriteImage(layout, fixtures::FixtureImageSpec(), "latest");
    ASSERT_TRUE(img) << img.error().message;
    auto tar = LayoutTar(layout);
    ASSERT_TRUE(tar) << tar.error().message;
    ASSERT_TRUE(common::AtomicWriteFile(dir_.path() / "image.tar", *tar, 0644));
    auto imp = Ctr({"images", "import", "--base-name", "gantry.test/fixture",
                    (dir_.path() / "image.tar").string()});
    ASSERT_EQ(imp.exit_code, 0) << imp.out << imp.err;
    auto ls = Ctr({"images", "ls", "-q"});
    ASSERT_NE(ls.out.find(kImage), std::string::npos) << ls.out << ls.err;
  }

  void TearDown() override {
    if (!containerd_) return;
    (void)Ctr({"images", "rm", kImage});
    // Whatever a failed test left goes with containerd: tasks killed,
    // containers removed, nothing left mounted under its root.
    containerd_.reset();
  }

  fixtures::CommandResult Ctr(const std::vector<std::string>& args,
                              std::chrono::milliseconds timeout = 60s) {
    return containerd_->Ctr(args, timeout);
  }

  // ctr run/task flags selecting the runtime under test and its state root.
  std::vector<std::string> RuntimeFlags() const {
    return {"--runc-binary", binary_, "--runc-root", (dir_.path() / "rr").string()};
  }

  // `ctr run -d` of the fixture image as `id` running `sleep 1000`, under
  // the runtime being tested; waits until the task runs.
  void RunSleeper(const std::string& id) {
    std::vector<std::string> args = {"run", "-d"};
    for (const std::string& f : RuntimeFlags()) args.push_back(f);
    for (const char* a : {kImage, id.c_str(), "sleep", "1000"}) args.push_back(a);
    auto r = Ctr(args);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    ASSERT_TRUE(fixtures::WaitUntil([&] { return TaskStatus(id) == "RUNNING"; }, 10s));
  }

  // `ctr task ls` status of `id` ("RUNNING", "PAUSED", "STOPPED"), or "".
  std::string TaskStatus(const std::string& id) {
    auto r = Ctr({"tasks", "ls"});
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      std::istringstream f(line);
      std::string tid, pid, status;
      f >> tid >> pid >> status;
      if (tid == id) return status;
    }
    return "";
  }

  // containerd's cgroupsPath is /<namespace>/<id>.
  fs::path CgroupDir(const std::string& controller, const std::string& id) const {
    return fs::path("/sys/fs/cgroup") / controller / containerd_->ns() / id;
  }

  common::TempDir dir_;
  std::string binary_;  // what the shim runs
  std::unique_ptr<fixtures::Containerd> containerd_;
};

TEST_P(RuntimeContainerd, RunPrintsOutputAndExitCode) {
  std::vector<std::string> args = {"run", "--rm"};
  for (const std::string& f : RuntimeFlags()) args.push_back(f);
  for (const char* a : {kImage, "run1", "sh", "-c", "echo hello-$((6*7)) $(id -u); exit 3"})
    args.push_back(a);
  auto r = Ctr(args);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_EQ(r.out, "hello-42 0\n") << r.err;
  EXPECT_EQ(Ctr({"containers", "ls", "-q"}).out, "");
}

TEST_P(RuntimeContainerd, ExecPsPauseResumeKillDelete) {
  const std::string id = "life";
  ASSERT_NO_FATAL_FAILURE(RunSleeper(id));

  // exec: output, exit code, and it ran inside (the container's hostname
  // namespace and root: /hello.txt is the fixture's).
  auto r = Ctr({"tasks", "exec", "--exec-id", "e1", id, "sh", "-c", "cat /hello.txt; exit 4"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_EQ(r.out, "hello from gantry\n");

  // ps: the init's host pid, which is the task's.
  r = Ctr({"tasks", "ps", id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto ls = Ctr({"tasks", "ls"});
  std::string pid;
  {
    std::istringstream in(ls.out);
    for (std::string line; std::getline(in, line);) {
      std::istringstream f(line);
      std::string tid, p;
      f >> tid >> p;
      if (tid == id) pid = p;
    }
  }
  ASSERT_FALSE(pid.empty()) << ls.out;
  // (crun's `ps` reads the cgroup2 tree its wrapper hides: other pids.)
  if (!GetParam().hybrid_wrapper) {
    EXPECT_NE(r.out.find("\n" + pid + " "), std::string::npos) << r.out;
  }

  // pause/resume: the freezer seen from outside.
  r = Ctr({"tasks", "pause", id});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(TaskStatus(id), "PAUSED");
  EXPECT_EQ(ReadText(CgroupDir("freezer", id) / "freezer.state"), "FROZEN");
  r = Ctr({"tasks", "resume", id});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(TaskStatus(id), "RUNNING");
  EXPECT_EQ(ReadText(CgroupDir("freezer", id) / "freezer.state"), "THAWED");

  // kill: sleep as pid 1 ignores SIGTERM; SIGKILL stops it.
  r = Ctr({"tasks", "kill", "-s", "SIGKILL", id});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(fixtures::WaitUntil([&] { return TaskStatus(id) == "STOPPED"; }, 10s))
      << TaskStatus(id);
  r = Ctr({"tasks", "rm", id});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(TaskStatus(id), "");
  r = Ctr({"containers", "rm", id});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_FALSE(fs::exists(CgroupDir("memory", id)));
  EXPECT_FALSE(fs::exists(dir_.path() / "rr" / containerd_->ns() / id));
}

TEST_P(RuntimeContainerd, ForceDeleteOfRunningTask) {
  const std::string id = "force";
  ASSERT_NO_FATAL_FAILURE(RunSleeper(id));
  auto r = Ctr({"tasks", "rm", "-f", id});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(TaskStatus(id), "");
  EXPECT_EQ(Ctr({"containers", "rm", id}).exit_code, 0);
  EXPECT_FALSE(fs::exists(CgroupDir("memory", id)));
}

TEST_P(RuntimeContainerd, FailingContainerShowsTheRuntimesError) {
  std::vector<std::string> args = {"run", "--rm"};
  for (const std::string& f : RuntimeFlags()) args.push_back(f);
  for (const char* a : {kImage, "fail1", "/no/such/binary"}) args.push_back(a);
  auto r = Ctr(args);
  EXPECT_NE(r.exit_code, 0);
  // Both runtimes name the missing file; the shim passes the message on.
  EXPECT_NE((r.out + r.err).find("/no/such/binary"), std::string::npos) << r.out << r.err;
  if (std::string(GetParam().name) == "gantry") {
    EXPECT_NE((r.out + r.err).find("No such file or directory"), std::string::npos) << r.err;
  }
  (void)Ctr({"containers", "rm", "fail1"});
  EXPECT_EQ(Ctr({"containers", "ls", "-q"}).out, "");
}

INSTANTIATE_TEST_SUITE_P(Runtimes, RuntimeContainerd,
                         ::testing::Values(RuntimeParam{"gantry", GANTRY_RUNTIME_BIN},
                                           RuntimeParam{"runc", "runc"},
                                           RuntimeParam{"crun", "crun", true}),
                         [](const auto& p) { return std::string(p.param.name); });

}  // namespace
