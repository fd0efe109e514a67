#pragma once
// Strict JSON reading for policy.json: the document, bounded in size, and
// refused when an object repeats a key (Go's encoding/json, and so
// containers/image's paranoid parser, would notice; nlohmann::json keeps
// the last value silently).

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/error.h"

namespace trust::internal {

// Parses `text`. Errors (InvalidArgument, message without context):
// "invalid JSON at byte N", size limits, and
// "at $.transports.docker: duplicate key \"docker.io\"".
[[nodiscard]] common::Result<nlohmann::json> ParseStrictJson(std::string_view text);

}  // namespace trust::internal
