// The container lifecycle through gantry-runtime's command line, next to
// runc and crun where they share the behaviour: state JSON and status
// transitions, list, kill --all, delete --force from every state, bad
// bundles that must fail cleanly, --log JSON lines, --console-socket.

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>

#include "common/fs.h"
#include "fixtures/require.h"
#include "integration/runtime/runtime_helpers.h"

namespace {

using rttest::json;
using rttest::Runtime;
namespace fs = std::filesystem;

// Gone or a zombie (an orphaned init waits for its new parent to reap it).
bool Dead(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  std::getline(in, s);
  return s.empty() || s.find(") Z") != std::string::npos;
}

class RuntimeLifecycle : public rttest::RuntimeSuite {
 protected:
  void SetUp() override {
    rttest::RuntimeSuite::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    gantry_ = rttest::Gantry(dir_.path());
  }

  // Nothing of container `id` is left: state dir, cgroups, mounts, process.
  void ExpectGone(const Runtime& rt, const std::string& id, const fs::path& bundle, pid_t pid = 0) {
    EXPECT_FALSE(rt.State(id)) << rt.name << ": state of " << id << " still there";
    if (rt.name == "gantry") {
      EXPECT_FALSE(fs::exists(dir_.path() / "gantry-root" / id));
    }
    EXPECT_EQ(rttest::CgroupDirsNamed(id), std::vector<std::string>{}) << rt.name;
    EXPECT_EQ(rttest::MountsMentioning(bundle.string()), std::vector<std::string>{}) << rt.name;
    EXPECT_EQ(rttest::MountsMentioning(rttest::SharedRootfs().string()),
              std::vector<std::string>{});
    if (pid > 0) {
      bool gone = fixtures::WaitUntil([&] { return Dead(pid); }, std::chrono::seconds(10));
      EXPECT_TRUE(gone) << rt.name << ": init " << pid << " still alive";
    }
  }

  Runtime gantry_;
};

TEST_F(RuntimeLifecycle, RuntimeStateTransitionsCreatedRunningStopped) {
  rttest::Bundle b = rttest::MakeBundle({"sleep", "100"});
  b.config["annotations"] = {{"org.example.key", "value"}};
  b.Write();
  for (const Runtime& rt : runtimes_) {
    std::string id = rttest::UniqueId("st-" + rt.name);
    fs::path pid_file = dir_.path() / (id + ".pid");
    auto c =
        rt.Detached({"create", "--bundle", b.path().string(), "--pid-file", pid_file.string(), id},
                    dir_.path() / (id + ".log"));
    ASSERT_EQ(c.exit_code, 0) << rt.name << ": " << c.err;
    auto s = rt.State(id);
    ASSERT_TRUE(s) << rt.name;
    for (const char* key :
         {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"})
      EXPECT_TRUE(s->contains(key)) << rt.name << " state lacks " << key;
    EXPECT_EQ((*s)["id"], id);
    EXPECT_EQ((*s)["status"], "created") << rt.name;
    EXPECT_EQ((*s)["bundle"], b.path().string()) << rt.name;
    EXPECT_EQ((*s)["rootfs"], rttest::SharedRootfs().string()) << rt.name;
    EXPECT_EQ((*s)["annotations"]["org.example.key"], "value") << rt.name;
    std::string created = (*s)["created"];
    EXPECT_TRUE(created.size() > 20 && created.back() == 'Z') << created;
    pid_t pid = (*s)["pid"];
    EXPECT_GT(pid, 0);
    auto pf = common::ReadFile(pid_file);
    ASSERT_TRUE(pf) << rt.name;
    EXPECT_EQ(std::stoi(*pf), pid) << rt.name;

    auto list = rt.Cmd({"list", "--format", "json"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    json l = json::parse(list.out, nullptr, false);
    ASSERT_TRUE(l.is_array()) << rt.name << ": " << list.out;
    ASSERT_EQ(l.size(), 1u) << rt.name;
    EXPECT_EQ(l[0]["id"], id);
    EXPECT_EQ(l[0]["status"], "created");

    EXPECT_EQ(rt.Cmd({"start", id}).exit_code, 0) << rt.name;
    EXPECT_EQ((*rt.State(id))["status"], "running") << rt.name;
    auto again = rt.Cmd({"start", id});
    EXPECT_NE(again.exit_code, 0) << rt.name << " started a running container";
    auto del = rt.Cmd({"delete", id});
    EXPECT_NE(del.exit_code, 0) << rt.name << " deleted a running container";
    EXPECT_EQ(rt.Cmd({"kill", id, "KILL"}).exit_code, 0) << rt.name;
    ASSERT_TRUE(rt.WaitStatus(id, "stopped")) << rt.name;
    EXPECT_EQ((*rt.State(id))["pid"], 0) << rt.name;
    EXPECT_NE(rt.Cmd({"kill", id, "TERM"}).exit_code, 0)
        << rt.name << " signalled a stopped container";
    auto d = rt.Cmd({"delete", id});
    EXPECT_EQ(d.exit_code, 0) << rt.name << ": " << d.err;
    ExpectGone(rt, id, b.path(), pid);
  }
}

TEST_F(RuntimeLifecycle, RuntimeKillAllSignalsEveryProcessInTheCgroup) {
  // No pid namespace: the init's death would not take the others with it.
  rttest::Bundle b = rttest::MakeBundle({"sh", "-c", "sleep 100 & sleep 100 & wait"});
  json& ns = b.config["linux"]["namespaces"];
  ns.erase(std::remove_if(ns.begin(), ns.end(), [](const json& n) { return n["type"] == "pid"; }),
           ns.end());
  b.Write();
  for (const Runtime& rt : runtimes_) {
    std::string id = rttest::UniqueId("all-" + rt.name);
    auto run = rt.Detached({"run", "--detach", "--bundle", b.path().string(), id},
                           dir_.path() / (id + ".log"));
    ASSERT_EQ(run.exit_code, 0) << rt.name << ": " << run.err;
    auto pid = (*rt.State(id))["pid"].get<pid_t>();
    std::vector<pid_t> pids;
    ASSERT_TRUE(fixtures::WaitUntil(
        [&] {
          auto ps = rt.Cmd({"ps", "--format", "json", id});
          json j = json::parse(ps.out, nullptr, false);
          pids = j.is_array() ? j.get<std::vector<pid_t>>() : std::vector<pid_t>{};
          return pids.size() == 3;
        },
        std::chrono::seconds(10)))
        << rt.name << " ps: " << pids.size() << " pids";
    auto k = rt.Cmd({"kill", "--all", id, "KILL"});
    EXPECT_EQ(k.exit_code, 0) << rt.name << ": " << k.err;
    for (pid_t p : pids) {
      EXPECT_TRUE(fixtures::WaitUntil([&] { return Dead(p); }, std::chrono::seconds(10)))
          << rt.name << ": pid " << p << " survived kill --all";
    }
    ASSERT_TRUE(rt.WaitStatus(id, "stopped")) << rt.name;
    EXPECT_EQ(rt.Cmd({"delete", id}).exit_code, 0) << rt.name;
    ExpectGone(rt, id, b.path(), pid);
  }
}

TEST_F(RuntimeLifecycle, RuntimeDeleteForceCleansEveryState) {
  rttest::Bundle b = rttest::MakeBundle({"sleep", "100"});
  for (const Runtime& rt : runtimes_) {
    for (const char* state : {"created", "running", "stopped"}) {
      std::string id = rttest::UniqueId(std::string("force-") + state + "-" + rt.name);
      auto c =
          rt.Detached({"create", "--bundle", b.path().string(), id}, dir_.path() / (id + ".log"));
      ASSERT_EQ(c.exit_code, 0) << rt.name << ": " << c.err;
      pid_t pid = (*rt.State(id))["pid"];
      if (std::string(state) != "created") {
        ASSERT_EQ(rt.Cmd({"start", id}).exit_code, 0);
      }
      if (std::string(state) == "stopped") {
        ASSERT_EQ(rt.Cmd({"kill", id, "9"}).exit_code, 0);
        ASSERT_TRUE(rt.WaitStatus(id, "stopped"));
      }
      ASSERT_TRUE(rt.WaitStatus(id, state)) << rt.name;
      auto d = rt.Cmd({"delete", "--force", id});
      EXPECT_EQ(d.exit_code, 0) << rt.name << " " << state << ": " << d.err;
      ExpectGone(rt, id, b.path(), pid);
    }
  }
}

TEST_F(RuntimeLifecycle, RuntimeBadBundleFailsCleanly) {
  struct Case {
    const char* name;
    std::function<void(rttest::Bundle&)> spoil;
    const char* message;
  };
  rlimit nofile{};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  const std::vector<Case> cases = {
      {"no-config", [](rttest::Bundle& b) { fs::remove(b.path() / "config.json"); },
       "has no config.json"},
      {"invalid-json",
       [](rttest::Bundle& b) { std::ofstream(b.path() / "config.json") << "{\"ociVersion\": "; },
       "invalid JSON"},
      {"unknown-ns",
       [](rttest::Bundle& b) {
         b.config["linux"]["namespaces"].push_back({{"type", "foo"}});
       },
       "unknown namespace type `foo`"},
      {"missing-rootfs",
       [](rttest::Bundle& b) { b.config["root"]["path"] = (b.path() / "nope").string(); },
       "does not exist"},
      {"empty-args", [](rttest::Bundle& b) { b.config["process"]["args"] = json::array(); },
       "process.args: must not be empty"},
      {"mount-escapes",
       [](rttest::Bundle& b) {
         b.config["mounts"].push_back(
             {{"destination", "/../../../tmp/evil"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
       },
       "outside the rootfs"},
      // Failures found by the init itself, after the clone.
      {"bind-source-missing",
       [](rttest::Bundle& b) {
         b.config["mounts"].push_back({{"destination", "/mnt"},
                                       {"type", "bind"},
                                       {"source", "/nonexistent-gantry-src"},
                                       {"options", {"rbind"}}});
       },
       "bind mount source `/nonexistent-gantry-src`"},
      {"oom-negative", [](rttest::Bundle& b) { b.config["process"]["oomScoreAdj"] = -500; },
       "CAP_SYS_RESOURCE"},
      {"rlimit-above-hard",
       [&](rttest::Bundle& b) {
         b.config["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"},
                                            {"soft", nofile.rlim_max + 1},
                                            {"hard", nofile.rlim_max + 1}}};
       },
       "CAP_SYS_RESOURCE"},
      {"no-executable",
       [](rttest::Bundle& b) { b.config["process"]["args"] = json::array({"nosuchcmd"}); },
       "executable file not found"},
  };
  for (const Case& c : cases) {
    rttest::Bundle b = rttest::MakeBundle({"true"});
    c.spoil(b);
    if (fs::exists(b.path() / "config.json") && std::string(c.name) != "invalid-json") b.Write();
    std::string id = rttest::UniqueId(std::string("bad-") + c.name);
    auto r = gantry_.Cmd({"create", "--bundle", b.path().string(), id});
    EXPECT_EQ(r.exit_code, 1) << c.name;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.name << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.name << ": " << r.err;
    ExpectGone(gantry_, id, b.path());
  }
}

TEST_F(RuntimeLifecycle, RuntimeLogJsonErrorLine) {
  fs::path log = dir_.path() / "log.json";
  auto r = gantry_.Cmd({"--log", log.string(), "--log-format", "json", "state", "nosuch"});
  // Global flags after --root still parse: the prefix ends with --root DIR.
  EXPECT_EQ(r.exit_code, 1);
  auto text = common::ReadFile(log);
  ASSERT_TRUE(text) << text.error().message;
  std::string last = text->substr(0, text->size() - 1);
  last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
  json j = json::parse(last, nullptr, false);
  ASSERT_TRUE(j.is_object()) << *text;
  EXPECT_EQ(j["level"], "error");
  EXPECT_NE(j["msg"].get<std::string>().find("does not exist"), std::string::npos) << last;
  EXPECT_TRUE(j["time"].is_string());
}

TEST_F(RuntimeLifecycle, RuntimeConsoleSocketReceivesPty) {
  rttest::Bundle b =
      rttest::MakeBundle({"sh", "-c", "echo tty=$(tty) out=$(readlink /proc/self/fd/1)"});
  b.config["process"]["terminal"] = true;
  b.Write();
  for (const Runtime& rt : runtimes_) {
    std::string sock_path = (dir_.path() / ("c-" + rt.name)).string();
    std::string id = rttest::UniqueId("tty-" + rt.name);
    std::string why;
    common::UniqueFd master = rttest::CreateWithConsole(rt, b.path(), sock_path, id, why);
    ASSERT_TRUE(master) << why;
    std::string out;
    char buf[512];
    ssize_t n;
    while ((n = ::read(master.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    EXPECT_NE(out.find("tty=/dev/"), std::string::npos) << rt.name << ": " << out;
    ASSERT_TRUE(rt.WaitStatus(id, "stopped")) << rt.name;
    EXPECT_EQ(rt.Cmd({"delete", id}).exit_code, 0) << rt.name;
    ExpectGone(rt, id, b.path());
  }
}

TEST_F(RuntimeLifecycle, RuntimeMountThroughSymlinkStaysInRootfs) {
  // A rootfs of its own whose /escape links to a host directory by its
  // absolute path: the mount must land inside the rootfs, as if chrooted.
  auto host = common::TempDir::Create("gantry-rt-host");
  ASSERT_TRUE(host);
  fs::path rootfs = dir_.path() / "rootfs";
  fs::create_directories(rootfs / "bin");
  for (const char* d : {"proc", "sys", "dev", "tmp"}) fs::create_directories(rootfs / d);
  fs::copy_file(rttest::SharedRootfs() / "bin/busybox", rootfs / "bin/busybox");
  fs::create_symlink("busybox", rootfs / "bin/sh");
  fs::create_symlink("busybox", rootfs / "bin/stat");
  fs::create_symlink(host->path(), rootfs / "escape");
  rttest::Bundle b = rttest::MakeBundle({"sh", "-c", "stat -f -c %T /escape/sub"});
  b.config["root"] = {{"path", rootfs.string()}, {"readonly", false}};
  b.config["mounts"].push_back(
      {{"destination", "/escape/sub"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
  b.Write();
  std::string id = rttest::UniqueId("symlink");
  auto r = gantry_.Cmd({"run", "--bundle", b.path().string(), id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "tmpfs\n");
  EXPECT_FALSE(fs::exists(host->path() / "sub")) << "the mount target was created on the host";
  EXPECT_TRUE(fs::is_directory(rootfs / host->path().relative_path() / "sub"));
  ExpectGone(gantry_, id, b.path());
}

}  // namespace
