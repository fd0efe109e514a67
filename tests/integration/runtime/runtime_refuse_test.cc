// What the host cannot enforce is refused, as runc refuses it, rather than
// run without: limits of a cgroup controller that is not mounted or a
// kernel without the file (blkio weights without BFQ), the devices
// hierarchy missing, an AppArmor profile where AppArmor is off, an SELinux
// label where SELinux is off. What the host can enforce is applied, as runc
// applies it. Each case runs the same bundle under gantry-runtime, runc and
// crun and compares: run or refuse, and what the container saw.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>

#include "common/fs.h"
#include "fixtures/require.h"
#include "integration/runtime/runtime_helpers.h"

namespace {

using rttest::json;
using rttest::Runtime;
namespace fs = std::filesystem;

struct Outcome {
  bool ran = false;
  std::string out, err;
};

class RuntimeRefuse : public rttest::RuntimeSuite {
 protected:
  // `run` of `b` in the foreground; whatever happened, nothing is left.
  Outcome Run(const Runtime& rt, const rttest::Bundle& b) {
    std::string id = rttest::UniqueId("ref-" + rt.name);
    auto r = rt.Cmd({"run", "--bundle", b.path().string(), id});
    EXPECT_FALSE(rt.State(id)) << rt.name << " left " << id << " behind";
    // crun 1.8.1 leaves its cgroups behind when it refuses: removed here.
    for (const std::string& d : rttest::CgroupDirsNamed(id)) {
      EXPECT_EQ(rt.name, "crun") << rt.name << " left " << d << " behind";
      ::rmdir(d.c_str());
    }
    return {r.exit_code == 0, r.out, r.err};
  }

  // Runs `b` under every runtime in `runtimes` and expects gantry to do as
  // runc did: run with the same output, or refuse. crun is held to it too
  // unless `crun_differs` (said why at the case). A gantry refusal names
  // `field`.
  void ExpectAsRunc(const std::vector<Runtime>& runtimes, const rttest::Bundle& b,
                    const std::string& what, const std::string& field, bool crun_differs) {
    std::map<std::string, Outcome> seen;
    for (const Runtime& rt : runtimes) seen[rt.name] = Run(rt, b);
    const Outcome& g = seen["gantry"];
    for (const auto& [name, o] : seen) {
      if (name == "gantry" || (name == "crun" && crun_differs)) continue;
      EXPECT_EQ(g.ran, o.ran) << what << ": gantry " << (g.ran ? "ran" : "refused") << ", " << name
                              << (o.ran ? " ran" : " refused") << "\ngantry: " << g.err << "\n"
                              << name << ": " << o.err;
      if (g.ran && o.ran) {
        EXPECT_EQ(g.out, o.out) << what << ": gantry and " << name << " saw";
      }
    }
    if (!g.ran) {
      EXPECT_NE(g.err.find(field), std::string::npos) << what << ": " << g.err;
      EXPECT_EQ(std::count(g.err.begin(), g.err.end(), '\n'), 1) << what << ": " << g.err;
    }
  }
};

// The limits' files as the container sees them (those that exist).
constexpr const char* kCgroupProbe = R"sh(
for f in blkio/blkio.throttle.read_bps_device blkio/blkio.throttle.write_iops_device \
         blkio/blkio.weight blkio/blkio.bfq.weight cpu/cpu.rt_period_us cpu/cpu.rt_runtime_us \
         net_cls/net_cls.classid net_prio/net_prio.ifpriomap hugetlb/hugetlb.2MB.limit_in_bytes \
         pids/pids.max; do
  [ -r /sys/fs/cgroup/$f ] && echo "$f=$(cat /sys/fs/cgroup/$f | tr '\n' ' ')"
done
echo ran)sh";

// A block device of this machine, "MAJOR:MINOR" as numbers.
std::pair<int64_t, int64_t> SomeBlockDevice() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/block", ec)) {
    std::ifstream in(e.path() / "dev");
    int64_t major = 0, minor = 0;
    char colon = 0;
    if (in >> major >> colon >> minor && colon == ':') return {major, minor};
  }
  return {-1, -1};
}

TEST_F(RuntimeRefuse, RuntimeCgroupLimitsRefusedWhereRuncRefusesThem) {
  auto [major, minor] = SomeBlockDevice();
  ASSERT_GE(major, 0) << "no block device in /sys/block";
  struct Case {
    const char* what;
    const char* resources;  // linux.resources, DEV standing for the device
    const char* field;      // named in gantry's refusal
    bool crun_differs;
  };
  const Case cases[] = {
      {"net_cls class id", R"({"network": {"classID": 1048577}})", "linux.resources.network",
       false},
      {"net_prio priorities", R"({"network": {"priorities": [{"name": "lo", "priority": 5}]}})",
       "linux.resources.network", false},
      {"blkio weight", R"({"blockIO": {"weight": 500}})", "linux.resources.blockIO", false},
      {"blkio leaf weight", R"({"blockIO": {"leafWeight": 500}})", "linux.resources.blockIO",
       false},
      {"blkio weight of a device", R"({"blockIO": {"weightDevice": [{DEV, "weight": 500}]}})",
       "linux.resources.blockIO", false},
      {"blkio throttles",
       R"({"blockIO": {"throttleReadBpsDevice": [{DEV, "rate": 1048576}],
                       "throttleWriteIOPSDevice": [{DEV, "rate": 300}]}})",
       "linux.resources.blockIO", false},
      {"hugetlb limit", R"({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]})",
       "linux.resources.hugepageLimits", false},
      // crun 1.8.1 skips rdma limits where the kernel has no rdma
      // controller; runc refuses them.
      {"rdma limit", R"({"rdma": {"mlx5_1": {"hcaHandles": 3}}})", "linux.resources.rdma", true},
      {"realtime cpu", R"({"cpu": {"realtimePeriod": 100000, "realtimeRuntime": 1000}})",
       "linux.resources.cpu", false},
  };
  const std::string dev =
      "\"major\": " + std::to_string(major) + ", \"minor\": " + std::to_string(minor);
  for (const Case& c : cases) {
    std::string text = c.resources;
    for (size_t at; (at = text.find("DEV")) != std::string::npos;) text.replace(at, 3, dev);
    const json resources = json::parse(text);
    rttest::Bundle b = rttest::MakeBundle({"sh", "-c", kCgroupProbe});
    for (const auto& [k, v] : resources.items()) b.config["linux"]["resources"][k] = v;
    b.Write();
    ExpectAsRunc(runtimes_, b, c.what, c.field, c.crun_differs);
  }
}

// A host without a hierarchy (its mount removed in a private mount
// namespace): a limit for it is refused; the devices hierarchy is needed
// for any container (runc: "mountpoint for devices not found").
TEST_F(RuntimeRefuse, RuntimeCgroupLimitOfUnmountedHierarchyRefused) {
  struct Case {
    const char* what;
    const char* hierarchy;
    json resources;
    const char* field;
  };
  const Case cases[] = {
      {"pids limit without pids", "pids", {{"pids", {{"limit", 10}}}}, "linux.resources.pids"},
      {"no pids limit without pids", "pids", json::object(), ""},
      {"no limits without devices", "devices", json::object(), "linux.resources.devices"},
  };
  for (const Case& c : cases) {
    std::string mnt = std::string("/sys/fs/cgroup/") + c.hierarchy;
    if (!fs::exists(mnt + "/tasks")) {
      ADD_FAILURE() << "the test needs the v1 " << c.hierarchy << " hierarchy at " << mnt;
      continue;
    }
    std::vector<Runtime> without;
    for (const Runtime& rt : runtimes_)
      without.push_back(rttest::InPrivateMountNamespace(rt, "umount " + mnt));
    rttest::Bundle b = rttest::MakeBundle({"sh", "-c", kCgroupProbe});
    for (const auto& [k, v] : c.resources.items()) b.config["linux"]["resources"][k] = v;
    b.Write();
    ExpectAsRunc(without, b, c.what, c.field, false);
  }
}

// The same on a pure cgroup v2 host (runtime_helpers.h, CgroupV2Host),
// where a controller the v1 hierarchies hold is not there at all. Where
// v2 has no file for a limit (net_cls, net_prio, leaf weights, real-time
// cpu) runc 1.1 drops it without a word; gantry refuses it, as it does on
// v1 where the controller is missing.
TEST_F(RuntimeRefuse, RuntimeCgroupV2LimitsRefusedOrApplied) {
  REQUIRE_CGROUP2();
  auto host = rttest::CgroupV2Host::Create(dir_.path());
  ASSERT_TRUE(host) << host.error().message;
  std::string controllers = common::ReadFile(host->root() / "cgroup.controllers").value_or("");
  std::vector<Runtime> v2 = {rttest::CgroupV2Host::On(runtimes_[0]),
                             rttest::CgroupV2Host::On(runtimes_[1])};
  auto has = [&](const char* c) {
    return (" " + controllers).find(std::string(" ") + c) != std::string::npos;
  };
  struct Case {
    const char* what;
    const char* resources;
    const char* field;
    bool runc_drops;  // runc 1.1 runs without it
    bool available;   // the controller is in cgroup2 on this host
  };
  const Case cases[] = {
      {"pids limit", R"({"pids": {"limit": 10}})", "pids", false, has("pids")},
      {"blkio weight", R"({"blockIO": {"weight": 500}})", "linux.resources.blockIO", false,
       has("io")},
      {"hugetlb limit", R"({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]})",
       "linux.resources.hugepageLimits", false, has("hugetlb")},
      {"net_cls class id", R"({"network": {"classID": 1048577}})", "linux.resources.network", true,
       false},
      {"blkio leaf weight", R"({"blockIO": {"leafWeight": 500}})",
       "linux.resources.blockIO.leafWeight", true, false},
      {"realtime cpu", R"({"cpu": {"realtimePeriod": 100000, "realtimeRuntime": 1000}})",
       "linux.resources.cpu.realtimeRuntime", true, false},
  };
  for (const Case& c : cases) {
    const json resources = json::parse(c.resources);
    rttest::Bundle b = rttest::MakeBundle(
        {"sh", "-c", "cat /sys/fs/cgroup/hugetlb.2MB.max 2>/dev/null; echo ran"});
    for (const auto& [k, v] : resources.items()) b.config["linux"]["resources"][k] = v;
    b.Write();
    Outcome g = Run(v2[0], b), runc = Run(v2[1], b);
    if (c.runc_drops) {
      EXPECT_FALSE(g.ran) << c.what;
      EXPECT_NE(g.err.find(c.field), std::string::npos) << c.what << ": " << g.err;
      continue;
    }
    EXPECT_EQ(g.ran, runc.ran) << c.what << "\ngantry: " << g.err << "\nrunc: " << runc.err;
    EXPECT_EQ(g.ran, c.available) << c.what << ": " << g.err;
    if (!g.ran) {
      EXPECT_NE(g.err.find(c.field), std::string::npos) << c.what << ": " << g.err;
    } else if (std::string(c.what) == "hugetlb limit") {
      EXPECT_EQ(g.out, "2097152\nran\n");
    }
  }
}

// This kernel's AppArmor and SELinux, as runc sees them.
bool AppArmorEnabled() {
  std::ifstream in("/sys/module/apparmor/parameters/enabled");
  std::string v;
  return fs::exists("/sys/kernel/security/apparmor") && in >> v && v.starts_with("Y");
}

TEST_F(RuntimeRefuse, RuntimeSecurityLabelsRefusedWhereRuncRefusesThem) {
  std::cout << "AppArmor " << (AppArmorEnabled() ? "enabled" : "not enabled") << " on this host\n";
  struct Case {
    const char* what;
    const char* key;
    const char* value;
    const char* field;
    bool crun_differs;
  };
  const Case cases[] = {
      // "unconfined" exists wherever AppArmor is enabled.
      {"AppArmor profile unconfined", "apparmorProfile", "unconfined", "process.apparmorProfile",
       false},
      {"AppArmor profile not loaded", "apparmorProfile", "gantry-test-no-such-profile",
       "process.apparmorProfile", false},
      // crun 1.8.1 refuses even an empty profile without AppArmor.
      {"empty AppArmor profile", "apparmorProfile", "", "process.apparmorProfile", true},
      {"SELinux label", "selinuxLabel", "system_u:system_r:container_t:s0", "process.selinuxLabel",
       false},
  };
  for (const Case& c : cases) {
    rttest::Bundle b = rttest::MakeBundle(
        {"sh", "-c", "echo label=$(cat /proc/self/attr/current 2>/dev/null | tr -d '\\0')"});
    b.config["process"][c.key] = c.value;
    b.Write();
    ExpectAsRunc(runtimes_, b, c.what, c.field, c.crun_differs);
  }
  // exec's flags for the same, in a running container.
  rttest::Bundle b = rttest::MakeBundle({"sleep", "1000"});
  for (const Runtime& rt : runtimes_) {
    std::string id = rttest::UniqueId("lsm-" + rt.name);
    auto d = rt.Detached({"run", "--detach", "--bundle", b.path().string(), id},
                         dir_.path() / (id + ".log"));
    ASSERT_EQ(d.exit_code, 0) << rt.name << ": " << d.err;
    for (const char* flag : {"--apparmor", "--process-label"}) {
      std::string value = flag == std::string("--apparmor") ? "gantry-test-no-such-profile"
                                                            : "system_u:system_r:container_t:s0";
      // crun 1.8.1's exec ignores --process-label without SELinux.
      if (rt.name == "crun" && flag == std::string("--process-label")) continue;
      auto plain = rt.Cmd({"exec", id, "true"});
      auto labelled = rt.Cmd({"exec", flag, value, id, "true"});
      EXPECT_EQ(plain.exit_code, 0) << rt.name << ": " << plain.err;
      // Refused wherever the module is off; with AppArmor on, the profile
      // is not loaded.
      EXPECT_NE(labelled.exit_code, 0) << rt.name << " exec " << flag;
    }
    EXPECT_EQ(rt.Cmd({"delete", "--force", id}).exit_code, 0) << rt.name;
  }
}

}  // namespace
