// Name normalisation, in-root resolution (common/in_root.h) with a cache,
// and fd-relative removal.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/in_root.h"
#include "unpack/path_internal.h"

namespace unpack::internal {

using common::Errc;
using common::ErrnoError;
using common::MakeError;
using common::Result;
using common::Status;
using common::UniqueFd;

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
      return MakeError(Errc::kInvalidArgument, "name too long (" + std::to_string(c.size()) +
                                                   " bytes, limit " +
                                                   std::to_string(limits.max_name_length) + ")");
    if (!out.empty()) out.push_back('/');
    out.append(c);
  }
  if (out.size() > limits.max_path_length)
    return MakeError(Errc::kInvalidArgument, "path too long (" + std::to_string(out.size()) +
                                                 " bytes, limit " +
                                                 std::to_string(limits.max_path_length) + ")");
  return out;
}

std::pair<std::string_view, std::string_view> SplitLast(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

// ---- Resolver -----------------------------------------------------------------

Status Resolver::Init() {
  struct stat st {};
  if (::fstat(root_fd_, &st) != 0) return ErrnoError("stat the root directory");
  if (!S_ISDIR(st.st_mode)) return MakeError(Errc::kInvalidArgument, "the root is not a directory");
  root_dev_ = st.st_dev;
  return {};
}

Result<UniqueFd> Resolver::OpenDir(std::string_view dir, bool create) {
  return common::OpenInRoot(root_fd_, dir,
                            {.use_openat2 = use_openat2_,
                             .no_xdev = true,
                             .create = create ? common::InRootOptions::Create::kDirs
                                              : common::InRootOptions::Create::kNothing,
                             .directory = true});
}

Result<int> Resolver::ParentFd(std::string_view dir, bool create) {
  if (cache_valid_ && cache_path_ == dir) return cache_fd_.get();
  ASSIGN_OR_RETURN(UniqueFd fd, OpenDir(dir, create));
  cache_fd_ = std::move(fd);
  ++generation_;
  cache_path_.assign(dir);
  cache_valid_ = true;
  return cache_fd_.get();
}

// ---- removal ------------------------------------------------------------------

Status RemoveAllAt(int dirfd, const std::string& name, dev_t dev) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
  if (errno != EISDIR) return ErrnoError("remove `" + common::DisplayPath(name) + "`");
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open `" + common::DisplayPath(name) + "` for removal");
  UniqueFd dir(fd);
  struct stat st {};
  if (::fstat(dir.get(), &st) != 0) return ErrnoError("stat `" + common::DisplayPath(name) + "`");
  if (st.st_dev != dev)
    return ErrnoError("remove `" + common::DisplayPath(name) + "`: refusing to cross a mount point",
                      EXDEV);
  // Without CAP_DAC_OVERRIDE, a read-only directory's entries cannot be
  // unlinked; it is about to go, so its mode no longer matters.
  if ((st.st_mode & 0700) != 0700 && ::fchmod(dir.get(), 0700) != 0)
    return ErrnoError("chmod `" + common::DisplayPath(name) + "` for removal");

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
    if (errno != 0) return ErrnoError("read directory `" + common::DisplayPath(name) + "`");
  }
  for (const std::string& child : children) TRY(RemoveAllAt(dir.get(), child, dev));
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return ErrnoError("remove directory `" + common::DisplayPath(name) + "`");
  return {};
}

}  // namespace unpack::internal
