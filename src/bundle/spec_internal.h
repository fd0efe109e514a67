#pragma once
// Internals of spec.cc shared with its tests: reading files of an untrusted
// rootfs (the /etc/passwd and /etc/group formats: common/userdb.h).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/userdb.h"

namespace bundle::internal {

// Reads `rel` ("etc/passwd": relative, no NUL) inside `rootfs` with chroot
// semantics: every symlink on the way, absolute or relative, is resolved
// against `rootfs` as "/", and ".." never climbs above it. Magic links
// (/proc/self/…) and mount crossings are refused (InvalidArgument). With
// `use_openat2` the kernel does the walk (openat2 RESOLVE_IN_ROOT); without
// it, or where openat2 is unavailable (probed once per process), a walk one
// component at a time with O_NOFOLLOW does the same. nullopt when the file
// (or a directory on its way) does not exist. Errors: InvalidArgument for
// something that is not a regular file (a FIFO is never opened for a
// blocking read) or larger than `max_size`, a symlink loop, a component
// that is not a directory; others mapped from errno, naming the file.
[[nodiscard]] common::Result<std::optional<std::string>> ReadRootfsFile(
    const std::filesystem::path& rootfs, std::string_view rel, bool use_openat2 = true,
    size_t max_size = common::kMaxUserFileSize);

}  // namespace bundle::internal
