#pragma once
// File-system helpers with the durability rules of the store:
// temp file, fsync, rename, fsync of the directory.

#include <sys/types.h>

#include <filesystem>
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
