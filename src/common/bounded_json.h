#pragma once
// JSON from untrusted bytes, parsed into a tree whose size is bounded by
// what the document may contain, not only by its length.
//
// Why a length cap is not enough: nlohmann::json spends 20 to 160 bytes on
// every value it holds (the value, its std::string or container, a map
// node per object member), so 16 MiB of `"",` (5.6 million empty strings)
// builds a tree of 400 MB. ParseBoundedJson first runs a SAX pass over
// the bytes that counts values and nesting and allocates nothing that
// grows with the document, and builds the tree only when the document is
// within `limits`.
//
// Pure function; thread-safe.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/error.h"

namespace common {

struct JsonLimits {
  // Values anywhere in the document: every string, number, boolean, null,
  // array and object (an object member is its value; keys are not counted
  // apart from it).
  int64_t max_values = 0;
  // Nesting of arrays and objects; a top-level object is depth 1. Keeps
  // the recursive parts of nlohmann::json (dump, copies, comparison) far
  // from the stack's end.
  int max_depth = 0;
};

// Parses `text` as one JSON document.
// Errors (all InvalidArgument):
//   "invalid JSON at byte N" for a syntax error (N counts from 1);
//   "more than N JSON values" when it holds over limits.max_values;
//   "nested deeper than N levels" when it nests over limits.max_depth.
[[nodiscard]] Result<nlohmann::json> ParseBoundedJson(std::string_view text,
                                                      const JsonLimits& limits);

}  // namespace common
