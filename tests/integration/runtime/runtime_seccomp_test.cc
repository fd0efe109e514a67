// linux.seccomp under gantry-runtime, runc and crun: a profile denying one
// call with a chosen errno, and `gantry bundle`'s default profile (Docker's
// in effect) blocking what Docker's blocks, with and without
// no_new_privs.

#include <unistd.h>

#include <gtest/gtest.h>

#include "common/fs.h"
#include "integration/runtime/runtime_helpers.h"
#include "ociruntime/spec.h"

namespace {

using rttest::json;
using rttest::Runtime;

class RuntimeSeccomp : public rttest::RuntimeSuite {};

TEST_F(RuntimeSeccomp, RuntimeDeniedSyscallReturnsTheChosenErrno) {
  // ENOMSG (42): nothing else would make mkdir fail with it.
  rttest::Bundle b = rttest::MakeBundle({"sh", "-c", "mkdir /dev/shm/d; echo rc=$?"});
  b.config["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}},
      {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}}}};
  b.Write();
  for (const Runtime& rt : runtimes_) {
    auto r = rt.Cmd({"run", "--bundle", b.path().string(), rttest::UniqueId("sc-" + rt.name)});
    EXPECT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    EXPECT_EQ(r.out, "rc=1\n") << rt.name;
    EXPECT_NE(r.err.find(strerror(ENOMSG)), std::string::npos) << rt.name << ": " << r.err;
  }
}

// unshare(CLONE_NEWUSER) needs no capability, so only the profile stops it;
// Docker's default allows unshare only with CAP_SYS_ADMIN.
TEST_F(RuntimeSeccomp, RuntimeDefaultProfileBlocksUnshareWithoutSysAdmin) {
  std::vector<std::string_view> caps(std::begin(ociruntime::kDefaultCapabilities),
                                     std::end(ociruntime::kDefaultCapabilities));
  const json profile = ociruntime::DefaultSeccomp(caps);
  json cap_list = json::array();
  for (std::string_view c : caps) cap_list.push_back(c);
  for (bool nnp : {true, false}) {
    for (bool with_profile : {true, false}) {
      rttest::Bundle b = rttest::MakeBundle(
          {"sh", "-c", "unshare -U true && echo unshare=ok || echo unshare=denied; "
                       "chroot / true && echo chroot=ok; echo done"});
      b.config["process"]["noNewPrivileges"] = nnp;
      b.config["process"]["capabilities"] = {{"bounding", cap_list},
                                             {"effective", cap_list},
                                             {"permitted", cap_list}};
      if (with_profile) b.config["linux"]["seccomp"] = profile;
      b.Write();
      for (const Runtime& rt : runtimes_) {
        auto r = rt.Cmd({"run", "--bundle", b.path().string(), rttest::UniqueId("scd-" + rt.name)});
        EXPECT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
        EXPECT_EQ(r.out, std::string(with_profile ? "unshare=denied\n" : "unshare=ok\n") +
                             "chroot=ok\ndone\n")
            << rt.name << " nnp=" << nnp << " profile=" << with_profile << ": " << r.err;
      }
    }
  }
}

TEST_F(RuntimeSeccomp, RuntimeExecGetsTheContainersFilter) {
  rttest::Bundle b = rttest::MakeBundle({"sleep", "1000"});
  b.config["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}}}};
  b.Write();
  for (const Runtime& rt : runtimes_) {
    std::string id = rttest::UniqueId("sce-" + rt.name);
    auto r = rt.Detached({"run", "--detach", "--bundle", b.path().string(), id},
                         dir_.path() / (id + ".log"));
    ASSERT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    auto e = rt.Cmd({"exec", id, "mkdir", "/dev/shm/e"});
    EXPECT_NE(e.exit_code, 0) << rt.name;
    EXPECT_NE(e.err.find(strerror(ENOMSG)), std::string::npos) << rt.name << ": " << e.err;
    EXPECT_EQ(rt.Cmd({"delete", "--force", id}).exit_code, 0) << rt.name;
  }
}

}  // namespace
