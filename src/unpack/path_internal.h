#pragma once
// Path safety for the tar applier: name normalisation and fd-relative
// resolution of directories inside a root, never leaving it.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "common/in_root.h"
#include "unpack/apply.h"

namespace unpack::internal {

// Normalises a tar entry name: "./" prefixes, empty and "." components and
// trailing slashes are dropped ("./a//b/./c/" -> "a/b/c"; "./" -> "", the
// root itself). Errors (InvalidArgument, message without the entry name):
// empty name, absolute path, a ".." component ("path escapes the root"),
// a component longer than max_name_length, a result longer than
// max_path_length.
[[nodiscard]] common::Result<std::string> NormalizePath(std::string_view raw, const Limits& limits);

// Splits a normalised path into (directory, last component):
// "a/b/c" -> ("a/b", "c"); "c" -> ("", "c").
std::pair<std::string_view, std::string_view> SplitLast(std::string_view path);

// Names in error messages go through common::DisplayPath (escaped, shortened).
using common::DisplayPath;

// Opens directories below a root with chroot semantics (common/in_root.h):
// symlinks are followed inside the root, mount points are not crossed, and
// the last directory opened is cached for the next entry of the layer.
class Resolver {
 public:
  // `root_fd` is not owned and must outlive the Resolver.
  Resolver(int root_fd, bool use_openat2) : root_fd_(root_fd), use_openat2_(use_openat2) {}

  // fstat of the root (its device bounds removals). Call once first.
  [[nodiscard]] common::Status Init();

  // Opens `dir` (normalised, "" for the root) as an O_PATH directory fd.
  // With `create`, missing components are created as 0755 directories
  // (through symlinks, inside the root). Errors: NotFound (without
  // `create`), "not a directory", too many symlinks, crossing a mount.
  [[nodiscard]] common::Result<common::UniqueFd> OpenDir(std::string_view dir, bool create);

  // As OpenDir, but caches the last directory: the returned fd is borrowed
  // and valid until the next ParentFd call. Invalidate() must be called
  // after anything is removed or replaced below the root, since that may
  // change what a path resolves to.
  [[nodiscard]] common::Result<int> ParentFd(std::string_view dir, bool create);
  void Invalidate() { cache_valid_ = false; }
  // Whether ParentFd(dir, …) would return the cached fd.
  bool Cached(std::string_view dir) const { return cache_valid_ && cache_path_ == dir; }
  // Changes whenever ParentFd opens a directory (a new fd, maybe another
  // directory): what callers learnt about the last fd holds until then.
  uint64_t generation() const { return generation_; }

  int root_fd() const { return root_fd_; }
  dev_t root_dev() const { return root_dev_; }

 private:
  int root_fd_;
  bool use_openat2_;
  dev_t root_dev_ = 0;
  std::string cache_path_;
  common::UniqueFd cache_fd_;
  bool cache_valid_ = false;
  uint64_t generation_ = 0;
};

// Removes `name` in `dirfd`: unlinks a non-directory (a symlink itself,
// never its target) or deletes a directory tree depth-first, fd-relative,
// without following symlinks or entering another file system (`dev`).
// A missing `name` is not an error.
[[nodiscard]] common::Status RemoveAllAt(int dirfd, const std::string& name, dev_t dev);

}  // namespace unpack::internal
