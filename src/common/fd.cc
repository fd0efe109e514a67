#include "common/fd.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <system_error>

#include "common/log.h"

namespace common {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Result<UniqueFd> OpenAt(int dirfd, const std::string& path, int flags, mode_t mode) {
  int fd = ::openat(dirfd, path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("open `" + path + "`");
  return UniqueFd(fd);
}

Result<UniqueFd> Open(const std::string& path, int flags, mode_t mode) {
  return OpenAt(AT_FDCWD, path, flags, mode);
}

void UniqueDir::reset(DIR* d) {
  if (dir_ != nullptr) ::closedir(dir_);
  dir_ = d;
}

Result<UniqueDir> UniqueDir::FromFd(UniqueFd fd) {
  DIR* d = ::fdopendir(fd.get());
  if (d == nullptr) return ErrnoError("fdopendir");
  (void)fd.release();
  return UniqueDir(d);
}

Result<TempDir> TempDir::Create(std::string_view prefix, std::filesystem::path parent) {
  if (parent.empty()) {
    const char* t = ::getenv("TMPDIR");
    parent = (t != nullptr && *t != '\0') ? t : "/tmp";
  }
  std::string templ = (parent / (std::string(prefix) + ".XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr)
    return ErrnoError("create temporary directory under `" + parent.string() + "`");
  return TempDir(std::filesystem::path(templ));
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec)
    LOG(Debug) << "remove temporary directory failed" << Kv("path", path_.string())
               << Kv("error", ec.message());
}

TempDir& TempDir::operator=(TempDir&& o) noexcept {
  if (this != &o) {
    TempDir old(std::move(*this));
    path_ = std::exchange(o.path_, {});
  }
  return *this;
}

Status MountGuard::Unmount() {
  if (target_.empty()) return {};
  if (::umount2(target_.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    return ErrnoError("unmount `" + target_ + "`");
  target_.clear();
  return {};
}

void MountGuard::reset() {
  auto st = Unmount();
  if (!st) LOG(Debug) << st.error().message;
  target_.clear();
}

Result<MountGuard> Mount(const std::string& source, const std::string& target,
                         const std::string& fstype, unsigned long flags, const std::string& data) {
  if (::mount(source.c_str(), target.c_str(), fstype.empty() ? nullptr : fstype.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) != 0)
    return ErrnoError("mount " + (fstype.empty() ? std::string("bind") : fstype) + " `" + source +
                      "` on `" + target + "`");
  return MountGuard(target);
}

Result<uint64_t> RaiseOpenFileLimit() {
  struct rlimit lim {};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return ErrnoError("getrlimit RLIMIT_NOFILE");
  const uint64_t before = lim.rlim_cur;
  if (lim.rlim_cur == lim.rlim_max) return before;
  lim.rlim_cur = lim.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return ErrnoError("setrlimit RLIMIT_NOFILE");
  return before;
}

}  // namespace common
