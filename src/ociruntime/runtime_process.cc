// The container process's own attributes: rlimits, oom_score_adj, the
// executable, user and groups, capabilities, and the console.

#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/fs.h"
#include "common/log.h"
#include "common/userdb.h"
#include "ociruntime/runtime_internal.h"

namespace ociruntime::rt {
namespace {

using common::Errc;
using common::Result;
using common::Status;
using common::UniqueFd;

struct CapSets {
  uint64_t effective = 0, permitted = 0, inheritable = 0;
};

bool GetCaps(CapSets& out) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  out.effective = data[0].effective | (uint64_t{data[1].effective} << 32);
  out.permitted = data[0].permitted | (uint64_t{data[1].permitted} << 32);
  out.inheritable = data[0].inheritable | (uint64_t{data[1].inheritable} << 32);
  return true;
}

bool SetCaps(const CapSets& c) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  data[0].effective = static_cast<uint32_t>(c.effective);
  data[1].effective = static_cast<uint32_t>(c.effective >> 32);
  data[0].permitted = static_cast<uint32_t>(c.permitted);
  data[1].permitted = static_cast<uint32_t>(c.permitted >> 32);
  data[0].inheritable = static_cast<uint32_t>(c.inheritable);
  data[1].inheritable = static_cast<uint32_t>(c.inheritable >> 32);
  return ::syscall(SYS_capset, &hdr, data) == 0;
}

std::string CapName(int cap) {
  char* n = cap_to_name(static_cast<cap_value_t>(cap));
  std::string out = n ? n : "cap " + std::to_string(cap);
  cap_free(n);
  for (char& ch : out) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
  return out;
}

}  // namespace

Status ApplyRlimits(const Process& p) {
  for (const Rlimit& r : p.rlimits) {
    rlimit lim{r.soft, r.hard};
    if (::setrlimit(r.resource, &lim) == 0) continue;
    int err = errno;
    rlimit cur{};
    ::getrlimit(r.resource, &cur);
    std::string msg =
        "set " + r.name + " to soft=" + std::to_string(r.soft) + " hard=" + std::to_string(r.hard);
    if (err == EPERM && r.hard > cur.rlim_max)
      return common::MakeError(
          Errc::kPermissionDenied,
          msg + ": raising the hard limit above " + std::to_string(cur.rlim_max) +
              " needs CAP_SYS_RESOURCE, which is not in this runtime's bounding set");
    return common::ErrnoError(msg, err);
  }
  return {};
}

Status ApplyOomScoreAdj(const Process& p) {
  if (!p.oom_score_adj) return {};
  std::string v = std::to_string(*p.oom_score_adj);
  UniqueFd fd(::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC));
  if (!fd) return common::ErrnoError("open `/proc/self/oom_score_adj`");
  if (::write(fd.get(), v.data(), v.size()) >= 0) return {};
  int err = errno;
  if (err == EACCES || err == EPERM)
    return common::MakeError(Errc::kPermissionDenied,
                             "set process.oomScoreAdj to " + v +
                                 ": lowering it needs CAP_SYS_RESOURCE, which is not in this "
                                 "runtime's bounding set");
  return common::ErrnoError("set process.oomScoreAdj to " + v, err);
}

Result<std::string> FindExecutable(const Process& p) {
  const std::string& name = p.args[0];
  auto usable = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos) {
    if (usable(name)) return name;
    return common::ErrnoError("exec `" + name + "`", errno ? errno : EACCES);
  }
  std::string path_var;
  for (const std::string& e : p.env)
    if (e.starts_with("PATH=")) path_var = e.substr(5);
  size_t i = 0;
  while (i <= path_var.size() && !path_var.empty()) {
    size_t j = path_var.find(':', i);
    if (j == std::string::npos) j = path_var.size();
    std::string dir = path_var.substr(i, j - i);
    std::string cand = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (usable(cand)) return cand;
    i = j + 1;
  }
  return common::MakeError(Errc::kNotFound,
                           "exec `" + name + "`: executable file not found in $PATH");
}

std::vector<std::string> EnvWithHome(const Process& p) {
  std::vector<std::string> env = p.env;
  auto home = std::find_if(env.begin(), env.end(),
                           [](const std::string& e) { return e.starts_with("HOME="); });
  if (home != env.end() && home->size() > 5) return env;
  std::string dir = "/";
  // The container's passwd, read as root before the user change (the user
  // may not be allowed to). A missing file is no entry, and so is anything
  // but a regular file (opening a FIFO the image put there would block).
  std::string text;
  UniqueFd fd(::open("/etc/passwd", O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  struct stat st {};
  if (fd && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode))
    text = common::ReadFile(FdPath(fd.get()), common::kMaxUserFileSize).value_or("");
  for (const common::PasswdEntry& e : common::ParsePasswd(text))
    if (e.uid == p.uid) {
      dir = e.home;
      break;
    }
  if (home != env.end())
    *home = "HOME=" + dir;
  else
    env.push_back("HOME=" + dir);
  return env;
}

void ExecProcess(const std::string& exe, const Process& p, const std::vector<std::string>& env,
                 int preserve_fds) {
  std::vector<char*> argv, envp;
  for (const std::string& s : p.args) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  for (const std::string& s : env) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  // Nothing but stdio and the preserved fds crosses into the container.
  ::close_range(3 + preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC);
  ::execve(exe.c_str(), argv.data(), envp.data());
}

Status CheckCapsAvailable(const Capabilities& caps) {
  if (!caps.present) return {};
  CapSets own;
  if (!GetCaps(own)) return common::ErrnoError("capget");
  uint64_t wanted = caps.effective | caps.permitted | caps.inheritable | caps.ambient;
  uint64_t missing = wanted & ~own.permitted;
  if (!missing) return {};
  std::string names;
  for (int c = 0; c < 64; ++c)
    if (missing & (uint64_t{1} << c)) names += (names.empty() ? "" : ", ") + CapName(c);
  return common::MakeError(
      Errc::kPermissionDenied,
      "process.capabilities: " + names + " not in this runtime's bounding set, cannot be granted");
}

Status ApplyUserAndCaps(const Process& p, int last_cap, bool userns) {
  const Capabilities& caps = p.caps;
  if (caps.present) {
    for (int c = 0; c <= last_cap; ++c)
      if (!(caps.bounding & (uint64_t{1} << c)) && ::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 &&
          errno != EINVAL)
        return common::ErrnoError("drop " + CapName(c) + " from the bounding set");
    if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return common::ErrnoError("prctl KEEPCAPS");
  }
  // A user namespace whose gid map was written with setgroups denied
  // refuses setgroups(2); its gid map lists everything there is anyway.
  if (::setgroups(p.additional_gids.size(), p.additional_gids.data()) != 0 &&
      !(userns && errno == EPERM))
    return common::ErrnoError("setgroups");
  if (::setresgid(p.gid, p.gid, p.gid) != 0)
    return common::ErrnoError("setgid " + std::to_string(p.gid));
  if (::setresuid(p.uid, p.uid, p.uid) != 0)
    return common::ErrnoError("setuid " + std::to_string(p.uid));
  if (!caps.present) return {};
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) return common::ErrnoError("prctl KEEPCAPS");
  if (!SetCaps({caps.effective, caps.permitted, caps.inheritable}))
    return common::ErrnoError("set capabilities");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return common::ErrnoError("clear the ambient set");
  for (int c = 0; c <= last_cap; ++c) {
    if (!(caps.ambient & (uint64_t{1} << c))) continue;
    // The kernel only raises an ambient capability that is also permitted
    // and inheritable; runc and crun skip the others silently.
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0 && errno != EPERM)
      return common::ErrnoError("raise " + CapName(c) + " in the ambient set");
  }
  return {};
}

Status SendFd(int sock, int fd, std::string_view data) {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  if (::sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) return common::ErrnoError("sendmsg");
  return {};
}

Status SetupConsole(int console_fd, const Process& p, bool dev_console) {
  UniqueFd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) return common::ErrnoError("open `/dev/ptmx`");
  if (::unlockpt(master.get()) != 0) return common::ErrnoError("unlockpt");
  char name[128];
  if (::ptsname_r(master.get(), name, sizeof name) != 0) return common::ErrnoError("ptsname");
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return common::ErrnoError(std::string("open `") + name + "`");
  if (p.console_size) {
    winsize ws{};
    ws.ws_row = static_cast<unsigned short>(p.console_size->first);
    ws.ws_col = static_cast<unsigned short>(p.console_size->second);
    if (::ioctl(slave.get(), TIOCSWINSZ, &ws) != 0) return common::ErrnoError("set console size");
  }
  // /dev/console is the init's pty, as runc makes it.
  if (dev_console) {
    int f = ::open("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f >= 0) ::close(f);
    if (::mount(name, "/dev/console", nullptr, MS_BIND, nullptr) != 0)
      return common::ErrnoError(std::string("mount `") + name + "` on `/dev/console`");
  }
  // runc's protocol: the master's path as data, the fd as SCM_RIGHTS.
  TRY(Wrap(SendFd(console_fd, master.get(), "/dev/ptmx"), "send the console to --console-socket"));
  for (int i = 0; i < 3; ++i)
    if (::dup2(slave.get(), i) != i) return common::ErrnoError("dup2 console");
  if (::ioctl(0, TIOCSCTTY, 0) != 0) return common::ErrnoError("set the controlling terminal");
  return {};
}

}  // namespace ociruntime::rt
