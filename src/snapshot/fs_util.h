#pragma once
// Directory-tree helpers for snapshots (internal to the snapshot module).

#include <filesystem>

#include "common/error.h"
#include "snapshot/snapshotter.h"

namespace snapshot {

// Copies the tree at `from` into the existing empty directory `to`,
// preserving type, mode, owner, times, xattrs (all namespaces the process
// can read and write), hardlinks within the tree, devices and fifos. Never
// follows symlinks.
[[nodiscard]] common::Status CopyTree(const std::filesystem::path& from,
                                      const std::filesystem::path& to);

// rm -rf without following symlinks; a missing path is fine.
[[nodiscard]] common::Status RemoveTree(const std::filesystem::path& path);

// Allocated bytes and distinct inodes under `path` (not following symlinks,
// not crossing mount points).
[[nodiscard]] common::Result<Usage> TreeUsage(const std::filesystem::path& path);

}  // namespace snapshot
