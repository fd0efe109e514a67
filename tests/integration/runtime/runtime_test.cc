// gantry-runtime against runc and crun: the same bundle under each, and the
// same observations from inside the container (pid 1, hostname, read-only
// and masked paths, capability sets, cgroup limits, rlimits, user and
// groups, env, cwd, umask, /dev, the mount table), exit codes and signals.
//
// Needs root and a static busybox; skips with the reason otherwise. runc and
// crun are compared when installed.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/require.h"
#include "integration/runtime/runtime_helpers.h"

namespace {

using rttest::json;
using rttest::Runtime;
namespace fs = std::filesystem;

class RuntimeTest : public rttest::RuntimeSuite {
 protected:
  // `run` in the foreground; returns stdout, expecting exit status `want`.
  std::string RunOk(const Runtime& rt, const rttest::Bundle& b, int want = 0) {
    std::string id = rttest::UniqueId("obs-" + rt.name);
    auto r = rt.Cmd({"run", "--bundle", b.path().string(), id});
    EXPECT_EQ(r.exit_code, want) << rt.name << ": " << r.Describe(rt.Argv({"run", id}));
    EXPECT_FALSE(rt.State(id)) << rt.name << " left the container behind";
    return r.out;
  }
};

constexpr const char* kProbe = R"(
echo pid=$$
echo hostname=$(hostname)
(echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo procsys=writable || echo procsys=refused
(touch /probe-write) 2>/dev/null && echo root=writable || echo root=refused
echo keys=$(stat -c '%F %t:%T' /proc/keys)
echo timer_list=$(stat -c '%F %t:%T' /proc/timer_list)
[ -e /proc/kcore ] && echo kcore=$(stat -c '%F %t:%T' /proc/kcore) || echo kcore=absent
echo acpi=$(ls -A /proc/acpi | wc -l) acpi_fs=$(stat -f -c %T /proc/acpi)
awk '/^(Cap|NoNewPrivs)/ {print $1 "=" $2}' /proc/self/status
if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
  echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
  echo pids=$(cat /sys/fs/cgroup/pids/pids.max)
  echo shares=$(cat /sys/fs/cgroup/cpu/cpu.shares)
  echo quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)
  (echo 1 > /sys/fs/cgroup/pids/pids.max) 2>/dev/null && echo cgroupfs=writable || echo cgroupfs=refused
else
  echo mem=$(cat /sys/fs/cgroup/memory.max)
  echo pids=$(cat /sys/fs/cgroup/pids.max)
fi
echo nofile=$(ulimit -n)
echo nofile_hard=$(ulimit -Hn)
echo id=$(id)
echo env=$FOO
echo cwd=$(pwd)
echo umask=$(umask)
echo devnull=$(stat -c '%F %t:%T %a' /dev/null)
echo ptmx=$(readlink /dev/ptmx) fd=$(readlink /dev/fd) stdout=$(readlink /dev/stdout)
echo devs=$(ls /dev | sort | tr '\n' ' ')
echo mounts=$(awk '{print $5}' /proc/self/mountinfo | sort | tr '\n' ' ')
echo ro_mounts=$(awk '$6 ~ /^ro/ {print $5}' /proc/self/mountinfo | sort | tr '\n' ' ')
)";

rttest::Bundle ProbeBundle() {
  rttest::Bundle b = rttest::MakeBundle({"sh", "-c", kProbe});
  json& c = b.config;
  c["process"]["env"].push_back("FOO=bar");
  c["process"]["cwd"] = "/tmp";
  c["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 512}, {"hard", 1024}}};
  c["linux"]["resources"]["memory"] = {{"limit", 67108864}};
  c["linux"]["resources"]["pids"] = {{"limit", 64}};
  c["linux"]["resources"]["cpu"] = {{"shares", 512}, {"quota", 50000}, {"period", 100000}};
  b.Write();
  return b;
}

// gantry raises its own soft RLIMIT_NOFILE at start-up (docs/resources.md),
// but not as a runtime: a container whose config has no process.rlimits
// keeps the limits its caller had, as under crun. `gantry runtime`, the
// same runtime through the gantry CLI, included. Not compared with runc:
// built with Go 1.19 or later (Debian 12's is), it hands the soft limit
// the Go runtime raised on to the container (containerd/containerd#8249),
// which is the leak this test guards against.
TEST_F(RuntimeTest, RuntimeKeepsTheCallersOpenFileLimitWithoutRlimits) {
  REQUIRE_TOOLS("prlimit");
  rttest::Bundle b =
      rttest::MakeBundle({"sh", "-c", "echo nofile=$(ulimit -n); echo nofile_hard=$(ulimit -Hn)"});
  b.config["process"].erase("rlimits");
  b.Write();
  std::vector<Runtime> all;
  for (const Runtime& rt : runtimes_)
    if (rt.name != "runc") all.push_back(rt);
  all.push_back(
      {"gantry-cli", {GANTRY_BIN, "runtime", "--root", (dir_.path() / "gantry-root").string()}});
  for (const Runtime& rt : all) {
    Runtime limited{rt.name, {"prlimit", "--nofile=200:4000", "--"}};
    limited.prefix.insert(limited.prefix.end(), rt.prefix.begin(), rt.prefix.end());
    auto seen = rttest::KeyValues(RunOk(limited, b));
    EXPECT_EQ(seen["nofile"], "200") << rt.name;
    EXPECT_EQ(seen["nofile_hard"], "4000") << rt.name;
  }
}

TEST_F(RuntimeTest, RuntimeObserveSameAsPeersFromInside) {
  rttest::Bundle b = ProbeBundle();
  std::map<std::string, std::map<std::string, std::string>> seen;
  for (const Runtime& rt : runtimes_) seen[rt.name] = rttest::KeyValues(RunOk(rt, b));
  const auto& g = seen["gantry"];
  EXPECT_EQ(g.at("pid"), "1");
  EXPECT_EQ(g.at("hostname"), "gantry-test");
  EXPECT_EQ(g.at("procsys"), "refused");
  EXPECT_EQ(g.at("root"), "refused");
  EXPECT_EQ(g.at("keys"), "character special file 1:3");
  EXPECT_EQ(g.at("timer_list"), "character special file 1:3");
  if (g.at("kcore") != "absent") {
    EXPECT_EQ(g.at("kcore"), "character special file 1:3");
  }
  EXPECT_EQ(g.at("acpi"), "0 acpi_fs=tmpfs");
  // CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE; ambient needs
  // inheritable, which the config leaves empty.
  EXPECT_EQ(g.at("CapEff:"), "0000000020000420");
  EXPECT_EQ(g.at("CapPrm:"), "0000000020000420");
  EXPECT_EQ(g.at("CapBnd:"), "0000000020000420");
  EXPECT_EQ(g.at("CapInh:"), "0000000000000000");
  EXPECT_EQ(g.at("CapAmb:"), "0000000000000000");
  EXPECT_EQ(g.at("NoNewPrivs:"), "1");
  EXPECT_EQ(g.at("mem"), "67108864");
  EXPECT_EQ(g.at("pids"), "64");
  if (g.contains("shares")) {
    EXPECT_EQ(g.at("shares"), "512");
    EXPECT_EQ(g.at("quota"), "50000");
    EXPECT_EQ(g.at("cgroupfs"), "refused");
  }
  EXPECT_EQ(g.at("nofile"), "512");
  EXPECT_EQ(g.at("nofile_hard"), "1024");
  EXPECT_EQ(g.at("env"), "bar");
  EXPECT_EQ(g.at("cwd"), "/tmp");
  EXPECT_EQ(g.at("umask"), "0022");
  EXPECT_EQ(g.at("devnull"), "character special file 1:3 666");
  EXPECT_EQ(g.at("ptmx"), "pts/ptmx fd=/proc/self/fd stdout=/proc/self/fd/1");
  for (const char* m : {" /proc ", " /dev ", " /dev/pts ", " /dev/shm ", " /dev/mqueue ", " /sys ",
                        " /sys/fs/cgroup ", " /proc/sys "})
    EXPECT_NE((" " + g.at("mounts")).find(m), std::string::npos) << m << " in " << g.at("mounts");
  for (const auto& [name, obs] : seen) {
    if (name == "gantry") continue;
    for (const auto& [key, value] : g) {
      // crun links /dev/core even without /proc/kcore, and binds /dev/null
      // read-only over masked files; gantry does both as runc does.
      if (name == "crun" && (key == "devs" || key == "ro_mounts")) continue;
      auto it = obs.find(key);
      ASSERT_NE(it, obs.end()) << name << " did not report " << key;
      EXPECT_EQ(value, it->second) << "gantry and " << name << " differ on " << key;
    }
  }
}

TEST_F(RuntimeTest, RuntimeObserveUserGroupsUmaskCaps) {
  rttest::Bundle b =
      rttest::MakeBundle({"sh", "-c",
                          "echo id=$(id); echo umask=$(umask); echo home=$(pwd); "
                          "awk '/^(Cap|NoNewPrivs)/ {print $1 \"=\" $2}' /proc/self/status"});
  json& p = b.config["process"];
  p["user"] = {{"uid", 1000}, {"gid", 1000}, {"additionalGids", {10, 20}}, {"umask", 23}};
  p["cwd"] = "/tmp";
  p["capabilities"]["inheritable"] = {"CAP_KILL"};
  p["capabilities"]["ambient"] = {"CAP_KILL"};
  b.Write();
  std::map<std::string, std::map<std::string, std::string>> seen;
  for (const Runtime& rt : runtimes_) seen[rt.name] = rttest::KeyValues(RunOk(rt, b));
  const auto& g = seen["gantry"];
  EXPECT_EQ(g.at("id"), "uid=1000(user) gid=1000(user) groups=10(group10),20(group20)");
  EXPECT_EQ(g.at("umask"), "0027");
  EXPECT_EQ(g.at("CapAmb:"), "0000000000000020");  // CAP_KILL, inheritable and permitted
  EXPECT_EQ(g.at("CapInh:"), "0000000000000020");
  for (const auto& [name, obs] : seen)
    for (const auto& [key, value] : g)
      EXPECT_EQ(value, obs.count(key) ? obs.at(key) : "<missing>")
          << "gantry and " << name << " differ on " << key;
}

TEST_F(RuntimeTest, RuntimeObserveUserNamespace) {
  rttest::Bundle b = rttest::MakeBundle(
      {"sh", "-c",
       "echo id=$(id); echo map=$(cat /proc/self/uid_map); echo pid=$$; "
       "echo null=$(stat -c '%F %t:%T %u' /dev/null); "
       "awk '/^Cap(Eff|Bnd)/ {print $1 \"=\" $2}' /proc/self/status; "
       "echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
       "cat /sys/fs/cgroup/memory.max)"});
  json& l = b.config["linux"];
  l["namespaces"].push_back({{"type", "user"}});
  l["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  l["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  l["resources"]["memory"] = {{"limit", 33554432}};
  b.Write();
  struct stat host_null_before {
  }, host_null_after{};
  ASSERT_EQ(::stat("/dev/null", &host_null_before), 0);
  std::map<std::string, std::map<std::string, std::string>> seen;
  for (const Runtime& rt : runtimes_) seen[rt.name] = rttest::KeyValues(RunOk(rt, b));
  ASSERT_EQ(::stat("/dev/null", &host_null_after), 0);
  EXPECT_EQ(host_null_after.st_uid, host_null_before.st_uid)
      << "the host's /dev/null changed owner";
  auto g = seen["gantry"];
  EXPECT_EQ(g["id"], "uid=0(root) gid=0(root)");
  EXPECT_EQ(g["map"], " 0 100000 65536");
  EXPECT_EQ(g["pid"], "1");
  EXPECT_EQ(g["mem"], "33554432");
  // The host's /dev/null bound in: its owner, host root, is unmapped here.
  EXPECT_EQ(g["null"], "character special file 1:3 65534");
  for (const auto& [name, obs] : seen)
    for (const auto& [key, value] : g)
      EXPECT_EQ(value, obs.count(key) ? obs.at(key) : "<missing>")
          << "gantry and " << name << " differ on " << key;
}

TEST_F(RuntimeTest, RuntimeExitStatusPropagates) {
  rttest::Bundle b = rttest::MakeBundle({"sh", "-c", "exit 3"});
  for (const Runtime& rt : runtimes_) RunOk(rt, b, 3);
}

TEST_F(RuntimeTest, RuntimeExitSignalOfForegroundRun) {
  // SIGKILL reaches a pid-namespace init; SIGTERM only a process that is
  // not one (an init without a handler ignores it), hence no pid namespace.
  struct Case {
    const char* signal;
    bool pid_ns;
    int want;
  };
  for (const Case& c : {Case{"KILL", true, 137}, Case{"TERM", false, 143}}) {
    rttest::Bundle b = rttest::MakeBundle({"sleep", "100"});
    if (!c.pid_ns) {
      json& ns = b.config["linux"]["namespaces"];
      ns.erase(
          std::remove_if(ns.begin(), ns.end(), [](const json& n) { return n["type"] == "pid"; }),
          ns.end());
      b.Write();
    }
    for (const Runtime& rt : runtimes_) {
      std::string id = rttest::UniqueId("sig-" + rt.name);
      fixtures::SpawnOptions so;
      so.argv = rt.Argv({"run", "--bundle", b.path().string(), id});
      so.stdout_path = so.stderr_path = dir_.path() / (id + ".log");
      auto child = fixtures::Child::Spawn(so);
      ASSERT_TRUE(child) << child.error().message;
      ASSERT_TRUE(rt.WaitStatus(id, "running")) << rt.name;
      auto k = rt.Cmd({"kill", id, c.signal});
      EXPECT_EQ(k.exit_code, 0) << rt.name << ": " << k.err;
      auto status = child->WaitFor(fixtures::Clock::now() + std::chrono::seconds(20));
      ASSERT_TRUE(status && *status) << rt.name << " did not exit after SIG" << c.signal;
      EXPECT_EQ(**status, c.want) << rt.name << " SIG" << c.signal;
      EXPECT_FALSE(rt.State(id)) << rt.name << " left " << id << " behind";
      EXPECT_TRUE(rttest::CgroupDirsNamed(id).empty()) << rt.name;
    }
  }
}

TEST_F(RuntimeTest, RuntimeObserveNoPivotSameView) {
  rttest::Bundle b =
      rttest::MakeBundle({"sh", "-c",
                          "echo pid=$$; echo hostname=$(hostname); echo mounts=$(awk '{print $5}' "
                          "/proc/self/mountinfo | sort | tr '\\n' ' ')"});
  std::map<std::string, std::string> pivot;
  for (const Runtime& rt : runtimes_) {
    if (rt.name == "crun") continue;  // --no-pivot is a runc flag
    std::string id = rttest::UniqueId("nopivot-" + rt.name);
    auto r = rt.Cmd({"run", "--no-pivot", "--bundle", b.path().string(), id});
    ASSERT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    auto kv = rttest::KeyValues(r.out);
    EXPECT_EQ(kv["pid"], "1");
    EXPECT_EQ(kv["hostname"], "gantry-test");
    if (pivot.empty()) pivot = kv;
    EXPECT_EQ(kv, pivot) << rt.name;
  }
}

TEST_F(RuntimeTest, RuntimeObserveCgroupNamespace) {
  rttest::Bundle b = rttest::MakeBundle({"cat", "/proc/self/cgroup"});
  b.config["linux"]["namespaces"].push_back({{"type", "cgroup"}});
  b.Write();
  std::map<std::string, std::string> seen;
  for (const Runtime& rt : runtimes_) {
    if (rt.name == "crun") continue;  // it runs without the hybrid cgroup2 mount
    seen[rt.name] = RunOk(rt, b);
  }
  // Every hierarchy's path is the namespace root: "N:memory:/".
  std::istringstream in(seen["gantry"]);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_TRUE(line.ends_with(":/")) << line;
  }
  EXPECT_GT(lines, 0);
  for (const auto& [name, out] : seen) EXPECT_EQ(out, seen["gantry"]) << name;
}

// A pure cgroup v2 host (runtime_helpers.h, CgroupV2Host): no limits are
// set, the container is placed and sees its cgroup2 directory.
TEST_F(RuntimeTest, RuntimeCgroupV2LayoutInPrivateMountNamespace) {
  REQUIRE_CGROUP2();
  auto host = rttest::CgroupV2Host::Create(dir_.path());
  ASSERT_TRUE(host) << host.error().message;
  Runtime v2 = rttest::CgroupV2Host::On(
      {"gantry-v2", {GANTRY_RUNTIME_BIN, "--root", (dir_.path() / "v2-root").string()}});
  rttest::Bundle b = rttest::MakeBundle(
      {"sh", "-c",
       "echo cgroup=$(cat /proc/self/cgroup); "
       "[ -f /sys/fs/cgroup/cgroup.controllers ] && echo v2view=yes || echo v2view=no; "
       "echo procs=$(cat /sys/fs/cgroup/cgroup.procs | tr '\\n' ' ')"});
  std::string id = rttest::UniqueId("v2");
  auto r = v2.Cmd({"run", "--bundle", b.path().string(), id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto kv = rttest::KeyValues(r.out);
  // The v1 hierarchies still exist in the kernel; only cgroup2 is used.
  EXPECT_TRUE(kv["cgroup"].ends_with("0::/" + id)) << kv["cgroup"];
  EXPECT_EQ(kv["v2view"], "yes");
  EXPECT_TRUE(kv["procs"].starts_with("1 ")) << kv["procs"];
  EXPECT_FALSE(fs::exists(host->root() / id));
}

// The fixture's cgroup search (CgroupDirsNamed) runs while the tests beside
// it create and remove containers: cgroups that vanish mid-walk must not
// hide the one looked for (they made RuntimeUpdate fail under ctest -j2).
TEST_F(RuntimeTest, CgroupSearchFindsItsCgroupWhileOthersComeAndGo) {
  const fs::path hierarchy =
      fs::is_directory("/sys/fs/cgroup/pids") ? "/sys/fs/cgroup/pids" : "/sys/fs/cgroup";
  const std::string id = rttest::UniqueId("walk");
  const fs::path base = hierarchy / id;
  ASSERT_TRUE(fs::create_directories(base / "a" / id)) << base;
  std::atomic<bool> stop{false};
  // Waves of nested cgroups made and then removed, so that the walk keeps
  // meeting directories that were listed and are gone when it gets there.
  std::thread churn([&] {
    std::error_code ec;
    while (!stop) {
      for (int n = 0; n < 32; ++n)
        fs::create_directories(base / ("c" + std::to_string(n)) / "x", ec);
      for (int n = 0; n < 32; ++n) {
        fs::remove(base / ("c" + std::to_string(n)) / "x", ec);
        fs::remove(base / ("c" + std::to_string(n)), ec);
      }
    }
  });
  int missed = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto found = rttest::CgroupDirsNamed(id, base);
    if (std::find(found.begin(), found.end(), (base / "a" / id).string()) == found.end()) ++missed;
  }
  stop = true;
  churn.join();
  std::error_code ec;
  for (const fs::path& d : {base / "a" / id, base / "a", base}) fs::remove(d, ec);
  EXPECT_EQ(missed, 0) << "of 2000 searches";
}

}  // namespace
