// The foreground terminal of `run` and `exec --tty` without
// --console-socket: the runtime plays the console socket's other end
// itself (a socketpair), receives the pty master and relays its own stdin
// and stdout through it until the container process exits.

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "ociruntime/runtime_internal.h"

namespace ociruntime::rt {
namespace {

using common::Errc;
using common::Result;
using common::Status;
using common::UniqueFd;

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd pf{fd, POLLOUT, 0};
        (void)::poll(&pf, 1, 1000);
        continue;
      }
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

Result<ConsoleRelay> ConsoleRelay::Create() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return common::ErrnoError("socketpair for the console");
  ConsoleRelay r;
  r.ours_ = UniqueFd(sv[0]);
  r.theirs_ = UniqueFd(sv[1]);
  return r;
}

ConsoleRelay::~ConsoleRelay() {
  if (raw_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
}

Status ConsoleRelay::ReceiveMaster() {
  theirs_.reset();
  char data[256];
  iovec iov{data, sizeof data};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(ours_.get(), &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return common::ErrnoError("receive the pty master");
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd;
      memcpy(&fd, CMSG_DATA(c), sizeof fd);
      master_ = UniqueFd(fd);
    }
  if (!master_) return common::MakeError(Errc::kInternal, "the container sent no pty master");
  ours_.reset();
  // Our terminal's size for the pty, and our terminal raw: the container's
  // line discipline does the editing and echoing.
  winsize ws{};
  if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) (void)::ioctl(master_.get(), TIOCSWINSZ, &ws);
  if (::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
    termios raw = saved_;
    ::cfmakeraw(&raw);
    raw_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  return {};
}

Result<int> ConsoleRelay::RelayUntilExit(pid_t pid) {
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) return common::ErrnoError("pidfd_open of the container process");
  bool in_open = true, master_open = true, exited = false;
  char buf[16384];
  while (master_open && !exited) {
    pollfd p[3] = {{master_.get(), POLLIN, 0},
                   {pidfd.get(), POLLIN, 0},
                   {in_open ? STDIN_FILENO : -1, POLLIN, 0}};
    if (::poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return common::ErrnoError("poll the console");
    }
    if (p[0].revents) {
      ssize_t n = ::read(master_.get(), buf, sizeof buf);
      if (n > 0) {
        if (!WriteAll(STDOUT_FILENO, buf, static_cast<size_t>(n))) master_open = false;
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        master_open = false;  // EIO: every slave end is closed
      }
    }
    if (p[2].revents) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n > 0) {
        (void)WriteAll(master_.get(), buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        in_open = false;
      }
    }
    if (p[1].revents) exited = true;
  }
  // What the process wrote just before it exited is still in the pty.
  if (master_open) {
    int fl = ::fcntl(master_.get(), F_GETFL);
    ::fcntl(master_.get(), F_SETFL, fl | O_NONBLOCK);
    ssize_t n;
    while ((n = ::read(master_.get(), buf, sizeof buf)) > 0)
      if (!WriteAll(STDOUT_FILENO, buf, static_cast<size_t>(n))) break;
  }
  if (raw_) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    raw_ = false;
  }
  return WaitExitCode(pid);
}

}  // namespace ociruntime::rt
