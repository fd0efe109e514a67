// config.json parsing and validation (runtime_config.h), container paths,
// signal names and container ids.

#include "ociruntime/runtime_config.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>

#include <csignal>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "ociruntime/runtime.h"
#include "ociruntime/runtime_state.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ociruntime::rt::Config;
using ociruntime::rt::ParseConfig;

class RuntimeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("gantry-rtcfg");
    ASSERT_TRUE(d);
    dir_ = std::move(*d);
    fs::create_directory(dir_.path() / "rootfs");
    config_ = {{"ociVersion", "1.0.2"},
               {"root", {{"path", "rootfs"}}},
               {"process", {{"args", {"sh"}}, {"cwd", "/"}}},
               {"linux", {{"namespaces", {{{"type", "mount"}}, {{"type", "pid"}}}}}}};
  }
  common::Result<Config> Parse() { return ParseConfig(config_.dump(), dir_.path()); }
  std::string ErrorOf() {
    auto r = Parse();
    return r ? std::string("<parsed>") : r.error().message;
  }

  common::TempDir dir_;
  json config_;
};

TEST_F(RuntimeConfigTest, MinimalConfigParses) {
  auto c = Parse();
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->rootfs, dir_.path() / "rootfs");
  EXPECT_EQ(c->process.args, std::vector<std::string>{"sh"});
  ASSERT_NE(c->FindNamespace(CLONE_NEWPID), nullptr);
  EXPECT_EQ(c->FindNamespace(CLONE_NEWNET), nullptr);
}

TEST_F(RuntimeConfigTest, MountOptionsSplitIntoFlagsPropagationAndData) {
  config_["mounts"] = {{{"destination", "/data/./x/"},
                        {"type", "none"},
                        {"source", "src"},
                        {"options", {"rbind", "ro", "nosuid", "rprivate", "rro", "mode=755"}}},
                       {{"destination", "/tmp"},
                        {"type", "tmpfs"},
                        {"source", "tmpfs"},
                        {"options", {"nodev", "rw", "size=1m", "mode=1777"}}}};
  auto c = Parse();
  ASSERT_TRUE(c) << c.error().message;
  const auto& bind = c->mounts[0];
  EXPECT_EQ(bind.destination, "/data/x");
  EXPECT_EQ(bind.type, "bind");
  EXPECT_EQ(bind.source, (dir_.path() / "src").string());
  EXPECT_EQ(bind.flags & (MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID),
            MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID);
  EXPECT_EQ(bind.propagation, std::vector<unsigned long>{MS_PRIVATE | MS_REC});
  EXPECT_NE(bind.rec_attr_set, 0u);
  EXPECT_EQ(bind.data, "mode=755");
  const auto& tmp = c->mounts[1];
  EXPECT_EQ(tmp.flags & MS_RDONLY, 0u);
  EXPECT_EQ(tmp.clear_flags & MS_RDONLY, static_cast<unsigned long>(MS_RDONLY));
  EXPECT_EQ(tmp.data, "size=1m,mode=1777");
}

TEST_F(RuntimeConfigTest, BadBundlesNameTheProblem) {
  struct Case {
    std::function<void(json&)> spoil;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](json& c) { c["process"]["args"] = json::array(); }, "process.args: must not be empty"},
      {[](json& c) { c["process"].erase("args"); }, "process.args: must not be empty"},
      {[](json& c) { c["process"]["args"] = "sh"; }, "process.args: expected array, got string"},
      {[](json& c) {
         c["linux"]["namespaces"].push_back({{"type", "foo"}});
       },
       "unknown namespace type `foo`"},
      {[](json& c) {
         c["linux"]["namespaces"].push_back({{"type", "pid"}});
       },
       "duplicate namespace type `pid`"},
      {[](json& c) {
         c["linux"]["namespaces"].push_back({{"type", "user"}});
       },
       "needs uidMappings and gidMappings"},
      {[](json& c) { c["linux"]["namespaces"] = json::array(); }, "a mount namespace is required"},
      {[](json& c) { c["root"]["path"] = "missing"; }, "does not exist"},
      {[](json& c) {
         c["mounts"] = {{{"destination", "/../../etc"}, {"type", "tmpfs"}, {"source", "x"}}};
       },
       "outside the rootfs"},
      {[](json& c) {
         c["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"soft", 10}, {"hard", 5}}};
       },
       "soft limit above the hard limit"},
      {[](json& c) {
         c["process"]["rlimits"] = {{{"type", "RLIMIT_FOO"}}};
       },
       "unknown rlimit `RLIMIT_FOO`"},
      {[](json& c) { c["process"]["cwd"] = "tmp"; }, "process.cwd: must be an absolute path"},
      {[](json& c) { c["process"]["oomScoreAdj"] = 2000; }, "oomScoreAdj"},
      {[](json& c) {
         c["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
       },
       "not namespaced"},
      {[](json& c) { c["hostname"] = "x"; }, "needs a new uts namespace"},
      {[](json& c) {
         c["process"]["user"] = {{"uid", -1}};
       },
       "expected non-negative integer"},
  };
  for (const Case& k : cases) {
    SetUp();
    k.spoil(config_);
    std::string err = ErrorOf();
    EXPECT_NE(err.find(k.message), std::string::npos) << "want `" << k.message << "`, got: " << err;
  }
  EXPECT_NE(ParseConfig("{\"ociVersion\": ", dir_.path()).error().message.find("invalid JSON"),
            std::string::npos);
}

TEST(RuntimeConfig, NormalizeContainerPath) {
  using ociruntime::rt::NormalizeContainerPath;
  EXPECT_EQ(*NormalizeContainerPath("/a/./b//c/"), "/a/b/c");
  EXPECT_EQ(*NormalizeContainerPath("a"), "/a");
  EXPECT_EQ(*NormalizeContainerPath("/a/../b"), "/b");
  EXPECT_EQ(*NormalizeContainerPath("/"), "/");
  EXPECT_FALSE(NormalizeContainerPath("/../x"));
  EXPECT_FALSE(NormalizeContainerPath("/a/../../x"));
}

TEST(RuntimeConfig, CapabilityNames) {
  using ociruntime::rt::CapabilityFromName;
  EXPECT_EQ(CapabilityFromName("CAP_KILL"), 5);
  EXPECT_EQ(CapabilityFromName("kill"), 5);
  EXPECT_EQ(CapabilityFromName("cap_sys_admin"), 21);
  EXPECT_EQ(CapabilityFromName("CAP_NOPE"), std::nullopt);
}

TEST(RuntimeSignals, NamesAndNumbers) {
  using ociruntime::ParseSignal;
  EXPECT_EQ(*ParseSignal("KILL"), SIGKILL);
  EXPECT_EQ(*ParseSignal("SIGKILL"), SIGKILL);
  EXPECT_EQ(*ParseSignal("term"), SIGTERM);
  EXPECT_EQ(*ParseSignal("9"), 9);
  EXPECT_EQ(*ParseSignal("SIGWINCH"), SIGWINCH);
  EXPECT_FALSE(ParseSignal("NOPE"));
  EXPECT_FALSE(ParseSignal("0"));
  EXPECT_FALSE(ParseSignal(""));
}

TEST(RuntimeState, ContainerIds) {
  using ociruntime::rt::ValidateId;
  EXPECT_TRUE(ValidateId("abc-1_2.3+x"));
  EXPECT_FALSE(ValidateId(""));
  EXPECT_FALSE(ValidateId(".."));
  EXPECT_FALSE(ValidateId("a/b"));
  EXPECT_FALSE(ValidateId("a b"));
}

TEST(RuntimeState, StateJsonRoundTrip) {
  ociruntime::rt::State s;
  s.id = "c1";
  s.pid = 42;
  s.pid_start = 123456;
  s.bundle = "/b";
  s.rootfs = "/b/rootfs";
  s.created = ociruntime::rt::NowRfc3339Nano();
  s.annotations = {{"k", "v"}};
  s.cgroups.dirs = {{"/sys/fs/cgroup/memory", "memory", "/sys/fs/cgroup/memory/c1"}};
  s.cgroups.created = {"/sys/fs/cgroup/memory/c1"};
  auto back = ociruntime::rt::StateFromJson(ociruntime::rt::StateToJson(s));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->pid, 42);
  EXPECT_EQ(back->pid_start, 123456u);
  EXPECT_EQ(back->created, s.created);
  EXPECT_EQ(back->cgroups.dirs[0].path, "/sys/fs/cgroup/memory/c1");
  json oci = json::parse(OciStateJson(s, ociruntime::rt::ContainerStatus::kStopped, "", -1));
  EXPECT_EQ(oci["pid"], 0);
  EXPECT_EQ(oci["status"], "stopped");
  EXPECT_TRUE(oci["created"].get<std::string>().ends_with("Z"));
}

}  // namespace

namespace {

TEST_F(RuntimeConfigTest, HooksParseWithArgsEnvAndTimeout) {
  config_["hooks"] = {
      {"prestart",
       {{{"path", "/bin/true"}, {"args", {"true", "x"}}, {"env", {"A=1"}}, {"timeout", 5}}}},
      {"poststop", {{{"path", "/bin/false"}}}}};
  auto c = Parse();
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->hooks.prestart.size(), 1u);
  EXPECT_EQ(c->hooks.prestart[0].path, "/bin/true");
  EXPECT_EQ(c->hooks.prestart[0].args, (std::vector<std::string>{"true", "x"}));
  EXPECT_EQ(c->hooks.prestart[0].env, std::vector<std::string>{"A=1"});
  EXPECT_EQ(c->hooks.prestart[0].timeout, 5);
  ASSERT_EQ(c->hooks.poststop.size(), 1u);
  EXPECT_FALSE(c->hooks.poststop[0].timeout);
}

TEST_F(RuntimeConfigTest, HookWithRelativePathOrBadTimeoutIsRejected) {
  config_["hooks"] = {{"createRuntime", {{{"path", "bin/true"}}}}};
  EXPECT_NE(ErrorOf().find("hooks.createRuntime.path"), std::string::npos) << ErrorOf();
  config_["hooks"] = {{"poststart", {{{"path", "/bin/true"}, {"timeout", 0}}}}};
  EXPECT_NE(ErrorOf().find("timeout"), std::string::npos) << ErrorOf();
}

TEST_F(RuntimeConfigTest, SeccompCompilesToBpf) {
  config_["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"}},
      {"syscalls",
       {{{"names", {"getcwd", "no_such_syscall_name"}},
         {"action", "SCMP_ACT_ERRNO"},
         {"errnoRet", 42}},
        {{"names", {"personality"}},
         {"action", "SCMP_ACT_ERRNO"},
         {"args", {{{"index", 0}, {"value", 8}, {"op", "SCMP_CMP_EQ"}}}}}}}};
  auto c = Parse();
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_TRUE(c->seccomp.present);
  EXPECT_EQ(c->seccomp.rules.size(), 2u);
  ASSERT_TRUE(ociruntime::rt::CompileSeccomp(c->seccomp, {}));
  EXPECT_FALSE(c->seccomp.bpf.empty());
  EXPECT_EQ(c->seccomp.bpf.size() % 8, 0u);  // struct sock_filter
  // The cache gives back the same program, and tells profiles apart.
  std::string first = c->seccomp.bpf;
  for (int round = 0; round < 2; ++round) {
    auto again = Parse();
    ASSERT_TRUE(again);
    ASSERT_TRUE(ociruntime::rt::CompileSeccomp(again->seccomp, dir_.path() / "cache"));
    EXPECT_EQ(again->seccomp.bpf, first) << "round " << round;
  }
  config_["linux"]["seccomp"]["syscalls"][0]["errnoRet"] = 43;
  auto other = Parse();
  ASSERT_TRUE(other);
  ASSERT_TRUE(ociruntime::rt::CompileSeccomp(other->seccomp, dir_.path() / "cache"));
  EXPECT_NE(other->seccomp.bpf, first);
}

TEST_F(RuntimeConfigTest, SeccompErrorsNameTheField) {
  config_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_SOMETIMES"}};
  EXPECT_NE(ErrorOf().find("linux.seccomp.defaultAction"), std::string::npos) << ErrorOf();
  config_["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls",
       {{{"names", {"read"}},
         {"action", "SCMP_ACT_ERRNO"},
         {"args", {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_ABOUT"}}}}}}}};
  EXPECT_NE(ErrorOf().find("unknown operator"), std::string::npos) << ErrorOf();
  config_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                 {"architectures", {"SCMP_ARCH_PDP11"}}};
  EXPECT_NE(ErrorOf().find("unknown architecture"), std::string::npos) << ErrorOf();
  config_["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls", {{{"names", {"read"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
  EXPECT_NE(ErrorOf().find("needs linux.seccomp.listenerPath"), std::string::npos) << ErrorOf();
  config_["linux"]["seccomp"]["listenerPath"] = "/run/agent.sock";
  EXPECT_EQ(ErrorOf(), "<parsed>");
}

TEST(RuntimeProcessJson, ExecProcessFileParsesAndValidates) {
  auto p = ociruntime::rt::ParseProcessJson(
      R"({"terminal":true,"user":{"uid":1,"gid":2},"args":["sh"],"env":["A=b"],"cwd":"/x",)"
      R"("capabilities":{"bounding":["CAP_KILL"]},"noNewPrivileges":true})");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_TRUE(p->terminal);
  EXPECT_EQ(p->uid, 1u);
  EXPECT_EQ(p->gid, 2u);
  EXPECT_EQ(p->cwd, "/x");
  EXPECT_TRUE(p->no_new_privileges);
  EXPECT_TRUE(p->caps.present);
  auto bad = ociruntime::rt::ParseProcessJson(R"({"args":[],"cwd":"/"})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("process.args"), std::string::npos);
  EXPECT_FALSE(ociruntime::rt::ParseProcessJson("{nope"));
}

TEST(RuntimeResourcesJson, UpdateResourcesParse) {
  auto r = ociruntime::rt::ParseResourcesJson(
      R"({"memory":{"limit":1048576,"swap":2097152},"pids":{"limit":7},"cpu":{"shares":512}})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->memory_limit, 1048576);
  EXPECT_EQ(r->memory_swap, 2097152);
  EXPECT_EQ(r->pids_limit, 7);
  EXPECT_EQ(r->cpu_shares, 512u);
  auto bad = ociruntime::rt::ParseResourcesJson(R"({"memory":{"limit":"lots"}})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("memory"), std::string::npos);
}

TEST(RuntimeResourcesJson, BlockIONetworkHugepagesRdmaParse) {
  auto r = ociruntime::rt::ParseResourcesJson(R"({
      "blockIO": {"weight": 500, "leafWeight": 300,
                  "weightDevice": [{"major": 8, "minor": 0, "weight": 200, "leafWeight": 100},
                                   {"major": 8, "minor": 16, "leafWeight": 50}],
                  "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                  "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 300}]},
      "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
      "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
      "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaObjects": 5}},
      "cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 950000}})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->blkio_weight, 500u);
  EXPECT_EQ(r->blkio_leaf_weight, 300u);
  ASSERT_EQ(r->blkio_weight_device.size(), 1u);
  EXPECT_EQ(r->blkio_weight_device[0].value, 200u);
  ASSERT_EQ(r->blkio_leaf_weight_device.size(), 2u);
  EXPECT_EQ(r->blkio_leaf_weight_device[1].minor, 16);
  ASSERT_EQ(r->blkio_read_bps.size(), 1u);
  EXPECT_EQ(r->blkio_read_bps[0].value, 1048576u);
  ASSERT_EQ(r->blkio_write_iops.size(), 1u);
  EXPECT_EQ(r->net_cls_classid, 1048577u);
  ASSERT_EQ(r->net_prio.size(), 1u);
  EXPECT_EQ(r->net_prio[0], (std::pair<std::string, uint32_t>{"eth0", 5}));
  ASSERT_EQ(r->hugepage_limits.size(), 1u);
  EXPECT_EQ(r->hugepage_limits[0].first, "2MB");
  EXPECT_EQ(r->rdma.at("mlx5_1"), "hca_handle=3 hca_object=10000");
  EXPECT_EQ(r->rdma.at("mlx4_0"), "hca_object=5");
  EXPECT_EQ(r->cpu_rt_period.value_or(0), 1000000u);
  EXPECT_EQ(r->cpu_rt_runtime.value_or(0), 950000);
}

TEST(RuntimeResourcesJson, BadLimitsNameTheField) {
  // Each names a cgroup file or line: nothing that could reach another.
  const std::pair<const char*, const char*> bad[] = {
      {R"({"blockIO": {"weightDevice": [{"minor": 0, "weight": 10}]}})",
       "linux.resources.blockIO.weightDevice: needs major and minor"},
      {R"({"hugepageLimits": [{"pageSize": "../memory", "limit": 1}]})",
       "linux.resources.hugepageLimits: invalid pageSize `../memory`"},
      {R"({"network": {"priorities": [{"name": "eth0\nlo", "priority": 1}]}})",
       "linux.resources.network.priorities: invalid interface name"},
      {R"({"rdma": {"mlx5 1": {"hcaHandles": 1}}})", "linux.resources.rdma: invalid device name"},
      {R"({"blockIO": {"weight": -1}})", "linux.resources.blockIO.weight: expected"},
  };
  for (const auto& [text, want] : bad) {
    auto r = ociruntime::rt::ParseResourcesJson(text);
    ASSERT_FALSE(r) << text;
    EXPECT_NE(r.error().message.find(want), std::string::npos) << r.error().message;
  }
}

TEST_F(RuntimeConfigTest, SecurityLabelsParsedForTheRuntimeToCheck) {
  config_["process"]["apparmorProfile"] = "docker-default";
  config_["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0";
  auto c = Parse();
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->process.apparmor_profile, "docker-default");
  EXPECT_EQ(c->process.selinux_label, "system_u:system_r:container_t:s0");
}

}  // namespace
