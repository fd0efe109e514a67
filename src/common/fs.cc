#include "common/fs.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <system_error>

namespace common {

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Status PwriteAll(int fd, std::string_view data, off_t offset) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write");
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset += n;
  }
  return {};
}

Status FsyncDir(const std::filesystem::path& dir) {
  auto fd = Open(dir.string(), O_RDONLY | O_DIRECTORY);
  if (!fd) return std::unexpected(fd.error());
  if (::fsync(fd->get()) != 0) return ErrnoError("fsync `" + dir.string() + "`");
  return {};
}

std::optional<FileStamp> StampOf(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileStamp{.dev = st.st_dev,
                   .ino = st.st_ino,
                   .size = st.st_size,
                   .mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec};
}

Status AtomicWriteFile(const std::filesystem::path& path, std::string_view data, mode_t mode) {
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::string tmp = (dir / ("." + path.filename().string() + ".tmp.XXXXXX")).string();
  int raw = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (raw < 0) return ErrnoError("create temporary file for `" + path.string() + "`");
  UniqueFd fd(raw);
  auto fail = [&](std::unexpected<Error> e) {
    ::unlink(tmp.c_str());
    return e;
  };
  if (::fchmod(fd.get(), mode) != 0) return fail(ErrnoError("chmod `" + tmp + "`"));
  if (auto st = WriteAll(fd.get(), data); !st)
    return fail(std::unexpected(st.error().Wrap("write `" + tmp + "`")));
  if (::fsync(fd.get()) != 0) return fail(ErrnoError("fsync `" + tmp + "`"));
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    return fail(ErrnoError("rename `" + tmp + "` to `" + path.string() + "`"));
  return FsyncDir(dir);
}

Result<std::string> ReadFile(const std::filesystem::path& path, size_t max_size) {
  auto fd = Open(path.string(), O_RDONLY);
  if (!fd) return std::unexpected(fd.error());
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return ErrnoError("stat `" + path.string() + "`");
  if (static_cast<size_t>(st.st_size) > max_size)
    return MakeError(
        Errc::kResourceExhausted,
        "read `" + path.string() + "`: file is larger than " + std::to_string(max_size) + " bytes");
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read `" + path.string() + "`");
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_size)
      return MakeError(Errc::kResourceExhausted, "read `" + path.string() +
                                                     "`: file is larger than " +
                                                     std::to_string(max_size) + " bytes");
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status MkdirAll(const std::filesystem::path& path, mode_t mode) {
  if (path.empty()) return {};
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    return MakeError(Errc::kFailedPrecondition,
                     "create directory `" + path.string() + "`: exists and is not a directory");
  }
  if (path.has_parent_path() && path.parent_path() != path) {
    if (auto r = MkdirAll(path.parent_path(), mode); !r) return r;
  }
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    return ErrnoError("create directory `" + path.string() + "`");
  return {};
}

}  // namespace common
