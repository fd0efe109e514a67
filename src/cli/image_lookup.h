#pragma once
// Finding image records by what a user types: a reference (normalised), a
// name@digest, or an image id (config digest, full or a unique prefix of at
// least 12 hex characters).

#include <string>
#include <vector>

#include "common/error.h"
#include "store/metadata.h"

namespace cli {

// Every record the text names (several when an id names a multi-tag image).
// NotFound naming the normalised reference when none; InvalidArgument for
// text that is neither a reference nor an id.
[[nodiscard]] common::Result<std::vector<store::ImageRecord>> FindImages(store::MetadataDb& db,
                                                                        const std::string& text);

}  // namespace cli
