#pragma once
// An integrity check of the metadata database, for `gantry fsck`.

#include <filesystem>
#include <string>
#include <vector>

#include "common/error.h"

namespace store {

// SQLite's `PRAGMA quick_check` of <root>/metadata.db: an empty list when
// the database is sound, else SQLite's messages (at most 20). Reads only.
// Errors: DataLoss when the file is not a database; Unavailable when it
// stays locked past the busy timeout.
[[nodiscard]] common::Result<std::vector<std::string>> QuickCheck(
    const std::filesystem::path& root);

}  // namespace store
