#pragma once
// File-system helpers with the durability rules of the store:
// temp file, fsync, rename, fsync of the directory.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/fd.h"

namespace common {

// Writes `data` to `path` atomically: a temporary file in the same
// directory is written, fsynced, renamed over `path`, and the directory is
// fsynced. Readers see the old contents or the new, never a mix; after a
// crash, one of the two. On error no temporary file is left behind.
[[nodiscard]] Status AtomicWriteFile(const std::filesystem::path& path, std::string_view data,
                                     mode_t mode = 0644);

// What tells that a file a watcher re-reads has changed: the inode that
// stat() reaches (a Kubernetes ConfigMap update swaps a symlink, and
// AtomicWriteFile renames a new file over the old), its size and its
// mtime. mtime alone is not enough: two writes within one tick of the
// kernel's coarse clock leave the same mtime.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  int64_t mtime_ns = -1;
  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

// The stamp of the file `path` names (symlinks followed); nullopt when it
// cannot be stat()ed (missing, or no permission).
[[nodiscard]] std::optional<FileStamp> StampOf(const std::filesystem::path& path);

// Reads a whole file. `max_size` guards against unexpectedly large input:
// a larger file fails with ResourceExhausted.
[[nodiscard]] Result<std::string> ReadFile(const std::filesystem::path& path,
                                           size_t max_size = 64u << 20);

// mkdir -p with `mode` for the directories it creates.
[[nodiscard]] Status MkdirAll(const std::filesystem::path& path, mode_t mode = 0755);

// fsync of a directory, so renames and creations inside it are durable.
[[nodiscard]] Status FsyncDir(const std::filesystem::path& dir);

// Writes all of `data` to `fd`, retrying on EINTR and short writes.
[[nodiscard]] Status WriteAll(int fd, std::string_view data);
// Writes all of `data` at `offset` (pwrite), retrying on EINTR and short
// writes; the file offset does not move.
[[nodiscard]] Status PwriteAll(int fd, std::string_view data, off_t offset);

}  // namespace common
