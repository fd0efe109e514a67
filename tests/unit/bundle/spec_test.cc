// MakeSpec: the runc-spec defaults, args, env, cwd, hostname and
// annotations from an image config.

#include "bundle/spec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/fs.h"

namespace bundle {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("gantry-spec");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    rootfs_ = dir_.path() / "rootfs";
    ASSERT_TRUE(common::MkdirAll(rootfs_ / "etc"));
    ASSERT_TRUE(common::AtomicWriteFile(rootfs_ / "etc/passwd", "root:x:0:0::/root:/bin/sh\n"));
    ASSERT_TRUE(common::AtomicWriteFile(rootfs_ / "etc/group", "root:x:0:\n"));
  }

  json Make(const ImageRuntimeConfig& img, const BundleOptions& opts = {}) {
    auto s = MakeSpec(img, opts, rootfs_);
    EXPECT_TRUE(s) << s.error().message;
    return s ? *s : json();
  }

  static ImageRuntimeConfig Sh() { return {.cmd = {"/bin/sh"}}; }

  common::TempDir dir_;
  fs::path rootfs_;
};

TEST_F(SpecTest, DefaultsMatchRuncSpecWithContainerdCapabilities) {
  json s = Make(Sh());
  EXPECT_EQ(s["ociVersion"], "1.0.2-dev");
  const json& p = s["process"];
  EXPECT_EQ(p["terminal"], false);
  EXPECT_EQ(p["user"], json({{"uid", 0}, {"gid", 0}}));
  EXPECT_EQ(p["cwd"], "/");
  EXPECT_EQ(p["noNewPrivileges"], true);
  EXPECT_EQ(p["rlimits"], json::parse(R"([{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}])"));
  const json caps = json::parse(R"(["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER",
      "CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP",
      "CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"])");
  for (const char* set : {"bounding", "effective", "permitted"})
    EXPECT_EQ(p["capabilities"][set], caps) << set;
  EXPECT_EQ(p["capabilities"]["inheritable"], json::array());
  EXPECT_EQ(p["capabilities"]["ambient"], json::array());
  EXPECT_EQ(s["root"], json({{"path", "rootfs"}, {"readonly", false}}));
  EXPECT_EQ(s["hostname"], "gantry");
  EXPECT_FALSE(s.contains("annotations"));

  std::vector<std::string> dests;
  for (const auto& m : s["mounts"]) dests.push_back(m["destination"]);
  EXPECT_EQ(dests, (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                             "/sys", "/sys/fs/cgroup"}));
  EXPECT_EQ(s["mounts"][1]["options"], json({"nosuid", "strictatime", "mode=755", "size=65536k"}));
  EXPECT_EQ(s["mounts"][2]["options"],
            json({"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}));
  EXPECT_EQ(s["mounts"][3]["options"],
            json({"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  EXPECT_EQ(s["mounts"][5]["options"], json({"nosuid", "noexec", "nodev", "ro"}));
  EXPECT_EQ(s["mounts"][6]["type"], "cgroup");
  EXPECT_EQ(s["mounts"][6]["options"], json({"nosuid", "noexec", "nodev", "relatime", "ro"}));

  std::vector<std::string> ns;
  for (const auto& n : s["linux"]["namespaces"]) ns.push_back(n["type"]);
  EXPECT_EQ(ns, (std::vector<std::string>{"pid", "network", "ipc", "uts", "mount"}));
  EXPECT_EQ(s["linux"]["maskedPaths"],
            json({"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                  "/proc/scsi"}));
  EXPECT_EQ(s["linux"]["readonlyPaths"],
            json({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}));
  EXPECT_EQ(s["linux"]["resources"]["devices"], json::parse(R"([{"allow":false,"access":"rwm"}])"));
}

struct ArgsCase {
  const char* name;
  std::vector<std::string> entrypoint, cmd, args, want;
};

class SpecArgs : public SpecTest, public ::testing::WithParamInterface<ArgsCase> {};

TEST_P(SpecArgs, EntrypointPlusCmdWithArgsReplacingCmd) {
  const ArgsCase& c = GetParam();
  json s = Make({.entrypoint = c.entrypoint, .cmd = c.cmd}, {.args = c.args});
  EXPECT_EQ(s["process"]["args"], json(c.want));
}

INSTANTIATE_TEST_SUITE_P(
    SpecTable, SpecArgs,
    ::testing::Values(
        ArgsCase{"CmdOnly", {}, {"/bin/sh"}, {}, {"/bin/sh"}},
        ArgsCase{"EntrypointOnly", {"/app", "--serve"}, {}, {}, {"/app", "--serve"}},
        ArgsCase{"EntrypointAndCmd", {"/app"}, {"--port", "80"}, {}, {"/app", "--port", "80"}},
        ArgsCase{"ArgsReplaceCmd", {}, {"/bin/sh"}, {"/bin/echo", "hi"}, {"/bin/echo", "hi"}},
        ArgsCase{
            "ArgsKeepEntrypoint", {"/app"}, {"--port", "80"}, {"--debug"}, {"/app", "--debug"}},
        ArgsCase{"ArgsWithoutImageCommand", {}, {}, {"/bin/true"}, {"/bin/true"}}),
    [](const auto& p) { return std::string(p.param.name); });

TEST_F(SpecTest, NoCommandAtAllIsInvalid) {
  auto s = MakeSpec({.env = {"A=1"}}, {}, rootfs_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, common::Errc::kInvalidArgument);
  EXPECT_NE(s.error().message.find("no command"), std::string::npos) << s.error().message;
}

struct EnvCase {
  const char* name;
  std::vector<std::string> image, overrides, want;
};

class SpecEnv : public SpecTest, public ::testing::WithParamInterface<EnvCase> {};

TEST_P(SpecEnv, ImageEnvThenOverridesWithDefaultPath) {
  const EnvCase& c = GetParam();
  ImageRuntimeConfig img = Sh();
  img.env = c.image;
  json s = Make(img, {.env = c.overrides});
  EXPECT_EQ(s["process"]["env"], json(c.want));
}

const std::string kPath(kDefaultPath);

INSTANTIATE_TEST_SUITE_P(
    SpecTable, SpecEnv,
    ::testing::Values(
        EnvCase{"PathAddedWhenMissing", {}, {}, {kPath}},
        EnvCase{"PathAddedFirst", {"A=1"}, {"B=2"}, {kPath, "A=1", "B=2"}},
        EnvCase{"ImagePathKept", {"PATH=/bin", "A=1"}, {}, {"PATH=/bin", "A=1"}},
        EnvCase{"OverrideReplacesInPlace",
                {"PATH=/bin", "A=1", "B=2"},
                {"A=x"},
                {"PATH=/bin", "A=x", "B=2"}},
        EnvCase{"OverrideOfPath", {"PATH=/bin"}, {"PATH=/opt/bin"}, {"PATH=/opt/bin"}},
        EnvCase{"EmptyValueAllowed", {"PATH=/bin"}, {"A="}, {"PATH=/bin", "A="}},
        EnvCase{"ValueWithEquals", {"PATH=/bin"}, {"A=b=c"}, {"PATH=/bin", "A=b=c"}},
        EnvCase{"LastOverrideWins", {"PATH=/bin"}, {"A=1", "A=2"}, {"PATH=/bin", "A=2"}}),
    [](const auto& p) { return std::string(p.param.name); });

TEST_F(SpecTest, EnvOverrideWithoutEqualsOrNameIsInvalid) {
  for (const char* bad : {"FOO", "=x"}) {
    auto s = MakeSpec(Sh(), {.env = {bad}}, rootfs_);
    ASSERT_FALSE(s) << bad;
    EXPECT_EQ(s.error().code, common::Errc::kInvalidArgument);
    EXPECT_NE(s.error().message.find(bad), std::string::npos) << s.error().message;
  }
}

TEST_F(SpecTest, WorkingDirIsAbsolute) {
  ImageRuntimeConfig img = Sh();
  img.working_dir = "/srv/app";
  EXPECT_EQ(Make(img)["process"]["cwd"], "/srv/app");
  img.working_dir = "srv";
  EXPECT_EQ(Make(img)["process"]["cwd"], "/srv");
}

TEST_F(SpecTest, ReadonlyAndHostnameOptions) {
  json s = Make(Sh(), {.readonly = true, .hostname = "box"});
  EXPECT_EQ(s["root"]["readonly"], true);
  EXPECT_EQ(s["hostname"], "box");
  auto bad = MakeSpec(Sh(), {.hostname = std::string(65, 'h')}, rootfs_);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, common::Errc::kInvalidArgument);
}

TEST_F(SpecTest, LabelsAndStopSignalBecomeAnnotations) {
  ImageRuntimeConfig img = Sh();
  img.labels = {{"org.opencontainers.image.title", "t"},
                {"org.opencontainers.image.stopSignal", "from-label"}};
  img.stop_signal = "SIGQUIT";
  json s = Make(img);
  EXPECT_EQ(s["annotations"], json({{"org.opencontainers.image.title", "t"},
                                    {"org.opencontainers.image.stopSignal", "SIGQUIT"}}));
}

TEST_F(SpecTest, UserOptionOverridesImageUser) {
  ASSERT_TRUE(common::AtomicWriteFile(rootfs_ / "etc/passwd",
                                      "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n"));
  ImageRuntimeConfig img = Sh();
  img.user = "app";
  EXPECT_EQ(Make(img)["process"]["user"]["uid"], 1000);
  EXPECT_EQ(Make(img, {.user = "0"})["process"]["user"]["uid"], 0);
  // An unknown image user fails the spec, as runc would fail the start.
  img.user = "ghost";
  auto s = MakeSpec(img, {}, rootfs_);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, common::Errc::kInvalidArgument);
}

// Names allowed unconditionally by the first (plain) rule of a profile.
std::vector<std::string> PlainAllowed(const json& profile) {
  for (const json& r : profile["syscalls"])
    if (r["action"] == "SCMP_ACT_ALLOW" && !r.contains("args"))
      return r["names"].get<std::vector<std::string>>();
  return {};
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(SpecSeccomp, DefaultProfileGatesNamespaceCallsOnSysAdmin) {
  std::vector<std::string_view> caps(std::begin(kDefaultCapabilities),
                                     std::end(kDefaultCapabilities));
  json p = DefaultSeccomp(caps);
  EXPECT_EQ(p["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(p["defaultErrnoRet"], 1);
  auto allowed = PlainAllowed(p);
  for (const char* name : {"read", "openat", "execve", "chroot", "setuid", "socketpair"})
    EXPECT_TRUE(Contains(allowed, name)) << name;
  for (const char* name : {"mount", "unshare", "setns", "clone", "clone3", "reboot", "bpf",
                           "init_module", "kexec_load", "socket", "personality"})
    EXPECT_FALSE(Contains(allowed, name)) << name;
  bool clone_masked = false, clone3_enosys = false;
  for (const json& r : p["syscalls"]) {
    if (r["names"] == json::array({"clone"}) && r["args"][0]["op"] == "SCMP_CMP_MASKED_EQ")
      clone_masked = r["args"][0]["value"] == 0x7E020000;
    if (r["names"] == json::array({"clone3"})) clone3_enosys = r["errnoRet"] == 38;
  }
  EXPECT_TRUE(clone_masked);
  EXPECT_TRUE(clone3_enosys);

  caps.push_back("CAP_SYS_ADMIN");
  json admin = DefaultSeccomp(caps);
  auto admin_allowed = PlainAllowed(admin);
  for (const char* name : {"mount", "unshare", "setns", "clone", "clone3"})
    EXPECT_TRUE(Contains(admin_allowed, name)) << name;
}

TEST(SpecSeccomp, MakeSpecWritesTheDefaultProfile) {
  auto d = common::TempDir::Create("gantry-specsc");
  ASSERT_TRUE(d);
  auto s = MakeSpec({.cmd = {"/bin/sh"}}, {}, d->path());
  ASSERT_TRUE(s) << s.error().message;
  std::vector<std::string_view> caps(std::begin(kDefaultCapabilities),
                                     std::end(kDefaultCapabilities));
  EXPECT_EQ((*s)["linux"]["seccomp"], DefaultSeccomp(caps));
}

TEST(SpecUserns, IdRangeParses) {
  auto r = ParseIdRange("0:100000:65536");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->container_id, 0u);
  EXPECT_EQ(r->host_id, 100000u);
  EXPECT_EQ(r->size, 65536u);
  for (const char* bad : {"", "0:1", "0:1:0", "a:1:2", "0:4294967295:2", "0:1:2:3", "-1:0:1"})
    EXPECT_FALSE(ParseIdRange(bad)) << bad;
}

TEST(SpecUserns, MakeSpecAddsTheNamespaceAndMappings) {
  auto d = common::TempDir::Create("gantry-specns");
  ASSERT_TRUE(d);
  BundleOptions o;
  o.userns = IdRange{0, 100000, 65536};
  auto s = MakeSpec({.cmd = {"/bin/sh"}}, o, d->path());
  ASSERT_TRUE(s) << s.error().message;
  json map = json::parse(R"([{"containerID":0,"hostID":100000,"size":65536}])");
  EXPECT_EQ((*s)["linux"]["uidMappings"], map);
  EXPECT_EQ((*s)["linux"]["gidMappings"], map);
  bool user = false;
  for (const json& n : (*s)["linux"]["namespaces"]) user |= n["type"] == "user";
  EXPECT_TRUE(user);
}

}  // namespace
}  // namespace bundle
