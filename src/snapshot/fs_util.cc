#include "snapshot/fs_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/fd.h"

namespace snapshot {
namespace {

using common::ErrnoError;
using common::UniqueFd;

struct DirTime {
  std::string path;
  timespec times[2];
};

common::Status CopyXattrs(const std::string& from, const std::string& to) {
  ssize_t n = ::llistxattr(from.c_str(), nullptr, 0);
  if (n < 0) {
    if (errno == ENOTSUP) return {};
    return ErrnoError("list xattrs of `" + from + "`");
  }
  if (n == 0) return {};
  std::string names(static_cast<size_t>(n), '\0');
  n = ::llistxattr(from.c_str(), names.data(), names.size());
  if (n < 0) return ErrnoError("list xattrs of `" + from + "`");
  names.resize(static_cast<size_t>(n));
  for (size_t i = 0; i < names.size();) {
    std::string name(names.c_str() + i);
    i += name.size() + 1;
    ssize_t vn = ::lgetxattr(from.c_str(), name.c_str(), nullptr, 0);
    if (vn < 0) continue;
    std::string value(static_cast<size_t>(vn), '\0');
    vn = ::lgetxattr(from.c_str(), name.c_str(), value.data(), value.size());
    if (vn < 0) continue;
    value.resize(static_cast<size_t>(vn));
    if (::lsetxattr(to.c_str(), name.c_str(), value.data(), value.size(), 0) != 0 &&
        errno != EPERM && errno != ENOTSUP)
      return ErrnoError("set xattr `" + name + "` on `" + to + "`");
  }
  return {};
}

common::Status CopyFileData(const std::string& from, const std::string& to, mode_t mode) {
  auto in = common::Open(from, O_RDONLY | O_NOFOLLOW);
  if (!in) return std::unexpected(in.error());
  auto out = common::Open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode & 07777);
  if (!out) return std::unexpected(out.error());
  struct stat st {};
  if (::fstat(in->get(), &st) != 0) return ErrnoError("stat `" + from + "`");
  off_t remaining = st.st_size;
  while (remaining > 0) {
    ssize_t n = ::copy_file_range(in->get(), nullptr, out->get(), nullptr,
                                  static_cast<size_t>(remaining), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL) {
        // Fall back to read/write across file systems.
        char buf[1 << 16];
        ssize_t r;
        while ((r = ::read(in->get(), buf, sizeof buf)) > 0) {
          if (::write(out->get(), buf, static_cast<size_t>(r)) != r)
            return ErrnoError("write `" + to + "`");
        }
        if (r < 0) return ErrnoError("read `" + from + "`");
        break;
      }
      return ErrnoError("copy `" + from + "` to `" + to + "`");
    }
    if (n == 0) break;
    remaining -= n;
  }
  return {};
}

common::Status CopyMeta(const std::string& to, const struct stat& st, bool is_link) {
  if (::lchown(to.c_str(), st.st_uid, st.st_gid) != 0 && errno != EPERM)
    return ErrnoError("chown `" + to + "`");
  // chmod after chown: chown clears setuid/setgid.
  if (!is_link && ::chmod(to.c_str(), st.st_mode & 07777) != 0)
    return ErrnoError("chmod `" + to + "`");
  return {};
}

common::Status CopyRec(const std::string& from, const std::string& to,
                       std::map<std::pair<dev_t, ino_t>, std::string>& links,
                       std::vector<DirTime>& dir_times) {
  auto dfd = common::Open(from, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!dfd) return std::unexpected(dfd.error());
  auto dir = common::UniqueDir::FromFd(std::move(*dfd));
  if (!dir) return std::unexpected(dir.error());
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir->get())) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    names.push_back(std::move(n));
  }
  for (const auto& n : names) {
    std::string src = from + "/" + n, dst = to + "/" + n;
    struct stat st {};
    if (::lstat(src.c_str(), &st) != 0) return ErrnoError("stat `" + src + "`");
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      auto it = links.find(key);
      if (it != links.end()) {
        if (::link(it->second.c_str(), dst.c_str()) != 0) return ErrnoError("link `" + dst + "`");
        continue;
      }
      links[key] = dst;
    }
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(dst.c_str(), 0700) != 0) return ErrnoError("mkdir `" + dst + "`");
      TRY(CopyRec(src, dst, links, dir_times));
    } else if (S_ISREG(st.st_mode)) {
      TRY(CopyFileData(src, dst, st.st_mode));
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t len = ::readlink(src.c_str(), target.data(), target.size());
      if (len < 0) return ErrnoError("readlink `" + src + "`");
      target.resize(static_cast<size_t>(len));
      if (::symlink(target.c_str(), dst.c_str()) != 0) return ErrnoError("symlink `" + dst + "`");
    } else {
      if (::mknod(dst.c_str(), st.st_mode, st.st_rdev) != 0)
        return ErrnoError("mknod `" + dst + "`");
    }
    // chown drops security.capability: owner and mode first, xattrs after.
    TRY(CopyMeta(dst, st, S_ISLNK(st.st_mode)));
    TRY(CopyXattrs(src, dst));
    timespec times[2] = {st.st_atim, st.st_mtim};
    if (S_ISDIR(st.st_mode)) {
      dir_times.push_back({dst, {st.st_atim, st.st_mtim}});
    } else if (::utimensat(AT_FDCWD, dst.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      return ErrnoError("set times of `" + dst + "`");
    }
  }
  return {};
}

common::Status RemoveAt(int parent_fd, const std::string& name, const std::string& display) {
  if (::unlinkat(parent_fd, name.c_str(), 0) == 0 || errno == ENOENT) return {};
  if (errno != EISDIR && errno != EPERM) return ErrnoError("remove `" + display + "`");
  auto fd = common::OpenAt(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!fd) {
    if (fd.error().code == common::Errc::kNotFound) return {};
    return std::unexpected(fd.error());
  }
  int raw = ::dup(fd->get());
  if (raw < 0) return ErrnoError("dup");
  auto dir = common::UniqueDir::FromFd(common::UniqueFd(raw));
  if (!dir) return std::unexpected(dir.error());
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir->get())) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  for (const auto& n : names) TRY(RemoveAt(fd->get(), n, display + "/" + n));
  if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return ErrnoError("remove directory `" + display + "`");
  return {};
}

common::Status UsageRec(int dir_fd, dev_t dev, std::set<std::pair<dev_t, ino_t>>& seen, Usage& u,
                        const std::string& display) {
  int raw = ::dup(dir_fd);
  if (raw < 0) return ErrnoError("dup");
  auto dir = common::UniqueDir::FromFd(common::UniqueFd(raw));
  if (!dir) return std::unexpected(dir.error());
  ::rewinddir(dir->get());
  std::vector<std::string> subdirs;
  while (dirent* e = ::readdir(dir->get())) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st {};
    if (::fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (st.st_dev != dev) continue;
    if (seen.insert({st.st_dev, st.st_ino}).second) {
      u.inodes++;
      u.bytes += static_cast<int64_t>(st.st_blocks) * 512;
    }
    if (S_ISDIR(st.st_mode)) subdirs.push_back(std::move(n));
  }
  for (const auto& n : subdirs) {
    auto fd = common::OpenAt(dir_fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!fd) continue;
    TRY(UsageRec(fd->get(), dev, seen, u, display + "/" + n));
  }
  return {};
}

}  // namespace

common::Status CopyTree(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::map<std::pair<dev_t, ino_t>, std::string> links;
  std::vector<DirTime> dir_times;
  TRY(CopyRec(from.string(), to.string(), links, dir_times));
  struct stat st {};
  if (::lstat(from.c_str(), &st) != 0) return ErrnoError("stat `" + from.string() + "`");
  TRY(CopyMeta(to.string(), st, false));
  TRY(CopyXattrs(from.string(), to.string()));
  dir_times.push_back({to.string(), {st.st_atim, st.st_mtim}});
  // Directory times last, deepest first: creating children changes them.
  for (auto it = dir_times.rbegin(); it != dir_times.rend(); ++it)
    if (::utimensat(AT_FDCWD, it->path.c_str(), it->times, AT_SYMLINK_NOFOLLOW) != 0)
      return ErrnoError("set times of `" + it->path + "`");
  return {};
}

common::Status RemoveTree(const std::filesystem::path& path) {
  std::string parent = path.parent_path().string();
  if (parent.empty()) parent = ".";
  auto pfd = common::Open(parent, O_RDONLY | O_DIRECTORY);
  if (!pfd) {
    if (pfd.error().code == common::Errc::kNotFound) return {};
    return std::unexpected(pfd.error());
  }
  return RemoveAt(pfd->get(), path.filename().string(), path.string());
}

common::Result<Usage> TreeUsage(const std::filesystem::path& path) {
  auto fd = common::Open(path.string(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!fd) return std::unexpected(fd.error());
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return ErrnoError("stat `" + path.string() + "`");
  Usage u;
  std::set<std::pair<dev_t, ino_t>> seen;
  TRY(UsageRec(fd->get(), st.st_dev, seen, u, path.string()));
  return u;
}

}  // namespace snapshot
