// The same bundle under gantry-runtime, runc and crun, where a user moving
// from runc would notice a difference: a process.cwd missing from the
// rootfs, HOME from the container's /etc/passwd, a mount namespace entry
// with an empty path, and linux.rootfsPropagation against a host whose
// rootfs sits on a shared mount.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "common/fs.h"
#include "fixtures/require.h"
#include "integration/runtime/runtime_helpers.h"

namespace {

using rttest::json;
using rttest::Runtime;
namespace fs = std::filesystem;

class RuntimeParity : public rttest::RuntimeSuite {
 protected:
  // `run` of `b` in the foreground: stdout, or "refused: <stderr>".
  std::string Run(const Runtime& rt, const rttest::Bundle& b) {
    std::string id = rttest::UniqueId("par-" + rt.name);
    auto r = rt.Cmd({"run", "--bundle", b.path().string(), id});
    EXPECT_FALSE(rt.State(id)) << rt.name << " left " << id << " behind";
    return r.exit_code == 0 ? r.out : "refused: " + r.err;
  }
};

// runc (and crun) create a missing process.cwd inside the container (mode
// 0755, owned by root) before the root is made read-only, and run.
TEST_F(RuntimeParity, RuntimeMissingCwdCreatedAsRuncDoes) {
  std::map<std::string, std::string> seen;
  for (const Runtime& rt : runtimes_) {
    rttest::Bundle b =
        rttest::MakeBundle({"sh", "-c", "echo cwd=$(pwd) $(stat -c '%a %u' .) $(id -u)"});
    fs::path rootfs = rttest::CopyRootfs(b.path() / "rootfs");
    b.config["root"]["path"] = rootfs.string();
    b.config["process"]["cwd"] = "/work/dir";
    b.config["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
    b.Write();
    seen[rt.name] = Run(rt, b);
    EXPECT_TRUE(fs::is_directory(rootfs / "work/dir")) << rt.name;
  }
  EXPECT_EQ(seen["gantry"], "cwd=/work/dir 755 0 1000\n");
  for (const auto& [name, out] : seen) EXPECT_EQ(seen["gantry"], out) << name;
}

// runc sets HOME when process.env has none (or an empty one): the home of
// the process's uid in the container's /etc/passwd, "/" without an entry.
// Both for the container's process and for `exec`.
TEST_F(RuntimeParity, RuntimeHomeFromContainerPasswdAsRuncSetsIt) {
  struct Case {
    const char* what;
    unsigned uid;
    const char* home_env;  // HOME=… added to process.env, or none
    // crun 1.8.1 sets no HOME for a uid without an entry, and keeps an
    // empty one; runc is the reference there.
    bool crun_differs;
  };
  const Case cases[] = {
      {"uid with an entry", 1000, nullptr, false},   {"root", 0, nullptr, false},
      {"uid without an entry", 1001, nullptr, true}, {"HOME given", 1000, "HOME=/given", false},
      {"HOME given empty", 1000, "HOME=", true},
  };
  const std::string probe = "echo home=[$HOME] count=$(env | grep -c '^HOME=')";
  for (const Case& c : cases) {
    std::map<std::string, std::string> run, exec;
    for (const Runtime& rt : runtimes_) {
      if (rt.name == "crun" && c.crun_differs) continue;
      rttest::Bundle b = rttest::MakeBundle({"sh", "-c", probe});
      b.config["process"]["user"] = {{"uid", c.uid}, {"gid", 1000}};
      if (c.home_env) b.config["process"]["env"].push_back(c.home_env);
      b.Write();
      run[rt.name] = Run(rt, b);

      b.config["process"]["args"] = {"sleep", "1000"};
      b.Write();
      std::string id = rttest::UniqueId("home-" + rt.name);
      auto d = rt.Detached({"run", "--detach", "--bundle", b.path().string(), id},
                           dir_.path() / (id + ".log"));
      ASSERT_EQ(d.exit_code, 0) << rt.name << ": " << d.err;
      // --user given: crun's exec runs as root without it.
      auto e = rt.Cmd({"exec", "--user", std::to_string(c.uid) + ":1000", id, "sh", "-c", probe});
      exec[rt.name] = e.exit_code == 0 ? e.out : "refused: " + e.err;
      EXPECT_EQ(rt.Cmd({"delete", "--force", id}).exit_code, 0) << rt.name;
    }
    for (const auto& [name, out] : run)
      EXPECT_EQ(run["gantry"], out) << c.what << ": run, " << name;
    for (const auto& [name, out] : exec)
      EXPECT_EQ(exec["gantry"], out) << c.what << ": exec, " << name;
    EXPECT_EQ(run["gantry"], exec["gantry"]) << c.what;
  }
}

// `{"type": "mount", "path": ""}` is a new mount namespace for runc (an
// empty path is no path); crun 1.8.1 tries to open "" and refuses.
TEST_F(RuntimeParity, RuntimeMountNamespaceWithEmptyPathIsNew) {
  rttest::Bundle b = rttest::MakeBundle({"readlink", "/proc/self/ns/mnt"});
  for (json& ns : b.config["linux"]["namespaces"])
    if (ns["type"] == "mount") ns["path"] = "";
  b.Write();
  std::string host = fs::read_symlink("/proc/self/ns/mnt").string() + "\n";
  std::string gantry = Run(runtimes_[0], b), runc = Run(runtimes_[1], b);
  EXPECT_TRUE(gantry.starts_with("mnt:[")) << gantry;
  EXPECT_NE(gantry, host);
  EXPECT_TRUE(runc.starts_with("mnt:[")) << runc;
  EXPECT_NE(runc, host);
}

// linux.rootfsPropagation with the rootfs on a shared mount (as under
// containerd on a systemd host). For each mode: how the container's root
// is marked (shared, a slave, neither), whether a mount the host makes
// under the rootfs afterwards reaches the container, and that nothing of
// the container's leaks into the host. Known differences of the peers:
//  - runc 1.1 leaves the root unshared for shared/rshared and refuses
//    unbindable (runc#1755, fixed later by runc#4724); crun and gantry
//    mark it so.
//  - crun 1.8.1 makes the rootfs private whatever the mode, so the host's
//    mounts never reach it; runc and gantry keep it a slave for the
//    default (rslave).
TEST_F(RuntimeParity, RuntimeRootfsPropagationOnSharedMountAsRuncAndCrun) {
  // All of it in a mount namespace of this test's own, a slave of the
  // host's, so that nothing reaches the host whatever a runtime does.
  ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << strerror(errno);
  ASSERT_EQ(::mount("", "/", nullptr, MS_SLAVE | MS_REC, nullptr), 0) << strerror(errno);
  const fs::path shared = dir_.path() / "shared";
  fs::create_directories(shared);
  ASSERT_EQ(::mount(shared.c_str(), shared.c_str(), nullptr, MS_BIND, nullptr), 0);
  ASSERT_EQ(::mount("", shared.c_str(), nullptr, MS_PRIVATE, nullptr), 0);
  ASSERT_EQ(::mount("", shared.c_str(), nullptr, MS_SHARED, nullptr), 0);
  const fs::path rootfs = rttest::CopyRootfs(shared / "rootfs");
  fs::create_directories(rootfs / "mnt");

  // crun in a mount namespace that keeps the shared mount's propagation.
  std::vector<Runtime> runtimes = {
      runtimes_[0],
      runtimes_[1],
      {"crun",
       {"unshare", "-m", "--propagation", "unchanged", "sh", "-c",
        "umount /sys/fs/cgroup/unified 2>/dev/null; exec crun \"$@\" </dev/null", "crun", "--root",
        (dir_.path() / "crun-shared-root").string()}}};
  const std::string probe =
      "awk '$5 == \"/\" { t = \"private\"; for (i = 7; $i != \"-\"; i++) "
      "{ if ($i ~ /^shared/) t = \"shared\"; else if ($i ~ /^master/ && t != \"shared\") t = "
      "\"slave\"; else if ($i == \"unbindable\") t = \"unbindable\" } print \"root=\" t }' "
      "/proc/self/mountinfo; [ -e /mnt/from-host ] && echo host-mount=seen || echo "
      "host-mount=unseen";
  // Mounts of the container's left in our namespace: reported, then
  // detached so that the next case starts clean.
  auto expect_no_leak = [&](const std::string& what) {
    auto leaked = rttest::MountsMentioning(rootfs.string());
    EXPECT_EQ(leaked.size(), 0u) << what << " left mounts behind, first: "
                                 << (leaked.empty() ? "" : leaked[0]);
    for (size_t i = 0; i < leaked.size() && ::umount2(rootfs.c_str(), MNT_DETACH) == 0; ++i) {
    }
  };

  struct Case {
    const char* mode;  // "" for none given
    bool runc_agrees, crun_agrees;
  };
  const Case cases[] = {
      {"", true, false},        {"rslave", true, false},     {"slave", true, true},
      {"private", true, true},  {"rprivate", true, true},    {"shared", false, true},
      {"rshared", false, true}, {"unbindable", false, true},
  };
  for (const Case& c : cases) {
    rttest::Bundle b = rttest::MakeBundle({"sleep", "1000"});
    b.config["root"]["path"] = rootfs.string();
    if (*c.mode) b.config["linux"]["rootfsPropagation"] = c.mode;
    b.Write();
    std::map<std::string, std::string> seen;
    for (const Runtime& rt : runtimes) {
      std::string id = rttest::UniqueId("prop-" + rt.name);
      auto r = rt.Detached({"run", "--detach", "--bundle", b.path().string(), id},
                           dir_.path() / (id + ".log"));
      if (r.exit_code != 0) {
        seen[rt.name] = "refused";
        expect_no_leak(std::string(c.mode) + ": " + rt.name);
        continue;
      }
      // Mount propagation is done when mount(2) returns: no wait needed.
      ASSERT_EQ(::mount("tmpfs", (rootfs / "mnt").c_str(), "tmpfs", 0, nullptr), 0);
      std::ofstream(rootfs / "mnt/from-host") << "x";
      auto e = rt.Cmd({"exec", id, "sh", "-c", probe});
      seen[rt.name] = e.exit_code == 0 ? e.out : "exec failed: " + e.err;
      EXPECT_EQ(::umount2((rootfs / "mnt").c_str(), MNT_DETACH), 0);
      EXPECT_EQ(rt.Cmd({"delete", "--force", id}).exit_code, 0) << rt.name;
      expect_no_leak(std::string(c.mode) + ": " + rt.name);
    }
    std::string mode = *c.mode ? c.mode : "(default)";
    if (c.runc_agrees) {
      EXPECT_EQ(seen["gantry"], seen["runc"]) << mode;
    }
    if (c.crun_agrees) {
      EXPECT_EQ(seen["gantry"], seen["crun"]) << mode;
    }
    // Where the root is shared or unbindable for crun but not runc 1.1,
    // runc still agrees on what reaches the container.
    if (!c.runc_agrees && seen["runc"] != "refused") {
      EXPECT_NE(seen["runc"].find("host-mount=unseen"), std::string::npos) << mode;
    }
  }
}

// A second mount of the cgroup2 hierarchy (a tool's, or another test's)
// made after the system's must not become where the container's cgroup is
// looked up: gantry-runtime once took the last one in mountinfo, and an
// `exec` after that mount went away failed to join the container's cgroup
// (a flake of RuntimeRefuse.RuntimeSecurityLabelsRefusedWhereRuncRefusesThem
// while RuntimeCgroupV2LimitsRefusedOrApplied ran beside it). runc uses
// /sys/fs/cgroup whatever else is mounted.
TEST_F(RuntimeParity, RuntimeExecAfterAnotherCgroup2MountIsGoneAsRunc) {
  REQUIRE_CGROUP2();
  auto mounted = rttest::CgroupV2Host::Create(dir_.path());
  ASSERT_TRUE(mounted) << mounted.error().message;
  std::optional<rttest::CgroupV2Host> extra(std::move(*mounted));
  rttest::Bundle b = rttest::MakeBundle({"sleep", "1000"});
  std::vector<std::string> ids;
  for (const Runtime& rt : runtimes_) {
    ids.push_back(rttest::UniqueId("cg2-" + rt.name));
    auto d = rt.Detached({"run", "--detach", "--bundle", b.path().string(), ids.back()},
                         dir_.path() / (ids.back() + ".log"));
    ASSERT_EQ(d.exit_code, 0) << rt.name << ": " << d.err;
  }
  extra.reset();  // the other mount goes away while the containers live
  for (size_t i = 0; i < runtimes_.size(); ++i) {
    const Runtime& rt = runtimes_[i];
    auto e = rt.Cmd({"exec", ids[i], "true"});
    EXPECT_EQ(e.exit_code, 0) << rt.name << ": " << e.err;
    EXPECT_EQ(rt.Cmd({"delete", "--force", ids[i]}).exit_code, 0) << rt.name;
  }
}

}  // namespace
