// linux.seccomp under gantry-runtime, runc and crun: a profile denying one
// call with a chosen errno, and `gantry bundle`'s default profile (Docker's
// in effect) blocking what Docker's blocks, with and without
// no_new_privs.

#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "bundle/spec.h"
#include "common/fs.h"
#include "integration/runtime/runtime_helpers.h"

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
      {"syscalls",
       {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}}}};
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
  std::vector<std::string_view> caps(std::begin(bundle::kDefaultCapabilities),
                                     std::end(bundle::kDefaultCapabilities));
  const json profile = bundle::DefaultSeccomp(caps);
  json cap_list = json::array();
  for (std::string_view c : caps) cap_list.push_back(c);
  for (bool nnp : {true, false}) {
    for (bool with_profile : {true, false}) {
      rttest::Bundle b =
          rttest::MakeBundle({"sh", "-c",
                              "unshare -U true && echo unshare=ok || echo unshare=denied; "
                              "chroot / true && echo chroot=ok; echo done"});
      b.config["process"]["noNewPrivileges"] = nnp;
      b.config["process"]["capabilities"] = {
          {"bounding", cap_list}, {"effective", cap_list}, {"permitted", cap_list}};
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
      {"syscalls",
       {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}}}}};
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

namespace {

// The test is the seccomp agent: it gets the listener fd and the state over
// listenerPath and answers the container's mkdir with ENOMSG itself.
TEST_F(RuntimeSeccomp, RuntimeNotifyListenerGetsTheFdAndAnswersCalls) {
  for (const Runtime& rt : runtimes_) {
    std::string sock = (dir_.path() / ("agent-" + rt.name)).string();
    common::UniqueFd listener = rttest::ListenUnix(sock);
    ASSERT_TRUE(listener) << sock;
    rttest::Bundle b = rttest::MakeBundle({"sh", "-c", "mkdir /dev/shm/n; echo rc=$?"});
    b.config["linux"]["seccomp"] = {
        {"defaultAction", "SCMP_ACT_ALLOW"},
        {"listenerPath", sock},
        {"listenerMetadata", "meta-" + rt.name},
        {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
    b.Write();
    std::string id = rttest::UniqueId("scn-" + rt.name);
    std::string state_text;
    int answered = 0;
    std::thread agent([&] {
      pollfd p{listener.get(), POLLIN, 0};
      if (::poll(&p, 1, 30000) != 1) return;
      common::UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) return;
      int fd = rttest::RecvFd(conn.get(), state_text);
      common::UniqueFd notify(fd);
      // Answer until the container is gone (the fd then reports POLLHUP).
      for (;;) {
        pollfd q{notify.get(), POLLIN, 0};
        if (::poll(&q, 1, 30000) != 1 || !(q.revents & POLLIN)) return;
        seccomp_notif req{};
        if (::ioctl(notify.get(), SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) return;
        seccomp_notif_resp resp{};
        resp.id = req.id;
        resp.error = -ENOMSG;
        if (::ioctl(notify.get(), SECCOMP_IOCTL_NOTIF_SEND, &resp) == 0) ++answered;
      }
    });
    auto r = rt.Cmd({"run", "--bundle", b.path().string(), id});
    listener.reset();
    agent.join();
    EXPECT_EQ(r.exit_code, 0) << rt.name << ": " << r.err;
    EXPECT_EQ(r.out, "rc=1\n") << rt.name << ": " << r.err;
    EXPECT_NE(r.err.find(strerror(ENOMSG)), std::string::npos) << rt.name << ": " << r.err;
    EXPECT_GE(answered, 1) << rt.name;
    json st = json::parse(state_text, nullptr, false);
    ASSERT_TRUE(st.is_object()) << rt.name << ": " << state_text;
    EXPECT_EQ(st["fds"], json::array({"seccompFd"})) << rt.name;
    EXPECT_EQ(st["metadata"], "meta-" + rt.name) << rt.name;
    EXPECT_EQ(st["state"]["id"], id) << rt.name;
    EXPECT_GT(st.value("pid", 0), 0) << rt.name;
  }
}

}  // namespace
