#pragma once
// Helpers for the runtime integration tests: busybox bundles built in the
// test (no dependency on `gantry bundle`), and the three runtimes under
// comparison, each with its own state root:
//   gantry — the gantry-runtime executable;
//   runc   — Debian's runc;
//   crun   — Debian's crun 1.8.1, in a private mount namespace without the
//            hybrid /sys/fs/cgroup/unified mount it refuses.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "fixtures/process.h"

namespace rttest {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Whether /bin/busybox is Debian's static busybox (the containers' rootfs).
bool HaveStaticBusybox();

// A rootfs with /bin/busybox, applet links, /etc/passwd and /etc/group
// (user 1000, groups 10 and 20), shared read-only by all tests of the
// program. Built on first use.
const fs::path& SharedRootfs();

// `runc spec`'s defaults (namespaces, mounts, capabilities, masked and
// read-only paths, RLIMIT_NOFILE, noNewPrivileges) with terminal off, the
// shared rootfs (absolute, read-only) and hostname "gantry-test".
json DefaultConfig(const std::vector<std::string>& args);

// A writable copy of SharedRootfs() at `dest` (for tests whose container
// changes its rootfs); returns `dest`.
fs::path CopyRootfs(const fs::path& dest);

// A bundle directory of its own: config.json written by Write().
struct Bundle {
  common::TempDir dir;
  json config;
  fs::path path() const { return dir.path(); }
  void Write() const;
};
Bundle MakeBundle(const std::vector<std::string>& args);

struct Runtime {
  std::string name;
  std::vector<std::string> prefix;  // argv up to and including --root DIR

  std::vector<std::string> Argv(const std::vector<std::string>& args) const;
  // Runs a runtime command to completion (stdout/stderr captured).
  fixtures::CommandResult Cmd(const std::vector<std::string>& args,
                              std::chrono::seconds timeout = std::chrono::seconds(60)) const;
  // Cmd with `input` written to the runtime's stdin.
  fixtures::CommandResult CmdWithInput(const std::vector<std::string>& args,
                                       const std::string& input) const;
  // For commands that leave a container process holding their stdio
  // (create, run --detach): output goes to `log`, only the exit status of
  // the runtime itself is awaited.
  fixtures::CommandResult Detached(const std::vector<std::string>& args, const fs::path& log) const;
  // `state ID` parsed; nullopt when it fails.
  std::optional<json> State(const std::string& id) const;
  // Polls `state` until the status is `want` (true) or 10 s pass.
  bool WaitStatus(const std::string& id, const std::string& want) const;
};

// delete --force of every container the runtimes still list, so that a
// failed test leaves no process or cgroup behind.
void DeleteAll(const std::vector<Runtime>& runtimes);

// The state roots live under `dir`: gantry, runc and crun (crun in a
// private mount namespace without the hybrid cgroup2 mount, its stdin an
// empty file: see AllRuntimes).
Runtime Gantry(const fs::path& dir);
std::vector<Runtime> AllRuntimes(const fs::path& dir);

// `rt` started in a private mount namespace (unshare -m: every mount made
// private there) after the shell commands `prelude` ran in it, e.g.
// "umount /sys/fs/cgroup/pids": a host with that hierarchy missing.
Runtime InPrivateMountNamespace(const Runtime& rt, const std::string& prelude);

// A pure cgroup v2 host made in private mount namespaces: the v1
// hierarchies unmounted, cgroup2 at /sys/fs/cgroup. Only controllers the
// v1 hierarchies do not hold exist there. The test looks at the same
// (single) cgroup2 hierarchy through a mount of its own at `dir`/cgroup2,
// so it needs no particular host layout, only a kernel with cgroup2. On
// destruction, controllers a runtime enabled in the root's
// cgroup.subtree_control are disabled again.
class CgroupV2Host {
 public:
  // Mounts cgroup2 below `dir`. REQUIRES: the kernel has cgroup2
  // (REQUIRE_CGROUP2 first); a mount that fails anyway is an error.
  static common::Result<CgroupV2Host> Create(const fs::path& dir);
  CgroupV2Host(CgroupV2Host&&) = default;
  ~CgroupV2Host();
  // `rt` run on it.
  static Runtime On(const Runtime& rt);
  // The hierarchy's root as the test sees it.
  const fs::path& root() const { return root_; }

 private:
  CgroupV2Host() = default;
  fs::path root_;
  common::MountGuard mount_;
  std::string subtree_control_;
};

// A container id unique in this process and across concurrent test runs.
std::string UniqueId(const std::string& prefix);

// Directories named `id` anywhere under `root` (there should be none under
// /sys/fs/cgroup once a container is deleted or failed to create).
std::vector<std::string> CgroupDirsNamed(const std::string& id,
                                         const fs::path& root = "/sys/fs/cgroup");

// Mounts of the calling process whose source or mount point mentions `path`.
std::vector<std::string> MountsMentioning(const std::string& path);

// A listening AF_UNIX stream socket at `path` (a --console-socket), or an
// invalid fd.
common::UniqueFd ListenUnix(const std::string& path);
// Accepts one connection on `listener` and returns the fd it sends with
// SCM_RIGHTS (the pty master, runc's console-socket protocol), or -1.
// Waits at most `timeout`.
int ReceiveFd(int listener, std::chrono::milliseconds timeout = std::chrono::seconds(30));
// Receives one message on the connected socket `conn`: its data into
// `data`, and the fd it carries (SCM_RIGHTS), or -1.
int RecvFd(int conn, std::string& data);
// Reads `fd` until EOF/EIO or until `done(text so far)` holds, at most
// `timeout`.
std::string ReadUntil(int fd, const std::function<bool(const std::string&)>& done,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

// `create --console-socket SOCK` of `bundle` as `id` under `rt`, then
// `start`: the pty master the container sent, or an invalid fd with the
// reason in `why`.
common::UniqueFd CreateWithConsole(const Runtime& rt, const fs::path& bundle,
                                   const std::string& sock, const std::string& id,
                                   std::string& why);

// "key=value" lines of `text` as a map (later keys win).
std::map<std::string, std::string> KeyValues(const std::string& text);

// A suite over every runtime: skipped unless root, failed without the
// static busybox; a temp dir of its own; every container deleted after.
class RuntimeSuite : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override { DeleteAll(runtimes_); }

  common::TempDir dir_;
  std::vector<Runtime> runtimes_;
};

}  // namespace rttest
