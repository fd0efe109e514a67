#pragma once
// RAII owners for kernel handles: file descriptors, DIR streams, temporary
// directories and mounts. Each is move-only, has release(), and its
// destructor never throws (failures in destructors are logged at debug).

#include <dirent.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>

#include "common/error.h"

namespace common {

// Owns a file descriptor; closes it on destruction. Open everything with
// O_CLOEXEC and prefer *at() calls relative to a directory fd.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// open(2)/openat(2) with O_CLOEXEC added. Errors: mapped from errno, the
// message naming the path.
[[nodiscard]] Result<UniqueFd> OpenAt(int dirfd, const std::string& path, int flags,
                                      mode_t mode = 0);
[[nodiscard]] Result<UniqueFd> Open(const std::string& path, int flags, mode_t mode = 0);

// Owns a DIR* stream (for readdir); closes it on destruction.
class UniqueDir {
 public:
  UniqueDir() = default;
  explicit UniqueDir(DIR* d) : dir_(d) {}
  ~UniqueDir() { reset(); }
  UniqueDir(UniqueDir&& o) noexcept : dir_(o.release()) {}
  UniqueDir& operator=(UniqueDir&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueDir(const UniqueDir&) = delete;
  UniqueDir& operator=(const UniqueDir&) = delete;

  DIR* get() const { return dir_; }
  [[nodiscard]] DIR* release() { return std::exchange(dir_, nullptr); }
  void reset(DIR* d = nullptr);

  // Takes ownership of `fd` (a directory opened O_RDONLY|O_DIRECTORY).
  [[nodiscard]] static Result<UniqueDir> FromFd(UniqueFd fd);

 private:
  DIR* dir_ = nullptr;
};

// A directory created with mkdtemp under `parent` (default: $TMPDIR or /tmp)
// and removed recursively on destruction unless release()d.
class TempDir {
 public:
  [[nodiscard]] static Result<TempDir> Create(std::string_view prefix = "gantry",
                                              std::filesystem::path parent = {});
  TempDir() = default;
  ~TempDir();
  TempDir(TempDir&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  TempDir& operator=(TempDir&& o) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path release() { return std::exchange(path_, {}); }

 private:
  explicit TempDir(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

// Owns a mount point: unmounts it (MNT_DETACH) on destruction unless
// release()d. Mount with Mount() below or adopt an existing mount.
class MountGuard {
 public:
  MountGuard() = default;
  explicit MountGuard(std::string target) : target_(std::move(target)) {}
  ~MountGuard() { reset(); }
  MountGuard(MountGuard&& o) noexcept : target_(std::exchange(o.target_, {})) {}
  MountGuard& operator=(MountGuard&& o) noexcept {
    if (this != &o) {
      reset();
      target_ = std::exchange(o.target_, {});
    }
    return *this;
  }
  MountGuard(const MountGuard&) = delete;
  MountGuard& operator=(const MountGuard&) = delete;

  const std::string& target() const { return target_; }
  [[nodiscard]] std::string release() { return std::exchange(target_, {}); }
  // Unmounts now; reports the failure instead of logging it.
  [[nodiscard]] Status Unmount();
  void reset();

 private:
  std::string target_;
};

// mount(2) returning a guard for `target`. Errors: mapped from errno, naming
// source, target and type.
[[nodiscard]] Result<MountGuard> Mount(const std::string& source, const std::string& target,
                                       const std::string& fstype, unsigned long flags,
                                       const std::string& data = {});

// Raises this process's soft RLIMIT_NOFILE to its hard limit, as Go
// programs (containerd, …) do at start-up: the soft limit of 1024 that most
// login shells and service managers set is there for programs that use
// select(2), and an unpack of many small files needs more (the unpacker's
// own bound derives from the limit, unpack/apply.h). Children inherit the
// raised limit, so a process that starts user workloads (the OCI runtime)
// must not call it. Returns the soft limit before. Errors: mapped from the
// errno of getrlimit/setrlimit (EPERM when the hard limit is above
// fs.nr_open, which was lowered after it was set).
[[nodiscard]] Result<uint64_t> RaiseOpenFileLimit();

}  // namespace common
