// exec, terminals, pause/resume and update through the command line, under
// gantry-runtime, runc and crun alike: what containerd's shim relies on,
// observed from inside the container and from the host's cgroup files.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/fs.h"
#include "integration/runtime/runtime_helpers.h"

namespace {

using rttest::json;
using rttest::Runtime;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class RuntimeExec : public rttest::RuntimeSuite {
 protected:
  // A running container (`sleep 1000`, hostname gantry-test) under `rt`.
  std::string StartSleeper(const Runtime& rt, const rttest::Bundle& b, const std::string& tag) {
    std::string id = rttest::UniqueId(tag + "-" + rt.name);
    auto r = rt.Detached({"run", "--detach", "--bundle", b.path().string(), id},
                         dir_.path() / (id + ".log"));
    EXPECT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    EXPECT_TRUE(rt.WaitStatus(id, "running")) << rt.name;
    return id;
  }

  // The container's directory in the v1 `controller` hierarchy (or the
  // cgroup2 one for "unified").
  fs::path CgroupOf(const std::string& id, const std::string& controller) {
    for (const std::string& d : rttest::CgroupDirsNamed(id))
      if (d.find("/sys/fs/cgroup/" + controller + "/") == 0) return d;
    return {};
  }

  fs::path WriteProcess(const std::string& name, const json& process) {
    fs::path p = dir_.path() / name;
    std::ofstream(p) << process.dump();
    return p;
  }
};

TEST_F(RuntimeExec, RuntimeExecArgsRunInsideWithEnvCwdUser) {
  rttest::Bundle b = rttest::MakeBundle({"sleep", "1000"});
  b.config["process"]["env"].push_back("FROM_CONFIG=1");
  b.Write();
  for (const Runtime& rt : runtimes_) {
    std::string id = StartSleeper(rt, b, "exa");
    auto r = rt.Cmd({"exec", id, "sh", "-c",
                     "echo $(hostname) $FROM_CONFIG $(cat /proc/1/cmdline | tr '\\0' ' ')"});
    EXPECT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    EXPECT_EQ(r.out, "gantry-test 1 sleep 1000\n") << rt.name;
    // crun's --env replaces the environment (runc and gantry add to it):
    // PATH is given so that all three agree.
    r = rt.Cmd({"exec", "--env", "FOO=bar", "--env", "PATH=/bin", "--cwd", "/etc", "--user",
                "1000:20", id, "sh", "-c", "echo $FOO $(pwd) $(id -u) $(id -g)"});
    EXPECT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    EXPECT_EQ(r.out, "bar /etc 1000 20\n") << rt.name;
    r = rt.Cmd({"exec", id, "sh", "-c", "exit 7"});
    EXPECT_EQ(r.exit_code, 7) << rt.name;
    r = rt.Cmd({"exec", id, "/no/such/binary"});
    EXPECT_NE(r.exit_code, 0) << rt.name;
    EXPECT_EQ(rt.Cmd({"delete", "--force", id}).exit_code, 0) << rt.name;
  }
}

// What containerd's shim sends: --process FILE --detach --pid-file; the
// process is then a child of the shim (a subreaper), not of the runtime.
TEST_F(RuntimeExec, RuntimeExecProcessFileDetachedWritesPid) {
  rttest::Bundle b = rttest::MakeBundle({"sleep", "1000"});
  b.Write();
  json proc = b.config["process"];
  proc["args"] = {"sh", "-c", "echo $MARK > /dev/shm/exec-out; sleep 1000"};
  proc["env"] = {"PATH=/bin", "MARK=from-process-file"};
  proc["cwd"] = "/";
  fs::path pf = WriteProcess("process.json", proc);
  for (const Runtime& rt : runtimes_) {
    std::string id = StartSleeper(rt, b, "exp");
    fs::path pid_file = dir_.path() / (id + ".exec.pid");
    auto r = rt.Detached(
        {"exec", "--process", pf.string(), "--detach", "--pid-file", pid_file.string(), id},
        dir_.path() / (id + ".exec.log"));
    ASSERT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    auto text = common::ReadFile(pid_file);
    ASSERT_TRUE(text) << rt.name;
    pid_t pid = std::stoi(*text);
    // The exec'd process is in the container: its pid is listed by ps.
    auto ps = rt.Cmd({"ps", "--format", "json", id});
    ASSERT_EQ(ps.exit_code, 0) << rt.name << ": " << ps.err;
    json pids = json::parse(ps.out, nullptr, false);
    ASSERT_TRUE(pids.is_array()) << ps.out;
    EXPECT_NE(std::find(pids.begin(), pids.end(), json(pid)), pids.end())
        << rt.name << ": " << ps.out << " lacks " << pid;
    EXPECT_TRUE(fixtures::WaitUntil(
        [&] {
          auto out = rt.Cmd({"exec", id, "cat", "/dev/shm/exec-out"});
          return out.out == "from-process-file\n";
        },
        10s))
        << rt.name;
    EXPECT_EQ(rt.Cmd({"delete", "--force", id}).exit_code, 0) << rt.name;
  }
}

TEST_F(RuntimeExec, RuntimeExecInStoppedContainerFails) {
  rttest::Bundle b = rttest::MakeBundle({"true"});
  b.Write();
  for (const Runtime& rt : runtimes_) {
    std::string id = rttest::UniqueId("exs-" + rt.name);
    auto r = rt.Detached({"run", "--detach", "--bundle", b.path().string(), id},
                         dir_.path() / (id + ".log"));
    ASSERT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    ASSERT_TRUE(rt.WaitStatus(id, "stopped")) << rt.name;
    auto e = rt.Cmd({"exec", id, "true"});
    EXPECT_NE(e.exit_code, 0) << rt.name;
    EXPECT_EQ(rt.Cmd({"delete", id}).exit_code, 0) << rt.name;
  }
}

TEST_F(RuntimeExec, RuntimePauseResumeThroughTheFreezer) {
  rttest::Bundle b = rttest::MakeBundle({"sleep", "1000"});
  b.Write();
  for (const Runtime& rt : runtimes_) {
    std::string id = StartSleeper(rt, b, "pz");
    fs::path freezer = CgroupOf(id, "freezer");
    ASSERT_FALSE(freezer.empty()) << rt.name << ": no freezer cgroup for " << id;
    auto r = rt.Cmd({"pause", id});
    ASSERT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    EXPECT_EQ(Trim(*common::ReadFile(freezer / "freezer.state")), "FROZEN") << rt.name;
    EXPECT_EQ((*rt.State(id))["status"], "paused") << rt.name;
    // The init is stopped by the freezer: state D/T in the kernel's view.
    r = rt.Cmd({"resume", id});
    ASSERT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    EXPECT_EQ(Trim(*common::ReadFile(freezer / "freezer.state")), "THAWED") << rt.name;
    EXPECT_EQ((*rt.State(id))["status"], "running") << rt.name;
    // crun accepts resuming a running container; runc and gantry refuse.
    if (rt.name != "crun") {
      EXPECT_NE(rt.Cmd({"resume", id}).exit_code, 0) << rt.name << " resumed a running container";
    }
    // A paused container is removed by delete --force.
    ASSERT_EQ(rt.Cmd({"pause", id}).exit_code, 0) << rt.name;
    EXPECT_EQ(rt.Cmd({"delete", "--force", id}).exit_code, 0) << rt.name;
    EXPECT_FALSE(rt.State(id)) << rt.name;
    EXPECT_EQ(rttest::CgroupDirsNamed(id), std::vector<std::string>{}) << rt.name;
  }
}

TEST_F(RuntimeExec, RuntimeUpdateAppliesLimitsToARunningContainer) {
  rttest::Bundle b = rttest::MakeBundle({"sleep", "1000"});
  b.config["linux"]["resources"] = {{"memory", {{"limit", 64 << 20}}}, {"pids", {{"limit", 100}}}};
  b.Write();
  for (const Runtime& rt : runtimes_) {
    std::string id = StartSleeper(rt, b, "up");
    fs::path mem = CgroupOf(id, "memory"), pids = CgroupOf(id, "pids");
    ASSERT_FALSE(mem.empty() || pids.empty()) << rt.name;
    EXPECT_EQ(Trim(*common::ReadFile(mem / "memory.limit_in_bytes")), std::to_string(64 << 20));
    // containerd's form: LinuxResources JSON on stdin.
    auto r = rt.CmdWithInput({"update", "--resources", "-", id},
                             R"({"memory":{"limit":100663296},"pids":{"limit":42}})");
    ASSERT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    EXPECT_EQ(Trim(*common::ReadFile(mem / "memory.limit_in_bytes")), "100663296") << rt.name;
    EXPECT_EQ(Trim(*common::ReadFile(pids / "pids.max")), "42") << rt.name;
    // runc's flag form.
    r = rt.Cmd({"update", "--pids-limit", "43", id});
    ASSERT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    EXPECT_EQ(Trim(*common::ReadFile(pids / "pids.max")), "43") << rt.name;
    // Seen from inside too (the container's cgroup namespace root).
    r = rt.Cmd({"exec", id, "cat", "/sys/fs/cgroup/pids/pids.max"});
    EXPECT_EQ(r.out, "43\n") << rt.name << ": " << r.err;
    // events --stats (crun has no `events`): one JSON with the same limits.
    if (rt.name != "crun") {
      r = rt.Cmd({"events", "--stats", id});
      ASSERT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
      json ev = json::parse(r.out, nullptr, false);
      ASSERT_TRUE(ev.is_object()) << rt.name << ": " << r.out;
      EXPECT_EQ(ev["type"], "stats") << rt.name;
      EXPECT_EQ(ev["data"]["pids"]["limit"], 43) << rt.name;
      EXPECT_GE(ev["data"]["pids"]["current"].get<int>(), 1) << rt.name;
      EXPECT_EQ(ev["data"]["memory"]["usage"]["limit"], 100663296) << rt.name;
    }
    EXPECT_EQ(rt.Cmd({"delete", "--force", id}).exit_code, 0) << rt.name;
  }
}

// runc's console-socket protocol: the test is the socket's other end, gets
// the pty master and talks to the shell through it.
TEST_F(RuntimeExec, RuntimeConsoleSocketEchoesInput) {
  rttest::Bundle b = rttest::MakeBundle({"sh"});
  b.config["process"]["terminal"] = true;
  b.Write();
  for (const Runtime& rt : runtimes_) {
    std::string sock = (dir_.path() / ("e-" + rt.name)).string();
    std::string id = rttest::UniqueId("echo-" + rt.name);
    std::string why;
    common::UniqueFd master = rttest::CreateWithConsole(rt, b.path(), sock, id, why);
    ASSERT_TRUE(master) << why;
    const std::string line = "echo ab$((40+2))cd\n";
    ASSERT_EQ(::write(master.get(), line.data(), line.size()), static_cast<ssize_t>(line.size()));
    std::string out = rttest::ReadUntil(
        master.get(), [](const std::string& s) { return s.find("ab42cd") != std::string::npos; });
    // The terminal echoed what was typed, and the shell ran it.
    EXPECT_NE(out.find("echo ab$((40+2))cd"), std::string::npos) << rt.name << ": " << out;
    EXPECT_NE(out.find("ab42cd"), std::string::npos) << rt.name << ": " << out;
    ASSERT_EQ(::write(master.get(), "exit 3\n", 7), 7);
    EXPECT_TRUE(rt.WaitStatus(id, "stopped")) << rt.name;
    EXPECT_EQ(rt.Cmd({"delete", id}).exit_code, 0) << rt.name;
  }
}

TEST_F(RuntimeExec, RuntimeExecTtyThroughConsoleSocket) {
  rttest::Bundle b = rttest::MakeBundle({"sleep", "1000"});
  b.Write();
  json proc = b.config["process"];
  proc["terminal"] = true;
  proc["consoleSize"] = {{"height", 33}, {"width", 101}};
  proc["args"] = {"sh", "-c", "echo tty=$(tty) size=$(stty size)"};
  fs::path pf = WriteProcess("tty-process.json", proc);
  for (const Runtime& rt : runtimes_) {
    std::string id = StartSleeper(rt, b, "ext");
    std::string sock = (dir_.path() / ("x-" + rt.name)).string();
    common::UniqueFd listener = rttest::ListenUnix(sock);
    ASSERT_TRUE(listener) << sock;
    fixtures::SpawnOptions so;
    so.argv = rt.Argv({"exec", "--process", pf.string(), "--console-socket", sock, "--detach", id});
    auto exec = fixtures::Child::Spawn(so);
    ASSERT_TRUE(exec) << exec.error().message;
    common::UniqueFd master(rttest::ReceiveFd(listener.get()));
    ASSERT_TRUE(master) << rt.name << " sent no pty";
    EXPECT_EQ(*exec->Wait(), 0) << rt.name;
    std::string out = rttest::ReadUntil(master.get(), [](const std::string& s) {
      return s.find("size=") != std::string::npos &&
             s.find('\n', s.find("size=")) != std::string::npos;
    });
    EXPECT_NE(out.find("tty=/dev/pts/"), std::string::npos) << rt.name << ": " << out;
    EXPECT_NE(out.find("size=33 101"), std::string::npos) << rt.name << ": " << out;
    EXPECT_EQ(rt.Cmd({"delete", "--force", id}).exit_code, 0) << rt.name;
  }
}

// `run` and `exec --tty` in the foreground with no --console-socket: the
// runtime makes the pty and relays its own stdin/stdout. gantry only: runc
// and crun insist on their stdin being a terminal (runc opens /dev/tty,
// crun calls tcgetattr), which a test's pipes are not; gantry relays
// whatever its stdio is and only goes raw when it is a terminal.
TEST_F(RuntimeExec, RuntimeForegroundTerminalRelaysStdio) {
  rttest::Bundle b = rttest::MakeBundle({"sh"});
  b.config["process"]["terminal"] = true;
  b.Write();
  runtimes_ = {rttest::Gantry(dir_.path())};
  for (const Runtime& rt : runtimes_) {
    std::string id = rttest::UniqueId("fg-" + rt.name);
    auto r =
        rt.CmdWithInput({"run", "--bundle", b.path().string(), id}, "echo tty=$(tty); exit 3\n");
    EXPECT_EQ(r.exit_code, 3) << rt.name << ": " << r.out << r.err;
    EXPECT_NE(r.out.find("tty=/dev/pts/"), std::string::npos) << rt.name << ": " << r.out;
  }
  rttest::Bundle s = rttest::MakeBundle({"sleep", "1000"});
  s.Write();
  for (const Runtime& rt : runtimes_) {
    std::string id = StartSleeper(rt, s, "fgx");
    auto r = rt.CmdWithInput({"exec", "--tty", id, "sh"}, "echo tty=$(tty); exit 4\n");
    EXPECT_EQ(r.exit_code, 4) << rt.name << ": " << r.out << r.err;
    EXPECT_NE(r.out.find("tty=/dev/pts/"), std::string::npos) << rt.name << ": " << r.out;
    EXPECT_EQ(rt.Cmd({"delete", "--force", id}).exit_code, 0) << rt.name;
  }
}

}  // namespace

namespace {

// A new user namespace: uid 0 inside is the configured host range, and
// what the container creates belongs to the mapped host ids.
TEST_F(RuntimeExec, RuntimeUserNamespaceMapsRootToTheHostRange) {
  for (const Runtime& rt : runtimes_) {
    fs::path shared = dir_.path() / ("userns-" + rt.name);
    fs::create_directories(shared);
    // The container's root (host uid 100000) must reach it to bind it.
    fs::permissions(dir_.path(),
                    fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
    ASSERT_EQ(::chown(shared.c_str(), 100000, 100000), 0);
    rttest::Bundle b = rttest::MakeBundle(
        {"sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/made-here"});
    b.config["linux"]["namespaces"].push_back({{"type", "user"}});
    b.config["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
    b.config["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
    b.config["mounts"].push_back({{"destination", "/tmp"},
                                  {"type", "bind"},
                                  {"source", shared.string()},
                                  {"options", {"rbind", "rw"}}});
    b.Write();
    auto r = rt.Cmd({"run", "--bundle", b.path().string(), rttest::UniqueId("uns-" + rt.name)});
    ASSERT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    std::istringstream in(r.out);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    EXPECT_EQ(words,
              (std::vector<std::string>{"0", "100000", "65536", "0", "100000", "65536", "0"}))
        << rt.name << ": " << r.out;
    struct stat st {};
    ASSERT_EQ(::stat((shared / "made-here").c_str(), &st), 0) << rt.name;
    EXPECT_EQ(st.st_uid, 100000u) << rt.name;
    EXPECT_EQ(st.st_gid, 100000u) << rt.name;
  }
}

}  // namespace
