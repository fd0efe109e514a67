#include "common/in_root.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <deque>
#include <vector>

#include "common/log.h"

namespace common {
namespace {

// The kernel's own bound on symlinks followed in one lookup.
constexpr int kMaxSymlinks = 40;

// openat2 availability, probed on first use: 0 unknown, 1 works, -1 not.
std::atomic<int> g_openat2{0};

std::deque<std::string> Components(std::string_view path) {
  std::deque<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// A failed lookup whose cause is the tree's own layout is the tree's
// fault (InvalidArgument), not the system's.
std::unexpected<Error> LookupError(const std::string& what, int err) {
  auto e = ErrnoError(what, err);
  if (err == ELOOP || err == ENOTDIR || err == EXDEV || err == ENAMETOOLONG)
    e.error().code = Errc::kInvalidArgument;
  return e;
}

// openat2 with RESOLVE_IN_ROOT; -1 with errno set. EAGAIN means a rename
// elsewhere on the system raced the lookup: retried a few times.
int Openat2InRoot(int root_fd, const std::string& rel, const InRootOptions& o) {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC | (o.directory ? O_DIRECTORY : 0);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (o.no_xdev ? RESOLVE_NO_XDEV : 0);
  int fd = -1;
  for (int attempt = 0; attempt < 8; ++attempt) {
    fd = static_cast<int>(::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how));
    if (fd >= 0 || errno != EAGAIN) break;
  }
  return fd;
}

// Creates the missing component `name` in `dir` and opens it O_PATH.
Result<UniqueFd> CreateComponent(int dir, const std::string& name, bool as_file,
                                 const std::string& what) {
  if (as_file) {
    int f = ::openat(dir, name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (f < 0 && errno != EEXIST) return ErrnoError("create file in " + what);
    if (f >= 0) ::close(f);
  } else {
    if (::mkdirat(dir, name.c_str(), 0755) != 0 && errno != EEXIST)
      return ErrnoError("create directory in " + what);
    // mkdir's mode went through the umask; implicit parents are 0755.
    int d = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d < 0) return LookupError(what, errno);
    UniqueFd created(d);
    if (::fchmod(created.get(), 0755) != 0) return ErrnoError("chmod in " + what);
  }
  int fd = ::openat(dir, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return LookupError(what, errno);
  return UniqueFd(fd);
}

// The walk: every component is opened O_PATH|O_NOFOLLOW relative to the
// directory reached so far; a symlink's target is spliced in front of the
// remaining components (restarting at the root when absolute), and ".."
// pops the directories walked, never above the root.
Result<UniqueFd> Walk(int root_fd, std::string_view path, const InRootOptions& o,
                      const std::string& what) {
  struct stat root_st {};
  if (::fstat(root_fd, &root_st) != 0) return ErrnoError(what);
  std::deque<std::string> todo = Components(path);
  std::vector<UniqueFd> stack;  // directories walked below the root
  UniqueFd last;                // the final object when it is not a directory
  int links = 0;
  auto cur = [&] { return stack.empty() ? root_fd : stack.back().get(); };
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    // Anything after a non-directory ("file/x", "file/..") is ENOTDIR.
    if (last) return LookupError(what, ENOTDIR);
    if (c == ".") continue;
    if (c == "..") {
      if (!stack.empty()) stack.pop_back();
      continue;
    }
    int fd = ::openat(cur(), c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    UniqueFd f(fd);
    if (fd < 0) {
      if (errno != ENOENT || o.create == InRootOptions::Create::kNothing)
        return LookupError(what, errno);
      bool as_file = todo.empty() && o.create == InRootOptions::Create::kDirsAndFile;
      ASSIGN_OR_RETURN(f, CreateComponent(cur(), c, as_file, what));
    }
    struct stat st {};
    if (::fstat(f.get(), &st) != 0) return ErrnoError(what);
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks) return LookupError(what, ELOOP);
      std::string target(PATH_MAX, '\0');
      ssize_t n = ::readlinkat(f.get(), "", target.data(), target.size());
      if (n < 0) return ErrnoError(what);
      target.resize(static_cast<size_t>(n));
      if (target.empty()) return LookupError(what, ENOENT);
      auto more = Components(target);
      todo.insert(todo.begin(), std::make_move_iterator(more.begin()),
                  std::make_move_iterator(more.end()));
      if (target.front() == '/') stack.clear();
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      // Only directories are mount points in a tree; on overlayfs a file's
      // st_dev may be a lower layer's, so files are not compared.
      if (o.no_xdev && st.st_dev != root_st.st_dev) return LookupError(what, EXDEV);
      stack.push_back(std::move(f));
      continue;
    }
    last = std::move(f);
  }
  if (last) {
    if (o.directory) return LookupError(what, ENOTDIR);
    return last;
  }
  return OpenAt(cur(), ".", O_PATH | O_DIRECTORY);
}

}  // namespace

Result<UniqueFd> OpenInRoot(int root_fd, std::string_view path, const InRootOptions& o) {
  const std::string what = "resolve `" + DisplayPath(path) + "`";
  std::string rel(path);
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  if (rel.empty()) rel = ".";
  if (o.use_openat2 && g_openat2.load(std::memory_order_relaxed) >= 0) {
    int fd = Openat2InRoot(root_fd, rel, o);
    if (fd >= 0) {
      g_openat2.store(1, std::memory_order_relaxed);
      return UniqueFd(fd);
    }
    const int err = errno;
    // Path lookup itself never fails with EPERM; seccomp filters that do
    // not know openat2 answer ENOSYS or EPERM.
    if (err == ENOSYS || (err == EPERM && g_openat2.load(std::memory_order_relaxed) == 0)) {
      if (g_openat2.exchange(-1) != -1)
        LOG(Warn) << "openat2 unsupported, falling back to a component walk" << Kv("errno", err);
    } else if (!(err == ENOENT && o.create != InRootOptions::Create::kNothing)) {
      return LookupError(what, err);
    }
  }
  return Walk(root_fd, rel, o, what);
}

std::string DisplayPath(std::string_view raw) {
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

std::string FdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

}  // namespace common
