// Name normalisation and in-root resolution (openat2 with a portable walk).

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <deque>

#include "common/log.h"
#include "unpack/path_internal.h"

namespace unpack::internal {
namespace {

using common::Errc;
using common::ErrnoError;
using common::MakeError;
using common::Result;
using common::Status;
using common::UniqueFd;

// The kernel's own bound on symlinks followed in one lookup.
constexpr int kMaxSymlinks = 40;

// openat2 availability, probed on first use and shared by all Resolvers:
// 0 unknown, 1 available, -1 unavailable.
std::atomic<int> g_openat2{0};

int Openat2(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
  open_how how{};
  how.flags = flags;
  how.resolve = resolve;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

std::vector<std::string> SplitComponents(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// A lookup that fails on what the layer built (a symlink loop, a file used
// as a directory, a path into another mount) is the layer's fault.
std::unexpected<common::Error> ResolveError(const std::string& what, int err) {
  auto e = ErrnoError(what, err);
  if (err == ELOOP || err == ENOTDIR || err == EXDEV || err == ENAMETOOLONG)
    e.error().code = Errc::kInvalidArgument;
  return e;
}

Result<std::string> ReadLinkFd(int fd) {
  std::string buf(PATH_MAX, '\0');
  ssize_t n = ::readlinkat(fd, "", buf.data(), buf.size());
  if (n < 0) return ErrnoError("readlink");
  buf.resize(static_cast<size_t>(n));
  return buf;
}

}  // namespace

Result<std::string> NormalizePath(std::string_view raw, const Limits& limits) {
  if (raw.empty()) return MakeError(Errc::kInvalidArgument, "empty name");
  if (raw.find('\0') != std::string_view::npos)
    return MakeError(Errc::kInvalidArgument, "name contains a NUL byte");
  if (raw.front() == '/') return MakeError(Errc::kInvalidArgument, "absolute path");
  std::string out;
  out.reserve(raw.size());
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view c = raw.substr(i, j - i);
    i = j + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") return MakeError(Errc::kInvalidArgument, "path escapes the root");
    if (c.size() > limits.max_name_length)
      return MakeError(Errc::kInvalidArgument,
                       "name too long (" + std::to_string(c.size()) + " bytes, limit " +
                           std::to_string(limits.max_name_length) + ")");
    if (!out.empty()) out.push_back('/');
    out.append(c);
  }
  if (out.size() > limits.max_path_length)
    return MakeError(Errc::kInvalidArgument,
                     "path too long (" + std::to_string(out.size()) + " bytes, limit " +
                         std::to_string(limits.max_path_length) + ")");
  return out;
}

std::pair<std::string_view, std::string_view> SplitLast(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::string DisplayName(std::string_view raw) {
  constexpr size_t kHead = 120, kTail = 80;
  std::string shown;
  if (raw.size() > kHead + kTail + 3) {
    shown.append(raw.substr(0, kHead));
    shown.append("...");
    shown.append(raw.substr(raw.size() - kTail));
  } else {
    shown.assign(raw);
  }
  std::string out;
  out.reserve(shown.size());
  static constexpr char kHex[] = "0123456789abcdef";
  for (char ch : shown) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || c == '`' || c == '\\') {
      out.append("\\x");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

// ---- Resolver -----------------------------------------------------------------

Status Resolver::Init() {
  struct stat st{};
  if (::fstat(root_fd_, &st) != 0) return ErrnoError("stat the root directory");
  if (!S_ISDIR(st.st_mode))
    return MakeError(Errc::kInvalidArgument, "the root is not a directory");
  root_dev_ = st.st_dev;
  return {};
}

Result<UniqueFd> Resolver::OpenDir(std::string_view dir, bool create) {
  if (dir.empty()) return common::OpenAt(root_fd_, ".", O_PATH | O_DIRECTORY);
  if (use_openat2_ && g_openat2.load(std::memory_order_relaxed) >= 0) {
    const std::string path(dir);
    int fd = -1;
    // EAGAIN: a concurrent rename somewhere on the system raced the lookup.
    for (int attempt = 0; attempt < 8; ++attempt) {
      fd = Openat2(root_fd_, path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC,
                   RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
      if (fd >= 0 || errno != EAGAIN) break;
    }
    if (fd >= 0) {
      g_openat2.store(1, std::memory_order_relaxed);
      return UniqueFd(fd);
    }
    const int err = errno;
    // Path lookup itself never fails with EPERM; seccomp filters that do
    // not know openat2 answer ENOSYS or EPERM.
    if (err == ENOSYS || (err == EPERM && g_openat2.load(std::memory_order_relaxed) == 0)) {
      if (g_openat2.exchange(-1) != -1)
        LOG(Warn) << "openat2 unsupported, falling back to a component walk"
                  << common::Kv("errno", err);
    } else if (!(err == ENOENT && create)) {
      return ResolveError("resolve `" + DisplayName(dir) + "`", err);
    }
  }
  return Walk(dir, create);
}

Result<int> Resolver::ParentFd(std::string_view dir, bool create) {
  if (cache_valid_ && cache_path_ == dir) return cache_fd_.get();
  ASSIGN_OR_RETURN(UniqueFd fd, OpenDir(dir, create));
  cache_fd_ = std::move(fd);
  cache_path_.assign(dir);
  cache_valid_ = true;
  return cache_fd_.get();
}

Result<UniqueFd> Resolver::Reopen(const std::vector<std::string>& stack) {
  ASSIGN_OR_RETURN(UniqueFd cur, common::OpenAt(root_fd_, ".", O_PATH | O_DIRECTORY));
  for (const std::string& c : stack) {
    int fd = ::openat(cur.get(), c.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return ErrnoError("reopen `" + DisplayName(c) + "`");
    cur.reset(fd);
  }
  return cur;
}

// The same semantics as RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS|RESOLVE_NO_XDEV,
// one component at a time: every component is opened O_NOFOLLOW relative
// to the directory reached so far; a symlink's target is spliced in front
// of the remaining components (restarting at the root when absolute), and
// ".." pops the stack of directories walked, never above the root.
Result<UniqueFd> Resolver::Walk(std::string_view dir, bool create) {
  const std::string what = "resolve `" + DisplayName(dir) + "`";
  auto parts = SplitComponents(dir);
  std::deque<std::string> todo(std::make_move_iterator(parts.begin()),
                               std::make_move_iterator(parts.end()));
  std::vector<std::string> stack;
  ASSIGN_OR_RETURN(UniqueFd cur, common::OpenAt(root_fd_, ".", O_PATH | O_DIRECTORY));
  int links = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!stack.empty()) {
        stack.pop_back();
        ASSIGN_OR_RETURN(cur, Reopen(stack));
      }
      continue;
    }
    int fd = ::openat(cur.get(), c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur.get(), c.c_str(), 0755) != 0 && errno != EEXIST)
        return ErrnoError("create directory `" + DisplayName(c) + "`");
      fd = ::openat(cur.get(), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      // mkdir's mode went through the umask; implicit parents are 0755.
      if (fd >= 0 && ::fchmod(fd, 0755) != 0) {
        int err = errno;
        ::close(fd);
        return ErrnoError("chmod `" + DisplayName(c) + "`", err);
      }
    }
    if (fd < 0) return ResolveError(what, errno);
    UniqueFd next(fd);
    struct stat st{};
    if (::fstat(next.get(), &st) != 0) return ErrnoError(what);
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks) return ResolveError(what, ELOOP);
      ASSIGN_OR_RETURN(std::string target, ReadLinkFd(next.get()));
      if (target.empty()) return ErrnoError(what, ENOENT);
      auto target_parts = SplitComponents(target);
      todo.insert(todo.begin(), std::make_move_iterator(target_parts.begin()),
                  std::make_move_iterator(target_parts.end()));
      if (target.front() == '/') {
        stack.clear();
        ASSIGN_OR_RETURN(cur, Reopen(stack));
      }
      continue;
    }
    if (!S_ISDIR(st.st_mode)) return ResolveError(what, ENOTDIR);
    if (st.st_dev != root_dev_) return ResolveError(what, EXDEV);
    stack.push_back(std::move(c));
    cur = std::move(next);
  }
  return cur;
}

// ---- removal ------------------------------------------------------------------

Status RemoveAllAt(int dirfd, const std::string& name, dev_t dev) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
  if (errno != EISDIR) return ErrnoError("remove `" + DisplayName(name) + "`");
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open `" + DisplayName(name) + "` for removal");
  UniqueFd dir(fd);
  struct stat st{};
  if (::fstat(dir.get(), &st) != 0) return ErrnoError("stat `" + DisplayName(name) + "`");
  if (st.st_dev != dev)
    return ErrnoError("remove `" + DisplayName(name) + "`: refusing to cross a mount point", EXDEV);
  // Without CAP_DAC_OVERRIDE, a read-only directory's entries cannot be
  // unlinked; it is about to go, so its mode no longer matters.
  if ((st.st_mode & 0700) != 0700 && ::fchmod(dir.get(), 0700) != 0)
    return ErrnoError("chmod `" + DisplayName(name) + "` for removal");

  std::vector<std::string> children;
  {
    int dup = ::fcntl(dir.get(), F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return ErrnoError("dup");
    ASSIGN_OR_RETURN(common::UniqueDir d, common::UniqueDir::FromFd(UniqueFd(dup)));
    errno = 0;
    while (struct dirent* de = ::readdir(d.get())) {
      std::string_view n = de->d_name;
      if (n != "." && n != "..") children.emplace_back(n);
    }
    if (errno != 0) return ErrnoError("read directory `" + DisplayName(name) + "`");
  }
  for (const std::string& child : children) TRY(RemoveAllAt(dir.get(), child, dev));
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return ErrnoError("remove directory `" + DisplayName(name) + "`");
  return {};
}

}  // namespace unpack::internal
